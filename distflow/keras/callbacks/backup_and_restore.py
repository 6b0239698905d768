"""`BackupAndRestore`: resume an interrupted `fit` at the epoch it reached.

What `Model.fit` must do for this callback (Keras does the same through
`model._initial_epoch`):

1. build the model and set `model._initial_epoch = None` before calling
   `callbacks.on_train_begin()`;
2. after `on_train_begin`, start the epoch loop at `model._initial_epoch` when
   it is not None (the callback sets it to the number of epochs already done),
   else at the `initial_epoch` argument; reset `model._initial_epoch = None` when
   `fit` returns;
3. not call `callbacks.on_train_end()` when training is interrupted by an
   exception (as Keras); the callback also keeps its backup if `on_train_end`
   comes before the last epoch ended without `model.stop_training`, so a `fit`
   that calls it from a `finally:` block is safe too.

The backup is one safetensors file, `<backup_dir>/backup.safetensors`, holding
the model weights (`weights/0000`, ...), the optimizer state
(`optimizer/<variable>/<slot>` and `optimizer/iterations`) and in its metadata
the epoch count, the learning rate and the variables' names. It is written
with `distflow.serialization.save_file`, which writes a temporary file, syncs it
and renames it over the previous backup, so a crash while writing leaves the
previous backup intact.

The optimizer state is keyed by variable name; a model rebuilt in another
process may name its variables differently (`dense_1/kernel`), so the state is
matched by the variables' positions in `model.weights` when the model has them.

Resuming reproduces an uninterrupted run exactly when the data order of each
epoch does not depend on the epochs before it (`shuffle=False`, or seeded per
epoch as the distributed strategies do). With an int `save_freq`, an
interrupted epoch restarts from its first batch with the weights saved mid-epoch.
In distributed training only the chief writes the backup; every worker
restores it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from distflow.keras import training_context
from distflow.keras.callbacks.base import BatchCounter, Callback, check_save_freq
from distflow.serialization import load_file, save_file

BACKUP_FILE = "backup.safetensors"
_FORMAT = "distflow.BackupAndRestore/1"


class BackupAndRestore(Callback):
    """Backs training up every epoch and restores the backup when `fit` starts again.

    Args:
        backup_dir: directory of the backup (created if missing); use one per run.
        save_freq: "epoch", or an int: back up every that many training batches.
        delete_checkpoint: delete the backup once training completes.
    """

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch",
                 delete_checkpoint: bool = True):
        super().__init__()
        if not backup_dir:
            raise ValueError("`backup_dir` must be a directory path where the backup is kept. "
                             f"Received: backup_dir={backup_dir!r}")
        check_save_freq(save_freq)
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._batches = BatchCounter(save_freq) if save_freq != "epoch" else None
        self._current_epoch = 0
        self._completed = False

    @property
    def backup_path(self) -> str:
        """The backup file's path."""
        return os.path.join(self.backup_dir, BACKUP_FILE)

    # ------------------------------------------------------------ hooks

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._completed = False
        self._current_epoch = 0
        if os.path.exists(self.backup_path):
            self.model._initial_epoch = self._restore()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch
        if self._batches is not None:
            self._batches.new_epoch()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._batches is not None and self._batches.step(batch):
            self._backup(epochs_done=self._current_epoch, batch=batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch + 1
        if self.save_freq == "epoch":
            self._backup(epochs_done=epoch + 1, batch=0)
        epochs = self.params.get("epochs") if self.params else None
        if epochs is None or epoch + 1 >= epochs:
            self._completed = True

    def on_train_end(self, logs: dict | None = None) -> None:
        finished = self._completed or getattr(self.model, "stop_training", False)
        if finished and self.delete_checkpoint and _is_chief():
            _remove_backup(self.backup_dir)

    # ------------------------------------------------------------ saving

    def _backup(self, epochs_done: int, batch: int) -> None:
        if not _is_chief():
            return
        tensors, metadata = _collect_state(self.model)
        metadata.update(format=_FORMAT, epoch=str(epochs_done), batch=str(batch))
        os.makedirs(self.backup_dir, exist_ok=True)
        # save_file writes a temporary file, fsyncs it and renames it over the old backup.
        save_file(tensors, self.backup_path, metadata)

    def _restore(self) -> int:
        tensors, metadata = load_file(self.backup_path)
        metadata = metadata or {}
        if metadata.get("format") != _FORMAT:
            raise ValueError(f"{self.backup_path} is not a BackupAndRestore backup (format "
                             f"{metadata.get('format')!r}). Delete it or choose another "
                             "`backup_dir`.")
        try:
            _apply_state(self.model, tensors, metadata)
        except ValueError as error:
            raise ValueError(f"The backup {self.backup_path} does not fit this model ({error}). "
                             "Delete the backup directory to start from scratch, or build the "
                             "same model as the interrupted run.") from error
        return int(metadata["epoch"])


def _is_chief() -> bool:
    return training_context.current().is_chief


def _collect_state(model: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    tensors = {f"weights/{i:04d}": np.asarray(w)
               for i, w in enumerate(model.get_weights())}
    metadata = {"num_weights": str(len(tensors)),
                "variable_names": json.dumps(_variable_names(model))}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        for key, array in optimizer.get_state().items():
            tensors[f"optimizer/{key}"] = np.asarray(array)
        rate = _rate_source(optimizer)
        if isinstance(rate, float | int | np.floating):
            metadata["learning_rate"] = repr(float(rate))
    return tensors, metadata


def _apply_state(model: Any, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    count = int(metadata.get("num_weights", "0"))
    weights = [tensors[f"weights/{i:04d}"] for i in range(count)]
    model.set_weights(weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return
    renames = _renames(json.loads(metadata.get("variable_names", "[]")), _variable_names(model))
    state = {_renamed(key[len("optimizer/"):], renames): np.array(value)
             for key, value in tensors.items() if key.startswith("optimizer/")}
    if state:
        optimizer.set_state(state)
    if "learning_rate" in metadata and _has_float_rate(optimizer):
        optimizer.learning_rate = float(metadata["learning_rate"])


def _variable_names(model: Any) -> list[str]:
    variables = getattr(model, "weights", None) or []
    return [str(getattr(v, "name", "")) for v in variables]


def _renames(saved: list[str], current: list[str]) -> dict[str, str]:
    if len(saved) != len(current):
        return {}
    return {old: new for old, new in zip(saved, current) if old and new and old != new}


def _renamed(key: str, renames: dict[str, str]) -> str:
    variable, slash, slot = key.rpartition("/")
    return f"{renames.get(variable, variable)}{slash}{slot}" if slash else key


def _has_float_rate(optimizer: Any) -> bool:
    # A schedule stays a schedule: it is a function of the restored `iterations`.
    return isinstance(_rate_source(optimizer), float | int | np.floating)


def _rate_source(optimizer: Any) -> Any:
    """The optimizer's float learning rate, or its schedule (a Keras optimizer's variable
    is read as a float)."""
    if hasattr(optimizer, "_learning_rate_source"):
        return optimizer._learning_rate_source()
    return optimizer.learning_rate


def _remove_backup(backup_dir: str) -> None:
    path = os.path.join(backup_dir, BACKUP_FILE)
    if os.path.exists(path):
        os.remove(path)
    try:
        os.rmdir(backup_dir)  # only when nothing else lives there
    except OSError:
        pass
