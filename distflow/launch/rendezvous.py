"""A launcher's side of the channel between the launchers of one run.

Runs spread over several launchers (several nodes, Slurm, mpirun, TF_CONFIG,
ssh) have one coordinator and peers (``launch/control.py`` is the wire). This
module decides what their messages mean for this launcher: a peer reports when
its workers are done; the coordinator stops every launcher once all are done,
or at once when any reports a failure. A single-machine run has no channel and
every call here is a no-op.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable

from distflow.launch.config import LaunchPlan
from distflow.launch.control import ControlError, Coordinator, Peer

__all__ = ["Rendezvous", "TASK_ENGINES"]

TASK_ENGINES = ("tf_config", "openmpi")  # one launcher per process


class Rendezvous:
    """What this launcher tells and hears from the others.

    Args:
        plan: the launch plan (its ``control`` spec; None: no channel).
        say: prints a launcher message.

    Attributes:
        stop_requested: the coordinator or a peer ended the run.
    """

    def __init__(self, plan: LaunchPlan, say: Callable[[str], None]) -> None:
        self.plan, self.say = plan, say
        self.control: Coordinator | Peer | None = None
        self.stop_requested = False
        self._done_sent = False
        self._deadline = 0.0

    def start(self) -> bool:
        """Opens the channel; False (after saying why) when it cannot."""
        spec, opts = self.plan.control, self.plan.options
        if spec is None:
            return True
        try:
            if spec.is_coordinator:
                self.control = Coordinator(self.plan.bind, spec.port, spec.peers,
                                           self.plan.run_id, keys_dir=opts.keys)
            else:
                self.control = Peer(spec.host, spec.port, self.plan.node_rank,
                                    opts.rendezvous_timeout, self.plan.run_id,
                                    keys_dir=opts.keys)
        except ControlError as exc:
            self.say(str(exc))
            return False
        self._deadline = time.monotonic() + opts.rendezvous_timeout
        return True

    def drain(self) -> int | None:
        """Handles the messages received so far; the exit code of a failure they report."""
        code = None
        while self.control is not None:
            try:
                kind, node, payload = self.control.events.get_nowait()
            except queue.Empty:
                break
            code = self._on_event(kind, node, payload) or code
        return code

    def _on_event(self, kind: str, node: int, payload: dict) -> int | None:
        if kind == "done" and not payload.get("ok"):
            self.say(f"launcher {node}{self._task_of(node)} reports a failure (exit code "
                     f"{payload.get('exit_code')}); stopping the run")
            self.stop_requested = True
            return int(payload.get("exit_code") or 1)
        if kind == "rejected":
            self.say(f"ignored a launcher with another run id ({payload.get('run_id')!r}) "
                     "on the coordinator port; is another run using the same --port?")
        elif kind == "refused":
            self.say(payload["error"])
        elif kind == "dropped":
            self.say(f"launcher {node} disconnected before it finished; its processes are lost")
        elif kind in ("stop", "coordinator_lost", "unreachable") and not self.stop_requested:
            self.stop_requested = True
            if not (kind == "stop" and payload.get("ok", True)):
                self.say(payload.get("error") or (
                    "the coordinator stopped the run after a failure" if kind == "stop"
                    else "lost the connection to the launcher coordinator"))
                return int(payload.get("exit_code") or 1)
        return None

    def _task_of(self, node: int) -> str:
        """' (worker 1)': the process launcher `node` runs, in one-process-per-task runs."""
        if self.plan.engine not in TASK_ENGINES:
            return ""
        names = [p.name for p in self.plan.processes if p.node == node]
        return f" ({names[0]})" if len(names) == 1 else ""

    def may_stop(self, ok: bool, code: int, has_servers: bool) -> bool:
        """Whether this launcher may end now that its workers are finished.

        A peer first reports `ok`/`code`; one that runs servers waits for the
        coordinator's stop. The coordinator waits for every peer (or the deadline).
        """
        control = self.control
        if control is None:
            return True
        if isinstance(control, Peer):
            if not self._done_sent:
                self._done_sent = control.send_done(ok, code)
            return self._done_sent and not has_servers
        return control.all_done(self._deadline)

    def finish(self, ok: bool, code: int, signalled: bool) -> None:
        """At the end: the coordinator tells every peer to stop; a peer reports, once."""
        control = self.control
        if isinstance(control, Coordinator):
            missing = control.missing()
            if missing:
                self.say(f"{missing} launcher(s) never connected within "
                         f"{self.plan.options.rendezvous_timeout:g} s")
            control.broadcast_stop(ok and not signalled, code)
        elif isinstance(control, Peer) and not self._done_sent:
            ok = ok and not signalled and not self.stop_requested
            control.send_done(ok, code or (0 if ok else 1))

    def close(self) -> None:
        """Closes the channel."""
        if self.control is not None:
            self.control.close()
