"""TensorFlow's idiom under the launcher: real worker and server processes, real sockets.

Each run proves the distributed path ran: the server's final version (from its
log line "stopped at version N") is the number of synchronous steps, and the
workers end with identical weights.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from test_launch_config import free_base_port
from test_launch_e2e import run_launcher, worker_json
from test_launch_supervisor import clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROWS, BATCH, EPOCHS = 256, 32, 2

README_SCRIPT = f"""
import json, os
import numpy as np
import distflow as tf
from distflow.keras import layers

rng = np.random.default_rng(0)
x_train = rng.normal(size=({ROWS}, 8)).astype("float32")
y_train = (x_train[:, 0] + x_train[:, 1] > 0).astype("int64")

strategy = tf.distribute.get_strategy()  # local, or what the launcher asked for
with strategy.scope():
    model = tf.keras.Sequential([
        layers.Dense(16, activation="relu", input_shape=(8,)),
        layers.Dense(2),
    ])
    model.compile(optimizer="adam",
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
rank = os.environ["DISTFLOW_RANK"]
model.fit(x_train, y_train, epochs={EPOCHS}, batch_size={BATCH}, verbose=0,
          callbacks=[tf.keras.callbacks.CSVLogger(f"log-{{rank}}.csv")])
print("final", json.dumps([w.ravel().tolist() for w in model.get_weights()]))
"""


def server_versions(stderr: str) -> list[int]:
    """The version each parameter server reported when it stopped."""
    return [int(v) for v in re.findall(r"stopped at version (\d+)", stderr)]


def test_readme_first_script_trains_one_model_through_the_servers(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", "--strategy", "mirrored",
                          script=README_SCRIPT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert server_versions(output) == [EPOCHS * ROWS // BATCH], output[-3000:]
    weights = worker_json(result.stdout, "final")
    assert sorted(weights) == [0, 1]
    for a, b in zip(weights[0], weights[1]):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "log-0.csv").exists() and not (tmp_path / "log-1.csv").exists()


OUTSIDE_SCRIPT = """
import numpy as np
import distflow as tf
from distflow.keras import layers

model = tf.keras.Sequential([layers.Dense(2, input_shape=(3,))])
model.compile(optimizer="sgd", loss="mse")
model.fit(np.ones((8, 3), "float32"), np.ones((8, 2), "float32"), verbose=0)
print("trained locally")
"""


def test_a_model_built_outside_any_scope_fails_fast_under_the_launcher(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", script=OUTSIDE_SCRIPT,
                          timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "trained locally" not in output
    assert "built outside `strategy.scope()`" in output
    assert "DISTFLOW_ALLOW_LOCAL_TRAINING=1" in output


CHIEF_LOADS = """
import json, os, time
import numpy as np
import distflow as tf
from distflow.keras import layers

strategy = tf.distribute.get_strategy()
chief = strategy.is_chief
with strategy.scope():
    model = tf.keras.Sequential([layers.Dense(3, input_shape=(4,)), layers.Dense(1)])
    # The chief's optimizer does not move the weights; the other's would.
    model.compile(optimizer=tf.keras.optimizers.SGD(0.0 if chief else 0.5), loss="mse")
if chief:
    time.sleep(3)  # the other worker registers first, on purpose
    model.set_weights([np.full(w.shape, 0.25, "float32") for w in model.get_weights()])
model.fit(np.ones((16, 4), "float32"), np.zeros((16, 1), "float32"), batch_size=8,
          epochs=1, verbose=0)
print("final", json.dumps([w.ravel().tolist() for w in model.get_weights()]))
"""


def test_the_chiefs_loaded_weights_and_optimizer_win_whoever_registers_first(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "2", script=CHIEF_LOADS)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert server_versions(output) == [2, 2], output[-3000:]
    weights = worker_json(result.stdout, "final")
    assert sorted(weights) == [0, 1]
    for rank in (0, 1):
        for w in weights[rank]:
            np.testing.assert_array_equal(w, np.full(len(w), 0.25))


SHUFFLES = """
import json
import numpy as np
import distflow as tf

ds = tf.data.Dataset.from_tensor_slices(np.arange(64)).shuffle(64).batch(8)
print("order", json.dumps([int(v) for batch in ds for v in np.asarray(batch)]))
"""


def test_an_unseeded_dataset_shuffle_gives_every_worker_the_same_order(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", script=SHUFFLES, timeout=60)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    orders = worker_json(result.stdout, "order")
    assert sorted(orders) == [0, 1] and sorted(orders[0]) == list(range(64))
    assert orders[0] == orders[1] and orders[0] != list(range(64))


ONE_RAISES = """
import json, os, time
import numpy as np
import distflow as tf
from distflow.keras import layers


class Boom(tf.keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if batch == 3 and os.environ["DISTFLOW_RANK"] == "1":
            raise ValueError("bad data in shard 1")


strategy = tf.distribute.get_strategy()
with strategy.scope():
    model = tf.keras.Sequential([layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.01), loss="mse")
model.fit(np.ones((320, 3), "float32"), np.ones((320, 2), "float32"), batch_size=8,
          epochs=1, verbose=0, callbacks=[Boom()])
print("final", json.dumps(model.get_weights()[1].tolist()))
"""


@pytest.mark.parametrize("accept", [False, True], ids=["lost-is-an-error", "accepted"])
def test_a_raising_worker_is_dropped_at_once_and_the_exit_code_says_so(tmp_path, accept):
    # A heartbeat timeout of 60 s: had the servers waited for it, the run (and the test's
    # 50 s budget) would run out before the chief's 40 steps were done.
    flags = ["--allow-lost-workers"] if accept else []
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", "--heartbeat-timeout", "60",
                          *flags, script=ONE_RAISES, timeout=50)
    output = result.stdout + result.stderr
    assert result.returncode == (0 if accept else 3), output[-3000:]
    assert "Worker 1 left" in output and "declared dead" not in output
    assert server_versions(output) == [40], output[-3000:]
    assert sorted(worker_json(result.stdout, "final")) == [0]
    assert re.search(r"worker 1 +127\.0\.0\.1 +lost +1 ", output), output[-2000:]
    assert "ValueError: bad data in shard 1" in output


# The data and the model (fixed initial weights) the one-process comparisons share.
DATA = """
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (x @ np.array([[1.0], [-2.0], [0.5], [0.3]], "float32")).astype("float32")
"""
MODEL = """
    model = tf.keras.Sequential([layers.Dense(8, activation="tanh", input_shape=(4,)),
                                 layers.Dense(1)])
    init = np.random.default_rng(2)
    model.set_weights([init.normal(size=w.shape).astype("float32") * 0.5
                       for w in model.get_weights()])
"""

CUSTOM_LOOP = f"""
import json
import numpy as np
import distflow as tf
from distflow.keras import layers

GLOBAL_BATCH = 16
tf.random.set_seed(1)
{DATA}
strategy = tf.distribute.MirroredStrategy()
dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64).batch(GLOBAL_BATCH)
dist_dataset = strategy.experimental_distribute_dataset(dataset)
with strategy.scope():
{MODEL}    loss_object = tf.keras.losses.MeanSquaredError(reduction="none")
    optimizer = tf.keras.optimizers.SGD(0.1)


def train_step(inputs):
    features, labels = inputs
    with tf.GradientTape() as tape:
        per_example = loss_object(labels, model(features, training=True))
        loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


losses = []
for epoch in range(2):
    total, batches = 0.0, 0
    for batch in dist_dataset:
        per_replica = strategy.run(train_step, args=(batch,))
        total += float(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))
        batches += 1
    losses.append(total / batches)
