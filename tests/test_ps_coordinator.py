"""TF's parameter-server training (coordinator-driven), with the import swapped.

The cluster is built as TF's tutorial builds it in process: `distribute.Server`
for every `ps` and `worker` task on free loopback ports, a
`SimpleClusterResolver`, then `ParameterServerStrategy(resolver,
variable_partitioner=...)` and a `ClusterCoordinator`. The ps servers are real
distflow parameter servers (threads of this process, real ROUTER sockets); each
test checks they did the work: their versions advanced by the scheduled steps
and they hold the coordinator's final variables.
"""

from __future__ import annotations

import numpy as np
import pytest

import distflow as tf  # the tutorial's `import tensorflow as tf`
from distflow.distribute import sharding
from distflow.launch.config import pick_free_ports

pytestmark = pytest.mark.timeout(120)

NUM_WORKERS, NUM_PS = 2, 2
ROWS, FEATURES, BATCH = 512, 8, 32
EPOCHS, STEPS_PER_EPOCH = 4, 16


def create_in_process_cluster(num_workers, num_ps):
    """The tutorial's helper, as written there (Server per task, then a resolver)."""
    ports = pick_free_ports("127.0.0.1", num_workers + num_ps)
    cluster_dict = {"worker": [f"localhost:{p}" for p in ports[:num_workers]],
                    "ps": [f"localhost:{p}" for p in ports[num_workers:]]}
    servers = [tf.distribute.Server(cluster_dict, job_name="worker", task_index=i,
                                    protocol="grpc") for i in range(num_workers)]
    servers += [tf.distribute.Server(cluster_dict, job_name="ps", task_index=i,
                                     protocol="grpc") for i in range(num_ps)]
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(cluster_dict,
                                                                    rpc_layer="grpc")
    return resolver, servers


@pytest.fixture
def cluster():
    resolver, servers = create_in_process_cluster(NUM_WORKERS, NUM_PS)
    yield resolver, [s.parameter_server for s in servers if s.job_name == "ps"]
    for server in servers:
        server.stop()


@pytest.fixture
def strategy(cluster):
    resolver, _ = cluster
    made = []

    def build(**kwargs):
        made.append(tf.distribute.ParameterServerStrategy(resolver, **kwargs))
        return made[-1]
    yield build
    for s in made:
        coordinator = getattr(s, "_coordinator", None)
        (coordinator.close if coordinator is not None else s.close)()


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype("float32")
    w = rng.normal(size=(FEATURES,))
    y = ((x @ w + 0.3 * rng.normal(size=ROWS)) > 0).astype("float32").reshape(-1, 1)
    return x, y


def dataset_fn(input_context):
    x, y = _data()
    global_batch_size = BATCH
    batch_size = input_context.get_per_replica_batch_size(global_batch_size)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
    dataset = dataset.shard(input_context.num_input_pipelines,
                            input_context.input_pipeline_id)
    return dataset.batch(batch_size)


def _model():
    tf.random.set_seed(1)
    return tf.keras.Sequential([tf.keras.layers.Dense(16, activation="relu",
                                                      input_shape=(FEATURES,)),
                                tf.keras.layers.Dense(1, activation="sigmoid")])


def _accuracy_of(model):
    x, y = _data()
    return float(np.mean((model.predict(x, verbose=0) > 0.5) == y))


def _local_accuracy():
    model = _model()
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    x, y = _data()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS * STEPS_PER_EPOCH * BATCH // ROWS,
              shuffle=False, verbose=0)
    return _accuracy_of(model)


