"""TensorFlow's top-level array ops beyond `distflow.ops`: einsum, gather/scatter by
n-d index, sorting, rolling, clipping by norm, and the functional helpers
(`map_fn`, `vectorized_map`, `py_function`, `numpy_function`, `print`).

Primitives register in the shared op registry with their VJPs; the rest are
composites of primitives.
"""

from __future__ import annotations

import builtins
import string
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distflow import ops
from distflow.ops import _t, defop, unbroadcast
from distflow.reorder_ops import (  # noqa: F401  (re-exported: this module's names stay)
    approx_top_k,
    argsort,
    broadcast_to,
    identity,
    repeat,
    reverse,
    roll,
    sort,
    unstack,
)
from distflow.space_batch_ops import (  # noqa: F401  (re-exported: tf's top-level names)
    batch_to_space,
    required_space_to_batch_paddings,
    space_to_batch,
    space_to_batch_nd,
)
from distflow.tensor import Tensor, as_array, graph_form
from distflow.tensor_array import TensorArray  # noqa: F401

# ------------------------------------------------------------------ einsum


def _expand_ellipsis(subs: str, ndim: int, ell: str) -> str:
    if "..." not in subs:
        return subs
    n = ndim - (len(subs) - 3)
    return subs.replace("...", ell[len(ell) - n:] if n else "")


