"""`keras.utils.PyDataset` (alias `Sequence`): batches computed by `__getitem__`.

A subclass defines `__getitem__(index)` returning one batch (`x`, `(x, y)` or
`(x, y, sample_weight)`) and `__len__` (or `num_batches`). It is a
`distflow.data.Dataset`, so `fit`, `evaluate` and `predict` take it as they take any
data set: `on_epoch_begin()`, one pass over `range(num_batches)` per epoch (or as many
batches as `steps_per_epoch` reads), then `on_epoch_end()` when the epoch's iterator is
closed.
`workers`, `use_multiprocessing` and `max_queue_size` are accepted and stored, as
Keras's; batches are computed in the training thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from distflow.data import Dataset
from distflow.data.structure import UNKNOWN_CARDINALITY


class PyDataset(Dataset):
    """Base class of Python data sets of batches (see the module docstring).

    Args:
        workers: accepted for Keras's signature (batches are built in one thread).
        use_multiprocessing: likewise.
        max_queue_size: likewise.
    """

    workers, use_multiprocessing, max_queue_size = 1, False, 10

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10):
        self.workers, self.use_multiprocessing = workers, use_multiprocessing
        self.max_queue_size = max_queue_size

    def __getitem__(self, index: int) -> Any:
        """The batch at `index` (to override)."""
        raise NotImplementedError(f"{type(self).__name__} must implement `__getitem__`.")

    @property
    def num_batches(self) -> int | None:
        """Batches per epoch: `len(self)` when `__len__` is defined, else None (endless)."""
        if type(self).__len__ is Dataset.__len__:
            return None
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before each epoch (override as needed)."""

    def on_epoch_end(self) -> None:
        """Called after each epoch (override as needed)."""

    def cardinality(self) -> int:
        count = self.num_batches
        return UNKNOWN_CARDINALITY if count is None else int(count)

    def _elements(self) -> Iterator[Any]:
        # `fit` stops reading after `num_batches` (or `steps_per_epoch`) batches and drops
        # the iterator: `finally` runs when it is closed, so the epoch's end is seen then.
        self.on_epoch_begin()
        count = self.num_batches
        index = 0
        try:
            while count is None or index < count:
                yield self[index]
                index += 1
        finally:
            self.on_epoch_end()


Sequence = PyDataset
