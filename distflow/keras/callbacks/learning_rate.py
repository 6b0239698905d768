"""Learning-rate callbacks: `LearningRateScheduler` and `ReduceLROnPlateau`.

Both set `model.optimizer.learning_rate` to a float (which replaces a
`LearningRateSchedule` the optimizer may have had) and record the rate in the
epoch logs as "learning_rate", as Keras 3 does.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable

import numpy as np

from distflow.keras.callbacks.base import (
    Callback,
    check_non_negative_int,
    print_msg,
    resolve_mode,
    scalar_or_none,
    worst_value,
)


def _current_learning_rate(model) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch from `schedule`.

    Args:
        schedule: `schedule(epoch, lr) -> new_lr` (epoch 0-based, lr the current
            rate); a one-argument `schedule(epoch)` is accepted too.
        verbose: 1 prints the rate set at every epoch.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise ValueError("`schedule` must be a function `schedule(epoch, lr)` returning the "
                             f"learning rate. Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._takes_lr = _accepts_two_arguments(schedule)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._takes_lr:
            rate = self.schedule(epoch, _current_learning_rate(self.model))
        else:
            rate = self.schedule(epoch)
        value = scalar_or_none(rate)
        if value is None or isinstance(rate, bool) or not math.isfinite(value):
            raise ValueError("The output of the `schedule` function should be a finite float. "
                             f"Received: {rate!r} at epoch {epoch}")
        self.model.optimizer.learning_rate = value
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                      f"{value}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = _current_learning_rate(self.model)


def _accepts_two_arguments(function: Callable) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have no signature: assume the Keras form
        return True
    try:
        signature.bind(0, 0.1)
    except TypeError:
        return False
    return True


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by `factor` when `monitor` stops improving.

    Args:
        monitor: the logged quantity to watch.
        factor: the multiplier, in (0, 1).
        patience: epochs without improvement before reducing.
        verbose: 1 prints every reduction.
        mode: "min", "max", or "auto" (max for accuracy-like names, min otherwise).
        min_delta: a change smaller than this is no improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the rate never goes below this.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError("ReduceLROnPlateau needs 0 < factor < 1 (the rate is multiplied "
                             f"by it). Received: factor={factor}")
        check_non_negative_int("patience", patience)
        check_non_negative_int("cooldown", cooldown)
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = patience
        self.verbose = verbose
        self.mode = resolve_mode("ReduceLROnPlateau", monitor, mode)
        self.min_delta = abs(min_delta)
        self.cooldown = cooldown
        self.min_lr = float(min_lr)
        self._reset()

    def _reset(self) -> None:
        self.best = worst_value(self.mode)
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def in_cooldown(self) -> bool:
        """True during the `cooldown` epochs that follow a reduction."""
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _current_learning_rate(self.model)
        current = scalar_or_none(logs.get(self.monitor))
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: {', '.join(logs)}",
                          stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce(epoch)

    def _improved(self, current: float) -> bool:
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def _reduce(self, epoch: int) -> None:
        old_rate = _current_learning_rate(self.model)
        if old_rate <= np.float32(self.min_lr):
            return
        new_rate = max(old_rate * self.factor, self.min_lr)
        self.model.optimizer.learning_rate = new_rate
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                      f"{new_rate}.")
        self.cooldown_counter = self.cooldown
        self.wait = 0
