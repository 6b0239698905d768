"""A network partition between two "hosts" (network namespaces) in the middle of a run.

Node 0 runs the parameter server and the chief, node 1 runs worker 1. When
worker 1 has done some steps the test takes node 1's link down. The chief's
side must notice within the heartbeat timeout and finish without worker 1
(async, and sync without that worker); worker 1 must fail with an error that
names the server and the operation; nothing may hang.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time

import pytest
from test_launch_netns import PORT, _ip, two_hosts  # noqa: F401 - fixture
from test_launch_supervisor import clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TRAIN = """
import os, pathlib, time
import numpy as np
import distflow as df
import distflow.distribute  # noqa: F401

strategy = df.distribute.get_strategy()
rank = strategy.worker_index
marker = pathlib.Path(os.environ["OUT_DIR"]) / f"progress-{rank}"
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 3)).astype("float32")
y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
with strategy.scope():
    w = df.Variable(np.zeros((3, 1), "float32"), name="w")
    opt = df.optimizers.SGD(0.05)
    for step in range(300):
        with df.GradientTape() as tape:
            loss = df.reduce_mean((df.matmul(df.constant(x), w) - y) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, [w]), [w]))
        marker.write_text(str(step))
        time.sleep(0.02)
print("finished", rank, float(loss.numpy()), flush=True)
"""


def _start(tmp_path, names, hosts, strategy):
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    args = [sys.executable, "-m", "distflow.launch", "--insecure", "--port", str(PORT),
            "--workers", "2", "--ps", "1", "--strategy", strategy, "--grace-period", "3",
            "--heartbeat-timeout", "3", "--rendezvous-timeout", "20"]
    env = clean_env(tmp_path, DISTFLOW_REQUEST_TIMEOUT="5")
    return [subprocess.Popen(["ip", "netns", "exec", name, *args, "--nnodes", "2",
                              "--node-rank", str(k), "--master-addr", hosts[0], "train.py"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for k, name in enumerate(names)]


def _wait_for_progress(tmp_path, rank: int, step: int, timeout: float = 60) -> None:
    marker = tmp_path / f"progress-{rank}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = marker.read_text().strip() if marker.exists() else ""
        if text.isdigit() and int(text) >= step:  # the writer may be mid-write: re-read
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {rank} did not reach step {step} within {timeout} s")


@pytest.mark.parametrize("strategy", ["async", "mirrored"])
def test_partitioned_worker_is_dropped_and_nothing_hangs(tmp_path, two_hosts, strategy):  # noqa: F811
    names, hosts = two_hosts
    launchers = _start(tmp_path, names, hosts, strategy)
    try:
        _wait_for_progress(tmp_path, 1, 20)
        tag = names[0][:-2]
        down = _ip("-n", names[1], "link", "set", f"{tag}b", "down")
        assert down.returncode == 0, down.stderr
        started = time.monotonic()
        outputs = [launcher.communicate(timeout=150) for launcher in launchers]
        elapsed = time.monotonic() - started
    finally:
        for launcher in launchers:
            launcher.kill()
    (out0, err0), (out1, err1) = outputs
    everything = out0 + err0 + out1 + err1
    assert launchers[0].returncode == 0, everything[-4000:]
    assert "finished 0" in out0
    assert "Worker 1 declared dead" in everything, everything[-4000:]
    assert "finished 1" not in out1
    # Node 1 ends with an error naming what it lost: the server (worker 1's request
    # timed out) or the coordinator launcher (its control connection broke).
    assert launchers[1].returncode != 0
    assert re.search(rf"{re.escape(hosts[0])}:\d+", out1 + err1), (out1 + err1)[-3000:]
    assert elapsed < 120
