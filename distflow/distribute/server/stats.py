"""The server's counters and the `stats` reply built from them (docs/protocol.md)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Counters of the requests a server took in and answered.

    The shard counts its own steps, copy-on-write copies and checkpoints.
    """

    started: float = field(default_factory=time.monotonic)
    requests: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    staleness: Counter = field(default_factory=Counter)
    pushes: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    stale_dropped: int = 0
    skipped_nonfinite: int = 0
    duplicates: int = 0


def stats_dict(server: Any) -> dict[str, Any]:
    """A server's counters as a msgpack-safe dict (what the `stats` op returns).

    Args:
        server: a `ParameterServer` (its config, stats, shard, members, socket).
    """
    s, shard, now = server.stats, server.shard, time.monotonic()
    workers = server.members.workers.values()
    return {
        "shard": server.config.shard, "mode": server.config.mode, "version": shard.version,
        "address": server.address, "uptime_s": round(now - s.started, 3),
        "params": len(shard.params),
        "param_bytes": sum(p.nbytes for p in shard.params.values()),
        "steps": shard.steps, "pushes": s.pushes, "requests": dict(s.requests),
        "bytes_in": s.bytes_in, "bytes_out": s.bytes_out, "rejected": dict(s.rejected),
        "live_workers": sorted(w.wid for w in workers if w.alive and not w.left),
        "dead_workers": sorted(w.wid for w in workers if not w.alive),
        "workers": {str(w.wid): {"alive": w.alive and not w.left, "left": w.left,
                                 "last_step": w.last_step,
                                 "silent_s": round(now - w.last_seen, 3)} for w in workers},
        "position": shard.position,
        "staleness": {str(k): v for k, v in sorted(s.staleness.items())},
        "stale_dropped": s.stale_dropped, "skipped_nonfinite": s.skipped_nonfinite,
        "duplicates": s.duplicates, "cow_copies": shard.cow_copies,
        "last_checkpoint": shard.record.last,
        "checkpoint_failures": shard.record.failures,
        "last_checkpoint_error": shard.record.last_error,
        "learning_rate": shard.learning_rate(shard.version) if shard.initialized else None,
        "connections": dict(server.socket.events),
        "replies_dropped": server.socket.events["replies_dropped"],
    }


def summary(stats: dict[str, Any]) -> str:
    """The periodic log line: the main counters of `stats_dict`."""
    keys = ("version", "steps", "pushes", "bytes_in", "bytes_out", "rejected", "live_workers",
            "dead_workers", "staleness", "last_checkpoint")
    return " ".join(f"{k}={stats[k]}" for k in keys)
