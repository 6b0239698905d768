"""Small callbacks: `TerminateOnNaN` and `LambdaCallback`."""

from __future__ import annotations

import math
from collections.abc import Callable

from distflow.keras.callbacks.base import Callback, print_msg, scalar_or_none

_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
          "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
          "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
          "on_predict_batch_begin", "on_predict_batch_end")
_ALIASES = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = scalar_or_none((logs or {}).get("loss"))
        if loss is not None and not math.isfinite(loss):
            print_msg(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback made of plain functions, one per hook.

    Epoch hooks are called as `f(epoch, logs)`, batch hooks as `f(batch, logs)`,
    the begin/end hooks of train/test/predict as `f(logs)`.

    Example:
        `LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))`

    Args:
        **hooks: functions named after the hooks (`on_epoch_end=...`; `on_batch_begin`
            and `on_batch_end` mean the training-batch hooks).
    """

    def __init__(self, **hooks: Callable | None):
        super().__init__()
        for name, function in hooks.items():
            target = _ALIASES.get(name, name)
            if target not in _HOOKS:
                raise ValueError(f"Unknown hook for LambdaCallback: {name!r}. Use one of "
                                 f"{', '.join(_HOOKS + tuple(_ALIASES))}.")
            if function is None:
                continue
            if not callable(function):
                raise ValueError(f"`{name}` must be a function. Received: {name}={function!r}")
            # An instance attribute shadows the no-op method of `Callback`.
            setattr(self, target, function)
