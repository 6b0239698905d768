"""`ModelCheckpoint`: save the model (or its weights) during training."""

from __future__ import annotations

import os
import warnings
from typing import Any

from distflow.keras.callbacks.base import (
    BatchCounter,
    Callback,
    check_save_freq,
    is_improvement,
    print_msg,
    resolve_mode,
    scalar_or_none,
    worst_value,
)


class ModelCheckpoint(Callback):
    """Saves the model at the end of every epoch (or every `save_freq` batches).

    `filepath` may name the epoch and any logged value with `str.format` fields,
    e.g. `"ckpt/model-{epoch:02d}-{val_loss:.2f}.keras"` (`epoch` is 1-based).

    Args:
        filepath: where to save, ending in `.keras` (or, with `save_weights_only`,
            `.weights.h5` as in Keras or `.weights.safetensors`); missing parent
            directories are created.
        monitor: the logged quantity compared when `save_best_only`.
        verbose: 1 prints a line at every save (or skipped save).
        save_best_only: save only when `monitor` improved on the best so far.
        save_weights_only: call `model.save_weights(path)` instead of `model.save(path)`.
        mode: "min", "max", or "auto" (max for accuracy-like names, min otherwise).
        save_freq: "epoch", or an int: save every that many training batches.
        initial_value_threshold: the value `monitor` must beat for the first save
            (with `save_best_only`).
    """

    _chief_only = True

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: str | int = "epoch",
                 initial_value_threshold: float | None = None):
        super().__init__()
        check_save_freq(save_freq)
        self.filepath = os.fspath(filepath)
        _check_extension(self.filepath, save_weights_only)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = resolve_mode("ModelCheckpoint", monitor, mode)
        self.save_freq = save_freq
        self.initial_value_threshold = initial_value_threshold
        self.best = worst_value(self.mode) if initial_value_threshold is None \
            else float(initial_value_threshold)
        self._batches = BatchCounter(save_freq) if save_freq != "epoch" else None
        self._current_epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch
        if self._batches is not None:
            self._batches.new_epoch()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._batches is not None and self._batches.step(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        logs = dict(logs or {})
        filepath = self._get_file_path(epoch, batch, logs)
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            self._write(filepath)
            return
        current = logs.get(self.monitor)
        value = scalar_or_none(current)
        if current is None or value is None:
            warnings.warn(f"Can save best model only with {self.monitor} available as a scalar, "
                          f"skipping. Available metrics are: {', '.join(logs)}", stacklevel=2)
        elif is_improvement(value, self.best, self.mode, 0.0):
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} "
                          f"to {value:.5f}, saving model to {filepath}")
            self.best = value
            self._write(filepath)
        elif self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")

    def _get_file_path(self, epoch: int, batch: int | None, logs: dict[str, Any]) -> str:
        fields = dict(logs)
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as error:
            raise KeyError(f"Failed to format this callback filepath: {self.filepath!r}. "
                           f"Reason: {error!r}. Available fields: {', '.join(fields)}") from error

    def _write(self, filepath: str) -> None:
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)


def _check_extension(filepath: str, save_weights_only: bool) -> None:
    """Fails at construction, not at the end of the first epoch, as Keras does."""
    if save_weights_only and not filepath.endswith((".weights.h5", ".weights.safetensors")):
        raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                         "must end in `.weights.h5` (or `.weights.safetensors`). "
                         f"Received: filepath={filepath}")
    if not save_weights_only and not filepath.endswith(".keras"):
        raise ValueError("The filepath provided to `ModelCheckpoint` must end in `.keras` (the "
                         "whole model) unless `save_weights_only=True`. "
                         f"Received: filepath={filepath}")
