"""Tests of distflow.keras.callbacks.

Most tests drive the hooks with `stand_in_fit`, a copy of the callback protocol
of Keras's training loop, on `LinearStandIn`: a test double of a compiled Keras
model (NumPy weights in real `df.Variable`s, a real distflow optimizer,
`save`/`save_weights` writing .npz content under the Keras file names), which
lets a test control every value. Metric values a test needs to script are
injected into the logs by a `LambdaCallback` placed before the callback under
test, exactly where a metric would appear. The last section runs the main
callbacks through the real `Sequential.fit`.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import distflow as df
from distflow import optimizers
from distflow.keras import training_context
from distflow.keras.callbacks import (
    BackupAndRestore,
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    History,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    Progbar,
    ProgbarLogger,
    ReduceLROnPlateau,
    TensorBoard,
    TerminateOnNaN,
)

try:
    import tensorboardX  # noqa: F401  (a dependency in pyproject.toml)
    HAVE_TENSORBOARDX = True
except ImportError:
    HAVE_TENSORBOARDX = False
needs_tensorboardx = pytest.mark.skipif(
    not HAVE_TENSORBOARDX, reason="tensorboardX (pip install tensorboardX) missing")

# ----------------------------------------------------------------------------- stand-ins


class LinearStandIn:
    """A compiled Keras model's interface: y = x @ kernel + bias, mean squared error."""

    def __init__(self, n_inputs: int = 3, optimizer=None, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.kernel = df.Variable(rng.normal(size=(n_inputs, 1)).astype(np.float32),
                                  name="standin/kernel")
        self.bias = df.Variable(np.zeros((1,), np.float32), name="standin/bias")
        self.weights = [self.kernel, self.bias]
        self.optimizer = optimizer if optimizer is not None else optimizers.SGD(0.05)
        self.stop_training = False
        self._initial_epoch = None
        self.history = None

    def get_weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights) -> None:
        if len(weights) != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} weights, got {len(weights)}")
        for variable, value in zip(self.weights, weights):
            if np.shape(value) != variable.shape:
                raise ValueError(f"shape {np.shape(value)} for {variable.name}{variable.shape}")
            variable.assign(value)

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        error = x @ self.kernel.value + self.bias.value - y
        loss = float(np.mean(error ** 2))
        grad_kernel = (2.0 / len(x)) * x.T @ error
        grad_bias = np.array([2.0 * np.mean(error)], np.float32)
        return loss, [grad_kernel.astype(np.float32), grad_bias]

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.gradients(x, y)
        self.optimizer.apply_gradients(zip(grads, self.weights))
        return loss

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return self.gradients(x, y)[0]

    def save(self, path: str) -> None:
        self._write(path, "model")

    def save_weights(self, path: str) -> None:
        self._write(path, "weights")

    def _write(self, path: str, kind: str) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, *self.get_weights(), kind=np.array(kind))


def read_saved(path) -> tuple[str, list[np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        kind = str(data["kind"])
        arrays = [data[f"arr_{i}"] for i in range(len(data.files) - 1)]
    return kind, arrays


def make_data(n: int = 32, n_inputs: int = 3, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_inputs)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    return x, y


def stand_in_fit(model, x, y, epochs, callbacks=(), batch_size=8, validation_data=None,
                 verbose=0, initial_epoch=0):
    """The callback protocol of Keras's `fit` (see distflow.keras.callbacks.base)."""
    steps = math.ceil(len(x) / batch_size)
    cbs = CallbackList(list(callbacks), add_history=True, add_progbar=verbose != 0,
                       model=model, verbose=verbose, epochs=epochs, steps=steps)
    model.stop_training = False
    model._initial_epoch = None
    cbs.on_train_begin()
    start = model._initial_epoch if model._initial_epoch is not None else initial_epoch
    logs = {}
    for epoch in range(start, epochs):
        cbs.on_epoch_begin(epoch)
        total = 0.0
        for batch in range(steps):
            cbs.on_train_batch_begin(batch)
            rows = slice(batch * batch_size, (batch + 1) * batch_size)
            total += model.train_step(x[rows], y[rows])
            logs = {"loss": total / (batch + 1)}
            cbs.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        epoch_logs = dict(logs)
        if validation_data is not None:
            cbs.on_test_begin()
            val_loss = model.loss(*validation_data)
            cbs.on_test_end({"loss": val_loss})
            epoch_logs["val_loss"] = val_loss
        cbs.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    model._initial_epoch = None
    return model.history


def inject(key, values):
    """A callback writing `values[epoch]` into the epoch logs under `key`."""
    def on_epoch_end(epoch, logs):
        logs[key] = values[epoch]
    return LambdaCallback(on_epoch_end=on_epoch_end)


class WeightsPerEpoch(Callback):
    def __init__(self):
        super().__init__()
        self.snapshots = {}

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots[epoch] = self.model.get_weights()


# ----------------------------------------------------------------------------- CallbackList


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name, *args[:1]))
        return object.__getattribute__(self, name)


