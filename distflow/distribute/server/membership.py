"""Who trains against this shard: the worker table, liveness, the chief's stop decisions.

`Membership` registers a worker on its first request that passes validation
(`touch`, undone by `undo_for` when the request is refused), declares a worker
silent for `heartbeat_timeout` dead (`check_liveness`), forgives silence while
the server itself was not listening (`forgive_pause`), and keeps the chief's
per-epoch stop decisions (`decide`). What a join, a leave or a pause means for a
step in progress is the policy's business: it is told through `MembershipListener`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("distflow.ps")

_KEPT_DECISIONS = 64  # the chief's stop decisions remembered (most recent epochs)
_PAUSE_SECONDS = 1.0  # a loop iteration longer than this: the server was not listening


@dataclass
class Worker:
    """One worker as the server sees it."""

    wid: int
    last_seen: float
    last_step: int = -1
    alive: bool = True
    left: bool = False
    pending: tuple | None = None  # (identity, req, op) waiting for the sync step
    done_req: Any = None
    parts: Any = None  # the latest pipelined request (async_policy.Parts)
    last_epoch: int | None = None  # the last epoch it reported ended (`epoch_end`)
    finished: bool = False  # it said its `fit` is over (`done`); a push clears it

    @property
    def live(self) -> bool:
        """Alive and not left."""
        return self.alive and not self.left


class MembershipListener(Protocol):
    """What a policy hears of membership changes."""

    def joined(self, wid: int, expected: bool) -> None:
        """Worker `wid` registered; `expected`: one of the `num_workers` not seen yet."""

    def rejoined(self, wid: int) -> None:
        """A dead or departed worker `wid` is back."""

    def gone(self, wid: int) -> None:
        """Worker `wid` left or was declared dead."""

    def paused(self, gap: float, now: float) -> None:
        """The server did not listen for `gap` seconds, up to `now`."""

    def undo_for(self, wid: int) -> Any:
        """A function putting the policy's view of `wid` back as it is now."""


