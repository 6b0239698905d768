"""How `Model.fit` adapts to the process it runs in (one hook, no import cycle).

The Keras layer knows nothing of parameter servers. A distribution strategy
installs a `TrainingContext` inside `strategy.scope()`; `fit`, `evaluate` and
the callbacks ask `current()` how to batch, shard, shuffle and who may print
or write files. Outside any scope the default context means "one process".

Contract used by `Model.fit` (distflow/keras/trainers/loops.py):

* `batch_size_is_global`: when True, `fit(batch_size=B)` takes global batches
  of B rows from the (identically shuffled) data and this worker trains on rows
  `[k*B/N, (k+1)*B/N)` of each, so N workers see exactly what one process with
  batch B would (mirrored). When False, the data is sharded row-wise
  (`x[worker_index::num_workers]`) and B is the per-worker batch (async).
* `drop_remainder`: drop the last incomplete (global) batch, so every worker
  runs the same number of steps (a sync barrier needs equal step counts).
* `shuffle_seed(epoch)`: the seed every worker shuffles epoch `epoch` with
  (None: the process's own RNG).
* `is_chief`: only the chief prints progress, runs validation and runs
  callbacks that write files.
* `on_train_begin(model)` / `on_train_end(model)`: called by `fit` after the
  model is built and compiled (the strategy pulls the initial parameters here).
* `initial_epoch(model, requested)`: called by `fit` right after
  `on_train_begin`; the epoch to start at. A strategy whose servers resumed
  from a checkpoint returns the epoch recorded there, so restarting a stopped
  run continues where it was.
* `resume_point(model, epoch, steps)`: called by `fit` right after
  `initial_epoch` (`steps`: batches per epoch); the (epoch, step) to start at. A
  strategy whose servers recorded a position inside `epoch` returns its step,
  so a run stopped mid-epoch continues at the next batch.
* `on_epoch_begin(model, epoch)`: called by `fit` at the start of each epoch
  (the strategy records the training position with its pushes).
* `on_epoch_end(model, epoch, logs)`: called by `fit` after the callbacks'
  `on_epoch_end`, before it checks `model.stop_training`; a strategy shares
  the stop decision here (the chief's wins, so all workers stop together).
* A hook (or the optimizer override) may raise `StopTraining` from inside a
  step: `fit` then stops there, prints the reason and finishes normally.
* `on_training_done(model, epoch)`: called by `fit` when its epochs are over
  (`epoch`: the last one run), before the callbacks' `on_train_end`; an async
  strategy brings the chief's model to the servers' final parameters here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class StopTraining(Exception):
    """Raised from inside a step (by a strategy) when the run has ended for this process.

    `fit` catches it, says why and ends as after its last epoch (callbacks'
    `on_train_end` run); elsewhere it reaches the caller with its message.
    """


class TrainingContext:
    """Single-process defaults; strategies subclass this."""

    def __init__(self) -> None:
        self.num_workers = 1
        self.worker_index = 0
        self.is_chief = True
        self.batch_size_is_global = False
        self.drop_remainder = False

    def shuffle_seed(self, epoch: int) -> int | None:
        """Seed for shuffling epoch `epoch`; None uses the process's RNG."""
        return None

    def on_train_begin(self, model: Any) -> None:
        """Called by `fit` once the model is built, before the first step."""

    def on_train_end(self, model: Any) -> None:
        """Called by `fit` after the last step (also when training stops early)."""

    def initial_epoch(self, model: Any, requested: int) -> int:
        """The epoch `fit` starts at; `requested` is `fit(initial_epoch=...)`."""
        return requested

    def resume_point(self, model: Any, epoch: int, steps: int | None) -> tuple[int, int]:
        """(epoch, first step) `fit` starts at, given the epoch `initial_epoch` chose."""
        return epoch, 0

    def on_epoch_begin(self, model: Any, epoch: int) -> None:
        """Called by `fit` at the start of every epoch."""

    def on_epoch_end(self, model: Any, epoch: int, logs: dict) -> None:
        """Called by `fit` after the callbacks' `on_epoch_end`; may set `model.stop_training`."""

    def on_training_done(self, model: Any, epoch: int) -> None:
        """Called by `fit` after its last epoch (`epoch`) ran, before `on_train_end` callbacks."""


_DEFAULT = TrainingContext()
_stack: list[TrainingContext] = []


def current() -> TrainingContext:
    """The innermost installed context, or the single-process default."""
    return _stack[-1] if _stack else _DEFAULT


@contextlib.contextmanager
def use_training_context(context: TrainingContext) -> Iterator[TrainingContext]:
    """Installs `context` for the duration of the `with` block."""
    _stack.append(context)
    try:
        yield context
    finally:
        _stack.remove(context)
