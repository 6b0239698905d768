"""`CSVLogger`: one CSV row of metrics per epoch."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from distflow.keras.callbacks.base import Callback


class CSVLogger(Callback):
    """Streams the epoch results to a CSV file: an `epoch` column, then the logs' keys sorted.

    When the first epoch has no `val_` entries, matching `val_` columns are added
    anyway (filled with "NA"), as Keras does, so that a later validation pass
    fits the header. With `append=True` an existing file keeps its header (and
    its columns).

    Args:
        filename: the CSV file.
        separator: the delimiter between fields.
        append: append to an existing file instead of overwriting it.
    """

    _chief_only = True

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self.writer: csv.DictWriter | None = None
        self.csv_file = None
        self._write_header = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.keys = None
        self.writer = None
        self._write_header = True
        if self.append and os.path.exists(self.filename):
            header = _read_header(self.filename, self.sep)
            if header:
                self._write_header = False
                self.keys = [key for key in header if key != "epoch"]
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += ["val_" + key for key in self.keys]
        if self.writer is None:
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch", *self.keys],
                                         delimiter=self.sep, extrasaction="ignore")
            if self._write_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _csv_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.csv_file is not None:
            self.csv_file.close()
        self.csv_file = None
        self.writer = None


def _read_header(filename: str, separator: str) -> list[str]:
    with open(filename, newline="") as handle:
        for row in csv.reader(handle, delimiter=separator):
            return row
    return []


def _csv_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, Iterable):
        return "[" + ", ".join(map(str, value)) + "]"
    return value