def test_the_tutorials_coordinator_loop_trains_on_the_servers(cluster, strategy):
    _, ps_servers = cluster
    variable_partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=(256 << 10), max_shards=NUM_PS)
    strategy = strategy(variable_partitioner=variable_partitioner)
    with strategy.scope():
        model = _model()
        optimizer = tf.keras.optimizers.SGD(learning_rate=0.1)
        accuracy = tf.keras.metrics.Accuracy()

    @tf.function
    def step_fn(iterator):
        def replica_fn(batch_data, labels):
            with tf.GradientTape() as tape:
                pred = model(batch_data, training=True)
                per_example_loss = tf.keras.losses.BinaryCrossentropy(
                    reduction="none")(labels, pred)
                loss = tf.nn.compute_average_loss(per_example_loss)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            actual_pred = tf.cast(tf.greater(pred, 0.5), "int64")
            accuracy.update_state(labels, actual_pred)
            return loss

        batch_data, labels = next(iterator)
        losses = strategy.run(replica_fn, args=(batch_data, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)

    @tf.function
    def per_worker_dataset_fn():
        return strategy.distribute_datasets_from_function(dataset_fn)

    per_worker_dataset = coordinator.create_per_worker_dataset(per_worker_dataset_fn)
    per_worker_iterator = iter(per_worker_dataset)
    for _ in range(EPOCHS):
        accuracy.reset_state()
        for _ in range(STEPS_PER_EPOCH):
            coordinator.schedule(step_fn, args=(per_worker_iterator,))
        coordinator.join()
    loss = coordinator.schedule(step_fn, args=(per_worker_iterator,))
    final_loss = loss.fetch()
    coordinator.join()

    steps = EPOCHS * STEPS_PER_EPOCH + 1
    assert [s.version for s in ps_servers] == [steps, steps]  # every step on both servers
    workers = strategy._worker_states()
    assert sum(w.steps for w in workers) == steps
    assert all(w.steps > 0 for w in workers)  # both workers pushed
    assert optimizer.iterations.numpy() == steps
    assert np.isfinite(final_loss) and final_loss > 0
    for v in model.trainable_variables:  # the coordinator holds the servers' values
        np.testing.assert_array_equal(v.numpy(), ps_servers[0].params.get(
            v.name, ps_servers[1].params.get(v.name)))
    assert 0.0 < accuracy.result().numpy() <= 1.0
    distributed, local = _accuracy_of(model), _local_accuracy()
    print(f"accuracy: coordinator loop {distributed:.3f}, local {local:.3f}")
    assert local > 0.8 and distributed >= local - 0.05


def test_a_partitioner_splits_a_big_variable_over_both_servers(cluster, strategy):
    _, ps_servers = cluster
    partitioner = tf.distribute.experimental.partitioners.FixedShardsPartitioner(NUM_PS)
    strategy = strategy(variable_partitioner=partitioner)
    with strategy.scope():
        table = tf.Variable(np.ones((10, 4), np.float32), name="table")
        optimizer = tf.keras.optimizers.SGD(1.0)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)

    def step():
        optimizer.apply_gradients([(np.ones((10, 4), np.float32), table)])
    for _ in range(3):
        coordinator.schedule(step)
    coordinator.join()
    assert sorted(ps_servers[0].params) == ["table[0:5]"]
    assert sorted(ps_servers[1].params) == ["table[5:10]"]
    assert [s.version for s in ps_servers] == [3, 3]
    np.testing.assert_array_equal(table.numpy(), np.full((10, 4), -2.0, np.float32))


def test_partitioners_follow_tfs_rules():
    p = tf.distribute.experimental.partitioners
    assert p.FixedShardsPartitioner(3)([10, 4], "float32") == [3, 1]
    assert p.FixedShardsPartitioner(3)([2, 4], "float32") == [2, 1]
    # 1000 x 100 float32 = 400000 bytes; 256 KiB each: ceil(1.53) = 2 (max 4)
    assert p.MinSizePartitioner(max_shards=4)([1000, 100], "float32") == [2, 1]
    assert p.MinSizePartitioner()([1000, 100], "float32") == [1, 1]
    # rows of 400 bytes, at most 100000 bytes: 250 rows a part -> 4 parts (cap 3)
    assert p.MaxSizePartitioner(100000)([1000, 100], "float32") == [4, 1]
    assert p.MaxSizePartitioner(100000, max_shards=3)([1000, 100], "float32") == [3, 1]
    with pytest.raises(ValueError, match="num_shards=0"):
        p.FixedShardsPartitioner(0)
    placed = sharding.place([("w", (10, 4), "float32")], 2, partitions={"w": 2})
    assert [(q.key, q.shard) for q in placed.pieces] == [("w[0:5]", 0), ("w[5:10]", 1)]


