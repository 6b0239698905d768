"""The few `keras.backend` functions scripts use: names, float type, fuzz factor, values."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.tensor import reset_names

_FLOATX = "float32"
_EPSILON = 1e-7


def clear_session() -> None:
    """Resets the automatic names, so new layers are named `dense`, `dense_1`, ... again.

    Existing models keep working; only names handed out afterwards change.
    """
    reset_names()


def floatx() -> str:
    """The default float type name ('float32')."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Sets the default float type name returned by `floatx()`.

    Args:
        value: 'float16', 'float32' or 'float64'.
    """
    global _FLOATX
    if value not in ("float16", "float32", "float64"):
        raise ValueError("Unknown `floatx` value. Expected one of 'float16', 'float32', "
                         f"'float64'. Received: value={value!r}")
    _FLOATX = str(np.dtype(value).name)


def epsilon() -> float:
    """The fuzz factor used to avoid divisions by zero (1e-7)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Sets the fuzz factor returned by `epsilon()`."""
    global _EPSILON
    if not isinstance(value, int | float) or value < 0:
        raise ValueError(f"`epsilon` must be a non-negative float. Received: value={value!r}")
    _EPSILON = float(value)


def image_data_format() -> str:
    """Always 'channels_last' (NHWC), the only layout distflow's layers use."""
    return "channels_last"


def get_value(x: Any) -> Any:
    """The value of a variable or tensor as a NumPy array (a copy for a variable)."""
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def set_value(x: Any, value: Any) -> None:
    """Assigns `value` to the variable `x` (e.g. `optimizer.learning_rate`), in place.

    Raises:
        TypeError: when `x` cannot be assigned (a float, a constant tensor, a schedule).
    """
    if not hasattr(x, "assign"):
        raise TypeError(f"`set_value` needs a variable (with `.assign`). Received: x={x!r} of "
                        f"type {type(x).__name__}. To change a learning rate, pass "
                        "`optimizer.learning_rate`.")
    x.assign(value)


def batch_get_value(tensors: list[Any]) -> list[Any]:
    """`get_value` of each tensor."""
    return [get_value(t) for t in tensors]


def batch_set_value(tuples: list[tuple[Any, Any]]) -> None:
    """`set_value(x, value)` for each (x, value) pair."""
    for x, value in tuples:
        set_value(x, value)


# ------------------------------------------------------------------ Keras 3's backend names


def backend() -> str:
    """The name of the array backend: 'numpy' (distflow computes with NumPy)."""
    return "numpy"


def set_image_data_format(data_format: str) -> None:
    """Accepts 'channels_last' only (the layout distflow's layers use).

    Raises:
        ValueError: for any other value (distflow has no NCHW kernels).
    """
    if data_format != "channels_last":
        raise ValueError("distflow's layers compute in 'channels_last' (NHWC) only. "
                         f"Received: data_format={data_format!r}")


def get_uid(prefix: str = "") -> int:
    """1, 2, 3, ... for successive calls with the same prefix (reset by clear_session)."""
    from distflow.tensor import unique_name

    name = unique_name(f"__uid__{prefix}")
    return int(name.rpartition("_")[2]) + 1 if name != f"__uid__{prefix}" else 1


def standardize_dtype(dtype: Any = None) -> str:
    """A dtype's canonical name ('float32', 'int64', ...); None gives `floatx()`."""
    return floatx() if dtype is None else np.dtype(getattr(dtype, "name", dtype)).name


def is_float_dtype(dtype: Any) -> bool:
    """Whether `dtype` is a floating-point type."""
    return np.dtype(standardize_dtype(dtype)).kind == "f"


def is_int_dtype(dtype: Any) -> bool:
    """Whether `dtype` is an integer type (signed or unsigned)."""
    return np.dtype(standardize_dtype(dtype)).kind in "iu"


def result_type(*dtypes: Any) -> str:
    """The dtype NumPy promotes `dtypes` to (Python floats count as `floatx()`)."""
    return np.result_type(*[floatx() if d is float else standardize_dtype(d)
                            for d in dtypes]).name


def is_keras_tensor(x: Any) -> bool:
    """Whether `x` is a symbolic tensor of the functional API (`keras.Input(...)`)."""
    from distflow.keras.keras_tensor import KerasTensor

    return isinstance(x, KerasTensor)


# ------------------------------------------------------------------ tf.keras 2's functions


def _df() -> Any:
    import distflow

    return distflow


def variable(value: Any, dtype: Any = None, name: str | None = None,
             constraint: Any = None) -> Any:
    """A `Variable` holding `value` (dtype defaults to `floatx()` for floats)."""
    arr = np.asarray(get_value(value) if hasattr(value, "numpy") else value)
    dtype = dtype or (floatx() if arr.dtype.kind == "f" else arr.dtype)
    return _df().Variable(arr.astype(dtype), name=name, constraint=constraint)


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str | None = None) -> Any:
    """A constant tensor (dtype defaults to `floatx()`)."""
    return _df().constant(value, dtype=dtype or floatx(), shape=shape)


def eval(x: Any) -> np.ndarray:  # noqa: A001 - Keras's name
    """The value of a tensor or variable as a NumPy array."""
    return get_value(x)


def int_shape(x: Any) -> tuple:
    """The static shape as a tuple (None for unknown dimensions of symbolic tensors)."""
    return tuple(x.shape)


def shape(x: Any) -> Any:
    """The dynamic shape as an int32 tensor."""
    return _df().shape(x)


def ndim(x: Any) -> int:
    """Number of axes."""
    return len(x.shape)


def dtype(x: Any) -> str:
    """The dtype name of a tensor or variable."""
    return standardize_dtype(x.dtype)


def count_params(x: Any) -> int:
    """Number of scalars in a tensor or variable."""
    return int(np.prod(x.shape))


