"""`SwapEMAWeights`: evaluate (and optionally checkpoint) with the optimizer's moving averages.

With an optimizer built with `use_ema=True`, the model's variables and their
averages are swapped for every evaluation (validation in `fit`, `evaluate`,
`predict`) and swapped back afterwards; with `swap_on_epoch=True` they are also
swapped at each epoch's end (so callbacks that run then, such as ModelCheckpoint,
see the averages) and back at the next epoch's start, and at the end of the last
epoch the averages stay in the model. Keras 3's `on_predict_end` leaves the
averages in the model by mistake; here the swap is undone, as on_test_end does.
"""

from __future__ import annotations

from typing import Any

from distflow.keras.callbacks.base import Callback


class SwapEMAWeights(Callback):
    """Swaps the model's variables with their moving averages (see the module docstring).

    Args:
        swap_on_epoch: also swap at each epoch's end and back at the next epoch's start.
    """

    def __init__(self, swap_on_epoch: bool = False):
        super().__init__()
        self.swap_on_epoch = bool(swap_on_epoch)
        self._ema_weights_in_model = False

    def _optimizer(self) -> Any:
        optimizer = self.model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if not getattr(optimizer, "use_ema", False):
            raise ValueError("SwapEMAWeights must be used when `use_ema=True` is set on the "
                             f"optimizer. Received: use_ema={getattr(optimizer, 'use_ema', None)}")
        return optimizer

    def _swap(self, wanted: bool) -> None:
        if self._ema_weights_in_model == wanted:
            return
        optimizer = self._optimizer()
        for var in self.model.trainable_variables:
            average = optimizer._ema.get(var.name)
            if average is not None:
                current = var.numpy()
                var.assign(average)
                average[...] = current
        self._ema_weights_in_model = wanted

    def _finalize(self) -> None:
        """The averages become the model's values (the swapped-out values are dropped)."""
        optimizer = self._optimizer()
        for var in self.model.trainable_variables:
            if var.name in optimizer._ema:
                optimizer._ema[var.name][...] = var.value

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.swap_on_epoch:
            self._swap(False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.swap_on_epoch:
            self._swap(True)
            if epoch == self.params.get("epochs", 0) - 1:
                self._finalize()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._swap(True)

    def on_test_end(self, logs: dict | None = None) -> None:
        self._swap(False)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._swap(True)

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._swap(False)
