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