def cast(x: Any, dtype: Any) -> Any:
    """`x` converted to `dtype`."""
    return _df().cast(x, dtype)


def cast_to_floatx(x: Any) -> np.ndarray:
    """`x` as a NumPy array of `floatx()`."""
    return np.asarray(get_value(x) if hasattr(x, "numpy") else x, dtype=floatx())


def zeros(shape: Any, dtype: Any = None, name: str | None = None) -> Any:
    """A variable of zeros (as tf.keras 2 returned)."""
    return variable(np.zeros(shape, dtype or floatx()), name=name)


def ones(shape: Any, dtype: Any = None, name: str | None = None) -> Any:
    """A variable of ones (as tf.keras 2 returned)."""
    return variable(np.ones(shape, dtype or floatx()), name=name)


def random_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
                  seed: int | None = None) -> Any:
    """A tensor of normal draws (distflow's global generator unless `seed` is given)."""
    return _df().random.normal(shape, mean=mean, stddev=stddev, dtype=dtype or floatx(),
                               seed=seed)


def random_uniform(shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None,
                   seed: int | None = None) -> Any:
    """A tensor of uniform draws in [minval, maxval)."""
    return _df().random.uniform(shape, minval=minval, maxval=maxval, dtype=dtype or floatx(),
                                seed=seed)


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
                     seed: int | None = None) -> Any:
    """Normal draws redrawn beyond two standard deviations."""
    return _df().random.truncated_normal(shape, mean=mean, stddev=stddev,
                                         dtype=dtype or floatx(), seed=seed)


def random_normal_variable(shape: Any, mean: float, scale: float, dtype: Any = None,
                           name: str | None = None, seed: int | None = None) -> Any:
    """A variable initialised with normal draws."""
    return variable(random_normal(shape, mean, scale, dtype, seed), name=name)


def random_uniform_variable(shape: Any, low: float, high: float, dtype: Any = None,
                            name: str | None = None, seed: int | None = None) -> Any:
    """A variable initialised with uniform draws."""
    return variable(random_uniform(shape, low, high, dtype, seed), name=name)


def _reduction(name: str) -> Any:
    def reduce(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return getattr(_df(), f"reduce_{name}")(x, axis=axis, keepdims=keepdims)
    reduce.__name__ = {"variance": "var"}.get(name, name)
    reduce.__doc__ = f"reduce_{name} over `axis` (all axes for None)."
    return reduce


mean, sum, max, min, std, var = (  # noqa: A001 - Keras's names
    _reduction(n) for n in ("mean", "sum", "max", "min", "std", "variance"))


def clip(x: Any, min_value: Any, max_value: Any) -> Any:
    """Elementwise clip to [min_value, max_value] (max_value < min_value clips to min_value)."""
    return _df().clip_by_value(x, min_value, np.maximum(min_value, max_value))


def dot(x: Any, y: Any) -> Any:
    """Matrix product of the last axis of `x` with the first (2-D) or second-last of `y`."""
    return _df().matmul(x, y)


def concatenate(tensors: Any, axis: int = -1) -> Any:
    """Concatenation along `axis` (default: the last)."""
    return _df().concat(list(tensors), axis=axis)


def argmax(x: Any, axis: int = -1) -> Any:
    """tf.keras 2's argmax: along the last axis by default (tf.argmax's default is 0)."""
    return _df().argmax(x, axis=axis)


def argmin(x: Any, axis: int = -1) -> Any:
    """tf.keras 2's argmin: along the last axis by default."""
    return _df().argmin(x, axis=axis)


def l2_normalize(x: Any, axis: Any = None) -> Any:
    """x / sqrt(max(sum(x**2, axis), 1e-12))."""
    return _df().nn.l2_normalize(x, axis=axis)


def permute_dimensions(x: Any, pattern: Any) -> Any:
    """Transpose by `pattern`."""
    return _df().transpose(x, list(pattern))


def flatten(x: Any) -> Any:
    """All elements in one axis."""
    return _df().reshape(x, (-1,))


def batch_flatten(x: Any) -> Any:
    """(batch, everything else)."""
    return _df().reshape(x, (x.shape[0], -1))


def update(x: Any, new_x: Any) -> Any:
    """`x.assign(new_x)`."""
    return x.assign(new_x)


def update_add(x: Any, increment: Any) -> Any:
    """`x.assign_add(increment)`."""
    return x.assign_add(increment)


def update_sub(x: Any, decrement: Any) -> Any:
    """`x.assign_sub(decrement)`."""
    return x.assign_sub(decrement)


def _delegate(target: str, keras_name: str | None = None) -> Any:
    def fn(*args: Any, **kwargs: Any) -> Any:
        obj: Any = _df()
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj(*args, **kwargs)
    fn.__name__ = keras_name or target.rpartition(".")[2]
    fn.__doc__ = f"distflow.{target} (tf.keras 2's backend name)."
    return fn


(abs, square, sqrt, exp, log, sign, round, maximum, minimum, equal, not_equal, greater,  # noqa: A001
 greater_equal, less, less_equal, reshape, transpose, expand_dims, squeeze, stack, tile,
 gather, one_hot, zeros_like, ones_like, stop_gradient, sigmoid, tanh, relu, softmax,
 softplus, elu) = (
    _delegate(n) for n in (
        "abs", "square", "sqrt", "exp", "log", "sign", "round", "maximum", "minimum", "equal",
        "not_equal", "greater", "greater_equal", "less", "less_equal", "reshape", "transpose",
        "expand_dims", "squeeze", "stack", "tile", "gather", "one_hot", "zeros_like",
        "ones_like", "stop_gradient", "nn.sigmoid", "nn.tanh", "nn.relu", "nn.softmax",
        "nn.softplus", "nn.elu"))