def _parse_einsum(equation: str, shapes: list[tuple]) -> tuple[list[str], str]:
    """Explicit per-operand subscripts and output subscripts, ellipses spelled out."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} names {len(ins)} operands. "
                         f"Received {len(shapes)} inputs.")
    free = [c for c in string.ascii_letters if c not in eq]
    n_ell = builtins.max([len(s) - (len(x) - 3) for x, s in zip(ins, shapes) if "..." in x],
                         default=0)
    ell = "".join(free[:n_ell])
    ins = [_expand_ellipsis(x, len(s), ell) for x, s in zip(ins, shapes)]
    if not arrow:
        letters = "".join(ins)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1
                                   and c not in ell))
    return ins, _expand_ellipsis(out, len(ell) + len(out) - 3, ell) if "..." in out else out


def _einsum_fwd(*xs, ins, out):
    return np.einsum(",".join(ins) + "->" + out, *xs, optimize=len(xs) > 2), (xs, ins, out)


def _einsum_vjp(i, g, r):
    xs, ins, out = r
    target = ins[i]
    if len(set(target)) != len(target):
        raise LookupError(f"einsum: no gradient for operand {i} with a repeated index "
                          f"({target!r}); take its diagonal with linalg.diag_part first.")
    others = [s for j, s in enumerate(ins) if j != i]
    known = set(out).union(*others)
    kept = "".join(c for c in target if c in known)
    eq = ",".join([out, *others]) + "->" + kept
    grad = np.einsum(eq, g, *[x for j, x in enumerate(xs) if j != i], optimize=len(xs) > 2)
    shape = tuple(n if c in known else 1 for c, n in zip(target, xs[i].shape))
    grad = np.broadcast_to(grad.reshape(shape), xs[i].shape)
    return unbroadcast(np.ascontiguousarray(grad), xs[i].shape).astype(g.dtype, copy=False)


_einsum = defop("einsum", _einsum_fwd, _einsum_vjp, variadic=True)


def einsum(equation: str, *inputs: Any, **_kwargs: Any) -> Tensor:
    """Einstein summation (`"ij,jk->ik"`, ellipses, implicit output), as `tf.einsum`."""
    tensors = [_t(x) for x in inputs]
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"einsum: all inputs must have the same dtype. Received: "
                        f"{sorted(d.name for d in dtypes)}")
    ins, out = _parse_einsum(equation, [t.shape for t in tensors])
    try:
        return _einsum(*tensors, ins=ins, out=out)
    except ValueError as e:
        raise ValueError(f"einsum: {equation!r} does not fit inputs of shapes "
                         f"{[t.shape for t in tensors]}: {e}") from None


def tensordot(a: Any, b: Any, axes: Any) -> Tensor:
    """Sum of products over `axes` (an int N: last N of a with first N of b; or two lists)."""
    a, b = _t(a), _t(b)
    if isinstance(axes, int | np.integer):
        axes = (list(builtins.range(a.ndim - int(axes), a.ndim)), list(builtins.range(int(axes))))
    ax_a, ax_b = ([int(v) % t.ndim for v in np.atleast_1d(x)] for x, t in zip(axes, (a, b)))
    la = string.ascii_lowercase[:a.ndim]
    lb = list(string.ascii_lowercase[a.ndim:a.ndim + b.ndim])
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    lb = "".join(lb)
    out = "".join(c for i, c in enumerate(la) if i not in ax_a) + "".join(
        c for j, c in enumerate(lb) if j not in ax_b)
    return einsum(f"{la},{lb}->{out}", a, b)


# -------------------------------------------------------- n-d gather/scatter


def _nd_index(indices: np.ndarray, batch_dims: int = 0) -> tuple:
    """A NumPy index tuple from TF-style [..., k] indices (with leading batch dims)."""
    lead = indices.shape[:-1]
    batch = tuple(np.arange(lead[d]).reshape([-1 if i == d else 1 for i in
                                              builtins.range(len(lead))])
                  for d in builtins.range(batch_dims))
    return batch + tuple(np.moveaxis(indices, -1, 0))


def _check_nd(indices: Any, shape: tuple, what: str, batch_dims: int = 0) -> np.ndarray:
    idx = as_array(indices)
    if idx.dtype.kind not in "iu" or idx.ndim < 1:
        raise TypeError(f"{what}: `indices` must be an int tensor of rank >= 1. Received "
                        f"dtype={idx.dtype}, shape={idx.shape}.")
    k = idx.shape[-1]
    dims = np.asarray(shape[batch_dims:batch_dims + k])
    if k > len(shape) - batch_dims or (idx.size and (np.any(idx < 0) or np.any(idx >= dims))):
        raise ValueError(f"{what}: indices {idx.reshape(-1, k).tolist()[:4]}... do not all lie "
                         f"inside shape {tuple(shape)}.")
    return idx


def _gather_nd_fwd(x, key):
    return x[key], (x.shape, key)


def _scatter_add(shape, key, g, dtype):
    out = np.zeros(shape, dtype)
    np.add.at(out, key, g)
    return out


_gather_nd = defop("gather_nd", _gather_nd_fwd,
                   lambda g, r: _scatter_add(r[0], r[1], g, g.dtype))


@graph_form()
def gather_nd(params: Any, indices: Any, batch_dims: int = 0) -> Tensor:
    """Slices of `params` at n-d `indices` ([..., k] picks along the first k axes)."""
    params = _t(params)
    idx = _check_nd(indices, params.shape, "gather_nd", int(batch_dims))
    return _gather_nd(params, key=_nd_index(idx, int(batch_dims)))


_scatter_nd = defop("scatter_nd",
                    lambda u, key, shape: (_scatter_add(shape, key, u, u.dtype), key),
                    lambda g, key: g[key])


@graph_form()
def scatter_nd(indices: Any, updates: Any, shape: Any) -> Tensor:
    """A zero tensor of `shape` with `updates` added at `indices` (duplicates sum)."""
    shape = tuple(int(s) for s in as_array(shape).reshape(-1))
    idx = _check_nd(indices, shape, "scatter_nd")
    return _scatter_nd(_t(updates), key=_nd_index(idx), shape=shape)


def _tsu_fwd(t, u, key):
    out = t.copy()
    out[key] = u
    return out, key


def _tsu_vjp_t(g, key):
    out = g.copy()
    out[key] = 0
    return out


def _tsa_fwd(t, u, key):
    out = t.copy()
    np.add.at(out, key, u)
    return out, key


_tensor_scatter_update = defop("tensor_scatter_nd_update", _tsu_fwd, _tsu_vjp_t,
                               lambda g, key: g[key])
_tensor_scatter_add = defop("tensor_scatter_nd_add", _tsa_fwd, lambda g, key: g,
                            lambda g, key: g[key])


def _scatter_args(tensor: Any, indices: Any, updates: Any, what: str):
    tensor = _t(tensor)
    idx = _check_nd(indices, tensor.shape, what)
    return tensor, ops.convert_to_tensor(updates, tensor.dtype), _nd_index(idx)


@graph_form()
def tensor_scatter_nd_update(tensor: Any, indices: Any, updates: Any) -> Tensor:
    """A copy of `tensor` with `updates` written at `indices`."""
    t, u, key = _scatter_args(tensor, indices, updates, "tensor_scatter_nd_update")
    return _tensor_scatter_update(t, u, key=key)


@graph_form()
def tensor_scatter_nd_add(tensor: Any, indices: Any, updates: Any) -> Tensor:
    """A copy of `tensor` with `updates` added at `indices` (duplicates sum)."""
    t, u, key = _scatter_args(tensor, indices, updates, "tensor_scatter_nd_add")
    return _tensor_scatter_add(t, u, key=key)


def tensor_scatter_nd_sub(tensor: Any, indices: Any, updates: Any) -> Tensor:
    """A copy of `tensor` with `updates` subtracted at `indices`."""
    return tensor_scatter_nd_add(tensor, indices, ops.negative(updates))


def boolean_mask(tensor: Any, mask: Any, axis: int | None = None) -> Tensor:
    """The entries of `tensor` where `mask` is true; mask covers axes [axis, axis + mask.ndim)."""
    tensor, m = _t(tensor), as_array(mask).astype(bool)
    axis = 0 if axis is None else int(axis) % tensor.ndim
    if m.ndim == 0 or tensor.shape[axis:axis + m.ndim] != m.shape:
        raise ValueError(f"boolean_mask: mask shape {m.shape} must match the tensor's shape "
                         f"{tensor.shape} from axis {axis}.")
    return ops.getitem(tensor, (builtins.slice(None),) * axis + (m,))


# ---------------------------------------------------------- constructors


def eye(num_rows: int, num_columns: int | None = None, batch_shape: Any = None,
        dtype: Any = np.float32) -> Tensor:
    """An identity matrix (or a batch of them)."""
    m = np.eye(int(num_rows), None if num_columns is None else int(num_columns), dtype=dtype)
    if batch_shape is not None:
        m = np.broadcast_to(m, tuple(int(b) for b in batch_shape) + m.shape).copy()
    return Tensor._wrap(m)


def linspace(start: Any, stop: Any, num: int, axis: int = 0) -> Tensor:
    """`num` evenly spaced values from start to stop inclusive (float32 for Python floats)."""
    a, b = as_array(start), as_array(stop)
    dtype = a.dtype if a.dtype.kind == "f" else np.float32
    return Tensor._wrap(np.linspace(a, b, int(num), axis=int(axis)).astype(dtype))


def meshgrid(*args: Any, indexing: str = "xy") -> list[Tensor]:
    """Coordinate grids from 1-D tensors ('xy' Cartesian or 'ij' matrix indexing)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"`indexing` must be 'xy' or 'ij'. Received: indexing={indexing!r}")
    vecs = [ops.reshape(a, [-1]) for a in args]
    axes = list(builtins.range(len(vecs)))
    if indexing == "xy" and len(vecs) > 1:
        axes[0], axes[1] = 1, 0
    shape = [0] * len(vecs)
    for v, ax in zip(vecs, axes):
        shape[ax] = v.shape[0]
    if None in shape:
        raise ValueError(f"meshgrid: in a graph, every input needs a known length. Received "
                         f"lengths {shape} (give the placeholders a static shape).")
    return [broadcast_to(ops.reshape(v, [-1 if i == ax else 1 for i in
                                         builtins.range(len(vecs))]), shape)
            for v, ax in zip(vecs, axes)]