print("final", json.dumps({{"replicas": strategy.num_replicas_in_sync, "losses": losses,
                           "weights": [w.ravel().tolist() for w in model.get_weights()]}}))
"""


def test_the_tf_custom_loop_on_two_workers_equals_one_process(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "2", script=CUSTOM_LOOP)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert server_versions(output) == [8, 8], output[-3000:]
    found = worker_json(result.stdout, "final")
    (tmp_path / "alone.py").write_text(textwrap.dedent(CUSTOM_LOOP))
    env = clean_env(tmp_path)
    alone = subprocess.run([sys.executable, "alone.py"], cwd=tmp_path, env=env, text=True,
                           capture_output=True, timeout=60)
    assert alone.returncode == 0, alone.stderr[-3000:]
    one = json.loads(alone.stdout.split("final ", 1)[1])
    assert one["replicas"] == 1 and found[0]["replicas"] == found[1]["replicas"] == 2
    np.testing.assert_allclose(found[0]["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(found[1]["losses"], one["losses"], rtol=1e-5)
    for rank in (0, 1):
        for a, b in zip(found[rank]["weights"], one["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


TF_CONFIG_SCRIPT = f"""
import json
import numpy as np
import distflow as tf
from distflow.keras import layers

{DATA}strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
{MODEL}    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
version = strategy.client.stats()[0]["version"] if strategy.num_replicas_in_sync > 1 else None
print("final " + json.dumps({{"replicas": strategy.num_replicas_in_sync, "version": version,
                             "weights": [w.ravel().tolist() for w in model.get_weights()]}}),
      flush=True)