def test_a_failing_scheduled_function_makes_join_raise(cluster, strategy):
    strategy = strategy()
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)

    def fails():
        raise ValueError("bad step")

    result = coordinator.schedule(fails)
    with pytest.raises(ValueError, match="bad step"):
        coordinator.join()
    with pytest.raises(ValueError, match="bad step"):
        result.fetch()
    assert coordinator.done()  # the error was reported once


def test_remote_values_and_per_worker_values(cluster, strategy):
    strategy = strategy()
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    ids = coordinator.create_per_worker_dataset(
        lambda: strategy.distribute_datasets_from_function(
            lambda ctx: [ctx.input_pipeline_id] * 100))
    iterators = iter(ids)
    values = [coordinator.schedule(
        lambda it: {"worker": strategy.worker_index, "id": tf.constant(next(it))},
        args=(iterators,)) for _ in range(8)]
    coordinator.join()
    fetched = coordinator.fetch(values)
    for value in fetched:  # each call read its own worker's iterator
        assert isinstance(value["id"], np.ndarray) and value["id"] == value["worker"]
    assert coordinator.fetch({"a": [values[0]]}) == {"a": [fetched[0]]}
    assert values[0].get()["id"].numpy() == fetched[0]["id"]


def test_model_fit_with_a_dataset_creator_trains_on_the_servers(cluster, strategy):
    _, ps_servers = cluster
    strategy = strategy()
    with strategy.scope():
        model = _model()
        model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="binary_crossentropy",
                      metrics=["accuracy"])
    history = model.fit(tf.keras.utils.experimental.DatasetCreator(dataset_fn), epochs=EPOCHS,
                        steps_per_epoch=STEPS_PER_EPOCH, verbose=0)
    steps = EPOCHS * STEPS_PER_EPOCH
    assert [s.version for s in ps_servers] == [steps, steps]
    assert sum(w.steps for w in strategy._worker_states()) == steps
    for v in model.trainable_variables:
        held = ps_servers[0].params.get(v.name, ps_servers[1].params.get(v.name))
        np.testing.assert_array_equal(v.numpy(), held)
    assert len(history.history["loss"]) == EPOCHS
    assert history.history["loss"][-1] < history.history["loss"][0]
    distributed, local = _accuracy_of(model), _local_accuracy()
    print(f"accuracy: fit with a DatasetCreator {distributed:.3f}, local {local:.3f}")
    assert distributed >= local - 0.05


def test_model_fit_with_a_plain_dataset_and_bad_arguments(cluster, strategy):
    _, ps_servers = cluster
    strategy = strategy()
    with strategy.scope():
        model = _model()
        model.compile(optimizer="sgd", loss="binary_crossentropy")
    x, y = _data()
    with pytest.raises(ValueError, match="steps_per_epoch=None"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH), verbose=0)
    with pytest.raises(ValueError, match="DatasetCreator"):
        model.fit(x, y, steps_per_epoch=2, verbose=0)
    # 512 rows in 16 batches: 20 steps read past its end and start it again
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH), epochs=2,
              steps_per_epoch=10, verbose=0)
    assert [s.version for s in ps_servers] == [20, 20]


def test_apply_gradients_on_the_coordinator_thread_is_refused(cluster, strategy):
    strategy = strategy()
    with strategy.scope():
        v = tf.Variable(np.ones(3, np.float32))
        optimizer = tf.keras.optimizers.SGD(1.0)
    with pytest.raises(RuntimeError, match="schedule"):
        optimizer.apply_gradients([(np.ones(3, np.float32), v)])


