"""Learning-rate changes reach the parameter servers (the push's `learning_rate` field).

Servers run in a thread of this process (real ROUTER/DEALER sockets on 127.0.0.1) or,
where a crash matters, as a real process killed with SIGKILL. Expected values come
from the same training run locally, or from NumPy arithmetic on the gradients sent.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_ps_client import _free_port

import distflow as df
from distflow import optimizers
from distflow.distribute import ClusterSpec
from distflow.distribute import strategy as strategy_module
from distflow.distribute.client import PSClient, PSError
from distflow.keras import callbacks, layers
from distflow.keras.functional import Input
from distflow.keras.models import Sequential

pytestmark = pytest.mark.timeout(90)

SGD = {"name": "sgd", "hp": {"momentum": 0.0, "nesterov": False}, "learning_rate": 1.0}
REPO = Path(__file__).resolve().parents[1]


def _mirrored(server, workers=1, index=0):
    return strategy_module.MirroredStrategy(cluster=ClusterSpec(
        ps_addrs=(server.address,), num_workers=workers, worker_index=index,
        heartbeat_timeout=30.0))


# ---------------------------------------------------------------- custom loop

def _loop(make_optimizer, changes, steps=15):
    """A two-layer net trained with a custom loop; `changes` maps step -> new rate."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = np.tanh(x @ rng.normal(size=(4, 2))).astype("float32")
    w1 = df.Variable(rng.normal(size=(4, 8)).astype("float32") * 0.5, name="net/w1")
    w2 = df.Variable(rng.normal(size=(8, 2)).astype("float32") * 0.5, name="net/w2")
    opt = make_optimizer()
    for step in range(steps):
        if step in changes:
            opt.learning_rate = changes[step]
        rows = slice((step * 16) % 48, (step * 16) % 48 + 16)
        with df.GradientTape() as tape:
            pred = df.matmul(df.tanh(df.matmul(df.constant(x[rows]), w1)), w2)
            loss = df.reduce_mean((pred - y[rows]) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, [w1, w2]), [w1, w2]))
    return [w1.numpy(), w2.numpy()]


@pytest.mark.parametrize("make_optimizer,changes", [
    (lambda: optimizers.SGD(0.1, momentum=0.9), {5: 0.02, 10: 0.3}),
    (lambda: optimizers.Adam(0.01), {4: 0.05, 9: 0.0, 12: 0.001}),
    (lambda: optimizers.SGD(optimizers.schedules.ExponentialDecay(0.2, 3, 0.5)), {7: 0.05}),
], ids=["sgd-momentum", "adam", "schedule-replaced-by-number"])
def test_a_custom_loop_changing_the_rate_equals_local_training(servers, make_optimizer,
                                                                changes):
    local = _loop(make_optimizer, changes)
    unchanged = _loop(make_optimizer, {})
    server = servers(mode="sync")
    strategy = _mirrored(server)
    try:
        with strategy.scope():
            remote = _loop(make_optimizer, changes)
    finally:
        strategy.close()
    assert server.version == 15
    assert server.stats_dict()["learning_rate"] == pytest.approx(changes[max(changes)])
    for a, b, c in zip(local, remote, unchanged):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        assert np.abs(a - c).max() > 1e-3  # the changes matter: the test can fail


# ---------------------------------------------------------------- fit with callbacks

def _fit(lr_callback, strategy=None, epochs=4):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 2))).astype("float32")
    model = Sequential([Input(shape=(4,)), layers.Dense(8, activation="tanh"), layers.Dense(2)])
    init = np.random.default_rng(4)
    model.set_weights([init.normal(size=w.shape).astype("float32") * 0.3
                       for w in model.get_weights()])
    model.compile(optimizer=optimizers.SGD(0.1, momentum=0.5), loss="mse")
    scope = strategy.scope() if strategy is not None else _nothing()
    with scope:
        history = model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0,
                            callbacks=[lr_callback()])
    return model.get_weights(), history.history["learning_rate"]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("lr_callback", [
    lambda: callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.3 ** epoch),
    lambda: callbacks.ReduceLROnPlateau(monitor="loss", factor=0.25, patience=0,
                                        min_delta=100.0),
], ids=["scheduler", "reduce-on-plateau"])
def test_fit_with_a_rate_callback_under_a_mirrored_worker_equals_a_local_fit(servers,
                                                                            lr_callback):
    local, local_rates = _fit(lr_callback)
    assert len(set(local_rates)) > 1  # the callback did change the rate
    server = servers(mode="sync")
    strategy = _mirrored(server)
    try:
        remote, remote_rates = _fit(lr_callback, strategy)
    finally:
        strategy.close()
    assert remote_rates == local_rates
    assert server.stats_dict()["learning_rate"] == pytest.approx(local_rates[-1])
    for a, b in zip(local, remote):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_bad_learning_rate_is_rejected_and_changes_nothing(servers, mode):
    server = servers(mode=mode)
    grad = {"w": np.array([1.0, -2.0, 3.0], "float32")}
    bad = [float("nan"), float("inf"), -0.5, "0.1", True, [0.1]]
    with PSClient([server.address], worker_id=0, timeout=10) as client:
        start = client.init({"w": np.array([0.5, 0.5, 0.5], "float32")}, SGD)["w"]
        for value in bad:
            with pytest.raises(PSError, match="learning_rate") as caught:
                client.push_pull(grad, learning_rate=value)
            assert caught.value.reason == "bad_learning_rate"
            np.testing.assert_array_equal(client.pull()["w"], start)
        stats = client.stats()[0]
        assert stats["rejected"]["bad_learning_rate"] == len(bad)
        assert stats["version"] == 0 and stats["learning_rate"] == 1.0
        after = client.push_pull(grad)["w"]  # still the first rate, 1.0
        np.testing.assert_allclose(after, start - grad["w"])
        stopped = client.push_pull(grad, learning_rate=0)["w"]  # 0 is a valid rate
        np.testing.assert_array_equal(stopped, after)


