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
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from test_launch_e2e import TRAIN, final_weights, reference_weights
from test_launch_supervisor import clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_ed25519
AuthorizedKeysFile {root}/authorized_keys
PidFile {root}/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
LogLevel ERROR
"""

PROBE = """
import os, runpy, sys
import msgpack  # in the launcher's virtual environment only
data = os.environ["DISTFLOW_DATA"]
print("data", open(os.path.join(data, "marker.txt")).read().strip(), flush=True)
runpy.run_path("train.py", run_name="__main__")
"""


def program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A loopback sshd; yields the ssh command line (the site's ssh options) that reaches it."""
    missing = [p for p in ("sshd", "ssh", "ssh-keygen") if not Path(program(p)).exists()]
    assert not missing, (f"{missing} not installed: `.ci/run` installs Debian's "
                         "openssh-server and openssh-client (apt-get, as root)")
    root = tmp_path / "sshd"
    root.mkdir()
    for key in (root / "host_ed25519", root / "id_ed25519"):
        subprocess.run([program("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, capture_output=True)
    (root / "authorized_keys").write_text((root / "id_ed25519.pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    port = free_port()
    (root / "sshd_config").write_text(SSHD_CONFIG.format(port=port, root=root))
    with open(root / "sshd.log", "wb") as log:
        daemon = subprocess.Popen([program("sshd"), "-D", "-e", "-f", str(root / "sshd_config")],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ssh = (f"{program('ssh')} -p {port} -i {root / 'id_ed25519'} -o Hostname=127.0.0.1 "
           "-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
           "-o LogLevel=ERROR")
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([*ssh.split(), "far", "true"], capture_output=True,
                             timeout=30).returncode != 0:
            assert daemon.poll() is None, (root / "sshd.log").read_text()
            assert time.monotonic() < deadline, "sshd did not accept a login within 60 s"
            time.sleep(0.3)
        yield ssh
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=10)


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
