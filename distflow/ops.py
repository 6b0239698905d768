"""Primitive ops: each forward declared beside its vector-Jacobian products.

A primitive's forward takes NumPy arrays (plus keyword parameters) and returns
`(output, residuals)`; the residuals are the only buffers kept for the
backward pass. Each differentiable input has one VJP `(g, residuals) -> grad`
(None: no gradient defined, which raises a clear error if one is needed).
Ops built from primitives (var, std, stack, split, expand_dims, ...) need no
rule of their own. Every broadcasting op undoes broadcasting with `unbroadcast`.

This module holds the arithmetic, unary math, reductions, comparisons and the
Tensor operators; `primitive` (the registry and argument conversion), `shape_ops`
and `softmax_ops` hold the rest, and everything is re-exported here: `ops.<name>`
and `distflow.ops.REGISTRY` are the one namespace of the core ops.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distflow import intra_op
from distflow.primitive import (  # noqa: F401  (re-exported: the op registry is one namespace)
    REGISTRY,
    Primitive,
    _norm_axis,
    _pair,
    _t,
    cast,
    constant,
    convert_to_tensor,
    defop,
    unbroadcast,
)
from distflow.shape_ops import (  # noqa: F401  (re-exported: the op registry is one namespace)
    concat,
    concatenate,
    embedding_lookup,
    expand_dims,
    gather,
    getitem,
    one_hot,
    pad,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    tile,
    transpose,
)
from distflow.softmax_ops import (  # noqa: F401  (re-exported: the op registry is one namespace)
    _sigmoid,
    log_softmax,
    sigmoid_cross_entropy_with_logits,
    softmax,
    softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits,
)
from distflow.tensor import Tensor, Variable, as_array, graph_form
from distflow.workspace import scratch

# ------------------------------------------------------------ binary arithmetic

def _add_in_place(x: np.ndarray, y: np.ndarray) -> tuple:
    """`add`'s forward writing into x when y broadcasts over x's leading axes (a bias)."""
    if x.dtype == y.dtype and y.ndim <= x.ndim and (
            y.ndim == 0 or x.shape[x.ndim - y.ndim:] == y.shape):
        np.add(x, y, out=x)
        return x, (x.shape, y.shape)
    return x + y, (x.shape, y.shape)


_add = defop("add", lambda x, y: (x + y, (x.shape, y.shape)),
             lambda g, r: unbroadcast(g, r[0]),
             lambda g, r: unbroadcast(g, r[1]), fresh=True, in_place=_add_in_place)
_subtract = defop("subtract", lambda x, y: (x - y, (x.shape, y.shape)),
                  lambda g, r: unbroadcast(g, r[0]),
                  lambda g, r: unbroadcast(-g, r[1]), fresh=True)
_multiply = defop("multiply", lambda x, y: (x * y, (x, y)),
                  lambda g, r: unbroadcast(g * r[1], r[0].shape),
                  lambda g, r: unbroadcast(g * r[0], r[1].shape), fresh=True)


def _divide_fwd(x, y):
    out = x / y
    return out, (x.shape, y, out)


_divide = defop("divide", _divide_fwd,
                lambda g, r: unbroadcast(g / r[1], r[0]),
                lambda g, r: unbroadcast(-g * r[2] / r[1], r[1].shape))


def _power_fwd(x, y):
    out = np.power(x, y)
    return out, (x, y, out)


def _power_vjp_y(g, r):
    x, y, out = r
    safe_log = np.log(np.where(x > 0, x, 1))
    return unbroadcast(g * out * safe_log, y.shape)


_power = defop("power", _power_fwd,
               lambda g, r: unbroadcast(g * r[1] * np.power(r[0], r[1] - 1), r[0].shape),
               _power_vjp_y)


def _maximum_fwd(x, y):
    take_x = x >= y
    return np.where(take_x, x, y), (x.shape, y.shape, take_x)


def _minimum_fwd(x, y):
    take_x = x <= y
    return np.where(take_x, x, y), (x.shape, y.shape, take_x)


def _pick_vjps():
    return (lambda g, r: unbroadcast(np.where(r[2], g, 0).astype(g.dtype, copy=False), r[0]),
            lambda g, r: unbroadcast(np.where(r[2], 0, g).astype(g.dtype, copy=False), r[1]))


_maximum = defop("maximum", _maximum_fwd, *_pick_vjps())
_minimum = defop("minimum", _minimum_fwd, *_pick_vjps())


def _swap(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(-1, -2)


def _matmul_vjp_a(g, r):
    a, b = r
    if a.ndim == 2 and b.ndim == 2:
        return intra_op.matmul(g, b.T)
    if a.ndim == 1 and b.ndim == 1:
        return g * b
    if b.ndim == 1:
        return unbroadcast(g[..., None] * b, a.shape)
    if a.ndim == 1:
        return unbroadcast(np.matmul(g[..., None, :], _swap(b))[..., 0, :], a.shape)
    return unbroadcast(np.matmul(g, _swap(b)), a.shape)


def _matmul_vjp_b(g, r):
    a, b = r
    if a.ndim == 2 and b.ndim == 2:
        return intra_op.matmul(a.T, g)
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    if a.ndim == 1:
        return unbroadcast(a[:, None] * g[..., None, :], b.shape)
    if b.ndim == 1:
        return unbroadcast(np.matmul(_swap(a), g[..., None])[..., 0], b.shape)
    return unbroadcast(np.matmul(_swap(a), g), b.shape)


def _matmul_fwd(a: np.ndarray, b: np.ndarray):
    out = intra_op.matmul(a, b) if a.ndim == 2 and b.ndim == 2 else np.matmul(a, b)
    return out, (a, b)


def channel_sum(g: np.ndarray) -> np.ndarray:
    """g summed over every axis but the last, as one matrix-vector product (NumPy's own
    reduction over leading axes is several times slower for few channels), with BLAS at
    one thread (the same sum on any number of threads; no BLAS threads woken)."""
    rows = g.reshape(-1, g.shape[-1])
    with intra_op.one_blas_thread():
        return np.ones(rows.shape[0], dtype=g.dtype) @ rows


_matmul = defop("matmul", _matmul_fwd, _matmul_vjp_a, _matmul_vjp_b, fresh=True)


def add(x: Any, y: Any) -> Tensor:
    """Elementwise x + y with broadcasting."""
    return _add(*_pair(x, y))


def subtract(x: Any, y: Any) -> Tensor:
    """Elementwise x - y with broadcasting."""
    return _subtract(*_pair(x, y))


def multiply(x: Any, y: Any) -> Tensor:
    """Elementwise x * y with broadcasting."""
    return _multiply(*_pair(x, y))


def divide(x: Any, y: Any) -> Tensor:
    """Elementwise true division; integers give float64 (float32 for 8- and 16-bit
    ones), as `tf.math.divide`."""
    x, y = _pair(x, y)
    if x.dtype.kind != "f":
        wide = x.dtype.kind == "b" or x.dtype.itemsize <= 2
        x, y = cast(x, np.float32 if wide else np.float64), cast(y, np.float32 if wide
                                                                 else np.float64)
    return _divide(x, y)


def power(x: Any, y: Any) -> Tensor:
    """Elementwise x ** y."""
    return _power(*_pair(x, y))


def maximum(x: Any, y: Any) -> Tensor:
    """Elementwise maximum (the gradient goes to x on ties)."""
    return _maximum(*_pair(x, y))


def minimum(x: Any, y: Any) -> Tensor:
    """Elementwise minimum (the gradient goes to x on ties)."""
    return _minimum(*_pair(x, y))


def _rank(t: Tensor) -> int | None:
    """A tensor's rank (None: a symbolic tensor of unknown rank)."""
    return t.shape.rank if t._symbolic else t.value.ndim


