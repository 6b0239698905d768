"""`tf.sets` (size, intersection, union, difference) and `tf.edit_distance`.

Both group a tensor's values by their leading coordinates: a dense tensor's
last dimension, or a SparseTensor's entries sharing all but the last index.
Set results are SparseTensors whose last dimension holds each group's sorted
values; `edit_distance` gives the Levenshtein distance per group (float32).
Computed on the host: no gradients, as in TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops
from distflow.sparse import SparseTensor
from distflow.tensor import Tensor


def _groups(x: Any) -> tuple[tuple[int, ...], dict[tuple, list]]:
    """The leading shape and, per leading coordinate, the values in last-index order."""
    if isinstance(x, SparseTensor):
        shape = tuple(int(d) for d in x.dense_shape.numpy())
        idx, vals = x.indices.numpy(), x.values.numpy()
        order = np.lexsort(idx.T[::-1]) if len(idx) else []
        groups: dict[tuple, list] = {}
        for i in order:
            groups.setdefault(tuple(idx[i, :-1].tolist()), []).append(vals[i].item())
        return shape[:-1], groups
    arr = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    if arr.ndim < 1:
        raise ValueError(f"A set needs rank >= 1 (the last dimension holds the elements). "
                         f"Received: shape={arr.shape}")
    return arr.shape[:-1], {k: arr[k].tolist() for k in np.ndindex(arr.shape[:-1])}


def _check_dtype(x: Any) -> np.dtype:
    dtype = np.dtype((x.values if isinstance(x, SparseTensor) else ops.convert_to_tensor(x))
                     .dtype)
    if dtype.kind not in "iu":
        raise TypeError(f"tf.sets works on integer (or string) elements. Received: dtype={dtype}")
    return dtype


def _as_sparse(prefix: tuple, rows: dict[tuple, list], dtype: np.dtype) -> SparseTensor:
    width = max((len(v) for v in rows.values()), default=0)
    idx = [k + (j,) for k in sorted(rows) for j in range(len(rows[k]))]
    vals = [v for k in sorted(rows) for v in rows[k]]
    return SparseTensor(np.asarray(idx, np.int64).reshape(-1, len(prefix) + 1),
                        np.asarray(vals, dtype), list(prefix) + [width])


def _combine(a: Any, b: Any, op) -> SparseTensor:
    dtype = _check_dtype(a)
    if _check_dtype(b) != dtype:
        raise TypeError(f"tf.sets: a and b must share a dtype. Received: {dtype} and "
                        f"{_check_dtype(b)}")
    prefix_a, ga = _groups(a)
    prefix_b, gb = _groups(b)
    if prefix_a != prefix_b:
        raise ValueError(f"tf.sets: a and b must agree on all but the last dimension. "
                         f"Received: {prefix_a} and {prefix_b}")
    rows = {k: sorted(op(set(ga.get(k, [])), set(gb.get(k, []))))
            for k in set(ga) | set(gb)}
    return _as_sparse(prefix_a, {k: v for k, v in rows.items() if v}, dtype)


def size(a: Any, validate_indices: bool = True) -> Tensor:
    """The number of distinct elements of each set of a SparseTensor (int32, leading shape)."""
    if not isinstance(a, SparseTensor):
        raise TypeError(f"tf.sets.size expects a SparseTensor (tf.sparse.from_dense converts)."
                        f" Received: {type(a).__name__}")
    _check_dtype(a)
    prefix, groups = _groups(a)
    out = np.zeros(prefix, np.int32)
    for k, v in groups.items():
        out[k] = len(set(v))
    return ops.constant(out)


def intersection(a: Any, b: Any, validate_indices: bool = True) -> SparseTensor:
    """Per group, the sorted elements in both `a` and `b`."""
    return _combine(a, b, set.intersection)


def union(a: Any, b: Any, validate_indices: bool = True) -> SparseTensor:
    """Per group, the sorted elements in `a` or `b`."""
    return _combine(a, b, set.union)


def difference(a: Any, b: Any, aminusb: bool = True, validate_indices: bool = True
               ) -> SparseTensor:
    """Per group, the sorted elements of `a` not in `b` (of `b` not in `a` if not `aminusb`)."""
    return _combine(a, b, set.difference) if aminusb else _combine(b, a, set.difference)


# ------------------------------------------------------------ edit distance


def _levenshtein(h: list, t: list) -> int:
    prev = list(range(len(t) + 1))
    for i, x in enumerate(h, 1):
        cur = [i]
        for j, y in enumerate(t, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def edit_distance(hypothesis: SparseTensor, truth: SparseTensor, normalize: bool = True,
                  name: str = "edit_distance") -> Tensor:
    """Levenshtein distance between the sequences of two SparseTensors, per leading index.

    The sequences are each tensor's last dimension; with `normalize`, distances are
    divided by the truth's length (inf for an empty truth and a non-empty hypothesis).
    """
    if not isinstance(hypothesis, SparseTensor) or not isinstance(truth, SparseTensor):
        raise TypeError("tf.edit_distance expects SparseTensors (tf.sparse.from_dense "
                        f"converts). Received: {type(hypothesis).__name__}, "
                        f"{type(truth).__name__}")
    ph, gh = _groups(hypothesis)
    pt, gt = _groups(truth)
    if len(ph) != len(pt):
        raise ValueError(f"tf.edit_distance: ranks differ ({len(ph) + 1} and {len(pt) + 1}).")
    out = np.zeros(np.maximum(ph, pt).astype(int), np.float32)
    for k in np.ndindex(out.shape):
        h, t = gh.get(k, []), gt.get(k, [])
        d = float(_levenshtein(h, t))
        if normalize:
            d = d / len(t) if t else (np.inf if h else 0.0)
        out[k] = d
    return ops.constant(out)
