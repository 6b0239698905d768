"""What every update policy shares: taking in a push, recognising retries.

A server runs one policy, chosen once at construction (`service.POLICIES`):
`sync_policy.SyncPolicy` (MirroredStrategy: one averaged step per round of
pushes) or `async_policy.AsyncPolicy` (ParameterServerStrategy: each gradient
applied on arrival). `Policy.push` validates a push the same way for both,
then hands it to the policy's `admit` and `accept`; what a push means lives in
those two files only.
"""

from __future__ import annotations

from typing import Any

from distflow.distribute.protocol import Message
from distflow.distribute.server import requests
from distflow.distribute.server.errors import Reject
from distflow.distribute.server.membership import Membership, Worker
from distflow.distribute.server.replies import Replies
from distflow.distribute.server.shard import Shard
from distflow.distribute.server.stats import Stats

PART_REFUSED = ("`part` (a pipelined push) is accepted by async servers only, from a worker "
                "(sender >= 0). Send the step as one message.")


class Policy:
    """The push path every policy shares; subclasses say what a push does.

    Args:
        shard: the parameters and their optimizer.
        replies: the reply channel.
        stats: the server's counters.
        config: the server's `ServerConfig`.
    """

    def __init__(self, shard: Shard, replies: Replies, stats: Stats, config: Any):
        self.shard, self.replies, self.stats, self.config = shard, replies, stats, config
        self.members: Membership | None = None  # set by `attach`

    def attach(self, members: Membership) -> None:
        """Gives the policy the worker table it listens to."""
        self.members = members

    # ------------------------------------------------------------ requests

    def plain_push(self, identity: bytes, msg: Message) -> bool:
        """Answers a steady-state push in one pass; False, having changed nothing,
        when the general path (`push`) must take it."""
        return False

    def push(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """A `push` request (gradients; the reply carries no parameters)."""
        self.take(identity, msg, worker, with_params=False)

    def push_pull(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """A `push_pull` request (gradients; the reply carries the new parameters)."""
        self.take(identity, msg, worker, with_params=True)

    def take(self, identity: bytes, msg: Message, worker: Worker | None,
             with_params: bool) -> None:
        """Validates a push, answers a retry from memory, then `admit`s and `accept`s it."""
        # Validated before a retry is recognised: a malformed push naming a worker must
        # not take over the reply that worker waits for.
        part = self.part_field(msg, worker)
        learning_rate = requests.learning_rate(msg)
        usable = requests.check_gradients(self.shard, msg, self.config.nonfinite)
        if worker is not None and self.is_duplicate(identity, msg, worker, with_params, part):
            return
        if not usable:
            self.stats.skipped_nonfinite += 1
        self.admit(msg)
        self.stats.pushes += part is None or part[0] == 0  # a pipelined step counts once
        if worker is not None:
            worker.last_step = msg.header.get("step", worker.last_step)
            worker.finished = False  # training (again)
        self.accept(identity, msg, worker, usable, with_params, part, learning_rate)

    def part_field(self, msg: Message, worker: Worker | None) -> tuple[int, int] | None:
        """The optional `part: [index, count]` of a pipelined push (refused here)."""
        if msg.header.get("part") is not None:
            raise Reject("bad_field", PART_REFUSED)
        return None

    def is_duplicate(self, identity: bytes, msg: Message, worker: Worker,
                     with_params: bool, part: tuple[int, int] | None) -> bool:
        """Retries reuse their request id: never apply the same request twice."""
        if msg.req is not None and msg.req == worker.done_req:
            self.stats.duplicates += 1
            self.replies.reply(identity, msg, with_params=with_params, duplicate=True)
            return True
        return False

    def admit(self, msg: Message) -> None:
        """Refuses a push this policy takes no more of; records its position."""
        raise NotImplementedError

    def accept(self, identity: bytes, msg: Message, worker: Worker | None, usable: bool,
               with_params: bool, part: tuple[int, int] | None,
               learning_rate: float | None) -> None:
        """Applies (or queues) a validated push and answers it (now or at the step)."""
        raise NotImplementedError

    # ------------------------------------------------------------ the server's events

    def params_added(self) -> None:
        """The shard holds new parameters (`init`)."""

    def tick(self, now: float) -> None:
        """Housekeeping: runs every loop iteration."""

    # ------------------------------------------------------------ membership events

    def joined(self, wid: int, expected: bool) -> None:
        """Worker `wid` registered."""

    def rejoined(self, wid: int) -> None:
        """A dead or departed worker `wid` is back."""

    def gone(self, wid: int) -> None:
        """Worker `wid` left or was declared dead."""

    def paused(self, gap: float, now: float) -> None:
        """The server did not listen for `gap` seconds."""

    def undo_for(self, wid: int) -> Any:
        """A function putting this policy's view of `wid` back as it is now."""
        return lambda: None
