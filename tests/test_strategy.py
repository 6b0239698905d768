"""Strategies: environment mapping, and custom GradientTape loops through real servers.

Servers run in a thread of this process (real ROUTER sockets on loopback) or,
for several workers, everything runs under the launcher as real processes.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_launch_e2e import LR, ROWS, STEPS, final_weights, run_launcher, worker_json

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
    ({"DISTFLOW_PS_ADDRS": "tcp://h:1", "DISTFLOW_MAX_STALENESS": "four"},
     "DISTFLOW_MAX_STALENESS must be an int. Received: 'four'"),
    ({"DISTFLOW_PS_ADDRS": "tcp://h:1", "DISTFLOW_REQUEST_TIMEOUT": "0"},
     r"DISTFLOW_REQUEST_TIMEOUT\). Received: timeout=0.0"),
    ({"DISTFLOW_PS_ADDRS": "tcp://h:1", "DISTFLOW_HEARTBEAT_TIMEOUT": "-5"},
     r"DISTFLOW_HEARTBEAT_TIMEOUT\). Received: heartbeat_timeout=-5.0"),
])
def test_cluster_spec_rejects_bad_environment(env, message):
    with pytest.raises(ValueError, match=message):
        ClusterSpec.from_env(env)


def test_ps_strategy_without_servers_says_how_to_start_them(monkeypatch):
    # MirroredStrategy() without servers is one local replica, as TF's on one CPU
    # (test_strategy_ownership); the asynchronous strategy needs servers.
    monkeypatch.delenv("DISTFLOW_PS_ADDRS", raising=False)
    with pytest.raises(ValueError, match="distflow.launch"):
        strategy_module.ParameterServerStrategy()


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


# ---------------------------------------------------------------- stop decision

EARLY_STOP = """
import json
import numpy as np
import distflow as df
import distflow.distribute  # noqa: F401
import distflow.optimizers  # noqa: F401
from distflow.keras import callbacks, layers, training_context
from distflow.keras.functional import Input
from distflow.keras.models import Sequential

SCORES = [5.0, 4.0, 3.0, 3.5, 2.0, 1.0]  # EarlyStopping(patience=0) stops after epoch 3


class ChiefScore(callbacks.Callback):
    # Only the chief has the monitored value (as with val_loss: only the chief validates).
    def on_epoch_end(self, epoch, logs=None):
        if training_context.current().is_chief:
            logs["score"] = SCORES[epoch]


def run(model):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 2))).astype("float32")
    history = model.fit(x, y, batch_size=16, epochs=len(SCORES), shuffle=False, verbose=0,
                        callbacks=[callbacks.LearningRateScheduler(lambda e, lr: 0.2 * 0.5 ** e),
                                   ChiefScore(), callbacks.EarlyStopping("score", patience=0)])
    return {"epochs": len(history.history["loss"]),
            "rates": history.history["learning_rate"],
            "weights": [w.ravel().tolist() for w in model.get_weights()]}


def build():
    model = Sequential([Input(shape=(4,)), layers.Dense(8, activation="tanh"), layers.Dense(2)])
    init = np.random.default_rng(4)
    model.set_weights([init.normal(size=w.shape).astype("float32") * 0.3
                       for w in model.get_weights()])
    model.compile(optimizer=df.optimizers.SGD(0.1, momentum=0.5), loss="mse")
    return model


strategy = df.distribute.get_strategy()
model = build()  # first: its variables get the same names on every worker
if strategy.is_chief:
    with df.distribute.LocalStrategy().scope():  # a local model, on purpose: no servers
        local = build()
    print("local", json.dumps(run(local)), flush=True)
with strategy.scope():
    print("mirrored", json.dumps(run(model)), flush=True)
