"""Cluster description: who this process is and where the parameter servers are.

The launcher describes the cluster to each child through `DISTFLOW_*` variables
(declared in `distflow/process_env.py`, which `from_env` reads through); tests
and custom set-ups build a `ClusterSpec` directly, with no launcher involved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from distflow import process_env

STRATEGIES = process_env.variable("DISTFLOW_STRATEGY").choices
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
    run_id: str = process_env.variable("DISTFLOW_RUN_ID").default
    keys_dir: str | None = None
    timeout: float = process_env.variable("DISTFLOW_REQUEST_TIMEOUT").default
    heartbeat_timeout: float = process_env.variable("DISTFLOW_HEARTBEAT_TIMEOUT").default
    startup_timeout: float | None = None
    seed: int = process_env.variable("DISTFLOW_SEED").default
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
        """Reads the launcher's variables; None when this process was not launched as a worker.

        Raises:
            ValueError: a variable that is not of its declared type, or a
                setting this class refuses (quoting the field and its variable).
        """
        env = os.environ if environ is None else environ
        if not process_env.is_set("DISTFLOW_PS_ADDRS", env) or \
                _read("DISTFLOW_ROLE", env) != "worker":
            return None
        return cls(
            ps_addrs=_read("DISTFLOW_PS_ADDRS", env),
            num_workers=_read("DISTFLOW_NUM_WORKERS", env),
            worker_index=_read("DISTFLOW_RANK", env),
            strategy=_read("DISTFLOW_STRATEGY", env),
            max_staleness=_read("DISTFLOW_MAX_STALENESS", env),
            run_id=_read("DISTFLOW_RUN_ID", env),
            keys_dir=_read("DISTFLOW_KEYS", env),
            timeout=_read("DISTFLOW_REQUEST_TIMEOUT", env),
            heartbeat_timeout=_read("DISTFLOW_HEARTBEAT_TIMEOUT", env),
            startup_timeout=(_read("DISTFLOW_RENDEZVOUS_TIMEOUT", env)
                             if process_env.is_set("DISTFLOW_RENDEZVOUS_TIMEOUT", env) else None),
            seed=_read("DISTFLOW_SEED", env, checked=True),
        )


def _read(name: str, env: Mapping[str, str], checked: bool = False) -> Any:
    """The declared type of `name`; ranges and choices are `__post_init__`'s to check."""
    return process_env.read(name, env, checked=checked)

