"""Launcher supervision with real processes: small scripts written by the tests.

The parameter server is replaced by a stand-in script through --ps-command,
so these tests exercise the launcher alone; tests/test_launch_e2e.py runs the
real server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from distflow.launch.watchdog import group_alive

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(90)

STAND_IN_SERVER = """
import os, signal, sys, time
out = os.environ["OUT_DIR"]
rank, restart = os.environ["DISTFLOW_RANK"], os.environ["DISTFLOW_RESTART"]
print("ps up", rank, "restart", restart, os.environ["DISTFLOW_PS_ADDRS"], flush=True)
if os.environ.get("PS_CRASH"):
    sys.exit(5)
def stop(*_):
    open(os.path.join(out, f"ps{rank}-stopped"), "w").write(repr(time.time()))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(os.path.join(out, f"ps{rank}-up-{restart}"), "w").write("up")  # stop() now runs on SIGTERM
time.sleep(60)
sys.exit(3)
"""

WORKER = """
import os, signal, sys, time
out = os.environ["OUT_DIR"]
rank, restart = int(os.environ["DISTFLOW_RANK"]), os.environ["DISTFLOW_RESTART"]
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(os.path.join(out, f"pid-worker{rank}-{restart}"), "w").write(str(os.getpid()))
print(f"hello worker {rank} of {os.environ['DISTFLOW_NUM_WORKERS']} restart {restart} "
      f"threads {os.environ['OMP_NUM_THREADS']}")
print(f"err line {rank}", file=sys.stderr)
mode = os.environ.get("MODE", "")
# Wait for every stand-in server to be up (its SIGTERM handler set), so the launcher's
# stop at the end of the run always finds a server that reports it; no timing guesses.
deadline = time.monotonic() + 30
for ps in range(int(os.environ["DISTFLOW_NUM_PS"])):
    while not any(n.startswith(f"ps{ps}-up-") for n in os.listdir(out)):
        if time.monotonic() > deadline:
            sys.exit(f"worker {rank}: stand-in server {ps} did not start within 30 s")
        time.sleep(0.02)
if mode == "chief_raises" and rank == 0:
    raise ValueError("bad data in shard 0")
if mode == "one_raises" and rank == 1:
    raise ValueError("worker 1 always fails")
if mode == "crash_once" and rank == 1 and restart == "0":
    raise RuntimeError("crash on first attempt")
if mode == "sleep":
    time.sleep(60)
