"""Per-thread scratch buffers that kernels reuse from call to call.

A fresh multi-megabyte NumPy array costs page faults (the allocator hands large
blocks back to the system when they are freed), so a kernel's temporaries live in a
buffer per named slot and dtype that only grows. A scratch buffer never becomes an
output, a gradient or a residual. The one exception is a value several VJPs of one op
share: its owner `claim`s the slot and checks with `holds` that no other op has
written the slot since.

`reusable` is for the other case, arrays that do become residuals or outputs (an
op's activations kept for its backward): an array of the shape is handed out again
once nothing references it any more.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict
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


_POOL: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()  # (shape, dtype) -> arrays
_POOL_SHAPES, _POOL_DEPTH = 16, 3
_POOL_LOCK = threading.Lock()


def reusable(shape: tuple, dtype: Any) -> np.ndarray:
    """An uninitialised array of `shape`, reused across calls (and threads) once nothing
    else references it (no residual, output or view of it is alive): a fresh
    multi-megabyte array costs a page fault per 4 KB on first touch, every training
    step. Up to three arrays per shape, for the 16 shapes used last."""
    key = (tuple(shape), np.dtype(dtype).str)
    with _POOL_LOCK:
        arrays = _POOL.setdefault(key, [])
        _POOL.move_to_end(key)
        for array in arrays:
            if sys.getrefcount(array) == 3:  # the list, `array`, getrefcount's argument
                return array
        array = np.empty(shape, dtype)
        if len(arrays) < _POOL_DEPTH:
            arrays.append(array)
        while len(_POOL) > _POOL_SHAPES:
            _POOL.popitem(last=False)
        return array
