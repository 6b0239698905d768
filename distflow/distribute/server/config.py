"""The server's settings: `ServerConfig`, the launcher's `DISTFLOW_*` environment, flags.

Every `DISTFLOW_*` variable a parameter-server process reads is read here
(`config_from_env`, `log_level`); the rest of the package gets a `ServerConfig`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distflow import process_env
from distflow.distribute import protocol

MODES = {"sync": "sync", "mirrored": "sync", "async": "async"}
DEFAULT_MODE = "sync"
NONFINITE_POLICIES = ("reject", "skip")


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
        run_named: the run id was given by the user (`--run-id`), not generated.
        resume_other_run: resume checkpoints of another run (see `Shard.restore`).
        ignore_corrupt_checkpoints: start empty when checkpoints exist but none
            verifies (default: refuse to start, so they are not overwritten).
        poll_ms: poll timeout of the loop (liveness checks run this often).
    """

    address: str = "tcp://127.0.0.1:0"
    shard: int = 0
    mode: str = DEFAULT_MODE
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
    run_named: bool = False
    resume_other_run: bool = False
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


def config_from_env(environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Builds the server's settings from the launcher's `DISTFLOW_*` variables.

    Every variable is read through the process contract (`distflow.process_env`):
    DISTFLOW_RANK is the shard id, DISTFLOW_PS_ADDRS[rank] gives the port,
    DISTFLOW_BIND the host (default 127.0.0.1); then DISTFLOW_STRATEGY,
    DISTFLOW_MAX_STALENESS, DISTFLOW_NUM_WORKERS, DISTFLOW_CHECKPOINT_DIR,
    DISTFLOW_CHECKPOINT_EVERY, DISTFLOW_HEARTBEAT_TIMEOUT, DISTFLOW_RENDEZVOUS_TIMEOUT
    (`startup_timeout`), DISTFLOW_KEYS, DISTFLOW_STATS_INTERVAL, DISTFLOW_NONFINITE,
    DISTFLOW_RUN_ID and DISTFLOW_IGNORE_CORRUPT_CHECKPOINTS.

    Raises:
        ValueError: a variable not of its declared type, or a rank outside the addresses.
    """
    env = os.environ if environ is None else environ
    rank = _read("DISTFLOW_RANK", env)
    addrs = list(_read("DISTFLOW_PS_ADDRS", env) or ())
    if not 0 <= rank < max(1, len(addrs)):
        raise ValueError(f"DISTFLOW_RANK must index DISTFLOW_PS_ADDRS ({len(addrs)} "
                         f"entries). Received: DISTFLOW_RANK={rank}")
    port = addrs[rank].rpartition(":")[2] if addrs else "0"
    return ServerConfig(
        address=f"tcp://{_read('DISTFLOW_BIND', env) or '127.0.0.1'}:{port}", shard=rank,
        mode=_read("DISTFLOW_STRATEGY", env),
        num_workers=_read("DISTFLOW_NUM_WORKERS", env),
        max_staleness=_read("DISTFLOW_MAX_STALENESS", env),
        heartbeat_timeout=_read("DISTFLOW_HEARTBEAT_TIMEOUT", env),
        startup_timeout=_set_or_none("DISTFLOW_RENDEZVOUS_TIMEOUT", env),
        checkpoint_dir=_read("DISTFLOW_CHECKPOINT_DIR", env),
        checkpoint_every=_read("DISTFLOW_CHECKPOINT_EVERY", env),
        keys_dir=_read("DISTFLOW_KEYS", env),
        stats_interval=_read("DISTFLOW_STATS_INTERVAL", env),
        nonfinite=_read("DISTFLOW_NONFINITE", env),
        run_id=_set_or_none("DISTFLOW_RUN_ID", env),
        run_named=_read("DISTFLOW_RUN_NAMED", env),
        resume_other_run=_read("DISTFLOW_RESUME_OTHER_RUN", env),
        ignore_corrupt_checkpoints=_read("DISTFLOW_IGNORE_CORRUPT_CHECKPOINTS", env),
    )


def _read(name: str, env: Mapping[str, str]) -> Any:
    return process_env.read(name, env)


def _set_or_none(name: str, env: Mapping[str, str]) -> Any:
    """The value when the variable is set; None (the server's own default) otherwise."""
    return _read(name, env) if process_env.is_set(name, env) else None


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


def log_level(environ: Mapping[str, str] | None = None) -> str:
    """The process's log level: DISTFLOW_LOG_LEVEL (default INFO)."""
    return process_env.read("DISTFLOW_LOG_LEVEL", environ)
