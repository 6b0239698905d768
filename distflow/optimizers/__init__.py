"""Optimizers (also `distflow.keras.optimizers`): SGD, Adam, AdamW, RMSprop, Adagrad, Nadam,
Adamax, Adadelta, Ftrl, Lion, Adafactor, Lamb, Muon, ScheduleFreeAdamW, and MultiOptimizer
(per-variable optimizers from an OptimizerMap).

The arithmetic lives in `rules` as pure NumPy functions shared with the
parameter server; `schedules` holds the learning-rate schedules.
"""

from __future__ import annotations

from typing import Any

from distflow.optimizers import legacy, rules, schedules
from distflow.optimizers.base import (
    Optimizer,
    apply_override,
    deserialize_from,
    get_apply_override,
    serialize,
)
from distflow.optimizers.loss_scale import LossScaleOptimizer
from distflow.optimizers.multi import MultiOptimizer, OptimizerMap
from distflow.optimizers.muon import Muon
from distflow.optimizers.optimizers import (
    BUILTIN,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Lamb,
    Lion,
    Nadam,
    RMSprop,
    ScheduleFreeAdamW,
)

_CLASSES = {**BUILTIN, "lossscaleoptimizer": LossScaleOptimizer, "muon": Muon,
            "multioptimizer": MultiOptimizer}


def deserialize(config: dict, custom_objects: dict | None = None) -> Optimizer:
    """The optimizer described by `serialize`'s output."""
    return deserialize_from(_CLASSES, config, custom_objects)


def get(identifier: Any) -> Optimizer:
    """An optimizer from an instance, a Keras name ("adam", "sgd", ...) or a config dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _CLASSES.get(identifier.lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer {identifier!r}. Valid names: {sorted(_CLASSES)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError("Could not interpret optimizer identifier: "
                     f"{identifier!r}. Pass an Optimizer, a name such as 'adam', or a config.")


__all__ = ["SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "Adamax", "AdamW", "Ftrl", "Lamb",
           "Lion", "LossScaleOptimizer", "MultiOptimizer", "Muon", "Nadam", "Optimizer",
           "OptimizerMap", "RMSprop",
           "ScheduleFreeAdamW", "apply_override",
           "legacy", "deserialize", "get", "get_apply_override", "rules", "schedules", "serialize"]
