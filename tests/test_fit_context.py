"""`Model.fit` under a training context: two simulated workers in one process.

Each "worker" is a `TrainingContext` subclass installed around `fit`; a pass-through
layer records the rows the model trains on, so the tests can check which rows
each worker saw against what one process sees.
"""

from __future__ import annotations

import numpy as np
import pytest

from distflow.data import Dataset
from distflow.keras import callbacks, layers
from distflow.keras.functional import Input
from distflow.keras.models import Sequential
from distflow.keras.training_context import TrainingContext, use_training_context


class Recorder(layers.Layer):
    """Identity layer logging the inputs of training calls (and of inference calls apart)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.train_rows: list[np.ndarray] = []
        self.infer_rows: list[np.ndarray] = []

    def call(self, inputs, training=False):
        (self.train_rows if training else self.infer_rows).append(np.array(inputs.value))
        return inputs


class Worker(TrainingContext):
    """A context standing for worker `index` of `workers`."""

    def __init__(self, index, workers, global_batch, seed=7):
        super().__init__()
        self.worker_index, self.num_workers = index, workers
        self.is_chief = index == 0
        self.batch_size_is_global = global_batch
        self.drop_remainder = global_batch
        self.seed = seed
        self.events: list[tuple[str, object]] = []

    def shuffle_seed(self, epoch):
        return self.seed * 1000 + epoch

    def on_train_begin(self, model):
        self.events.append(("begin", model))

    def on_train_end(self, model):
        self.events.append(("end", model))


class ChiefOnlyProbe(callbacks.Callback):
    _chief_only = True

    def __init__(self):
        super().__init__()
        self.epochs_seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_seen.append(epoch)


def _data(n=50):
    x = np.stack([np.arange(n, dtype=np.float32), np.ones(n, np.float32)], axis=1)
    return x, (x[:, :1] * 0.1).astype(np.float32)


def _train(context, x, y, **fit_kwargs):
    recorder = Recorder()
    model = Sequential([Input(shape=(2,)), recorder, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)  # the recorder reads rows
    with use_training_context(context):
        history = model.fit(x, y, **fit_kwargs)
    return model, recorder, history


def _ids(batches):
    return [b[:, 0].astype(int).tolist() for b in batches]


def test_global_batches_split_between_workers_equal_one_process():
    x, y = _data(50)
    kwargs = dict(batch_size=8, epochs=2, verbose=0)
    _, whole, _ = _train(Worker(0, 1, global_batch=True), x, y, **kwargs)
    _, w0, _ = _train(Worker(0, 2, global_batch=True), x, y, **kwargs)
    _, w1, _ = _train(Worker(1, 2, global_batch=True), x, y, **kwargs)
    assert len(whole.train_rows) == 2 * (50 // 8)  # drop_remainder: 6 full batches per epoch
    assert len(w0.train_rows) == len(w1.train_rows) == len(whole.train_rows)
    for full, a, b in zip(_ids(whole.train_rows), _ids(w0.train_rows), _ids(w1.train_rows)):
        assert a + b == full
        assert not set(a) & set(b)
    epoch0 = [i for batch in _ids(whole.train_rows)[:6] for i in batch]
    assert epoch0 != sorted(epoch0)  # shuffled, and still the same order on both workers


def test_shuffle_seed_changes_per_epoch():
    x, y = _data(40)
    _, rec, _ = _train(Worker(0, 1, global_batch=True), x, y, batch_size=40, epochs=2, verbose=0)
    first, second = _ids(rec.train_rows)
    assert sorted(first) == sorted(second) == list(range(40))
    assert first != second


def test_per_worker_batches_shard_rows_disjointly():
    x, y = _data(23)
    kwargs = dict(batch_size=4, epochs=1, verbose=0)
    _, w0, _ = _train(Worker(0, 2, global_batch=False), x, y, **kwargs)
    _, w1, _ = _train(Worker(1, 2, global_batch=False), x, y, **kwargs)
    rows0 = [i for b in _ids(w0.train_rows) for i in b]
    rows1 = [i for b in _ids(w1.train_rows) for i in b]
    assert sorted(rows0) == list(range(0, 23, 2))
    assert sorted(rows1) == list(range(1, 23, 2))
    assert max(len(b) for b in w0.train_rows) == 4  # batch_size is per worker here


def test_chief_prints_validates_and_runs_chief_only_callbacks(capsys):
    x, y = _data(40)
    contexts, probes, histories = [Worker(0, 2, True), Worker(1, 2, True)], [], []
    for ctx in contexts:
        probe = ChiefOnlyProbe()
        model, _, history = _train(ctx, x, y, batch_size=8, epochs=2, verbose=2,
                                   validation_split=0.25, callbacks=[probe])
        probes.append(probe)
        histories.append(history)
        out = capsys.readouterr().out
        assert ("Epoch 2/2" in out) == ctx.is_chief
        assert [e[0] for e in ctx.events] == ["begin", "end"]
        assert all(e[1] is model for e in ctx.events)
    assert probes[0].epochs_seen == [0, 1] and probes[1].epochs_seen == []
    assert "val_loss" in histories[0].history
    assert "val_loss" not in histories[1].history
    assert len(histories[1].history["loss"]) == 2


def test_global_batches_from_a_dataset_are_split_by_rows():
    x, y = _data(32)
    ds = Dataset.from_tensor_slices((x, y)).batch(8)
    recs = []
    for index in (0, 1):
        recorder = Recorder()
        model = Sequential([Input(shape=(2,)), recorder, layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse", run_eagerly=True)  # it reads rows
        with use_training_context(Worker(index, 2, global_batch=True)):
            model.fit(ds, epochs=1, verbose=0)
        recs.append(_ids(recorder.train_rows))
    assert [a + b for a, b in zip(*recs)] == [list(range(i, i + 8)) for i in range(0, 32, 8)]


def test_on_train_end_runs_when_training_fails():
    x, y = _data(10)
    ctx = Worker(0, 1, global_batch=False)

    class Boom(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _train(ctx, x, y, batch_size=5, epochs=1, verbose=0, callbacks=[Boom()])
    assert [e[0] for e in ctx.events] == ["begin", "end"]


class Resuming(Worker):
    """A chief whose servers recorded that the run was in epoch `recorded`."""

    def __init__(self, recorded):
        super().__init__(0, 1, global_batch=True)
        self.recorded = recorded

    def initial_epoch(self, model, requested):
        return max(requested, self.recorded)

    def on_epoch_begin(self, model, epoch):
        self.events.append(("epoch", epoch))


def test_fit_starts_at_the_contexts_epoch_and_announces_each_epoch():
    x, y = _data()
    context = Resuming(recorded=2)
    _, _, history = _train(context, x, y, batch_size=10, epochs=4, verbose=0)
    assert history.epoch == [2, 3]
    assert [e for e in context.events if e[0] == "epoch"] == [("epoch", 2), ("epoch", 3)]
    _, _, history = _train(Resuming(recorded=0), x, y, batch_size=10, epochs=3,
                           initial_epoch=1, verbose=0)
    assert history.epoch == [1, 2]  # fit(initial_epoch=...) still counts
