"""Elementwise math, scans, reductions and segment ops of `tf.math`, with their VJPs.

Primitives register in the same registry as `distflow.ops` (`defop`); the
rest are composites of primitives and need no rule of their own. Names,
arguments and result dtypes follow `tf.math` (checked against TensorFlow
2.21 by tests/test_math_ops.py with the committed goldens).
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple
from typing import Any

import numpy as np

from distflow import ops
from distflow.ops import _pair, _t, _unary, defop, unbroadcast
from distflow.segment_ops import (  # noqa: F401  (re-exported: this module's names stay)
    _check_sorted,
    _num_segments,
    _segment_counts,
    _segment_ids,
    segment_max,
    segment_mean,
    segment_min,
    segment_sum,
    unsorted_segment_max,
    unsorted_segment_mean,
    unsorted_segment_min,
    unsorted_segment_sum,
)
from distflow.tensor import Tensor, as_array, graph_form, stop_gradient

# --------------------------------------------------------------- unary math


def _zeros_vjp(g, shape):
    return np.zeros(shape, g.dtype)


def _ufunc(fn) -> np.ufunc:
    """An exact elementwise function from the `math` module, keeping the input dtype."""
    vec = np.frompyfunc(fn, 1, 1)
    return lambda x: vec(x).astype(x.dtype if x.dtype.kind == "f" else np.float32)


_erf_np = _ufunc(math.erf)
_lgamma_np = _ufunc(math.lgamma)


def _digamma_np(x: np.ndarray) -> np.ndarray:
    """psi(x): reflection below 0.5, recurrence up to 6, then the asymptotic series."""
    x = np.asarray(x, np.float64)
    reflect = x < 0.5
    z = np.where(reflect, 1 - x, x)
    acc = np.zeros_like(z)
    for _ in builtins.range(6):
        small = z < 6
        acc -= np.where(small, 1 / z, 0)
        z = np.where(small, z + 1, z)
    inv2 = 1 / (z * z)
    series = np.log(z) - 0.5 / z - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (
        1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    out = acc + series
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reflect, out - np.pi / np.tan(np.pi * x), out)


sin = _unary("sin", np.sin, lambda g, x: g * np.cos(x), "x")
cos = _unary("cos", np.cos, lambda g, x: -g * np.sin(x), "x")
tan = _unary("tan", np.tan, lambda g, out: g * (1 + out * out), "out")
asin = _unary("asin", np.arcsin, lambda g, x: g / np.sqrt(1 - x * x), "x")
acos = _unary("acos", np.arccos, lambda g, x: -g / np.sqrt(1 - x * x), "x")
atan = _unary("atan", np.arctan, lambda g, x: g / (1 + x * x), "x")
sinh = _unary("sinh", np.sinh, lambda g, x: g * np.cosh(x), "x")
cosh = _unary("cosh", np.cosh, lambda g, x: g * np.sinh(x), "x")
asinh = _unary("asinh", np.arcsinh, lambda g, x: g / np.sqrt(x * x + 1), "x")
acosh = _unary("acosh", np.arccosh, lambda g, x: g / np.sqrt(x * x - 1), "x")
atanh = _unary("atanh", np.arctanh, lambda g, x: g / (1 - x * x), "x")
log1p = _unary("log1p", np.log1p, lambda g, x: g / (1 + x), "x")
expm1 = _unary("expm1", np.expm1, lambda g, out: g * (out + 1), "out")
reciprocal = _unary("reciprocal", lambda x: 1 / x, lambda g, out: -g * out * out, "out")
erf = _unary("erf", _erf_np,
             lambda g, x: g * (2 / math.sqrt(math.pi)) * np.exp(-x * x), "x")
erfc = _unary("erfc", lambda x: (1 - _erf_np(x)).astype(x.dtype),
              lambda g, x: -g * (2 / math.sqrt(math.pi)) * np.exp(-x * x), "x")
lgamma = _unary("lgamma", _lgamma_np,
                lambda g, x: g * _digamma_np(x).astype(g.dtype), "x")
floor = _unary("floor", np.floor, _zeros_vjp, "shape")
ceil = _unary("ceil", np.ceil, _zeros_vjp, "shape")


digamma = _unary("digamma", lambda x: _digamma_np(x).astype(x.dtype), None, "shape")


def _softsign_vjp(g, x):
    return g / np.square(1 + np.abs(x))


softsign = _unary("softsign", lambda x: x / (1 + np.abs(x)), _softsign_vjp, "x")

# ------------------------------------------------------------- binary math


def _atan2_fwd(y, x):
    return np.arctan2(y, x), (y, x)


def _atan2_den(r):
    return r[0] * r[0] + r[1] * r[1]


_atan2 = defop("atan2", _atan2_fwd,
               lambda g, r: unbroadcast(g * r[1] / _atan2_den(r), r[0].shape),
               lambda g, r: unbroadcast(-g * r[0] / _atan2_den(r), r[1].shape))


def atan2(y: Any, x: Any) -> Tensor:
    """Elementwise arctan(y / x) in the quadrant of (x, y)."""
    return _atan2(*_pair(y, x))


def _floormod_fwd(x, y):
    return np.mod(x, y), (x.shape, y, np.floor_divide(x, y))


_floormod = defop("floormod", _floormod_fwd,
                  lambda g, r: unbroadcast(g, r[0]),
                  lambda g, r: unbroadcast(-g * r[2], r[1].shape))


def floormod(x: Any, y: Any) -> Tensor:
    """Remainder of floor division (the sign of `y`), as `tf.math.floormod`."""
    return _floormod(*_int_pair(x, y))


mod = floormod


def _int_pair(x: Any, y: Any) -> tuple[Tensor, Tensor]:
    """The operands of an integer-capable division; integer division by zero raises, as TF."""
    x, y = _pair(x, y)
    if y.dtype.kind in "iu" and np.any(y.value == 0):
        raise ValueError("Integer division by zero.")
    return x, y


def floordiv(x: Any, y: Any) -> Tensor:
    """floor(x / y) in the inputs' dtype (no gradient)."""
    x, y = _int_pair(x, y)
    return Tensor._wrap(np.floor_divide(x.value, y.value))


