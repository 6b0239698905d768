"""`LRU`: the one bounded cache of the client path (stdlib only).

The caches of the wire path (a client's push plans, the decoder's layouts by
packed spec list, a rate-limited log's kinds) normally hold a handful of
entries that are looked up on every message; a peer sending ever new keys (a
fuzzer, a script pushing ever new gradient sets) must not make them grow
without bound. An `LRU` keeps at most `max_size` entries and, when a new one
would exceed that, forgets the least recently used one, so the entries in use
stay cached whatever else arrives.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING: Any = object()


class LRU(Generic[K, V]):
    """A mapping of at most `max_size` entries; the least recently used one goes first.

    `get` and `put` both count as a use. Not thread-safe: each cache belongs to
    one thread (a client), or to code that runs under one lock.

    Args:
        max_size: the most entries kept, >= 1.
    """

    __slots__ = ("max_size", "_items")

    def __init__(self, max_size: int):
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise ValueError(f"`max_size` must be a positive int. Received: max_size={max_size!r}")
        self.max_size = max_size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, default: Any = None) -> Any:
        """The value of `key` (now the most recently used), or `default`."""
        value = self._items.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        """Stores `value` under `key`, forgetting the least recently used entry if full;
        returns `value`."""
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.max_size:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forgets every entry."""
        self._items.clear()

    def values(self) -> list[V]:
        """The values, least recently used first (no use is counted)."""
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