"""


def test_two_processes_started_by_hand_with_tf_config_train_together(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(TF_CONFIG_SCRIPT))
    base = clean_env(tmp_path)
    port = free_base_port(2)
    workers = [f"localhost:{port}", f"localhost:{port + 1}"]
    procs = []
    for index in (0, 1):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen([sys.executable, "train.py"], cwd=tmp_path, text=True,
                                      env={**base, "TF_CONFIG": json.dumps(config)},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, (out + err)[-3000:]
    found = [json.loads(out.split("final ", 1)[1]) for out, _ in outputs]
    alone = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, env=base, text=True,
                           capture_output=True, timeout=60)
    assert alone.returncode == 0, alone.stderr[-3000:]
    one = json.loads(alone.stdout.split("final ", 1)[1])
    assert one["replicas"] == 1 and [f["replicas"] for f in found] == [2, 2]
    assert found[0]["version"] == 2 * 64 // 16  # one server step per global batch
    for worker in found:
        for a, b in zip(worker["weights"], one["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


SLOW = """
import time
time.sleep(float(__import__("sys").argv[1]))
"""


def test_a_checkpoint_directory_is_held_by_one_run_at_a_time(tmp_path):
    checkpoints = tmp_path / "ckpt"
    (tmp_path / "train.py").write_text(textwrap.dedent(SLOW))
    env = clean_env(tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "distflow.launch", "--checkpoint-dir",
                              str(checkpoints), "train.py", "20"], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (checkpoints / "distflow.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = run_launcher(tmp_path, "--checkpoint-dir", str(checkpoints),
                              script=SLOW, script_args=("0",), timeout=60)
        assert second.returncode == 4, second.stderr[-2000:]
        assert f"launcher with pid {first.pid}" in second.stderr
        assert "in use by run" in second.stderr
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert not (checkpoints / "distflow.lock").exists()  # released at the end
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (checkpoints / "distflow.lock").write_text(json.dumps(
        {"host": __import__("socket").gethostname(), "pid": int(dead), "run_id": "old"}))
    third = run_launcher(tmp_path, "--checkpoint-dir", str(checkpoints), script=SLOW,
                         script_args=("0",), timeout=60)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "took over the stale lock of run 'old'" in third.stderr


LONG_FIT = """
import numpy as np
import distflow as tf
from distflow.keras import layers