class Membership:
    """The worker table of one server.

    Args:
        num_workers: workers expected.
        heartbeat_timeout: seconds of silence after which a worker is dead.
        listener: the policy told of joins, leaves and pauses.
        started: the server's start (`time.monotonic()`).
        startup_timeout: how long after `started` expected workers that never
            registered are waited for (pods scheduled late); None: `heartbeat_timeout`.
    """

    def __init__(self, num_workers: int, heartbeat_timeout: float,
                 listener: MembershipListener, started: float,
                 startup_timeout: float | None = None):
        self.num_workers, self.heartbeat_timeout = num_workers, heartbeat_timeout
        self.listener, self.started = listener, started
        self.startup_timeout = heartbeat_timeout if startup_timeout is None else startup_timeout
        self.workers: dict[int, Worker] = {}
        self.decisions: dict[int, bool] = {}  # epoch -> the chief decided to stop after it
        self.gave_up = False  # stopped waiting for workers that never registered
        self.joined: tuple | None = None  # logged once the request that (re)joined passes
        self._last_tick = time.monotonic()  # the loop's last housekeeping (`forgive_pause`)

    # ------------------------------------------------------------ the table

    def live_ids(self) -> set[int]:
        """Workers alive and not left."""
        return {w.wid for w in self.workers.values() if w.alive and not w.left}

    def never_registered(self) -> set[int]:
        """Expected workers not seen yet (none once the server stopped waiting for them)."""
        if self.gave_up:
            return set()
        return set(range(self.num_workers)) - set(self.workers)

    def chief_finished(self) -> bool:
        """The chief said its `fit` is over (`epoch_end` with `done`) and has not pushed since."""
        chief = self.workers.get(0)
        return chief is not None and chief.finished

    def chief_gone(self) -> bool:
        """The chief left or was declared dead."""
        chief = self.workers.get(0)
        return chief is not None and (chief.left or not chief.alive)

    def chief_alive(self) -> bool:
        """The chief is registered, alive and has not left."""
        chief = self.workers.get(0)
        return chief is not None and chief.live

    def waiting(self) -> list[Worker]:
        """Workers whose push waits for the step to complete (sync)."""
        return [w for w in self.workers.values() if w.pending is not None]

    def touch(self, wid: Any, version: int) -> Worker | None:
        """The sender of a request, registered or revived; None for anonymous senders."""
        if wid is None or wid < 0:
            return None
        now = time.monotonic()
        worker = self.workers.get(wid)
        if worker is None:
            self.listener.joined(wid, wid in self.never_registered())
            worker = self.workers[wid] = Worker(wid, now)
            self.joined = ("Worker %d registered (version %d)", wid, version)
        elif not worker.alive or worker.left:
            self.joined = ("Worker %d rejoined (version %d); it joins at the next step",
                           wid, version)
            worker.alive, worker.left = True, False
            self.listener.rejoined(wid)
        worker.last_seen = now
        return worker

    def undo_for(self, wid: Any) -> Any:
        """A function putting worker `wid`'s membership back as it is now."""
        if not isinstance(wid, int) or wid < 0:
            return _nothing
        worker, policy_undo = self.workers.get(wid), self.listener.undo_for(wid)
        saved = None if worker is None else (worker.alive, worker.left, worker.last_seen)

        def undo() -> None:
            self.joined = None
            if worker is None:
                self.workers.pop(wid, None)
            else:
                worker.alive, worker.left, worker.last_seen = saved
            policy_undo()
        return undo

    def log_joined(self) -> None:
        """Logs the registration the request just handled made, if any."""
        if self.joined is not None:
            log.info(*self.joined)
            self.joined = None

    def leave(self, worker: Worker) -> None:
        """Worker said `bye`."""
        worker.left = True
        self.listener.gone(worker.wid)
        log.info("Worker %d left (last step %d)", worker.wid, worker.last_step)

    # ------------------------------------------------------------ liveness

    def forgive_pause(self, now: float) -> None:
        """Silence while this server was not listening does not count against workers.

        The loop comes here every `poll_ms` or after at most 256 requests; a
        longer gap means the process was stopped (SIGSTOP, a VM stall) or busy.
        Waking up, its sockets may not have taken in the heartbeats sent
        meanwhile yet, so the gap is added to every worker's last sign of life
        (and to the sync step's wait for unregistered workers).
        """
        gap = now - self._last_tick
        self._last_tick = now
        if gap < _PAUSE_SECONDS:
            return
        for w in self.workers.values():
            w.last_seen = min(now, w.last_seen + gap)
        self.listener.paused(gap, now)
        log.info("This server did not listen for %.1f s (paused or busy); that time does "
                 "not count against the workers' heartbeats", gap)

    def check_liveness(self, now: float) -> None:
        """Declares dead the workers silent for longer than the heartbeat timeout
        (one whose `fit` ended cleanly has left instead)."""
        timeout = self.heartbeat_timeout
        for w in self.workers.values():
            if w.alive and not w.left and w.pending is None and now - w.last_seen > timeout:
                self.listener.gone(w.wid)
                if w.finished:  # its fit ended cleanly and the process went away
                    w.left = True
                    log.info("Worker %d finished its fit and left (silent for %.1f s)",
                             w.wid, now - w.last_seen)
                    continue
                w.alive = False
                log.warning("Worker %d declared dead: silent for %.1f s (heartbeat timeout "
                            "%.1f s), last step %d", w.wid, now - w.last_seen, timeout,
                            w.last_step)

    # ------------------------------------------------------------ epochs

    def decide(self, epoch: Any, stop: bool) -> None:
        """Records the chief's decision to stop (or not) after `epoch`."""
        self.decisions[epoch] = stop
        for old in sorted(self.decisions)[:-_KEPT_DECISIONS]:
            del self.decisions[old]  # bounded: only recent epochs are ever asked for

    def epoch_ended(self, worker: Worker | None, epoch: Any, done: bool) -> None:
        """Worker reports it finished `epoch` (`done`: and its whole `fit`)."""
        if worker is not None:
            worker.last_epoch = epoch
            worker.finished = done

    def stop_epoch(self) -> int | None:
        """The first epoch after which the chief decided to stop, or None."""
        return min((e for e, s in self.decisions.items() if s), default=None)

    def behind(self, epoch: Any) -> list[int]:
        """Live workers still training before the end of `epoch` (async end of `fit`),
        and expected ones that have not registered yet (for the startup timeout after
        the server started: a late worker trains its epochs too)."""
        if not isinstance(epoch, int):
            return []
        behind = {w.wid for w in self.workers.values()
                  if w.alive and not w.left and not w.finished
                  and (w.last_epoch is None or w.last_epoch < epoch)}
        if time.monotonic() - self.started < self.startup_timeout:
            behind |= set(range(self.num_workers)) - set(self.workers)
        return sorted(behind)


def _nothing() -> None:
    pass
