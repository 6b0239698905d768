"""`tf.debugging`: the assertions TF also puts at top level, and `check_numerics`.

Each raises `distflow.errors.InvalidArgumentError` (TF's class) when the check
fails on eager values; `assert_rank` raises `ValueError`, TF's static check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.control_ops import (  # noqa: F401  (tf.debugging's names)
    Assert,
    assert_equal,
    assert_greater,
    assert_less,
    assert_rank,
    ensure_shape,
)
from distflow.errors import InvalidArgumentError
from distflow.reorder_ops import identity
from distflow.tensor import Tensor, as_array


def check_numerics(tensor: Any, message: str, name: str | None = None) -> Tensor:
    """`tensor` unchanged if it holds no NaN or Inf; else `InvalidArgumentError`
    quoting `message`, as TF."""
    a = as_array(tensor)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        what = "NaN" if np.isnan(a).any() else "Inf"
        raise InvalidArgumentError(f"{message} : Tensor had {what} values")
    return identity(tensor)