def test_callback_list_dispatches_every_hook_in_keras_order():
    recorder = Recorder()
    x, y = make_data(16)
    model = LinearStandIn()
    stand_in_fit(model, x, y, epochs=2, batch_size=8, callbacks=[recorder],
                 validation_data=(x, y))
    names = [call[0] for call in recorder.calls]
    epoch = ["on_epoch_begin", "on_train_batch_begin", "on_train_batch_end",
             "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
             "on_epoch_end"]
    assert names == ["on_train_begin", *epoch, *epoch, "on_train_end"]
    assert recorder.params == {"verbose": 0, "epochs": 2, "steps": 2}
    assert recorder.model is model


def test_callback_list_adds_history_and_progbar_once():
    history = History()
    cbs = CallbackList([history], add_history=True, add_progbar=True)
    assert [type(cb) for cb in cbs.callbacks] == [History, ProgbarLogger]
    assert cbs.callbacks[0] is history
    assert len(CallbackList(None, add_history=False).callbacks) == 0


def test_callback_list_rejects_non_callbacks():
    with pytest.raises(TypeError, match="Callback` instances.*type str"):
        CallbackList(["not a callback"])


def test_history_records_every_epoch_and_is_returned():
    x, y = make_data()
    model = LinearStandIn()
    history = stand_in_fit(model, x, y, epochs=3, validation_data=(x, y))
    assert isinstance(history, History)
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "val_loss"}
    assert len(history.history["loss"]) == 3
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    assert history.history["val_loss"][-1] == pytest.approx(model.loss(x, y))


class NotChief(training_context.TrainingContext):
    def __init__(self):
        super().__init__()
        self.num_workers, self.worker_index, self.is_chief = 2, 1, False


def test_non_chief_worker_skips_callbacks_that_write(tmp_path, capsys):
    x, y = make_data()
    csv_path, ckpt = tmp_path / "log.csv", tmp_path / "ckpt.keras"
    writers = [CSVLogger(csv_path), ModelCheckpoint(str(ckpt), monitor="loss")]
    if HAVE_TENSORBOARDX:
        writers.append(TensorBoard(tmp_path / "tb"))
    with training_context.use_training_context(NotChief()):
        model = LinearStandIn()
        history = stand_in_fit(model, x, y, epochs=2, verbose=2, callbacks=writers)
    assert history.epoch == [0, 1]  # History still runs on every worker
    assert not csv_path.exists() and not ckpt.exists() and not (tmp_path / "tb").exists()
    assert capsys.readouterr().out == ""
    model = LinearStandIn()
    stand_in_fit(model, x, y, epochs=2, callbacks=[CSVLogger(csv_path)])
    assert csv_path.exists()  # the same list on the chief writes


# ----------------------------------------------------------------------------- EarlyStopping


def test_early_stopping_patience_and_restore_best_weights():
    x, y = make_data()
    val_losses = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6]
    snapshots = WeightsPerEpoch()
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model = LinearStandIn()
    history = stand_in_fit(model, x, y, epochs=7,
                           callbacks=[inject("val_loss", val_losses), snapshots, stopper])
    # best 0.8 at epoch 1; epochs 2 and 3 do not beat it: stop after epoch 3.
    assert history.epoch == [0, 1, 2, 3]
    assert stopper.stopped_epoch == 3 and stopper.best_epoch == 1
    for restored, best in zip(model.get_weights(), snapshots.snapshots[1]):
        np.testing.assert_array_equal(restored, best)
    assert not np.array_equal(snapshots.snapshots[3][0], snapshots.snapshots[1][0])


def test_early_stopping_min_delta_mode_max_and_baseline():
    x, y = make_data()
    # Accuracy-like name: maximized under mode="auto"; +0.005 is below min_delta.
    stopper = EarlyStopping(monitor="val_accuracy", min_delta=0.01, patience=1)
    history = stand_in_fit(LinearStandIn(), x, y, epochs=5, callbacks=[
        inject("val_accuracy", [0.5, 0.6, 0.605, 0.9, 0.95]), stopper])
    assert history.epoch == [0, 1, 2]
    # Baseline 0.3 never reached: improvements do not reset the wait, so the first
    # epoch that does not improve, once patience is spent, stops training (Keras's rule).
    values = [0.9, 0.8, 0.7, 0.75, 0.6, 0.5]
    stopper = EarlyStopping(monitor="val_loss", patience=3, baseline=0.3)
    history = stand_in_fit(LinearStandIn(), x, y, epochs=6, callbacks=[
        inject("val_loss", values), stopper])
    assert history.epoch == [0, 1, 2, 3]
    history = stand_in_fit(LinearStandIn(), x, y, epochs=6, callbacks=[
        inject("val_loss", values), EarlyStopping(monitor="val_loss", patience=3)])
    assert history.epoch == [0, 1, 2, 3, 4, 5]


