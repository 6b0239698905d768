"""`--hosts` over a real ssh: a private sshd on loopback, started by the test.

The sshd accepts only a key generated here. The second host's name is not this
machine's, so the launcher reaches it through ssh (`-o Hostname=127.0.0.1`
maps the name to the loopback sshd), and the remote node launcher starts in
the login environment of an ssh session: no virtual environment, no PYTHONPATH,
none of the DISTFLOW_* variables of the launcher's shell. Needs openssh-server
and openssh-client (.ci/run installs them as root with apt-get); the test fails
naming them where they are missing instead of skipping.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from engines import Sshd, require, running
from test_launch_e2e import TRAIN, final_weights, reference_weights
from test_launch_supervisor import clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PROBE = """
import os, runpy, sys
import msgpack  # in the launcher's virtual environment only
data = os.environ["DISTFLOW_DATA"]
print("data", open(os.path.join(data, "marker.txt")).read().strip(), flush=True)
runpy.run_path("train.py", run_name="__main__")
"""


@pytest.fixture
def sshd(tmp_path):
    """A loopback sshd (tests/engines.py's); yields the ssh command line that reaches it,
    with every host name mapped to 127.0.0.1."""
    require("sshd", "ssh", "ssh-keygen")
    with running(Sshd(tmp_path / "sshd", ["127.0.0.1"])) as daemon:
        yield f"{daemon.ssh} -o Hostname=127.0.0.1"


def test_a_node_launcher_over_ssh_gets_the_interpreter_and_the_distflow_variables(
        tmp_path, sshd):
    data = tmp_path / "data"
    data.mkdir()
    (data / "marker.txt").write_text("marker-ok")
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    from test_launch_config import free_base_port

    port = free_base_port(2)
    argv = [sys.executable, "-m", "distflow.launch", "--hosts", "127.0.0.1:1,far:1",
            "--master-addr", "127.0.0.1", "--bind", "127.0.0.1", "--port", str(port),
            "--ssh", sshd, "--rendezvous-timeout", "60", "--grace-period", "5", "probe.py"]
    done = subprocess.run(argv, cwd=tmp_path, env=clean_env(tmp_path, DISTFLOW_DATA=str(data)),
                          capture_output=True, text=True, timeout=200)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "[node 1] [worker 1] data marker-ok" in done.stdout, output[-3000:]
    assert "[node 0] [worker 0] data marker-ok" in done.stdout
    weights = final_weights(re.sub(r"^\[node \d\] ", "", done.stdout, flags=re.M))
    assert sorted(weights) == [0, 1]
    np.testing.assert_allclose(weights[0], weights[1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(weights[0], reference_weights(2), rtol=1e-4, atol=1e-4)
