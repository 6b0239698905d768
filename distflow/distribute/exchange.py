"""One request to several parameter-server shards, over the shards' connections.

`Connections` holds a client's socket to every shard (index = shard id) and
replaces one with a fresh socket on demand. `Exchange` sends one request (the
messages of each shard, all before waiting for any reply, so the shards work
in parallel), collects the replies until a deadline, and sends again what a
silent shard has not answered (same request id, so the server never applies
it twice) on a fresh socket after a backoff; this also reconnects to a
restarted server. When the time budget is spent, `PSTimeoutError` names the
server, the operation and the seconds waited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from distflow.distribute import protocol, transport
from distflow.distribute.protocol import Message, ProtocolError

log = logging.getLogger("distflow.client")


# The settings a client's time budget comes from (errors and log lines name them).
REQUEST_TIMEOUT = "DISTFLOW_REQUEST_TIMEOUT"  # every request
STARTUP_TIMEOUT = "DISTFLOW_RENDEZVOUS_TIMEOUT"  # a worker's first contact


class PSError(RuntimeError):
    """A server refused a request (its error reply), or a reply was malformed.

    Attributes:
        address: the server's address.
        reason: the server's reason code (e.g. "shape_mismatch").
    """

    def __init__(self, address: str, reason: str, message: str):
        super().__init__(message)
        self.address, self.reason = address, reason


class PSTimeoutError(TimeoutError):
    """No reply from a server within the time budget.

    Attributes:
        address: the server that did not answer.
        op: the operation.
        waited: seconds waited.
    """

    def __init__(self, address: str, op: str, waited: float, attempts: int,
                 curve: bool = False):
        keys = ("With CURVE keys, the server also stays silent when it refuses this "
                "client's public key (not in its allow-list: see the server's log)"
                if curve else "If the servers run with CURVE keys (--keys), this client "
                "needs `keys_dir` too: a plain client cannot talk to them")
        super().__init__(
            f"No reply from parameter server {address} to `{op}` after {waited:.1f} s "
            f"({attempts} attempt(s), reconnecting between them). Check that the server is "
            f"running and reachable; raise the client `timeout` if steps are legitimately "
            f"slower (a sync step waits up to the heartbeat timeout for a dead worker). "
            f"{keys}.")
        self.address, self.op, self.waited = address, op, waited


class Connections:
    """A client's sockets to every shard, by shard id.

    Args:
        addrs: the shards' addresses (`tcp://host:port`); index = shard id.
        keys: CURVE keys (`transport.client_curve_keys`); None for plain TCP.
        worker_id: the rank of the worker they speak for (log lines name it).
    """

    def __init__(self, addrs: Sequence[str], keys: Any = None, worker_id: int | None = None):
        self.addrs, self.keys, self.worker_id = list(addrs), keys, worker_id
        self.sockets = [transport.ClientSocket(a, keys) for a in self.addrs]

    @property
    def closed(self) -> bool:
        return not self.sockets

    def reconnect(self, shard: int) -> None:
        """Replaces `shard`'s socket by a fresh one (what was queued on it is dropped)."""
        self.sockets[shard].close()
        self.sockets[shard] = transport.ClientSocket(self.addrs[shard], self.keys)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []


class ShardStatus:
    """What each shard said of itself in its replies.

    Attributes:
        versions: each shard's version from its last reply (0 before any).
        answered: whether the shard has reported a version yet.
        modes: each shard's mode (`sync`/`async`), None before its first reply.
        last_replies: the last request's reply headers, in shard order.
    """

    def __init__(self, num_shards: int):
        self.versions = [0] * num_shards
        self.answered = [False] * num_shards
        self.modes: list[str | None] = [None] * num_shards
        self.last_replies: list[dict] = []

    def record(self, replies: Mapping[int, list[Message]]) -> bool:
        """Notes each shard's version and mode from its replies to one request
        (`Exchange.run`'s result); returns whether a shard's mode changed."""
        changed = False
        for shard, got in replies.items():
            changed |= self._note(shard, got)
        self.last_replies = [got[-1].header for got in replies.values()]
        return changed

    def _note(self, shard: int, got: list[Message]) -> bool:
        header = got[-1].header  # a pipelined step's last part holds its final version
        version, mode = header.get("version"), header.get("mode")
        if isinstance(version, int):
            self.versions[shard] = version if len(got) == 1 else max(
                m.header.get("version", 0) for m in got)
            self.answered[shard] = True
        if isinstance(mode, str) and mode != self.modes[shard]:
            self.modes[shard] = mode
            return True
        return False

    def steps(self, version: int | None) -> list[int]:
        """The `step` a push carries to each shard: the shard's last version, or
        `version` (0 if None) to a shard that has not reported one yet."""
        return [v if known else int(version or 0)
                for v, known in zip(self.versions, self.answered)]


_FIRST_SAY, _SAY_EVERY = 5.0, 30.0  # seconds: when a long wait is first logged, then how often
_CHECK_EVERY = 0.25  # seconds: how often a long wait looks for a server that came back