def test_early_stopping_start_from_epoch_and_no_stop_while_improving():
    x, y = make_data()
    stopper = EarlyStopping(monitor="val_loss", patience=1, start_from_epoch=3)
    history = stand_in_fit(LinearStandIn(), x, y, epochs=6, callbacks=[
        inject("val_loss", [0.1, 0.9, 0.9, 0.5, 0.6, 0.7]), stopper])
    assert history.epoch == [0, 1, 2, 3, 4]  # epochs 0-2 ignored; 4 fails to beat 0.5
    history = stand_in_fit(LinearStandIn(), x, y, epochs=4, validation_data=(x, y),
                           callbacks=[EarlyStopping(patience=0)])
    assert history.epoch == [0, 1, 2, 3]


def test_early_stopping_warns_when_monitor_missing():
    x, y = make_data()
    with pytest.warns(UserWarning, match="`val_auc` which is not available.*loss"):
        history = stand_in_fit(LinearStandIn(), x, y, epochs=2,
                               callbacks=[EarlyStopping(monitor="val_auc")])
    assert history.epoch == [0, 1]


def test_early_stopping_rejects_bad_patience_and_warns_on_unknown_mode():
    with pytest.raises(ValueError, match="patience=-1"):
        EarlyStopping(patience=-1)
    with pytest.warns(UserWarning, match="mode 'lowest' is unknown"):
        stopper = EarlyStopping(mode="lowest")
    assert stopper.mode == "min"


# ----------------------------------------------------------------------------- ModelCheckpoint


def test_model_checkpoint_save_best_only_writes_only_improvements(tmp_path):
    x, y = make_data()
    snapshots = WeightsPerEpoch()
    pattern = str(tmp_path / "ckpt" / "m-{epoch:02d}-{val_loss:.2f}.keras")
    checkpoint = ModelCheckpoint(pattern, monitor="val_loss", save_best_only=True)
    stand_in_fit(LinearStandIn(), x, y, epochs=4, callbacks=[
        inject("val_loss", [0.5, 0.7, 0.4, 0.45]), snapshots, checkpoint])
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["m-01-0.50.keras", "m-03-0.40.keras"]
    kind, weights = read_saved(tmp_path / "ckpt" / "m-03-0.40.keras")
    assert kind == "model"
    for saved, expected in zip(weights, snapshots.snapshots[2]):
        np.testing.assert_array_equal(saved, expected)
    assert checkpoint.best == 0.4


def test_model_checkpoint_every_epoch_weights_only_and_initial_threshold(tmp_path):
    x, y = make_data()
    stand_in_fit(LinearStandIn(), x, y, epochs=3, callbacks=[
        ModelCheckpoint(str(tmp_path / "w{epoch}.weights.safetensors"), save_weights_only=True)])
    assert sorted(os.listdir(tmp_path)) == [f"w{e}.weights.safetensors" for e in (1, 2, 3)]
    assert read_saved(tmp_path / "w2.weights.safetensors")[0] == "weights"
    best_dir = tmp_path / "best"
    stand_in_fit(LinearStandIn(), x, y, epochs=3, callbacks=[
        inject("val_acc", [0.7, 0.85, 0.8]),
        ModelCheckpoint(str(best_dir / "{epoch}.keras"), monitor="val_acc",
                        save_best_only=True, initial_value_threshold=0.8)])
    assert os.listdir(best_dir) == ["2.keras"]


