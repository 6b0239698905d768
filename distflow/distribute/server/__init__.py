"""The parameter server: one shard of the parameters and their optimizer state.

A map of the package (dependencies point down):

- `service`: `ParameterServer`, the poll loop on a ROUTER socket, the dispatch
  table (op -> handler) and the choice of policy; `handlers`: the ops other than
  pushes; `replies`: encoding and sending answers; `stats`: the counters.
- `sync_policy`: sync semantics (MirroredStrategy): the step barrier, the
  round's sums, dropping dead workers. `async_policy`: async semantics
  (ParameterServerStrategy): staleness, pipelined parts, the one-pass plain
  push. `policy`: what both share (validating a push, recognising retries).
- `membership`: the worker table, liveness, the chief's epoch/stop decisions.
- `shard`: parameters, optimizer slots, the packed store, the update rule and
  learning rate, copy-on-write, checkpoints: plain arrays, no sockets (it
  imports without ZeroMQ). `requests`: a request's fields, validated.
- `config`: `ServerConfig` and every `DISTFLOW_*` variable the server reads;
  `entry`: `python -m distflow.distribute.server`.

The names below are imported lazily, so `shard` imports without ZeroMQ.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ParameterServer": "service", "POLICIES": "service",
    "ServerConfig": "config", "MODES": "config", "NONFINITE_POLICIES": "config",
    "config_from_env": "config", "parse_args": "config",
    "main": "entry", "on_signal": "entry", "Terminated": "entry",
    "Shard": "shard", "CheckpointPlan": "shard",
    "SyncPolicy": "sync_policy", "AsyncPolicy": "async_policy",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'distflow.distribute.server' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"distflow.distribute.server.{module}"), name)


__all__ = sorted(_EXPORTS)
