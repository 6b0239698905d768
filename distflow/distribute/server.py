"""The parameter server: one shard of the parameters and their optimizer state.

`ParameterServer` answers the requests of docs/protocol.md on a ROUTER socket in
a single poll loop that never blocks on one client. Updates go through
`distflow.optimizers.rules` only, so a run through the server applies the same
arithmetic as a local optimizer.

- Sync mode (MirroredStrategy): the gradients of one step are summed into a
  preallocated buffer as they arrive; when every live worker has pushed, the
  sum is averaged, applied once, the version bumps and every waiting push_pull
  gets the same new parameters. A worker silent for `heartbeat_timeout` is
  declared dead and the step completes with the live ones; a worker that
  registers during a step joins at the next one.
- Async mode (ParameterServerStrategy): each gradient is applied on arrival;
  staleness = server version - the version the gradient was computed on. With
  `max_staleness`, a gradient staler than the bound is dropped (not applied,
  reported to the worker, which continues from the current parameters).

Run as a process: `python -m distflow.distribute.server` reads the launcher's
`DISTFLOW_*` environment (see `config_from_env`) and exits 0 on SIGTERM after a
final checkpoint.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distflow.distribute import checkpoint, protocol, transport
from distflow.distribute.cluster import env_number
from distflow.distribute.collective import KINDS, Collectives
from distflow.distribute.packed import PackedStore
from distflow.distribute.protocol import Message, ProtocolError

log = logging.getLogger("distflow.ps")

MODES = {"sync": "sync", "mirrored": "sync", "async": "async"}
NONFINITE_POLICIES = ("reject", "skip")
_HISTOGRAM_CAP = 64
_KEPT_DECISIONS = 64  # the chief's stop decisions remembered (most recent epochs)
_UPDATE_CHUNK = 64 * 1024  # elements per rule call on large tensors (fits the L2 cache)
_PAUSE_SECONDS = 1.0  # a loop iteration longer than this: the server was not listening
# The headers of a plain push (`_plain_push`): no `part` or `learning_rate`.
_PLAIN_PUSH_KEYS = (frozenset({"v", "op", "sender", "req", "step", "tensors"}),
                    frozenset({"v", "op", "sender", "req", "step", "tensors", "position"}))
_PUSH_OPS = frozenset({"push", "push_pull"})


@dataclass
class ServerConfig:
    """Settings of one parameter server.

    Attributes:
        address: `tcp://host:port` to bind; port 0 picks a free port.
        shard: this server's shard id (names its checkpoint subdirectory).
        mode: "sync" (alias "mirrored") or "async".
        num_workers: sync: workers expected before the first steps complete
            (one that has not registered yet is waited for at most `startup_timeout`).
        max_staleness: async: drop gradients staler than this; None: no bound.
        heartbeat_timeout: seconds of silence after which a worker is dead.
        startup_timeout: seconds from the server's start that a sync step waits for
            expected workers that have not registered yet (pods scheduled late);
            None: `heartbeat_timeout`. The launcher sets it to --rendezvous-timeout.
        checkpoint_dir: where checkpoints go (`<dir>/ps-<shard>/`); None: none.
        checkpoint_every: checkpoint every this many versions (0: only on
            shutdown and on request).
        keep_checkpoints: how many checkpoint files to keep.
        keys_dir: CURVE key directory (encryption + allow-list); None: plain.
        nonfinite: "reject" (error reply) or "skip" (accept, do not apply)
            for gradients containing NaN or inf.
        max_tensors: most tensors in one message.
        max_message_bytes: largest message accepted (larger: error reply).
        max_frame_bytes: largest single frame; a peer sending more is
            disconnected by libzmq before the frame is buffered.
        max_reply_bytes: largest reply a pull may ask for (larger: error reply).
        max_queued_replies: replies queued in libzmq for one peer (send
            high-water mark); more wait in the server (`max_queued_bytes`).
        max_queued_bytes: bytes of replies waiting in the server for one peer
            whose libzmq queue is full; more are dropped and counted.
        stats_interval: seconds between stats lines in the log (0: never).
        run_id: the launcher's run id, written into checkpoints.
        ignore_corrupt_checkpoints: start empty when checkpoints exist but none
            verifies (default: refuse to start, so they are not overwritten).
        poll_ms: poll timeout of the loop (liveness checks run this often).
    """

    address: str = "tcp://127.0.0.1:0"
    shard: int = 0
    mode: str = "sync"
    num_workers: int = 1
    max_staleness: int | None = None
    heartbeat_timeout: float = 30.0
    startup_timeout: float | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    keys_dir: str | None = None
    nonfinite: str = "reject"
    max_tensors: int = protocol.DEFAULT_MAX_TENSORS
    max_message_bytes: int = 4 * 1024**3
    max_frame_bytes: int = 2 * protocol.FRAME_BYTES
    max_reply_bytes: int = 4 * 1024**3
    max_queued_replies: int = 16
    max_queued_bytes: int = 256 * 1024**2
    run_id: str | None = None
    ignore_corrupt_checkpoints: bool = False
    stats_interval: float = 60.0
    poll_ms: int = 50

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"`mode` must be one of {sorted(MODES)}. Received: mode={self.mode!r}")
        self.mode = MODES[self.mode]
        if self.nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"`nonfinite` must be one of {NONFINITE_POLICIES}. "
                             f"Received: nonfinite={self.nonfinite!r}")
        if not self.heartbeat_timeout > 0:
            raise ValueError(f"`heartbeat_timeout` must be a positive number of seconds. "
                             f"Received: heartbeat_timeout={self.heartbeat_timeout!r}")
        if self.max_staleness is not None and self.max_staleness < 0:
            raise ValueError(f"`max_staleness` must be None or an int >= 0. "
                             f"Received: max_staleness={self.max_staleness!r}")
        for name, least in (("num_workers", 1), ("checkpoint_every", 0), ("shard", 0),
                            ("keep_checkpoints", 1), ("max_tensors", 1),
                            ("max_message_bytes", 1), ("poll_ms", 1),
                            ("max_reply_bytes", 1), ("max_queued_replies", 1),
                            ("max_queued_bytes", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"`{name}` must be an int >= {least}. "
                                 f"Received: {name}={value!r}")


@dataclass
class _Worker:
    wid: int
    last_seen: float
    last_step: int = -1
    alive: bool = True
    left: bool = False
    pending: tuple | None = None  # (identity, req, op) waiting for the sync step
    done_req: Any = None
    parts: _Parts | None = None  # the latest pipelined request (async)
    last_epoch: int | None = None  # the last epoch it reported ended (`epoch_end`)
    finished: bool = False  # it said its `fit` is over (`done`); a push clears it


@dataclass
class _Parts:
    """The parts of one pipelined push (async mode): one step sent as several messages."""

    req: Any
    count: int
    done: set = field(default_factory=set)  # part indices answered
    names: set = field(default_factory=set)  # parameters the parts carried
    applied: bool = False  # a part was applied: the step bumps the version once
    bumped: bool = False


@dataclass
class _Stats:
    started: float = field(default_factory=time.monotonic)
    requests: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    staleness: Counter = field(default_factory=Counter)
    pushes: int = 0
    steps: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    stale_dropped: int = 0
    skipped_nonfinite: int = 0
    duplicates: int = 0
    cow_copies: int = 0
    last_checkpoint: dict | None = None
    checkpoint_failures: int = 0
    last_checkpoint_error: dict | None = None


class _Terminated(BaseException):
    """SIGTERM/SIGINT arrived while the loop was only reading a request (`main`)."""


class _Reject(Exception):
    """A request refused after decoding; becomes an error reply."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class ParameterServer:
    """One parameter-server shard.

    Args:
        config: a `ServerConfig`; keyword arguments override its fields.

    Example:
        >>> server = ParameterServer(mode="async")
        >>> server.start()            # serves in a background thread
        >>> server.address            # 'tcp://127.0.0.1:43121'
        >>> server.stop()
    """

    def __init__(self, config: ServerConfig | None = None, **overrides: Any):
        base = config or ServerConfig()
        self.config = ServerConfig(**{**base.__dict__, **overrides})
        self.params: dict[str, np.ndarray] = {}
        self.slots: dict[str, dict[str, np.ndarray]] = {}
        self.optimizer: dict | None = None
        self.version = 0
        self.position: dict = {}
        self._restored_position: dict | None = None  # the position a checkpoint restored
        self.decisions: dict[int, bool] = {}  # epoch -> the chief decided to stop after it
        self.workers: dict[int, _Worker] = {}
        self.stats = _Stats()
        self._rule = self._schedule = None
        self._lr_changed = False  # since the last update: checkpoint it at once
        # Layouts of spec lists that match the parameters -> whether they fit the packed
        # store (keyed by the layout object itself: identity, held alive by the dict).
        self._checked: dict[Any, bool] = {}
        self._store = PackedStore()  # the small parameters in one buffer (distribute/packed.py)
        self._all_encoder: protocol.Encoder | None = None  # replies with every parameter
        self._zero_copy: list[str] = []  # parameters such replies send without copying
        self._store_is_pack = False  # the packed store is such replies' pack frame
        self._round = _Round()
        self._inflight: dict[str, list] = {}  # param name -> replies still sending it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_stats_log = time.monotonic()
        # Header, pack frame, one frame per tensor, plus the extra frames of big tensors.
        self._max_frames = (2 + self.config.max_tensors
                            + self.config.max_message_bytes // protocol.FRAME_BYTES)
        self._gave_up = False  # stopped waiting for workers that never registered
        self._collectives = Collectives()  # strategy.reduce / gather (distribute/collective.py)
        self._seeded_version = 0  # the chief's version this server was re-seeded at (init)
        self._joined: tuple | None = None  # logged once the request that (re)joined passes
        self._reading = False  # reading a request (`_on_signal` may interrupt it)
        self._rate_limited = transport.RateLimitedLog(log)  # one line per reason per 10 s
        self._last_tick = time.monotonic()  # the loop's last housekeeping (`_forgive_pause`)
        self._restore()
        self.socket = transport.ServerSocket(self.config.address, self.config.keys_dir,
                                             self.config.max_frame_bytes,
                                             self.config.max_queued_replies,
                                             self.config.max_queued_bytes)
        log.info("Parameter server %d (%s) listening on %s%s", self.config.shard,
                 self.config.mode, self.address, " with CURVE" if self.config.keys_dir else "")

    @property
    def address(self) -> str:
        """The bound address, `tcp://host:port`."""
        return self.socket.address

    @property
    def initialized(self) -> bool:
        return self.optimizer is not None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> threading.Thread:
        """Serves in a daemon thread; returns it."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name=f"distflow-ps-{self.config.shard}")
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the loop to finish (final checkpoint) and waits for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"Parameter server {self.address} did not stop within "
                                   f"{timeout} s.")

    def serve_forever(self) -> None:
        """The event loop: runs until `stop()`, a shutdown request or SIGTERM (in main)."""
        try:
            # The finiteness check multiplies NaN and inf by 0 (`_finite`): no "invalid"
            # warnings (overflow still warns). Set once here, not per request
            # (thread-local, undone when the loop ends).
            with np.errstate(invalid="ignore"):
                while not self._stop.is_set():
                    if self.socket.poll(self.config.poll_ms):
                        self._drain()
                    self._housekeeping()
        finally:
            self._final_checkpoint()
            self.socket.close()
            log.info("Parameter server %d stopped at version %d", self.config.shard,
                     self.version)

    def _drain(self) -> None:
        # Bounded so liveness checks still run under a flood of requests.
        for i in range(256):
            received = self.socket.recv(self._max_frames, polled=i == 0)
            if received is None:
                return
            self._handle(*received)

    def _housekeeping(self) -> None:
        self.socket.flush()
        now = time.monotonic()
        self._forgive_pause(now)
        self._check_liveness(now)
        if self.config.mode == "sync":
            self._maybe_complete_round(now)
        self._finish_collectives()
        interval = self.config.stats_interval
        if interval and now - self._last_stats_log >= interval:
            self._last_stats_log = now
            log.info("stats %s", _summary(self.stats_dict()))

    # ------------------------------------------------------------ dispatch

    def _handle(self, identity: bytes, frames: list, dropped: int = 0) -> None:
        size = protocol.message_bytes(frames)
        self.stats.bytes_in += size
        req = None
        try:
            self._reading = True  # a signal may end the loop here: nothing changed yet
            if dropped:
                raise _Reject("too_many_frames", f"The message has {len(frames) + dropped} "
                              f"frames; this server accepts at most {self._max_frames} "
                              f"(header, pack frame, then one frame per 8 MiB of each larger "
                              f"tensor: see docs/protocol.md).")
            if size > self.config.max_message_bytes:
                raise _Reject("message_too_large", f"The message has {size} bytes; this "
                              f"server accepts at most {self.config.max_message_bytes}.")
            msg = protocol.decode(frames, self.config.max_tensors,
                                  max_bytes=self.config.max_message_bytes)
            req = msg.req
            self._reading = False
            self.stats.requests[msg.op] += 1
            if self._plain_push(identity, msg):
                return
            self._dispatch(identity, msg)
        except ProtocolError as exc:
            self._reject(identity, exc.req, exc.reason, str(exc))
        except _Reject as exc:
            self._reject(identity, req, exc.reason, str(exc))
        except Exception as exc:  # a bug must not take the shard down
            log.exception("Internal error while handling a request")
            self._reject(identity, req, "internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            self._reading = False

    def _dispatch(self, identity: bytes, msg: Message) -> None:
        """Runs the op's handler; a refused request leaves the membership as it was
        (only a request that passes validation registers or revives its sender)."""
        undo = self._membership_undo(msg.sender)
        worker = self._touch(msg)
        try:
            getattr(self, f"_op_{msg.op}")(identity, msg, worker)
        except BaseException:
            undo()
            raise
        if self._joined is not None:
            log.info(*self._joined)
            self._joined = None

    def _membership_undo(self, wid: Any) -> Any:
        """A function putting worker `wid`'s membership back as it is now."""
        if not isinstance(wid, int) or wid < 0:
            return lambda: None
        worker, required = self.workers.get(wid), wid in self._round.required
        saved = None if worker is None else (worker.alive, worker.left, worker.last_seen)

        def undo() -> None:
            self._joined = None
            if worker is None:
                self.workers.pop(wid, None)
            else:
                worker.alive, worker.left, worker.last_seen = saved
            (self._round.required.add if required else self._round.required.discard)(wid)
        return undo

    def _reject(self, identity: bytes, req: Any, reason: str, message: str) -> None:
        self.stats.rejected[reason] += 1
        self._rate_limited.warning(reason, "Refused a request (%s, %d so far): %.300s",
                                   reason, self.stats.rejected[reason], message)
        self._send(identity, protocol.error_frames(req, reason, message))

    def _send(self, identity: bytes, frames: list, track: Any = None) -> None:
        """Sends frames; `track`: the parameter names whose buffers they share."""
        self.stats.bytes_out += protocol.message_bytes(frames)
        tracker = self.socket.send(identity, frames, track=bool(track))
        if track and tracker is not None:
            for name in track:
                self._inflight.setdefault(name, []).append(tracker)

    def _reply(self, identity: bytes, msg: Message, with_params: bool = False,
               names: list[str] | None = None, **fields: Any) -> None:
        header = {"op": "ok", "req": msg.req, "version": self.version, **fields}
        if with_params and names is None:
            self._send(identity, self._encode_all(header), track=self._zero_copy)
            return
        tensors, shared = self._sendable(self._tensors(names) if with_params else [])
        self._send(identity, protocol.encode(header, tensors), track=shared)

    def _sendable(self, tensors: list[tuple[str, np.ndarray]]
                  ) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
        """A reply's tensors, and the parameters it will send zero-copy (framed, not
        packed, and not copied by the transport), which updates must then not write
        in place (`_copy_on_write`).

        A packed-store parameter that this message frames (another subset or order
        packs differently) goes as a copy instead: whole-store updates write in place
        without looking for sends in flight, so no send may share the store.
        """
        packs = protocol.pack_flags(a.nbytes for _, a in tensors)
        sendable, shared = [], []
        for (name, array), packed in zip(tensors, packs):
            if not packed and _sent_zero_copy(array):
                if name in self._store.held:
                    array = array.copy()
                else:
                    shared.append(name)
            sendable.append((name, array))
        return sendable, shared

    def _encode_all(self, header: dict[str, Any]) -> list:
        """A reply carrying every parameter: a cached encoder, and the packed store
        as its pack frame when the store holds exactly the packed parameters."""
        if self._all_encoder is None:
            self._all_encoder = protocol.Encoder(self._tensors(None))
            # (The store holds packed parameters of this very reply: never among these.)
            self._zero_copy = [n for n in self._all_encoder.layout.unpacked
                               if _sent_zero_copy(self.params[n])]
            self._store_is_pack = bool(self._store.names) and \
                self._store.names == self._all_encoder.layout.packed
        pack = self._store.frame(transport.COPY_THRESHOLD) if self._store_is_pack else None
        return self._all_encoder.encode(header, list(self.params.values()), pack=pack)

    def _tensors(self, names: list[str] | None) -> list[tuple[str, np.ndarray]]:
        keys = self.params if names is None else names
        return [(name, self.params[name]) for name in keys]

    def _touch(self, msg: Message) -> _Worker | None:
        wid = msg.sender
        if wid is None or wid < 0:
            return None
        now = time.monotonic()
        worker = self.workers.get(wid)
        if worker is None:
            if self._round.started and wid in self._never_registered():
                self._round.required.add(wid)  # an expected worker: it belongs to this step
            worker = self.workers[wid] = _Worker(wid, now)
            self._joined = ("Worker %d registered (version %d)", wid, self.version)
        elif not worker.alive or worker.left:
            self._joined = ("Worker %d rejoined (version %d); it joins at the next step",
                            wid, self.version)
            worker.alive, worker.left = True, False
            self._round.required.discard(wid)
        worker.last_seen = now
        return worker

    # ------------------------------------------------------------ simple ops

    def _op_hello(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        self._reply(identity, msg, shard=self.config.shard, mode=self.config.mode,
                    initialized=self.initialized, position=self.position,
                    num_workers=self.config.num_workers, params=list(self.params),
                    learning_rate=self._learning_rate_source(),
                    rejoined=worker is not None and worker.last_step >= 0,
                    restored_position=self._restored_position)

    def _op_heartbeat(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        self._reply(identity, msg)

    def _op_bye(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        if worker is not None:
            worker.left = True
            self._round.required.discard(worker.wid)
            log.info("Worker %d left (last step %d)", worker.wid, worker.last_step)
        self._reply(identity, msg)

    def _op_epoch_end(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        """The chief records its stop decision for an epoch; every worker can read it."""
        epoch, stop = msg.header.get("epoch"), msg.header.get("stop")
        if epoch is None:
            raise _Reject("bad_field", "`epoch_end` needs `epoch` (an int).")
        if stop is not None:
            if not isinstance(stop, bool) or msg.sender != 0:
                raise _Reject("bad_field", f"`stop` is a bool sent by the chief (sender 0) "
                              f"only. Received: stop={stop!r:.50} from sender {msg.sender!r}")
            self.decisions[epoch] = stop
            if isinstance(epoch, int) and not isinstance(epoch, bool):
                # The chief finished this epoch: a run resumed from the checkpoint
                # starts at the next one (pushes record the epoch in progress).
                self.position = {**self.position, "epoch": epoch + 1, "step": 0}
            for old in sorted(self.decisions)[:-_KEPT_DECISIONS]:
                del self.decisions[old]  # bounded: only recent epochs are ever asked for
        if worker is not None:
            worker.last_epoch = epoch
            worker.finished = msg.header.get("done") is True
        stops = [e for e, s in self.decisions.items() if s]
        chief = self.workers.get(0)
        self._reply(identity, msg, epoch=epoch, decided=epoch in self.decisions,
                    stop=self.decisions.get(epoch), stop_epoch=min(stops, default=None),
                    chief_alive=chief is not None and chief.alive and not chief.left,
                    behind=self._behind(epoch))

    def _behind(self, epoch: Any) -> list[int]:
        """Live workers still training before the end of `epoch` (async end of `fit`),
        and expected ones that have not registered yet (for a heartbeat timeout after
        the server started: a late worker trains its epochs too)."""
        if not isinstance(epoch, int):
            return []
        behind = {w.wid for w in self.workers.values()
                  if w.alive and not w.left and not w.finished
                  and (w.last_epoch is None or w.last_epoch < epoch)}
        if time.monotonic() - self.stats.started < self._startup_timeout():
            behind |= set(range(self.config.num_workers)) - set(self.workers)
        return sorted(behind)

    def _op_stats(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        self._reply(identity, msg, stats=self.stats_dict())

    def _op_save(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        self._require_initialized()
        if not self.config.checkpoint_dir:
            raise _Reject("no_checkpoint_dir", "This server has no checkpoint directory; "
                          "start it with DISTFLOW_CHECKPOINT_DIR (launcher --checkpoint-dir).")
        self._update_position(msg)
        try:
            path = self.save_checkpoint()
        except Exception as exc:  # the request changed nothing else
            self._checkpoint_failed(exc)
            raise _Reject("checkpoint_failed", f"The checkpoint could not be written: "
                          f"{type(exc).__name__}: {exc}. The previous one is intact.") from None
        self._reply(identity, msg, path=str(path))

    def _op_shutdown(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        self._update_position(msg)
        self._reply(identity, msg)
        log.info("Shutdown requested by worker %s", msg.sender)
        self._stop.set()

    def _op_pull(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        self._require_initialized()
        names = msg.header.get("names")
        if names is not None:
            self._check_names(names)
        self._check_reply_size(names)
        self._reply(identity, msg, with_params=True, names=names)

    def _op_collective(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        """One worker's value for a cross-worker sum or gather (`strategy.reduce`)."""
        key, kind = msg.header.get("key"), msg.header.get("kind")
        if worker is None or isinstance(key, bool) or not isinstance(key, int) or key < 0 \
                or kind not in KINDS or msg.names != ["value"]:
            raise _Reject("bad_field", f"`collective` takes a worker's (sender >= 0) key (an "
                          f"int >= 0), a kind in {KINDS} and one tensor named 'value'. "
                          f"Received: key={key!r:.50}, kind={kind!r:.50}, "
                          f"tensors={msg.names!r:.100}")
        try:
            self._collectives.offer(key, kind, worker.wid, np.array(msg.tensor("value")),
                                    (identity, msg))
        except ValueError as exc:
            raise _Reject("bad_collective", str(exc)) from None
        self._finish_collectives()

    def _finish_collectives(self) -> None:
        """Answers the collectives every live (and every expected) worker has joined."""
        if not self._collectives:
            return  # the usual case, checked at every housekeeping
        waiting_for = self._live_ids() | self._never_registered()
        for waiters, result in self._collectives.complete(waiting_for):
            for identity, msg in waiters:
                header = {"op": "ok", "req": msg.req, "version": self.version}
                self._send(identity, protocol.encode(header, [("value", result)]))

    def _check_names(self, names: Any) -> None:
        """A pull's `names`: a list of at most `max_tensors` distinct known names."""
        if not isinstance(names, list):
            raise _Reject("bad_field", f"`names` must be a list of parameter names. "
                          f"Received: {names!r:.100}")
        if len(names) > self.config.max_tensors:
            raise _Reject("too_many_tensors", f"A pull may name at most "
                          f"{self.config.max_tensors} parameters. Received: {len(names)}")
        for name in names:
            if not isinstance(name, str):
                raise _Reject("bad_name", f"`names` must hold parameter names (strings). "
                              f"Received: {name!r:.100}")
        if len(set(names)) != len(names):
            twice = next(n for i, n in enumerate(names) if n in names[:i])
            raise _Reject("duplicate_name", f"`names` names {twice!r:.100} more than once; "
                          f"name each parameter once.")
        for name in names:
            self._known(name)

    def _check_reply_size(self, names: list[str] | None) -> None:
        """Refuses a reply that would carry more than `max_reply_bytes`."""
        keys = self.params if names is None else names
        size = sum(self.params[n].nbytes for n in keys)
        if size > self.config.max_reply_bytes:
            raise _Reject("reply_too_large", f"The reply would carry {size} bytes; this "
                          f"server sends at most {self.config.max_reply_bytes} in one reply "
                          f"(max_reply_bytes). Pull fewer parameters per request.")

    def _op_init(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        config = msg.header.get("optimizer")
        if self.optimizer is None:
            rule, schedule = _build_optimizer(config)
        for name in msg.names:
            if name in self.params:
                self._check_tensor(msg, name)
        self._require_chief_for_new(msg)
        seeded = _seed_version(msg) if self.optimizer is None else None
        if self.optimizer is None:
            self.optimizer, self._rule, self._schedule = config, rule, schedule
            log.info("Initialized by worker %s with optimizer %s", msg.sender, config["name"])
        if seeded:
            # Re-seeded after a restart without a checkpoint: the chief's parameters are at
            # its last version of this shard; the optimizer's slots start from zero.
            self.version = self._seeded_version = seeded
            log.warning("Re-seeded by worker %s at version %d (optimizer slots reset)",
                        msg.sender, seeded)
        added = [n for n in msg.names if n not in self.params]
        for name in added:
            self.params[name] = np.array(msg.tensor(name), copy=True)
            self.slots[name] = self._rule.init(self.params[name], self.optimizer.get("hp"))
        if added:
            self._rebuild_store()
        self._round.reset_buffers(self.params)
        self._reply(identity, msg, with_params=True, names=msg.names, added=added,
                    learning_rate=self._learning_rate_source(), mode=self.config.mode)

    def _require_chief_for_new(self, msg: Message) -> None:
        """Only the chief (or an anonymous tool, sender < 0) sets parameters not stored yet.

        The chief's initial or loaded weights and its optimizer win whatever order the
        workers register in; another worker is told to wait and ask again.
        """
        if isinstance(msg.sender, int) and msg.sender > 0 and \
                any(name not in self.params for name in msg.names):
            raise _Reject("awaiting_chief", f"Shard {self.config.shard} has not been "
                          f"initialized by the chief (worker 0) yet; worker {msg.sender} "
                          f"starts from the chief's values once it has.")

    def _update_position(self, msg: Message) -> None:
        self.position = _position(msg) or self.position

    # ------------------------------------------------------------ validation

    def _require_initialized(self) -> None:
        if not self.initialized:
            raise _Reject("not_initialized", "The parameters are not initialized yet: "
                          "the chief must send `init` first.")

    def _known(self, name: Any) -> np.ndarray:
        if name not in self.params:
            raise _Reject("unknown_parameter", f"Unknown parameter {name!r:.100} on shard "
                          f"{self.config.shard}. Known: {sorted(self.params)[:20]}")
        return self.params[name]

    def _check_tensor(self, msg: Message, name: str) -> None:
        param = self._known(name)
        dtype, shape = msg.spec(name)
        if dtype != protocol.dtype_name(param.dtype):
            raise _Reject("dtype_mismatch", f"Parameter {name!r} is {param.dtype.name}. "
                          f"Received: dtype={dtype}")
        if shape != param.shape:
            raise _Reject("shape_mismatch", f"Parameter {name!r} has shape {param.shape}. "
                          f"Received: shape={shape}")

    def _remember_checked(self, layout: Any) -> None:
        """Spec lists already matched against the parameters skip that check next time."""
        if len(self._checked) >= 256:
            self._checked.clear()
        self._checked[layout] = self._store.matches(layout.packed)

    def _check_gradients(self, msg: Message) -> bool:
        """Validates a push; returns False when it must be skipped (non-finite, skip policy)."""
        self._require_initialized()
        if msg.layout not in self._checked:
            for name in msg.names:
                self._check_tensor(msg, name)
            self._remember_checked(msg.layout)
        if _all_finite(msg):
            return True
        bad = [n for n in msg.names if not _finite(msg.pieces(n))]  # name the culprits
        if not bad:
            return True  # only the pack frame's padding was not finite
        if self.config.nonfinite == "reject":
            raise _Reject("non_finite", f"Gradient of {bad[0]!r} contains NaN or inf "
                          f"({len(bad)} tensor(s) affected); nothing was applied.")
        return False

    # ------------------------------------------------------------ push

    def _op_push(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        self._push(identity, msg, worker, with_params=False)

    def _op_push_pull(self, identity: bytes, msg: Message, worker: _Worker | None) -> None:
        self._push(identity, msg, worker, with_params=True)

    def _plain_push(self, identity: bytes, msg: Message) -> bool:
        """Async training's steady state in one pass; False, having changed nothing, otherwise.

        A plain push or push_pull (no `part` or `learning_rate`) from a live
        worker, with a spec list already checked against the parameters, all
        finite, and no staleness bound: `_push` would answer it the same way
        through a dozen checks that cannot fail here (about a sixth of the
        server's CPU per 64 KB round trip). Anything else, a non-finite gradient
        included, goes the general way.
        """
        worker = self._plain_pusher(msg)
        if worker is None:
            return False
        if not _all_finite(msg):
            return False  # the general path refuses or skips it, naming the tensor
        self._update_position(msg)
        step = msg.header["step"]
        staleness = max(0, self.version - step)
        self.stats.staleness[min(staleness, _HISTOGRAM_CAP)] += 1
        self.stats.pushes += 1
        worker.last_seen, worker.last_step, worker.finished = time.monotonic(), step, False
        self._apply(*self._gradients(msg))
        worker.done_req = msg.req
        self._reply(identity, msg, with_params=msg.op == "push_pull", staleness=staleness,
                    dropped=False, skipped=False)
        return True

    def _plain_pusher(self, msg: Message) -> _Worker | None:
        """The sender of `msg` if `_plain_push` can take it, else None."""
        if self.config.mode != "async" or self.config.max_staleness is not None \
                or msg.op not in _PUSH_OPS or msg.header.keys() not in _PLAIN_PUSH_KEYS:
            return None
        worker = self.workers.get(msg.sender)
        if worker is None or not worker.alive or worker.left or worker.parts is not None \
                or worker.pending is not None or msg.req == worker.done_req:
            return None
        return worker if msg.layout in self._checked else None  # a spec list checked before

    def _push(self, identity: bytes, msg: Message, worker: _Worker | None,
              with_params: bool) -> None:
        # Validated before a retry is recognised: a malformed push naming a worker must
        # not take over the reply that worker waits for.
        part = self._part_field(msg, worker)
        learning_rate = _learning_rate_field(msg)
        usable = self._check_gradients(msg)
        if worker is not None and self._is_duplicate(identity, msg, worker, with_params, part):
            return
        if not usable:
            self.stats.skipped_nonfinite += 1
        if self.config.mode != "async" and msg.sender != 0 and self._chief_finished() and \
                self._chief_gone():
            raise _Reject("run_finished", "The chief's fit is over and it has left: this run "
                          "trains no further step. The worker stops here.")
        if self.config.mode == "async":
            self._update_position(msg)
        else:  # recorded when the step is applied: a checkpoint never runs ahead of it
            self._round.position = _position(msg) or self._round.position
        self.stats.pushes += part is None or part[0] == 0  # a pipelined step counts once
        if worker is not None:
            worker.last_step = msg.header.get("step", worker.last_step)
            worker.finished = False  # training (again)
        if self.config.mode == "async":
            if learning_rate is not None:  # async: the latest value received wins
                self._set_learning_rate(learning_rate, msg.sender)
            self._push_async(identity, msg, worker, usable, with_params, part)
        else:
            if learning_rate is not None:
                self._round.offer_learning_rate(msg.sender, learning_rate)
            self._push_sync(identity, msg, worker, usable, with_params)

    def _part_field(self, msg: Message, worker: _Worker | None) -> tuple[int, int] | None:
        """The optional `part: [index, count]` of a pipelined push, validated."""
        value = msg.header.get("part")
        if value is None:
            return None
        if self.config.mode != "async" or worker is None:
            raise _Reject("bad_field", "`part` (a pipelined push) is accepted by async servers "
                          "only, from a worker (sender >= 0). Send the step as one message.")
        if not (isinstance(value, list) and len(value) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value)
                and 0 <= value[0] < value[1] <= self.config.max_tensors):
            raise _Reject("bad_field", f"`part` must be [index, count] with 0 <= index < count "
                          f"<= {self.config.max_tensors}. Received: part={value!r:.100}")
        return value[0], value[1]

    def _is_duplicate(self, identity: bytes, msg: Message, worker: _Worker,
                      with_params: bool, part: tuple[int, int] | None = None) -> bool:
        """Retries reuse their request id: never apply the same request twice."""
        if part is not None:
            parts = worker.parts
            if parts is None or parts.req != msg.req or part[0] not in parts.done:
                return False
            self.stats.duplicates += 1
            self._reply(identity, msg, with_params=with_params, duplicate=True, part=list(part),
                        names=self._part_reply_names(msg, parts))
            return True
        if worker.pending is not None:
            old_identity, old_req, _ = worker.pending
            worker.pending = (identity, msg.req, "push_pull" if with_params else "push")
            if old_req != msg.req:
                # A restarted worker re-sent its step: its first gradient already counts.
                log.info("Worker %d sent a second gradient for step %d; the first one counts",
                         worker.wid, self.version)
            self.stats.duplicates += 1
            return True
        if msg.req is not None and msg.req == worker.done_req:
            self.stats.duplicates += 1
            self._reply(identity, msg, with_params=with_params, duplicate=True)
            return True
        return False

    def _push_async(self, identity: bytes, msg: Message, worker: _Worker | None,
                    usable: bool, with_params: bool, part: tuple[int, int] | None) -> None:
        parts = self._parts_of(worker, msg.req, part)
        staleness = max(0, self.version - msg.header.get("step", self.version))
        if parts is None or not parts.done:  # a pipelined step counts once
            self.stats.staleness[min(staleness, _HISTOGRAM_CAP)] += 1
        limit = self.config.max_staleness
        dropped = usable and limit is not None and staleness > limit
        if dropped:
            self.stats.stale_dropped += 1
        elif usable:
            self._apply(*self._gradients(msg), bump=parts is None)
        if worker is not None:
            worker.done_req = msg.req
        fields: dict[str, Any] = {}
        if parts is not None:
            parts.applied |= usable and not dropped
            parts.done.add(part[0])
            parts.names.update(msg.names)
            if len(parts.done) == parts.count and parts.applied and not parts.bumped:
                parts.bumped = True
                self._bump()  # the whole step is in: one version
            fields = {"part": list(part), "names": self._part_reply_names(msg, parts)}
        self._reply(identity, msg, with_params=with_params, staleness=staleness,
                    dropped=dropped, skipped=not usable, **fields)

    def _parts_of(self, worker: _Worker | None, req: Any,
                  part: tuple[int, int] | None) -> _Parts | None:
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
            self._bump()
        if worker is not None:
            worker.parts = _Parts(req, part[1]) if part is not None else None
        return worker.parts if worker is not None else None

    def _part_reply_names(self, msg: Message, parts: _Parts) -> list[str]:
        """A part's reply carries its own parameters; the last one, all the others too."""
        if len(parts.done) < parts.count:
            return msg.names
        return msg.names + [n for n in self.params if n not in parts.names]

    def _push_sync(self, identity: bytes, msg: Message, worker: _Worker | None,
                   usable: bool, with_params: bool) -> None:
        step = msg.header.get("step")
        if worker is not None and isinstance(step, int) and step < self._seeded_version:
            # Computed before this (restarted) server was re-seeded with the chief's
            # parameters, which already hold that step: answer with them, apply nothing.
            worker.done_req = msg.req
            self._reply(identity, msg, with_params=with_params, staleness=self.version - step,
                        dropped=True, skipped=False)
            return
        rnd = self._round
        if not rnd.started:
            rnd.start(self._live_ids(), time.monotonic())
        if usable:
            rnd.add(msg)
        key = worker.wid if worker is not None else -len(rnd.anonymous) - 1
        rnd.arrived.add(key)
        pending = (identity, msg.req, "push_pull" if with_params else "push")
        if worker is not None:
            worker.pending = pending
        else:
            rnd.anonymous.append(pending)
        self._maybe_complete_round(time.monotonic())

    # ------------------------------------------------------------ sync step

    def _live_ids(self) -> set[int]:
        return {w.wid for w in self.workers.values() if w.alive and not w.left}

    def _maybe_complete_round(self, now: float) -> None:
        rnd = self._round
        if not rnd.started:
            return
        if self._chief_finished() and 0 not in rnd.arrived:
            # The chief's fit is over: a step without it waits for its next fit, and ends
            # (run_finished) once the chief is gone; no worker trains on alone after it.
            if self._chief_gone():
                self._end_round_after_chief()
            return
        rnd.required &= self._live_ids()
        if not rnd.required <= rnd.arrived:
            return
        missing = self._never_registered()
        if missing and (now - rnd.started_at < self.config.heartbeat_timeout
                        or now - self.stats.started < self._startup_timeout()):
            return
        if missing:
            log.warning("Workers %s never registered within %.1f s; stepping without them",
                        sorted(missing), max(now - self.stats.started, 0.0))
            self._gave_up = True
        self._complete_round()

    def _chief_finished(self) -> bool:
        """The chief said its `fit` is over (`epoch_end` with `done`) and has not pushed since."""
        chief = self.workers.get(0)
        return chief is not None and chief.finished

    def _chief_gone(self) -> bool:
        chief = self.workers.get(0)
        return chief is not None and (chief.left or not chief.alive)

    def _end_round_after_chief(self) -> None:
        """Answers the pushes of a step the finished, gone chief will never join."""
        waiting = [w for w in self.workers.values() if w.pending is not None]
        message = ("The chief's fit is over and it has left: this run trains no further "
                   "step. The worker stops here.")
        for w in waiting:
            identity, req, _ = w.pending
            w.pending = None
            self._reject(identity, req, "run_finished", message)
        for identity, req, _ in self._round.anonymous:
            self._reject(identity, req, "run_finished", message)
        self._round.finish()

    def _startup_timeout(self) -> float:
        """How long after the start workers that never registered are waited for."""
        startup = self.config.startup_timeout
        return self.config.heartbeat_timeout if startup is None else startup

    def _never_registered(self) -> set[int]:
        if self._gave_up:
            return set()
        return set(range(self.config.num_workers)) - set(self.workers)

    def _complete_round(self) -> None:
        rnd = self._round
        if rnd.position is not None:
            self.position = rnd.position
        offered = rnd.chosen_learning_rate()
        if offered is not None:
            self._set_learning_rate(*offered)
        grads = rnd.averaged()
        if grads:
            packed = self._store.gather(grads)  # one rule call for the small parameters
            if packed is not None:
                grads = {n: g for n, g in grads.items() if n not in self._store.held}
            self._apply(grads, packed)
        waiting = [w for w in self.workers.values() if w.pending is not None]
        frames = None
        for w in waiting:
            identity, req, op = w.pending
            w.pending, w.done_req, w.last_seen = None, req, time.monotonic()
            frames = self._answer(identity, req, op, frames)
        for identity, req, op in rnd.anonymous:
            frames = self._answer(identity, req, op, frames)
        rnd.finish()

    def _answer(self, identity: bytes, req: Any, op: str, frames: list | None) -> list | None:
        header = {"op": "ok", "req": req, "version": self.version, "staleness": 0,
                  "dropped": False, "skipped": False}
        if op != "push_pull":
            self._send(identity, protocol.encode(header))
            return frames
        if frames is None:
            frames = self._encode_all(header)
            self._send(identity, frames, track=self._zero_copy)
            return frames
        self._send(identity, protocol.reheader(frames, req=req), track=self._zero_copy)
        return frames

    # ------------------------------------------------------------ updates

    def _gradients(self, msg: Message) -> tuple[dict[str, list[np.ndarray]], np.ndarray | None]:
        """A push's gradients: name -> flat pieces, and the pack frame as the packed
        store's whole gradient when its layout is the store's (else None)."""
        if not self._checked.get(msg.layout):
            return {name: msg.pieces(name) for name in msg.names}, None
        held = self._store.held
        return ({name: msg.pieces(name) for name in msg.names if name not in held},
                msg.pack_array(self._store.dtype))

    def _apply(self, grads: dict[str, list[np.ndarray]], packed: np.ndarray | None = None,
               bump: bool = True) -> None:
        """Applies one optimizer step and bumps the version.

        Args:
            grads: name -> the gradient as flat pieces (views on the received
                frames, or the averaged sum), in order.
            packed: the gradient of every parameter of the packed store, laid
                out as the store (one rule call for all of them), or None.
            bump: False for a pipelined step's parts but the last: they use the
                same step number and the version goes up once, at the end.
        """
        self._copy_on_write(grads)
        step = self.version + 1
        hp = dict(self.optimizer.get("hp", {}))
        hp["learning_rate"] = self._learning_rate(self.version)
        for name, pieces in grads.items():
            self._update(name, pieces, step, hp)
        if packed is not None:
            self._update_store(packed, step, hp)
        if bump:
            self._bump()

    def _bump(self) -> None:
        step = self.version = self.version + 1
        self.stats.steps += 1
        every = self.config.checkpoint_every
        # A learning-rate change is written at once, so a restarted server never
        # goes back to the old rate (changes are rare: the Keras callbacks make at
        # most one per epoch).
        if self.config.checkpoint_dir and every and (step % every == 0 or self._lr_changed):
            self._periodic_checkpoint()
        self._lr_changed = False

    def _periodic_checkpoint(self) -> None:
        """Writes a checkpoint after an update; a failure (full disk, permissions) is
        counted and logged, and training goes on: the update is applied exactly once
        whatever happens here, the previous checkpoint stays as it was, and the
        next interval tries again."""
        try:
            self.save_checkpoint()
        except Exception as exc:  # never part of the update: any failure is the disk's
            self._checkpoint_failed(exc)

    def _checkpoint_failed(self, exc: Exception) -> None:
        self.stats.checkpoint_failures += 1
        error = f"{type(exc).__name__}: {exc}"
        self.stats.last_checkpoint_error = {"version": self.version, "error": error,
                                            "time": time.time()}
        last = self.stats.last_checkpoint
        self._rate_limited.error("checkpoint", "Checkpoint of version %d failed (%s); "
                                 "training goes on, the newest checkpoint is still %s; "
                                 "retrying at the next interval (%d failures so far)",
                                 self.version, error, last["path"] if last else "none",
                                 self.stats.checkpoint_failures)

    def _update(self, name: str, pieces: list[np.ndarray], step: int, hp: dict) -> None:
        """One rule step on one parameter (see `_update_array`)."""
        self._update_array(self.params[name], self.slots[name], pieces, step, hp)

    def _update_store(self, grad: np.ndarray, step: int, hp: dict) -> None:
        """One rule step on every parameter of the packed store at once."""
        self._update_array(self._store.values, self._store.slots, [grad], step, hp)

    def _rebuild_store(self) -> None:
        # The slots a rule needs depend on its hyper-parameters, which never change
        # after `init` (only the learning rate does): the store gets them all here.
        rule, hp = self._rule, self.optimizer.get("hp") or {}
        self._store.rebuild(self.params, self.slots, tuple(rule.slots({**rule.defaults, **hp})),
                            lambda slot, param: rule.init(param, hp)[slot])
        self._checked.clear()  # a new parameter changes which spec lists are valid and fit
        self._all_encoder = None  # the parameter set changed

    def _update_array(self, param: np.ndarray, slots: dict[str, np.ndarray],
                      pieces: list[np.ndarray], step: int, hp: dict) -> None:
        """One rule step on one array, in cache-sized chunks.

        The rules are elementwise, so running them on consecutive slices gives
        the same numbers as one call, while their temporaries stay in the CPU
        cache instead of making extra passes over main memory (and a large
        gradient is never joined from its frames).
        """
        rule = self._rule
        if len(pieces) == 1 and pieces[0].size <= _UPDATE_CHUNK:
            rule.update(param, pieces[0].reshape(param.shape), slots, step, hp)
            return
        if not set(rule.slots({**rule.defaults, **hp})) <= slots.keys():  # normally complete
            slots.update({k: v for k, v in rule.init(param, hp).items() if k not in slots})
        flat, flat_slots = param.reshape(-1), {k: v.reshape(-1) for k, v in slots.items()}
        offset = 0
        for piece in pieces:
            for start in range(0, piece.size, _UPDATE_CHUNK):
                stop = min(start + _UPDATE_CHUNK, piece.size)
                a, b = offset + start, offset + stop
                rule.update(flat[a:b], piece[start:stop],
                            {k: v[a:b] for k, v in flat_slots.items()}, step, hp)
            offset += piece.size

    def _learning_rate(self, iterations: int) -> float:
        if self._schedule is not None:
            return float(self._schedule(iterations))
        return float(self.optimizer.get("learning_rate", 0.01))

    def _learning_rate_source(self) -> Any:
        """The rate as configured: a number or a schedule config (None before `init`)."""
        return self.optimizer.get("learning_rate") if self.optimizer else None

    def _set_learning_rate(self, value: float, sender: Any) -> None:
        """Uses `value` from the next update on (it replaces a schedule)."""
        if self._schedule is None and self._learning_rate_source() == value:
            return
        log.info("Learning rate set to %r by worker %s (version %d; was %r)", value, sender,
                 self.version, self._learning_rate_source())
        self.optimizer = {**self.optimizer, "learning_rate": value}
        self._schedule = None
        self._lr_changed = True

    def _copy_on_write(self, names: Any) -> None:
        """Replies may still be reading the parameter buffers (zero-copy sends).

        Updating them in place would corrupt a reply in flight, so a parameter
        about to be updated whose send is not finished moves to a fresh copy
        instead of waiting. Tracked per parameter: a pipelined step's replies
        for some parameters never force copies of the others.
        """
        copied = False
        for name in names:  # (the packed store is never sent zero-copy: never in flight)
            trackers = self._inflight.get(name)
            if not trackers:
                continue
            if all(transport.tracker_done(t) for t in trackers):
                del self._inflight[name]
                continue
            self.params[name] = self.params[name].copy()
            del self._inflight[name]
            copied = True
        self.stats.cow_copies += copied

    # ------------------------------------------------------------ liveness

    def _forgive_pause(self, now: float) -> None:
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
        if self._round.started:
            self._round.started_at = min(now, self._round.started_at + gap)
        log.info("This server did not listen for %.1f s (paused or busy); that time does "
                 "not count against the workers' heartbeats", gap)

    def _check_liveness(self, now: float) -> None:
        timeout = self.config.heartbeat_timeout
        for w in self.workers.values():
            if w.alive and not w.left and w.pending is None and now - w.last_seen > timeout:
                self._round.required.discard(w.wid)
                if w.finished:  # its fit ended cleanly and the process went away
                    w.left = True
                    log.info("Worker %d finished its fit and left (silent for %.1f s)",
                             w.wid, now - w.last_seen)
                    continue
                w.alive = False
                log.warning("Worker %d declared dead: silent for %.1f s (heartbeat timeout "
                            "%.1f s), last step %d", w.wid, now - w.last_seen, timeout,
                            w.last_step)

    # ------------------------------------------------------------ checkpoints

    def _checkpoint_root(self) -> Path | None:
        if not self.config.checkpoint_dir:
            return None
        return Path(self.config.checkpoint_dir) / f"ps-{self.config.shard}"

    def save_checkpoint(self) -> Path:
        """Writes parameters, optimizer state, version and position atomically."""
        tensors = {f"param/{n}": p for n, p in self.params.items()}
        for name, slots in self.slots.items():
            tensors.update({f"slot/{name}/{s}": a for s, a in slots.items()})
        meta = {"version": self.version, "position": self.position, "shard": self.config.shard,
                "mode": self.config.mode, "optimizer": self.optimizer,
                "params": list(self.params), "time": time.time(), "run_id": self.config.run_id}
        path = checkpoint.save(self._checkpoint_root(), self.version, tensors, meta,
                               keep=self.config.keep_checkpoints)
        self.stats.last_checkpoint = {"path": str(path), "version": self.version}
        log.info("Checkpoint written: %s (version %d)", path, self.version)
        return path

    def _final_checkpoint(self) -> None:
        if self.config.checkpoint_dir and self.initialized:
            try:
                self.save_checkpoint()
            except Exception as exc:  # the socket still closes (serve_forever's finally)
                log.error("Final checkpoint failed: %s: %s", type(exc).__name__, exc)

    def _restore(self) -> None:
        """Resumes from the newest checkpoint that verifies (checksum, schema, shard);
        refuses to start empty when checkpoints exist but none does, unless
        `ignore_corrupt_checkpoints`."""
        root = self._checkpoint_root()
        if root is None:
            return
        for path, tensors, meta in checkpoint.valid_checkpoints(root, checkpoint.check_ps_meta):
            try:
                self._restore_from(path, tensors, meta)
                return
            except (_Reject, checkpoint.CheckpointError) as exc:
                log.warning("Skipping checkpoint %s: %s Falling back to the previous one.",
                            path, exc)
        found = checkpoint.list_checkpoints(root)
        if not found:
            return
        if not self.config.ignore_corrupt_checkpoints:
            raise checkpoint.CheckpointError(
                f"None of the {len(found)} checkpoints in {root} is valid (the log says why "
                f"for each); refusing to start empty and lose them. Restore a good checkpoint "
                f"there, or pass --ignore-corrupt-checkpoints "
                f"(DISTFLOW_IGNORE_CORRUPT_CHECKPOINTS=1) to start from the workers' values.")
        log.warning("None of the %d checkpoints in %s is valid; starting empty as "
                    "ignore_corrupt_checkpoints asks", len(found), root)

    def _restore_from(self, path: Path, tensors: dict[str, np.ndarray], meta: dict) -> None:
        """Takes the state of one verified checkpoint (nothing changes if it does not fit)."""
        if meta["shard"] != self.config.shard:
            raise checkpoint.CheckpointError(f"it holds shard {meta['shard']}, this server is "
                                             f"shard {self.config.shard}.")
        rule, schedule = _build_optimizer(meta["optimizer"])
        self.optimizer, self._rule, self._schedule = meta["optimizer"], rule, schedule
        for name in meta["params"]:
            self.params[name] = tensors[f"param/{name}"]
            prefix = f"slot/{name}/"
            self.slots[name] = {k[len(prefix):]: v for k, v in tensors.items()
                                if k.startswith(prefix)}
        self.version = int(meta["version"])
        self.position = dict(meta.get("position") or {})
        self._restored_position = dict(self.position)
        self._rebuild_store()
        self._round.reset_buffers(self.params)
        self.stats.last_checkpoint = {"path": str(path), "version": self.version}
        log.info("Resumed from checkpoint %s (version %d, position %s)", path, self.version,
                 self.position)
        run = meta.get("run_id")
        if run is not None and self.config.run_id is not None and run != self.config.run_id:
            log.info("The checkpoint was written by run %s; this is run %s", run,
                     self.config.run_id)

    # ------------------------------------------------------------ stats

    def stats_dict(self) -> dict[str, Any]:
        """Counters as a msgpack-safe dict (what the `stats` op returns)."""
        s, now = self.stats, time.monotonic()
        workers = {str(w.wid): {"alive": w.alive and not w.left, "left": w.left,
                                "last_step": w.last_step,
                                "silent_s": round(now - w.last_seen, 3)}
                   for w in self.workers.values()}
        return {
            "shard": self.config.shard, "mode": self.config.mode, "version": self.version,
            "address": self.address, "uptime_s": round(now - s.started, 3),
            "params": len(self.params),
            "param_bytes": sum(p.nbytes for p in self.params.values()),
            "steps": s.steps, "pushes": s.pushes, "requests": dict(s.requests),
            "bytes_in": s.bytes_in, "bytes_out": s.bytes_out, "rejected": dict(s.rejected),
            "live_workers": sorted(w.wid for w in self.workers.values()
                                   if w.alive and not w.left),
            "dead_workers": sorted(w.wid for w in self.workers.values() if not w.alive),
            "workers": workers, "position": self.position,
            "staleness": {str(k): v for k, v in sorted(s.staleness.items())},
            "stale_dropped": s.stale_dropped, "skipped_nonfinite": s.skipped_nonfinite,
            "duplicates": s.duplicates, "cow_copies": s.cow_copies,
            "last_checkpoint": s.last_checkpoint,
            "checkpoint_failures": s.checkpoint_failures,
            "last_checkpoint_error": s.last_checkpoint_error,
            "learning_rate": self._learning_rate(self.version) if self.initialized else None,
            "connections": dict(self.socket.events),
            "replies_dropped": self.socket.events["replies_dropped"],
        }


class _Round:
    """The sync step being assembled: who must push, who did, the running sums."""

    def __init__(self):
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        self.first: dict[str, list[np.ndarray]] = {}  # a step's first gradient, not copied
        self.finish()

    def reset_buffers(self, params: dict[str, np.ndarray]) -> None:
        for name, p in params.items():
            if name not in self.sums:
                self.sums[name] = np.empty_like(p)
                self.counts[name] = 0

    def start(self, live: set[int], now: float) -> None:
        self.started, self.started_at, self.required = True, now, set(live)

    def offer_learning_rate(self, sender: Any, value: float) -> None:
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
        self.started, self.started_at = False, 0.0
        self.required: set[int] = set()
        self.arrived: set[int] = set()
        self.anonymous: list[tuple] = []
        self.learning_rates: list[tuple] = []  # (anonymous, rank, value, sender) offers
        self.position: dict | None = None  # the step's training position, set when applied
        self.first.clear()
        for name in self.counts:
            self.counts[name] = 0


_ZEROS: dict[np.dtype, np.ndarray] = {}
_FINITE_CHUNK = 256 * 1024  # elements per dot product: the zeros stay in the CPU cache


def _sent_zero_copy(param: np.ndarray) -> bool:
    """Whether the transport sends a framed `param` (a frame of it) without copying."""
    return param.nbytes >= transport.COPY_THRESHOLD


def _seed_version(msg: Message) -> int | None:
    """An `init`'s `version` (the chief re-seeding a restarted server), validated."""
    version = msg.header.get("version")
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**63:
        raise _Reject("bad_field", f"`version` of an `init` must be an int in [0, 2**63). "
                      f"Received: version={version!r:.50}")
    return version


def _position(msg: Message) -> dict | None:
    """The training position a request carries (a small map of plain values), or None."""
    position = msg.header.get("position")
    if isinstance(position, dict) and len(position) <= 16:
        return {str(k): v for k, v in position.items() if isinstance(v, int | float | str | bool)}
    return None


def _all_finite(msg: Message) -> bool:
    """True when no tensor of `msg` (nor the pack frame's padding) holds NaN or inf."""
    return all(_finite(arrays) for _, arrays in msg.groups())


def _finite(pieces: list[np.ndarray]) -> bool:
    """True when no piece holds NaN or inf (pieces are <= one frame long)."""
    for piece in pieces:
        if piece.dtype.kind != "f" or not piece.size:
            continue
        if piece.dtype.itemsize < 4:
            if not np.isfinite(piece).all():
                return False
            continue
        # x * 0 is 0 for every finite x and NaN for NaN/inf: a BLAS pass, no mask. In
        # chunks against one cached block of zeros, so only the gradient is read from
        # main memory (a zeros array as long as the gradient doubled the traffic).
        zeros = _ZEROS.get(piece.dtype)
        if zeros is None:
            zeros = _ZEROS[piece.dtype] = np.zeros(_FINITE_CHUNK, piece.dtype)
        for start in range(0, piece.size, _FINITE_CHUNK):  # (serve_forever silences the
            part = piece[start:start + _FINITE_CHUNK]      # warnings NaN * 0 would raise)
            if not math.isfinite(np.dot(part, zeros[:part.size])):
                return False
    return True


def _learning_rate_field(msg: Message) -> float | None:
    """The optional `learning_rate` of a push, validated (finite, >= 0)."""
    value = msg.header.get("learning_rate")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value < 0:
        raise _Reject("bad_learning_rate", f"`learning_rate` must be a finite number >= 0. "
                      f"Received: learning_rate={value!r:.100}")
    return float(value)


def _build_optimizer(config: Any) -> tuple[Any, Any]:
    """(rule, schedule or None) from the init request's optimizer config."""
    from distflow.optimizers import rules, schedules

    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise _Reject("bad_optimizer", f"`optimizer` must be a map {{name, hp, learning_rate}}. "
                      f"Received: optimizer={config!r:.200}")
    hp, lr = config.get("hp", {}), config.get("learning_rate", 0.01)
    if not isinstance(hp, dict):
        raise _Reject("bad_optimizer", f"`optimizer.hp` must be a map. Received: hp={hp!r:.100}")
    try:
        rule = rules.get_rule(config["name"])
        schedule = schedules.deserialize(lr) if isinstance(lr, dict) else None
    except (KeyError, ValueError, TypeError) as exc:
        raise _Reject("bad_optimizer", f"Cannot build optimizer from {config!r:.200}: "
                      f"{exc}") from None
    if schedule is None and not isinstance(lr, int | float):
        raise _Reject("bad_optimizer", f"`optimizer.learning_rate` must be a number or a "
                      f"schedule config. Received: learning_rate={lr!r:.100}")
    return rule, schedule


def _summary(stats: dict) -> str:
    keys = ("version", "steps", "pushes", "bytes_in", "bytes_out", "rejected", "live_workers",
            "dead_workers", "staleness", "last_checkpoint")
    return " ".join(f"{k}={stats[k]}" for k in keys)


# ---------------------------------------------------------------- process entry

def config_from_env(environ: dict[str, str] | None = None) -> ServerConfig:
    """Builds the server's settings from the launcher's `DISTFLOW_*` variables.

    DISTFLOW_RANK is the shard id, DISTFLOW_PS_ADDRS[rank] gives the port,
    DISTFLOW_BIND the host (default 127.0.0.1); then DISTFLOW_STRATEGY,
    DISTFLOW_MAX_STALENESS, DISTFLOW_NUM_WORKERS, DISTFLOW_CHECKPOINT_DIR,
    DISTFLOW_CHECKPOINT_EVERY, DISTFLOW_HEARTBEAT_TIMEOUT, DISTFLOW_RENDEZVOUS_TIMEOUT
    (`startup_timeout`), DISTFLOW_KEYS,
    DISTFLOW_STATS_INTERVAL, DISTFLOW_NONFINITE, DISTFLOW_RUN_ID and
    DISTFLOW_IGNORE_CORRUPT_CHECKPOINTS (1/true/yes).
    """
    env = dict(os.environ if environ is None else environ)
    rank = env_number(env, "DISTFLOW_RANK", 0)
    addrs = [a.strip() for a in env.get("DISTFLOW_PS_ADDRS", "").split(",") if a.strip()]
    if not 0 <= rank < max(1, len(addrs)):
        raise ValueError(f"DISTFLOW_RANK must index DISTFLOW_PS_ADDRS ({len(addrs)} "
                         f"entries). Received: DISTFLOW_RANK={rank}")
    port = addrs[rank].rpartition(":")[2] if addrs else "0"
    bind = env.get("DISTFLOW_BIND", "") or "127.0.0.1"
    return ServerConfig(
        address=f"tcp://{bind}:{port}", shard=rank,
        mode=env.get("DISTFLOW_STRATEGY", "mirrored") or "mirrored",
        num_workers=env_number(env, "DISTFLOW_NUM_WORKERS", 1),
        max_staleness=env_number(env, "DISTFLOW_MAX_STALENESS", None),
        heartbeat_timeout=env_number(env, "DISTFLOW_HEARTBEAT_TIMEOUT", 30.0, float),
        startup_timeout=env_number(env, "DISTFLOW_RENDEZVOUS_TIMEOUT", None, float),
        checkpoint_dir=env.get("DISTFLOW_CHECKPOINT_DIR") or None,
        checkpoint_every=env_number(env, "DISTFLOW_CHECKPOINT_EVERY", 0),
        keys_dir=env.get("DISTFLOW_KEYS") or None,
        stats_interval=env_number(env, "DISTFLOW_STATS_INTERVAL", 60.0, float),
        nonfinite=env.get("DISTFLOW_NONFINITE", "").strip() or "reject",
        run_id=env.get("DISTFLOW_RUN_ID") or None,
        ignore_corrupt_checkpoints=env.get("DISTFLOW_IGNORE_CORRUPT_CHECKPOINTS", "").strip()
        .lower() in ("1", "true", "yes"),
    )


_FLAGS = (  # flag, type, help; each overrides the environment
    ("--address", str, "tcp://host:port to bind (port 0: any free port)"),
    ("--shard", int, "this server's shard id"),
    ("--mode", str, "sync (alias mirrored) or async"),
    ("--num-workers", int, "sync: workers expected"),
    ("--max-staleness", int, "async: drop gradients staler than this"),
    ("--heartbeat-timeout", float, "seconds of silence before a worker is dead"),
    ("--checkpoint-dir", str, "checkpoints go to DIR/ps-<shard>/"),
    ("--checkpoint-every", int, "checkpoint every N versions (0: on shutdown only)"),
    ("--keep-checkpoints", int, "checkpoint files kept"),
    ("--keys", str, "CURVE key directory (python -m distflow.keys generate DIR)"),
    ("--nonfinite", str, "reject or skip gradients holding NaN/inf"),
    ("--max-tensors", int, "most tensors per message"),
    ("--max-message-bytes", int, "largest message accepted"),
    ("--max-frame-bytes", int, "largest frame (libzmq MAXMSGSIZE)"),
    ("--max-reply-bytes", int, "largest reply a pull may ask for"),
    ("--max-queued-replies", int, "replies queued in libzmq for one peer"),
    ("--max-queued-bytes", int, "bytes of further replies waiting for one peer"),
    ("--stats-interval", float, "seconds between stats log lines (0: never)"),
)


def parse_args(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line overrides of `config_from_env` (only the flags given)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m distflow.distribute.server",
        description="A distflow parameter server. Settings come from the launcher's "
                    "DISTFLOW_* environment (see docs/architecture.md); flags override it.")
    for flag, kind, text in _FLAGS:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument("--ignore-corrupt-checkpoints", action="store_true", default=None,
                        help="start empty when checkpoints exist but none is valid "
                             "(default: refuse to start)")
    args = vars(parser.parse_args(argv))
    renames = {"keys": "keys_dir"}
    return {renames.get(k, k): v for k, v in args.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    """Process entry point: serve until SIGTERM/SIGINT or `shutdown`, checkpoint, exit 0."""
    overrides = parse_args(argv)
    logging.basicConfig(level=os.environ.get("DISTFLOW_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for sig in (signal.SIGTERM, signal.SIGINT):  # while starting: nothing to save yet
        signal.signal(sig, _stop_starting)
    try:
        server = ParameterServer(config_from_env(), **overrides)
    except (ValueError, TypeError, transport.TransportError) as exc:
        print(f"distflow parameter server: {exc}", file=sys.stderr)
        return 2
    except _Terminated:
        return 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: _on_signal(server))
    try:
        server.serve_forever()
    except _Terminated:
        pass  # serve_forever wrote the final checkpoint and closed its socket
    return 0


def _stop_starting(*_: Any) -> None:
    raise _Terminated


def _on_signal(server: ParameterServer) -> None:
    """Stops the loop: at once when it is only reading a request (nothing changed yet;
    however long the request would take), else after the request it is applying."""
    server._stop.set()
    if server._reading:
        server._reading = False
        raise _Terminated


if __name__ == "__main__":
    sys.exit(main())
