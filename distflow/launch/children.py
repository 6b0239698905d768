"""The child processes of one launcher: starting, relaying, reaping and stopping them.

All spawning happens on the main thread: ``PR_SET_PDEATHSIG`` fires when the
*thread* that forked the child exits, so a child spawned from a helper
thread would be killed when that thread ends. What a child's exit *means*
(restart, lost, failed) is the supervisor's decision, not this module's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from distflow import process_env
from distflow.launch import relay, watchdog
from distflow.launch.config import Options, ProcessSpec
from distflow.launch.watchdog import group_alive

__all__ = ["Child", "Children", "describe_exit", "shell_exit_code", "make_child_setup"]

PR_SET_PDEATHSIG = 1
TAIL_LINES = 20
POLL_SECONDS = 0.05
CHECKPOINT_LINE = "Checkpoint written: "  # what a server logs after each checkpoint
CHECKPOINT_FAILED = "Checkpoint of version"  # a server's "... N failed (...)" line


def _load_prctl():
    """libc's ``prctl`` (Linux), looked up before any fork; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


def make_child_setup(parent_pid: int):
    """A ``preexec_fn``: own process group, SIGTERM when the launcher dies."""
    prctl = _load_prctl()

    def setup() -> None:
        os.setpgid(0, 0)  # signals reach the child's own children too
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return setup


@dataclass
class Child:
    """One supervised process across its restarts."""

    spec: ProcessSpec
    popen: subprocess.Popen | None = None
    state: str = "pending"  # pending running restarting done lost failed stopped
    restarts: int = 0
    exit_code: int | None = None
    first_start: float = 0.0
    last_end: float = 0.0
    restart_at: float = 0.0
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    threads: list = field(default_factory=list)
    log: object = None
    last_checkpoint: str | None = None  # what a server last said it wrote
    checkpoint_failure: str | None = None  # its last "checkpoint failed" line

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def active(self) -> bool:
        return self.state in ("pending", "running", "restarting")

    def wall_time(self) -> float:
        end = self.last_end if not self.active else time.monotonic()
        return max(end - self.first_start, 0.0) if self.first_start else 0.0


def describe_exit(code: int | None) -> str:
    """``0``, ``1``, ``SIGKILL`` ..."""
    if code is None:
        return "-"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return str(code)


def shell_exit_code(code: int) -> int:
    """A child's return code as a shell would report it (128+N for signal N)."""
    return 128 - code if code < 0 else code


