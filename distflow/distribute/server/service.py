"""The service: one shard behind a ROUTER socket, answering docs/protocol.md.

`ParameterServer` runs a single poll loop that never blocks on one client:
each request is decoded, offered to the policy's one-pass plain push, else
looked up in the dispatch table (`dispatch`: op -> handler) and answered through
`Replies`; refusals become error replies. Between batches of requests the loop
flushes queued replies, checks liveness, lets the policy complete a sync step
and logs stats.

The parts: `shard.Shard` (parameters, optimizer, checkpoints),
`sync_policy.SyncPolicy` / `async_policy.AsyncPolicy` (what a push means, chosen
once here from `ServerConfig.mode`), `membership.Membership` (workers),
`handlers.Handlers` (the other ops), `replies.Replies`, `stats`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from distflow.distribute import protocol, transport
from distflow.distribute.protocol import Message, ProtocolError
from distflow.distribute.server import stats as stats_module
from distflow.distribute.server.async_policy import AsyncPolicy
from distflow.distribute.server.config import ServerConfig
from distflow.distribute.server.errors import Reject
from distflow.distribute.server.handlers import Handlers
from distflow.distribute.server.membership import Membership, Worker
from distflow.distribute.server.replies import Replies
from distflow.distribute.server.shard import CheckpointPlan, Shard
from distflow.distribute.server.stats import Stats
from distflow.distribute.server.sync_policy import SyncPolicy

log = logging.getLogger("distflow.ps")

POLICIES = {"sync": SyncPolicy, "async": AsyncPolicy}  # ServerConfig.mode -> policy
_DRAIN_BATCH = 256  # requests read before the loop's housekeeping runs again


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
        self.config = config = ServerConfig(**{**base.__dict__, **overrides})
        self.stats = Stats()
        self._rate_limited = transport.RateLimitedLog(log)  # one line per reason per 10 s
        self.shard = Shard(_checkpoint_plan(config), self._rate_limited.error)
        self.shard.restore()
        self.socket = transport.ServerSocket(config.address, config.keys_dir,
                                             config.max_frame_bytes, config.max_queued_replies,
                                             config.max_queued_bytes)
        self.replies = Replies(self.socket, self.shard, self.stats, self._rate_limited)
        self.policy = POLICIES[config.mode](self.shard, self.replies, self.stats, config)
        self.members = Membership(config.num_workers, config.heartbeat_timeout, self.policy,
                                  self.stats.started, config.startup_timeout)
        self.policy.attach(self.members)
        self.handlers = handlers = Handlers(self)
        self.dispatch = {
            "hello": handlers.hello, "heartbeat": handlers.heartbeat, "bye": handlers.bye,
            "init": handlers.init, "pull": handlers.pull, "epoch_end": handlers.epoch_end,
            "save": handlers.save, "stats": handlers.stats, "shutdown": handlers.shutdown,
            "collective": handlers.collective,
            "push": self.policy.push, "push_pull": self.policy.push_pull,
        }
        # Header, pack frame, one frame per tensor, plus the extra frames of big tensors.
        self._max_frames = 2 + config.max_tensors + config.max_message_bytes // protocol.FRAME_BYTES
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_stats_log = time.monotonic()
        self.reading = False  # reading a request (a signal may end the loop at once)
        log.info("Parameter server %d (%s) listening on %s%s", config.shard, config.mode,
                 self.address, " with CURVE" if config.keys_dir else "")

    # ------------------------------------------------------------ the shard's state

    @property
    def address(self) -> str:
        """The bound address, `tcp://host:port`."""
        return self.socket.address

    @property
    def initialized(self) -> bool:
        """Whether the chief's `init` (or a checkpoint) set the optimizer."""
        return self.shard.initialized

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Parameter name -> its current value (the shard's own arrays)."""
        return self.shard.params

    @property
    def slots(self) -> dict[str, dict[str, np.ndarray]]:
        """Parameter name -> its optimizer slots."""
        return self.shard.slots

    @property
    def version(self) -> int:
        """Updates applied (restored from a checkpoint, or seeded by the chief)."""
        return self.shard.version

    @property
    def position(self) -> dict:
        """The training position of the latest update (`{"epoch", "step"}`)."""
        return self.shard.position

    @property
    def optimizer(self) -> dict | None:
        """The optimizer config `{name, hp, learning_rate}` (None before `init`)."""
        return self.shard.optimizer

    @property
    def workers(self) -> dict[int, Worker]:
        """Worker id -> its `membership.Worker`."""
        return self.members.workers

    def save_checkpoint(self) -> Path:
        """Writes parameters, optimizer state, version and position atomically."""
        return self.shard.save()

    def stats_dict(self) -> dict[str, Any]:
        """Counters as a msgpack-safe dict (what the `stats` op returns)."""
        return stats_module.stats_dict(self)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> threading.Thread:
        """Serves in a daemon thread; returns it."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name=f"distflow-ps-{self.config.shard}")
        self._thread.start()
        return self._thread

    @property
    def running(self) -> bool:
        """Whether the thread `start` began is still serving."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the loop to finish (final checkpoint) and waits for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"Parameter server {self.address} did not stop within "
                                   f"{timeout} s.")

    def request_stop(self) -> None:
        """Asks the loop to finish after the request it is handling."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether the loop was asked to finish."""
        return self._stop.is_set()

    def interrupt(self) -> bool:
        """Asks the loop to finish (a signal); returns True when it was only reading a
        request (nothing changed yet: the caller may end the loop at once)."""
        self._stop.set()
        was_reading, self.reading = self.reading, False
        return was_reading

    def serve_forever(self) -> None:
        """The event loop: runs until `stop()`, a shutdown request or SIGTERM (in main)."""
        try:
            # The finiteness check multiplies NaN and inf by 0 (`requests.finite`): no
            # "invalid" warnings (overflow still warns). Set once here, not per request
            # (thread-local, undone when the loop ends).
            with np.errstate(invalid="ignore"):
                while not self._stop.is_set():
                    if self.socket.poll(self.config.poll_ms):
                        self._drain()
                    self._housekeeping()
        finally:
            self.shard.final_checkpoint()
            self.socket.close()
            log.info("Parameter server %d stopped at version %d", self.config.shard,
                     self.shard.version)

    def _drain(self) -> None:
        # Bounded so liveness checks still run under a flood of requests.
        for i in range(_DRAIN_BATCH):
            received = self.socket.recv(self._max_frames, polled=i == 0)
            if received is None:
                return
            self._handle(*received)

    def _housekeeping(self) -> None:
        self.socket.flush()
        now = time.monotonic()
        self.members.forgive_pause(now)
        self.members.check_liveness(now)
        self.policy.tick(now)
        self.handlers.finish_collectives()
        interval = self.config.stats_interval
        if interval and now - self._last_stats_log >= interval:
            self._last_stats_log = now
            log.info("stats %s", stats_module.summary(self.stats_dict()))

    # ------------------------------------------------------------ dispatch

    def _handle(self, identity: bytes, frames: list, dropped: int = 0) -> None:
        size = protocol.message_bytes(frames)
        self.stats.bytes_in += size
        req = None
        try:
            self.reading = True  # a signal may end the loop here: nothing changed yet
            msg = self._decode(frames, size, dropped)
            req = msg.req
            self.reading = False
            self.stats.requests[msg.op] += 1
            if self.policy.plain_push(identity, msg):
                return
            self._dispatch(identity, msg)
        except ProtocolError as exc:
            self.replies.reject(identity, exc.req, exc.reason, str(exc))
        except Reject as exc:
            self.replies.reject(identity, req, exc.reason, str(exc))
        except Exception as exc:  # a bug must not take the shard down
            log.exception("Internal error while handling a request")
            self.replies.reject(identity, req, "internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            self.reading = False

    def _decode(self, frames: list, size: int, dropped: int) -> Message:
        """The request in `frames`, refused when it exceeds the server's limits."""
        config = self.config
        if dropped:
            raise Reject("too_many_frames", f"The message has {len(frames) + dropped} frames; "
                         f"this server accepts at most {self._max_frames} (header, pack frame, "
                         f"then one frame per 8 MiB of each larger tensor: see "
                         f"docs/protocol.md).")
        if size > config.max_message_bytes:
            raise Reject("message_too_large", f"The message has {size} bytes; this server "
                         f"accepts at most {config.max_message_bytes}.")
        return protocol.decode(frames, config.max_tensors, max_bytes=config.max_message_bytes)

    def _dispatch(self, identity: bytes, msg: Message) -> None:
        """Runs the op's handler; a refused request leaves the membership as it was
        (only a request that passes validation registers or revives its sender)."""
        undo = self.members.undo_for(msg.sender)
        worker = self.members.touch(msg.sender, self.shard.version)
        try:
            self.dispatch[msg.op](identity, msg, worker)
        except BaseException:
            undo()
            raise
        self.members.log_joined()


def _checkpoint_plan(config: ServerConfig) -> CheckpointPlan:
    root = Path(config.checkpoint_dir) / f"ps-{config.shard}" if config.checkpoint_dir else None
    return CheckpointPlan(root=root, every=config.checkpoint_every, keep=config.keep_checkpoints,
                          shard=config.shard, mode=config.mode, run_id=config.run_id,
                          run_named=config.run_named, resume_other_run=config.resume_other_run,
                          ignore_corrupt=config.ignore_corrupt_checkpoints)
