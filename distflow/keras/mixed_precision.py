"""`keras.mixed_precision`: dtype policies and `LossScaleOptimizer`.

distflow computes every layer in one dtype. The global policy sets the dtype
of layers created without a `dtype` argument: "float32" (default), "float64",
"float16" or "bfloat16"-free NumPy dtypes. The mixed policies ("mixed_float16",
"mixed_bfloat16": float16 computations on float32 variables) are not
implemented and raise rather than train in a precision the script did not ask
for. `LossScaleOptimizer` works (see `distflow.optimizers.loss_scale`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.optimizers.loss_scale import LossScaleOptimizer

_GLOBAL = "float32"


class DTypePolicy:
    """A layer dtype policy: `name`, `compute_dtype` and `variable_dtype` (all one dtype).

    Raises:
        NotImplementedError: for the mixed policies (see the module docstring).
        ValueError: for a name that is not a NumPy float dtype.
    """

    def __init__(self, name: str | None = None):
        name = _GLOBAL if name is None else str(getattr(name, "name", name))
        if name.startswith("mixed_"):
            raise NotImplementedError(
                f"The '{name}' policy (float16 computations on float32 variables) is not "
                "implemented: distflow computes each layer in one dtype. Use 'float32', or "
                "'float16' for everything in half precision.")
        try:
            dtype = np.dtype(name)
        except TypeError:
            raise ValueError(f"Cannot convert '{name}' to a dtype policy: use 'float32', "
                             "'float64' or 'float16'.") from None
        if dtype.kind != "f":
            raise ValueError(f"A dtype policy must be a float type. Received: name={name!r}")
        self.name = dtype.name

    @property
    def compute_dtype(self) -> str:
        """The dtype layers compute in."""
        return self.name

    @property
    def variable_dtype(self) -> str:
        """The dtype of the layers' variables."""
        return self.name

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
    """The dtype name layers get by default (used by `Layer`)."""
    return _GLOBAL


set_dtype_policy = set_global_policy
dtype_policy = global_policy

__all__ = ["DTypePolicy", "LossScaleOptimizer", "Policy", "dtype_policy", "global_policy",
           "set_dtype_policy", "set_global_policy"]