def test_model_checkpoint_int_save_freq_counts_batches_across_epochs(tmp_path):
    x, y = make_data(32)  # 4 batches of 8 per epoch, 8 in all: saves after batches 3 and 6
    stand_in_fit(LinearStandIn(), x, y, epochs=2, callbacks=[
        ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.keras"), save_freq=3)])
    assert sorted(os.listdir(tmp_path)) == ["e1-b3.keras", "e2-b2.keras"]


def test_model_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="save_freq=0"):
        ModelCheckpoint("x.keras", save_freq=0)
    with pytest.raises(ValueError, match="must end in `.keras`.*filepath=model.h5"):
        ModelCheckpoint("model.h5")
    with pytest.raises(ValueError, match="`.weights.safetensors`.*filepath=w.keras"):
        ModelCheckpoint("w.keras", save_weights_only=True)
    x, y = make_data()
    with pytest.raises(KeyError, match="val_acc"):
        stand_in_fit(LinearStandIn(), x, y, epochs=1, callbacks=[
            ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.keras"))])
    with pytest.warns(UserWarning, match="val_loss available"):
        stand_in_fit(LinearStandIn(), x, y, epochs=1, callbacks=[
            ModelCheckpoint(str(tmp_path / "b.keras"), save_best_only=True)])
    assert not (tmp_path / "b.keras").exists()


# ----------------------------------------------------------------------------- CSVLogger


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = make_data()
    path = tmp_path / "training.csv"
    history = stand_in_fit(LinearStandIn(), x, y, epochs=3, validation_data=(x, y),
                           callbacks=[CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss"
    assert len(lines) == 4
    for epoch, line in enumerate(lines[1:]):
        fields = line.split(",")
        assert int(fields[0]) == epoch
        assert float(fields[1]) == pytest.approx(history.history["loss"][epoch], rel=1e-12)
        assert float(fields[2]) == pytest.approx(history.history["val_loss"][epoch], rel=1e-12)


def test_csv_logger_append_and_separator_and_missing_validation(tmp_path):
    x, y = make_data()
    path = tmp_path / "log.tsv"
    stand_in_fit(LinearStandIn(), x, y, epochs=2, callbacks=[CSVLogger(path, separator="\t")])
    stand_in_fit(LinearStandIn(), x, y, epochs=1,
                 callbacks=[CSVLogger(path, separator="\t", append=True)])
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    assert rows[0] == ["epoch", "loss", "val_loss"]  # Keras adds val_ columns up front
    assert [row[0] for row in rows[1:]] == ["0", "1", "0"]
    assert all(row[2] == "NA" for row in rows[1:])
    stand_in_fit(LinearStandIn(), x, y, epochs=1, callbacks=[CSVLogger(path)])
    assert len(path.read_text().splitlines()) == 2  # append=False overwrites


# ----------------------------------------------------------------------------- learning rate


def test_learning_rate_scheduler_sets_the_rate_the_optimizer_uses():
    x, y = make_data(8)  # one batch per epoch
    model = LinearStandIn(optimizer=optimizers.SGD(0.1))
    seen = []
    before = []

    def remember(epoch, logs=None):
        seen.append(float(model.optimizer.learning_rate))
        before.append((model.get_weights(), model.gradients(x, y)[1]))

    history = stand_in_fit(model, x, y, epochs=3, batch_size=8, callbacks=[
        LearningRateScheduler(lambda epoch, lr: lr * 0.5),
        LambdaCallback(on_epoch_begin=remember)])
    assert seen == pytest.approx([0.05, 0.025, 0.0125])
    assert history.history["learning_rate"] == pytest.approx([0.05, 0.025, 0.0125])
    # The step of epoch 1 moved the weights by exactly lr * gradient.
    (w0, grads0), (w1, _) = before[1], before[2]
    np.testing.assert_allclose(w1[0], w0[0] - 0.025 * grads0[0], rtol=1e-5, atol=1e-7)


def test_learning_rate_scheduler_one_argument_form_and_bad_output(capsys):
    x, y = make_data()
    model = LinearStandIn()
    stand_in_fit(model, x, y, epochs=2, callbacks=[
        LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1), verbose=1)])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.02" in \
        capsys.readouterr().out
    with pytest.raises(ValueError, match="should be a finite float.*'fast'"):
        stand_in_fit(LinearStandIn(), x, y, epochs=1,
                     callbacks=[LearningRateScheduler(lambda epoch, lr: "fast")])


def test_reduce_lr_on_plateau_with_patience_and_cooldown():
    x, y = make_data()
    model = LinearStandIn(optimizer=optimizers.SGD(0.1))
    reducer = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1)
    history = stand_in_fit(model, x, y, epochs=7, callbacks=[
        inject("val_loss", [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]), reducer])
    # Reduced at the end of epoch 2 (two epochs without improvement) and of epoch 6
    # (epoch 3 is a cooldown epoch, epoch 4 improves, 5 and 6 do not).
    assert history.history["learning_rate"] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.025)


def test_reduce_lr_on_plateau_respects_min_lr_and_rejects_bad_factor():
    x, y = make_data()
    model = LinearStandIn(optimizer=optimizers.SGD(0.1))
    stand_in_fit(model, x, y, epochs=5, callbacks=[
        inject("val_loss", [1.0] * 5), ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.08)])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.08)
    with pytest.raises(ValueError, match="factor=1.5"):
        ReduceLROnPlateau(factor=1.5)


# ----------------------------------------------------------------------------- small callbacks


def test_terminate_on_nan_stops_at_the_bad_batch(capsys):
    x, y = make_data(32)
    batches = []

    def poison(batch, logs):
        batches.append(batch)
        if len(batches) == 6:  # epoch 1, batch 1
            logs["loss"] = float("nan")

    history = stand_in_fit(LinearStandIn(), x, y, epochs=4, callbacks=[
        LambdaCallback(on_train_batch_end=poison), TerminateOnNaN()])
    assert batches == [0, 1, 2, 3, 0, 1]
    assert history.epoch == [0, 1]
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out


