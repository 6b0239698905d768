"""Running the local processes of a :class:`LaunchPlan` to the end of the run.

The supervisor decides what each event means: a child's exit (done, restarted,
lost, or the run fails), a signal, a message from another launcher. The
pieces it drives live beside it: ``children`` (spawning, relaying, reaping and
stopping processes), ``signals`` (forwarding SIGINT/SIGTERM), ``rendezvous``
(the channel between launchers) and ``summary`` (the exit code and the table).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time

from distflow import process_env
from distflow.launch import lock
from distflow.launch.children import Child, Children, describe_exit, shell_exit_code
from distflow.launch.config import LaunchPlan
from distflow.launch.rendezvous import TASK_ENGINES, Rendezvous
from distflow.launch.signals import SignalForwarder
from distflow.launch.summary import (
    EXIT_CHECKPOINT_DIR_IN_USE,
    EXIT_WORKERS_LOST,
    exit_code,
    summary,
)

__all__ = ["Supervisor", "Child"]

POLL_SECONDS = 0.05
RESTART_DELAY = 0.5


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
        self.children = [Child(spec) for spec in plan.local_processes]
        self.processes = Children(self.children, self.opts, stdout or sys.stdout,
                                  stderr or sys.stderr, plan.output_prefix)
        self.say = self.processes.say
        self.signals = SignalForwarder(self.processes.send_all)
        self.rendezvous = Rendezvous(plan, self.say)
        self._failure: Child | None = None
        self._failure_code: int | None = None
        self._lock_path: str | None = None  # --checkpoint-dir's lock, held while running
        self._farewells: queue.Queue = queue.Queue()  # (child, stepped) from _farewell
        self._farewells_pending = 0
        self._lost_early: list[Child] = []  # workers lost before their first step
        self._started = time.monotonic()

    # ------------------------------------------------------------ the run

    def run(self) -> int:
        """Runs the plan's local processes to the end; returns the exit code."""
        self.signals.install()
        try:
            self.processes.start_watchdog()
            if self.opts.watch_stdin:
                self.signals.watch_stdin()
            if not self._prepare():
                return self._failure_code
            for child in self.children:
                if self.signals.received is None and self._failure is None:
                    self._spawn(child)
            self._loop()
            self.rendezvous.finish(self._local_ok(), self._local_code(),
                                   self.signals.received is not None)
            self._stop_all()
        finally:
            self.signals.restore()
            self.processes.kill_leftovers()
            self.processes.close()
            self.rendezvous.close()
            if self._lock_path:
                lock.release(self._lock_path)
        self._report_summary()
        return self._exit_code()

    def _prepare(self) -> bool:
        """The log directory, the checkpoint lock and the launchers' channel."""
        if not self._prepare_log_dir() or not self._lock_checkpoints():
            return False
        if not self.rendezvous.start():
            self._failure_code = 1
            return False
        return True

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

    def _spawn(self, child: Child) -> None:
        if not self.processes.spawn(child):
            self._fail(child)

    def _loop(self) -> None:
        while self.signals.received is None and self._failure is None and \
                not self.rendezvous.stop_requested:
            now = time.monotonic()
            for child in self.children:
                if self._failure is not None:
                    break  # the rest are reaped as "stopped" by _stop_all
                if child.state == "running" and child.popen.poll() is not None:
                    self.processes.reap(child)
                    self._on_exit(child, child.popen.returncode)
                elif child.state == "restarting" and now >= child.restart_at:
                    self._spawn(child)
            code = self.rendezvous.drain()
            if code is not None:
                self._failure_code = code
            self._drain_farewells()
            if self._workers_finished() and not self._farewells_pending and \
                    self.rendezvous.may_stop(
                    self._local_ok(), self._local_code(), self._has_servers()):
                return
            time.sleep(POLL_SECONDS)

    # ------------------------------------------------- a child has exited

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
        self.processes.show_tail(child)
        self._tell_servers_left(child)

    def _tell_servers_left(self, child: Child) -> None:
        """Tells the servers at once that a worker's process is gone, so no step waits for it.

        Without this a synchronous step would wait for the heartbeat timeout. Done in
        a thread (a server may be slow to answer); a failure is only logged.
        """
        spec = child.spec
        addrs = list(process_env.read("DISTFLOW_PS_ADDRS", spec.env))
        if spec.role != "worker" or not addrs:
            return
        keys = process_env.read("DISTFLOW_KEYS", spec.env)
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
            self.rendezvous.stop_requested = True

    def _fail(self, child: Child, code: int | None = None) -> None:
        child.state = "failed"
        if self._failure is None:
            self._failure = child
            self._failure_code = shell_exit_code(child.exit_code if code is None else code)

    def _workers_finished(self) -> bool:
        return not any(c.active for c in self.children if c.spec.role in ("worker", "node"))

    def _has_servers(self) -> bool:
        return any(c.spec.role == "ps" for c in self.children)

    # ------------------------------------- what the other launchers hear

    def _local_ok(self) -> bool:
        return self._failure is None and self._failure_code is None and not self._task_lost()

    def _local_code(self) -> int:
        return self._failure_code or (EXIT_WORKERS_LOST if self._task_lost() else 0)

    def _task_lost(self) -> bool:
        """One-process-per-launcher runs (TF_CONFIG, mpirun): this task's worker was lost,
        which the other launchers must hear as a failure (they cannot see it)."""
        return self.plan.engine in TASK_ENGINES and any(c.state == "lost"
                                                        for c in self.children)

    # -------------------------------------------------------------- ending

    def _stop_all(self) -> None:
        """Says why the run fails (if it does), then stops what still runs."""
        if self._failure is not None:
            self.say(f"{self._failure.name} failed with exit code "
                     f"{describe_exit(self._failure.exit_code)}; stopping the run. "
                     f"Last lines of {self._failure.name}:")
            self.processes.show_tail(self._failure)
        self.processes.stop(signalled=self.signals.received is not None)

    def _exit_code(self) -> int:
        return exit_code(self.children, self._failure_code, self.signals.received,
                         self.opts.allow_lost_workers)

    def _report_summary(self) -> None:
        seconds = time.monotonic() - self._started
        for message in summary(self.children, self.plan.run_id, seconds, self._failure,
                               self._exit_code(), self._lost_early):
            self.say(message)


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
