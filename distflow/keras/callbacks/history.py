"""`History`: the per-epoch metrics `fit` returns."""

from __future__ import annotations

from distflow.keras.callbacks.base import Callback


class History(Callback):
    """Records the logs of every epoch; `fit` returns this object.

    Attributes:
        history: metric name -> list of per-epoch values, e.g.
            `{"loss": [0.52, 0.41], "val_loss": [0.49, 0.44]}`.
        epoch: the epoch numbers (0-based) that ran, in order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self
