"""Real cluster engines for the recipe tests: a private Slurm cluster and a loopback sshd.

Each engine runs as the current user (root in CI, where `.ci/run` installs Debian's
`slurm-wlm`, `munge`, `openmpi-bin` and `openssh-server`) from files in a temporary
directory, on free loopback ports, and is stopped by the test that started it. Nothing
is written outside that directory. The probe script trains a small linear model on the
real Fashion-MNIST files found through `DISTFLOW_DATA` and prints, on every worker,
its final weights, so a test can assert that training went through the servers.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PROBE_STEPS = 6

PROBE = f"""
import json
import sys
import numpy as np
import distflow as df
import distflow.distribute  # noqa: F401
import distflow.optimizers  # noqa: F401
from distflow.keras.datasets import fashion_mnist

# from $DISTFLOW_DATA (or the directory given as the first argument): fails if a rank
# cannot see it
(x, y), _ = fashion_mnist.load_data(*sys.argv[1:2])
x = (x[:256].reshape(256, -1) / 255.0).astype("float32")
y = (y[:256] == 0).astype("float32").reshape(-1, 1)
strategy = df.distribute.get_strategy()
rank, n = strategy.worker_index, strategy.num_replicas_in_sync
xs, ys = df.constant(x[rank::n]), df.constant(y[rank::n])
with strategy.scope():
    w = df.Variable(np.zeros((784, 1), "float32"), name="w")
    opt = df.optimizers.SGD(learning_rate=0.1)
    for step in range({PROBE_STEPS}):
        with df.GradientTape() as tape:
            loss = df.reduce_mean((df.matmul(xs, w) - ys) ** 2)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