def truncatediv(x: Any, y: Any) -> Tensor:
    """Integer division rounding towards zero."""
    x, y = _int_pair(x, y)
    return Tensor._wrap((np.trunc(x.value / y.value)).astype(x.dtype))


def truncatemod(x: Any, y: Any) -> Tensor:
    """Remainder with the sign of `x` (C's fmod)."""
    x, y = _int_pair(x, y)
    return Tensor._wrap(np.fmod(x.value, y.value))


def _divide_no_nan_fwd(x, y):
    zero = y == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(zero, 0, x / np.where(zero, 1, y)).astype(x.dtype, copy=False)
    return out, (x, y, zero, out)


def _dnn_vjp_x(g, r):
    x, y, zero, _ = r
    return unbroadcast(np.where(zero, 0, g / np.where(zero, 1, y)).astype(g.dtype), x.shape)


def _dnn_vjp_y(g, r):
    x, y, zero, out = r
    return unbroadcast(np.where(zero, 0, -g * out / np.where(zero, 1, y)).astype(g.dtype),
                       y.shape)


_divide_no_nan = defop("divide_no_nan", _divide_no_nan_fwd, _dnn_vjp_x, _dnn_vjp_y)


def divide_no_nan(x: Any, y: Any) -> Tensor:
    """x / y, and 0 where y is 0 (with a zero gradient there)."""
    return _divide_no_nan(*_pair(x, y))


def squared_difference(x: Any, y: Any) -> Tensor:
    """(x - y) ** 2 elementwise."""
    return ops.square(ops.subtract(x, y))