class Exchange:
    """One request to several shards: send all, collect, re-send to the silent ones.

    A shard may get several messages (the parts of a pipelined push, all with
    the same request id); each reply is matched to its message by its `part`.

    Args:
        shards: the connections to the shards.
        op: the request's operation (error messages and log lines name it).
        messages: per shard, the frames of each message it gets.
        req: the request id the messages carry.
        backoff: seconds before the first re-send, doubling each time.
        budget_setting: the setting the time budget came from (log lines name it).
    """

    def __init__(self, shards: Connections, op: str, messages: dict[int, list[list]],
                 req: int, backoff: float = 0.2,
                 budget_setting: str = REQUEST_TIMEOUT):
        self.shards, self.op, self.messages, self.req = shards, op, messages, req
        self.backoff, self.budget_setting = backoff, budget_setting
        self.replies: dict[int, list[Message | None]] = {
            s: [None] * len(m) for s, m in messages.items()}
        self.missing = {s: len(m) for s, m in messages.items()}  # unanswered, per shard

    def run(self, budget: float, retries: int) -> dict[int, list[Message]]:
        """The replies of every shard (one per message, in message order), within
        `budget` seconds and `retries` re-sends.

        Raises:
            PSTimeoutError: a shard did not answer in time.
            PSError: a shard refused the request, or a reply is malformed.
        """
        start = self.start = time.monotonic()
        self.budget, self.next_say = budget, _FIRST_SAY
        per_attempt = budget / (retries + 1)
        for attempt in range(retries + 1):
            if attempt:
                self._pause_and_reconnect(attempt, budget - (time.monotonic() - start))
            for s in self.missing:
                self._send_unanswered(s)
            self._wait(start + per_attempt * (attempt + 1))
            if not self.missing:
                return self.replies  # (every entry is a Message now)
        raise PSTimeoutError(self.shards.addrs[min(self.missing)], self.op,
                             time.monotonic() - start, retries + 1,
                             curve=self.shards.keys is not None)

    def _pause_and_reconnect(self, attempt: int, left: float) -> None:
        time.sleep(min(self.backoff * 2 ** (attempt - 1), max(0.0, left) / 2))
        for s in self.missing:
            self.shards.reconnect(s)

    def _wait(self, deadline: float) -> None:
        sockets = self.shards.sockets
        while self.missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._check_long_wait()
            waiting = {s: sockets[s] for s in self.missing}
            ready = transport.poll_clients(list(waiting.values()),
                                           max(1, int(min(remaining, _CHECK_EVERY) * 1000)))
            for s, sock in waiting.items():
                if sock in ready:
                    self._receive(s, sock)

    def _send_unanswered(self, shard: int) -> None:
        sock = self.shards.sockets[shard]
        for frames, got in zip(self.messages[shard], self.replies[shard]):
            if got is None:
                sock.send(frames)

    def _check_long_wait(self) -> None:
        """Past `_CHECK_EVERY` (a step's usual reply comes sooner): sends again what a
        server that came back (a restart) has not answered, since the request was lost
        with the old connection (servers answer a resent one once), and says what it
        waits for after 5 s, then every 30 s."""
        waited = time.monotonic() - self.start
        if waited < _CHECK_EVERY:
            return
        for s in list(self.missing):
            if self.shards.sockets[s].reconnected():
                self._send_unanswered(s)
        if waited < self.next_say:
            return
        self.next_say = waited + _SAY_EVERY
        silent = [self.shards.addrs[s] for s in sorted(self.missing)]
        log.warning("Worker %s has waited %.0f s for parameter server(s) %s to answer `%s` "
                    "(a synchronous step also waits for the slowest live worker); it gives "
                    "up after %.0f s (%s)", self.shards.worker_id,
                    waited, ", ".join(silent), self.op, self.budget, self.budget_setting)

    def _receive(self, shard: int, sock: transport.ClientSocket) -> None:
        """Reads what `sock` has; the shard leaves `missing` once all its messages are answered."""
        while shard in self.missing:
            frames = sock.recv()
            if frames is None:
                return
            try:
                msg = protocol.decode(frames, expect_ops=protocol.REPLY_OPS)
            except ProtocolError as exc:
                raise PSError(sock.address, exc.reason, f"Malformed reply from parameter "
                              f"server {sock.address} to `{self.op}`: {exc}") from None
            if msg.req != self.req:
                continue  # a late answer to an earlier, abandoned attempt
            if msg.op == "error":
                reason = msg.header.get("reason", "error")
                raise PSError(sock.address, reason, f"Parameter server {sock.address} refused "
                              f"`{self.op}` ({reason}): {msg.header.get('message', '')}")
            got = self.replies[shard]
            index = 0 if len(got) == 1 else self._part_index(msg, len(got), sock.address)
            if got[index] is None:
                self.missing[shard] -= 1
                if not self.missing[shard]:
                    del self.missing[shard]
            got[index] = msg

    def _part_index(self, msg: Message, count: int, address: str) -> int:
        """Which of a pipelined request's `count` messages `msg` answers (its `part`)."""
        part = msg.header.get("part")
        if not (isinstance(part, list) and len(part) == 2 and isinstance(part[0], int)
                and not isinstance(part[0], bool) and 0 <= part[0] < count):
            raise PSError(address, "bad_reply", f"Malformed reply from parameter server "
                          f"{address} to `{self.op}`: a pipelined request in {count} parts "
                          f"needs `part: [index, {count}]` in each reply. Received: "
                          f"part={part!r:.50}")
        return part[0]
