"""Cross-worker reductions for custom training loops (`strategy.reduce`, `strategy.gather`).

Shard 0 collects one value per live worker under a key (the workers' running
count of collectives, equal on every worker because they run the same loop)
and answers every contributor once all live workers have offered theirs:
`sum` adds them, `gather` concatenates them along axis 0 in worker order. The
state here is plain arrays and worker ids: no sockets, testable alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("sum", "gather")
MAX_OPEN = 64  # collectives waiting at once on one server (a worker is at most a few ahead)


@dataclass
class _Open:
    kind: str
    values: dict[int, np.ndarray] = field(default_factory=dict)
    waiters: list[Any] = field(default_factory=list)


class Collectives:
    """The collectives under way on one server, keyed by the workers' sequence number."""

    def __init__(self) -> None:
        self._open: dict[int, _Open] = {}

    def __bool__(self) -> bool:
        """Whether any collective is waiting for workers."""
        return bool(self._open)

    def offer(self, key: int, kind: str, worker: int, value: np.ndarray, waiter: Any) -> None:
        """Records `worker`'s value for collective `key`.

        Raises:
            ValueError: the kind differs from the other workers' for this key, the
                value's dtype or trailing shape differs from theirs, the worker
                already offered one, or too many collectives are open.
        """
        entry = self._open.get(key)
        if entry is None:
            if len(self._open) >= MAX_OPEN:
                raise ValueError(f"{MAX_OPEN} collectives are already waiting for workers")
            entry = self._open[key] = _Open(kind)
        _check_fits(entry, key, kind, worker, value)
        entry.values[worker] = value
        entry.waiters.append(waiter)

    def complete(self, live: set[int]) -> Iterator[tuple[list[Any], np.ndarray]]:
        """Yields (waiters, result) of each collective every live worker has offered to."""
        for key in sorted(self._open):
            entry = self._open[key]
            if live <= entry.values.keys():
                del self._open[key]
                yield entry.waiters, _combine(entry)


def _check_fits(entry: _Open, key: int, kind: str, worker: int, value: np.ndarray) -> None:
    if entry.kind != kind:
        raise ValueError(f"collective {key} is a {entry.kind!r} on the other workers; worker "
                         f"{worker} sent {kind!r}. Every worker must run the same reductions "
                         f"in the same order.")
    if worker in entry.values:
        raise ValueError(f"worker {worker} already sent its value for collective {key}")
    other = next(iter(entry.values.values()), None)
    if other is not None and (other.dtype != value.dtype or (
            other.shape != value.shape if kind == "sum" else other.shape[1:] != value.shape[1:])):
        raise ValueError(f"worker {worker} sent a {value.dtype} {list(value.shape)} value for "
                         f"collective {key}; the others sent {other.dtype} "
                         f"{list(other.shape)}")


def _combine(entry: _Open) -> np.ndarray:
    values = [entry.values[w] for w in sorted(entry.values)]
    if entry.kind == "sum":
        return np.sum(values, axis=0, dtype=values[0].dtype)
    return np.concatenate(values, axis=0)