def pow(x: Any, y: Any) -> Tensor:  # noqa: A001
    """x ** y elementwise (`tf.math.pow`)."""
    return ops.power(x, y)


def xlogy(x: Any, y: Any) -> Tensor:
    """x * log(y), and 0 where x is 0."""
    x, y = _pair(x, y)
    safe = ops.where(ops.equal(x, 0), ops.ones_like(y), y)
    return ops.where(ops.equal(x, 0), ops.zeros_like(x), ops.multiply(x, ops.log(safe)))


def l2_normalize(x: Any, axis: Any = None, epsilon: float = 1e-12) -> Tensor:
    """x / sqrt(max(sum(x ** 2, axis), epsilon)), as `tf.math.l2_normalize`."""
    x = _t(x)
    sq = ops.reduce_sum(ops.square(x), axis=axis, keepdims=True)
    return ops.multiply(x, ops.rsqrt(ops.maximum(sq, epsilon)))


# -------------------------------------------------------- predicates, logic


def _predicate(name: str, fn) -> Any:
    def op(x: Any) -> Tensor:
        return Tensor._wrap(fn(as_array(x)))
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} (bool result, no gradient)."
    return op


is_nan = _predicate("is_nan", np.isnan)
is_inf = _predicate("is_inf", np.isinf)
is_finite = _predicate("is_finite", np.isfinite)
logical_not = _predicate("logical_not", np.logical_not)


def logical_xor(x: Any, y: Any) -> Tensor:
    """Elementwise exclusive or of two bool tensors."""
    return Tensor._wrap(np.logical_xor(as_array(x), as_array(y)))


# ----------------------------------------------------------------- scans


def _cum(fn, x: np.ndarray, axis: int, exclusive: bool, reverse: bool, identity: float):
    if reverse:
        x = np.flip(x, axis)
    out = fn(x, axis=axis)
    if exclusive:
        pad = np.full_like(np.take(out, [0], axis=axis), identity)
        out = np.concatenate([pad, np.delete(out, -1, axis=axis)], axis=axis)
    return np.flip(out, axis) if reverse else out


def _cumsum_fwd(x, axis, exclusive, reverse):
    return _cum(np.cumsum, x, axis, exclusive, reverse, 0).astype(x.dtype, copy=False), (
        axis, exclusive, reverse)


_cumsum = defop("cumsum", _cumsum_fwd,
                lambda g, r: _cum(np.cumsum, g, r[0], r[1], not r[2], 0))


def _cumprod_fwd(x, axis, exclusive, reverse):
    out = _cum(np.cumprod, x, axis, exclusive, reverse, 1).astype(x.dtype, copy=False)
    return out, (x, out, axis, exclusive, reverse)


def _cumprod_vjp(g, r):
    x, out, axis, exclusive, reverse = r
    return _cum(np.cumsum, g * out, axis, exclusive, not reverse, 0) / x


_cumprod = defop("cumprod", _cumprod_fwd, _cumprod_vjp)


def cumsum(x: Any, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Cumulative sum along `axis` (`exclusive` starts at 0, `reverse` runs backwards)."""
    x = _t(x)
    return _cumsum(x, axis=int(axis) % builtins.max(x.ndim, 1), exclusive=bool(exclusive),
                   reverse=bool(reverse))


def cumprod(x: Any, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Cumulative product along `axis` (gradient as TF's: divides by x, so x must be non-zero)."""
    x = _t(x)
    return _cumprod(x, axis=int(axis) % builtins.max(x.ndim, 1), exclusive=bool(exclusive),
                    reverse=bool(reverse))


def cumulative_logsumexp(x: Any, axis: int = 0, exclusive: bool = False,
                         reverse: bool = False) -> Tensor:
    """log(cumsum(exp(x))) computed with a shift by the maximum (composite)."""
    x = _t(x)
    m = stop_gradient(ops.reduce_max(x))
    return ops.add(ops.log(cumsum(ops.exp(ops.subtract(x, m)), axis, exclusive, reverse)), m)


# ------------------------------------------------------------- reductions


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(builtins.range(ndim))
    axis = ops._norm_axis(axis)
    axis = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted({int(a) % builtins.max(ndim, 1) for a in axis}))