def size(input: Any, out_type: Any = np.int32) -> Tensor:  # noqa: A002
    """Number of elements, as a scalar tensor."""
    return Tensor._wrap(np.asarray(as_array(input).size, dtype=out_type))


def rank(input: Any) -> Tensor:  # noqa: A002
    """Number of dimensions, as an int32 scalar tensor."""
    return Tensor._wrap(np.asarray(as_array(input).ndim, dtype=np.int32))


def is_tensor(x: Any) -> bool:
    """Whether `x` is a distflow tensor or variable."""
    return isinstance(x, Tensor)


def sequence_mask(lengths: Any, maxlen: Any = None, dtype: Any = bool) -> Tensor:
    """mask[..., j] = j < lengths[...]."""
    n = as_array(lengths)
    maxlen = int(n.max(initial=0)) if maxlen is None else int(as_array(maxlen))
    return Tensor._wrap((np.arange(maxlen) < n[..., None]).astype(dtype))


# ------------------------------------------------------------ clipping


def clip_by_norm(t: Any, clip_norm: Any, axes: Any = None) -> Tensor:
    """t * clip_norm / max(||t||_2, clip_norm) (norm over `axes`, all when None)."""
    t = _t(t)
    l2 = ops.sqrt(ops.reduce_sum(ops.square(t), axis=axes, keepdims=True))
    clip = ops.convert_to_tensor(clip_norm, t.dtype)
    return ops.divide(ops.multiply(t, clip), ops.maximum(l2, clip))


