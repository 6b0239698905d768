"""Two "hosts" as two Linux network namespaces joined by a veth pair.

The test creates the namespaces (needs root and ``ip``), runs one launcher in
each (``--nnodes 2 --node-rank k --master-addr <ns0 address>``, or the Slurm
variables instead of the flags) and removes the namespaces afterwards. It is
skipped, with the reason, only where namespaces cannot be created.

The stand-in-server variants check the launchers' cross-host wiring on their
own; the real-server variants run an actual training across the namespaces
and need ``distflow.distribute.server`` (they fail without it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_launch_e2e import TRAIN, final_weights, reference_weights
from test_launch_supervisor import STAND_IN_SERVER, WORKER, clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PORT = 29400


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)


@pytest.fixture
def two_hosts():
    """Namespaces ns0/ns1 with addresses 10.231.S.1 and 10.231.S.2; yields both."""
    if shutil.which("ip") is None:
        pytest.skip("the `ip` command (iproute2) is not installed")
    tag = f"df{os.getpid() % 100000}"
    subnet = f"10.231.{os.getpid() % 250}"
    names, hosts = [f"{tag}n0", f"{tag}n1"], [f"{subnet}.1", f"{subnet}.2"]
    created = _ip("netns", "add", names[0])
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {created.stderr.strip()}")
    try:
        steps = [("netns", "add", names[1]),
                 ("link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b")]
        for k, end in enumerate((f"{tag}a", f"{tag}b")):
            steps += [("link", "set", end, "netns", names[k]),
                      ("-n", names[k], "addr", "add", f"{hosts[k]}/24", "dev", end),
                      ("-n", names[k], "link", "set", end, "up"),
                      ("-n", names[k], "link", "set", "lo", "up")]
        for step in steps:
            result = _ip(*step)
            assert result.returncode == 0, f"ip {' '.join(step)}: {result.stderr}"
        yield names, hosts
    finally:
        for name in names:
            _ip("netns", "delete", name)


def _write_scripts(tmp_path: Path) -> None:
    (tmp_path / "server.py").write_text(textwrap.dedent(STAND_IN_SERVER))
    (tmp_path / "worker.py").write_text(textwrap.dedent(WORKER))
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))


def _run_both(tmp_path, names, hosts, use_slurm: bool, real_server: bool, ps: int = 1):
    _write_scripts(tmp_path)
    args = [sys.executable, "-m", "distflow.launch", "--insecure", "--port", str(PORT),
            "--workers", "2", "--ps", str(ps), "--grace-period", "5", "--rendezvous-timeout", "60"]
    if not real_server:
        args += ["--ps-command", f"{sys.executable} -u {tmp_path / 'server.py'}"]
    script = "train.py" if real_server else "worker.py"
    launchers = []
    for k, name in enumerate(names):
        env = clean_env(tmp_path)
        node_args = []
        if use_slurm:
            env.update(SLURM_PROCID=str(k), SLURM_NODEID=str(k), SLURM_NTASKS="2",
                       SLURM_STEP_NODELIST=f"{hosts[0].rsplit('.', 1)[0]}.[1-2]",
                       SLURM_JOB_ID="42", SLURM_STEP_ID="0")
        else:
            node_args = ["--nnodes", "2", "--node-rank", str(k), "--master-addr", hosts[0]]
        launchers.append(subprocess.Popen(
            ["ip", "netns", "exec", name, *args, *node_args, script], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for launcher in launchers:
        try:
            out, err = launcher.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for other in launchers:
                other.kill()
            raise AssertionError("a namespaced launcher did not finish within 180 s") from None
        results.append((launcher.returncode, out, err))
    return results


@pytest.mark.parametrize("use_slurm", [False, True], ids=["flags", "slurm"])
def test_launchers_in_two_namespaces_with_stand_in_server(tmp_path, two_hosts, use_slurm):
    names, hosts = two_hosts
    (rc0, out0, err0), (rc1, out1, err1) = _run_both(tmp_path, names, hosts, use_slurm, False)
    assert (rc0, rc1) == (0, 0), err0[-2000:] + err1[-2000:]
    assert f"[ps 0] ps up 0 restart 0 tcp://{hosts[0]}:{PORT}" in out0
    assert "[worker 0] hello worker 0 of 2" in out0 and "[worker 1]" not in out0
    assert "[worker 1] hello worker 1 of 2" in out1 and "[ps 0]" not in out1
    stopped = float((tmp_path / "ps0-stopped").read_text())
    assert stopped >= float((tmp_path / "end-worker1").read_text())


@pytest.mark.parametrize("use_slurm", [False, True], ids=["flags", "slurm"])
def test_training_across_two_namespaces_with_real_server(tmp_path, two_hosts, use_slurm):
    names, hosts = two_hosts
    (rc0, out0, err0), (rc1, out1, err1) = _run_both(tmp_path, names, hosts, use_slurm, True)
    assert (rc0, rc1) == (0, 0), out0[-1500:] + err0[-1500:] + out1[-1500:] + err1[-1500:]
    if use_slurm:  # a multi-node Slurm launcher's lines start with its node
        assert re.search(r"^\[node 0\] \[worker 0\] final", out0, flags=re.M), out0[-1500:]
        assert re.search(r"^\[node 1\] \[worker 1\] final", out1, flags=re.M), out1[-1500:]
        out0, out1 = (re.sub(r"^\[node \d+\] ", "", out, flags=re.M) for out in (out0, out1))
    weights = {**final_weights(out0), **final_weights(out1)}
    assert sorted(weights) == [0, 1]
    np.testing.assert_allclose(weights[0], weights[1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(weights[0], reference_weights(2), rtol=1e-4, atol=1e-4)


def test_two_servers_spread_over_two_namespaces_train_together(tmp_path, two_hosts):
    """--ps 2 on two Slurm nodes: server i runs on node i, each node's workers use both."""
    names, hosts = two_hosts
    (rc0, out0, err0), (rc1, out1, err1) = _run_both(tmp_path, names, hosts, True, True, ps=2)
    assert (rc0, rc1) == (0, 0), out0[-1500:] + err0[-1500:] + out1[-1500:] + err1[-1500:]
    assert "[ps 0]" in out0 + err0 and "[ps 1]" not in out0 + err0
    assert "[ps 1]" in out1 + err1 and "[ps 0]" not in out1 + err1
    out0, out1 = (re.sub(r"^\[node \d+\] ", "", out, flags=re.M) for out in (out0, out1))
    weights = {**final_weights(out0), **final_weights(out1)}
    assert sorted(weights) == [0, 1]
    np.testing.assert_allclose(weights[0], weights[1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(weights[0], reference_weights(2), rtol=1e-4, atol=1e-4)
