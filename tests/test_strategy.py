"""Strategies: environment mapping, and custom GradientTape loops through real servers.

Servers run in a thread of this process (real ROUTER sockets on loopback) or,
for several workers, everything runs under the launcher as real processes.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_launch_e2e import LR, ROWS, STEPS, final_weights, run_launcher

import distflow as df
from distflow import optimizers
from distflow.distribute import ClusterSpec
from distflow.distribute import strategy as strategy_module
from distflow.distribute.server import ParameterServer, ServerConfig

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server():
    ps = ParameterServer(ServerConfig(mode="sync", num_workers=1, heartbeat_timeout=10.0,
                                      stats_interval=0))
    ps.start()
    yield ps
    ps.stop()


def _data(rows=48):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 4)).astype("float32")
    y = np.tanh(x @ rng.normal(size=(4, 2))).astype("float32")
    return x, y


def _train(make_optimizer, steps=15):
    """A two-layer net trained with a custom loop; returns the final weights."""
    x, y = _data()
    rng = np.random.default_rng(2)
    w1 = df.Variable(rng.normal(size=(4, 8)).astype("float32") * 0.5, name="net/w1")
    w2 = df.Variable(rng.normal(size=(8, 2)).astype("float32") * 0.5, name="net/w2")
    opt = make_optimizer()
    for step in range(steps):
        rows = slice((step * 16) % 48, (step * 16) % 48 + 16)
        with df.GradientTape() as tape:
            pred = df.matmul(df.tanh(df.matmul(df.constant(x[rows]), w1)), w2)
            loss = df.reduce_mean((pred - y[rows]) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, [w1, w2]), [w1, w2]))
    return [w1.numpy(), w2.numpy()], opt


@pytest.mark.parametrize("make_optimizer", [
    lambda: optimizers.Adam(0.01),
    lambda: optimizers.SGD(optimizers.schedules.ExponentialDecay(0.1, 5, 0.5), momentum=0.9),
    lambda: optimizers.RMSprop(0.01, centered=True),
], ids=["adam", "sgd-momentum-schedule", "rmsprop"])
def test_one_worker_through_the_server_equals_local_training(server, make_optimizer):
    local, _ = _train(make_optimizer)
    strategy = strategy_module.MirroredStrategy(
        cluster=ClusterSpec(ps_addrs=(server.address,), num_workers=1, heartbeat_timeout=10.0))
    try:
        with strategy.scope():
            remote, opt = _train(make_optimizer)
    finally:
        strategy.close()
    assert opt.iterations == 15 and server.version == 15
    for a, b in zip(local, remote):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_outside_the_scope_the_optimizer_updates_locally(server):
    strategy = strategy_module.MirroredStrategy(
        cluster=ClusterSpec(ps_addrs=(server.address,), num_workers=1))
    try:
        with strategy.scope():
            pass
        _train(lambda: optimizers.SGD(0.1), steps=2)
    finally:
        strategy.close()
    assert server.version == 0 and not server.initialized


def test_get_strategy_follows_the_environment(monkeypatch):
    monkeypatch.setattr(strategy_module, "_current", None)
    for key in ("DISTFLOW_PS_ADDRS", "DISTFLOW_ROLE"):
        monkeypatch.delenv(key, raising=False)
    assert isinstance(strategy_module.get_strategy(), strategy_module.LocalStrategy)
    monkeypatch.setattr(strategy_module, "_current", None)
    monkeypatch.setenv("DISTFLOW_PS_ADDRS", "tcp://127.0.0.1:1,tcp://127.0.0.1:2")
    monkeypatch.setenv("DISTFLOW_NUM_WORKERS", "3")
    monkeypatch.setenv("DISTFLOW_RANK", "2")
    monkeypatch.setenv("DISTFLOW_STRATEGY", "async")
    monkeypatch.setenv("DISTFLOW_MAX_STALENESS", "4")
    monkeypatch.setenv("DISTFLOW_HEARTBEAT_TIMEOUT", "7.5")
    got = strategy_module.get_strategy()
    assert isinstance(got, strategy_module.ParameterServerStrategy)
    assert (got.num_replicas_in_sync, got.worker_index, got.is_chief, got.max_staleness) == \
        (3, 2, False, 4)
    assert got.cluster.ps_addrs == ("tcp://127.0.0.1:1", "tcp://127.0.0.1:2")
    assert got.cluster.heartbeat_timeout == 7.5
    assert strategy_module.get_strategy() is got


@pytest.mark.parametrize("env,message", [
    ({"DISTFLOW_PS_ADDRS": "tcp://h:1", "DISTFLOW_NUM_WORKERS": "x"}, "DISTFLOW_NUM_WORKERS"),
    ({"DISTFLOW_PS_ADDRS": "tcp://h:1", "DISTFLOW_RANK": "3", "DISTFLOW_NUM_WORKERS": "2"},
     "worker_index"),
    ({"DISTFLOW_PS_ADDRS": "tcp://h:1", "DISTFLOW_STRATEGY": "ring"}, "strategy"),
])
def test_cluster_spec_rejects_bad_environment(env, message):
    with pytest.raises(ValueError, match=message):
        ClusterSpec.from_env(env)


def test_ps_strategy_without_servers_says_how_to_start_them(monkeypatch):
    monkeypatch.delenv("DISTFLOW_PS_ADDRS", raising=False)
    with pytest.raises(ValueError, match="distflow.launch"):
        strategy_module.MirroredStrategy()


@pytest.mark.slow
def test_async_run_through_real_servers_converges(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "2", "--strategy", "async")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    weights = final_weights(result.stdout)
    assert sorted(weights) == [0, 1], result.stdout[-2000:]
    target = np.array([1.0, -2.0, 0.5, 0.3])
    # Each worker applies 20 SGD steps; how many of the other's land before it stops depends
    # on scheduling. The worst case is a worker running alone on its shard, so the result
    # must be at least that close (small slack for a stale interleaving).
    worst = max(np.abs(_shard_descent(rank) - target).max() for rank in (0, 1))
    assert worst < 0.2
    for rank in (0, 1):
        assert np.abs(weights[rank] - target).max() <= worst + 0.02, weights[rank]


def _shard_descent(rank: int, workers: int = 2) -> np.ndarray:
    """20 plain SGD steps from zero on one worker's shard, in float64."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    xs, ys = x[rank::workers], y[rank::workers]
    w, b = np.zeros((3, 1)), np.zeros(1)
    for _ in range(STEPS):
        err = xs @ w + b - ys
        w, b = w - LR * 2 * xs.T @ err / len(xs), b - LR * 2 * err.mean(axis=0)
    return np.concatenate([w.ravel(), b])