def matmul(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False) -> Tensor:
    """Matrix product with NumPy's batching and broadcasting rules."""
    a, b = _pair(a, b)
    if transpose_a:
        a = swapaxes(a, -1, -2)
    if transpose_b:
        b = swapaxes(b, -1, -2)
    if _rank(a) == 0 or _rank(b) == 0:
        raise ValueError(f"matmul needs inputs of rank >= 1. Received shapes {a.shape} and "
                         f"{b.shape}; use multiply for scalars.")
    return _matmul(a, b)


# --------------------------------------------------------------- unary math

def _unary(name: str, fn: Callable, vjp: Callable | None, keep: str):
    """Registers an elementwise op whose VJP needs its input ('x') or output ('out')."""
    def forward(x):
        out = fn(x)
        return out, (x if keep == "x" else out if keep == "out" else x.shape)
    prim = defop(name, forward, vjp)

    def op(x: Any) -> Tensor:
        return prim(_t(x))
    op.__name__ = name
    op.__doc__ = f"Elementwise {name}."
    return op


negative = _unary("negative", np.negative, lambda g, r: -g, "shape")
exp = _unary("exp", np.exp, lambda g, out: g * out, "out")
log = _unary("log", np.log, lambda g, x: g / x, "x")
sqrt = _unary("sqrt", np.sqrt, lambda g, out: g / (2 * out), "out")
square = _unary("square", np.square, lambda g, x: 2 * g * x, "x")
abs = _unary("abs", np.abs, lambda g, x: g * np.sign(x), "x")  # noqa: A001
sign = _unary("sign", np.sign, lambda g, shape: np.zeros(shape, g.dtype), "shape")
tanh = _unary("tanh", np.tanh, lambda g, out: g * (1 - out * out), "out")
_ZERO_ROW = 8192  # elements of the row of zeros `rectify` compares against
_zero_rows: dict[np.dtype, np.ndarray] = {}