time.sleep(float(os.environ.get(f"SLEEP_{rank}", "0")))
open(os.path.join(out, f"end-worker{rank}"), "w").write(repr(time.time()))
"""


@pytest.fixture
def scripts(tmp_path):
    (tmp_path / "server.py").write_text(textwrap.dedent(STAND_IN_SERVER))
    (tmp_path / "worker.py").write_text(textwrap.dedent(WORKER))
    return tmp_path


def clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISTFLOW_", "SLURM_", "OMPI_")) and k != "TF_CONFIG"}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OUT_DIR=str(tmp_path))
    env.update(extra)
    return env


def launcher_argv(tmp_path, *args):
    ps = f"{sys.executable} -u {tmp_path / 'server.py'}"
    return [sys.executable, "-m", "distflow.launch", "--ps-command", ps, "--grace-period", "3",
            *args]


def launch(tmp_path, *args, timeout=60, **extra):
    return subprocess.run(launcher_argv(tmp_path, *args, "worker.py"), cwd=tmp_path,
                          env=clean_env(tmp_path, **extra), capture_output=True, text=True,
                          timeout=timeout)


def read_float(path: Path) -> float:
    return float(path.read_text())


def test_local_run_prefixes_output_and_stops_servers_after_workers(scripts):
    result = launch(scripts, "--workers", "2", SLEEP_1="0.5")
    assert result.returncode == 0, result.stderr
    for rank in (0, 1):
        assert f"[worker {rank}] hello worker {rank} of 2 restart 0 threads 1\n" in result.stdout
        assert f"[worker {rank}] err line {rank}\n" in result.stderr
    assert "[ps 0] ps up 0 restart 0 tcp://127.0.0.1:" in result.stdout
    stopped = read_float(scripts / "ps0-stopped")
    assert stopped >= read_float(scripts / "end-worker1") >= read_float(scripts / "end-worker0")
    assert "completed" in result.stderr
    summary = result.stderr.split("completed", 1)[1]
    assert "worker 1" in summary and "ps 0" in summary and "restarts" in summary


def test_chief_failure_fails_the_run_and_names_it(scripts):
    result = launch(scripts, "--workers", "2", MODE="chief_raises")
    assert result.returncode == 1
    assert "[launch] worker 0 failed with exit code 1; stopping the run." in result.stderr
    assert "[launch]     ValueError: bad data in shard 0" in result.stderr


def test_other_worker_failure_is_tolerated_and_reported(scripts):
    result = launch(scripts, "--workers", "3", MODE="one_raises")
    assert result.returncode == 3, result.stderr  # completed, but a worker was lost
    assert "worker 1 exited with 1 after 0 restart(s); the run goes on without it" in (
        result.stderr)
    assert "1 worker(s) lost" in result.stderr
    assert (scripts / "end-worker2").exists() and not (scripts / "end-worker1").exists()


def test_fail_fast_ends_the_run_at_any_failure(scripts):
    result = launch(scripts, "--workers", "3", "--fail-fast", MODE="one_raises")
    assert result.returncode == 1
    assert "worker 1 failed with exit code 1" in result.stderr


def test_max_restarts_restarts_a_worker_that_crashes_once(scripts):
    result = launch(scripts, "--workers", "2", "--max-restarts", "1", MODE="crash_once")
    assert result.returncode == 0, result.stderr
    assert "[worker 1] hello worker 1 of 2 restart 1" in result.stdout
    assert "worker 1 exited with 1; restarting it (1/1)" in result.stderr
    row = [line for line in result.stderr.splitlines() if "  worker 1 " in line][-1]
    assert row.split()[3:7] == ["127.0.0.1", "done", "0", "1"], row


def test_failed_server_is_restarted_then_fails_the_run(scripts):
    result = launch(scripts, "--workers", "1", "--max-restarts", "1", MODE="sleep",
                    PS_CRASH="1")
    assert result.returncode == 5
    assert "[ps 0] ps up 0 restart 1" in result.stdout
    assert "ps 0 failed with exit code 5; stopping the run" in result.stderr


def test_log_dir_gets_one_file_per_process(scripts):
    result = launch(scripts, "--workers", "2", "--log-dir", "logs")
    assert result.returncode == 0, result.stderr
    logs = sorted(p.name for p in (scripts / "logs").iterdir())
    assert logs == ["ps-0.log", "worker-0.log", "worker-1.log"]
    text = (scripts / "logs" / "worker-1.log").read_text()
    assert "hello worker 1 of 2" in text and "err line 1" in text


def wait_for_pids(directory: Path, count: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(directory.glob("pid-worker*"))
        if len(files) == count and all(f.read_text() for f in files):
            return [int(f.read_text()) for f in files]
        time.sleep(0.05)
    raise AssertionError(f"{count} workers did not write their pids in {directory} "
                         f"within {timeout} s")


def alive(pid: int) -> bool:
    return group_alive(pid)  # the workers lead their own process groups


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def start_sleepers(scripts, *extra_args, **extra_env):
    return subprocess.Popen(launcher_argv(scripts, "--workers", "2", *extra_args, "worker.py"),
                            cwd=scripts, env=clean_env(scripts, MODE="sleep", **extra_env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_launcher_is_forwarded_and_stops_every_child(scripts, signum):
    launcher = start_sleepers(scripts)
    pids = wait_for_pids(scripts, 2)
    assert all(alive(p) for p in pids)
    launcher.send_signal(signum)
    _, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 128 + signum
    assert wait_gone(pids, 5.0) == []
    assert "failed" in err and "worker 0" in err


def test_sigkill_to_launcher_leaves_no_orphan_even_if_sigterm_is_ignored(scripts):
    launcher = start_sleepers(scripts, "--grace-period", "3", IGNORE_TERM="1")
    pids = wait_for_pids(scripts, 2)
    launcher.kill()
    launcher.wait(timeout=30)  # not communicate(): the watchdog keeps stderr open
    time.sleep(0.5)
    assert all(alive(p) for p in pids), "SIGTERM was ignored, so the workers should still run"
    assert wait_gone(pids, 10.0) == [], "the watchdog did not SIGKILL the orphans"
    launcher.stderr.close()


def test_two_launchers_as_two_nodes_on_loopback(scripts):
    from test_launch_config import free_base_port

    port = free_base_port(2)
    common = ["--nnodes", "2", "--master-addr", "127.0.0.1", "--bind", "127.0.0.1",
              "--port", str(port), "--workers", "2", "--rendezvous-timeout", "20"]
    env = clean_env(scripts, SLEEP_1="1.0")
    launchers = [subprocess.Popen(launcher_argv(scripts, *common, "--node-rank", str(k),
                                                "worker.py"),
                                  cwd=scripts, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for k in (1, 0)]
    outputs = [p.communicate(timeout=60) for p in launchers]
    assert [p.returncode for p in launchers] == [0, 0], outputs
    node1_out, node0_out = outputs[0][0], outputs[1][0]
    assert "[worker 1] hello worker 1 of 2" in node1_out and "[ps 0]" not in node1_out
    assert "[worker 0] hello worker 0 of 2" in node0_out and "[ps 0] ps up" in node0_out
    assert read_float(scripts / "ps0-stopped") >= read_float(scripts / "end-worker1")


def _send_until_accepted(port: int, data: bytes, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as intruder:
                intruder.sendall(data)
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_with_keys_two_node_launchers_talk_through_curve_and_refuse_a_plain_intruder(
        scripts):
    """The attack on a plain channel: a `done` with ok=false from anyone ends the run."""
    from test_launch_config import free_base_port

    from distflow import keys

    keys.generate(scripts / "keys", clients=2)
    port = free_base_port(2)
    common = ["--nnodes", "2", "--master-addr", "127.0.0.1", "--bind", "127.0.0.1",
              "--port", str(port), "--workers", "2", "--rendezvous-timeout", "20",
              "--keys", str(scripts / "keys"), "--run-id", "known-run"]
    env = clean_env(scripts, SLEEP_1="4.0")
    launchers = [subprocess.Popen(launcher_argv(scripts, *common, "--node-rank", str(k),
                                                "worker.py"),
                                  cwd=scripts, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for k in (1, 0)]
    _send_until_accepted(port + 1, b'{"type": "hello", "node": 1, "run_id": "known-run"}\n'
                                   b'{"type": "done", "node": 1, "ok": false, "exit_code": 9}\n')
    outputs = [p.communicate(timeout=60) for p in launchers]
    assert [p.returncode for p in launchers] == [0, 0], outputs
    assert "[worker 1] hello worker 1 of 2" in outputs[0][0]
    assert read_float(scripts / "ps0-stopped") >= read_float(scripts / "end-worker1")
    assert (f"[launch] refused a connection to the launcher coordinator at 127.0.0.1:{port + 1}"
            in outputs[1][1])


def test_hosts_driver_runs_node_launchers_for_local_hosts(scripts):
    from test_launch_config import free_base_port

    port = free_base_port(2)
    result = launch(scripts, "--hosts", "localhost:1,127.0.0.1:1", "--port", str(port),
                    "--rendezvous-timeout", "20", SLEEP_1="0.3")
    assert result.returncode == 0, result.stderr
    assert "[node 1] [worker 1] hello worker 1 of 2" in result.stdout
    assert "[node 0] [worker 0] hello worker 0 of 2" in result.stdout
    assert "[node 0] [ps 0] ps up 0" in result.stdout


def test_ssh_driver_runs_the_remote_command_line(scripts):
    """A fake ssh that runs the remote command locally checks the whole ssh path."""
    fake_ssh = scripts / "fake_ssh"
    fake_ssh.write_text('#!/bin/sh\necho "ssh to $1" >&2\nexec sh -c "$2"\n')
    fake_ssh.chmod(0o755)
    from test_launch_config import free_base_port

    port = free_base_port(2)
    result = launch(scripts, "--hosts", "far1:1,far2:1", "--master-addr", "127.0.0.1",
                    "--bind", "127.0.0.1", "--ssh", str(fake_ssh), "--port", str(port),
                    "--rendezvous-timeout", "20")
    assert result.returncode == 0, result.stderr
    assert "[node 0] ssh to far1" in result.stderr and "[node 1] ssh to far2" in result.stderr
    assert "[node 1] [worker 1] hello worker 1 of 2" in result.stdout
    assert "[node 0] [ps 0] ps up 0 restart 0 tcp://127.0.0.1:" in result.stdout


def test_watch_stdin_stops_the_run_when_stdin_closes(scripts):
    launcher = subprocess.Popen(
        launcher_argv(scripts, "--workers", "2", "--watch-stdin", "worker.py"), cwd=scripts,
        env=clean_env(scripts, MODE="sleep"), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pids = wait_for_pids(scripts, 2)
    launcher.stdin.close()  # what an ssh client's death looks like to the remote side
    launcher.stdin = None
    _, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 128 + signal.SIGTERM, err
    assert wait_gone(pids, 5.0) == []


def test_pdeathsig_alone_stops_children_when_launcher_and_watchdog_die(scripts):
    launcher = start_sleepers(scripts)
    pids = wait_for_pids(scripts, 2)
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    watchdogs = [int(p) for p in children
                 if b"watchdog.py" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(watchdogs) == 1
    os.kill(watchdogs[0], signal.SIGKILL)
    launcher.kill()
    launcher.wait(timeout=30)
    assert wait_gone(pids, 5.0) == [], "PR_SET_PDEATHSIG did not stop the workers"
    launcher.stderr.close()


def run_launchers(scripts, per_launcher: list[tuple[list[str], dict]], timeout=60):
    """Starts one launcher per (args, env) pair, like a cluster engine would."""
    launchers = [subprocess.Popen(launcher_argv(scripts, *args, "worker.py"), cwd=scripts,
                                  env=clean_env(scripts, **env), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for args, env in per_launcher]
    results = [p.communicate(timeout=timeout) for p in launchers]
    return [(p.returncode, out, err) for p, (out, err) in zip(launchers, results)]


def test_openmpi_ranks_each_run_one_process(scripts):
    from test_launch_config import free_base_port

    port = free_base_port(2)
    ranks = [([ "--port", str(port), "--rendezvous-timeout", "20"],
              {"OMPI_COMM_WORLD_RANK": str(r), "OMPI_COMM_WORLD_SIZE": "3",
               "OMPI_COMM_WORLD_LOCAL_RANK": str(r), "SLEEP_1": "0.5"}) for r in (2, 1, 0)]
    results = run_launchers(scripts, ranks)
    assert [r[0] for r in results] == [0, 0, 0], results
    assert "[worker 1] hello worker 1 of 2" in results[0][1]
    assert "[worker 0] hello worker 0 of 2" in results[1][1]
    assert f"[ps 0] ps up 0 restart 0 tcp://127.0.0.1:{port}" in results[2][1]
    assert read_float(scripts / "ps0-stopped") >= read_float(scripts / "end-worker1")


def test_tf_config_tasks_each_run_one_process(scripts):
    import json

    from test_launch_config import free_base_port

    port = free_base_port(3)
    tf_cluster = {"chief": [f"127.0.0.1:{port}"], "worker": [f"127.0.0.1:{port + 1}"],
                  "ps": [f"127.0.0.1:{port + 2}"]}
    tasks = [{"type": "ps", "index": 0}, {"type": "worker", "index": 0},
             {"type": "chief", "index": 0}]
    per_launcher = [(["--rendezvous-timeout", "20"],
                     {"TF_CONFIG": json.dumps({"cluster": tf_cluster, "task": task}),
                      "SLEEP_1": "0.5"}) for task in tasks]
    results = run_launchers(scripts, per_launcher)
    assert [r[0] for r in results] == [0, 0, 0], results
    assert f"[ps 0] ps up 0 restart 0 tcp://127.0.0.1:{port + 2}" in results[0][1]
    assert "[worker 1] hello worker 1 of 2" in results[1][1]
    assert "[worker 0] hello worker 0 of 2" in results[2][1]
    assert read_float(scripts / "ps0-stopped") >= read_float(scripts / "end-worker1")


def test_a_command_that_cannot_start_fails_the_run_clearly(scripts):
    result = subprocess.run(
        [sys.executable, "-m", "distflow.launch", "--ps-command", "/nonexistent/server",
         "worker.py"], cwd=scripts, env=clean_env(scripts), capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 127
    assert "ps 0 failed with exit code 127" in result.stderr
    assert "cannot start '/nonexistent/server'" in result.stderr
    assert not (scripts / "end-worker0").exists()  # workers are not started after it


def test_unwritable_log_dir_is_reported(scripts):
    (scripts / "afile").write_text("")
    result = launch(scripts, "--log-dir", str(scripts / "afile" / "logs"))
    assert result.returncode == 2
    assert f"cannot create --log-dir '{scripts / 'afile' / 'logs'}'" in result.stderr


def test_relay_redraws_in_place_and_keeps_only_finished_lines():
    import io
    import threading

    from distflow.launch import relay

    class Chunks(io.RawIOBase):  # the bytes arrive in these reads, as from a child's pipe
        def __init__(self, chunks):
            self.chunks = list(chunks)

        def read1(self, size=-1):
            return self.chunks.pop(0) if self.chunks else b""

    screen, kept = io.StringIO(), []
    console = relay.Console(screen, threading.Lock())
    relay.relay(Chunks([b"\r 1/3 [=>]", b"\r 2/3 [==>]", b"\r 3/3 [===] done\nnext line\n",
                        b"partial"]), "[worker 0] ", console,
                lambda text, raw: kept.append(text))
    assert kept == [" 3/3 [===] done", "next line", "partial"]
    assert "\r[worker 0]  2/3 [==>]" in screen.getvalue()
    assert screen.getvalue().endswith("[worker 0] next line\n[worker 0] partial\n")
