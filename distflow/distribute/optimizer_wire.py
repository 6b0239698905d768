"""What the parameter servers are told about an optimizer, and a gradient as they take it.

Shared by the strategies (`strategy`) and the coordinator's worker threads
(`coordinator`), below both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.tensor import Tensor, Variable


def _array(g: Any, v: Variable) -> np.ndarray:
    arr = g.value if isinstance(g, Tensor) else np.asarray(g)
    return arr if arr.dtype == v.value.dtype else arr.astype(v.value.dtype)


def learning_rate_change(optimizer: Any, told: float | None) -> float | None:
    """`optimizer`'s rate if it is a number other than `told` (what the servers were told)."""
    source = (optimizer._learning_rate_source()
              if hasattr(optimizer, "_learning_rate_source") else None)
    if isinstance(source, bool) or not isinstance(source, int | float):
        return None  # a schedule: the servers evaluate the one they were given
    return None if float(source) == told else float(source)


def optimizer_config(optimizer: Any) -> dict:
    """The msgpack-safe optimizer description the servers build their update rule from."""
    from distflow.optimizers import schedules

    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's
    config = dict(optimizer.get_config())
    lr = config.pop("learning_rate", None)
    hp = {k: v for k, v in config.items()
          if isinstance(v, bool | int | float) and not isinstance(v, str)}
    return {"name": getattr(optimizer, "rule_name", "") or type(optimizer).__name__.lower(),
            "hp": hp,
            "learning_rate": schedules.serialize(optimizer._learning_rate_source())
            if hasattr(optimizer, "_learning_rate_source") else lr}
