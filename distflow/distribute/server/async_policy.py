"""Async semantics (ParameterServerStrategy): each gradient is applied on arrival.

Staleness = server version - the version the gradient was computed on. With
`max_staleness`, a gradient staler than the bound is dropped (not applied,
reported to the worker, which continues from the current parameters). A step
may come as several messages (`part: [index, count]`, pipelined): each part is
applied on arrival and the version goes up once, when the step is complete.
The steady state (a plain push from a live worker) takes `plain_push`, one pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from distflow.distribute.protocol import Message
from distflow.distribute.server import requests
from distflow.distribute.server.errors import Reject
from distflow.distribute.server.membership import Worker
from distflow.distribute.server.policy import PART_REFUSED, Policy

HISTOGRAM_CAP = 64  # staleness above this is counted as this
# The headers of a plain push (`plain_push`): no `part` or `learning_rate`.
_PLAIN_PUSH_KEYS = (frozenset({"v", "op", "sender", "req", "step", "tensors"}),
                    frozenset({"v", "op", "sender", "req", "step", "tensors", "position"}))
_PUSH_OPS = frozenset({"push", "push_pull"})


@dataclass
class Parts:
    """The parts of one pipelined push: one step sent as several messages."""

    req: Any
    count: int
    done: set = field(default_factory=set)  # part indices answered
    names: set = field(default_factory=set)  # parameters the parts carried
    applied: bool = False  # a part was applied: the step bumps the version once
    bumped: bool = False


class AsyncPolicy(Policy):
    """Applies each push on arrival (see the module docstring)."""

    # ------------------------------------------------------------ the plain push

    def plain_push(self, identity: bytes, msg: Message) -> bool:
        """Async training's steady state in one pass; False, having changed nothing, otherwise.

        A plain push or push_pull (no `part` or `learning_rate`) from a live
        worker, with a spec list already checked against the parameters, all
        finite, and no staleness bound: `take` would answer it the same way
        through a dozen checks that cannot fail here (about a sixth of the
        server's CPU per 64 KB round trip). Anything else, a non-finite gradient
        included, goes the general way.
        """
        worker = self.plain_pusher(msg)
        if worker is None:
            return False
        if not requests.all_finite(msg):
            return False  # the general path refuses or skips it, naming the tensor
        shard, stats = self.shard, self.stats
        shard.position = requests.position(msg) or shard.position
        step = msg.header["step"]
        staleness = max(0, shard.version - step)
        stats.staleness[min(staleness, HISTOGRAM_CAP)] += 1
        stats.pushes += 1
        worker.last_seen, worker.last_step, worker.finished = time.monotonic(), step, False
        shard.apply(*requests.gradients(shard, msg))
        worker.done_req = msg.req
        self.replies.reply(identity, msg, with_params=msg.op == "push_pull",
                           staleness=staleness, dropped=False, skipped=False)
        return True

    def plain_pusher(self, msg: Message) -> Worker | None:
        """The sender of `msg` if `plain_push` can take it, else None."""
        if self.config.max_staleness is not None or msg.op not in _PUSH_OPS \
                or msg.header.keys() not in _PLAIN_PUSH_KEYS:
            return None
        worker = self.members.workers.get(msg.sender)
        if worker is None or not worker.alive or worker.left or worker.parts is not None \
                or worker.pending is not None or msg.req == worker.done_req:
            return None
        return worker if self.shard.layout_checked(msg.layout) else None  # checked before

    # ------------------------------------------------------------ the general path

    def part_field(self, msg: Message, worker: Worker | None) -> tuple[int, int] | None:
        """The optional `part: [index, count]` of a pipelined push, validated."""
        value = msg.header.get("part")
        if value is None:
            return None
        if worker is None:
            raise Reject("bad_field", PART_REFUSED)
        if not (isinstance(value, list) and len(value) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value)
                and 0 <= value[0] < value[1] <= self.config.max_tensors):
            raise Reject("bad_field", f"`part` must be [index, count] with 0 <= index < count "
                         f"<= {self.config.max_tensors}. Received: part={value!r:.100}")
        return value[0], value[1]

    def is_duplicate(self, identity: bytes, msg: Message, worker: Worker,
                     with_params: bool, part: tuple[int, int] | None) -> bool:
        """A part already answered, or a retried request (see `Policy.is_duplicate`)."""
        if part is None:
            return super().is_duplicate(identity, msg, worker, with_params, part)
        parts = worker.parts
        if parts is None or parts.req != msg.req or part[0] not in parts.done:
            return False
        self.stats.duplicates += 1
        self.replies.reply(identity, msg, with_params=with_params, duplicate=True,
                           part=list(part), names=self._part_reply_names(msg, parts))
        return True

    def admit(self, msg: Message) -> None:
        """Records the push's training position (the latest one received wins)."""
        self.shard.position = requests.position(msg) or self.shard.position

    def accept(self, identity: bytes, msg: Message, worker: Worker | None, usable: bool,
               with_params: bool, part: tuple[int, int] | None,
               learning_rate: float | None) -> None:
        """Applies the push now (unless stale beyond the bound) and answers it."""
        if learning_rate is not None:  # async: the latest value received wins
            self.shard.set_learning_rate(learning_rate, msg.sender)
        parts = self._parts_of(worker, msg.req, part)
        staleness = max(0, self.shard.version - msg.header.get("step", self.shard.version))
        if parts is None or not parts.done:  # a pipelined step counts once
            self.stats.staleness[min(staleness, HISTOGRAM_CAP)] += 1
        limit = self.config.max_staleness
        dropped = usable and limit is not None and staleness > limit
        if dropped:
            self.stats.stale_dropped += 1
        elif usable:
            self.shard.apply(*requests.gradients(self.shard, msg), bump=parts is None)
        if worker is not None:
            worker.done_req = msg.req
        fields = {} if parts is None else self._part_done(msg, parts, part, usable and not dropped)
        self.replies.reply(identity, msg, with_params=with_params, staleness=staleness,
                           dropped=dropped, skipped=not usable, **fields)

    # ------------------------------------------------------------ pipelined parts

    def _part_done(self, msg: Message, parts: Parts, part: tuple[int, int],
                   applied: bool) -> dict[str, Any]:
        """Records an answered part; the step's last one bumps the version once."""
        parts.applied |= applied
        parts.done.add(part[0])
        parts.names.update(msg.names)
        if len(parts.done) == parts.count and parts.applied and not parts.bumped:
            parts.bumped = True
            self.shard.bump()  # the whole step is in: one version
        return {"part": list(part), "names": self._part_reply_names(msg, parts)}

    def _parts_of(self, worker: Worker | None, req: Any,
                  part: tuple[int, int] | None) -> Parts | None:
        """The pipelined step this push belongs to (None for a plain push).

        A new request closes the worker's previous pipelined step: if a part of
        it was refused, the parts applied still count as one update.
        """
        parts = worker.parts if worker is not None else None
        if parts is not None and parts.req == req and part is not None \
                and parts.count == part[1]:
            return parts
        if parts is not None and parts.applied and not parts.bumped:
            parts.bumped = True
            self.shard.bump()
        if worker is not None:
            worker.parts = Parts(req, part[1]) if part is not None else None
        return worker.parts if worker is not None else None

    def _part_reply_names(self, msg: Message, parts: Parts) -> list[str]:
        """A part's reply carries its own parameters; the last one, all the others too."""
        if len(parts.done) < parts.count:
            return msg.names
        return msg.names + [n for n in self.shard.params if n not in parts.names]
