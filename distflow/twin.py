"""Twin processes: an op's row ranges run in other processes, free of this one's GIL.

An op whose pieces are many short NumPy calls (a recurrence's steps, a convolution's
slices) gains little from a second thread: each call takes the GIL for its Python
part, and the two threads hand it back and forth at every call. Measured on this
project's two-core machines, the example CNN's training step took 17.5 ms on two
threads against 23.6 on one, while two processes each stepping half the batch on one
thread took 11.6-11.9 ms side by side (benchmarks/README.md, "Twin processes").

So with `intra_op.threads()` = N > 1, a process keeps N - 1 twins: Python processes
running `python -m distflow.twin`, BLAS at one thread, started in the background the
first time they are wanted (the calls before they are ready run on threads, as
without twins). `split(count, kernel, *args)` cuts range(count) into N near-equal
row ranges, sends all but the first to the twins, runs the first itself and returns
when every range is done. Kernels and arguments follow three rules:

- a kernel is a module-level function marked `@twin.kernel`, called as
  kernel(part, start, stop, *args) for range number `part` and writing only its own
  rows of its outputs; a twin
  imports it by module and name (only marked functions of `distflow` modules run);
- array arguments live in `twin.array` memory (or are views of such arrays): shared
  pages both processes map, so nothing is copied or pickled; other arguments are
  ints, floats, bools, strings, None or tuples/lists of these, sent as JSON;
- a kernel that sums over its rows writes one partial per range (a `twin.array`
  whose first axis is indexed by `part`) for the caller to add in range order.

With one thread configured, or where twins cannot run (no `os.memfd_create`), every
range runs here in order and `twin.array` is a plain NumPy array.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import intra_op

__all__ = ["array", "kernel", "split"]

_KERNELS: dict[str, Callable] = {}


def kernel(fn: Callable) -> Callable:
    """Marks a module-level function as a kernel twins may run (see the module
    docstring); returns it unchanged."""
    _KERNELS[f"{fn.__module__}:{fn.__qualname__}"] = fn
    fn.twin_kernel = True
    return fn


_POOL: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()
_POOL_SHAPES, _POOL_DEPTH = 16, 3
_POOL_LOCK = threading.Lock()


def array(shape: tuple, dtype: Any) -> np.ndarray:
    """An uninitialised array of `shape` that twins can read and write, reused across
    calls once nothing else references it (as `workspace.reusable`)."""
    key = (tuple(shape), np.dtype(dtype).str)
    with _POOL_LOCK:
        arrays = _POOL.setdefault(key, [])
        _POOL.move_to_end(key)
        for candidate in arrays:
            if sys.getrefcount(candidate) == 3:  # the list, `candidate`, the argument
                return candidate
        fresh = np.empty(math.prod(shape), dtype).reshape(shape)
        if len(arrays) < _POOL_DEPTH:
            arrays.append(fresh)
        while len(_POOL) > _POOL_SHAPES:
            _POOL.popitem(last=False)
        return fresh


def split(count: int, fn: Callable, *args: Any) -> list[tuple[int, int]]:
    """fn(part, start, stop, *args) for each of the `intra_op.threads()` near-equal
    ranges (start, stop) that cut range(count), part = 0, 1, ...: the first here, the
    others in twin processes (on threads while the twins start); returns the ranges in
    part order. `fn` must be a `@twin.kernel`."""
    if not getattr(fn, "twin_kernel", False):
        raise TypeError(f"twin.split runs functions marked @twin.kernel only. Received: "
                        f"{fn.__module__}.{fn.__qualname__}")
    parts = intra_op.split(count, intra_op.threads())
    intra_op.parallel_for(len(parts), lambda k: fn(k, *parts[k], *args))
    return parts