def test_lambda_callback_hooks_and_unknown_names():
    x, y = make_data(16)
    events = []
    stand_in_fit(LinearStandIn(), x, y, epochs=2, callbacks=[LambdaCallback(
        on_train_begin=lambda logs: events.append("begin"),
        on_batch_end=lambda batch, logs: events.append(f"b{batch}"),
        on_epoch_end=lambda epoch, logs: events.append(f"e{epoch}:{logs['loss'] > 0}"),
        on_train_end=lambda logs: events.append("end"))])
    assert events == ["begin", "b0", "b1", "e0:True", "b0", "b1", "e1:True", "end"]
    with pytest.raises(ValueError, match="Unknown hook for LambdaCallback: 'on_epoch_finish'"):
        LambdaCallback(on_epoch_finish=print)


# ----------------------------------------------------------------------------- progress output


EPOCH_LINE = re.compile(r"^Epoch (\d+)/3 - 4 steps - \d+(ms|s) - loss: (\S+) - val_loss: (\S+)$")


@pytest.mark.parametrize("verbose", [1, 2])
def test_progress_without_a_terminal_prints_one_line_per_epoch(capsys, verbose):
    x, y = make_data(32)
    history = stand_in_fit(LinearStandIn(), x, y, epochs=3, verbose=verbose,
                           validation_data=(x, y))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "\r" not in "".join(lines)
    for epoch, line in enumerate(lines):
        match = EPOCH_LINE.match(line)
        assert match, line
        assert int(match.group(1)) == epoch + 1
        assert match.group(3) == f"{history.history['loss'][epoch]:.4f}"
        assert match.group(4) == f"{history.history['val_loss'][epoch]:.4f}"


