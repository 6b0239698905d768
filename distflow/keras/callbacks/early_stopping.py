"""`EarlyStopping`: stop training when a monitored metric stops improving."""

from __future__ import annotations

import warnings

from distflow.keras.callbacks.base import (
    Callback,
    check_non_negative_int,
    copy_weights,
    is_improvement,
    print_msg,
    resolve_mode,
    scalar_or_none,
)


class EarlyStopping(Callback):
    """Stops `fit` once `monitor` has not improved for `patience` epochs.

    Args:
        monitor: the logged quantity to watch, e.g. "val_loss" or "val_accuracy".
        min_delta: a change smaller than this (in absolute value) is no improvement.
        patience: epochs without improvement after which training stops.
        verbose: 1 prints when training stops and when weights are restored.
        mode: "min", "max", or "auto" (max for accuracy-like names, min otherwise).
        baseline: training stops unless the monitored value beats this within
            `patience` epochs.
        restore_best_weights: at the end of training, set the weights of the best
            epoch seen (even when training did not stop early).
        start_from_epoch: epochs to wait before watching (warm-up).

    Attributes:
        stopped_epoch: the (0-based) epoch at which training stopped, 0 if it did not.
        best_epoch: the (0-based) epoch with the best value.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__()
        check_non_negative_int("patience", patience)
        check_non_negative_int("start_from_epoch", start_from_epoch)
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = resolve_mode("EarlyStopping", monitor, mode)
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first watched epoch is the best so far even if it fails the baseline.
            self.best_weights = copy_weights(self.model)
            self.best_epoch = epoch
        self.wait += 1
        if is_improvement(current, self.best, self.mode, self.min_delta):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = copy_weights(self.model)
            if self.baseline is None or is_improvement(current, self.baseline, self.mode,
                                                       self.min_delta):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg("Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs: dict | None) -> float | None:
        """The monitored value in `logs`, or None (with a warning) when it is missing."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {', '.join(logs)}", stacklevel=2)
            return None
        return scalar_or_none(value)