def _prod_fwd(x, axes, keepdims):
    rest = [i for i in builtins.range(x.ndim) if i not in axes]
    moved = np.transpose(x, rest + list(axes))
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    left = np.cumprod(np.concatenate([np.ones_like(flat[..., :1]), flat[..., :-1]], -1), -1)
    right = np.flip(np.cumprod(np.flip(np.concatenate(
        [flat[..., 1:], np.ones_like(flat[..., :1])], -1), -1), -1), -1)
    others = (left * right).reshape(moved.shape)
    out = np.prod(x, axis=axes, keepdims=keepdims)
    return out, (np.transpose(others, np.argsort(rest + list(axes))), axes)


def _prod_vjp(g, r):
    others, axes = r
    return others * np.expand_dims(g.reshape([n for i, n in enumerate(others.shape)
                                              if i not in axes]), axes)


_reduce_prod = defop("reduce_prod", _prod_fwd, _prod_vjp)


def reduce_prod(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Product over `axis` (all axes when None); the gradient handles zeros exactly."""
    x = _t(input_tensor)
    return _reduce_prod(x, axes=_axes(axis, x.ndim), keepdims=bool(keepdims))


def reduce_euclidean_norm(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """sqrt(sum(x ** 2)) over `axis`."""
    return ops.sqrt(ops.reduce_sum(ops.square(input_tensor), axis=axis, keepdims=keepdims))


def _bool_reduce(fn, name: str):
    @graph_form(differentiable=False)
    def op(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
        x = as_array(input_tensor)
        if x.dtype != bool:
            raise TypeError(f"{name} expects a bool tensor. Received dtype={x.dtype}; "
                            "compare first (e.g. `x > 0`) or cast to bool.")
        return Tensor._wrap(fn(x, axis=_axes(axis, x.ndim), keepdims=bool(keepdims)))
    op.__name__ = name
    op.__doc__ = f"Logical {fn.__name__} over `axis` (bool input and result)."
    return op


reduce_any = _bool_reduce(np.any, "reduce_any")
reduce_all = _bool_reduce(np.all, "reduce_all")


def count_nonzero(input: Any, axis: Any = None, keepdims: bool = False,  # noqa: A002
                  dtype: Any = np.int64) -> Tensor:
    """Number of non-zero elements over `axis` (int64 by default, as TF)."""
    x = as_array(input)
    return Tensor._wrap(np.asarray(np.count_nonzero(x, axis=_axes(axis, x.ndim),
                                                    keepdims=bool(keepdims)), dtype=dtype))


def _arg_reduce(fn):
    def op(input: Any, axis: Any = None, output_type: Any = np.int64) -> Tensor:  # noqa: A002
        x = as_array(input)
        axis = 0 if axis is None else int(as_array(axis))
        return Tensor._wrap(fn(x, axis=axis).astype(output_type))
    return op


argmax = _arg_reduce(np.argmax)
argmin = _arg_reduce(np.argmin)


# ------------------------------------------------------ counting, ranking


def bincount(arr: Any, weights: Any = None, minlength: Any = None, maxlength: Any = None,
             dtype: Any = np.int32, axis: Any = None) -> Tensor:
    """Counts of each value in a non-negative int tensor (weighted sums with `weights`)."""
    values = as_array(arr).reshape(-1)
    if values.size and values.min() < 0:
        raise ValueError(f"bincount: `arr` must be non-negative. Received min={values.min()}.")
    w = None if weights is None else as_array(weights).reshape(-1)
    out = np.bincount(values, weights=w, minlength=int(minlength or 0))
    if maxlength is not None:
        out = out[:int(maxlength)]
    return Tensor._wrap(out.astype(dtype if w is None else as_array(weights).dtype))


def confusion_matrix(labels: Any, predictions: Any, num_classes: Any = None, weights: Any = None,
                     dtype: Any = np.int32) -> Tensor:
    """[num_classes, num_classes] counts: rows are labels, columns predictions."""
    lab, pred = as_array(labels).reshape(-1), as_array(predictions).reshape(-1)
    if lab.shape != pred.shape:
        raise ValueError(f"confusion_matrix: `labels` and `predictions` must have the same size. "
                         f"Received: {lab.size} and {pred.size}.")
    n = int(num_classes) if num_classes is not None else int(builtins.max(
        lab.max(initial=-1), pred.max(initial=-1))) + 1
    out = np.zeros((n, n), dtype)
    w = np.ones(lab.shape, dtype) if weights is None else as_array(weights).reshape(-1)
    np.add.at(out, (lab, pred), w.astype(dtype))
    return Tensor._wrap(out)


TopKV2 = namedtuple("TopKV2", ["values", "indices"])

_take_along = defop(
    "take_along_axis",
    lambda x, idx, axis: (np.take_along_axis(x, idx, axis), (x.shape, idx, axis)),
    lambda g, r: _put_along(g, r))


def _put_along(g, r):
    shape, idx, axis = r
    out = np.zeros(shape, g.dtype)
    np.put_along_axis(out, idx, g, axis)
    return out


@graph_form()
def take_along_axis(x: Any, indices: Any, axis: int) -> Tensor:
    """Picks values of `x` at `indices` along `axis` (unique indices along that axis)."""
    return _take_along(_t(x), idx=as_array(indices), axis=int(axis))


@graph_form()
def top_k(input: Any, k: int = 1, sorted: bool = True) -> TopKV2:  # noqa: A002
    """The k largest entries of the last axis and their int32 indices (ties: lower index)."""
    x = _t(input)
    k = int(k)
    if x.ndim == 0 or not 0 <= k <= x.shape[-1]:
        raise ValueError(f"top_k: `k` must be in [0, {x.shape[-1] if x.ndim else 0}] for input "
                         f"of shape {x.shape}. Received: k={k}")
    idx = np.argsort(-x.value, axis=-1, kind="stable")[..., :k]
    return TopKV2(take_along_axis(x, idx, -1), Tensor._wrap(idx.astype(np.int32)))


def in_top_k(targets: Any, predictions: Any, k: int) -> Tensor:
    """Whether each target class is among the k highest predictions (ties count as in)."""
    pred, tgt = as_array(predictions), as_array(targets).reshape(-1)
    if pred.ndim != 2 or pred.shape[0] != tgt.shape[0]:
        raise ValueError(f"in_top_k: `predictions` must be [batch, classes] with one target per "
                         f"row. Received shapes {pred.shape} and {tgt.shape}.")
    target_score = pred[np.arange(len(tgt)), tgt]
    higher = (pred > target_score[:, None]).sum(axis=1)
    return Tensor._wrap((higher < int(k)) & np.isfinite(target_score))


def polyval(coeffs: list, x: Any) -> Tensor:
    """Evaluates the polynomial sum(coeffs[i] * x ** (n - 1 - i)) by Horner's rule."""
    out = ops.zeros_like(x)
    for c in coeffs:
        out = ops.add(ops.multiply(out, x), c)
    return out


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + exp(-x))."""
    return ops.sigmoid(x)


def conj(x: Any) -> Tensor:
    """Complex conjugate: the identity on the real tensors distflow holds."""
    return ops.reshape(x, _t(x).shape)


real = conj


def add_n(inputs: list) -> Tensor:
    """Sum of a list of tensors of equal shape."""
    return ops.add_n(inputs)


def scalar_mul(scalar: Any, x: Any) -> Tensor:
    """scalar * x."""
    return ops.multiply(scalar, x)


def _bitwise(fn):
    """Logical on bools, bitwise on integers (as TF's tensor operators)."""
    return lambda a, b: Tensor._wrap(fn(as_array(a), as_array(b)))


def _install_operators() -> None:
    """TF tensors' `%`, `//`, `&`, `|`, `^` and `~` (ones the core does not define yet)."""
    ops_by_name = {
        "__mod__": floormod, "__rmod__": lambda a, b: floormod(b, a),
        "__floordiv__": floordiv, "__rfloordiv__": lambda a, b: floordiv(b, a),
        "__and__": _bitwise(np.bitwise_and), "__rand__": _bitwise(np.bitwise_and),
        "__or__": _bitwise(np.bitwise_or), "__ror__": _bitwise(np.bitwise_or),
        "__xor__": _bitwise(np.bitwise_xor), "__rxor__": _bitwise(np.bitwise_xor),
        "__invert__": lambda a: Tensor._wrap(np.invert(a.value)),
    }
    for name, fn in ops_by_name.items():
        if name not in vars(Tensor):
            setattr(Tensor, name, fn)


_install_operators()


# ------------------------------------------------------------- more tf.math


def accumulate_n(inputs: list, shape: Any = None, tensor_dtype: Any = None) -> Tensor:
    """Sum of a list of tensors (same as add_n)."""
    return ops.add_n(inputs)


def invert_permutation(x: Any) -> Tensor:
    """y with y[x[i]] = i."""
    p = as_array(x)
    if sorted(p.tolist()) != list(builtins.range(len(p))):
        raise ValueError(f"invert_permutation needs a permutation of 0..n-1. Received: "
                         f"{p.tolist()}")
    out = np.empty_like(p)
    out[p] = np.arange(len(p), dtype=p.dtype)
    return Tensor._wrap(out)


def is_non_decreasing(x: Any) -> Tensor:
    """Whether x (flattened) never decreases."""
    return Tensor._wrap(np.asarray(np.all(np.diff(as_array(x).reshape(-1)) >= 0)))


def is_strictly_increasing(x: Any) -> Tensor:
    """Whether x (flattened) always increases."""
    return Tensor._wrap(np.asarray(np.all(np.diff(as_array(x).reshape(-1)) > 0)))


def reciprocal_no_nan(x: Any) -> Tensor:
    """1 / x, and 0 where x is 0."""
    x = _t(x)
    return divide_no_nan(ops.ones_like(x), x)


def zero_fraction(value: Any) -> Tensor:
    """The fraction of zeros in `value` (float32)."""
    v = as_array(value)
    return Tensor._wrap(np.asarray(np.mean(v == 0) if v.size else 0.0, np.float32))


def xdivy(x: Any, y: Any) -> Tensor:
    """x / y, and 0 where x is 0."""
    x, y = _pair(x, y)
    safe = ops.where(ops.equal(x, 0), ops.ones_like(y), y)
    return ops.where(ops.equal(x, 0), ops.zeros_like(x), ops.divide(x, safe))


def xlog1py(x: Any, y: Any) -> Tensor:
    """x * log1p(y), and 0 where x is 0."""
    x, y = _pair(x, y)
    safe = ops.where(ops.equal(x, 0), ops.zeros_like(y), y)
    return ops.where(ops.equal(x, 0), ops.zeros_like(x), ops.multiply(x, log1p(safe)))


def log_sigmoid(x: Any) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), computed stably."""
    return ops.negative(ops.softplus(ops.negative(x)))


def rint(x: Any) -> Tensor:
    """Round half to even (no gradient), as `tf.math.rint`."""
    return ops.round(x)


def lbeta(x: Any) -> Tensor:
    """log(|Beta(x)|) over the last axis: sum(lgamma(x)) - lgamma(sum(x))."""
    x = _t(x)
    return ops.subtract(ops.reduce_sum(lgamma(x), axis=-1), lgamma(ops.reduce_sum(x, axis=-1)))


def _erfinv_np(y: np.ndarray) -> np.ndarray:
    """Inverse erf: Giles' single-precision start, then two Newton steps in float64."""
    y = np.asarray(y, np.float64)
    w = -np.log((1.0 - y) * (1.0 + y))
    small = w < 5.0
    ws, wl = w - 2.5, np.sqrt(np.maximum(w, 5.0)) - 3.0
    ps = np.polyval([2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                     0.00021858087, -0.00125372503, -0.00417768164, 0.246640727,
                     1.50140941], ws)
    pl = np.polyval([-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                     0.00573950773, -0.0076224613, 0.00943887047, 1.00167406,
                     2.83297682], wl)
    x = np.where(small, ps, pl) * y
    for _ in builtins.range(2):
        err = _erf_np(x) - y
        x = x - err / (2 / math.sqrt(math.pi) * np.exp(-x * x))
    return x


