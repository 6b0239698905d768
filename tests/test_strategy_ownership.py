"""A model remembers its strategy: TensorFlow's idiom (build in `scope()`, `fit` outside).

Servers run in a thread of this process on real ROUTER sockets; each test checks
that the distributed path ran (the server's version advanced by the steps taken),
not only that training produced plausible numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

import distflow as df
from distflow import optimizers
from distflow.distribute import ClusterSpec
from distflow.distribute import strategy as strategy_module
from distflow.keras import layers

pytestmark = pytest.mark.timeout(120)

ROWS, BATCH, EPOCHS = 64, 16, 2


@pytest.fixture
def server(servers):
    return servers(mode="sync", heartbeat_timeout=10.0)


@pytest.fixture
def strategy(server):
    s = strategy_module.MirroredStrategy(
        cluster=ClusterSpec(ps_addrs=(server.address,), num_workers=1, heartbeat_timeout=10.0))
    yield s
    s.close()


@pytest.fixture
def no_launcher(monkeypatch):
    """A plain process: no cluster in the environment."""
    for key in ("DISTFLOW_PS_ADDRS", "DISTFLOW_ROLE", "DISTFLOW_RANK",
                "DISTFLOW_ALLOW_LOCAL_TRAINING", "TF_CONFIG"):
        monkeypatch.delenv(key, raising=False)


def _data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(ROWS, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    return x, y


def _model():
    model = df.keras.Sequential([layers.Dense(8, activation="tanh", input_shape=(4,)),
                                 layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(0.05), loss="mse")
    return model


def test_fit_outside_the_scope_trains_through_the_servers(server, strategy):
    with strategy.scope():
        model = _model()
    assert model.distribute_strategy is strategy
    x, y = _data()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
    assert server.version == EPOCHS * ROWS // BATCH
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(),
                                  server.params[model.layers[0].kernel.name])


def test_train_on_batch_outside_the_scope_goes_through_the_servers(server, strategy):
    with strategy.scope():
        model = _model()
    x, y = _data()
    for _ in range(3):
        model.train_on_batch(x[:BATCH], y[:BATCH])
    assert server.version == 3


def test_apply_gradients_outside_the_scope_uses_the_variables_strategy(server, strategy):
    with strategy.scope():
        w = df.Variable(np.ones((4, 1), "float32"), name="own/w")
        opt = optimizers.SGD(0.1)
    x, y = _data()
    for _ in range(4):
        with df.GradientTape() as tape:
            loss = df.reduce_mean((df.matmul(df.constant(x), w) - y) ** 2)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
    assert server.version == 4
    np.testing.assert_array_equal(w.numpy(), server.params[w.name])


def test_fit_inside_another_strategys_scope_is_refused(server, strategy, no_launcher):
    with strategy.scope():
        model = _model()
    other = strategy_module.MirroredStrategy()  # a local one-replica strategy
    x, y = _data()
    with other.scope(), pytest.raises(ValueError, match="different distribution strateg"):
        model.fit(x, y, epochs=1, verbose=0)
    assert server.version == 0


def test_a_model_built_outside_any_scope_belongs_to_no_strategy(no_launcher):
    model = _model()
    assert isinstance(model.distribute_strategy, strategy_module.Strategy)
    assert model.distribute_strategy.num_replicas_in_sync == 1


@pytest.fixture
def under_launcher(monkeypatch, server):
    """This process looks like worker 1 of a 2-worker launcher run."""
    monkeypatch.setenv("DISTFLOW_PS_ADDRS", server.address)
    monkeypatch.setenv("DISTFLOW_ROLE", "worker")
    monkeypatch.setenv("DISTFLOW_RANK", "1")
    monkeypatch.setenv("DISTFLOW_NUM_WORKERS", "2")
    monkeypatch.delenv("DISTFLOW_ALLOW_LOCAL_TRAINING", raising=False)


def test_fit_of_a_model_outside_any_scope_under_the_launcher_is_refused(server, under_launcher):
    model = _model()
    x, y = _data()
    with pytest.raises(RuntimeError) as error:
        model.fit(x, y, epochs=1, verbose=0)
    text = str(error.value)
    assert "worker 1" in text and "strategy.scope()" in text
    assert "DISTFLOW_ALLOW_LOCAL_TRAINING" in text
    assert server.version == 0 and not server.initialized


def test_a_custom_loop_outside_any_scope_under_the_launcher_is_refused(server, under_launcher):
    w = df.Variable(np.ones((4, 1), "float32"), name="alone/w")
    opt = optimizers.SGD(0.1)
    with df.GradientTape() as tape:
        loss = df.reduce_sum(w * 2.0)
    with pytest.raises(RuntimeError, match="strategy.scope()"):
        opt.apply_gradients([(tape.gradient(loss, w), w)])
    np.testing.assert_array_equal(w.numpy(), np.ones((4, 1)))


def test_local_training_under_the_launcher_is_an_explicit_choice(server, under_launcher,
                                                                 monkeypatch):
    monkeypatch.setenv("DISTFLOW_ALLOW_LOCAL_TRAINING", "1")
    model = _model()
    x, y = _data()
    before = model.layers[0].kernel.numpy()
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    assert not np.array_equal(before, model.layers[0].kernel.numpy())
    assert server.version == 0 and not server.initialized


def test_bad_opt_in_value_is_refused(server, under_launcher, monkeypatch):
    monkeypatch.setenv("DISTFLOW_ALLOW_LOCAL_TRAINING", "maybe")
    model = _model()
    x, y = _data()
    with pytest.raises(ValueError, match="DISTFLOW_ALLOW_LOCAL_TRAINING.*'maybe'"):
        model.fit(x, y, epochs=1, verbose=0)


# ------------------------------------------------------------ TF's strategy classes


def _fit_weights(make_strategy=None):
    df.random.set_seed(5)
    x, y = _data()
    if make_strategy is None:
        model = _model()
    else:
        with make_strategy().scope():
            model = _model()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("make_strategy", [
    lambda: df.distribute.MirroredStrategy(),
    lambda: df.distribute.MirroredStrategy(devices=["/cpu:0"]),
    lambda: df.distribute.OneDeviceStrategy("/cpu:0"),
], ids=["mirrored", "mirrored-devices", "one-device"])
def test_local_tf_strategies_are_one_replica_and_train(no_launcher, make_strategy):
    strategy = make_strategy()
    assert strategy.num_replicas_in_sync == 1
    for a, b in zip(_fit_weights(), _fit_weights(make_strategy)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_tpu_strategy_names_the_cpu_strategies(no_launcher):
    with pytest.raises(NotImplementedError, match="MirroredStrategy"):
        df.distribute.TPUStrategy()


def test_mirrored_strategy_refuses_gpu_devices(no_launcher):
    with pytest.raises(ValueError, match="devices=\\['/gpu:0'\\]"):
        df.distribute.MirroredStrategy(devices=["/gpu:0"])


def test_parameter_server_strategy_without_servers_says_how_to_start_them(no_launcher):
    with pytest.raises(ValueError, match="distflow.launch"):
        strategy_module.ParameterServerStrategy()


# ------------------------------------------------------------ the chief initialises


def test_another_worker_waits_for_the_chiefs_init_and_gets_its_values(servers):
    import threading

    from distflow.distribute.client import PSClient

    server = servers(mode="async", num_workers=2)
    mine = {"w": np.full((2, 3), 7.0, "float32")}
    chiefs = {"w": np.full((2, 3), 0.5, "float32")}
    got = {}
    with PSClient([server.address], worker_id=1, timeout=20) as other, \
            PSClient([server.address], worker_id=0, timeout=20) as chief:
        waiting = threading.Thread(
            target=lambda: got.update(other.init(mine, {"name": "sgd", "hp": {},
                                                        "learning_rate": 0.9})))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not server.initialized  # refused: nothing stored
        chief.init(chiefs, {"name": "sgd", "hp": {}, "learning_rate": 0.1})
        waiting.join(20)
    np.testing.assert_array_equal(got["w"], chiefs["w"])
    assert server.optimizer["learning_rate"] == 0.1


def test_waiting_for_an_absent_chief_times_out_naming_it(servers):
    from distflow.distribute.client import PSClient

    server = servers(mode="async", num_workers=2)
    with PSClient([server.address], worker_id=1, timeout=1.0) as other, \
            pytest.raises(TimeoutError, match=r"for the chief \(worker 0\) to initialize"):
        other.init({"w": np.zeros(3, "float32")}, {"name": "sgd", "hp": {},
                                                    "learning_rate": 0.1})
    assert not server.initialized


def test_an_absent_chief_at_first_contact_names_the_startup_deadline(servers):
    """A worker's first contact waits up to the startup deadline (when it is the longer
    wait), so its error names that setting, not the per-request timeout."""
    from distflow.distribute.client import PSClient

    server = servers(mode="async", num_workers=2)
    with PSClient([server.address], worker_id=1, timeout=0.2) as other, \
            strategy_module._patient(other, 1.0), \
            pytest.raises(TimeoutError, match=r"Raise DISTFLOW_RENDEZVOUS_TIMEOUT \(now 1 s\)"):
        other.init({"w": np.zeros(3, "float32")}, {"name": "sgd", "hp": {},
                                                    "learning_rate": 0.1})
    assert other.timeout == 0.2 and not server.initialized


def test_a_subclassed_optimizer_trains_through_the_servers(server, strategy):
    class WarmAdam(optimizers.Adam):
        """A user's subclass: the servers must run Adam's rule, whatever the class name."""

    with strategy.scope():
        model = df.keras.Sequential([layers.Dense(1, input_shape=(4,))])
        model.compile(optimizer=WarmAdam(0.01), loss="mse")
    x, y = _data()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert server.version == ROWS // BATCH
    assert server.optimizer["name"] == "adam"


def test_a_worker_waiting_for_an_absent_server_says_so_before_the_timeout(caplog):
    import logging
    import socket

    from distflow.distribute.client import PSClient, PSTimeoutError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    caplog.set_level(logging.WARNING, logger="distflow.client")
    with PSClient([address], worker_id=3, timeout=6.5, retries=0) as client, \
            pytest.raises(PSTimeoutError):
        client.hello()
    said = [r.getMessage() for r in caplog.records if "has waited" in r.getMessage()]
    assert said and f"Worker 3 has waited 5 s for parameter server(s) {address} to answer " \
        "`hello`" in said[0]


# ------------------------------------------------------------ the end of the chief's fit


def _two_workers(servers):
    from distflow.distribute.client import PSClient

    server = servers(mode="sync", num_workers=2, heartbeat_timeout=30.0)
    chief = PSClient([server.address], worker_id=0, timeout=10)
    other = PSClient([server.address], worker_id=1, timeout=10)
    values = {"w": np.zeros(3, "float32")}
    chief.init(values, {"name": "sgd", "hp": {}, "learning_rate": 0.1})
    other.init(values, {"name": "sgd", "hp": {}, "learning_rate": 0.1})
    return server, chief, other


def test_a_straggler_step_after_the_chief_finished_and_left_is_refused(servers):
    from distflow.distribute.client import PSError

    server, chief, other = _two_workers(servers)
    grads = {"w": np.ones(3, "float32")}
    try:
        chief.epoch_end(0, done=True)
        held = []
        thread = __import__("threading").Thread(
            target=lambda: held.append(_push_outcome(other, grads)))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # held: the finished chief may still start another fit
        chief.close()  # bye: the chief is gone
        thread.join(10)
        assert held == ["run_finished"] and server.version == 0
        with pytest.raises(PSError, match="chief's fit is over"):
            other.push_pull(grads)
        assert server.version == 0
    finally:
        other.close()


def _push_outcome(client, grads):
    from distflow.distribute.client import PSError

    try:
        client.push_pull(grads)
        return "applied"
    except PSError as error:
        return error.reason


def test_a_chief_that_fits_again_takes_the_held_step(servers):
    import threading

    server, chief, other = _two_workers(servers)
    grads = {"w": np.ones(3, "float32")}
    try:
        chief.epoch_end(0, done=True)
        outcome = []
        thread = threading.Thread(target=lambda: outcome.append(_push_outcome(other, grads)))
        thread.start()
        thread.join(0.3)
        chief.push_pull(grads)  # the chief's next fit
        thread.join(10)
        assert outcome == ["applied"] and server.version == 1
    finally:
        chief.close()
        other.close()
