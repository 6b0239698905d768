"""Workers with two BLAS threads under the launcher: their conv + pool and LSTM ops run
half of each batch in a twin process, and the run still is one model trained through
the servers (the servers' version is the number of steps, the workers' weights are
identical and equal those of one plain process on one thread at the global batch)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_launch_e2e import run_launcher, worker_json
from test_launch_supervisor import clean_env
from test_tf_way_launch import server_versions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROWS, BATCH, EPOCHS = 128, 32, 2

SCRIPT = f"""
import json
import numpy as np
import distflow as tf
from distflow import twin
from distflow.keras import layers

rng = np.random.default_rng(0)
x = rng.normal(size=({ROWS}, 8, 8, 1)).astype("float32")
y = (x[:, :4].sum(axis=(1, 2, 3)) > 0).astype("int64")
tf.keras.utils.set_random_seed(1)
strategy = tf.distribute.get_strategy()  # local alone, mirrored under the launcher
with strategy.scope():
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)),
        layers.Conv2D(4, 3, padding="same", activation="relu"),  # conv + pool: one op
        layers.MaxPooling2D(),
        layers.Reshape((4, 16)),
        layers.LSTM(8),  # the whole-sequence op
        layers.Dense(2),
    ])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
print("start", json.dumps([w.ravel().tolist() for w in model.get_weights()]), flush=True)
model.fit(x, y, epochs={EPOCHS}, batch_size={BATCH}, shuffle=False, verbose=0)
print("twins", json.dumps({{**twin.counts(), "pids": len(twin.pids())}}), flush=True)
print("final", json.dumps([w.ravel().tolist() for w in model.get_weights()]), flush=True)
"""


def _one_process(tmp_path) -> list[np.ndarray]:
    """The script's final weights, run alone with one thread (no twins)."""
    env = clean_env(tmp_path)  # no cluster description, one BLAS thread
    (tmp_path / "alone.py").write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run([sys.executable, "alone.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("final ")][0]
    return [np.array(w) for w in json.loads(line[len("final "):])]


def test_workers_with_twins_train_one_model_through_the_servers(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", "--strategy", "mirrored",
                          "--blas-threads", "2", script=SCRIPT, timeout=200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert server_versions(output) == [EPOCHS * ROWS // BATCH], output[-3000:]
    twins = worker_json(result.stdout, "twins")
    assert sorted(twins) == [0, 1]
    for counts in twins.values():  # every fused op's ranges reached the worker's twin
        assert counts["pids"] == 1 and counts["twins"] > 0 and counts["threads"] == 0, counts
    weights = worker_json(result.stdout, "final")
    assert sorted(weights) == [0, 1]
    for a, b in zip(weights[0], weights[1]):
        np.testing.assert_array_equal(a, b)
    start = worker_json(result.stdout, "start")[0]
    moved = [np.abs(np.subtract(a, b)).max() for a, b in zip(weights[0], start)]
    assert max(moved) > 1e-3, moved  # training moved the weights
    alone = _one_process(tmp_path)
    scale = max(np.abs(w).max() for w in alone)
    for mirrored, single in zip(weights[0], alone):
        np.testing.assert_allclose(mirrored, single, rtol=0, atol=1e-5 * scale)