strategy = tf.distribute.get_strategy()
with strategy.scope():
    model = tf.keras.Sequential([layers.Dense(32, activation="relu", input_shape=(16,)),
                                 layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
x = np.random.default_rng(0).normal(size=(2048, 16)).astype("float32")


class Started(tf.keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):  # steps went through the server
        if batch == 5:
            open("started", "w").close()


print("training", flush=True)
model.fit(x, x[:, :1], epochs=10000, batch_size=32, verbose=0, callbacks=[Started()])
"""


def test_ctrl_c_stops_the_run_quietly_and_names_the_final_checkpoint(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(LONG_FIT))
    env = clean_env(tmp_path)
    launcher = subprocess.Popen([sys.executable, "-m", "distflow.launch", "--workers", "2",
                                 "--checkpoint-dir", str(tmp_path / "ckpt"), "train.py"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (tmp_path / "started").exists():
        time.sleep(0.1)
    assert (tmp_path / "started").exists(), "training never got under way"
    launcher.send_signal(signal.SIGINT)
    out, err = launcher.communicate(timeout=60)
    output = out + err
    assert launcher.returncode == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for rank in (0, 1):
        assert f"[worker {rank}] interrupted (Ctrl-C): stopping" in output
    named = re.search(r"ps 0's last checkpoint: (\S+)", output)
    assert named and os.path.exists(named.group(1)), output[-2000:]


BAR = """
import numpy as np
import distflow as tf
from distflow.keras import layers

strategy = tf.distribute.get_strategy()
with strategy.scope():
    model = tf.keras.Sequential([layers.Dense(4, input_shape=(8,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
x = np.ones((4096, 8), "float32")
model.fit(x, x[:, :1], epochs=1, batch_size=32, verbose=1)
"""


def test_the_chiefs_live_progress_bar_is_redrawn_on_the_launchers_terminal(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(BAR))
    env = clean_env(tmp_path)
    main, child = pty.openpty()
    launcher = subprocess.Popen([sys.executable, "-m", "distflow.launch", "--workers", "2",
                                 "train.py"], cwd=tmp_path, env=env, stdout=child,
                                stderr=subprocess.PIPE)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the launcher closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    launcher.wait(timeout=120)
    os.close(main)
    screen = b"".join(chunks).decode(errors="replace")
    assert launcher.returncode == 0, screen[-2000:]
    redraws = re.findall(r"\r\[worker 0\] +(\d+)/128 \[", screen)
    assert len(redraws) >= 2 and redraws[-1] == "128", screen[-2000:]
    assert "[worker 1]" not in screen  # only the chief shows progress


RESTARTED = """
import json, os, time
import numpy as np
import distflow as tf
from distflow.keras import layers


class Pace(tf.keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        rank, restart = os.environ["DISTFLOW_RANK"], os.environ["DISTFLOW_RESTART"]
        if rank == "1" and restart == "0" and batch == 3:
            raise SystemExit(1)  # the first start of worker 1 dies early
        if rank == "0":
            time.sleep(0.1)  # the chief is slow enough for worker 1 to come back mid-run


strategy = tf.distribute.get_strategy()
with strategy.scope():
    model = tf.keras.Sequential([layers.Dense(2, input_shape=(4,))])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.01), loss="mse")
x = np.random.default_rng(0).normal(size=(512, 4)).astype("float32")
model.fit(x, x[:, :2], epochs=3, batch_size=32, verbose=0, callbacks=[Pace()])
print("final", json.dumps(model.get_weights()[1].tolist()), flush=True)
"""


def test_a_restarted_worker_rejoins_and_never_steps_after_the_chief_finished(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", "--max-restarts", "1",
                          "--heartbeat-timeout", "60", script=RESTARTED, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert server_versions(output) == [3 * 512 // 32], output[-3000:]  # not one step more
    assert "[worker 1] resumed at epoch" in output, output[-3000:]
    assert "declared dead" not in output
    assert sorted(worker_json(result.stdout, "final")) == [0, 1]


PS_WRAPPER = """
import os, runpy, sys
with open(f"ps-{os.environ['DISTFLOW_RANK']}-{os.environ['DISTFLOW_RESTART']}.pid", "w") as f:
    f.write(str(os.getpid()))
sys.argv = ["distflow.distribute.server"]
runpy.run_module("distflow.distribute.server", run_name="__main__")
"""

KILLS_A_SERVER = """
import json, os, signal, time
# A request lost with the killed server would be sent again only after a quarter of
# this (100 s, past the test's budget) if the client did not notice the server is back.
os.environ["DISTFLOW_REQUEST_TIMEOUT"] = "400"
import numpy as np
import distflow as tf
from distflow.keras import layers


class KillServer(tf.keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if os.environ["DISTFLOW_RANK"] == "0" and batch == 10 and not os.path.exists("killed"):
            open("killed", "w").close()
            os.kill(int(open("ps-1-0.pid").read()), signal.SIGKILL)


strategy = tf.distribute.get_strategy()
with strategy.scope():
    model = tf.keras.Sequential([layers.Dense(64, input_shape=(8,)), layers.Dense(64),
                                 layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
x = np.random.default_rng(0).normal(size=(1024, 8)).astype("float32")
model.fit(x, x[:, :1], epochs=1, batch_size=32, verbose=0, callbacks=[KillServer()])
print("final", json.dumps([w.ravel().tolist() for w in model.get_weights()]), flush=True)
"""


def test_a_server_restarted_without_a_checkpoint_is_reseeded_and_resumes_at_once(tmp_path):
    (tmp_path / "ps_wrapper.py").write_text(textwrap.dedent(PS_WRAPPER))
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "2", "--max-restarts", "1",
                          "--ps-command", f"{sys.executable} -u ps_wrapper.py",
                          script=KILLS_A_SERVER, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert (tmp_path / "ps-1-1.pid").exists(), "server 1 was not restarted"
    assert "re-seeds it from its current parameters" in output, output[-3000:]
    versions = server_versions(output)
    assert sorted(versions)[-1] == 1024 // 32, output[-3000:]  # shard 0 took every step
    weights = worker_json(result.stdout, "final")
    assert sorted(weights) == [0, 1]
    for a, b in zip(weights[0], weights[1]):
        np.testing.assert_array_equal(a, b)


def _worker_only_tf_config_launchers(tmp_path, script, order, *flags, timeout=120):
    """One launcher per task of a TF_CONFIG listing two workers (the chief serves on its
    port + 1), started in `order`; returns [(exit code, stdout, stderr)] by task index."""
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    port = free_base_port(3)
    workers = [f"127.0.0.1:{port}", f"127.0.0.1:{port + 2}"]
    launchers = {}
    for index in order:
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        launchers[index] = subprocess.Popen(
            [sys.executable, "-m", "distflow.launch", *flags, "train.py"], cwd=tmp_path,
            env={**clean_env(tmp_path), "TF_CONFIG": json.dumps(config)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = {i: p.communicate(timeout=timeout) for i, p in launchers.items()}
    return [(launchers[i].returncode, *outputs[i]) for i in sorted(launchers)]


def test_launchers_from_a_worker_only_tf_config_train_together(tmp_path):
    results = _worker_only_tf_config_launchers(tmp_path, README_SCRIPT, (1, 0),
                                               "--rendezvous-timeout", "30")
    for code, out, err in results:
        assert code == 0, (out + err)[-3000:]
    (_, chief_out, chief_err), (_, other_out, _) = results
    assert server_versions(chief_out + chief_err) == [EPOCHS * ROWS // BATCH]
    final = {**worker_json(other_out, "final"), **worker_json(chief_out, "final")}
    assert sorted(final) == [0, 1]
    for a, b in zip(final[0], final[1]):
        np.testing.assert_array_equal(a, b)


FAILS_ON_WORKER_1 = """
import os, time
if os.environ["DISTFLOW_RANK"] == "1":
    raise SystemExit("worker 1 cannot read its data")
time.sleep(60)  # the chief would go on for a minute
"""


def test_a_failed_task_stops_the_other_launchers_naming_it(tmp_path):
    results = _worker_only_tf_config_launchers(tmp_path, FAILS_ON_WORKER_1, (0, 1),
                                               "--grace-period", "3",
                                               timeout=40)  # not the chief's minute
    codes = [code for code, _, _ in results]
    assert codes[0] != 0 and codes[1] != 0, results
    assert "(worker 1) reports a failure" in results[0][2], results[0][2][-2000:]
