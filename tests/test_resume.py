"""Resuming a whole run: every process stopped, then the same command started again.

A Keras `fit` under the launcher (2 mirrored workers, 1 server with a checkpoint
directory) runs 2 epochs and exits; the servers write their final checkpoint.
Started again with `--epochs 4` and the same checkpoint directory, the run must
continue at epoch 3 (index 2) from the saved parameters and optimizer state,
and end where an uninterrupted 4-epoch run ends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_launch_e2e import run_launcher, worker_json

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TRAIN = """
import json, sys
import numpy as np
import distflow as df
from distflow import keras

strategy = df.distribute.get_strategy()
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4)).astype("float32")
y = (x @ np.array([1.0, -2.0, 0.5, 0.3]) > 0).astype("float32")
with strategy.scope():
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1,
                              kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=int(sys.argv[1]), batch_size=32, verbose=0)
print("result", json.dumps({"epochs": history.epoch,
                            "weights": model.layers[0].kernel.numpy().ravel().tolist()}),
      flush=True)
"""


def _run(workdir: Path, checkpoints: Path, epochs: int) -> list[dict]:
    result = run_launcher(workdir, "--workers", "2", "--ps", "1", "--strategy", "mirrored",
                          "--checkpoint-dir", str(checkpoints), "--checkpoint-every", "1000",
                          script=TRAIN, script_args=(str(epochs),), timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = worker_json(result.stdout, "result")
    assert sorted(found) == [0, 1], result.stdout[-3000:]
    return [found[0], found[1]]


def test_a_stopped_run_resumes_at_the_next_epoch_and_ends_like_an_uninterrupted_one(
        tmp_path):
    checkpoints = tmp_path / "ckpt"
    first = _run(tmp_path, checkpoints, epochs=2)
    assert [r["epochs"] for r in first] == [[0, 1], [0, 1]]
    assert any(checkpoints.rglob("*")), "the servers wrote no checkpoint"
    resumed = _run(tmp_path, checkpoints, epochs=4)
    assert [r["epochs"] for r in resumed] == [[2, 3], [2, 3]]

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    uninterrupted = _run(fresh, fresh / "ckpt", epochs=4)
    assert uninterrupted[0]["epochs"] == [0, 1, 2, 3]
    np.testing.assert_allclose(resumed[0]["weights"], uninterrupted[0]["weights"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(resumed[1]["weights"], resumed[0]["weights"], rtol=0, atol=0)


MID_EPOCH = """
import json, os, sys
import numpy as np
import distflow as df
from distflow import keras


class StopAt(keras.callbacks.Callback):
    # The chief dies before its step 5 of epoch 1 (index) in the first run only.
    def on_train_batch_begin(self, batch, logs=None):
        if os.environ.get("STOP") and self.epoch == 1 and batch == 5 and \\
                os.environ["DISTFLOW_RANK"] == "0":
            raise SystemExit(7)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


strategy = df.distribute.get_strategy()
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4)).astype("float32")
y = (x @ np.array([1.0, -2.0, 0.5, 0.3]) > 0).astype("float32")
with strategy.scope():
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1,
                              kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
history = model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[StopAt()])
print("result", json.dumps({"epochs": history.epoch,
                            "weights": model.layers[0].kernel.numpy().ravel().tolist()}),
      flush=True)
"""


def test_a_run_stopped_mid_epoch_resumes_at_the_recorded_step(tmp_path, monkeypatch):
    checkpoints = tmp_path / "ckpt"
    args = ("--workers", "2", "--ps", "1", "--strategy", "mirrored", "--checkpoint-dir",
            str(checkpoints), "--checkpoint-every", "1000")
    monkeypatch.setenv("STOP", "1")
    stopped = run_launcher(tmp_path, *args, script=MID_EPOCH, timeout=120)
    assert stopped.returncode == 7, (stopped.stdout + stopped.stderr)[-3000:]
    monkeypatch.delenv("STOP")
    resumed = run_launcher(tmp_path, *args, script=MID_EPOCH, timeout=120)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert "[worker 0] resumed at epoch 1, step 5" in output
    assert "[worker 1] resumed at epoch 1, step 5" in output
    found = worker_json(resumed.stdout, "result")
    assert [found[0]["epochs"], found[1]["epochs"]] == [[1, 2], [1, 2]]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    whole = run_launcher(fresh, *args[:-4], script=MID_EPOCH, timeout=120)
    assert whole.returncode == 0, (whole.stdout + whole.stderr)[-3000:]
    np.testing.assert_allclose(found[0]["weights"], worker_json(whole.stdout, "result")[0][
        "weights"], rtol=1e-5, atol=1e-6)
    again = run_launcher(tmp_path, *args, script=MID_EPOCH, timeout=120)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "already finished" in again.stdout + again.stderr
