"""Per-thread scratch buffers that kernels reuse from call to call.

A fresh multi-megabyte NumPy array costs page faults (the allocator hands large
blocks back to the system when they are freed), so a kernel's temporaries live in a
buffer per named slot and dtype that only grows. A scratch buffer never becomes an
output, a gradient or a residual. The one exception is a value several VJPs of one op
share: its owner `claim`s the slot and checks with `holds` that no other op has
written the slot since.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

_local = threading.local()


def scratch(slot: str, shape: tuple, dtype: Any) -> np.ndarray:
    """A C-contiguous array of `shape` in this thread's buffer for (`slot`, `dtype`);
    its contents are whatever the last user left."""
    dtype = np.dtype(dtype)
    bufs = _local.__dict__.setdefault("bufs", {})
    size = math.prod(shape)
    buf = bufs.get((slot, dtype))
    if buf is None or buf.size < size:
        buf = bufs[(slot, dtype)] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def claim(slot: str, owner: Any, buf: np.ndarray) -> np.ndarray:
    """Records `owner` as the one whose value `slot`'s buffer now holds; returns `buf`."""
    _local.__dict__.setdefault("owners", {})[slot] = owner
    return buf


def holds(slot: str, owner: Any) -> bool:
    """Whether `slot`'s buffer still holds the value `owner` claimed it for."""
    return _local.__dict__.get("owners", {}).get(slot) is owner
