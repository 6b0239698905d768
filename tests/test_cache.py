"""`distribute.cache.LRU`: bounded, forgets the least recently used entry first."""

from __future__ import annotations

import pytest

from distflow.distribute.cache import LRU


def test_a_full_cache_forgets_the_least_recently_used_entry():
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and cache.get("b", "gone") == "gone"


def test_putting_an_existing_key_replaces_it_without_evicting():
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.put("a", 10) == 10
    assert len(cache) == 2 and cache.get("a") == 10 and cache.get("b") == 2
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None


@pytest.mark.parametrize("size", [0, -1, 1.5, True, None])
def test_a_bad_size_is_refused_quoting_it(size):
    with pytest.raises(ValueError, match=f"max_size={size!r}"):
        LRU(size)