"""


@pytest.mark.slow
def test_mirrored_workers_stop_together_when_the_chief_stops_early(tmp_path):
    # Heartbeat timeout 60 s: a worker left waiting for a stopped chief would hang past
    # the subprocess timeout instead of finishing.
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", "--strategy", "mirrored",
                          "--heartbeat-timeout", "60", script=EARLY_STOP, timeout=50)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = {(rank, kind): body for kind in ("local", "mirrored")
             for rank, body in worker_json(result.stdout, kind).items()}
    assert sorted(found) == [(0, "local"), (0, "mirrored"), (1, "mirrored")], result.stdout
    local, chief, other = found[0, "local"], found[0, "mirrored"], found[1, "mirrored"]
    assert local["epochs"] == chief["epochs"] == other["epochs"] == 4  # epochs 0..3
    assert chief["rates"] == local["rates"]  # float32 variable values, as Keras logs them
    np.testing.assert_allclose(chief["rates"], [0.2 * 0.5 ** e for e in range(4)], rtol=1e-6)
    for a, b, c in zip(local["weights"], chief["weights"], other["weights"]):
        np.testing.assert_allclose(b, c, rtol=0, atol=1e-7)
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_fit_calls_the_contexts_epoch_end_hook_which_can_stop_training():
    from distflow.keras import layers
    from distflow.keras.functional import Input
    from distflow.keras.models import Sequential
    from distflow.keras.training_context import TrainingContext, use_training_context

    class StopAfterOne(TrainingContext):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, model, epoch, logs):
            self.seen.append((epoch, sorted(logs)))
            model.stop_training = epoch == 1

    x, y = _data(32)
    model = Sequential([Input(shape=(4,)), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    context = StopAfterOne()
    with use_training_context(context):
        history = model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    assert context.seen == [(0, ["loss"]), (1, ["loss"])]
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_epoch_end_records_the_chiefs_decision_for_every_worker(mode):
    from distflow.distribute.client import PSClient, PSError

    ps = ParameterServer(ServerConfig(mode=mode, num_workers=2, stats_interval=0, poll_ms=10))
    ps.start()
    try:
        with PSClient([ps.address], worker_id=0, timeout=10) as chief, \
                PSClient([ps.address], worker_id=1, timeout=10) as other:
            assert other.epoch_end(0)["decided"] is False
            assert other.epoch_end(0)["chief_alive"] is False  # never registered
            chief.epoch_end(0, stop=False)
            chief.epoch_end(1, stop=True)
            first, second = other.epoch_end(0), other.epoch_end(1)
            assert (first["decided"], first["stop"], first["chief_alive"]) == (True, False, True)
            assert (second["decided"], second["stop"]) == (True, True)
            assert first["stop_epoch"] == second["stop_epoch"] == 1
            with pytest.raises(PSError, match="chief") as caught:
                other.epoch_end(2, stop=True)  # only the chief decides
            assert caught.value.reason == "bad_field"
            assert other.epoch_end(2)["decided"] is False
            chief.close()  # `bye`: the chief left
            assert other.epoch_end(2)["chief_alive"] is False
    finally:
        ps.stop()


def test_one_async_worker_with_pipelined_pushes_equals_local_training():
    def train(steps=4):
        rng = np.random.default_rng(5)
        # 3 x 2 MiB variables: above the client's 4 MiB pipeline threshold, so each push
        # goes as two parts.
        shapes = [(512, 1024), (1024, 512), (512, 1024)]
        big = [df.Variable(rng.normal(size=shape).astype("float32") * 0.01,
                           name=f"pipe/w{i}") for i, shape in enumerate(shapes)]
        x = df.constant(rng.normal(size=(8, 512)).astype("float32"))
        opt = optimizers.Adam(0.01)
        for _ in range(steps):
            with df.GradientTape() as tape:
                h = df.tanh(df.matmul(x, big[0]))
                loss = df.reduce_mean(df.matmul(h, big[1]) ** 2) + df.reduce_mean(big[2] ** 2)
            opt.apply_gradients(zip(tape.gradient(loss, big), big))
        return [v.numpy() for v in big]

    local = train()
    ps = ParameterServer(ServerConfig(mode="async", num_workers=1, stats_interval=0))
    ps.start()
    strategy = strategy_module.ParameterServerStrategy(cluster=ClusterSpec(
        ps_addrs=(ps.address,), num_workers=1, strategy="async", heartbeat_timeout=10.0))
    try:
        with strategy.scope():
            remote = train()
            last_part = strategy.client.last_replies[0].get("part")  # the last step's
    finally:
        strategy.close()
        ps.stop()
    assert last_part == [1, 2] and ps.version == 4  # two parts, one version per step
    for a, b in zip(local, remote):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- end of an async fit

ASYNC_END = """
import json, time
import numpy as np
import distflow as df
import distflow.distribute  # noqa: F401
from distflow.keras import callbacks, layers
from distflow.keras.functional import Input
from distflow.keras.models import Sequential


