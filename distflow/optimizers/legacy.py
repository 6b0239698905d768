"""`keras.optimizers.legacy` (tf.keras 2.11-2.15): the same optimizers, with legacy `decay`.

tf.keras 2's legacy optimizers applied `decay` as a time-based schedule,
lr_t = lr / (1 + decay * iterations); here `decay > 0` becomes exactly that
schedule (`InverseTimeDecay(lr, decay_steps=1, decay_rate=decay)`), so a script
written for them trains as it did. Everything else is the current optimizer.
"""

from __future__ import annotations

from typing import Any

from distflow.optimizers import optimizers as _current
from distflow.optimizers import schedules
from distflow.optimizers.base import _pop_legacy_kwargs


def _legacy(cls: type) -> type:
    def __init__(self: Any, learning_rate: Any = None, *args: Any, **kwargs: Any) -> None:
        decay = kwargs.pop("decay", 0.0) or 0.0
        if learning_rate is None and "lr" not in kwargs:
            learning_rate = cls.__init__.__defaults__[0]
        learning_rate = _pop_legacy_kwargs(kwargs, learning_rate)
        if decay:
            learning_rate = schedules.InverseTimeDecay(float(learning_rate), 1, float(decay))
        cls.__init__(self, learning_rate, *args, **kwargs)

    doc = (f"tf.keras 2's legacy {cls.__name__}: `{cls.__name__}` plus `decay` (lr / (1 + "
           "decay * iterations)) and `lr`.")
    return type(cls.__name__, (cls,), {"__init__": __init__, "__doc__": doc,
                                        "__module__": __name__})


SGD, Adam, RMSprop, Adagrad, Adamax, Nadam, Adadelta, Ftrl = (
    _legacy(c) for c in (_current.SGD, _current.Adam, _current.RMSprop, _current.Adagrad,
                         _current.Adamax, _current.Nadam, _current.Adadelta, _current.Ftrl))
Optimizer = _current.Optimizer

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "Adamax", "Ftrl", "Nadam", "Optimizer",
           "RMSprop"]
