"""Shape ops: reshape, transpose, expand/squeeze, concat/stack/split, tile, pad,
indexing (`getitem`), gather, one_hot. `distflow.ops` re-exports them."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from distflow.primitive import (
    _norm_axis,
    _promote,
    _t,
    cast,
    defop,
)
from distflow.tensor import Tensor, as_array, graph_form

_reshape = defop("reshape", lambda x, shape: (x.reshape(shape), x.shape),
                 lambda g, shape: g.reshape(shape))


def reshape(x: Any, shape: Any) -> Tensor:
    """Reshapes (one dimension may be -1)."""
    x = _t(x)
    shape = tuple(int(s) for s in as_array(shape).reshape(-1)) if not isinstance(
        shape, int) else (shape,)
    try:
        return _reshape(x, shape=shape)
    except ValueError:
        raise ValueError(f"Cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                         f"into shape {shape}.") from None


_transpose = defop("transpose", lambda x, perm: (x.transpose(perm), np.argsort(perm)),
                   lambda g, inverse: g.transpose(inverse))


def transpose(x: Any, perm: Sequence[int] | None = None) -> Tensor:
    """Permutes dimensions (reverses them when `perm` is None)."""
    x = _t(x)
    perm = tuple(builtins.range(x.ndim))[::-1] if perm is None else tuple(int(p) for p in perm)
    return _transpose(x, perm=perm)


def swapaxes(x: Any, a: int, b: int) -> Tensor:
    """Swaps two axes (composite of transpose)."""
    x = _t(x)
    perm = list(builtins.range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


@graph_form("unknown", ("x",))
def expand_dims(x: Any, axis: int) -> Tensor:
    """Inserts a length-1 axis (composite of reshape)."""
    x = _t(x)
    return reshape(x, np.expand_dims(np.empty(x.shape, dtype=bool), axis).shape)


@graph_form("unknown", ("x",))
def squeeze(x: Any, axis: Any = None) -> Tensor:
    """Removes length-1 axes (composite of reshape)."""
    x = _t(x)
    return reshape(x, np.squeeze(np.empty(x.shape, dtype=bool), axis=_norm_axis(axis)).shape)


def _concat_fwd(*xs, axis):
    bounds = np.cumsum([0] + [x.shape[axis] for x in xs])
    return np.concatenate(xs, axis=axis), (bounds, axis)


def _concat_vjp(i, g, r):
    bounds, axis = r
    index = [slice(None)] * g.ndim
    index[axis] = slice(bounds[i], bounds[i + 1])
    return g[tuple(index)]


_concat = defop("concat", _concat_fwd, _concat_vjp, variadic=True)


def _same_dtype(values: Sequence[Any]) -> list[Tensor]:
    tensors = [_t(v) for v in values]
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = _promote(dt, t.dtype)
    return [cast(t, dt) for t in tensors]


def concat(values: Sequence[Any], axis: int = 0) -> Tensor:
    """Joins tensors along an existing axis."""
    if len(values) == 0:
        raise ValueError("concat needs at least one tensor. Received an empty list.")
    tensors = _same_dtype(values)
    return _concat(*tensors, axis=int(axis) % tensors[0].ndim if tensors[0].ndim else 0)


concatenate = concat


def stack(values: Sequence[Any], axis: int = 0) -> Tensor:
    """Joins tensors along a new axis (composite of expand_dims and concat)."""
    if len(values) == 0:
        raise ValueError("stack needs at least one tensor. Received an empty list.")
    return concat([expand_dims(v, axis) for v in values], axis=axis)


@graph_form("unknown", ("value",))
def split(value: Any, num_or_size_splits: Any, axis: int = 0) -> list[Tensor]:
    """Splits into pieces along `axis` (composite of getitem)."""
    value = _t(value)
    n = value.shape[axis]
    if isinstance(num_or_size_splits, int):
        if n % num_or_size_splits:
            raise ValueError(f"Cannot split axis {axis} of size {n} into "
                             f"{num_or_size_splits} equal pieces.")
        sizes = [n // num_or_size_splits] * num_or_size_splits
    else:
        sizes = [int(s) for s in num_or_size_splits]
        if builtins.sum(sizes) != n:
            raise ValueError(f"split sizes {sizes} do not add up to the axis size {n}.")
    bounds = np.cumsum([0] + sizes)
    index = [slice(None)] * value.ndim
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index[axis] = slice(int(lo), int(hi))
        out.append(getitem(value, tuple(index)))
    return out


def _tile_vjp(g, r):
    shape, reps = r
    split_shape = [d for pair in zip(reps, shape) for d in pair]
    return g.reshape(split_shape).sum(axis=tuple(builtins.range(0, 2 * len(shape), 2)))


def _tile_fwd(x, multiples):
    reps = tuple(multiples)
    x = x.reshape((1,) * (len(reps) - x.ndim) + x.shape)
    return np.tile(x, reps), (x.shape, reps)


_tile = defop("tile", _tile_fwd, lambda g, r: _tile_vjp(g, r))


@graph_form("unknown", ("x",))
def tile(x: Any, multiples: Sequence[int]) -> Tensor:
    """Repeats the tensor `multiples[i]` times along axis i."""
    x = _t(x)
    reps = tuple(int(m) for m in as_array(multiples).reshape(-1))
    if len(reps) != x.ndim:
        raise ValueError(f"tile: `multiples` needs one entry per axis ({x.ndim}). "
                         f"Received: multiples={list(reps)}")
    return reshape(_tile(x, multiples=reps), tuple(s * m for s, m in zip(x.shape, reps)))


def _pad_fwd(x, paddings, value):
    out = np.pad(x, paddings, constant_values=value)
    index = tuple(slice(lo, lo + n) for (lo, _), n in zip(paddings, x.shape))
    return out, index


_pad = defop("pad", _pad_fwd, lambda g, index: g[index])


def pad(tensor: Any, paddings: Any, mode: str = "CONSTANT", constant_values: Any = 0) -> Tensor:
    """Pads with a constant; `paddings` is [[before, after], ...] per axis."""
    if mode.upper() != "CONSTANT":
        raise ValueError(f"pad supports mode='CONSTANT' only. Received: mode={mode!r}")
    tensor = _t(tensor)
    pads = tuple((int(a), int(b)) for a, b in as_array(paddings).reshape(-1, 2))
    if len(pads) != tensor.ndim:
        raise ValueError(f"pad: `paddings` needs one [before, after] pair per axis "
                         f"({tensor.ndim}). Received: {[list(p) for p in pads]}")
    return _pad(tensor, paddings=pads, value=constant_values)


def _is_basic_index(key: tuple) -> bool:
    return all(k is None or k is Ellipsis or isinstance(k, int | slice | np.integer) for k in key)


def _getitem_vjp(g, r):
    shape, key, basic = r
    out = np.zeros(shape, dtype=g.dtype)
    if basic:
        out[key] = g
    else:
        np.add.at(out, key, g)  # repeated indices accumulate
    return out


_getitem = defop("getitem", lambda x, key: (x[key], (x.shape, key, _is_basic_index(key))),
                 _getitem_vjp)


def _index_key(key: Any) -> tuple:
    key = key if isinstance(key, tuple) else (key,)
    return tuple(k.value if isinstance(k, Tensor) else
                 np.asarray(k) if isinstance(k, list) else k for k in key)


@graph_form("args", ("key",))
def getitem(x: Any, key: Any) -> Tensor:
    """NumPy indexing: slices, integer arrays and boolean masks."""
    return _getitem(_t(x), key=_index_key(key))


def _gather_fwd(params, indices, axis):
    return np.take(params, indices, axis=axis), (params.shape, indices, axis)


def _gather_vjp(g, r):
    shape, indices, axis = r
    out = np.zeros(shape, dtype=g.dtype)
    moved = np.moveaxis(out, axis, 0)
    g = np.moveaxis(g, list(builtins.range(axis, axis + indices.ndim)),
                    list(builtins.range(indices.ndim)))
    np.add.at(moved, indices, g)
    return out


_gather = defop("gather", _gather_fwd, _gather_vjp)


@graph_form("args", ("indices",))
def gather(params: Any, indices: Any, axis: int = 0) -> Tensor:
    """Takes slices of `params` along `axis` at `indices` (embedding lookup)."""
    params = _t(params)
    idx = as_array(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: `indices` must be integers. Received dtype={idx.dtype}.")
    axis = int(axis) % params.ndim
    n = params.shape[axis]
    if n is not None and idx.size and (idx.min() < -n or idx.max() >= n):  # None: graph
        raise IndexError(f"gather: indices must be in [0, {n}) for axis {axis}. "
                         f"Received values in [{idx.min()}, {idx.max()}].")
    return _gather(params, indices=idx, axis=axis)


def embedding_lookup(params: Any, ids: Any) -> Tensor:
    """Rows of `params` at `ids` (gather on axis 0)."""
    return gather(params, ids, axis=0)


@graph_form(differentiable=False)
def one_hot(indices: Any, depth: int, on_value: float = 1.0, off_value: float = 0.0,
            axis: int = -1, dtype: Any = np.float32) -> Tensor:
    """One-hot encoding of integer indices (out-of-range indices give all off_value)."""
    idx = as_array(indices)
    eye = (np.arange(depth) == idx[..., None])
    out = np.where(eye, on_value, off_value).astype(dtype)
    return Tensor._wrap(np.moveaxis(out, -1, axis) if axis != -1 else out)
