"""`keras.mixed_precision`: dtype policies and `LossScaleOptimizer`.

The global policy sets the dtypes of layers created without a `dtype` argument:
"float32" (default), "float64" or "float16" compute and store in that dtype;
"mixed_float16" keeps the variables in float32 and computes in float16, as
Keras: a layer casts its float inputs and, for the time of its call, its float
variables to float16 (the casts are differentiable, so gradients reach the
float32 variables in float32), and `compile` wraps the optimizer in a
`LossScaleOptimizer`. "mixed_bfloat16" raises: NumPy has no bfloat16.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.optimizers.loss_scale import LossScaleOptimizer

_GLOBAL = "float32"


class DTypePolicy:
    """A layer dtype policy: `name`, `compute_dtype` and `variable_dtype`.

    Raises:
        NotImplementedError: for "mixed_bfloat16" (see the module docstring).
        ValueError: for a name that is neither "mixed_float16" nor a NumPy float dtype.
    """

    def __init__(self, name: str | None = None):
        name = _GLOBAL if name is None else str(getattr(name, "name", name))
        if name == "mixed_float16":
            self.name, self._compute, self._variable = name, "float16", "float32"
            return
        if name.startswith("mixed_"):
            raise NotImplementedError(
                f"The '{name}' policy is not implemented: NumPy has no bfloat16. Use "
                "'mixed_float16' (float16 computations on float32 variables) or 'float32'.")
        try:
            dtype = np.dtype(name)
        except TypeError:
            raise ValueError(f"Cannot convert '{name}' to a dtype policy: use 'float32', "
                             "'float64', 'float16' or 'mixed_float16'.") from None
        if dtype.kind != "f":
            raise ValueError(f"A dtype policy must be a float type. Received: name={name!r}")
        self.name = self._compute = self._variable = dtype.name

    @property
    def compute_dtype(self) -> str:
        """The dtype layers compute in."""
        return self._compute

    @property
    def variable_dtype(self) -> str:
        """The dtype of the layers' variables."""
        return self._variable

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self.name}">'


Policy = DTypePolicy


def set_global_policy(policy: Any) -> None:
    """Sets the dtype of layers created afterwards without a `dtype` (see `DTypePolicy`)."""
    global _GLOBAL
    _GLOBAL = DTypePolicy(policy).name


def global_policy() -> DTypePolicy:
    """The current global policy."""
    return DTypePolicy(_GLOBAL)


def default_dtype() -> str:
    """The policy name layers get by default (used by `Layer`)."""
    return _GLOBAL


set_dtype_policy = set_global_policy
dtype_policy = global_policy

__all__ = ["DTypePolicy", "LossScaleOptimizer", "Policy", "dtype_policy", "global_policy",
           "set_dtype_policy", "set_global_policy"]