_HALF_SQRT_PI = math.sqrt(math.pi) / 2
erfinv = _unary("erfinv", lambda x: _erfinv_np(x).astype(x.dtype),
                lambda g, out: g * _HALF_SQRT_PI * np.exp(out * out), "out")
erfcinv = _unary("erfcinv", lambda x: _erfinv_np(1.0 - x.astype(np.float64)).astype(x.dtype),
                 lambda g, out: -g * _HALF_SQRT_PI * np.exp(out * out), "out")
ndtri = _unary("ndtri",
               lambda x: (math.sqrt(2) * _erfinv_np(2 * x.astype(np.float64) - 1)).astype(x.dtype),
               lambda g, out: g * math.sqrt(2 * math.pi) * np.exp(0.5 * out * out), "out")


def unsorted_segment_sqrt_n(data: Any, segment_ids: Any, num_segments: Any) -> Tensor:
    """Segment sums divided by sqrt(segment size) (0 for empty segments)."""
    data, ids = _t(data), _segment_ids(segment_ids, "unsorted_segment_sqrt_n")
    num = _num_segments(ids, num_segments)
    total = unsorted_segment_sum(data, ids, num)
    return ops.divide(total, np.sqrt(np.maximum(_segment_counts(ids, num, data), 1)))


def approx_max_k(operand: Any, k: int, reduction_dimension: int = -1, **_: Any) -> tuple:
    """Exact top-k along the last axis (TF's approximation is an accelerator speed-up)."""
    if reduction_dimension not in (-1, _t(operand).ndim - 1):
        raise ValueError("approx_max_k supports the last axis only.")
    values, indices = top_k(operand, k)
    return values, indices