def test_progress_is_silent_with_verbose_0(capsys):
    x, y = make_data()
    stand_in_fit(LinearStandIn(), x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


class PtyStdout:
    """Points sys.stdout at a pseudo-terminal and collects what the other end reads."""

    def __enter__(self):
        self.master, slave = os.openpty()
        self.stream = io.TextIOWrapper(io.FileIO(slave, "w"), write_through=True)
        self.chunks = []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        self.saved, sys.stdout = sys.stdout, self.stream
        return self

    def _drain(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # the slave side closed
                return
            if not data:
                return
            self.chunks.append(data)

    def __exit__(self, *exc):
        sys.stdout = self.saved
        self.stream.close()
        self.reader.join(timeout=5)
        os.close(self.master)
        # The terminal turns "\n" into "\r\n"; undo that so tests see what was written.
        self.text = b"".join(self.chunks).decode().replace("\r\n", "\n")


def test_progress_on_a_terminal_redraws_a_bar_with_eta():
    x, y = make_data(32)

    def slow_batch(batch, logs):
        time.sleep(0.06)  # longer than the bar's redraw interval: every batch redraws

    with PtyStdout() as terminal:
        history = stand_in_fit(LinearStandIn(), x, y, epochs=2, verbose=1,
                               validation_data=(x, y),
                               callbacks=[LambdaCallback(on_train_batch_end=slow_batch)])
    text = terminal.text
    assert text.startswith("Epoch 1/2\n\r1/4 [")
    assert text.count("ETA:") >= 4
    assert re.search(r"\r2/4 \[=+>\.+\] - ETA: \S+ - loss: \d\.\d{4}", text)
    final = [line.rsplit("\r", 1)[-1] for line in text.split("\n") if "4/4" in line]
    assert len(final) == 2
    for epoch, line in enumerate(final):
        assert line.startswith("4/4 [" + "=" * 30 + "] - ")
        assert re.search(r"\d+(ms|s) \d+ms/step - loss: ", line)
        assert line.rstrip().endswith(f"val_loss: {history.history['val_loss'][epoch]:.4f}")
    assert "Epoch 2/2\n" in text


def test_progbar_averages_values_unless_stateful(capsys):
    bar = Progbar(target=3, verbose=2, stateful_metrics=["acc"], prefix="Eval")
    bar.update(1, [("loss", 1.0), ("acc", 0.2)])
    bar.update(3, [("loss", 4.0), ("acc", 0.9)])
    # loss: (1 * 1 step + 4 * 2 steps) / 3 steps = 3.0; acc shown as given.
    assert re.fullmatch(r"Eval - 3 steps - \S+ - loss: 3\.0000 - acc: 0\.9000\n",
                        capsys.readouterr().out)
    Progbar(target=None, verbose=2).add(1, [("tiny", 1e-5)])  # unknown target: not final
    Progbar(target=1, verbose=2).update(1, [("tiny", 1e-5)])
    assert re.fullmatch(r"1 step - \d+ms - tiny: 1\.0000e-05\n", capsys.readouterr().out)


def test_progbar_logger_during_evaluate(capsys):
    logger = ProgbarLogger()
    cbs = CallbackList([logger], verbose=1, epochs=1, steps=2)
    cbs.on_test_begin()
    cbs.on_test_batch_end(0, {"loss": 0.5})
    cbs.on_test_batch_end(1, {"loss": 0.25})
    cbs.on_test_end({"loss": 0.25, "accuracy": 0.75})
    assert re.fullmatch(r"2 steps - \S+ - loss: 0\.2500 - accuracy: 0\.7500\n",
                        capsys.readouterr().out)


# ----------------------------------------------------------------------------- TensorBoard


def read_events(directory):
    """Every (tag, step, value-or-histogram) in the event files of `directory`."""
    from tensorboardX.crc32c import crc32c
    from tensorboardX.proto import event_pb2

    def masked(data):
        crc = crc32c(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    found = []
    for name in sorted(os.listdir(directory)):
        assert name.startswith("events.out.tfevents."), name
        raw = (directory / name).read_bytes()
        offset = 0
        while offset < len(raw):
            header = raw[offset:offset + 8]
            (length,), (header_crc,) = struct.unpack("<Q", header), \
                struct.unpack("<I", raw[offset + 8:offset + 12])
            assert header_crc == masked(header)
            data = raw[offset + 12:offset + 12 + length]
            (data_crc,) = struct.unpack("<I", raw[offset + 12 + length:offset + 16 + length])
            assert data_crc == masked(data)
            offset += 16 + length
            event = event_pb2.Event.FromString(data)
            for value in event.summary.value:
                payload = value.histo if value.HasField("histo") else value.simple_value
                found.append((value.tag, event.step, payload))
    return found


@needs_tensorboardx
def test_tensorboard_writes_scalars_readable_back(tmp_path):
    x, y = make_data(32)
    model = LinearStandIn()
    history = stand_in_fit(model, x, y, epochs=3, validation_data=(x, y), callbacks=[
        TensorBoard(tmp_path / "run", update_freq=2, histogram_freq=2)])
    train = read_events(tmp_path / "run" / "train")
    validation = read_events(tmp_path / "run" / "validation")

    def series(events, tag):
        return {step: value for t, step, value in events if t == tag}

    epoch_loss = series(train, "epoch_loss")
    assert sorted(epoch_loss) == [0, 1, 2]
    assert [epoch_loss[e] for e in range(3)] == pytest.approx(history.history["loss"], rel=1e-6)
    val_loss = series(validation, "epoch_loss")
    assert [val_loss[e] for e in range(3)] == pytest.approx(history.history["val_loss"],
                                                            rel=1e-6)
    assert sorted(series(train, "batch_loss")) == [2, 4, 6, 8, 10, 12]
    assert series(train, "epoch_learning_rate") == {0: pytest.approx(0.05)} | {
        1: pytest.approx(0.05), 2: pytest.approx(0.05)}
    # Evaluation against the optimizer step: 4, 8, 12 steps done after each epoch.
    assert sorted(series(validation, "evaluation_loss_vs_iterations")) == [4, 8, 12]
    histograms = series(train, model.kernel.name)
    assert sorted(histograms) == [0, 2]
    assert histograms[2].num == 3
    assert histograms[2].sum == pytest.approx(float(model.kernel.numpy().sum()), rel=1e-5)


def test_tensorboard_without_tensorboardx_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # makes the import fail
    with pytest.raises(ImportError) as error:
        TensorBoard("logs")
    assert "pip install tensorboardX" in str(error.value)
    assert "distflow[" not in str(error.value)  # `distflow` on the index is another project


@needs_tensorboardx
def test_tensorboard_rejects_bad_update_freq():
    with pytest.raises(ValueError, match="update_freq='often'"):
        TensorBoard("logs", update_freq="often")


# ----------------------------------------------------------------------------- BackupAndRestore


class Interrupt(Exception):
    pass


def crash_at(epoch_to_crash, batch_to_crash):
    """A callback raising `Interrupt` after batch `batch_to_crash` of epoch `epoch_to_crash`."""
    current = {}

    def on_train_batch_end(batch, logs):
        if current["epoch"] == epoch_to_crash and batch == batch_to_crash:
            raise Interrupt(f"simulated crash in epoch {epoch_to_crash} batch {batch}")

    return LambdaCallback(on_epoch_begin=lambda epoch, logs: current.update(epoch=epoch),
                          on_train_batch_end=on_train_batch_end)


def adam_model(seed=0):
    return LinearStandIn(optimizer=optimizers.Adam(0.05), seed=seed)


def started_epochs():
    starts = []
    return starts, LambdaCallback(on_epoch_begin=lambda epoch, logs: starts.append(epoch))


def test_backup_and_restore_resumes_with_the_same_final_weights(tmp_path):
    x, y = make_data(32)
    reference = adam_model()
    stand_in_fit(reference, x, y, epochs=5)

    backup_dir = tmp_path / "backup"
    first = adam_model()
    with pytest.raises(Interrupt):
        stand_in_fit(first, x, y, epochs=5, callbacks=[
            BackupAndRestore(backup_dir), crash_at(epoch_to_crash=3, batch_to_crash=1)])
    assert os.listdir(backup_dir) == ["backup.safetensors"]

    # A new process would build a new model: other initial values, other variable names.
    second = adam_model(seed=7)
    assert second.kernel.name != first.kernel.name
    starts, recorder = started_epochs()
    history = stand_in_fit(second, x, y, epochs=5,
                           callbacks=[BackupAndRestore(backup_dir), recorder])
    assert starts == [3, 4]
    assert history.epoch == [3, 4]
    assert second.optimizer.iterations == reference.optimizer.iterations == 20
    for resumed, uninterrupted in zip(second.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(resumed, uninterrupted)
    assert not backup_dir.exists()  # deleted once training completed


def test_backup_and_restore_keeps_backup_when_asked_and_restores_learning_rate(tmp_path):
    x, y = make_data(16)
    model = adam_model()
    stand_in_fit(model, x, y, epochs=2, callbacks=[
        LearningRateScheduler(lambda epoch, lr: 0.01 / (epoch + 1)),
        BackupAndRestore(tmp_path, delete_checkpoint=False)])
    from distflow.serialization import load_file
    tensors, metadata = load_file(str(tmp_path / "backup.safetensors"))
    assert metadata["epoch"] == "2"
    assert float(metadata["learning_rate"]) == pytest.approx(0.005)
    assert len([k for k in tensors if k.startswith("weights/")]) == 2
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]
    fresh = adam_model(seed=3)
    starts, recorder = started_epochs()
    stand_in_fit(fresh, x, y, epochs=3, callbacks=[BackupAndRestore(tmp_path), recorder])
    assert starts == [2]
    # 0.005 was restored, then the step ran with it (no scheduler in this run).
    assert float(fresh.optimizer.learning_rate) == pytest.approx(0.005)


def test_backup_and_restore_int_save_freq_restarts_the_interrupted_epoch(tmp_path):
    x, y = make_data(32)
    with pytest.raises(Interrupt):
        stand_in_fit(adam_model(), x, y, epochs=4, callbacks=[
            BackupAndRestore(tmp_path, save_freq=2), crash_at(epoch_to_crash=2,
                                                              batch_to_crash=2)])
    starts, recorder = started_epochs()
    model = adam_model()
    stand_in_fit(model, x, y, epochs=4, callbacks=[BackupAndRestore(tmp_path, save_freq=2),
                                                   recorder])
    assert starts == [2, 3]
    # 4 batches per epoch, a backup every 2: the last one before the crash followed
    # the second batch of epoch 2 (4 + 4 + 2 steps); then epochs 2 and 3 ran in full.
    assert model.optimizer.iterations == 4 + 4 + 2 + 2 * 4


def test_backup_and_restore_errors(tmp_path):
    with pytest.raises(ValueError, match="backup_dir"):
        BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq='daily'"):
        BackupAndRestore(tmp_path, save_freq="daily")
    x, y = make_data(16)
    stand_in_fit(adam_model(), x, y, epochs=1,
                 callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    wider = LinearStandIn(n_inputs=4, optimizer=optimizers.Adam(0.05))
    with pytest.raises(ValueError, match="does not fit this model.*Delete the backup"):
        stand_in_fit(wider, np.ones((16, 4), np.float32), y, epochs=2,
                     callbacks=[BackupAndRestore(tmp_path)])


def test_backup_and_restore_on_a_non_chief_restores_but_never_writes(tmp_path):
    x, y = make_data(16)
    with training_context.use_training_context(NotChief()):
        stand_in_fit(adam_model(), x, y, epochs=2, callbacks=[BackupAndRestore(tmp_path / "a")])
    assert not (tmp_path / "a").exists()
    stand_in_fit(adam_model(), x, y, epochs=1,
                 callbacks=[BackupAndRestore(tmp_path / "b", delete_checkpoint=False)])
    starts, recorder = started_epochs()
    with training_context.use_training_context(NotChief()):
        stand_in_fit(adam_model(), x, y, epochs=3,
                     callbacks=[BackupAndRestore(tmp_path / "b"), recorder])
    assert starts == [1, 2]
    assert (tmp_path / "b" / "backup.safetensors").exists()  # only the chief deletes


def test_no_warning_noise_from_a_plain_fit():
    x, y = make_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stand_in_fit(LinearStandIn(), x, y, epochs=2, validation_data=(x, y), callbacks=[
            EarlyStopping(), ReduceLROnPlateau(), TerminateOnNaN()])


# ----------------------------------------------------------------------------- real Model.fit


def real_model(seed=0, learning_rate=0.01):
    from distflow.keras import layers, models

    df.random.set_seed(seed)
    model = models.Sequential([layers.Input((3,)), layers.Dense(8, activation="relu"),
                               layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(learning_rate), loss="mse", metrics=["mae"])
    return model


def regression_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, x @ np.array([[1.0], [-2.0], [0.5]], np.float32)


def test_real_fit_early_stopping_restores_the_best_epoch():
    x, y = regression_data()
    model = real_model()
    snapshots = WeightsPerEpoch()
    # The validation targets are the negated training targets: the better the model
    # fits the training data, the worse val_loss gets, so it is best after epoch 0.
    history = model.fit(x, y, batch_size=16, epochs=20, verbose=0, shuffle=False,
                        validation_data=(x, -y), callbacks=[
                            snapshots, EarlyStopping(patience=2, restore_best_weights=True)])
    val_loss = history.history["val_loss"]
    best = int(np.argmin(val_loss))
    assert len(history.epoch) == best + 3 < 20
    for restored, saved in zip(model.get_weights(), snapshots.snapshots[best]):
        np.testing.assert_array_equal(restored, saved)
    assert model.evaluate(x, -y, verbose=0)[0] == pytest.approx(val_loss[best], rel=1e-5)


def test_real_fit_checkpoint_best_only_reloads_to_the_same_predictions(tmp_path):
    from distflow.keras.models import load_model

    x, y = regression_data()
    model = real_model()
    snapshots = WeightsPerEpoch()
    history = model.fit(x, y, batch_size=16, epochs=4, verbose=0, shuffle=False,
                        validation_data=(x[:16], y[:16]), callbacks=[
                            snapshots, ModelCheckpoint(str(tmp_path / "best.keras"),
                                                       save_best_only=True)])
    best = int(np.argmin(history.history["val_loss"]))
    reloaded = load_model(tmp_path / "best.keras")
    model.set_weights(snapshots.snapshots[best])
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_real_fit_progress_csv_and_learning_rate(tmp_path, capsys):
    x, y = regression_data()
    model = real_model()
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=1, validation_split=0.25,
                        callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1)),
                                   CSVLogger(tmp_path / "log.csv")])  # sees "learning_rate"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        assert re.fullmatch(rf"Epoch {epoch + 1}/3 - 3 steps - \S+ - loss: \S+ - mae: \S+ - "
                            r"val_loss: \S+ - val_mae: \S+ - learning_rate: \S+", line), line
        assert f"val_mae: {history.history['val_mae'][epoch]:.4f}" in line
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,learning_rate,loss,mae,val_loss,val_mae"
    assert [float(row.split(",")[1]) for row in rows[1:]] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 / 3)