class Children:
    """Starts, relays, reaps and stops the processes of one launcher.

    Args:
        children: the processes, servers first.
        opts: the launcher's options (``log_dir``, ``grace_period``).
        out: where children's prefixed stdout lines go.
        err: where children's prefixed stderr and the launcher's messages go.
        prefix: put before every line (``[node K] `` for a multi-node Slurm launcher).
    """

    def __init__(self, children: list[Child], opts: Options, out, err,
                 prefix: str = "") -> None:
        self.children = children
        self.prefix = prefix
        self.opts = opts
        self.out = out
        self.print_lock = threading.Lock()
        self.consoles = (relay.Console(out, self.print_lock),
                         relay.Console(err, self.print_lock))
        self._watchdog: subprocess.Popen | None = None
        self._setup = make_child_setup(os.getpid())

    # ----------------------------------------------------------- messages

    def say(self, text: str) -> None:
        """Prints a launcher message on stderr."""
        with self.print_lock:
            for line in text.splitlines() or [""]:
                self.consoles[1].line(self, f"{self.prefix}[launch] {line}")

    def show_tail(self, child: Child) -> None:
        """Prints a child's last lines."""
        with self.print_lock:
            lines = list(child.tail)[-10:] or ["(no output)"]
        self.say("\n".join("    " + line for line in lines))

    def _relay(self, child: Child, stream, console: relay.Console) -> None:
        def keep(text: str, raw: bytes) -> None:  # called with the print lock held
            child.tail.append(text)
            if CHECKPOINT_LINE in text:
                child.last_checkpoint = text.split(CHECKPOINT_LINE, 1)[1].strip()
            elif CHECKPOINT_FAILED in text and " failed (" in text:
                child.checkpoint_failure = text
            if child.log is not None:
                child.log.write(raw)
                child.log.flush()

        relay.relay(stream, f"{self.prefix}[{child.name}] ", console, keep)

    # ------------------------------------------------------------ spawning

    def _open_log(self, child: Child) -> None:
        if not self.opts.log_dir:
            return
        if child.log is None:
            os.makedirs(self.opts.log_dir, exist_ok=True)
            path = os.path.join(self.opts.log_dir, child.name.replace(" ", "-") + ".log")
            child.log = open(path, "ab")  # closed in close()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        header = f"--- {child.name} start {child.restarts} at {stamp} ---\n"
        child.log.write(header.encode())
        child.log.flush()

    def _environment(self, child: Child) -> dict[str, str]:
        env = dict(os.environ)
        env.update(child.spec.env)
        if child.spec.env:
            env.update(process_env.encode({"DISTFLOW_RESTART": child.restarts}))
        if _is_terminal(self.out):  # the launcher redraws a child's live progress bar
            env.update(process_env.encode({"DISTFLOW_TTY": True}))
        return env

    def spawn(self, child: Child) -> bool:
        """Starts `child`; False (state "failed", exit code 127) when it cannot start."""
        env = self._environment(child)
        self._open_log(child)
        ssh = child.spec.role == "node" and child.spec.argv[0] != sys.executable
        try:
            child.popen = subprocess.Popen(
                child.spec.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.PIPE if ssh else subprocess.DEVNULL,
                preexec_fn=self._setup, close_fds=True,
            )
        except OSError as exc:  # e.g. a --ps-command that does not exist
            child.tail.append(f"cannot start {child.spec.argv[0]!r}: {exc}")
            child.exit_code, child.state = 127, "failed"
            return False
        self.tell_watchdog(f"+{child.popen.pid}")
        child.state = "running"
        child.first_start = child.first_start or time.monotonic()
        child.threads = [
            threading.Thread(target=self._relay, args=(child, pipe, console), daemon=True)
            for pipe, console in zip((child.popen.stdout, child.popen.stderr), self.consoles)
        ]
        for thread in child.threads:
            thread.start()
        return True

    def start_watchdog(self) -> None:
        """Starts the process that stops the children if this launcher dies."""
        self._watchdog = subprocess.Popen(
            # run by path: stdlib only, no need to import the distflow package
            [sys.executable, watchdog.__file__, f"{self.opts.grace_period:g}"],
            stdin=subprocess.PIPE, start_new_session=True, text=True,
        )

    def tell_watchdog(self, line: str) -> None:
        """Sends one line (``+PID``, ``-PID``, ``exit``) to the watchdog."""
        if self._watchdog is None or self._watchdog.stdin is None:
            return
        try:
            self._watchdog.stdin.write(line + "\n")
            self._watchdog.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the watchdog is a fallback; PDEATHSIG still protects children

    # ------------------------------------------------------------ reaping

    def send_all(self, signum: int) -> None:
        """Sends `signum` to the process group of every running child."""
        for child in self.children:
            if child.state == "running":
                try:
                    os.killpg(child.popen.pid, signum)
                except OSError:
                    pass

    def reap(self, child: Child) -> None:
        """Records an exited child's end and exit code and joins its relay threads."""
        child.last_end = time.monotonic()
        child.exit_code = child.popen.returncode
        for thread in child.threads:
            thread.join(timeout=2.0)  # the pipe closes with the process group
        self.tell_watchdog(f"-{child.popen.pid}")

    def running(self) -> list[Child]:
        """The children whose process still runs."""
        return [c for c in self.children if c.state == "running" and c.popen.poll() is None]

    def _reap_finished(self) -> None:
        for child in self.children:
            if child.state == "running" and child.popen.poll() is not None:
                self.reap(child)
                child.state = "done" if child.exit_code == 0 else "stopped"
            reaped = child.popen is not None and child.state != "running"
            if reaped and group_alive(child.popen.pid):
                try:
                    os.killpg(child.popen.pid, signal.SIGKILL)  # leftover grandchildren
                except OSError:
                    pass

    def stop(self, signalled: bool) -> None:
        """Stops what still runs: SIGTERM (unless a forwarded signal is already on its
        way), the grace period, SIGKILL; children never started become "stopped"."""
        if not signalled:
            self.send_all(signal.SIGTERM)
        grace = self.opts.grace_period
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.running():
            self._reap_finished()
            time.sleep(POLL_SECONDS)
        for child in self.running():
            self.say(f"{child.name} did not stop within {grace:g} s; sending SIGKILL")
            os.killpg(child.popen.pid, signal.SIGKILL)
        for child in self.running():
            child.popen.wait(timeout=10)
        self._reap_finished()
        for child in self.children:
            if child.state in ("pending", "restarting"):
                child.state = "stopped"

    def kill_leftovers(self) -> None:
        """Last resort if the launcher itself broke: nothing may outlive it."""
        for child in self.running():
            try:
                os.killpg(child.popen.pid, signal.SIGKILL)
            except OSError:
                pass

    def close(self) -> None:
        """Ends the watchdog and closes the log files."""
        self.tell_watchdog("exit")
        if self._watchdog is not None:
            try:
                self._watchdog.stdin.close()
                self._watchdog.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._watchdog.kill()
        for child in self.children:
            if child.log is not None:
                child.log.close()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