def approx_min_k(operand: Any, k: int, reduction_dimension: int = -1, **_: Any) -> tuple:
    """Exact bottom-k along the last axis."""
    values, indices = approx_max_k(ops.negative(operand), k, reduction_dimension)
    return ops.negative(values), indices


def imag(x: Any) -> Tensor:
    """The imaginary part: zeros for the real tensors distflow holds."""
    return ops.zeros_like(x)


def angle(x: Any) -> Tensor:
    """The complex argument: 0 for non-negative reals, pi for negative ones."""
    v = as_array(x)
    return Tensor._wrap(np.where(v < 0, np.pi, 0.0).astype(v.dtype if v.dtype.kind == "f"
                                                            else np.float32))



def nextafter(x1: Any, x2: Any) -> Tensor:
    """The next representable value after x1 in the direction of x2."""
    a, b = _pair(x1, x2)
    return Tensor._wrap(np.nextafter(a.value, b.value))


bessel_i0 = _unary("bessel_i0", lambda x: np.i0(x).astype(x.dtype), None, "shape")
bessel_i0e = _unary("bessel_i0e", lambda x: (np.exp(-np.abs(x)) * np.i0(x)).astype(x.dtype),
                    None, "shape")



def _seg_prod_fwd(data, ids, num):
    flat = data.reshape((ids.size,) + data.shape[ids.ndim:])
    keep = ids.reshape(-1) >= 0
    out = np.ones((num,) + flat.shape[1:], data.dtype)
    np.multiply.at(out, ids.reshape(-1)[keep], flat[keep])
    return out, None


