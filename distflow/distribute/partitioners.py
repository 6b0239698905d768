"""TF's variable partitioners (`tf.distribute.experimental.partitioners`).

A partitioner is a callable `partitioner(shape, dtype)` returning the number of
partitions along each axis, as TF's; only axis 0 is ever partitioned (TF's
parameter-server training has the same restriction).

How this maps onto distflow: the parameter servers hold variables as row
ranges (`distflow.distribute.sharding`). Under
`distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=p)`
each worker's PS client asks `p(shape, dtype)[0]` for every variable it
registers and cuts it into `min(that, number of ps tasks, rows)` contiguous
row ranges, each on a different server (byte-balanced as usual). Without a
partitioner, variables are split by the size rule only (large ones over the
fair share). The variables on the coordinator stay whole (TF's
`ShardedVariable` is not emulated): only their storage on the servers is
partitioned.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["FixedShardsPartitioner", "MaxSizePartitioner", "MinSizePartitioner", "Partitioner"]


def _positive_int(name: str, value: Any, allow_none: bool = False) -> Any:
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return value


def _shape(shape: Any) -> list[int]:
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    if not dims or any(d is None for d in dims):
        raise ValueError(f"A partitioner needs a fully defined shape of rank >= 1. "
                         f"Received: shape={shape!r}")
    return [int(d) for d in dims]


def _element_bytes(dtype: Any, bytes_per_string: int) -> int:
    name = getattr(dtype, "name", dtype)
    if name in ("string", str, bytes, object) or np.dtype(name).kind in "OSU":
        return bytes_per_string
    return np.dtype(name).itemsize


class Partitioner:
    """Base class: `partitioner(shape, dtype)` -> partitions per axis."""

    def __call__(self, shape: Any, dtype: Any, axis: int = 0) -> list[int]:
        dims = _shape(shape)
        if not 0 <= axis < len(dims):
            raise ValueError(f"Cannot partition variable along axis {axis} when shape is "
                             f"only {dims}")
        result = [1] * len(dims)
        result[axis] = max(1, min(dims[axis], self._parts(dims, axis, dtype)))
        return result

    def _parts(self, dims: list[int], axis: int, dtype: Any) -> int:
        raise NotImplementedError


class FixedShardsPartitioner(Partitioner):
    """`num_shards` partitions along axis 0 (fewer when the variable has fewer rows).

    Args:
        num_shards: partitions per variable.
    """

    def __init__(self, num_shards: int):
        self._num_shards = _positive_int("num_shards", num_shards)

    def _parts(self, dims: list[int], axis: int, dtype: Any) -> int:
        return self._num_shards


class MinSizePartitioner(Partitioner):
    """As many partitions as keep each at least `min_shard_bytes`, at most `max_shards`.

    parts = max(1, min(rows, max_shards, ceil(variable bytes / min_shard_bytes))),
    TF's rule.

    Args:
        min_shard_bytes: smallest partition in bytes.
        max_shards: most partitions.
        bytes_per_string: bytes counted per string element.
    """

    def __init__(self, min_shard_bytes: int = 256 << 10, max_shards: int = 1,
                 bytes_per_string: int = 16):
        self._min_shard_bytes = _positive_int("min_shard_bytes", min_shard_bytes)
        self._max_shards = _positive_int("max_shards", max_shards)
        self._bytes_per_string = _positive_int("bytes_per_string", bytes_per_string)

    def _parts(self, dims: list[int], axis: int, dtype: Any) -> int:
        total = math.prod(dims) * _element_bytes(dtype, self._bytes_per_string)
        return min(self._max_shards, math.ceil(total / self._min_shard_bytes))


class MaxSizePartitioner(Partitioner):
    """As few partitions as keep each at most `max_shard_bytes` (at most `max_shards`).

    rows_per_part = max(1, floor(max_shard_bytes / bytes per row));
    parts = ceil(rows / rows_per_part), capped by `max_shards`, TF's rule.

    Args:
        max_shard_bytes: largest partition in bytes.
        max_shards: most partitions (None: no cap).
        bytes_per_string: bytes counted per string element.
    """

    def __init__(self, max_shard_bytes: int, max_shards: int | None = None,
                 bytes_per_string: int = 16):
        self._max_shard_bytes = _positive_int("max_shard_bytes", max_shard_bytes)
        self._max_shards = _positive_int("max_shards", max_shards, allow_none=True)
        self._bytes_per_string = _positive_int("bytes_per_string", bytes_per_string)

    def _parts(self, dims: list[int], axis: int, dtype: Any) -> int:
        row = math.prod(dims[:axis] + dims[axis + 1:])
        row_bytes = row * _element_bytes(dtype, self._bytes_per_string)
        rows_per_part = max(1, self._max_shard_bytes // max(1, row_bytes))
        parts = math.ceil(dims[axis] / rows_per_part)
        return parts if self._max_shards is None else min(self._max_shards, parts)
