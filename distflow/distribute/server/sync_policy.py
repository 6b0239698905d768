"""Sync semantics (MirroredStrategy): one averaged step per round of pushes.

The gradients of one step are summed into a preallocated buffer as they arrive
(`Round`); when every live worker has pushed, the sum is averaged, applied once,
the version bumps and every waiting push_pull gets the same new parameters. A
worker silent for `heartbeat_timeout` is declared dead and the step completes
with the live ones; a worker that registers during a step joins at the next
one; expected workers that never register are waited for one heartbeat timeout.
Once the chief's `fit` is over and it has left, no further step is trained.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from distflow.distribute import protocol
from distflow.distribute.protocol import Message
from distflow.distribute.server import requests
from distflow.distribute.server.errors import Reject
from distflow.distribute.server.membership import Worker
from distflow.distribute.server.policy import Policy

log = logging.getLogger("distflow.ps")

_RUN_FINISHED = ("The chief's fit is over and it has left: this run trains no further step. "
                 "The worker stops here.")


class SyncPolicy(Policy):
    """Applies one averaged step when every live worker has pushed (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.round = Round()
        self.round.reset_buffers(self.shard.params)

    # ------------------------------------------------------------ a push

    def is_duplicate(self, identity: bytes, msg: Message, worker: Worker,
                     with_params: bool, part: tuple[int, int] | None) -> bool:
        """A second push while its step is open, or a retried request: never counted twice."""
        if worker.pending is None:
            return super().is_duplicate(identity, msg, worker, with_params, part)
        _, old_req, _ = worker.pending
        worker.pending = (identity, msg.req, "push_pull" if with_params else "push")
        if old_req != msg.req:
            # A restarted worker re-sent its step: its first gradient already counts.
            log.info("Worker %d sent a second gradient for step %d; the first one counts",
                     worker.wid, self.shard.version)
        self.stats.duplicates += 1
        return True

    def admit(self, msg: Message) -> None:
        """Refuses pushes once the chief is finished and gone; holds the position for the step."""
        members = self.members
        if msg.sender != 0 and members.chief_finished() and members.chief_gone():
            raise Reject("run_finished", _RUN_FINISHED)
        # Recorded when the step is applied: a checkpoint never runs ahead of it.
        self.round.position = requests.position(msg) or self.round.position

    def accept(self, identity: bytes, msg: Message, worker: Worker | None, usable: bool,
               with_params: bool, part: tuple[int, int] | None,
               learning_rate: float | None) -> None:
        """Adds the gradient to the round; the reply waits for the step."""
        rnd = self.round
        if learning_rate is not None:
            rnd.offer_learning_rate(msg.sender, learning_rate)
        step = msg.header.get("step")
        if worker is not None and isinstance(step, int) and step < self.shard.seeded_version:
            # Computed before this (restarted) server was re-seeded with the chief's
            # parameters, which already hold that step: answer with them, apply nothing.
            worker.done_req = msg.req
            self.replies.reply(identity, msg, with_params=with_params,
                               staleness=self.shard.version - step, dropped=True, skipped=False)
            return
        if not rnd.started:
            rnd.start(self.members.live_ids(), time.monotonic())
        if usable:
            rnd.add(msg)
        key = worker.wid if worker is not None else -len(rnd.anonymous) - 1
        rnd.arrived.add(key)
        pending = (identity, msg.req, "push_pull" if with_params else "push")
        if worker is not None:
            worker.pending = pending
        else:
            rnd.anonymous.append(pending)
        self.tick(time.monotonic())

    # ------------------------------------------------------------ the step barrier

    def tick(self, now: float) -> None:
        """Completes the step once every live worker (and every expected one, or a
        heartbeat timeout after the step started) has pushed."""
        rnd, members = self.round, self.members
        if not rnd.started:
            return
        if members.chief_finished() and 0 not in rnd.arrived:
            # The chief's fit is over: a step without it waits for its next fit, and ends
            # (run_finished) once the chief is gone; no worker trains on alone after it.
            if members.chief_gone():
                self._end_round_after_chief()
            return
        rnd.required &= members.live_ids()
        if not rnd.required <= rnd.arrived:
            return
        missing = members.never_registered()
        if missing and (now - rnd.started_at < self.config.heartbeat_timeout
                        or now - members.started < members.startup_timeout):
            return
        if missing:
            log.warning("Workers %s never registered within %.1f s; stepping without them",
                        sorted(missing), max(now - members.started, 0.0))
            members.gave_up = True
        self._complete_round()

    def _end_round_after_chief(self) -> None:
        """Answers the pushes of a step the finished, gone chief will never join."""
        for w in self.members.waiting():
            identity, req, _ = w.pending
            w.pending = None
            self.replies.reject(identity, req, "run_finished", _RUN_FINISHED)
        for identity, req, _ in self.round.anonymous:
            self.replies.reject(identity, req, "run_finished", _RUN_FINISHED)
        self.round.finish()

    def _complete_round(self) -> None:
        """Applies the step's mean gradient once and answers every waiting push."""
        rnd, shard = self.round, self.shard
        if rnd.position is not None:
            shard.position = rnd.position
        offered = rnd.chosen_learning_rate()
        if offered is not None:
            shard.set_learning_rate(*offered)
        grads = rnd.averaged()
        if grads:
            shard.apply_mean(grads)
        frames = None
        for w in self.members.waiting():
            identity, req, op = w.pending
            w.pending, w.done_req, w.last_seen = None, req, time.monotonic()
            frames = self.replies.step_reply(identity, req, op, frames)
        for identity, req, op in rnd.anonymous:
            frames = self.replies.step_reply(identity, req, op, frames)
        rnd.finish()

    # ------------------------------------------------------------ the server's events

    def params_added(self) -> None:
        """New parameters get their sum buffers."""
        self.round.reset_buffers(self.shard.params)

    def joined(self, wid: int, expected: bool) -> None:
        """An expected worker registering mid-step belongs to this step."""
        if self.round.started and expected:
            self.round.required.add(wid)

    def rejoined(self, wid: int) -> None:
        """A returning worker joins at the next step."""
        self.round.required.discard(wid)

    def gone(self, wid: int) -> None:
        """The step no longer waits for `wid`."""
        self.round.required.discard(wid)

    def paused(self, gap: float, now: float) -> None:
        """The wait for unregistered workers does not count the pause either."""
        if self.round.started:
            self.round.started_at = min(now, self.round.started_at + gap)

    def undo_for(self, wid: int) -> Any:
        """A function putting back whether the step waits for `wid`."""
        was = wid in self.round.required
        return lambda: (self.round.required.add if was else self.round.required.discard)(wid)


class Round:
    """The sync step being assembled: who must push, who did, the running sums."""

    def __init__(self):
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        self.first: dict[str, list[np.ndarray]] = {}  # a step's first gradient, not copied
        self.finish()

    def reset_buffers(self, params: dict[str, np.ndarray]) -> None:
        """Allocates a sum buffer for each parameter without one."""
        for name, p in params.items():
            if name not in self.sums:
                self.sums[name] = np.empty_like(p)
                self.counts[name] = 0

    def start(self, live: set[int], now: float) -> None:
        """Opens a step that waits for the `live` workers."""
        self.started, self.started_at, self.required = True, now, set(live)

    def offer_learning_rate(self, sender: Any, value: float) -> None:
        """A worker's learning rate for this step (`chosen_learning_rate` picks one)."""
        rank = sender if isinstance(sender, int) and sender >= 0 else None
        self.learning_rates.append((rank is None, rank or 0, value, sender))

    def chosen_learning_rate(self) -> tuple[float, Any] | None:
        """(rate, sender) of the lowest-ranked worker that sent one (the chief first).

        Anonymous senders come after every worker, in arrival order.
        """
        if not self.learning_rates:
            return None
        _, _, value, sender = min(self.learning_rates, key=lambda offer: offer[:2])
        return value, sender

    def add(self, msg: Message) -> None:
        """Adds a gradient to the sums.

        The first gradient of a step is only kept (views on its received
        frames); the second is added to it into the sum buffer, so summing N
        gradients makes N - 1 passes instead of a copy and N - 1 additions.
        """
        for name in msg.names:
            count = self.counts[name]
            if count == 0:
                self.first[name] = msg.pieces(name)
            else:
                self._accumulate(name, msg.pieces(name), count)
            self.counts[name] = count + 1

    def _accumulate(self, name: str, pieces: list[np.ndarray], count: int) -> None:
        total = self.sums[name].reshape(-1)
        first = self.first.pop(name) if count == 1 else None
        if first is not None and [p.size for p in first] != [p.size for p in pieces]:
            protocol.copy_pieces(first, total)  # framed differently (e.g. packed): no pairing
            first = None
        offset = 0
        for i, piece in enumerate(pieces):
            dest = total[offset:offset + piece.size]
            np.add(first[i] if first is not None else dest, piece, out=dest)
            offset += piece.size

    def averaged(self) -> dict[str, list[np.ndarray]]:
        """name -> the step's mean gradient as flat pieces (a lone gradient: its own frames)."""
        out = {}
        for name, count in self.counts.items():
            if count == 1:
                out[name] = self.first.pop(name)  # views on the received frames: no copy
            elif count > 1:
                total = self.sums[name]
                np.multiply(total, total.dtype.type(1.0 / count), out=total)
                out[name] = [total.reshape(-1)]
        return out

    def finish(self) -> None:
        """Closes the step: nobody required, nothing summed."""
        self.started, self.started_at = False, 0.0
        self.required: set[int] = set()
        self.arrived: set[int] = set()
        self.anonymous: list[tuple] = []
        self.learning_rates: list[tuple] = []  # (anonymous, rank, value, sender) offers
        self.position: dict | None = None  # the step's training position, set when applied
        self.first.clear()
        for name in self.counts:
            self.counts[name] = 0
