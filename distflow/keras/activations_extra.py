"""Keras 3's newer activations (celu, glu, the shrink and sparse families, ...).

Each is composed from differentiable core ops as Keras's TensorFlow backend
composes it, so values AND gradients (ties included) follow Keras; sparsemax is
one primitive with its own VJP (it needs a sort). `distflow.keras.activations`
re-exports every name here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops
from distflow.tensor import Tensor

__all__ = ["celu", "glu", "hard_shrink", "hard_silu", "hard_swish", "hard_tanh", "log_sigmoid",
           "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus",
           "tanh_shrink", "threshold"]


def _t(x: Any) -> Tensor:
    return ops.convert_to_tensor(x)


def _full(x: Tensor, value: float) -> Tensor:
    return ops.fill(x.shape, np.asarray(value, x.dtype))


def celu(x: Any, alpha: float = 1.0) -> Tensor:
    """Continuously differentiable ELU: max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)."""
    x = _t(x)
    negative = ops.subtract(ops.exp(ops.divide(ops.minimum(x, 0.0), alpha)), 1.0)
    return ops.add(ops.maximum(x, 0.0), ops.multiply(negative, alpha))


def glu(x: Any, axis: int = -1) -> Tensor:
    """Gated linear unit: `a * sigmoid(b)` for the two halves `a`, `b` of `x` along `axis`.

    Raises:
        ValueError: the size of `axis` is odd.
    """
    x = _t(x)
    if x.shape[axis] % 2 != 0:
        raise ValueError("axis size must be divisible by 2. "
                         f"Received: x.shape={x.shape} with axis={axis}")
    a, b = ops.split(x, 2, axis=axis)
    return ops.multiply(a, ops.sigmoid(b))


def hard_shrink(x: Any, threshold: float = 0.5) -> Tensor:
    """x where |x| > threshold, else 0."""
    x = _t(x)
    return ops.where(ops.greater(ops.abs(x), threshold), x, _full(x, 0.0))


def hard_silu(x: Any) -> Tensor:
    """x * hard_sigmoid(x), with Keras 3's hard_sigmoid relu6(x + 3) / 6."""
    x = _t(x)
    hard = ops.divide(ops.minimum(ops.relu(ops.add(x, 3.0)), 6.0), 6.0)
    return ops.multiply(x, hard)


hard_swish = hard_silu


def hard_tanh(x: Any) -> Tensor:
    """x clipped to [-1, 1]."""
    return ops.clip_by_value(_t(x), -1.0, 1.0)


def log_sigmoid(x: Any) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return ops.negative(ops.softplus(ops.negative(_t(x))))


def soft_shrink(x: Any, threshold: float = 0.5) -> Tensor:
    """x - threshold above threshold, x + threshold below -threshold, else 0."""
    x = _t(x)
    inner = ops.where(ops.less(x, -threshold), ops.add(x, threshold), _full(x, 0.0))
    return ops.where(ops.greater(x, threshold), ops.subtract(x, threshold), inner)


def sparse_plus(x: Any) -> Tensor:
    """0 for x <= -1, (x + 1)^2 / 4 for -1 < x < 1, x for x >= 1."""
    x = _t(x)
    middle = ops.multiply(ops.square(ops.add(x, 1.0)), 0.25)
    return ops.where(ops.less_equal(x, -1.0), _full(x, 0.0),
                     ops.where(ops.less(x, 1.0), middle, x))


def sparse_sigmoid(x: Any) -> Tensor:
    """0 for x <= -1, 1 for x >= 1, (x + 1) / 2 between."""
    x = _t(x)
    middle = ops.multiply(ops.add(x, 1.0), 0.5)
    return ops.where(ops.less_equal(x, -1.0), _full(x, 0.0),
                     ops.where(ops.greater_equal(x, 1.0), _full(x, 1.0), middle))


def squareplus(x: Any, b: float = 4) -> Tensor:
    """(x + sqrt(x^2 + b)) / 2."""
    x = _t(x)
    return ops.divide(ops.add(x, ops.sqrt(ops.add(ops.square(x), float(b)))), 2.0)


def tanh_shrink(x: Any) -> Tensor:
    """x - tanh(x)."""
    x = _t(x)
    return ops.subtract(x, ops.tanh(x))


def threshold(x: Any, threshold: float, default_value: float) -> Tensor:
    """x where x > threshold, else `default_value`."""
    x = _t(x)
    return ops.where(ops.greater(x, threshold), x, _full(x, default_value))


# ------------------------------------------------------------------ sparsemax

def _sparsemax_fwd(x: np.ndarray, axis: int):
    moved = np.moveaxis(x, axis, -1)
    order = np.argsort(-moved, axis=-1, kind="stable")
    ranked = np.take_along_axis(moved, order, axis=-1)
    cumsum = np.cumsum(ranked, axis=-1)
    r = np.arange(1, moved.shape[-1] + 1, dtype=x.dtype)
    support = ranked - (cumsum - 1) / r > 0
    k = support.sum(axis=-1, keepdims=True).astype(x.dtype)
    tau = (np.where(support, cumsum, 0).sum(axis=-1, keepdims=True) - 1) / k
    out = np.maximum(moved - tau, 0).astype(x.dtype)
    # d tau / d x_i: (k - rank_i) / k inside the support (each later cumsum holds x_i), else 0.
    weight_ranked = np.where(support, (k - (r - 1)) / k, 0).astype(x.dtype)
    weight = np.empty_like(weight_ranked)
    np.put_along_axis(weight, order, weight_ranked, axis=-1)
    return np.moveaxis(out, -1, axis), (np.moveaxis(out > 0, -1, axis),
                                        np.moveaxis(weight, -1, axis), axis)


def _sparsemax_vjp(g: np.ndarray, res: tuple) -> np.ndarray:
    active, weight, axis = res
    passed = np.where(active, g, 0).astype(g.dtype)
    return passed - weight * passed.sum(axis=axis, keepdims=True)


_sparsemax = ops.defop("keras_sparsemax", _sparsemax_fwd, _sparsemax_vjp)


def sparsemax(x: Any, axis: int = -1) -> Tensor:
    """Sparsemax along `axis`: max(x - tau, 0), with tau computed as Keras 3.15 computes it.

    Keras 3.15's tau is (sum over the support of the sorted cumulative sums - 1) / k,
    not (cumulative sum at k - 1) / k as in Martins et al. (2016); the two agree
    when the support has one element, and otherwise Keras's outputs do not sum
    to 1. distflow reproduces Keras's values and the gradient Keras's autodiff
    takes through them, so a ported script computes the same numbers.
    """
    x = _t(x)
    if x.ndim == 0:
        raise ValueError("sparsemax needs at least a 1-D input. Received a scalar.")
    return _sparsemax(x, axis=int(axis))