def global_norm(t_list: Sequence[Any]) -> Tensor:
    """sqrt(sum of squares of every entry of every tensor in the list; None skipped)."""
    parts = [ops.reduce_sum(ops.square(t)) for t in t_list if t is not None]
    if not parts:
        return ops.constant(0.0)
    return ops.sqrt(ops.add_n(parts))


def clip_by_global_norm(t_list: Sequence[Any], clip_norm: Any,
                        use_norm: Any = None) -> tuple[list, Tensor]:
    """Scales every tensor by clip_norm / max(global_norm, clip_norm).

    Returns:
        (the clipped list, with None entries kept; the global norm before clipping).
    """
    if isinstance(t_list, Tensor | np.ndarray):
        raise TypeError("clip_by_global_norm: `t_list` must be a list of tensors. Received a "
                        "single tensor; wrap it in a list.")
    norm = global_norm(t_list) if use_norm is None else _t(use_norm)
    scale = ops.divide(ops.convert_to_tensor(clip_norm, norm.dtype),
                       ops.maximum(norm, ops.convert_to_tensor(clip_norm, norm.dtype)))
    return [None if t is None else ops.multiply(t, ops.cast(scale, _t(t).dtype))
            for t in t_list], norm


# --------------------------------------------------------- functional


def _flat_out(fn: Callable, elems: Any) -> list:
    if isinstance(elems, list | tuple):
        columns = [unstack(e) for e in elems]
        return [fn(type(elems)(row)) for row in zip(*columns)]
    return [fn(e) for e in unstack(elems)]


def _stack_like(results: list) -> Any:
    first = results[0]
    if isinstance(first, list | tuple):
        return type(first)(_stack_like([r[i] for r in results])
                           for i in builtins.range(len(first)))
    if isinstance(first, dict):
        return {k: _stack_like([r[k] for r in results]) for k in first}
    return ops.stack([_t(r) for r in results])


def map_fn(fn: Callable, elems: Any, dtype: Any = None, parallel_iterations: Any = None,
           back_prop: bool = True, swap_memory: bool = False, infer_shape: bool = True,
           name: str | None = None, fn_output_signature: Any = None) -> Any:
    """Applies `fn` to each slice of `elems` along axis 0 and stacks the results.

    `elems` may be a tensor or a (nested one level) tuple/list of tensors of equal
    length; the results keep `fn`'s output structure. Runs as a Python loop, so
    gradients flow through `fn`.
    """
    results = _flat_out(fn, elems)
    if not results:
        raise ValueError("map_fn: `elems` has no elements along axis 0.")
    return _stack_like(results)


def vectorized_map(fn: Callable, elems: Any, fallback_to_while_loop: bool = True,
                   warn: bool = True) -> Any:
    """Same result as `map_fn` (distflow runs it as a loop: there is no vectoriser)."""
    return map_fn(fn, elems)