def test_tasks_other_than_the_coordinator_cannot_build_it(cluster):
    resolver, _ = cluster
    worker = tf.distribute.cluster_resolver.SimpleClusterResolver(
        resolver.cluster_spec(), task_type="worker", task_id=0)
    with pytest.raises(ValueError, match="Server"):
        tf.distribute.experimental.ParameterServerStrategy(worker)


_TASK = """
import json, logging, os, sys
import distflow as tf
logging.basicConfig(level="INFO", stream=sys.stderr)
task = tf.distribute.Server(json.loads(os.environ["SPEC"]), job_name=sys.argv[1],
                            task_index=0)
print("ready", flush=True)
task.join()
print("joined", flush=True)
"""


def _start_task(job, spec):
    import json
    import os
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _TASK, job], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SPEC": json.dumps(spec)})
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_tasks_in_their_own_processes_train_and_end_cleanly_on_signals():
    import signal

    worker_port, ps_port = pick_free_ports("127.0.0.1", 2)
    spec = {"worker": [f"localhost:{worker_port}"], "ps": [f"localhost:{ps_port}"]}
    ps, worker = _start_task("ps", spec), _start_task("worker", spec)
    try:
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(spec)
        strategy = tf.distribute.experimental.ParameterServerStrategy(resolver)
        with strategy.scope():
            v = tf.Variable(np.ones(3, np.float32), name="v")
            optimizer = tf.keras.optimizers.SGD(1.0)
        coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
        for _ in range(3):
            coordinator.schedule(lambda: optimizer.apply_gradients([(np.ones(3, "float32"), v)]))
        coordinator.join()
        assert coordinator.strategy._worker_states()[0].call(lambda c: c.stats())[0]
        np.testing.assert_array_equal(v.numpy(), [-2.0, -2.0, -2.0])  # read from the server
        coordinator.close()
    finally:
        ps.send_signal(signal.SIGTERM)
        worker.send_signal(signal.SIGINT)
        ps_out, ps_err = ps.communicate(timeout=30)
        worker_out, worker_err = worker.communicate(timeout=30)
    assert ps.returncode == 0 and "joined" in ps_out, ps_err
    assert "stopped at version 3" in ps_err
    assert worker.returncode == 0 and "joined" in worker_out, worker_err
    assert "does not ship code across the network" in worker_err
    assert "Traceback" not in ps_err + worker_err


def test_a_ps_task_beyond_loopback_needs_keys(monkeypatch):
    monkeypatch.delenv("DISTFLOW_KEYS", raising=False)
    monkeypatch.delenv("DISTFLOW_INSECURE", raising=False)
    with pytest.raises(ValueError, match="DISTFLOW_KEYS"):
        tf.distribute.Server({"ps": ["10.9.8.7:2222"], "worker": ["10.9.8.6:2222"]},
                             job_name="ps", task_index=0)
    with pytest.raises(ValueError, match="task_index=3"):
        tf.distribute.Server({"ps": ["localhost:1"]}, job_name="ps", task_index=3)


def test_a_ps_task_checkpoints_at_the_declared_interval(monkeypatch, tmp_path):
    # The launcher's documented --checkpoint-every default (100 steps) is the only one:
    # a ps task started by hand used 0 (only at shutdown) and ignored the variable.
    monkeypatch.setenv("DISTFLOW_CHECKPOINT_DIR", str(tmp_path))
    for raw, expected in (("", 100), ("7", 7)):
        monkeypatch.setenv("DISTFLOW_CHECKPOINT_EVERY", raw)
        port = pick_free_ports("127.0.0.1", 1)[0]
        task = tf.distribute.Server({"ps": [f"localhost:{port}"], "worker": ["localhost:1"]},
                                    job_name="ps", task_index=0)
        try:
            config = task.parameter_server.config
            assert (config.checkpoint_every, config.checkpoint_dir) == (expected, str(tmp_path))
            assert config.heartbeat_timeout == 30.0
        finally:
            task.stop()


