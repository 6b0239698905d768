"""`CallbackList`: the callbacks of one `fit`/`evaluate`/`predict`, called as one.

It adds the `History` and the `ProgbarLogger` that `fit` needs when they are not
given, and on a worker that is not the chief skips the callbacks that print or
write files. The order `fit` calls the hooks in is in `callbacks/base.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from distflow.keras import training_context
from distflow.keras.callbacks.base import Callback
from distflow.keras.callbacks.history import History
from distflow.keras.callbacks.progbar import ProgbarLogger

__all__ = ["CallbackList"]


class CallbackList(Callback):
    """Dispatches every hook to a list of callbacks, as `fit` uses it.

    On a worker that is not the chief (`training_context.current().is_chief` is
    False when the list is built) the callbacks marked chief-only (those that
    print or write files) are kept in `callbacks` but not called.

    Args:
        callbacks: a `Callback` or an iterable of them (None for none).
        add_history: append a `History` unless the list already has one.
        add_progbar: append a `ProgbarLogger` unless the list already has one.
        model: the model, passed to every callback's `set_model`.
        **params: the training parameters, passed to every `set_params`.
    """

    def __init__(self, callbacks: Callback | Iterable[Callback] | None = None,
                 add_history: bool = False, add_progbar: bool = False,
                 model: Any = None, **params: Any):
        super().__init__()
        self.callbacks = _as_callback_list(callbacks)
        self._history = None
        self._progbar = None
        self._add_default_callbacks(add_history, add_progbar)
        self._is_chief = training_context.current().is_chief
        self._active = [cb for cb in self.callbacks if self._runs_here(cb)]
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def _add_default_callbacks(self, add_history: bool, add_progbar: bool) -> None:
        for cb in self.callbacks:
            if isinstance(cb, History):
                self._history = cb
            elif isinstance(cb, ProgbarLogger):
                self._progbar = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)

    def _runs_here(self, callback: Callback) -> bool:
        return self._is_chief or not getattr(callback, "_chief_only", False)

    def append(self, callback: Callback) -> None:
        """Adds one more callback at the end."""
        self.callbacks.extend(_as_callback_list(callback))
        if self._runs_here(callback):
            self._active.append(callback)

    def set_params(self, params: dict) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def set_model(self, model: Any) -> None:
        self.model = model
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def on_train_begin(self, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_train_begin(logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_train_batch_end(batch, logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_test_begin(logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_test_end(logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_test_batch_end(batch, logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_predict_begin(logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_predict_end(logs)

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_predict_batch_begin(batch, logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for cb in self._active:
            cb.on_predict_batch_end(batch, logs)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)


def _as_callback_list(callbacks: Any) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    result = list(callbacks)
    for cb in result:
        if not isinstance(cb, Callback):
            raise TypeError("`callbacks` must be a list of `keras.callbacks.Callback` instances. "
                            f"Received: an item of type {type(cb).__name__} ({cb!r})")
    return result


# ----------------------------------------------------------------- helpers shared by callbacks