print("final", json.dumps([float(v) for v in w.numpy().ravel()[::49]]), flush=True)
"""


def write_probe(directory: Path) -> Path:
    """Writes the probe training script into `directory` and returns its path."""
    path = directory / "probe_train.py"
    path.write_text(PROBE)
    return path


def assert_trained_through_servers(output: str, workers: int, steps: int = PROBE_STEPS) -> None:
    """Every worker printed the same final weights and the server stopped at `steps`."""
    found = re.findall(r"\[worker (\d+)\] final (\[.*\])\s*$", output, flags=re.M)
    weights = {int(rank): np.array(json.loads(body)) for rank, body in found}
    assert sorted(weights) == list(range(workers)), output[-4000:]
    for rank in weights:
        np.testing.assert_array_equal(weights[rank], weights[0])
    assert np.abs(weights[0]).sum() > 0, output[-4000:]  # the steps changed the weights
    versions = [int(v) for v in re.findall(r"stopped at version (\d+)", output)]
    assert versions == [steps], output[-4000:]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_base_port(count: int) -> int:
    """A base port P below the ephemeral range with P..P+count-1 free on every address
    now (ports from the kernel's ephemeral range may be taken by any outgoing connection)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32768 - count)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found in 20000-32767")


def wait_for(check, what: str, timeout: float = 60.0) -> None:
    """Polls `check()` until true; raises naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -------------------------------------------------------------------- Slurm


def slurm_node_names(count: int) -> list[str]:
    """Names that resolve to this machine, one per slurmd (Slurm's node names are host names)."""
    return [f"n{k}" for k in range(1, count + 1)]


SLURM_CONF = """\
ClusterName=distflowci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={root}/munge.sock
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
{nodes}
PartitionName=ci Nodes=ALL Default=YES MaxTime=30 State=UP OverSubscribe=YES
"""


class SlurmCluster:
    """A private Slurm cluster on this machine: munged, slurmctld and one slurmd per node."""

    def __init__(self, root: Path, nodes: int) -> None:
        self.root = root
        self.names = slurm_node_names(nodes)
        self.conf = root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.daemons: list[subprocess.Popen] = []

    def start(self) -> None:
        """Starts the daemons and waits until every node is idle."""
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        ctld, *node_ports = free_ports(1 + len(self.names))
        nodes = "\n".join(f"NodeName={name} NodeHostname={name} NodeAddr=127.0.0.1 Port={port} "
                          "CPUs=2 State=UNKNOWN"
                          for name, port in zip(self.names, node_ports))
        self.conf.write_text(SLURM_CONF.format(ctld_port=ctld, user=_user(), root=self.root,
                                               nodes=nodes))
        self._daemon(["slurmctld", "-D", "-i", "-f", str(self.conf)])
        for name in self.names:
            self._daemon(["slurmd", "-D", "-N", name, "-f", str(self.conf)])
        wait_for(self._all_idle, f"{len(self.names)} idle Slurm node(s) "
                 f"(logs in {self.root})", timeout=90)

    def _start_munge(self) -> None:
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._daemon(["munged", "-F", "--force", f"--key-file={key}",
                      f"--socket={self.root}/munge.sock",
                      f"--pid-file={self.root}/munged.pid", f"--log-file={self.root}/munged.log",
                      f"--seed-file={self.root}/munged.seed"])
        wait_for(lambda: (self.root / "munge.sock").exists(), "munged's socket")

    def _daemon(self, argv: list[str]) -> None:
        log = open(self.root / f"{argv[0]}-{len(self.daemons)}.out", "wb")  # noqa: SIM115
        argv = [program(argv[0]), *argv[1:]]
        self.daemons.append(subprocess.Popen(argv, env=self.env, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True))

    def _all_idle(self) -> bool:
        dead = [d.args for d in self.daemons if d.poll() is not None]
        if dead:
            raise RuntimeError(f"Slurm daemon(s) exited: {dead}; logs in {self.root}")
        out = self.run(["sinfo", "-h", "-N", "-o", "%N %t"], check=False).stdout
        states = dict(line.split() for line in out.splitlines() if line.strip())
        return len(states) == len(self.names) and all(s == "idle" for s in states.values())

    def run(self, argv: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Runs a Slurm client command against this cluster."""
        kwargs.setdefault("env", self.env)
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60,
                              **kwargs)

    def wait_job(self, job_id: str, timeout: float = 300) -> str:
        """Waits until the job leaves the queue; returns its final state from scontrol."""
        wait_for(lambda: not self.run(["squeue", "-h", "-j", job_id], check=False).stdout.strip(),
                 f"Slurm job {job_id}", timeout=timeout)
        out = self.run(["scontrol", "show", "job", job_id], check=False).stdout
        found = re.search(r"JobState=(\S+)", out)
        return found.group(1) if found else "UNKNOWN (" + out.strip() + ")"

    def stop(self) -> None:
        """Cancels any job left and stops the daemons."""
        self.run(["scancel", "--user", _user()], check=False)
        _stop(self.daemons[::-1])


def _user() -> str:
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def program(name: str) -> str:
    """The path of `name`, also when /usr/sbin (daemons) is not on PATH."""
    return shutil.which(name) or str(Path("/usr/sbin", name))


def require(*programs: str) -> None:
    """Fails (never skips) naming the programs `.ci/run` installs but this machine lacks."""
    missing = [p for p in programs if not Path(program(p)).exists()]
    assert not missing, (f"{missing} not installed: `.ci/run` installs Debian's slurm-wlm, "
                         "munge, openmpi-bin and openssh-server (apt-get, as root)")


# ---------------------------------------------------------------------- ssh

SSHD_CONFIG = """\
Port {port}
{listen}
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


class Sshd:
    """A private sshd on `addresses`, accepting only a key generated for this test."""

    def __init__(self, root: Path, addresses: list[str]) -> None:
        self.root, self.addresses = root, addresses
        self.port = free_ports(1)[0]
        self.key = root / "id_ed25519"
        self.daemon: subprocess.Popen | None = None

    @property
    def ssh(self) -> str:
        """The ssh command line that reaches this sshd (the site's ssh options)."""
        return (f"ssh -p {self.port} -i {self.key} -o BatchMode=yes "
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")

    def start(self) -> None:
        """Generates the keys, starts sshd and waits until a login works."""
        self.root.mkdir(parents=True, exist_ok=True)
        for key in (self.root / "host_ed25519", self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True, capture_output=True)
        (self.root / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        listen = "\n".join(f"ListenAddress {a}" for a in self.addresses)
        config = self.root / "sshd_config"
        config.write_text(SSHD_CONFIG.format(port=self.port, listen=listen, root=self.root))
        self.daemon = subprocess.Popen([program("sshd"), "-D", "-e", "-f", str(config)],
                                       stdout=open(self.root / "sshd.log", "wb"),  # noqa: SIM115
                                       stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self._login_works(self.addresses[-1]),
                 f"sshd on {self.addresses} port {self.port} (log {self.root}/sshd.log)")

    def _login_works(self, host: str) -> bool:
        if self.daemon.poll() is not None:
            raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()}")
        done = subprocess.run([*self.ssh.split(), host, "true"], capture_output=True,
                              timeout=20)
        return done.returncode == 0

    def stop(self) -> None:
        if self.daemon is not None:
            _stop([self.daemon])


@contextmanager
def running(service):
    """`service` (a :class:`SlurmCluster` or :class:`Sshd`) started, and stopped on exit."""
    try:
        service.start()
        yield service
    finally:
        service.stop()


def this_machines_address() -> str:
    """A non-loopback IPv4 address of this machine: ssh's target for a host that is "remote"
    to the launcher (it starts a host naming this machine, such as 127.0.0.1, without ssh)."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=True).stdout
    found = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    assert found, f"this machine has no non-loopback IPv4 address to ssh to: {out!r}"
    return found[0]
