"""`tf.bitwise`: bit operations on integer tensors (no gradients: integers only).

Results keep the inputs' dtype, as TF's; shifts past the bit width follow
NumPy (TF leaves them implementation-defined).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.tensor import Tensor, as_array


def _check_int(*xs: np.ndarray) -> None:
    for x in xs:
        if x.dtype.kind not in "iu":
            raise TypeError("tf.bitwise ops take integer tensors. "
                            f"Received: a tensor of dtype {x.dtype.name}; cast it first.")


def _binary(fn):
    def op(x: Any, y: Any, name: str | None = None) -> Tensor:
        a, b = as_array(x), as_array(y)
        _check_int(a, b)
        return Tensor._wrap(fn(a, b.astype(a.dtype)))

    op.__doc__ = f"Elementwise `{fn.__name__}` of two integer tensors (same dtype out)."
    return op


bitwise_and = _binary(np.bitwise_and)
bitwise_or = _binary(np.bitwise_or)
bitwise_xor = _binary(np.bitwise_xor)
left_shift = _binary(np.left_shift)
right_shift = _binary(np.right_shift)


def invert(x: Any, name: str | None = None) -> Tensor:
    """Flips every bit of an integer tensor (`~x`)."""
    a = as_array(x)
    _check_int(a)
    return Tensor._wrap(np.invert(a))