def test_real_fit_backup_and_restore_resumes_after_a_crash(tmp_path):
    x, y = regression_data()
    reference = real_model(seed=0)
    reference.fit(x, y, batch_size=16, epochs=4, verbose=0, shuffle=False)

    interrupted = real_model(seed=0)
    with pytest.raises(Interrupt):
        interrupted.fit(x, y, batch_size=16, epochs=4, verbose=0, shuffle=False, callbacks=[
            BackupAndRestore(tmp_path / "backup"), crash_at(epoch_to_crash=2, batch_to_crash=1)])
    resumed = real_model(seed=5)  # as a restarted process would build it
    starts, recorder = started_epochs()
    history = resumed.fit(x, y, batch_size=16, epochs=4, verbose=0, shuffle=False,
                          callbacks=[BackupAndRestore(tmp_path / "backup"), recorder])
    assert starts == [2, 3] and history.epoch == [2, 3]
    assert resumed.optimizer.iterations == reference.optimizer.iterations == 16
    for got, expected in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert not (tmp_path / "backup").exists()


def test_progbar_is_reachable_from_utils_as_in_keras():
    from distflow.keras.utils import Progbar as FromUtils

    assert FromUtils is Progbar


def test_a_callback_written_with_keras_2_batch_hooks_is_called_by_fit():
    """Keras 3's on_train_batch_begin/end call the Keras 2 names on_batch_begin/end, so a
    callback overriding only those sees every training batch, as in Keras."""
    seen = []

    class Old(Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch, sorted(logs)))

    model = df.keras.Sequential([df.keras.Input((2,)), df.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=4, epochs=1, verbose=0,
              callbacks=[Old()])
    assert seen == [("begin", 0), ("end", 0, ["loss"]), ("begin", 1), ("end", 1, ["loss"])]