class Slow(callbacks.Callback):
    # Worker 1 trains slower, so it pushes long after the chief's last step.
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.05)


class WaitForWorker1(callbacks.Callback):
    # The chief's first step waits until worker 1 is training too, so worker 1 runs
    # every epoch (a worker starting after the chief finished an epoch joins later).
    def on_train_batch_end(self, batch, logs=None):
        deadline = time.monotonic() + 30
        while batch == 0 and time.monotonic() < deadline:
            workers = strategy.client.stats()[0]["workers"]
            if workers.get("1", {}).get("last_step", -1) >= 0:
                break
            time.sleep(0.01)


strategy = df.distribute.get_strategy()
rng = np.random.default_rng(3)
x = rng.normal(size=(96, 4)).astype("float32")
y = (x @ rng.normal(size=(4, 2))).astype("float32")
with strategy.scope():
    model = Sequential([Input(shape=(4,)), layers.Dense(8, activation="tanh"), layers.Dense(2)])
    model.compile(optimizer=df.keras.optimizers.SGD(0.05), loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                        callbacks=[Slow()] if strategy.worker_index == 1 else [WaitForWorker1()])
    print("final", json.dumps({"epochs": history.epoch, "weights": {
        v.name: v.numpy().ravel().tolist() for v in model.trainable_variables}}), flush=True)
