"""Cluster description: who this process is and where the parameter servers are.

The launcher describes the cluster to each child through `DISTFLOW_*` variables
(table in docs/architecture.md); tests and custom set-ups build a `ClusterSpec`
directly, with no launcher involved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STRATEGIES = ("mirrored", "async")
_TIMEOUT_VARIABLES = {"timeout": "DISTFLOW_REQUEST_TIMEOUT",
                      "heartbeat_timeout": "DISTFLOW_HEARTBEAT_TIMEOUT"}


@dataclass(frozen=True)
class ClusterSpec:
    """Where the servers are and which worker this process is.

    Attributes:
        ps_addrs: server addresses (`tcp://host:port`); index = shard id.
        num_workers: number of workers in the run.
        worker_index: this worker's rank; 0 is the chief.
        strategy: "mirrored" (synchronous) or "async".
        max_staleness: async bound (None: unbounded).
        run_id: identifies the run in logs and checkpoints.
        keys_dir: CURVE key directory, or None for plain TCP.
        timeout: seconds a request may wait for a server before failing.
        heartbeat_timeout: seconds of silence after which servers declare a
            worker dead (workers send heartbeats at a quarter of it).
        startup_timeout: how long the first contact with the servers (and the
            wait for the chief's initial values) may take, when longer than
            `timeout`: the run's startup deadline, DISTFLOW_RENDEZVOUS_TIMEOUT
            (the launcher's --rendezvous-timeout). None: `timeout`.
        seed: shared seed for the per-epoch shuffle (identical on every worker).
    """

    ps_addrs: tuple[str, ...]
    num_workers: int = 1
    worker_index: int = 0
    strategy: str = "mirrored"
    max_staleness: int | None = None
    run_id: str = "local"
    keys_dir: str | None = None
    timeout: float = 60.0
    heartbeat_timeout: float = 30.0
    startup_timeout: float | None = None
    seed: int = 0
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.ps_addrs:
            raise ValueError("`ps_addrs` must name at least one parameter server. Received: []")
        if self.num_workers < 1:
            raise ValueError(f"`num_workers` must be a positive int. "
                             f"Received: num_workers={self.num_workers}")
        if not 0 <= self.worker_index < self.num_workers:
            raise ValueError(f"`worker_index` must be in [0, {self.num_workers}). "
                             f"Received: worker_index={self.worker_index}")
        for name in ("timeout", "heartbeat_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"`{name}` must be a positive number of seconds (set by "
                                 f"{_TIMEOUT_VARIABLES[name]}). Received: {name}={value!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {STRATEGIES}. "
                             f"Received: strategy={self.strategy!r}")

    @property
    def is_chief(self) -> bool:
        """Worker 0 prints progress, evaluates and writes files."""
        return self.worker_index == 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClusterSpec | None:
        """Reads the launcher's variables; None when this process was not launched as a worker."""
        env = os.environ if environ is None else environ
        addrs = env.get("DISTFLOW_PS_ADDRS", "").strip()
        if env.get("DISTFLOW_ROLE", "worker") != "worker" or not addrs:
            return None
        return cls(
            ps_addrs=tuple(a.strip() for a in addrs.split(",") if a.strip()),
            num_workers=env_number(env, "DISTFLOW_NUM_WORKERS", 1),
            worker_index=env_number(env, "DISTFLOW_RANK", 0),
            strategy=env.get("DISTFLOW_STRATEGY", "mirrored"),
            max_staleness=env_number(env, "DISTFLOW_MAX_STALENESS", None),
            run_id=env.get("DISTFLOW_RUN_ID", "local"),
            keys_dir=env.get("DISTFLOW_KEYS") or None,
            timeout=env_number(env, "DISTFLOW_REQUEST_TIMEOUT", 60.0, float),
            heartbeat_timeout=env_number(env, "DISTFLOW_HEARTBEAT_TIMEOUT", 30.0, float),
            startup_timeout=env_number(env, "DISTFLOW_RENDEZVOUS_TIMEOUT", None, float),
            seed=env_number(env, "DISTFLOW_SEED", 0),
        )


def env_number(env: Mapping[str, str], name: str, default: float, kind: type = int) -> Any:
    """`kind(env[name])`, or `default` when the variable is unset or blank.

    Raises:
        ValueError: naming the variable and quoting the value that is not a number.
    """
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        what = "an int" if kind is int else "a number"
        raise ValueError(f"Environment variable {name} must be {what}. "
                         f"Received: {raw!r}") from None