def _to_numpy(x: Any) -> Any:
    return x.numpy() if isinstance(x, Tensor) else x


def _wrap_out(out: Any, tout: Any) -> Any:
    if isinstance(out, list | tuple):
        touts = tout if isinstance(tout, list | tuple) else [tout] * len(out)
        return [_wrap_out(o, t) for o, t in zip(out, touts)]
    if out is None:
        return None
    dtype = None if tout is None else np.dtype(_np_dtype(tout))
    if isinstance(out, Tensor):  # keeps the tape's record: gradients flow through py_function
        return out if dtype is None else ops.cast(out, dtype)
    return Tensor(np.asarray(out), dtype)


def _np_dtype(dtype: Any) -> Any:
    return getattr(dtype, "as_numpy_dtype", dtype)


def py_function(func: Callable, inp: Sequence[Any], Tout: Any, name: str | None = None) -> Any:
    """Calls `func` eagerly on tensors and converts its result to `Tout`."""
    return _wrap_out(func(*[_t(x) for x in inp]), Tout)


def numpy_function(func: Callable, inp: Sequence[Any], Tout: Any, stateful: bool = True,
                   name: str | None = None) -> Any:
    """Calls `func` on NumPy arrays and converts its result to `Tout` (no gradient)."""
    return _wrap_out(func(*[_to_numpy(x) for x in inp]), Tout)


def _scalar_text(v: Any) -> str:
    if isinstance(v, np.floating):
        return np.format_float_positional(v, trim="-")
    return str(v)


def _array_text(a: np.ndarray, summarize: int | None, depth: int = 0) -> str:
    """TF's layout: space-separated, '...' between the first and last `summarize` entries."""
    if a.ndim == 0:
        return _scalar_text(a[()])
    n = a.shape[0]
    keep = n if summarize is None or summarize < 0 or n <= 2 * summarize else summarize
    parts = [_array_text(a[i], summarize, depth + 1) for i in builtins.range(keep)]
    if keep < n:
        parts += ["..."] + [_array_text(a[i], summarize, depth + 1)
                            for i in builtins.range(n - keep, n)]
    sep = " " if a.ndim == 1 else "\n" + " " * (depth + 1)
    return "[" + sep.join(parts) + "]"


def _format(x: Any, summarize: int | None) -> str:
    if isinstance(x, Tensor | np.ndarray):
        return _array_text(np.asarray(x), summarize)
    return str(x)


def print(*inputs: Any, output_stream: Any = None, summarize: int = 3,  # noqa: A001
          sep: str = " ", end: str = "\n", name: str | None = None) -> None:
    """Prints tensors' values (to stderr by default, as `tf.print`)."""
    text = sep.join(_format(x, summarize) for x in inputs) + end
    if isinstance(output_stream, str) and output_stream.startswith("file://"):
        with open(output_stream[len("file://"):], "a", encoding="utf-8") as f:
            f.write(text)
        return
    stream = {None: sys.stderr, "stdout": sys.stdout, "stderr": sys.stderr}.get(
        output_stream, output_stream) if isinstance(output_stream, str | None) else output_stream
    stream.write(text)


# ------------------------------------------------------------ more TF top-level ops


def slice(input_: Any, begin: Any, size: Any) -> Tensor:  # noqa: A001
    """input_[begin[i] : begin[i] + size[i]] on every axis (size -1: to the end)."""
    x = _t(input_)
    b = [int(v) for v in np.atleast_1d(as_array(begin))]
    s = [int(v) for v in np.atleast_1d(as_array(size))]
    if len(b) != x.ndim or len(s) != x.ndim:
        raise ValueError(f"slice: `begin` and `size` need {x.ndim} entries (one per axis). "
                         f"Received: begin={b}, size={s}")
    return ops.getitem(x, tuple(builtins.slice(lo, None if n == -1 else lo + n)
                                for lo, n in zip(b, s)))


def _bit(mask: int, i: int) -> bool:
    return bool((mask >> i) & 1)