"""


def run_async_pair(tmp_path, script: str) -> tuple[dict, dict, dict]:
    """Runs `script` under the launcher (async, 2 workers, 1 server, checkpoints).

    Returns:
        worker rank -> the JSON each printed after "final", and the server's final
        checkpoint (tensors, meta), written at shutdown.
    """
    from distflow.distribute import checkpoint

    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", "--strategy", "async",
                          "--checkpoint-dir", str(tmp_path / "ckpt"), script=script,
                          timeout=90)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = worker_json(result.stdout, "final")
    assert sorted(found) == [0, 1], result.stdout
    _, tensors, meta = checkpoint.load_latest(tmp_path / "ckpt" / "ps-0")
    return found, tensors, meta


def assert_holds_the_servers_final_values(weights: dict, tensors: dict) -> None:
    assert sorted(weights) == sorted(n[len("param/"):] for n in tensors if n.startswith("param/"))
    for name, values in weights.items():
        np.testing.assert_array_equal(np.array(values, np.float32),
                                      tensors[f"param/{name}"].ravel())


@pytest.mark.slow
def test_async_chief_ends_fit_with_every_workers_updates(tmp_path):
    found, tensors, meta = run_async_pair(tmp_path, ASYNC_END)
    # The server's final checkpoint holds every worker's updates: 2 workers x 2 epochs
    # x 6 steps. The chief, done long before the slow worker, must have waited for it
    # and pulled them.
    assert meta["version"] == 24
    assert_holds_the_servers_final_values(found[0]["weights"], tensors)


def test_workers_draw_different_noise_and_the_chief_keeps_the_seeds_stream():
    ps = ParameterServer(ServerConfig(mode="async", num_workers=2, stats_interval=0))
    ps.start()
    draws = {}
    w = df.Variable(np.ones((2, 2), "float32"), name="noise/w")  # one name: the chief's
    try:
        for index in (0, 1):
            df.random.set_seed(7)
            strategy = strategy_module.ParameterServerStrategy(cluster=ClusterSpec(
                ps_addrs=(ps.address,), num_workers=2, worker_index=index, strategy="async",
                heartbeat_timeout=10.0))
            try:
                strategy.sync_variables([w], optimizers.SGD(0.1))
                draws[index] = df.random.uniform((8,)).numpy()
            finally:
                strategy.close()
    finally:
        ps.stop()
    df.random.set_seed(7)
    alone = df.random.uniform((8,)).numpy()
    np.testing.assert_array_equal(draws[0], alone)
    assert not np.allclose(draws[1], alone)


def test_fold_in_is_deterministic_and_checks_its_argument():
    streams = []
    for data in (1, 1, 2):
        df.random.set_seed(3)
        df.random.fold_in(data)
        streams.append(df.random.uniform((4,)).numpy())
    np.testing.assert_array_equal(streams[0], streams[1])
    assert not np.allclose(streams[0], streams[2])
    with pytest.raises(ValueError, match="`data` must be a non-negative int"):
        df.random.fold_in(-1)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_second_fit_in_the_same_process_trains_its_epochs(mode):
    from distflow.keras import layers
    from distflow.keras.functional import Input
    from distflow.keras.models import Sequential

    ps = ParameterServer(ServerConfig(mode=mode, num_workers=1, stats_interval=0, poll_ms=10))
    ps.start()
    kind = strategy_module.MirroredStrategy if mode == "sync" else \
        strategy_module.ParameterServerStrategy
    strategy = kind(cluster=ClusterSpec(ps_addrs=(ps.address,), num_workers=1,
                                        strategy="mirrored" if mode == "sync" else "async",
                                        heartbeat_timeout=10.0))
    x, y = _data(32)
    try:
        with strategy.scope():
            model = Sequential([Input(shape=(4,)), layers.Dense(2)])
            model.compile(optimizer="sgd", loss="mse")
            first = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
            second = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    finally:
        strategy.close()
        ps.stop()
    # As in Keras: each call runs its epochs (a restarted process resumes instead).
    assert len(first.history["loss"]) == 2
    assert len(second.history["loss"]) == 3
    assert ps.version == 5 * 4


LATE_JOINER = """
import json, time
import numpy as np
import distflow as df
import distflow.distribute  # noqa: F401
from distflow.keras import layers
from distflow.keras.functional import Input
from distflow.keras.models import Sequential

strategy = df.distribute.get_strategy()
if strategy.worker_index == 1:
    time.sleep(2.0)  # starts after the chief has run all its epochs
