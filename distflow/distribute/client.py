"""`PSClient`: a worker's connection to all parameter-server shards.

Every operation sends one message to each shard involved, all before waiting
for any reply, so the shards work in parallel; then it collects the replies
until a deadline, sending again to a silent shard (`exchange.Exchange`; same
request id, so the server never applies it twice). When the time budget is
spent, `PSTimeoutError` names the server, the operation and the seconds waited.

A push is sent as its push plan says (`pushplan.PushPlan`, built once per list
of gradient names: `init` builds the registered variables' one): which tensors,
whole or row ranges of a split variable, go to which shard, with which cached
encoders, in one message or pipelined parts, or an empty push.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from distflow.distribute import protocol, transport
from distflow.distribute.cache import LRU
from distflow.distribute.exchange import (
    REQUEST_TIMEOUT,
    Connections,
    Exchange,
    PSError,
    PSTimeoutError,
    ShardStatus,
)
from distflow.distribute.protocol import Message
from distflow.distribute.pushplan import PushPlan, Variables

__all__ = ["PSClient", "PSError", "PSTimeoutError"]

log = logging.getLogger("distflow.client")


class PSClient:
    """Talks to the parameter-server shards on behalf of one worker.

    Registration (`init`) places the variables on the shards and builds the
    push plan of the registered gradients (`pushplan.PushPlan`: per shard its
    tensors, encoders and pipelining); every push sends what a plan says, over
    the shards' connections (`exchange.Exchange`).

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

    Attributes:
        variables: the registered variables and their pieces on the shards.
        shards: the connections to the shards.
        status: what each shard said of itself (version, mode) in its replies.
    """

    def __init__(self, addrs: Sequence[str], worker_id: int | None = None,
                 timeout: float = 60.0, keys_dir: str | None = None, retries: int = 3,
                 backoff: float = 0.2, split: bool = True, split_bytes: int | None = None,
                 pipeline_bytes: int | None = 4 * 1024 * 1024,
                 partitions: Callable[[str, tuple, np.dtype], int] | None = None):
        _check_arguments(addrs, timeout)
        self.addrs, self.num_shards = list(addrs), len(addrs)
        self.worker_id = worker_id
        self.timeout, self.retries, self.backoff = float(timeout), int(retries), float(backoff)
        self.timeout_setting = REQUEST_TIMEOUT  # what a user raises to wait longer
        keys = transport.client_curve_keys(keys_dir, worker_id or 0) if keys_dir else None
        self.shards = Connections(self.addrs, keys, worker_id)
        self.variables = Variables(len(self.addrs), split, split_bytes, partitions)
        self._pipeline_bytes = pipeline_bytes  # fixed: the plans hold the choice
        self._plans: LRU[tuple[str, ...], PushPlan] = LRU(16)  # gradient names -> plan
        self._req = random.SystemRandom().randrange(1 << 30)
        self._last_push: tuple | None = None  # the last push_pull's messages and request id
        self.status = ShardStatus(len(self.addrs))
        self._heartbeat: _Heartbeat | None = None

    @property
    def versions(self) -> list[int]:
        """Each shard's version from its last reply (0 before any)."""
        return self.status.versions

    @property
    def last_version(self) -> int:
        """The lowest version the shards reported in their last replies."""
        return min(self.status.versions)

    @property
    def last_replies(self) -> list[dict]:
        """The last request's reply headers, one per shard."""
        return self.status.last_replies

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
        self.variables.register(params)
        per_shard = self.variables.by_shard(params)
        versions = {s: {"version": v} for s, v in enumerate(self.versions)} if reseed else None
        replies = _until_chief_initialized(
            lambda: self._request_all("init", per_shard, fields_per_shard=versions,
                                      optimizer=dict(optimizer)), self)
        values = self.variables.collect(replies, list(params), out)
        self.plan(self.variables.names)  # the usual push's plan, built once
        return values

    def pull(self, names: Iterable[str] | None = None,
             out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The current values of `names` (default: every registered variable)."""
        wanted = self.variables.names if names is None else list(names)
        keys = self.variables.keys_by_shard(wanted)
        shards = [s for s in range(self.num_shards) if keys[s]]
        replies = self._request_all("pull", shards=shards,
                                    fields_per_shard={s: {"names": keys[s]} for s in shards})
        return self.variables.collect(replies, wanted, out)

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
        return self.variables.collect(replies, self.variables.names, out)

    def repeat_push_pull(self, out: Mapping[str, np.ndarray] | None = None
                         ) -> dict[str, np.ndarray]:
        """Sends the last `push_pull` again, with its request id, and collects the values.

        A server that applied it answers as to a retry (no second update); one that
        refused it (a restarted, re-seeded server) applies it now.
        """
        if self._last_push is None:
            raise RuntimeError("No `push_pull` was sent yet: nothing to repeat.")
        messages, req = self._last_push
        replies = self._exchange("push_pull", messages, req)
        return self.variables.collect(replies, self.variables.names, out)

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
            self._heartbeat = _Heartbeat(self.addrs, self.worker_id, self.shards.keys,
                                         interval)

    def close(self, leave: bool = True) -> None:
        """Closes the sockets; with `leave`, first tells sync servers not to wait for us."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if leave and self.worker_id is not None and not self.shards.closed:
            try:
                self._request_all("bye", budget=min(self.timeout, 2.0), retries=0)
            except (PSError, PSTimeoutError) as exc:
                log.debug("bye not acknowledged: %s", exc)
        self.shards.close()

    def __enter__(self) -> PSClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ push plans

    def plan(self, names: Iterable[str]) -> PushPlan:
        """The push plan of gradients named `names`, in this order (built once, cached).

        `init` builds the plan of the registered variables; another list of names
        gets its own on first use. A shard's mode, learned from its replies, fixes
        whether pushes to it are pipelined: when a mode changes the plans are
        built again.

        Raises:
            ValueError: a name is not registered (call `init` with it first).
        """
        key = tuple(names)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans.put(key, PushPlan.build(self.variables, key, self.status.modes,
                                                       self._pipeline_bytes))
        return plan

    def _push(self, op: str, grads: Mapping[str, np.ndarray], version: int | None,
              position: Mapping[str, Any] | None, learning_rate: Any = None) -> list[Message]:
        plan = self.plan(grads)
        values = plan.values(grads, self.variables)
        # Every shard gets a push, even an empty one, so sync steps complete everywhere.
        base = {"op": op, "sender": self.worker_id, "req": self._next_req(),
                **_step_fields(position, learning_rate)}
        headers = [{**base, "step": step} for step in self.status.steps(version)]
        return self._exchange(op, plan.messages(headers, values), self._req)

    # ------------------------------------------------------------ requests

    def _next_req(self) -> int:
        if self.shards.closed:
            raise RuntimeError("This PSClient is closed; create a new one.")
        self._req = (self._req + 1) % (1 << 31)
        return self._req

    def _request_all(self, op: str, per_shard: list[list] | None = None,
                     shards: list[int] | None = None,
                     fields_per_shard: dict[int, dict] | None = None,
                     budget: float | None = None, retries: int | None = None,
                     **fields: Any) -> list[Message]:
        """Sends `op` (one message per shard of `shards`, default all) and collects."""
        req = self._next_req()
        targets = range(self.num_shards) if shards is None else shards
        messages = {s: [protocol.encode(
            {"op": op, "sender": self.worker_id, "req": req, **fields,
             **(fields_per_shard or {}).get(s, {})}, per_shard[s] if per_shard else [])]
            for s in targets}
        return self._exchange(op, messages, req, budget, retries)

    def _exchange(self, op: str, messages: dict[int, list[list]], req: int,
                  budget: float | None = None, retries: int | None = None) -> list[Message]:
        """Sends request `req` (the messages of each shard), collects the replies and
        records each shard's version and mode; returns the replies in shard order."""
        if op == "push_pull":
            self._last_push = (messages, req)  # for `repeat_push_pull`
        replies = Exchange(self.shards, op, messages, req, self.backoff,
                           self.timeout_setting).run(
            self.timeout if budget is None else budget,
            self.retries if retries is None else retries)
        if self.status.record(replies):
            self._plans.clear()  # whether pushes to a shard are pipelined depends on its mode
        return [m for got in replies.values() for m in got]


def _step_fields(position: Mapping[str, Any] | None, learning_rate: Any) -> dict:
    """A push's optional header fields (the servers validate the learning rate)."""
    fields: dict[str, Any] = {"position": dict(position)} if position else {}
    if learning_rate is not None:
        fields["learning_rate"] = (learning_rate.item() if isinstance(learning_rate, np.generic)
                                   else learning_rate)
    return fields


def _check_arguments(addrs: Any, timeout: Any) -> None:
    if isinstance(addrs, str) or not addrs:
        raise ValueError(f"`addrs` must be a non-empty list of tcp://host:port. "
                         f"Received: addrs={addrs!r}")
    if not timeout > 0:
        raise ValueError(f"`timeout` must be a positive number of seconds. "
                         f"Received: timeout={timeout!r}")


def _until_chief_initialized(request: Callable[[], list[Message]],
                             client: PSClient) -> list[Message]:
    """`request()`, asked again while a server answers `awaiting_chief` (bounded by
    the client's timeout; the error names the setting it came from)."""
    timeout, worker_id = client.timeout, client.worker_id
    start, pause, said = time.monotonic(), 0.02, 0.0
    while True:
        try:
            return request()
        except PSError as error:
            if error.reason != "awaiting_chief":
                raise
            waited = time.monotonic() - start
            if waited > timeout:
                raise TimeoutError(
                    f"Worker {worker_id} waited {waited:.0f} s for the chief (worker "
                    f"0) to initialize the parameters on {error.address}. Is the chief "
                    f"running and reaching `fit` (or its first `apply_gradients`)? Raise "
                    f"{client.timeout_setting} (now {timeout:.0f} s) if it "
                    f"legitimately starts that much later.") from None
            if waited - said >= 5.0:
                said = waited
                log.warning("Worker %d waits for the chief (worker 0) to initialize the "
                            "parameters on %s (%.0f s so far)", worker_id,
                            error.address, waited)
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


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
