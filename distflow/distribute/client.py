"""`PSClient`: a worker's connection to all parameter-server shards.

Every operation sends one message to each shard involved, all before waiting
for any reply, so the shards work in parallel; then it collects the replies
until a deadline. A shard that does not answer in time gets the same request
again (same request id, so the server never applies it twice) on a fresh
socket, after a backoff; this also reconnects to a restarted server. When the
time budget is spent, `PSTimeoutError` names the server, the operation and the
seconds waited.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from distflow.distribute import protocol, sharding, transport
from distflow.distribute.protocol import Message, ProtocolError

log = logging.getLogger("distflow.client")

_PIPELINED_OPS = ("push", "push_pull")


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


class PSClient:
    """Talks to the parameter-server shards on behalf of one worker.

    Args:
        addrs: server addresses (`tcp://host:port`); index = shard id.
        worker_id: this worker's rank, or None for a tool that is not a
            training worker (not counted in sync steps).
        timeout: seconds a request may take in total, retries included.
        keys_dir: CURVE key directory; None for plain TCP.
        retries: how many times a request is re-sent to a silent server.
        backoff: seconds before the first re-send, doubling each time.
        split: allow row-splitting of large variables across shards.
        split_bytes: split threshold (None: fair share, see `sharding.place`).
        pipeline_bytes: a push to an async server larger than this goes as
            several messages (parts) of about this size, all sent at once, so the
            server updates and answers the first parts while the others are still
            on the wire; None: always one message (docs/protocol.md, Pipelining).
        partitions: `fn(name, shape, dtype)` -> number of row ranges to cut that
            variable into (a TF variable partitioner's axis-0 count; overrides the
            size rule of `split_bytes`); None: the size rule only.
    """

    def __init__(self, addrs: Sequence[str], worker_id: int | None = None,
                 timeout: float = 60.0, keys_dir: str | None = None, retries: int = 3,
                 backoff: float = 0.2, split: bool = True, split_bytes: int | None = None,
                 pipeline_bytes: int | None = 4 * 1024 * 1024,
                 partitions: Callable[[str, tuple, np.dtype], int] | None = None):
        if isinstance(addrs, str) or not addrs:
            raise ValueError(f"`addrs` must be a non-empty list of tcp://host:port. "
                             f"Received: addrs={addrs!r}")
        if not timeout > 0:
            raise ValueError(f"`timeout` must be a positive number of seconds. "
                             f"Received: timeout={timeout!r}")
        self.addrs = list(addrs)
        self.worker_id = worker_id
        self.timeout, self.retries, self.backoff = float(timeout), int(retries), float(backoff)
        self._keys = (transport.client_curve_keys(keys_dir, worker_id or 0)
                      if keys_dir else None)
        self._sockets = [transport.ClientSocket(a, self._keys) for a in self.addrs]
        self._req = random.SystemRandom().randrange(1 << 30)
        self._last_push: tuple | None = None  # the last push_pull's messages and request id
        self._split, self._split_bytes = split, split_bytes
        self._partitions = partitions
        self._pieces: dict[str, list[sharding.Piece]] = {}
        self._by_key: dict[str, sharding.Piece] = {}
        self._split_any = False  # some variable is split by rows across shards
        self._vars: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self.versions = [0] * len(self.addrs)
        self._answered = [False] * len(self.addrs)
        self.last_replies: list[dict] = []
        self._heartbeat: _Heartbeat | None = None
        self.pipeline_bytes = pipeline_bytes
        self._modes: list[str | None] = [None] * len(self.addrs)  # from hello/init replies
        self._encoders: dict[tuple, protocol.Encoder] = {}  # (shard, keys...) -> encoder
        self._plans: dict[tuple, _Plan | bool] = {}  # gradient names -> plain push plan

    @property
    def num_shards(self) -> int:
        return len(self.addrs)

    @property
    def last_version(self) -> int:
        """The lowest version the shards reported in their last replies."""
        return min(self.versions)

    # ------------------------------------------------------------ public ops

    def hello(self) -> list[dict]:
        """Registers with every shard; returns their headers (version, position, ...)."""
        return [m.header for m in self._request_all("hello")]

    def init(self, params: Mapping[str, np.ndarray], optimizer: Mapping[str, Any],
             out: Mapping[str, np.ndarray] | None = None,
             reseed: bool = False) -> dict[str, np.ndarray]:
        """Offers initial values and the optimizer config; returns the values that won.

        The chief (worker 0) sets a parameter the servers do not hold yet, with its
        optimizer config; the other workers wait for that (asking again, up to the
        client's `timeout`; a log line says what they wait for) and get the stored
        values, so every worker starts from the chief's.

        Args:
            params: name -> initial array.
            optimizer: {"name", "hp", "learning_rate"} (docs/protocol.md).
            out: arrays to write the values into (default: new arrays).
            reseed: the chief re-seeds a server that came back empty: each shard is
                told the last version this client saw from it.

        Returns:
            name -> the servers' values.
        """
        self._register(params)
        per_shard = self._split_by_shard(params)
        versions = {s: {"version": v} for s, v in enumerate(self.versions)} if reseed else None
        replies = self._until_chief_initialized(
            lambda: self._request_all("init", per_shard, fields_per_shard=versions,
                                      optimizer=dict(optimizer)))
        return self._collect(replies, list(params), out)

    def _until_chief_initialized(self, request: Callable[[], list[Message]]) -> list[Message]:
        """`request()`, asked again while a server answers `awaiting_chief` (bounded)."""
        start, pause, said = time.monotonic(), 0.02, 0.0
        while True:
            try:
                return request()
            except PSError as error:
                if error.reason != "awaiting_chief":
                    raise
                waited = time.monotonic() - start
                if waited > self.timeout:
                    raise TimeoutError(
                        f"Worker {self.worker_id} waited {waited:.0f} s for the chief (worker "
                        f"0) to initialize the parameters on {error.address}. Is the chief "
                        f"running and reaching `fit` (or its first `apply_gradients`)? Raise "
                        f"DISTFLOW_REQUEST_TIMEOUT (now {self.timeout:.0f} s) if it "
                        f"legitimately starts that much later.") from None
                if waited - said >= 5.0:
                    said = waited
                    log.warning("Worker %d waits for the chief (worker 0) to initialize the "
                                "parameters on %s (%.0f s so far)", self.worker_id,
                                error.address, waited)
                time.sleep(pause)
                pause = min(pause * 2, 0.25)

    def pull(self, names: Iterable[str] | None = None,
             out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The current values of `names` (default: every registered variable)."""
        wanted = list(self._vars) if names is None else list(names)
        keys = [[p.key for n in wanted for p in self._pieces_of(n) if p.shard == s]
                for s in range(self.num_shards)]
        shards = [s for s in range(self.num_shards) if keys[s]]
        replies = self._request_all("pull", shards=shards,
                                    fields_per_shard={s: {"names": keys[s]} for s in shards})
        return self._collect(replies, wanted, out)

    def push(self, grads: Mapping[str, np.ndarray], version: int | None = None,
             position: Mapping[str, Any] | None = None,
             learning_rate: float | None = None) -> int:
        """Sends gradients to every shard; returns the lowest version after the update.

        `learning_rate`, when given, is the rate the servers use from this update on.
        """
        self._push("push", grads, version, position, learning_rate)
        return self.last_version

    def push_pull(self, grads: Mapping[str, np.ndarray], version: int | None = None,
                  out: Mapping[str, np.ndarray] | None = None,
                  position: Mapping[str, Any] | None = None,
                  learning_rate: float | None = None) -> dict[str, np.ndarray]:
        """Sends gradients and receives the updated parameters in one round trip.

        Args:
            grads: name -> gradient (same shape and dtype as the variable).
            version: the version the gradients were computed on, used only for
                shards that have not answered yet (otherwise each shard's last
                reported version is sent, which is what staleness needs).
            out: arrays to write the new values into, in place (default: new).
            position: training position to record, e.g. {"epoch": 2, "step": 10}.
            learning_rate: a new learning rate, used by the servers from this
                update on (it replaces their number or schedule); None: unchanged.

        Returns:
            name -> new values of every registered variable.
        """
        replies = self._push("push_pull", grads, version, position, learning_rate)
        return self._collect(replies, list(self._vars), out)

    def repeat_push_pull(self, out: Mapping[str, np.ndarray] | None = None
                         ) -> dict[str, np.ndarray]:
        """Sends the last `push_pull` again, with its request id, and collects the values.

        A server that applied it answers as to a retry (no second update); one that
        refused it (a restarted, re-seeded server) applies it now.
        """
        if self._last_push is None:
            raise RuntimeError("No `push_pull` was sent yet: nothing to repeat.")
        messages, req = self._last_push
        latest, self._req = self._req, req
        try:
            replies = self._exchange("push_pull", messages, self.timeout, self.retries)
        finally:
            self._req = latest
        return self._collect(replies, list(self._vars), out)

    def epoch_end(self, epoch: int, stop: bool | None = None, done: bool = False) -> dict:
        """Records (chief, with `stop`) or reads the stop decision for `epoch` on shard 0.

        Args:
            epoch: the epoch this worker just finished.
            stop: the chief's decision to stop after it (chief only).
            done: this worker's `fit` is over (`epoch` was its last epoch).

        Returns:
            Shard 0's reply header: `decided`, `stop` (the chief's decision for
            `epoch`, nil if not recorded), `stop_epoch` (the earliest epoch the
            chief decided to stop at, or nil), `chief_alive` and `behind` (live
            workers that neither finished `epoch` nor said they are done).
        """
        fields: dict[str, Any] = {"epoch": int(epoch)}
        if stop is not None:
            fields["stop"] = bool(stop)
        if done:
            fields["done"] = True
        return self._request_all("epoch_end", shards=[0], **fields)[0].header

    def collective(self, kind: str, key: int, value: np.ndarray) -> np.ndarray:
        """This worker's part of a cross-worker `sum` or `gather` on shard 0.

        Every live worker calls it with the same `key` (its running count of
        collectives); the reply, once all have, is the sum of their values or
        their concatenation along axis 0 in worker order (distribute/collective.py).
        """
        per_shard = [[("value", np.ascontiguousarray(value))]] + [[]] * (self.num_shards - 1)
        reply = self._request_all("collective", per_shard, shards=[0], key=key, kind=kind)
        return np.array(reply[0].tensor("value"))

    def heartbeat(self) -> None:
        """Tells every shard this worker is alive."""
        self._request_all("heartbeat")

    def stats(self) -> list[dict]:
        """Each shard's counters (see docs/protocol.md, `stats`)."""
        return [m.header["stats"] for m in self._request_all("stats")]

    def save(self, position: Mapping[str, Any] | None = None) -> list[str]:
        """Asks every shard to checkpoint now; returns the paths written."""
        fields = {"position": dict(position)} if position else {}
        return [m.header["path"] for m in self._request_all("save", **fields)]

    def shutdown(self) -> None:
        """Asks every shard to checkpoint and exit."""
        self._request_all("shutdown")

    def start_heartbeats(self, interval: float = 5.0) -> None:
        """Sends heartbeats from a background thread (own sockets) every `interval` s.

        Needed only when the worker may be silent longer than the servers'
        heartbeat timeout between requests (long evaluation, slow data loading).
        """
        if self._heartbeat is None:
            self._heartbeat = _Heartbeat(self.addrs, self.worker_id, self._keys, interval)

    def close(self, leave: bool = True) -> None:
        """Closes the sockets; with `leave`, first tells sync servers not to wait for us."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if leave and self.worker_id is not None and self._sockets:
            try:
                self._request_all("bye", budget=min(self.timeout, 2.0), retries=0)
            except (PSError, PSTimeoutError) as exc:
                log.debug("bye not acknowledged: %s", exc)
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def __enter__(self) -> PSClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ placement

    def _register(self, params: Mapping[str, np.ndarray]) -> None:
        new = {n: a for n, a in params.items() if n not in self._vars}
        for name, arr in params.items():
            known = self._vars.get(name)
            if known is not None and known != (tuple(arr.shape), np.dtype(arr.dtype)):
                raise ValueError(f"Variable {name!r} was registered with shape {known[0]} and "
                                 f"dtype {known[1]}. Received: shape={arr.shape}, "
                                 f"dtype={arr.dtype}")
        if not new:
            return
        self._plans.clear()  # a plan may have been refused for a name not known then
        wanted = None if self._partitions is None else {
            n: self._partitions(n, tuple(a.shape), np.dtype(a.dtype)) for n, a in new.items()}
        placement = sharding.place(sharding.specs_of(new), self.num_shards,
                                   split=self._split, split_bytes=self._split_bytes,
                                   partitions=wanted)
        for piece in placement.pieces:
            self._pieces.setdefault(piece.var, []).append(piece)
            self._by_key[piece.key] = piece
            self._split_any |= piece.split
        for name, arr in new.items():
            self._vars[name] = (tuple(arr.shape), np.dtype(arr.dtype))
            self._pieces[name].sort(key=lambda p: p.start)

    def _pieces_of(self, name: str) -> list[sharding.Piece]:
        pieces = self._pieces.get(name)
        if pieces is None:
            raise ValueError(f"Unknown variable {name!r}: call `init` with it first. "
                             f"Known: {sorted(self._vars)[:20]}")
        return pieces

    def _split_by_shard(self, arrays: Mapping[str, np.ndarray]) -> list[list]:
        per_shard: list[list] = [[] for _ in range(self.num_shards)]
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            shape, dtype = self._vars[name] if name in self._vars else (None, None)
            if shape is not None and (arr.shape != shape or arr.dtype != dtype):
                raise ValueError(f"Gradient of {name!r} must have shape {shape} and dtype "
                                 f"{dtype}. Received: shape={arr.shape}, dtype={arr.dtype}")
            for piece in self._pieces_of(name):
                per_shard[piece.shard].append((piece.key, piece.view(arr)))
        return per_shard

    def _collect(self, replies: list[Message], names: list[str],
                 out: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        result = {}
        for name in names:
            shape, dtype = self._vars[name]
            target = out.get(name) if out is not None else None
            result[name] = target if target is not None else np.empty(shape, dtype)
        for msg in replies:
            if not self._split_any:  # every key is its variable's name
                msg.copy_all_into(result)
                continue
            targets = {}
            for key in msg.layout.names:
                piece = self._by_key.get(key)
                if piece is not None and piece.var in result:
                    targets[key] = piece.view(result[piece.var])
            msg.copy_all_into(targets)
        return result

    # ------------------------------------------------------------ requests

    def _push(self, op: str, grads: Mapping[str, np.ndarray], version: int | None,
              position: Mapping[str, Any] | None, learning_rate: Any = None) -> list[Message]:
        if learning_rate is None:
            messages = self._plain_messages(op, grads, position)
            if messages is not None:
                return self._exchange(op, messages, self.timeout, self.retries)
        per_shard = self._split_by_shard(grads)
        steps = {s: {"step": self.versions[s] if self._answered[s] else int(version or 0)}
                 for s in range(self.num_shards)}
        fields = {"position": dict(position)} if position else {}
        if learning_rate is not None:  # the servers validate it (finite, >= 0)
            fields["learning_rate"] = (learning_rate.item() if isinstance(learning_rate, np.generic)
                                       else learning_rate)
        # Every shard gets a push, even an empty one, so sync steps complete everywhere.
        return self._request_all(op, per_shard, fields_per_shard=steps, **fields)

    def _request_all(self, op: str, per_shard: list[list] | None = None,
                     shards: list[int] | None = None,
                     fields_per_shard: dict[int, dict] | None = None,
                     budget: float | None = None, retries: int | None = None,
                     **fields: Any) -> list[Message]:
        if not self._sockets:
            raise RuntimeError("This PSClient is closed; create a new one.")
        self._req = (self._req + 1) % (1 << 31)
        targets = list(range(self.num_shards)) if shards is None else shards
        messages = {}
        for s in targets:
            header = {"op": op, "sender": self.worker_id, "req": self._req, **fields,
                      **(fields_per_shard or {}).get(s, {})}
            messages[s] = self._messages(s, op, header, per_shard[s] if per_shard else [])
        return self._exchange(op, messages, self.timeout if budget is None else budget,
                              self.retries if retries is None else retries)

    def _exchange(self, op: str, messages: dict[int, list[list]], budget: float,
                  retries: int) -> list[Message]:
        """Sends request `self._req` (the messages of each shard), collects the replies
        and records each shard's version and mode; returns the replies in shard order."""
        if op == "push_pull":
            self._last_push = (messages, self._req)  # for `repeat_push_pull`
        replies = _Exchange(self, op, messages, self._req).run(budget, retries)
        for s, got in replies.items():
            header = got[-1].header  # a pipelined step's last part holds its final version
            version, mode = header.get("version"), header.get("mode")
            if isinstance(version, int):
                self.versions[s] = version if len(got) == 1 else max(
                    m.header.get("version", 0) for m in got)
                self._answered[s] = True
            if isinstance(mode, str):
                self._modes[s] = mode
        self.last_replies = [got[-1].header for got in replies.values()]
        return [m for got in replies.values() for m in got]

    def _messages(self, shard: int, op: str, header: dict, tensors: list) -> list[list]:
        """The frames of each message a request sends to `shard` (several: a pipelined push)."""
        if op not in _PIPELINED_OPS or not tensors:
            return [protocol.encode(header, tensors)]
        encoder = self._encoder(shard, tensors)
        if not self._pipelines(shard, encoder):
            return [encoder.encode(header, [a for _, a in tensors])]
        parts = self._parts(tensors)
        return [self._encoder(shard, part).encode({**header, "part": [i, len(parts)]},
                                                  [a for _, a in part])
                for i, part in enumerate(parts)]

    def _pipelines(self, shard: int, encoder: protocol.Encoder) -> bool:
        """Whether a push of `encoder`'s tensors to `shard` goes in parts (async only)."""
        limit = self.pipeline_bytes
        return self._modes[shard] == "async" and bool(limit) and encoder.nbytes > limit

    def _plain_messages(self, op: str, grads: Mapping[str, np.ndarray],
                        position: Mapping[str, Any] | None = None) -> dict | None:
        """A training step's messages from a cached plan; None when the step is unusual.

        The usual step: every shard has answered before (the step sent is its last
        version), each gradient is an ndarray of its registered shape and dtype,
        no variable is split and no push is pipelined. `_split_by_shard` and
        `_messages` would build the same frames through their general checks.
        """
        if not self._sockets or not all(self._answered):
            return None
        plan = self._plans.get(tuple(grads))
        if plan is None:
            plan = self._plan(grads)
        if not plan:
            return None
        if any(encoder is not None and self._pipelines(shard, encoder)
               for shard, (encoder, _) in enumerate(plan.shards)):
            return None
        if not _as_registered(grads, plan.checks):
            return None  # `_split_by_shard` converts or names the problem
        self._req = req = (self._req + 1) % (1 << 31)
        fields = {"position": dict(position)} if position else {}
        messages = {}
        for shard, (encoder, names) in enumerate(plan.shards):
            header = {"op": op, "sender": self.worker_id, "req": req, **fields,
                      "step": self.versions[shard]}
            messages[shard] = [encoder.encode(header, [grads[n] for n in names])
                               if encoder is not None else protocol.encode(header)]
        return messages

    def _plan(self, grads: Mapping[str, np.ndarray]) -> _Plan | bool:
        """The cached plan of a push of these gradient names (False: not a plain one)."""
        if len(self._plans) >= 64:
            self._plans.clear()  # bounded: normally one entry
        names = tuple(grads)
        pieces = [self._pieces.get(name) for name in names]
        if any(p is None or len(p) != 1 or p[0].split for p in pieces):
            self._plans[names] = False
            return False
        plan = _Plan(checks=[(n, *self._vars[n]) for n in names], shards=[])
        if not _as_registered(grads, plan.checks):
            return False  # not cached: the encoders are built from valid gradients only
        for shard in range(self.num_shards):
            mine = [n for n, (piece,) in zip(names, pieces) if piece.shard == shard]
            encoder = self._encoder(shard, [(n, grads[n]) for n in mine]) if mine else None
            plan.shards.append((encoder, mine))
        self._plans[names] = plan
        return plan

    def _encoder(self, shard: int, tensors: list) -> protocol.Encoder:
        """The cached encoder of a push (or a pipelined push's part) with these tensor
        keys to `shard`.

        `_split_by_shard` has checked every gradient's shape and dtype against
        its registered variable, so the keys alone fix the spec list.
        """
        key = (shard, *(k for k, _ in tensors))
        encoder = self._encoders.get(key)
        if encoder is None:
            if len(self._encoders) >= 256:
                self._encoders.clear()  # bounded: normally one entry per shard and part
            encoder = self._encoders[key] = protocol.Encoder(tensors)
        return encoder

    def _parts(self, tensors: list) -> list[list]:
        """Cuts a shard's tensors (at tensor boundaries) into parts of >= pipeline_bytes."""
        limit = self.pipeline_bytes
        parts, current, size = [], [], 0
        for item in tensors:
            current.append(item)
            size += item[1].nbytes
            if size >= limit:
                parts.append(current)
                current, size = [], 0
        if current:
            parts.append(current)
        return parts

    def _reconnect(self, shard: int) -> None:
        self._sockets[shard].close()
        self._sockets[shard] = transport.ClientSocket(self.addrs[shard], self._keys)


def _as_registered(grads: Mapping[str, Any], checks: list[tuple]) -> bool:
    """True when every gradient is an ndarray of its (name, shape, dtype) in `checks`."""
    for name, shape, dtype in checks:
        array = grads[name]
        if type(array) is not np.ndarray or array.shape != shape or array.dtype != dtype:
            return False
    return True


@dataclass
class _Plan:
    """How a plain push of one set of gradient names is sent (`_plain_messages`).

    Attributes:
        checks: (name, shape, dtype) of each gradient, as registered.
        shards: per shard, its cached encoder (None: an empty push) and the
            names it carries, in wire order.
    """

    checks: list[tuple[str, tuple[int, ...], np.dtype]]
    shards: list[tuple[protocol.Encoder | None, list[str]]]


_FIRST_SAY, _SAY_EVERY = 5.0, 30.0  # seconds: when a long wait is first logged, then how often
_CHECK_EVERY = 0.25  # seconds: how often a long wait looks for a server that came back


class _Exchange:
    """One request to several shards: send all, collect, re-send to the silent ones.

    A shard may get several messages (the parts of a pipelined push, all with
    the same request id); each reply is matched to its message by its `part`.
    """

    def __init__(self, client: PSClient, op: str, messages: dict[int, list[list]], req: int):
        self.client, self.op, self.messages, self.req = client, op, messages, req
        self.replies: dict[int, list[Message | None]] = {
            s: [None] * len(m) for s, m in messages.items()}
        self.missing = {s: len(m) for s, m in messages.items()}  # unanswered, per shard

    def run(self, budget: float, retries: int) -> dict[int, list[Message]]:
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
        raise PSTimeoutError(self.client.addrs[min(self.missing)], self.op,
                             time.monotonic() - start, retries + 1,
                             curve=self.client._keys is not None)

    def _pause_and_reconnect(self, attempt: int, left: float) -> None:
        time.sleep(min(self.client.backoff * 2 ** (attempt - 1), max(0.0, left) / 2))
        for s in self.missing:
            self.client._reconnect(s)

    def _wait(self, deadline: float) -> None:
        sockets = self.client._sockets
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
        sock = self.client._sockets[shard]
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
            if self.client._sockets[s].reconnected():
                self._send_unanswered(s)
        if waited < self.next_say:
            return
        self.next_say = waited + _SAY_EVERY
        silent = [self.client.addrs[s] for s in sorted(self.missing)]
        log.warning("Worker %s has waited %.0f s for parameter server(s) %s to answer `%s` "
                    "(a synchronous step also waits for the slowest live worker); it gives "
                    "up after %.0f s (DISTFLOW_REQUEST_TIMEOUT)", self.client.worker_id,
                    waited, ", ".join(silent), self.op, self.budget)

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


class _Heartbeat:
    """Background heartbeats on the thread's own sockets (zmq sockets are not thread-safe)."""

    def __init__(self, addrs: list[str], worker_id: int | None, keys: Any, interval: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(addrs, worker_id, keys, interval),
                                        daemon=True, name="distflow-heartbeat")
        self._thread.start()

    def _run(self, addrs: list[str], worker_id: int | None, keys: Any, interval: float) -> None:
        sockets = [transport.ClientSocket(a, keys) for a in addrs]
        try:
            while not self._stop.wait(interval):
                for sock in sockets:
                    while sock.recv() is not None:
                        pass  # discard earlier acknowledgements
                    sock.send(protocol.encode({"op": "heartbeat", "sender": worker_id,
                                               "req": -1}))
        finally:
            for sock in sockets:
                sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