def test_a_learning_rate_changed_between_steps_reaches_the_servers(cluster, strategy):
    strategy = strategy()
    with strategy.scope():
        v = tf.Variable(np.ones(3, np.float32), name="v")
        optimizer = tf.keras.optimizers.SGD(1.0)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)

    def step():
        optimizer.apply_gradients([(np.ones(3, np.float32), v)])
    coordinator.schedule(step)
    coordinator.join()
    optimizer.learning_rate = 0.25  # as LearningRateScheduler does between epochs
    for _ in range(4):
        coordinator.schedule(step)
    coordinator.join()
    np.testing.assert_allclose(v.numpy(), [-1.0, -1.0, -1.0])


def test_a_step_in_flight_does_not_put_the_coordinator_thread_in_the_scope(cluster, strategy):
    import threading

    strategy = strategy()
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    started, release = threading.Event(), threading.Event()

    def step():
        return strategy.run(lambda: (started.set(), release.wait(30)))
    coordinator.schedule(step)
    assert started.wait(30)
    try:
        assert not tf.distribute.has_strategy()  # the worker's `run` is its thread's
        assert tf.Variable(1.0)._distribute_strategy is None
    finally:
        release.set()
    coordinator.join()


def test_join_after_close_says_nothing_can_run(cluster, strategy):
    strategy = strategy()
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    coordinator.close()
    coordinator.schedule(lambda: None)
    with pytest.raises(RuntimeError, match="every worker thread has ended"):
        coordinator.join()


def test_the_tutorials_fit_section_runs_as_written(cluster, strategy, tmp_path):
    import os

    _, ps_servers = cluster
    strategy = strategy()

    def dataset_fn(input_context):
        global_batch_size = 64
        batch_size = input_context.get_per_replica_batch_size(global_batch_size)
        x = tf.random.uniform((10, 10))
        # The tutorial's y is (10,) against 10 outputs; distflow's mse refuses that
        # broadcast (Keras expands y to (batch, 1) and broadcasts): one y per output here.
        y = tf.random.uniform((10, 10))
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10).repeat()
        dataset = dataset.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
        dataset = dataset.batch(batch_size)
        dataset = dataset.prefetch(2)
        return dataset

    dc = tf.keras.utils.experimental.DatasetCreator(dataset_fn)
    with strategy.scope():
        model = tf.keras.models.Sequential([tf.keras.layers.Dense(10)])
        model.compile(tf.keras.optimizers.legacy.SGD(), loss="mse", steps_per_execution=10)
    working_dir = str(tmp_path)
    log_dir = os.path.join(working_dir, "log")
    ckpt_filepath = os.path.join(working_dir, "ckpt.keras")
    backup_dir = os.path.join(working_dir, "backup")
    callbacks = [tf.keras.callbacks.TensorBoard(log_dir=log_dir),
                 tf.keras.callbacks.ModelCheckpoint(filepath=ckpt_filepath),
                 tf.keras.callbacks.BackupAndRestore(backup_dir=backup_dir)]
    model.fit(dc, epochs=5, steps_per_epoch=20, callbacks=callbacks, verbose=0)
    assert [s.version for s in ps_servers] == [100, 100]
    assert os.path.exists(ckpt_filepath) and os.listdir(log_dir)


def test_fit_resumes_at_the_epoch_backup_and_restore_saved(cluster, strategy, tmp_path):
    _, ps_servers = cluster
    strategy = strategy()
    with strategy.scope():
        model = _model()
        model.compile(optimizer="sgd", loss="binary_crossentropy")

    class Interrupt(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    backup = tf.keras.callbacks.BackupAndRestore(backup_dir=str(tmp_path))
    dc = tf.keras.utils.experimental.DatasetCreator(dataset_fn)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(dc, epochs=4, steps_per_epoch=3, callbacks=[backup, Interrupt()], verbose=0)
    history = model.fit(dc, epochs=4, steps_per_epoch=3, callbacks=[backup], verbose=0)
    assert history.epoch == [2, 3]  # epochs 0 and 1 were backed up
    assert [s.version for s in ps_servers] == [12, 12]
