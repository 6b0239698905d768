"""Starting and supervising the processes of a :class:`LaunchPlan`.

All spawning happens on the main thread: ``PR_SET_PDEATHSIG`` fires when the
*thread* that forked the child exits, so a child spawned from a helper
thread would be killed when that thread ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from distflow.launch import lock, relay, watchdog
from distflow.launch.config import LaunchPlan, ProcessSpec
from distflow.launch.control import ControlError, Coordinator, Peer
from distflow.launch.watchdog import group_alive

__all__ = ["Supervisor", "Child"]

PR_SET_PDEATHSIG = 1
TAIL_LINES = 20
POLL_SECONDS = 0.05
RESTART_DELAY = 0.5
EXIT_WORKERS_LOST = 3  # the run completed, but workers were lost (see --allow-lost-workers)
EXIT_CHECKPOINT_DIR_IN_USE = 4  # another run holds --checkpoint-dir (launch/lock.py)
TASK_ENGINES = ("tf_config", "openmpi")  # one launcher per process
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


class Supervisor:
    """Runs the local processes of a plan until the run ends.

    Args:
        plan: the launch plan; only ``plan.local_processes`` are started here.
        stdout: where children's prefixed stdout lines go.
        stderr: where children's prefixed stderr and the launcher's messages go.
    """

    def __init__(self, plan: LaunchPlan, stdout=None, stderr=None) -> None:
        self.plan = plan
        self.opts = plan.options
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.children = [Child(spec) for spec in plan.local_processes]
        self._print_lock = threading.Lock()
        self._consoles = (relay.Console(self.out, self._print_lock),
                          relay.Console(self.err, self._print_lock))
        self._signal: int | None = None
        self._failure: Child | None = None
        self._failure_code: int | None = None
        self._lock_path: str | None = None  # --checkpoint-dir's lock, held while running
        self._stopping = False
        self._watchdog: subprocess.Popen | None = None
        self._control = None
        self._done_sent = False
        self._stop_requested = False
        self._farewells: queue.Queue = queue.Queue()  # (child, stepped) from _farewell
        self._farewells_pending = 0
        self._lost_early: list[Child] = []  # workers lost before their first step
        self._started = time.monotonic()
        self._setup = make_child_setup(os.getpid())

    # ----------------------------------------------------------- messages

    def say(self, text: str) -> None:
        """Prints a launcher message on stderr."""
        with self._print_lock:
            for line in text.splitlines() or [""]:
                self._consoles[1].line(self, f"[launch] {line}")

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

        relay.relay(stream, f"[{child.name}] ", console, keep)

    # ------------------------------------------------------------ spawning

    def _open_log(self, child: Child) -> None:
        if not self.opts.log_dir:
            return
        if child.log is None:
            os.makedirs(self.opts.log_dir, exist_ok=True)
            path = os.path.join(self.opts.log_dir, child.name.replace(" ", "-") + ".log")
            child.log = open(path, "ab")  # closed in _close
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        header = f"--- {child.name} start {child.restarts} at {stamp} ---\n"
        child.log.write(header.encode())
        child.log.flush()

    def _spawn(self, child: Child) -> None:
        env = dict(os.environ)
        env.update(child.spec.env)
        if child.spec.env:
            env["DISTFLOW_RESTART"] = str(child.restarts)
        if _is_terminal(self.out):
            env["DISTFLOW_TTY"] = "1"  # the launcher redraws a child's live progress bar
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
            return self._fail(child)
        self._tell_watchdog(f"+{child.popen.pid}")
        child.state = "running"
        child.first_start = child.first_start or time.monotonic()
        child.threads = [
            threading.Thread(target=self._relay, args=(child, pipe, console), daemon=True)
            for pipe, console in zip((child.popen.stdout, child.popen.stderr), self._consoles)
        ]
        for thread in child.threads:
            thread.start()

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            # run by path: stdlib only, no need to import the distflow package
            [sys.executable, watchdog.__file__, f"{self.opts.grace_period:g}"],
            stdin=subprocess.PIPE, start_new_session=True, text=True,
        )

    def _tell_watchdog(self, line: str) -> None:
        if self._watchdog is None or self._watchdog.stdin is None:
            return
        try:
            self._watchdog.stdin.write(line + "\n")
            self._watchdog.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the watchdog is a fallback; PDEATHSIG still protects children

    # ------------------------------------------------------------- signals

    def _on_signal(self, signum: int, _frame) -> None:
        if self._signal is None:
            self._signal = signum
        self._send_all(signum)

    def _send_all(self, signum: int) -> None:
        for child in self.children:
            if child.state == "running":
                try:
                    os.killpg(child.popen.pid, signum)
                except OSError:
                    pass

    def _watch_stdin(self) -> None:
        """``--watch-stdin``: our ssh client is gone when stdin closes."""
        try:
            while os.read(0, 4096):  # raw fd: a buffered reader's lock breaks shutdown
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    # ------------------------------------------------------------ the run

    def run(self) -> int:
        """Runs the plan's local processes to the end; returns the exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start_watchdog()
            if self.opts.watch_stdin:
                threading.Thread(target=self._watch_stdin, daemon=True).start()
            if not self._prepare_log_dir() or not self._lock_checkpoints() or \
                    not self._start_control():
                return self._failure_code
            for child in self.children:
                if self._signal is None and self._failure is None:
                    self._spawn(child)
            self._loop()
            self._finish_control()
            self._stop_all()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._kill_leftovers()
            self._close()
            if self._lock_path:
                lock.release(self._lock_path)
        self._report_summary()
        return self._exit_code()

    def _lock_checkpoints(self) -> bool:
        """Holds --checkpoint-dir for this run when this launcher starts server 0 (servers
        spread over several nodes share the directory)."""
        directory = self.opts.checkpoint_dir
        if not directory or not any(c.spec.role == "ps" and c.spec.rank == 0
                                    for c in self.children):
            return True
        try:
            self._lock_path, note = lock.acquire(str(directory), self.plan.run_id)
        except (lock.LockError, OSError) as exc:
            self.say(str(exc))
            self._failure_code = EXIT_CHECKPOINT_DIR_IN_USE
            return False
        if note:
            self.say(note)
        return True

    def _prepare_log_dir(self) -> bool:
        if not self.opts.log_dir:
            return True
        try:
            os.makedirs(self.opts.log_dir, exist_ok=True)
            return True
        except OSError as exc:
            self.say(f"cannot create --log-dir {self.opts.log_dir!r}: {exc.strerror}")
            self._failure_code = 2
            return False

    def _kill_leftovers(self) -> None:
        """Last resort if the launcher itself broke: nothing may outlive it."""
        for child in self._running():
            try:
                os.killpg(child.popen.pid, signal.SIGKILL)
            except OSError:
                pass

    def _loop(self) -> None:
        while self._signal is None and self._failure is None and not self._stop_requested:
            now = time.monotonic()
            for child in self.children:
                if self._failure is not None:
                    break  # the rest are reaped as "stopped" by _stop_all
                if child.state == "running" and child.popen.poll() is not None:
                    self._reap(child)
                    self._on_exit(child, child.popen.returncode)
                elif child.state == "restarting" and now >= child.restart_at:
                    self._spawn(child)
            self._drain_control()
            self._drain_farewells()
            if self._workers_finished() and not self._farewells_pending and \
                    self._may_stop_servers():
                return
            time.sleep(POLL_SECONDS)

    def _reap(self, child: Child) -> None:
        child.last_end = time.monotonic()
        child.exit_code = child.popen.returncode
        for thread in child.threads:
            thread.join(timeout=2.0)  # the pipe closes with the process group
        self._tell_watchdog(f"-{child.popen.pid}")

    def _on_exit(self, child: Child, code: int) -> None:
        spec = child.spec
        if code == 0:
            child.state = "done"
            if not self._workers_finished():  # e.g. the chief is done while a straggler runs
                self._tell_servers_left(child)
            return
        chief = spec.role == "worker" and spec.rank == 0
        if self.opts.fail_fast or chief or spec.role == "node":
            return self._fail(child)
        if child.restarts < self.opts.max_restarts:
            child.restarts += 1
            child.state = "restarting"
            child.restart_at = time.monotonic() + RESTART_DELAY
            self.say(f"{child.name} exited with {describe_exit(code)}; restarting it "
                     f"({child.restarts}/{self.opts.max_restarts})")
            return
        if spec.role == "ps":
            return self._fail(child)
        child.state = "lost"
        self.say(f"{child.name} exited with {describe_exit(code)} after {child.restarts} "
                 "restart(s); the run goes on without it. Its last lines:")
        self._show_tail(child)
        self._tell_servers_left(child)

    def _tell_servers_left(self, child: Child) -> None:
        """Tells the servers at once that a worker's process is gone, so no step waits for it.

        Without this a synchronous step would wait for the heartbeat timeout. Done in
        a thread (a server may be slow to answer); a failure is only logged.
        """
        spec = child.spec
        addrs = [a for a in spec.env.get("DISTFLOW_PS_ADDRS", "").split(",") if a]
        if spec.role != "worker" or not addrs:
            return
        keys = spec.env.get("DISTFLOW_KEYS") or None
        self._farewells_pending += 1
        threading.Thread(target=self._farewell, args=(child, addrs, keys),
                         name=f"bye-{child.name}", daemon=True).start()

    def _farewell(self, child: Child, addrs: list[str], keys: str | None) -> None:
        """(A thread.) Says `bye` for `child`; its answer goes to `_drain_farewells`."""
        self._farewells.put((child, _say_bye(addrs, child.spec.rank, keys)))

    def _drain_farewells(self) -> None:
        """A worker lost before its first step fails the run: it never trained with all
        its workers (e.g. they gave up waiting for a late pod, see --rendezvous-timeout)."""
        while not self._farewells.empty():
            child, stepped = self._farewells.get_nowait()
            self._farewells_pending -= 1
            if child.state != "lost" or stepped is not False:
                continue
            self._lost_early.append(child)
            self.say(f"{child.name} was lost before its first step (the servers never got a "
                     "gradient from it); the run fails")
            if self._failure_code is None:
                self._failure_code = shell_exit_code(child.exit_code or 1)
            self._stop_requested = True

    def _fail(self, child: Child, code: int | None = None) -> None:
        child.state = "failed"
        if self._failure is None:
            self._failure = child
            self._failure_code = shell_exit_code(child.exit_code if code is None else code)

    def _show_tail(self, child: Child) -> None:
        with self._print_lock:
            lines = list(child.tail)[-10:] or ["(no output)"]
        self.say("\n".join("    " + line for line in lines))

    def _workers_finished(self) -> bool:
        return not any(c.active for c in self.children if c.spec.role in ("worker", "node"))

    # ----------------------------------------------------- control channel

    def _start_control(self) -> bool:
        spec = self.plan.control
        if spec is None:
            return True
        try:
            if spec.is_coordinator:
                self._control = Coordinator(self.plan.bind, spec.port, spec.peers,
                                            self.plan.run_id, keys_dir=self.opts.keys)
            else:
                self._control = Peer(spec.host, spec.port, self.plan.node_rank,
                                     self.opts.rendezvous_timeout, self.plan.run_id,
                                     keys_dir=self.opts.keys)
        except ControlError as exc:
            self.say(str(exc))
            self._failure_code = 1
            return False
        self._rendezvous_deadline = time.monotonic() + self.opts.rendezvous_timeout
        return True

    def _drain_control(self) -> None:
        if self._control is None:
            return
        while True:
            try:
                kind, node, payload = self._control.events.get_nowait()
            except queue.Empty:
                return
            self._on_control(kind, node, payload)

    def _on_control(self, kind: str, node: int, payload: dict) -> None:
        if kind == "done" and not payload.get("ok"):
            self.say(f"launcher {node}{self._task_of(node)} reports a failure (exit code "
                     f"{payload.get('exit_code')}); stopping the run")
            self._failure_code = int(payload.get("exit_code") or 1)
            self._stop_requested = True
        elif kind == "rejected":
            self.say(f"ignored a launcher with another run id ({payload.get('run_id')!r}) "
                     "on the coordinator port; is another run using the same --port?")
        elif kind == "refused":
            self.say(payload["error"])
        elif kind == "dropped":
            self.say(f"launcher {node} disconnected before it finished; its processes are lost")
        elif kind in ("stop", "coordinator_lost", "unreachable") and not self._stop_requested:
            ok = kind == "stop" and payload.get("ok", True)
            if not ok:
                reason = payload.get("error") or (
                    "the coordinator stopped the run after a failure" if kind == "stop"
                    else "lost the connection to the launcher coordinator")
                self.say(reason)
                self._failure_code = int(payload.get("exit_code") or 1)
            self._stop_requested = True

    def _task_of(self, node: int) -> str:
        """' (worker 1)': the process launcher `node` runs, in one-process-per-task runs."""
        if self.plan.engine not in TASK_ENGINES:
            return ""
        names = [p.name for p in self.plan.processes if p.node == node]
        return f" ({names[0]})" if len(names) == 1 else ""

    def _may_stop_servers(self) -> bool:
        """Whether this launcher may end now that its workers are finished."""
        control = self._control
        if control is None:
            return True
        if isinstance(control, Peer):
            if not self._done_sent:
                self._done_sent = control.send_done(self._local_ok(), self._local_code())
            has_servers = any(c.spec.role == "ps" for c in self.children)
            return self._done_sent and not has_servers
        return control.all_done(self._rendezvous_deadline)

    def _local_ok(self) -> bool:
        return self._failure is None and self._failure_code is None and not self._task_lost()

    def _local_code(self) -> int:
        return self._failure_code or (EXIT_WORKERS_LOST if self._task_lost() else 0)

    def _task_lost(self) -> bool:
        """One-process-per-launcher runs (TF_CONFIG, mpirun): this task's worker was lost,
        which the other launchers must hear as a failure (they cannot see it)."""
        return self.plan.engine in TASK_ENGINES and any(c.state == "lost"
                                                        for c in self.children)

    def _finish_control(self) -> None:
        control = self._control
        if isinstance(control, Coordinator):
            missing = control.missing()
            if missing:
                self.say(f"{missing} launcher(s) never connected within "
                         f"{self.opts.rendezvous_timeout:g} s")
            control.broadcast_stop(self._local_ok() and self._signal is None, self._local_code())
        elif isinstance(control, Peer) and not self._done_sent:
            ok = self._local_ok() and self._signal is None and not self._stop_requested
            control.send_done(ok, self._local_code() or (0 if ok else 1))

    # -------------------------------------------------------------- ending

    def _stop_all(self) -> None:
        """Stops what still runs: SIGTERM, grace period, SIGKILL."""
        self._stopping = True
        if self._failure is not None:
            self.say(f"{self._failure.name} failed with exit code "
                     f"{describe_exit(self._failure.exit_code)}; stopping the run. "
                     f"Last lines of {self._failure.name}:")
            self._show_tail(self._failure)
        if self._signal is None:
            self._send_all(signal.SIGTERM)
        deadline = time.monotonic() + self.opts.grace_period
        while time.monotonic() < deadline and self._running():
            self._reap_finished()
            time.sleep(POLL_SECONDS)
        for child in self._running():
            self.say(f"{child.name} did not stop within {self.opts.grace_period:g} s; "
                     "sending SIGKILL")
            os.killpg(child.popen.pid, signal.SIGKILL)
        for child in self._running():
            child.popen.wait(timeout=10)
        self._reap_finished()
        for child in self.children:
            if child.state in ("pending", "restarting"):
                child.state = "stopped"

    def _running(self) -> list[Child]:
        return [c for c in self.children if c.state == "running" and c.popen.poll() is None]

    def _reap_finished(self) -> None:
        for child in self.children:
            if child.state == "running" and child.popen.poll() is not None:
                self._reap(child)
                child.state = "done" if child.exit_code == 0 else "stopped"
            reaped = child.popen is not None and child.state != "running"
            if reaped and group_alive(child.popen.pid):
                try:
                    os.killpg(child.popen.pid, signal.SIGKILL)  # leftover grandchildren
                except OSError:
                    pass

    def _close(self) -> None:
        self._tell_watchdog("exit")
        if self._watchdog is not None:
            try:
                self._watchdog.stdin.close()
                self._watchdog.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._watchdog.kill()
        if self._control is not None:
            self._control.close()
        for child in self.children:
            if child.log is not None:
                child.log.close()

    def _exit_code(self) -> int:
        if self._failure_code is not None:
            return self._failure_code
        if self._signal is not None:
            return 128 + self._signal
        if not self.opts.allow_lost_workers and any(c.state == "lost" for c in self.children):
            return EXIT_WORKERS_LOST
        return 0

    def _report_summary(self) -> None:
        rows = [("process", "host", "state", "exit", "restarts", "wall")]
        for child in self.children:
            rows.append((child.name, child.spec.host, child.state,
                         describe_exit(child.exit_code), str(child.restarts),
                         f"{child.wall_time():.1f}s"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                 for row in rows]
        total = time.monotonic() - self._started
        verdict = "failed" if self._exit_code() not in (0, EXIT_WORKERS_LOST) else "completed"
        if self._failure is not None:
            verdict += (f" ({self._failure.name} exited with "
                        f"{describe_exit(self._failure.exit_code)})")
        elif self._lost_early:
            verdict += " (" + ", ".join(f"{c.name} lost before its first step"
                                        for c in self._lost_early) + ")"
        lost = [c for c in self.children if c.state == "lost"]
        note = (f", {len(lost)} worker(s) lost: " + ", ".join(
            f"{c.name} ({describe_exit(c.exit_code)})" for c in lost)) if lost else ""
        if self._exit_code() == EXIT_WORKERS_LOST:
            note += " (pass --allow-lost-workers to accept losses with exit code 0)"
        self.say(f"run {self.plan.run_id} {verdict} in {total:.1f} s{note} "
                 f"(exit code {self._exit_code()})\n" + "\n".join("  " + l for l in lines))
        for child in self.children:
            if child.spec.role != "ps":
                continue
            if child.last_checkpoint:
                self.say(f"{child.name}'s last checkpoint: {child.last_checkpoint}")
            if child.checkpoint_failure:
                self.say(f"{child.name}: checkpoints are failing; its last report: "
                         f"{child.checkpoint_failure.split('ERROR', 1)[-1].strip()}")


def _say_bye(addrs: list[str], rank: int, keys_dir: str | None) -> bool | None:
    """Sends `bye` to every server on behalf of worker `rank` (its process is gone).

    Returns:
        Whether any server got a step from that worker (None: the servers did not answer).
    """
    from distflow.distribute.client import PSClient

    try:
        client = PSClient(addrs, worker_id=rank, timeout=3.0, retries=0, keys_dir=keys_dir)
        try:
            stats = client.stats()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - a courtesy: heartbeats catch it anyway
        print(f"[launch] could not tell the servers that worker {rank} left ({exc}); they "
              f"will drop it after the heartbeat timeout", file=sys.stderr, flush=True)
        return None
    return any(shard.get("workers", {}).get(str(rank), {}).get("last_step", -1) >= 0
               for shard in stats)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
