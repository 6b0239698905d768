"""The segment ops of `tf.math` (segment_sum/mean/max/min and their unsorted forms),
with their VJPs. `distflow.math_ops` re-exports them."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops
from distflow.ops import _t, defop
from distflow.tensor import Tensor, as_array

# --------------------------------------------------------------- unary math


def _segment_ids(ids: Any, what: str) -> np.ndarray:
    ids = as_array(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{what}: `segment_ids` must be integers. Received dtype={ids.dtype}.")
    return ids


def _seg_sum_fwd(data, ids, num):
    flat = data.reshape((ids.size,) + data.shape[ids.ndim:])
    ids = ids.reshape(-1)
    keep = ids >= 0
    out = np.zeros((num,) + flat.shape[1:], data.dtype)
    np.add.at(out, ids[keep], flat[keep])
    return out, (ids, keep, data.shape)


def _seg_sum_vjp(g, r):
    ids, keep, shape = r
    return np.where(keep.reshape((-1,) + (1,) * (g.ndim - 1)), g[np.maximum(ids, 0)],
                    0).reshape(shape).astype(g.dtype, copy=False)


_unsorted_segment_sum = defop("unsorted_segment_sum", _seg_sum_fwd, _seg_sum_vjp)


def _seg_extreme_fwd(ufunc, fill):
    def forward(data, ids, num, empty):
        flat = data.reshape((ids.size,) + data.shape[ids.ndim:])
        ids = ids.reshape(-1)
        keep = ids >= 0
        out = np.full((num,) + flat.shape[1:], fill, data.dtype)
        ufunc.at(out, ids[keep], flat[keep])
        hit = keep.reshape((-1,) + (1,) * (flat.ndim - 1)) & (flat == out[np.maximum(ids, 0)])
        counts = np.zeros(out.shape, np.int64)
        np.add.at(counts, ids[keep], hit[keep])
        out = np.where(counts == 0, empty, out).astype(data.dtype)
        return out, (ids, hit, counts, data.shape)
    return forward


def _seg_extreme_vjp(g, r):
    ids, hit, counts, shape = r
    idx = np.maximum(ids, 0)
    share = g[idx] / np.maximum(counts[idx], 1)
    return np.where(hit, share, 0).reshape(shape).astype(g.dtype, copy=False)


_unsorted_segment_max = defop("unsorted_segment_max",
                              _seg_extreme_fwd(np.maximum, -np.inf), _seg_extreme_vjp)
_unsorted_segment_min = defop("unsorted_segment_min",
                              _seg_extreme_fwd(np.minimum, np.inf), _seg_extreme_vjp)


def _num_segments(ids: np.ndarray, num_segments: Any) -> int:
    if num_segments is None:
        return int(ids.max()) + 1 if ids.size else 0
    num = int(as_array(num_segments))
    if ids.size and ids.max() >= num:
        raise ValueError(f"segment ids must be < num_segments ({num}). Received max id "
                         f"{int(ids.max())}.")
    return num


def _check_sorted(ids: np.ndarray, what: str) -> None:
    if ids.ndim != 1 or (ids.size and (np.any(np.diff(ids) < 0) or ids[0] < 0)):
        raise ValueError(f"{what}: `segment_ids` must be a 1-D, sorted, non-negative vector. "
                         f"Received: segment_ids={ids.tolist()}")


def _lowest(dtype: np.dtype, sign: int) -> Any:
    info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
    return info.min if sign > 0 else info.max


def unsorted_segment_sum(data: Any, segment_ids: Any, num_segments: Any) -> Tensor:
    """Sums the rows of `data` sharing a segment id; negative ids are dropped."""
    ids = _segment_ids(segment_ids, "unsorted_segment_sum")
    return _unsorted_segment_sum(_t(data), ids=ids, num=_num_segments(ids, num_segments))


def unsorted_segment_max(data: Any, segment_ids: Any, num_segments: Any) -> Tensor:
    """Maximum per segment; empty segments hold the dtype's lowest value, as TF."""
    data, ids = _t(data), _segment_ids(segment_ids, "unsorted_segment_max")
    return _unsorted_segment_max(data, ids=ids, num=_num_segments(ids, num_segments),
                                 empty=_lowest(data.dtype, 1))


def unsorted_segment_min(data: Any, segment_ids: Any, num_segments: Any) -> Tensor:
    """Minimum per segment; empty segments hold the dtype's largest value, as TF."""
    data, ids = _t(data), _segment_ids(segment_ids, "unsorted_segment_min")
    return _unsorted_segment_min(data, ids=ids, num=_num_segments(ids, num_segments),
                                 empty=_lowest(data.dtype, -1))


def _segment_counts(ids: np.ndarray, num: int, like: Tensor) -> np.ndarray:
    counts = np.bincount(ids[ids >= 0].reshape(-1), minlength=num)[:num]
    return counts.reshape((num,) + (1,) * (like.ndim - ids.ndim)).astype(like.dtype)


def unsorted_segment_mean(data: Any, segment_ids: Any, num_segments: Any) -> Tensor:
    """Mean per segment (0 for empty segments)."""
    data, ids = _t(data), _segment_ids(segment_ids, "unsorted_segment_mean")
    num = _num_segments(ids, num_segments)
    total = unsorted_segment_sum(data, ids, num)
    return ops.divide(total, np.maximum(_segment_counts(ids, num, data), 1))


def segment_sum(data: Any, segment_ids: Any) -> Tensor:
    """Sums rows of `data` per sorted segment id; the output has max(id) + 1 rows."""
    ids = _segment_ids(segment_ids, "segment_sum")
    _check_sorted(ids, "segment_sum")
    return unsorted_segment_sum(data, ids, None)


def segment_mean(data: Any, segment_ids: Any) -> Tensor:
    """Mean of rows per sorted segment id (0 for empty segments)."""
    ids = _segment_ids(segment_ids, "segment_mean")
    _check_sorted(ids, "segment_mean")
    return unsorted_segment_mean(data, ids, None)


def segment_max(data: Any, segment_ids: Any) -> Tensor:
    """Maximum per sorted segment id (0 for empty segments, as TF)."""
    data, ids = _t(data), _segment_ids(segment_ids, "segment_max")
    _check_sorted(ids, "segment_max")
    return _unsorted_segment_max(data, ids=ids, num=_num_segments(ids, None), empty=0)


def segment_min(data: Any, segment_ids: Any) -> Tensor:
    """Minimum per sorted segment id (0 for empty segments, as TF)."""
    data, ids = _t(data), _segment_ids(segment_ids, "segment_min")
    _check_sorted(ids, "segment_min")
    return _unsorted_segment_min(data, ids=ids, num=_num_segments(ids, None), empty=0)
