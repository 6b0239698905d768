"""The few `keras.backend` functions scripts use: names, float type, fuzz factor."""

from __future__ import annotations

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
