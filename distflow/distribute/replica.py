"""Custom training loops under a strategy: TF's replica context, reductions and input.

distflow runs one replica per worker process. `strategy.run(fn)` runs `fn` on
this process's replica inside a `ReplicaContext`; values it returns are this
replica's ("per-replica" values are plain local values here), and
`strategy.reduce` / `strategy.gather` combine them across the workers through
shard 0 (`PSClient.collective`). As in TensorFlow, gradients applied inside
`strategy.run` under `MirroredStrategy` are summed over the replicas, so a
loss scaled by `nn.compute_average_loss` (sum / global batch) gives exactly
the gradient of one process at the global batch; `fit` and loops outside
`run` average instead (each worker's loss is a mean over its rows).

Input: `experimental_distribute_dataset` splits each element (a global batch)
of a dataset into contiguous per-replica slices (the first replicas get one
row more when it does not divide); `distribute_datasets_from_function` calls
the user's function with an `InputContext` and leaves batching to it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from distflow.tensor import Tensor


class ReduceOp(enum.Enum):
    """How `strategy.reduce` combines the replicas' values."""

    SUM = "SUM"
    MEAN = "MEAN"


class InputContext:
    """What an input function needs to know about the replicas (TF's `InputContext`).

    Args:
        num_input_pipelines: input pipelines in the run (one per worker).
        input_pipeline_id: this worker's pipeline.
        num_replicas_in_sync: replicas whose gradients are combined per step.
    """

    def __init__(self, num_input_pipelines: int = 1, input_pipeline_id: int = 0,
                 num_replicas_in_sync: int = 1):
        self.num_input_pipelines = num_input_pipelines
        self.input_pipeline_id = input_pipeline_id
        self.num_replicas_in_sync = num_replicas_in_sync

    def get_per_replica_batch_size(self, global_batch_size: int) -> int:
        """`global_batch_size` / replicas; it must divide evenly, as in TF."""
        if global_batch_size % self.num_replicas_in_sync:
            raise ValueError(f"The `global_batch_size` {global_batch_size} is not divisible by "
                             f"`num_replicas_in_sync` {self.num_replicas_in_sync}: pass a "
                             f"multiple of {self.num_replicas_in_sync} so every replica gets "
                             f"the same batch.")
        return global_batch_size // self.num_replicas_in_sync

    def __repr__(self) -> str:
        return (f"InputContext(num_input_pipelines={self.num_input_pipelines}, input_pipeline_id="
                f"{self.input_pipeline_id}, num_replicas_in_sync={self.num_replicas_in_sync})")


class ReplicaContext:
    """The context `strategy.run` runs its function in (TF's `ReplicaContext`)."""

    def __init__(self, strategy: Any, replica_id: int, num_replicas: int):
        self.strategy = strategy
        self.replica_id_in_sync_group = replica_id
        self.num_replicas_in_sync = num_replicas

    def all_reduce(self, reduce_op: Any, value: Any) -> Tensor:
        """The replicas' `value`s combined by `reduce_op`, on every replica."""
        return self.strategy.reduce(reduce_op, value, axis=None)


def reduce_op(value: Any) -> ReduceOp:
    """`value` as a `ReduceOp` (the enum, or its name "SUM" / "MEAN" in any case)."""
    if isinstance(value, ReduceOp):
        return value
    if isinstance(value, str) and value.upper() in ReduceOp.__members__:
        return ReduceOp[value.upper()]
    raise ValueError(f"`reduce_op` must be distflow.distribute.ReduceOp.SUM or .MEAN. "
                     f"Received: reduce_op={value!r}")


def reduce_local(op: ReduceOp, value: Any, axis: int | None,
                 combine: Callable[[np.ndarray], np.ndarray]) -> Tensor:
    """Reduces along `axis` here, then across replicas with `combine` (a sum of arrays).

    The element count travels with the sum, so MEAN divides by what the live
    replicas really contributed.
    """
    array = np.asarray(value.value if isinstance(value, Tensor) else value)
    count = 1 if axis is None else array.shape[axis]
    local = array if axis is None else array.sum(axis=axis)
    packed = np.append(local.astype(np.float64).ravel(), float(count))
    total = combine(packed)
    result = total[:-1].reshape(local.shape)
    if op is ReduceOp.MEAN:
        result = result / total[-1]
    return Tensor._wrap(np.asarray(result, dtype=array.dtype if array.dtype.kind == "f"
                                   else np.float32))


def split_rows(element: Any, index: int, parts: int) -> Any:
    """Rows [lo, hi) of every array in `element` for replica `index` of `parts`."""
    if isinstance(element, dict):
        return {k: split_rows(v, index, parts) for k, v in element.items()}
    if isinstance(element, tuple | list):
        return type(element)(split_rows(v, index, parts) for v in element)
    rows = len(element)
    lo, hi = _bounds(rows, index, parts)
    return element[lo:hi]


def _bounds(rows: int, index: int, parts: int) -> tuple[int, int]:
    base, extra = divmod(rows, parts)
    lo = index * base + min(index, extra)
    return lo, lo + base + (index < extra)


class DistributedDataset:
    """A dataset of global batches whose iteration yields this replica's slice of each."""

    def __init__(self, dataset: Any, replica_id: int, num_replicas: int):
        self._dataset = dataset
        self._replica_id, self._num_replicas = replica_id, num_replicas

    def __iter__(self) -> Iterator[Any]:
        for element in self._dataset:
            yield split_rows(element, self._replica_id, self._num_replicas)

    def __repr__(self) -> str:
        return (f"DistributedDataset(replica {self._replica_id} of {self._num_replicas}, "
                f"{self._dataset!r})")