def test_sync_a_step_takes_the_lowest_ranked_workers_rate(servers):
    server = servers(mode="sync", num_workers=2)
    w0 = np.zeros(2, "float32")
    g = [np.array([1.0, 2.0], "float32"), np.array([3.0, -2.0], "float32")]
    with PSClient([server.address], worker_id=0, timeout=10) as chief, \
            PSClient([server.address], worker_id=1, timeout=10) as other:
        chief.init({"w": w0}, SGD)
        other.init({"w": w0}, SGD)
        # Step 1: worker 1 says 0.5 first, the chief says 0.25: the chief's wins.
        result = _push_both(server, chief, other, g, chief_lr=0.25, other_lr=0.5)
        expected = w0 - 0.25 * (g[0] + g[1]) / 2
        np.testing.assert_allclose(result, expected, rtol=1e-6)
        # Step 2: only worker 1 sends a rate: it is the lowest rank that sent one.
        result = _push_both(server, chief, other, g, chief_lr=None, other_lr=0.5)
        np.testing.assert_allclose(result, expected - 0.5 * (g[0] + g[1]) / 2, rtol=1e-6)


def _push_both(server, chief, other, grads, chief_lr, other_lr):
    done = {}
    thread = threading.Thread(target=lambda: done.update(
        other=other.push_pull({"w": grads[1]}, learning_rate=other_lr)["w"]))
    thread.start()
    deadline = time.monotonic() + 10
    while server.workers[1].pending is None:  # worker 1's push is in the step first
        assert time.monotonic() < deadline, "worker 1's push never reached the server"
        time.sleep(0.005)
    mine = chief.push_pull({"w": grads[0]}, learning_rate=chief_lr)["w"]
    thread.join(10)
    np.testing.assert_array_equal(mine, done["other"])
    return mine


def test_async_the_latest_rate_received_wins(servers):
    server = servers(mode="async", num_workers=2)
    g = np.array([1.0, -1.0], "float32")
    with PSClient([server.address], worker_id=0, timeout=10) as a, \
            PSClient([server.address], worker_id=1, timeout=10) as b:
        w = a.init({"w": np.zeros(2, "float32")}, SGD)["w"]
        b.init({"w": w}, SGD)
        w1 = b.push_pull({"w": g}, learning_rate=0.5)["w"]
        w2 = a.push_pull({"w": g}, learning_rate=0.125)["w"]
        w3 = b.push_pull({"w": g})["w"]  # no field: the latest rate (0.125) stays
    np.testing.assert_allclose(w1, w - 0.5 * g)
    np.testing.assert_allclose(w2, w1 - 0.125 * g)
    np.testing.assert_allclose(w3, w2 - 0.125 * g)


# ---------------------------------------------------------------- checkpoints

def _server_process(address, checkpoint_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for key in [k for k in env if k.startswith("DISTFLOW_")]:
        del env[key]
    return subprocess.Popen([sys.executable, "-m", "distflow.distribute.server",
                             "--address", address, "--mode", "sync", "--num-workers", "1",
                             "--checkpoint-dir", str(checkpoint_dir), "--checkpoint-every",
                             "100", "--stats-interval", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_rate_change_survives_a_killed_server(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    g = np.array([1.0, 2.0], "float32")
    proc = _server_process(address, tmp_path)
    try:
        with PSClient([address], worker_id=0, timeout=20) as client:
            w = client.init({"w": np.zeros(2, "float32")}, SGD)["w"]
            w = client.push_pull({"w": g})["w"]
            w = client.push_pull({"w": g}, learning_rate=0.25)["w"]
            proc.send_signal(signal.SIGKILL)  # no final checkpoint
            proc.wait(20)
            # The change forced a checkpoint (checkpoint_every is 100): the restarted
            # server resumes at version 2 with the new rate.
            proc = _server_process(address, tmp_path)
            hello = client.hello()[0]
            assert hello["learning_rate"] == 0.25 and hello["version"] == 2
            after = client.push_pull({"w": g})["w"]
        np.testing.assert_allclose(after, w - 0.25 * g)
        np.testing.assert_allclose(w, -1.0 * g - 0.25 * g)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_a_restarted_worker_adopts_the_servers_rate(servers, tmp_path):
    w1 = df.Variable(np.zeros((4, 8), "float32"), name="restart/w1")
    w2 = df.Variable(np.zeros((8, 2), "float32"), name="restart/w2")
    server = servers(mode="sync", checkpoint_dir=str(tmp_path))
    with PSClient([server.address], worker_id=0, timeout=10) as client:
        client.init({w1.name: w1.numpy(), w2.name: w2.numpy()}, {**SGD, "learning_rate": 0.1})
        client.push_pull({w1.name: np.ones((4, 8), "float32"),
                          w2.name: np.ones((8, 2), "float32")}, learning_rate=0.03)
    server.stop()
    restored = servers(mode="sync", checkpoint_dir=str(tmp_path))  # loads the final checkpoint
    strategy = _mirrored(restored)
    opt = optimizers.SGD(0.1)
    grad = np.full((4, 8), 2.0, "float32")
    try:
        with strategy.scope():
            opt.apply_gradients([(grad, w1), (np.zeros((8, 2), "float32"), w2)])
    finally:
        strategy.close()
    assert math.isclose(opt.learning_rate, 0.03, rel_tol=1e-6)  # a float32 variable
    restored_w1 = -0.03 * np.ones((4, 8))  # the update made before the restart
    np.testing.assert_allclose(w1.numpy(), restored_w1 - 0.03 * grad, rtol=1e-6)
