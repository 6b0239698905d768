"""`Callback`, the hook interface `Model.fit/evaluate/predict` drives (through `CallbackList`).

How `fit` drives a `CallbackList` (the Keras order, which the callbacks here rely on):

```
callbacks = CallbackList(user_callbacks, add_history=True, add_progbar=verbose != 0,
                         model=model, verbose=verbose, epochs=epochs, steps=steps)
model.stop_training = False
model._initial_epoch = None
callbacks.on_train_begin()
start = model._initial_epoch if model._initial_epoch is not None else initial_epoch
for epoch in range(start, epochs):
    callbacks.on_epoch_begin(epoch)
    for batch ...: on_train_batch_begin(batch); step; on_train_batch_end(batch, logs)
    (validation: on_test_begin / on_test_batch_* / on_test_end)
    callbacks.on_epoch_end(epoch, epoch_logs)   # epoch_logs include the "val_" entries
    if model.stop_training: break
callbacks.on_train_end(logs)
model._initial_epoch = None
```

`logs` are plain dicts of Python floats that callbacks may add entries to (the
learning-rate callbacks add "learning_rate" at epoch end, as Keras 3 does).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

# Names of metrics where a higher value is better; any other monitored quantity
# (losses, errors) is minimized. This is how Keras resolves `mode="auto"`.
_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "fmeasure", "f1")


class Callback:
    """Base class of the callbacks: every hook is a no-op until overridden.

    Attributes:
        model: the model being trained (set by `set_model`).
        params: the training parameters, `{"verbose", "epochs", "steps"}`.
    """

    # When True, the callback runs only on the chief worker (it prints or writes files).
    _chief_only = False

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict = {}

    def set_params(self, params: dict) -> None:
        """Receives the training parameters (`verbose`, `epochs`, `steps`)."""
        self.params = params

    def set_model(self, model: Any) -> None:
        """Receives the model the callback acts on."""
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called at the start of `fit`."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called at the end of `fit` (also after an early stop)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the start of epoch `epoch` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the end of epoch `epoch` with its training and `val_` metrics."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before training batch `batch` (0-based within the epoch); by default
        calls the Keras 2 name `on_batch_begin`, as Keras 3 does."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after training batch `batch` with the running metrics of the epoch; by
        default calls the Keras 2 name `on_batch_end`, as Keras 3 does."""
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Called at the start of `evaluate` and of the validation in `fit`."""

    def on_test_end(self, logs: dict | None = None) -> None:
        """Called at the end of `evaluate` and of the validation in `fit`."""

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before evaluation batch `batch`."""

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after evaluation batch `batch`."""

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Called at the start of `predict`."""

    def on_predict_end(self, logs: dict | None = None) -> None:
        """Called at the end of `predict`."""

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before prediction batch `batch`."""

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after prediction batch `batch`."""

    # The Keras 2 names of the training-batch hooks.
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Keras 2's name for the start of a training batch (the default
        `on_train_batch_begin` calls it)."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Keras 2's name for the end of a training batch (the default
        `on_train_batch_end` calls it)."""


def print_msg(message: str) -> None:
    """Prints a callback's message to the current `sys.stdout` and flushes it."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def resolve_mode(owner: str, monitor: str, mode: str) -> str:
    """Turns `mode` ("auto", "min" or "max") into "min" or "max" for `monitor`.

    "auto" means "max" for accuracy-like names (acc, auc, precision, recall, f1)
    and "min" for everything else (losses and errors). An unknown mode warns and
    falls back to "auto", as Keras does.
    """
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{owner} mode {mode!r} is unknown, falling back to 'auto' mode. "
                      "Use one of 'auto', 'min', 'max'.", stacklevel=3)
        mode = "auto"
    if mode != "auto":
        return mode
    name = monitor.lower().removeprefix("val_")
    return "max" if any(token in name for token in _HIGHER_IS_BETTER) else "min"


def is_improvement(current: float, best: float | None, mode: str, min_delta: float) -> bool:
    """True when `current` beats `best` by more than `min_delta` in direction `mode`."""
    if best is None:
        return True
    if mode == "min":
        return current < best - min_delta
    return current > best + min_delta


def worst_value(mode: str) -> float:
    """The starting `best` for `mode`: +inf when minimizing, -inf when maximizing."""
    return np.inf if mode == "min" else -np.inf


def scalar_or_none(value: Any) -> float | None:
    """`value` as a float if it is a scalar number (or 0-d/1-element array), else None."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(array.reshape(())) if array.size == 1 else None


def copy_weights(model: Any) -> list[np.ndarray]:
    """`model.get_weights()` as private copies (a later training step cannot change them)."""
    return [np.array(w, copy=True) for w in model.get_weights()]


def check_non_negative_int(name: str, value: Any) -> None:
    """Raises a Keras-style ValueError unless `value` is an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative int. Received: {name}={value!r}")


def check_save_freq(value: Any) -> None:
    """`save_freq` is "epoch" or a positive number of batches."""
    if value == "epoch":
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError("`save_freq` must be 'epoch' or a positive int (a number of batches). "
                         f"Received: save_freq={value!r}")


class BatchCounter:
    """Counts training batches across epochs to act every `freq` batches (Keras's rule)."""

    def __init__(self, freq: int):
        self.freq = freq
        self._last_batch = -1
        self._since_last = 0

    def new_epoch(self) -> None:
        """Batch numbers restart at 0 in every epoch."""
        self._last_batch = -1

    def step(self, batch: int) -> bool:
        """Records that batch `batch` ended; True when `freq` batches passed since the last True."""
        self._since_last += batch - self._last_batch if batch > self._last_batch else batch + 1
        self._last_batch = batch
        if self._since_last >= self.freq:
            self._since_last = 0
            return True
        return False