_unsorted_segment_prod = defop("unsorted_segment_prod", _seg_prod_fwd, None)


def unsorted_segment_prod(data: Any, segment_ids: Any, num_segments: Any) -> Tensor:
    """Product per segment (1 for empty segments); negative ids are dropped. No gradient:
    differentiating through it raises."""
    ids = _segment_ids(segment_ids, "unsorted_segment_prod")
    return _unsorted_segment_prod(_t(data), ids=ids, num=_num_segments(ids, num_segments))


def segment_prod(data: Any, segment_ids: Any) -> Tensor:
    """Product of rows per sorted segment id (1 for empty segments). No gradient."""
    ids = _segment_ids(segment_ids, "segment_prod")
    _check_sorted(ids, "segment_prod")
    return unsorted_segment_prod(data, ids, None)


from distflow._naming import accept_names as _accept_names  # noqa: E402

_accept_names(globals())  # every op takes TF's name= keyword


# ------------------------------------------------------------------ casts


def saturate_cast(value: Any, dtype: Any, name: str | None = None) -> Tensor:
    """`cast` after clamping `value` into `dtype`'s range (no wrap-around), as TF.

    Gradients flow where the value was inside the range (clip then cast).
    """
    x = _t(value)
    target = np.dtype(dtype)
    if x.dtype.kind in "fiu" and target.kind in "fiu":
        lo, hi = _range(target)
        src_lo, src_hi = _range(np.dtype(x.dtype))
        if lo > src_lo or hi < src_hi:
            x = ops.clip_by_value(x, _inside(builtins.max(lo, src_lo), x.dtype),
                                  _inside(builtins.min(hi, src_hi), x.dtype))
    return ops.cast(x, target)


