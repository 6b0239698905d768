"""`keras.ops`: the NumPy-style functions Keras's guides call, with Keras 3's signatures.

A curated set (what the "customize fit", GAN and VAE guides and typical custom
layers use), each differentiable through distflow's ops. Where Keras's default
differs from TensorFlow's it is Keras's: `argmax`/`argmin` flatten when `axis`
is None, `concatenate` joins along axis 0, `shape` returns a tuple, `ones` and
`zeros` default to `floatx()`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import distflow as _df
from distflow.keras import backend as _backend
from distflow.tensor import Tensor


def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None) -> Tensor:
    """`x` as a tensor (floats default to float32)."""
    return _df.convert_to_tensor(x, dtype=dtype)


def convert_to_numpy(x: Any) -> np.ndarray:
    """`x` as a NumPy array."""
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def shape(x: Any) -> tuple:
    """The shape as a tuple of ints (Keras 3 returns a tuple, not a tensor)."""
    return tuple(x.shape)


def _float_dtype(dtype: Any) -> Any:
    return _backend.floatx() if dtype is None else dtype


def ones(shape: Any, dtype: Any = None) -> Tensor:
    """Ones of `shape` (dtype defaults to floatx())."""
    return _df.ones(shape, dtype=_float_dtype(dtype))


def zeros(shape: Any, dtype: Any = None) -> Tensor:
    """Zeros of `shape` (dtype defaults to floatx())."""
    return _df.zeros(shape, dtype=_float_dtype(dtype))


def arange(start: Any, stop: Any = None, step: int = 1, dtype: Any = None) -> Tensor:
    """Evenly spaced values (ints stay int32, floats floatx(), as Keras types them)."""
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None:
        dtype = "int32" if values.dtype.kind in "iu" else _backend.floatx()
    return Tensor._wrap(values.astype(dtype))


def concatenate(xs: Any, axis: int = 0) -> Tensor:
    """Join along `axis` (Keras's default: 0)."""
    return _df.concat(list(xs), axis=axis)


def stack(x: Any, axis: int = 0) -> Tensor:
    """Stack along a new `axis`."""
    return _df.stack(list(x), axis=axis)


def _reduction(name: str) -> Any:
    def reduce(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
        return getattr(_df, f"reduce_{name}")(x, axis=axis, keepdims=keepdims)
    reduce.__name__ = name
    reduce.__doc__ = f"{name} over `axis` (all axes for None)."
    return reduce


mean, sum, max, min, std, var = (  # noqa: A001 - Keras's names
    _reduction(n) for n in ("mean", "sum", "max", "min", "std", "variance"))
var.__name__ = "var"


def _arg(fn: Any, x: Any, axis: Any, keepdims: bool) -> Tensor:
    arr = np.asarray(x.value if isinstance(x, Tensor) else x)
    out = fn(arr.reshape(-1) if axis is None else arr, axis=None if axis is None else axis)
    if keepdims:
        out = np.expand_dims(out, tuple(range(arr.ndim)) if axis is None else axis)
    return Tensor._wrap(np.asarray(out, np.int32))


def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Index of the largest value (Keras: the flattened index when `axis` is None), int32."""
    return _arg(np.argmax, x, axis, keepdims)


def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Index of the smallest value (flattened when `axis` is None), int32."""
    return _arg(np.argmin, x, axis, keepdims)


def clip(x: Any, x_min: Any, x_max: Any) -> Tensor:
    """Elementwise clip to [x_min, x_max]."""
    return _df.clip_by_value(x, x_min, x_max)


def transpose(x: Any, axes: Any = None) -> Tensor:
    """Permute the axes (reversed when `axes` is None)."""
    return _df.transpose(x, None if axes is None else list(axes))


def reshape(x: Any, newshape: Any) -> Tensor:
    """`x` with shape `newshape` (-1 allowed once)."""
    return _df.reshape(x, newshape)


def where(condition: Any, x1: Any = None, x2: Any = None) -> Tensor:
    """x1 where `condition`, else x2."""
    return _df.where(condition, x1, x2)


def cast(x: Any, dtype: Any) -> Tensor:
    """`x` converted to `dtype`."""
    return _df.cast(x, dtype)


def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None) -> Tensor:
    """One-hot rows of the int tensor `x`."""
    return _df.one_hot(x, num_classes, axis=axis, dtype=_float_dtype(dtype))


def _same(name: str, target: str | None = None) -> Any:
    def fn(*args: Any, **kwargs: Any) -> Any:
        obj: Any = _df
        for part in (target or name).split("."):
            obj = getattr(obj, part)
        return obj(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"distflow.{target or name}, under Keras's name."
    return fn


(add, subtract, multiply, divide, matmul, square, sqrt, exp, log, abs, absolute, sign,  # noqa: A001
 maximum, minimum, equal, not_equal, greater, greater_equal, less, less_equal, logical_and,
 logical_or, expand_dims, squeeze, tile, ones_like, zeros_like, stop_gradient, relu, sigmoid,
 tanh, softmax, softplus, elu) = (
    _same(n, t) for n, t in (
        ("add", None), ("subtract", None), ("multiply", None), ("divide", None),
        ("matmul", None), ("square", None), ("sqrt", None), ("exp", None), ("log", None),
        ("abs", None), ("absolute", "abs"), ("sign", None), ("maximum", None),
        ("minimum", None), ("equal", None), ("not_equal", None), ("greater", None),
        ("greater_equal", None), ("less", None), ("less_equal", None),
        ("logical_and", None), ("logical_or", None), ("expand_dims", None),
        ("squeeze", None), ("tile", None), ("ones_like", None), ("zeros_like", None),
        ("stop_gradient", None), ("relu", "nn.relu"), ("sigmoid", "nn.sigmoid"),
        ("tanh", "nn.tanh"), ("softmax", "nn.softmax"), ("softplus", "nn.softplus"),
        ("elu", "nn.elu")))

__all__ = sorted(n for n in dir() if not n.startswith("_") and n not in (
    "annotations", "builtins", "np", "Any", "Tensor"))