def strided_slice(input_: Any, begin: Any, end: Any, strides: Any = None, begin_mask: int = 0,
                  end_mask: int = 0, ellipsis_mask: int = 0, new_axis_mask: int = 0,
                  shrink_axis_mask: int = 0) -> Tensor:
    """NumPy-style slicing spelled as TF's strided_slice (masks as bit fields)."""
    b = [int(v) for v in np.atleast_1d(as_array(begin))]
    e = [int(v) for v in np.atleast_1d(as_array(end))]
    st = [1] * len(b) if strides is None else [int(v) for v in np.atleast_1d(as_array(strides))]
    key = []
    for i, (lo, hi, step) in enumerate(zip(b, e, st)):
        if _bit(ellipsis_mask, i):
            key.append(Ellipsis)
        elif _bit(new_axis_mask, i):
            key.append(None)
        elif _bit(shrink_axis_mask, i):
            key.append(lo)
        else:
            key.append(builtins.slice(None if _bit(begin_mask, i) else lo,
                                      None if _bit(end_mask, i) else hi, step))
    return ops.getitem(_t(input_), tuple(key))


def unique(x: Any, out_idx: Any = np.int32) -> tuple[Tensor, Tensor]:
    """(values in first-seen order, index of each input in those values) of a 1-D tensor."""
    from collections import namedtuple

    arr = as_array(x)
    if arr.ndim != 1:
        raise ValueError(f"unique needs a 1-D tensor. Received shape {arr.shape}.")
    _, first, inverse = np.unique(arr, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    Unique = namedtuple("Unique", ["y", "idx"])
    return Unique(Tensor._wrap(arr[np.sort(first)]),
                  Tensor._wrap(rank[inverse.reshape(-1)].astype(out_idx)))


def unique_with_counts(x: Any, out_idx: Any = np.int32) -> tuple[Tensor, Tensor, Tensor]:
    """`unique` plus how often each value occurs."""
    from collections import namedtuple

    y, idx = unique(x, out_idx)
    counts = np.bincount(idx.value, minlength=y.shape[0]).astype(out_idx)
    UniqueWithCounts = namedtuple("UniqueWithCounts", ["y", "idx", "count"])
    return UniqueWithCounts(y, idx, Tensor._wrap(counts))


def searchsorted(sorted_sequence: Any, values: Any, side: str = "left",
                 out_type: Any = np.int32) -> Tensor:
    """Insertion points of `values` in each row of `sorted_sequence` (last axis)."""
    if side not in ("left", "right"):
        raise ValueError(f"`side` must be 'left' or 'right'. Received: side={side!r}")
    seq, vals = as_array(sorted_sequence), as_array(values)
    if seq.ndim == 1:
        return Tensor._wrap(np.searchsorted(seq, vals, side=side).astype(out_type))
    rows = [np.searchsorted(s, v, side=side) for s, v in
            zip(seq.reshape(-1, seq.shape[-1]), vals.reshape(-1, vals.shape[-1]))]
    return Tensor._wrap(np.stack(rows).reshape(vals.shape).astype(out_type))


def unravel_index(indices: Any, dims: Any) -> Tensor:
    """Coordinates ([len(dims), ...]) of flat indices in an array of shape `dims`."""
    idx = as_array(indices)
    out = np.unravel_index(idx, tuple(int(d) for d in as_array(dims)))
    return Tensor._wrap(np.stack(out).astype(idx.dtype))


def reverse_sequence(input: Any, seq_lengths: Any, seq_axis: int = 1,  # noqa: A002
                     batch_axis: int = 0) -> Tensor:
    """Reverses the first seq_lengths[b] entries along `seq_axis` for each batch entry b."""
    x = _t(input)
    lengths = as_array(seq_lengths)
    n = x.shape[seq_axis]
    pos = np.arange(n)[None, :]
    lens = lengths[:, None]
    src = np.where(pos < lens, lens - 1 - pos, pos)  # [batch, n]
    shape = [1] * x.ndim
    shape[batch_axis], shape[seq_axis] = x.shape[batch_axis], n
    if batch_axis > seq_axis:
        src = src.T
    index = np.broadcast_to(src.reshape(shape), x.shape)
    from distflow.math_ops import take_along_axis

    return take_along_axis(x, index, seq_axis)


def histogram_fixed_width_bins(values: Any, value_range: Any, nbins: int = 100,
                               dtype: Any = np.int32) -> Tensor:
    """The bin (0..nbins-1) of each value in `nbins` equal bins over value_range."""
    v = as_array(values).astype(np.float64)
    lo, hi = (float(a) for a in as_array(value_range))
    bins = np.floor((v - lo) / (hi - lo) * nbins)
    return Tensor._wrap(np.clip(bins, 0, nbins - 1).astype(dtype))


def histogram_fixed_width(values: Any, value_range: Any, nbins: int = 100,
                          dtype: Any = np.int32) -> Tensor:
    """Counts of values in `nbins` equal bins over value_range (outliers in the end bins)."""
    bins = histogram_fixed_width_bins(values, value_range, nbins, np.int64).value.reshape(-1)
    return Tensor._wrap(np.bincount(bins, minlength=nbins).astype(dtype))


def parallel_stack(values: Sequence[Any]) -> Tensor:
    """`stack(values, axis=0)`; as in TF it is for graphs only and raises when eager."""
    raise RuntimeError("tf.parallel_stack() is not compatible with eager execution. "
                       "Use stack(values) instead.")


def tensor_scatter_nd_max(tensor: Any, indices: Any, updates: Any) -> Tensor:
    """A copy of `tensor` with max(tensor, updates) at `indices`."""
    current = gather_nd(tensor, indices)
    return tensor_scatter_nd_update(tensor, indices, ops.maximum(current, updates))


def tensor_scatter_nd_min(tensor: Any, indices: Any, updates: Any) -> Tensor:
    """A copy of `tensor` with min(tensor, updates) at `indices`."""
    current = gather_nd(tensor, indices)
    return tensor_scatter_nd_update(tensor, indices, ops.minimum(current, updates))


def timestamp() -> Tensor:
    """Seconds since the epoch as a float64 scalar."""
    import time

    return Tensor._wrap(np.asarray(time.time(), np.float64))


def broadcast_static_shape(shape_x: Any, shape_y: Any) -> tuple:
    """The broadcast of two shapes (ValueError when incompatible)."""
    try:
        return np.broadcast_shapes(tuple(shape_x), tuple(shape_y))
    except ValueError:
        raise ValueError(f"Incompatible shapes for broadcasting: {tuple(shape_x)} and "
                         f"{tuple(shape_y)}.") from None


def broadcast_dynamic_shape(shape_x: Any, shape_y: Any) -> Tensor:
    """The broadcast of two shape vectors, as an int32 tensor."""
    out = broadcast_static_shape(as_array(shape_x).tolist(), as_array(shape_y).tolist())
    return Tensor._wrap(np.asarray(out, np.int32))



# ------------------------------------------------------- functional folds, partitions


def _first_axis_items(elems: Any) -> tuple[list, Any]:
    """Per-index items of `elems` (a tensor or a flat tuple/list of tensors) along axis 0."""
    if isinstance(elems, list | tuple):
        columns = [unstack(e) for e in elems]
        return [type(elems)(row) for row in zip(*columns)], type(elems)
    return unstack(elems), None


def _fold(fn: Callable, items: list, initializer: Any, what: str) -> Any:
    if initializer is None:
        if not items:
            raise ValueError(f"{what}: `elems` is empty and no `initializer` was given.")
        acc, items = items[0], items[1:]
    else:
        acc = initializer
    for item in items:
        acc = fn(acc, item)
    return acc


def foldl(fn: Callable, elems: Any, initializer: Any = None, parallel_iterations: int = 10,
          back_prop: bool = True, swap_memory: bool = False, name: str | None = None) -> Any:
    """fn(...fn(fn(initializer, elems[0]), elems[1])...) over axis 0 (left to right)."""
    return _fold(fn, _first_axis_items(elems)[0], initializer, "foldl")


def foldr(fn: Callable, elems: Any, initializer: Any = None, parallel_iterations: int = 10,
          back_prop: bool = True, swap_memory: bool = False, name: str | None = None) -> Any:
    """foldl from the right: fn(...fn(initializer, elems[-1])..., elems[0])."""
    return _fold(fn, _first_axis_items(elems)[0][::-1], initializer, "foldr")


def scan(fn: Callable, elems: Any, initializer: Any = None, parallel_iterations: int = 10,
         back_prop: bool = True, swap_memory: bool = False, infer_shape: bool = True,
         reverse: bool = False, name: str | None = None) -> Any:
    """Stacked accumulators a[i] = fn(a[i-1], elems[i]) (a[-1] = initializer)."""
    items, _ = _first_axis_items(elems)
    if reverse:
        items = items[::-1]
    if initializer is None:
        if not items:
            raise ValueError("scan: `elems` is empty and no `initializer` was given.")
        acc, rest, outs = items[0], items[1:], [items[0]]
    else:
        acc, rest, outs = initializer, items, []
    for item in rest:
        acc = fn(acc, item)
        outs.append(acc)
    stacked = _stack_like(outs)
    return _reverse_first_axis(stacked) if reverse else stacked


def _reverse_first_axis(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return type(x)(_reverse_first_axis(v) for v in x)
    return reverse(x, [0])


def identity_n(input: Sequence[Any], name: str | None = None) -> list[Tensor]:  # noqa: A002
    """`identity` of each tensor of a list."""
    return [identity(x) for x in input]


def shape_n(input: Sequence[Any], out_type: Any = np.int32,  # noqa: A002
            name: str | None = None) -> list[Tensor]:
    """The shape of each tensor of a list."""
    return [Tensor._wrap(np.asarray(as_array(x).shape, dtype=out_type)) for x in input]


def realdiv(x: Any, y: Any, name: str | None = None) -> Tensor:
    """x / y for real tensors (same as `divide`)."""
    return ops.divide(x, y)


def dynamic_partition(data: Any, partitions: Any, num_partitions: int,
                      name: str | None = None) -> list[Tensor]:
    """Splits `data` into `num_partitions` tensors by the partition id of each leading slice."""
    data, part = _t(data), as_array(partitions)
    if part.dtype.kind not in "iu" or (part.size and (part.min() < 0 or
                                                      part.max() >= num_partitions)):
        raise ValueError(f"dynamic_partition: `partitions` must be ints in [0, "
                         f"{num_partitions}). Received: {part.tolist()}")
    if data.shape[:part.ndim] != part.shape:
        raise ValueError(f"dynamic_partition: `partitions` shape {part.shape} must be a prefix "
                         f"of the data shape {data.shape}.")
    flat = ops.reshape(data, (-1,) + data.shape[part.ndim:])
    ids = part.reshape(-1)
    return [ops.gather(flat, np.flatnonzero(ids == i)) for i in builtins.range(num_partitions)]


def dynamic_stitch(indices: Sequence[Any], data: Sequence[Any],
                   name: str | None = None) -> Tensor:
    """merged[indices[m][i]] = data[m][i] (later entries win for repeated indices)."""
    flat_idx = np.concatenate([as_array(i).reshape(-1) for i in indices]).astype(np.int64)
    parts = [_t(d) for d in data]
    tail = parts[0].shape[as_array(indices[0]).ndim:]
    rows = ops.concat([ops.reshape(d, (-1,) + tail) for d in parts], axis=0)
    n = int(flat_idx.max()) + 1 if flat_idx.size else 0
    last = np.full(n, -1, np.int64)
    last[flat_idx] = np.arange(len(flat_idx))  # NumPy keeps the last write: later wins
    if np.any(last < 0):
        raise ValueError("dynamic_stitch: `indices` must cover 0..max(indices) without gaps.")
    return ops.gather(rows, last)


from distflow._naming import accept_names as _accept_names  # noqa: E402

_accept_names(globals())  # every op takes TF's name= keyword
