"""Fault tolerance with real processes under the launcher (issue 6).

A small logistic-regression task is trained with a custom GradientTape loop by
several workers; a worker (or the chief, for the parameter server) delivers a
real SIGKILL at a chosen step. Each test is bounded by pytest-timeout and by
the subprocess timeout in `run_launcher`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STEPS = 40

TRAIN = f"""
import json, os, signal, sys, time
import numpy as np
import distflow as df
import distflow.distribute  # noqa: F401

victim, kill_step, target = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
steps = {STEPS}
strategy = df.distribute.get_strategy()
rank, n = strategy.worker_index, strategy.num_replicas_in_sync
restart = int(os.environ.get("DISTFLOW_RESTART", "0"))

rng = np.random.default_rng(0)
x = rng.normal(size=(3000, 10)).astype("float32")
true_w = rng.normal(size=(10, 1)).astype("float32")
y = (x @ true_w + 0.3 * rng.normal(size=(3000, 1)) > 0).astype("float32")


def kill_parameter_server():
    run_id = os.environ["DISTFLOW_RUN_ID"].encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = open(f"/proc/{{pid}}/environ", "rb").read().split(b"\\0")
        except OSError:
            continue
        if b"DISTFLOW_ROLE=ps" in env and b"DISTFLOW_RUN_ID=" + run_id in env:
            os.kill(int(pid), signal.SIGKILL)
            print("killed ps", pid, flush=True)


with strategy.scope():
    w = df.Variable(np.zeros((10, 1), "float32"), name="logreg/w")
    b = df.Variable(np.zeros((1,), "float32"), name="logreg/b")
    opt = df.optimizers.SGD(learning_rate=0.5)
    for step in range(steps):
        if rank == victim and step == kill_step and restart == 0:
            if target == "self":
                os.kill(os.getpid(), signal.SIGKILL)
            kill_parameter_server()
        rows = slice((step * 60) % 3000 + rank * 20, (step * 60) % 3000 + rank * 20 + 20)
        with df.GradientTape() as tape:
            logits = df.matmul(df.constant(x[rows]), w) + b
            loss = df.reduce_mean(df.nn.sigmoid_cross_entropy_with_logits(
                labels=df.constant(y[rows]), logits=logits))
        opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
        time.sleep(0.05)  # long enough a run for kills to land mid-way
    accuracy = float((((x @ w.numpy() + b.numpy()) > 0) == (y > 0)).mean())
    version = strategy.client.last_version
print("result", json.dumps({{"rank": rank, "restart": restart, "accuracy": accuracy,
                            "version": version}}), flush=True)
"""


def run_launcher(tmp_path: Path, launcher_args: list[str], script_args: list[str],
                 timeout: float = 180) -> subprocess.CompletedProcess:
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISTFLOW_", "SLURM_", "OMPI_")) and k != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "distflow.launch", "--grace-period", "5",
                           *launcher_args, "train.py", *script_args],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def results(stdout: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(r"^\[worker \d+\] result (\{.*\})$", stdout,
                                              flags=re.M)]


def _check(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return results(result.stdout)


def _undisturbed_accuracy(tmp_path: Path, strategy: str) -> float:
    base = tmp_path / "undisturbed"
    base.mkdir()
    found = _check(run_launcher(base, ["--workers", "3", "--strategy", strategy],
                                ["-1", "0", "none"]))
    assert len(found) == 3
    return found[0]["accuracy"]


def test_mirrored_survives_a_killed_worker(tmp_path):
    reference = _undisturbed_accuracy(tmp_path, "mirrored")
    result = run_launcher(tmp_path, ["--workers", "3", "--strategy", "mirrored",
                                     "--heartbeat-timeout", "3", "--allow-lost-workers"],
                          ["2", "10", "self"])
    found = _check(result)
    assert sorted(r["rank"] for r in found) == [0, 1]
    assert "lost" in result.stderr  # the summary reports the tolerated loss
    # The launcher tells the servers at once (no heartbeat timeout to wait out).
    death = re.search(r"Worker 2 left.*", result.stdout + result.stderr)
    assert death, (result.stdout + result.stderr)[-3000:]
    assert abs(found[0]["accuracy"] - reference) <= 0.01, (found, reference)


def test_mirrored_restarted_worker_rejoins(tmp_path):
    result = run_launcher(tmp_path, ["--workers", "3", "--strategy", "mirrored",
                                     "--heartbeat-timeout", "3", "--max-restarts", "1"],
                          ["2", "10", "self"])
    found = _check(result)
    assert sorted((r["rank"], r["restart"]) for r in found) == [(0, 0), (1, 0), (2, 1)]
    assert re.search(r"worker 2 .*restart", result.stderr, flags=re.I), result.stderr[-2000:]


def test_async_survives_a_killed_worker(tmp_path):
    result = run_launcher(tmp_path, ["--workers", "3", "--strategy", "async",
                                     "--heartbeat-timeout", "3", "--allow-lost-workers"],
                          ["1", "5", "self"])
    found = _check(result)
    assert sorted(r["rank"] for r in found) == [0, 2]
    assert found[0]["accuracy"] > 0.9


def test_killed_parameter_server_resumes_from_its_checkpoint(tmp_path):
    every = 5
    result = run_launcher(tmp_path, ["--workers", "2", "--strategy", "mirrored",
                                     "--max-restarts", "1", "--checkpoint-dir",
                                     str(tmp_path / "ckpt"), "--checkpoint-every", str(every),
                                     "--heartbeat-timeout", "5"], ["0", "22", "ps"])
    found = _check(result)
    assert "killed ps" in result.stdout
    assert sorted(r["rank"] for r in found) == [0, 1]
    lost = STEPS - found[0]["version"]
    assert 0 <= lost <= every, found  # at most the steps since the last checkpoint
    assert found[0]["accuracy"] > 0.9
    assert list((tmp_path / "ckpt").rglob("ckpt-*.safetensors"))