rng = np.random.default_rng(3)
x = rng.normal(size=(96, 4)).astype("float32")
y = (x @ rng.normal(size=(4, 2))).astype("float32")
with strategy.scope():
    model = Sequential([Input(shape=(4,)), layers.Dense(2)])
    model.compile(optimizer=df.keras.optimizers.SGD(0.05), loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    print("final", json.dumps({"epochs": history.epoch, "weights": {
        v.name: v.numpy().ravel().tolist() for v in model.trainable_variables}}), flush=True)
"""


@pytest.mark.slow
def test_a_late_async_worker_trains_every_epoch_and_the_chief_waits_for_it(tmp_path):
    found, tensors, meta = run_async_pair(tmp_path, LATE_JOINER)
    # The late worker trains its shard in every epoch (it did not skip to the
    # chief's epoch), and the chief ends with every update: 2 x 2 epochs x 6 steps.
    assert found[0]["epochs"] == found[1]["epochs"] == [0, 1]
    assert meta["version"] == 24
    assert_holds_the_servers_final_values(found[0]["weights"], tensors)


def test_a_worker_waiting_for_the_chiefs_stop_decision_is_bounded_and_elastic(server):
    from distflow.distribute.client import PSClient

    cluster = ClusterSpec(ps_addrs=(server.address,), num_workers=2, worker_index=1)
    strategy = strategy_module.MirroredStrategy(
        cluster=cluster, client_factory=lambda c: PSClient(list(c.ps_addrs), worker_id=1,
                                                           timeout=0.4))
    context = strategy_module._FitContext(strategy)
    chief = PSClient([server.address], worker_id=0, timeout=5)
    try:
        chief.hello()  # alive, and never decides about epoch 3
        with pytest.raises(TimeoutError, match=r"no stop decision from the chief for epoch 3 "
                                               r"after 0\.\d s .* DISTFLOW_REQUEST_TIMEOUT"):
            context._chief_decision(strategy.client, 3, own=False)
        chief.epoch_end(3, stop=True)
        assert context._chief_decision(strategy.client, 3, own=False) is True
        chief.close()  # gone: the worker keeps its own decision
        assert context._chief_decision(strategy.client, 4, own=True) is True
        assert context._chief_decision(strategy.client, 5, own=False) is False
    finally:
        chief.close()
        strategy.close()


def test_an_async_chief_waits_for_workers_still_training_then_warns_and_goes_on(caplog):
    from types import SimpleNamespace

    from distflow.distribute.client import PSClient

    ps = ParameterServer(ServerConfig(mode="async", num_workers=2, heartbeat_timeout=10.0,
                                      stats_interval=0))
    ps.start()
    strategy = strategy_module.ParameterServerStrategy(
        cluster=ClusterSpec(ps_addrs=(ps.address,), num_workers=2, strategy="async"),
        client_factory=lambda c: PSClient(list(c.ps_addrs), worker_id=0, timeout=0.4))
    other = PSClient([ps.address], worker_id=1, timeout=5)
    try:
        other.hello()  # registered, still in epoch 0 of its fit
        context = strategy_module._FitContext(strategy)
        with caplog.at_level("WARNING", logger="distflow"):
            context.on_training_done(SimpleNamespace(trainable_variables=[]), epoch=1)
        assert "Workers [1] were still training" in caplog.text
        assert "DISTFLOW_REQUEST_TIMEOUT" in caplog.text
        caplog.clear()
        other.epoch_end(1, done=True)
        with caplog.at_level("WARNING", logger="distflow"):
            context.on_training_done(SimpleNamespace(trainable_variables=[]), epoch=1)
        assert "still training" not in caplog.text
    finally:
        other.close()
        strategy.close()
        ps.stop()


def test_the_first_contact_waits_for_a_late_chief_up_to_the_startup_deadline(server):
    """A worker whose chief starts later than the request timeout (a pod scheduled late)
    still gets the chief's initial values: its first `init` follows DISTFLOW_RENDEZVOUS_TIMEOUT."""
    import threading

    from distflow.distribute.client import PSClient

    cluster = ClusterSpec(ps_addrs=(server.address,), num_workers=2, worker_index=1,
                          startup_timeout=60.0)
    strategy = strategy_module.MirroredStrategy(
        cluster=cluster, client_factory=lambda c: PSClient(list(c.ps_addrs), worker_id=1,
                                                           timeout=0.5))
    with strategy.scope():
        w = df.Variable(np.zeros((2, 2), np.float32), name="w")
    chief_values = {w.name: np.full((2, 2), 7.0, np.float32)}  # (names are made unique)
    chief = PSClient([server.address], worker_id=0, timeout=5)
    late = threading.Timer(2.0, lambda: chief.init(chief_values, {"name": "sgd", "hp": {},
                                                                  "learning_rate": 0.1}))
    late.start()
    try:
        strategy.sync_variables([w], optimizers.SGD(learning_rate=0.1))
        np.testing.assert_array_equal(w.numpy(), chief_values[w.name])
        assert strategy.client.timeout == 0.5  # only the first contact waits longer
    finally:
        late.join()
        chief.close()
        strategy.close()
