"""End to end: the launcher with the real parameter server and a real training loop.

Needs ``distflow.distribute.server``; if it is missing these tests fail (they
are not skipped), because a launcher that cannot start a server is broken.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STEPS, LR, ROWS = 20, 0.1, 64

TRAIN = f"""
import json, os
import numpy as np
import distflow as df
import distflow.distribute  # noqa: F401 - the launcher, not the package exports, is tested
import distflow.optimizers  # noqa: F401

strategy = df.distribute.get_strategy()
rank, n = strategy.worker_index, strategy.num_replicas_in_sync
rng = np.random.default_rng(0)
x = rng.normal(size=({ROWS}, 3)).astype("float32")
y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3).astype("float32")
xs, ys = df.constant(x[rank::n]), df.constant(y[rank::n])
with strategy.scope():
    w = df.Variable(np.zeros((3, 1), "float32"), name="w")
    b = df.Variable(np.zeros((1,), "float32"), name="b")
    opt = df.optimizers.SGD(learning_rate={LR})
    for step in range({STEPS}):
        with df.GradientTape() as tape:
            loss = df.reduce_mean((df.matmul(xs, w) + b - ys) ** 2)
        grads = tape.gradient(loss, [w, b])
        opt.apply_gradients(zip(grads, [w, b]))
print("final", json.dumps(w.numpy().ravel().tolist() + b.numpy().ravel().tolist()))
"""


def reference_weights(workers: int) -> np.ndarray:
    """Full-batch gradient descent in NumPy: what mirrored training must reproduce."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3).astype("float32")
    w, b = np.zeros((3, 1), np.float64), np.zeros((1,), np.float64)
    for _ in range(STEPS):
        grads_w, grads_b = [], []
        for rank in range(workers):
            xs, ys = x[rank::workers], y[rank::workers]
            err = xs @ w + b - ys
            grads_w.append(2 * xs.T @ err / len(xs))
            grads_b.append(2 * err.mean(axis=0))
        w -= LR * np.mean(grads_w, axis=0)
        b -= LR * np.mean(grads_b, axis=0)
    return np.concatenate([w.ravel(), b])


def run_launcher(tmp_path: Path, *args: str, script: str = TRAIN,
                 script_args: tuple[str, ...] = (), timeout: float = 150
                 ) -> subprocess.CompletedProcess:
    """Runs `script` (written to tmp_path/train.py) under `python -m distflow.launch args`.

    The environment is this one without any cluster description (DISTFLOW_*,
    Slurm, OpenMPI, TF_CONFIG), so only `args` describe the run; later flags in
    `args` override the defaults here.
    """
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISTFLOW_", "SLURM_", "OMPI_")) and k != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "distflow.launch", "--grace-period", "5",
                           "--heartbeat-timeout", "20", *args, "train.py", *script_args],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def worker_json(stdout: str, tag: str) -> dict[int, Any]:
    """worker rank -> the JSON it printed after `tag` (lines "[worker N] tag {...}")."""
    found = re.findall(rf"^\[worker (\d+)\] {tag} ([{{\[].*[}}\]])$", stdout, flags=re.M)
    return {int(rank): json.loads(body) for rank, body in found}


def final_weights(stdout: str) -> dict[int, np.ndarray]:
    return {rank: np.array(values) for rank, values in worker_json(stdout, "final").items()}


@pytest.mark.parametrize("num_ps", [1, 2])
def test_mirrored_run_through_real_servers_matches_full_batch_descent(tmp_path, num_ps):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", str(num_ps),
                          "--strategy", "mirrored")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    weights = final_weights(result.stdout)
    assert sorted(weights) == [0, 1], result.stdout[-2000:]
    np.testing.assert_allclose(weights[0], weights[1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(weights[0], reference_weights(2), rtol=1e-4, atol=1e-4)
    assert "completed" in result.stderr


def _with_prologue(prologue: str) -> str:
    return "import os, sys, time\nrank_env = int(os.environ['DISTFLOW_RANK'])\n" + \
        textwrap.dedent(prologue) + textwrap.dedent(TRAIN)


def test_a_worker_later_than_the_heartbeat_timeout_still_joins_the_first_step(tmp_path):
    """Pod scheduling skew: the servers wait for a worker that has not registered yet up to
    the run's startup deadline (--rendezvous-timeout), not the heartbeat timeout."""
    late = _with_prologue("if rank_env == 1:\n    time.sleep(6)\n")
    result = run_launcher(tmp_path, "--workers", "2", "--heartbeat-timeout", "2",
                          script=late)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    weights = final_weights(result.stdout)
    assert sorted(weights) == [0, 1], result.stdout[-2000:]
    np.testing.assert_allclose(weights[0], weights[1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(weights[0], reference_weights(2), rtol=1e-4, atol=1e-4)


def test_a_worker_lost_before_its_first_step_fails_the_run(tmp_path):
    """Even with --allow-lost-workers: a run that never had all its workers did not train."""
    broken = _with_prologue("if rank_env == 1:\n    sys.exit('worker 1 cannot start')\n")
    result = run_launcher(tmp_path, "--workers", "2", "--allow-lost-workers", script=broken)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    summary = [line for line in result.stderr.splitlines() if "[launch] run " in line]
    assert len(summary) == 1, result.stderr[-3000:]
    assert " failed " in summary[0] and "worker 1 lost before its first step" in summary[0]
    assert "(exit code 1)" in summary[0]