def rectify(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0) elementwise, into `out` (which may be `x`) or a new array.

    NumPy's maximum against a scalar runs about 4x slower than against an array, so a
    contiguous float array is compared row by row with a broadcast row of zeros (in
    chunks of rows on the intra-op threads when it is large).
    """
    rows = x.size // _ZERO_ROW
    if not rows or x.dtype.kind != "f" or not (x.flags.c_contiguous and (
            out is None or out.flags.c_contiguous)):
        return np.maximum(x, 0, out=out)
    if out is None:
        out = np.empty(x.shape, x.dtype)
    zeros = _zero_rows.get(x.dtype)
    if zeros is None:
        zeros = _zero_rows[x.dtype] = np.zeros(_ZERO_ROW, x.dtype)
    flat, dst, bulk = x.reshape(-1), out.reshape(-1), rows * _ZERO_ROW

    def piece(r0: int, r1: int) -> None:
        a, b = r0 * _ZERO_ROW, r1 * _ZERO_ROW
        np.maximum(flat[a:b].reshape(-1, _ZERO_ROW), zeros,
                   out=dst[a:b].reshape(-1, _ZERO_ROW))
    intra_op.over_rows(rows, x.size, piece)
    np.maximum(flat[bulk:], 0, out=dst[bulk:])
    return out


def relu_grad(g: np.ndarray, out: np.ndarray, result: np.ndarray | None = None) -> np.ndarray:
    """g where `out` (ReLU's output) is positive, else 0, into `result` (which may be g)
    or a new array; the mask in a scratch buffer; chunks of the first axis on the
    intra-op threads when the arrays are large."""
    mask = scratch("relu_mask", out.shape, bool)
    if not out.ndim or g.shape != out.shape:
        return np.multiply(g, np.greater(out, 0, out=mask), out=result)
    if result is None:
        result = np.empty(out.shape, np.result_type(g.dtype, mask.dtype))

    def piece(b0: int, b1: int) -> None:
        np.multiply(g[b0:b1], np.greater(out[b0:b1], 0, out=mask[b0:b1]),
                    out=result[b0:b1])
    intra_op.over_rows(out.shape[0], out.size, piece)
    return result


def _relu_vjp(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    return relu_grad(g, out)


relu = _unary("relu", rectify, _relu_vjp, "out")
REGISTRY["relu"].in_place = lambda x: (rectify(x, out=x),) * 2  # the output is the residual
round = _unary("round", np.round, None, "shape")  # noqa: A001  (no gradient, as documented)
rsqrt = _unary("rsqrt", lambda x: 1 / np.sqrt(x), lambda g, out: -0.5 * g * out ** 3, "out")


sigmoid = _unary("sigmoid", _sigmoid, lambda g, out: g * out * (1 - out), "out")


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


softplus = _unary("softplus", _softplus, lambda g, x: g * _sigmoid(x), "x")

_leaky_relu = defop(
    "leaky_relu",
    lambda x, alpha: (np.where(x > 0, x, alpha * x).astype(x.dtype, copy=False), (x > 0, alpha)),
    lambda g, r: np.where(r[0], g, r[1] * g).astype(g.dtype, copy=False))


def leaky_relu(features: Any, alpha: float = 0.2) -> Tensor:
    """max(x, alpha * x), as `tf.nn.leaky_relu` (default alpha 0.2)."""
    return _leaky_relu(_t(features), alpha=float(alpha))


def _elu_fwd(x, alpha):
    pos = x > 0
    out = np.where(pos, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)
    return out, (pos, out, alpha)


_elu = defop("elu", _elu_fwd,
             lambda g, r: np.where(r[0], g, g * (r[1] + r[2])).astype(g.dtype, copy=False))


def elu(features: Any, alpha: float = 1.0) -> Tensor:
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _elu(_t(features), alpha=float(alpha))


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def selu(features: Any) -> Tensor:
    """Scaled ELU (composite of elu and multiply)."""
    return multiply(elu(features, _SELU_ALPHA), _SELU_SCALE)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf via the complementary-error-function Chebyshev fit (rel. error < 1.2e-7)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (
        0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (
            1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1 - erfc, erfc - 1)


def _gelu_fwd(x, approximate):
    if approximate:
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
        th = np.tanh(inner)
        return (0.5 * x * (1 + th)).astype(x.dtype, copy=False), (x, th, True)
    cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
    return (x * cdf).astype(x.dtype, copy=False), (x, cdf, False)


def _gelu_vjp(g, r):
    x, aux, approximate = r
    if approximate:
        dinner = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
        d = 0.5 * (1 + aux) + 0.5 * x * (1 - aux * aux) * dinner
    else:
        d = aux + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return (g * d).astype(g.dtype, copy=False)


_gelu = defop("gelu", _gelu_fwd, _gelu_vjp)


def gelu(features: Any, approximate: bool = False) -> Tensor:
    """Gaussian error linear unit; `approximate=True` uses the tanh form."""
    return _gelu(_t(features), approximate=bool(approximate))


def _clip_fwd(x, lo, hi):
    inside = (x >= lo) & (x <= hi)
    return np.clip(x, lo, hi).astype(x.dtype, copy=False), inside


_clip = defop("clip", _clip_fwd, lambda g, inside: g * inside)


@graph_form("args", ("clip_value_min", "clip_value_max"))
def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any) -> Tensor:
    """Clips values to [min, max]; the gradient is zero where clipping happened."""
    t = _t(t)
    lo, hi = as_array(clip_value_min, t.dtype), as_array(clip_value_max, t.dtype)
    if np.any(lo > hi):
        raise ValueError(f"clip: `clip_value_min` ({lo}) must not exceed `clip_value_max` ({hi}).")
    return _clip(t, lo=lo, hi=hi)


clip = clip_by_value

def _where_fwd(x, y, cond):
    return np.where(cond, x, y), (x.shape, y.shape, cond)


_where = defop("where", _where_fwd,
               lambda g, r: unbroadcast(np.where(r[2], g, 0).astype(g.dtype, copy=False), r[0]),
               lambda g, r: unbroadcast(np.where(r[2], 0, g).astype(g.dtype, copy=False), r[1]))


def where(condition: Any, x: Any = None, y: Any = None) -> Tensor:
    """Selects from x where condition holds, else from y (broadcasting).

    With only `condition`, returns the indices of true elements (int64, shape [n, rank]).
    """
    if x is None and y is None:
        return _true_indices(condition)
    # a symbolic condition stays a tensor: the graph passes its value when it runs
    cond = condition if getattr(condition, "_symbolic", False) else \
        as_array(condition).astype(bool, copy=False)
    x, y = _pair(x, y)
    return _where(x, y, cond=cond)


@graph_form(differentiable=False)
def _true_indices(condition: Any) -> Tensor:
    return Tensor._wrap(np.argwhere(as_array(condition).astype(bool, copy=False)))


# ---------------------------------------------------------------- reductions

def _keep_shape(shape: tuple, axis: Any) -> tuple:
    if axis is None:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand(g: np.ndarray, shape: tuple, axis: Any) -> np.ndarray:
    """Broadcasts a reduced gradient back to `shape` (materialised: cheaper than a view)."""
    out = np.empty(shape, dtype=g.dtype)
    np.copyto(out, g.reshape(_keep_shape(shape, axis)))
    return out


def _sum_fwd(x, axis, keepdims):
    return np.add.reduce(x, axis=axis, keepdims=keepdims), (x.shape, axis)


def _sum_vjp(g, r):
    return _expand(g, r[0], r[1])


def _mean_fwd(x, axis, keepdims):
    if x.dtype.kind != "f":
        out = np.mean(x, axis=axis, keepdims=keepdims).astype(x.dtype)
        return out, (x.shape, axis, 1)
    total = np.add.reduce(x, axis=axis, keepdims=keepdims)
    count = x.size // builtins.max(total.size, 1) if x.size else 1
    return total / x.dtype.type(count), (x.shape, axis, count)


def _mean_vjp(g, r):
    shape, axis, count = r
    return _expand(g / g.dtype.type(count), shape, axis)


def _extreme_fwd(fn):
    def forward(x, axis, keepdims):
        best = fn(x, axis=axis, keepdims=True)
        hit = x == best
        count = hit.sum(axis=axis, keepdims=True)
        out = best if keepdims else (best.reshape(()) if axis is None
                                     else np.squeeze(best, axis=axis))
        return out, (hit, count, axis)
    return forward


def _extreme_vjp(g, r):
    hit, count, axis = r
    g = g.reshape(_keep_shape(hit.shape, axis))
    return (hit * (g / count)).astype(g.dtype, copy=False)


def _logsumexp_fwd(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    lse = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    out = lse if keepdims else np.squeeze(lse, axis=axis) if axis is not None else lse.reshape(())
    return out, (np.exp(x - lse), axis)


def _logsumexp_vjp(g, r):
    soft, axis = r
    return g.reshape(_keep_shape(soft.shape, axis)) * soft


_REDUCTIONS = {
    "sum": defop("sum", _sum_fwd, _sum_vjp),
    "mean": defop("mean", _mean_fwd, _mean_vjp),
    "max": defop("max", _extreme_fwd(np.max), _extreme_vjp),
    "min": defop("min", _extreme_fwd(np.min), _extreme_vjp),
    "logsumexp": defop("logsumexp", _logsumexp_fwd, _logsumexp_vjp),
}


def _reduce(kind: str, x: Any, axis: Any, keepdims: bool) -> Tensor:
    x = _t(x)
    if isinstance(axis, (list, Tensor)):
        axis = _norm_axis(axis)
    if x.dtype.kind == "b" and kind in ("mean", "sum"):
        x = cast(x, np.float32 if kind == "mean" else np.int32)
    return _REDUCTIONS[kind](x, axis=axis, keepdims=bool(keepdims))


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over `axis` (all axes when None)."""
    return _reduce("sum", x, axis, keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over `axis` (all axes when None)."""
    return _reduce("mean", x, axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over `axis`; the gradient is shared equally among tied maxima."""
    return _reduce("max", x, axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over `axis`; the gradient is shared equally among tied minima."""
    return _reduce("min", x, axis, keepdims)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) computed stably."""
    return _reduce("logsumexp", x, axis, keepdims)


def var(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population variance (composite)."""
    x = _t(x)
    centered = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centered), axis=axis, keepdims=keepdims)


def std(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population standard deviation (composite)."""
    return sqrt(var(x, axis=axis, keepdims=keepdims))


reduce_sum, reduce_mean, reduce_max, reduce_min = sum, mean, max, min
reduce_logsumexp, reduce_variance, reduce_std = logsumexp, var, std


# ------------------------------------------------------ comparisons and misc


def _compare(fn: Callable) -> Callable:
    def op(x: Any, y: Any) -> Tensor:
        x, y = _pair(x, y)
        return Tensor._wrap(fn(x.value, y.value))
    op.__name__ = op.__qualname__ = fn.__name__
    op.__doc__ = f"Elementwise {fn.__name__} (bool result, no gradient)."
    return graph_form(differentiable=False)(op)


equal, not_equal = _compare(np.equal), _compare(np.not_equal)
greater, greater_equal = _compare(np.greater), _compare(np.greater_equal)
less, less_equal = _compare(np.less), _compare(np.less_equal)
logical_and, logical_or = _compare(np.logical_and), _compare(np.logical_or)


def _arg_reduce(fn: Callable, x: Any, axis: Any, output_type: Any, what: str) -> Tensor:
    out = np.dtype(output_type)
    if out not in (np.int32, np.int64):
        raise TypeError(f"`output_type` of {what} must be int32 or int64. Received: "
                        f"output_type={output_type!r}")
    arr = as_array(x)
    if arr.ndim == 0:
        raise ValueError(f"{what} needs a tensor of rank >= 1. Received a scalar.")
    return Tensor._wrap(fn(arr, axis=0 if axis is None else int(axis)).astype(out))


@graph_form(differentiable=False)
def argmax(x: Any, axis: int | None = None, output_type: Any = np.int64,
           name: str | None = None) -> Tensor:
    """Index of the largest value along `axis` (TF's default: axis 0), no gradient.

    Args:
        x: a tensor of rank >= 1.
        axis: the axis to reduce (None means 0, as in `tf.argmax`).
        output_type: int64 (default) or int32.
        name: ignored (TF compatibility).
    """
    return _arg_reduce(np.argmax, x, axis, output_type, "argmax")


@graph_form(differentiable=False)
def argmin(x: Any, axis: int | None = None, output_type: Any = np.int64,
           name: str | None = None) -> Tensor:
    """Index of the smallest value along `axis` (TF's default: axis 0), no gradient.

    Args: as for `argmax`.
    """
    return _arg_reduce(np.argmin, x, axis, output_type, "argmin")


def zeros(shape: Any, dtype: Any = np.float32) -> Tensor:
    """A tensor of zeros."""
    return Tensor._wrap(np.zeros(tuple(np.atleast_1d(as_array(shape)).tolist())
                                 if np.ndim(shape) else shape, dtype=dtype))


def ones(shape: Any, dtype: Any = np.float32) -> Tensor:
    """A tensor of ones."""
    return Tensor._wrap(np.ones(tuple(np.atleast_1d(as_array(shape)).tolist())
                                if np.ndim(shape) else shape, dtype=dtype))


@graph_form(differentiable=False)
def zeros_like(x: Any, dtype: Any = None) -> Tensor:
    """Zeros with the shape (and dtype) of x."""
    return Tensor._wrap(np.zeros_like(as_array(x), dtype=dtype))


@graph_form(differentiable=False)
def ones_like(x: Any, dtype: Any = None) -> Tensor:
    """Ones with the shape (and dtype) of x."""
    return Tensor._wrap(np.ones_like(as_array(x), dtype=dtype))


def fill(dims: Sequence[int], value: Any) -> Tensor:
    """A tensor of shape `dims` filled with `value`."""
    return Tensor._wrap(np.full(tuple(dims), as_array(value)))


def range(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None) -> Tensor:  # noqa: A001
    """Like `tf.range`: without `dtype`, int32 for int arguments and float32 when any is a
    float (TF's inference), never NumPy's int64/float64."""
    arr = np.arange(start, limit, delta) if limit is not None else np.arange(start)
    if dtype is None:
        dtype = np.float32 if arr.dtype.kind == "f" else np.int32 if arr.dtype.kind in "iu" \
            else None
    return Tensor(arr, dtype)


@graph_form(differentiable=False)
def shape(x: Any) -> Tensor:
    """The shape of x as an int32 tensor."""
    return Tensor._wrap(np.asarray(as_array(x).shape, dtype=np.int32))


def norm(x: Any, ord: Any = "euclidean", axis: Any = None, keepdims: bool = False) -> Tensor:
    """Euclidean (default) or L1 norm (composite)."""
    if ord in ("euclidean", 2, "fro"):
        return sqrt(sum(square(x), axis=axis, keepdims=keepdims))
    if ord == 1:
        return sum(abs(x), axis=axis, keepdims=keepdims)
    raise ValueError(f"norm supports ord='euclidean' or 1. Received: ord={ord!r}")


def add_n(inputs: Sequence[Any]) -> Tensor:
    """Sum of a list of tensors."""
    total = _t(inputs[0])
    for x in inputs[1:]:
        total = add(total, x)
    return total


# ------------------------------------------------------- Tensor operators


def _install_operators() -> None:
    T = Tensor
    T.__add__ = add
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = subtract
    T.__rsub__ = lambda a, b: subtract(b, a)
    T.__mul__ = multiply
    T.__rmul__ = lambda a, b: multiply(b, a)
    T.__truediv__ = divide
    T.__rtruediv__ = lambda a, b: divide(b, a)
    T.__matmul__ = matmul
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__pow__ = power
    T.__rpow__ = lambda a, b: power(b, a)
    T.__neg__ = lambda a: negative(a)
    T.__pos__ = lambda a: a
    T.__abs__ = lambda a: abs(a)
    T.__getitem__ = lambda a, k: getitem(a, k)
    T.__eq__ = lambda a, b: equal(a, b)
    T.__ne__ = lambda a, b: not_equal(a, b)
    T.__gt__ = lambda a, b: greater(a, b)
    T.__ge__ = lambda a, b: greater_equal(a, b)
    T.__lt__ = lambda a, b: less(a, b)
    T.__le__ = lambda a, b: less_equal(a, b)
    T.__hash__ = lambda a: id(a)
    for name in ("exp", "log", "sqrt", "square", "tanh", "sigmoid", "relu", "sum", "mean",
                 "max", "min", "var", "std", "reshape", "transpose", "expand_dims", "squeeze",
                 "logsumexp", "clip"):
        setattr(T, name, globals()[name])
    T.T = property(lambda a: transpose(a))
    T.astype = lambda a, dtype: cast(a, dtype)


_install_operators()
Variable.__hash__ = Tensor.__hash__