def _range(dt: np.dtype) -> tuple:
    info = np.finfo(dt) if dt.kind == "f" else np.iinfo(dt)
    return int(info.min) if dt.kind in "iu" else float(info.min), \
        int(info.max) if dt.kind in "iu" else float(info.max)


def _inside(bound: int | float, dtype: Any) -> np.ndarray:
    """`bound` in `dtype`, rounded toward zero when `dtype` cannot hold it exactly
    (int32's max is 2**31 - 1; the nearest float32 is 2**31, which overflows)."""
    b = np.asarray(bound).astype(dtype)
    if b.dtype.kind == "f" and builtins.abs(float(b)) > builtins.abs(bound):
        b = np.nextafter(b, b.dtype.type(0))
    return b


def bitcast(input: Any, type: Any, name: str | None = None) -> Tensor:  # noqa: A002
    """The same bytes read as `type` (no gradient), as TF's shape rule: a smaller type
    adds a last dimension of size in/out bytes, a larger one consumes a last
    dimension of exactly that size."""
    a = np.ascontiguousarray(as_array(input))
    target = np.dtype(type)
    if target.itemsize < a.dtype.itemsize:
        return Tensor._wrap(a.view(target).reshape(*a.shape, a.dtype.itemsize // target.itemsize))
    ratio = target.itemsize // a.dtype.itemsize
    if ratio > 1 and (a.ndim == 0 or a.shape[-1] != ratio):
        raise ValueError(f"bitcast to {target.name} needs a last dimension of {ratio} "
                         f"{a.dtype.name} values. Received: shape {a.shape}")
    out = a.view(target)
    return Tensor._wrap(out.reshape(a.shape[:-1]) if ratio > 1 else out)
