"""Intra-op parallelism: the process's BLAS thread count, and a small thread pool that
runs one op's independent pieces (batch slices of a convolution, chunks of an
elementwise pass) on that many threads.

The thread count is the BLAS library's (OpenBLAS, as NumPy's wheels ship it): what
`OMP_NUM_THREADS` / `OPENBLAS_NUM_THREADS` gave it at start-up, or what
`distflow.config.threading.set_intra_op_parallelism_threads` set since. While the pool
runs pieces, BLAS is held at one thread (each piece's matrix product then runs in its
own thread: NumPy releases the GIL in matmul and in its copy and ufunc loops) and set
back to the configured count when the last region in the process ends. With one thread
configured, or no OpenBLAS whose count distflow can set, every piece runs in the
calling thread, in order, and BLAS is never touched.

A piece must not depend on another piece of the same call (each writes its own output
rows); pieces may run in any order and on any thread, so a kernel that sums pieces
keeps one partial result per piece and adds them in piece order (the same sum
whatever the thread count).

`matmul` and `one_blas_thread` keep small products from waking BLAS's own threads
while several are configured: after a threaded call OpenBLAS's idle threads spin for
about 0.1 s, on the cores the pool needs.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from distflow.blas import loaded_libraries

_lock = threading.Lock()
# "threads": the configured count, read from BLAS once and kept by set_blas_threads
# (ops ask for it at every call: no ctypes call or lock on that path)
# "woken": when a product last ran on BLAS's own threads (time.monotonic)
_state = {"blas": None, "active": 0, "saved": 0, "pool": None, "size": 0, "threads": None,
          "woken": float("-inf")}
_worker = threading.local()


# ------------------------------------------------------------------------ BLAS


def blas_functions(action: str) -> list:
    """OpenBLAS's `*_{action}_num_threads` functions in the libraries loaded in this
    process (`action` 'get' or 'set'); empty when there is none."""
    found = []
    for path in loaded_libraries():
        fn = _library_function(path, action)
        if fn is not None:
            found.append(fn)
    return found


def _library_function(path: str, action: str):
    """The library's `{prefix}_{action}_num_threads{suffix}`, or None."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for name in (f"{prefix}_{action}_num_threads{suffix}" for prefix in (
            "scipy_openblas", "openblas") for suffix in ("64_", "")):
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn
    return None


def _blas():
    """(get, [set, ...]) of the loaded OpenBLAS, found once; None without one."""
    if _state["blas"] is None:
        getters, setters = blas_functions("get"), blas_functions("set")
        _state["blas"] = (getters[0], setters) if getters and setters else False
    return _state["blas"] or None


def _set_blas(num_threads: int) -> None:
    for fn in _blas()[1]:
        fn(ctypes.c_int(num_threads))


def blas_threads() -> int | None:
    """The configured BLAS thread count (None if no OpenBLAS is loaded); inside a
    parallel region, the count it will be set back to."""
    blas = _blas()
    if blas is None:
        return None
    with _lock:
        return _state["saved"] if _state["active"] else int(blas[0]())


def set_blas_threads(num_threads: int) -> None:
    """Sets the BLAS thread count (a positive int); a parallel region running now
    restores this count when it ends instead of the previous one."""
    if _blas() is None:
        return
    with _lock:
        _state["threads"] = max(1, num_threads)
        if _state["active"]:
            _state["saved"] = num_threads
        else:
            _set_blas(num_threads)


def threads() -> int:
    """How many threads an op's pieces may run on: the configured BLAS thread count,
    1 without a settable BLAS or inside a piece (pieces do not nest)."""
    if getattr(_worker, "inside", False):
        return 1
    count = _state["threads"]
    if count is None:
        count = _state["threads"] = max(1, blas_threads() or 1)
    return count


# ------------------------------------------------------------------------ pool


def _pool(size: int) -> ThreadPoolExecutor:
    """The process's pool of `size` helper threads (replaced when the size changes)."""
    with _lock:
        if _state["size"] != size:
            if _state["pool"] is not None:
                _state["pool"].shutdown(wait=False)
            _state["pool"] = ThreadPoolExecutor(size, thread_name_prefix="distflow-intra-op")
            _state["size"] = size
        return _state["pool"]


def _enter() -> None:
    """Holds BLAS at one thread until the matching `_leave` (regions may overlap)."""
    with _lock:
        if _state["active"] == 0:
            _state["saved"] = int(_blas()[0]())
            _set_blas(1)
        _state["active"] += 1


def _leave() -> None:
    """Ends one `_enter`; the last one sets BLAS back to the configured count."""
    with _lock:
        _state["active"] -= 1
        if _state["active"] == 0:
            _set_blas(_state["saved"])


def _drain(body: Callable[[int], None], count: int, counter) -> None:
    """Runs body(i) for the pieces this thread takes from the shared counter."""
    _worker.inside = True
    try:
        for i in iter(counter.__next__, None):
            if i >= count:
                return
            body(i)
    finally:
        _worker.inside = False


def run_as_piece(fn: Callable, *args: object) -> object:
    """fn(*args) as one piece of a region: BLAS held at one thread and `threads()` 1
    inside it (e.g. the calling process's range while twin processes run the others)."""
    _enter()
    _worker.inside = True
    try:
        return fn(*args)
    finally:
        _worker.inside = False
        _leave()


def parallel_for(count: int, body: Callable[[int], None]) -> None:
    """Calls body(i) once for every i in range(count), on up to `threads()` threads
    (the caller's one of them), and returns when all calls have returned.

    Pieces are handed out in order to whichever thread is free. With one thread (or
    one piece) the calls run here, in order, with BLAS as configured. The first
    exception a piece raises is raised here once every running piece has finished.
    """
    size = threads()
    workers = min(size, count)
    if workers <= 1:
        for i in range(count):
            body(i)
        return
    counter = itertools.count()
    _enter()
    try:
        helpers = _submit(size - 1, workers - 1, (body, count, counter))
        try:
            _drain(body, count, counter)
        finally:
            errors = [f.exception() for f in helpers]
        for error in errors:
            if error is not None:
                raise error
    finally:
        _leave()


def pipeline(count: int, produce: Callable[[int], None], consume: Callable[[int], None],
             prepare: Callable[[int], None] | None = None) -> None:
    """produce(i) for every i in range(count), in order on the calling thread; for i >= 1
    prepare(i) (if given) before produce(i); consume(i) after produce(i). E.g. a
    backward recurrence over chunks of steps, each chunk's elementwise factors formed
    ahead of it (the first chunk, which would wait for them, does without) and its
    weight-gradient product taken once it is done.

    With several threads another intra-op thread forms prepare(1), prepare(2), ... in
    order while the caller produces, then takes consume(i) in order as the items are
    produced; the caller, done producing, takes the ones left: consume(i) runs once, on
    either thread, so it must write only its own result. BLAS is held at one thread
    meanwhile. With one thread, one item, or inside a piece: produce(0), consume(0),
    then prepare(i), produce(i), consume(i) here, in order. The first exception of
    either side is raised here once both have stopped."""
    size = threads()
    if size <= 1 or count <= 1:
        _run_in_order(count, produce, consume, prepare)
        return
    pipe = _Pipe(count)
    _enter()
    try:
        future = _submit_one(size - 1, _pipeline_helper, pipe, prepare, consume)
        if future is None:
            _run_in_order(count, produce, consume, prepare)
            return
        _pipeline_caller(pipe, produce, consume, prepare, future)
    finally:
        _leave()


def _run_in_order(count: int, produce, consume, prepare) -> None:
    for i in range(count):
        if i and prepare is not None:
            prepare(i)
        produce(i)
        consume(i)


class _Pipe:
    """What the two sides of one `pipeline` call share: an event per item prepared and
    per item produced, the next consume to take, and whether a side has failed."""

    def __init__(self, count: int):
        self.count = count
        self.prepared = [threading.Event() for _ in range(count)]
        self.prepared[0].set()  # the first item is produced without a prepare
        self.produced = [threading.Event() for _ in range(count)]
        self.claims = itertools.count()
        self.failed = False

    def run(self, items, work, waits, done) -> None:
        """work(i) for each i of `items`, each once waits[i] is set (unless `waits` is
        None), then done[i].set(); stops once either side has failed."""
        for i in items:
            if waits is not None:
                waits[i].wait()
            if self.failed:
                return
            work(i)
            done[i].set()

    def release_all(self) -> None:
        """Marks the pipe failed and wakes whichever side waits for the other."""
        self.failed = True
        for event in (*self.prepared, *self.produced):
            event.set()

    def take_consumes(self, consume) -> None:
        """consume(i) for the items this thread claims, each once it is produced."""
        for i in iter(self.claims.__next__, None):
            if i >= self.count:
                return
            self.produced[i].wait()
            if self.failed:
                return
            consume(i)


def _pipeline_caller(pipe: _Pipe, produce, consume, prepare, future) -> None:
    """The calling side of `pipeline`: a failure stops the helper before it is raised."""
    try:
        pipe.run(range(pipe.count), produce, pipe.prepared if prepare is not None else None,
                 pipe.produced)
        pipe.take_consumes(consume)
    except BaseException:
        pipe.release_all()
        future.exception()
        raise
    error = future.exception()
    if error is not None:
        raise error


def _pipeline_helper(pipe: _Pipe, prepare, consume) -> None:
    """The other side of `pipeline`, on a pool thread: prepare(1, 2, ...), then consumes."""
    _worker.inside = True
    try:
        if prepare is not None:
            pipe.run(range(1, pipe.count), prepare, None, pipe.prepared)
        pipe.take_consumes(consume)
    except BaseException:
        pipe.release_all()
        raise
    finally:
        _worker.inside = False


def _submit_one(size: int, fn: Callable, *args: object):
    """fn(*args) on the pool of `size` threads; None once the interpreter is shutting
    down and the pool refuses new work."""
    try:
        return _pool(size).submit(fn, *args)
    except RuntimeError:
        return None


def _submit(size: int, helpers: int, args: tuple) -> list:
    """`helpers` drains on the pool of `size` threads; fewer (the caller then takes
    their pieces) once the interpreter is shutting down and refuses new work."""
    futures = []
    try:
        pool = _pool(size)
        for _ in range(helpers):
            futures.append(pool.submit(_drain, *args))
    except RuntimeError:
        pass
    return futures


def split(count: int, parts: int) -> list[tuple[int, int]]:
    """`count` items as at most `parts` contiguous (start, stop) ranges of near-equal size."""
    parts = max(1, min(parts, count))
    bounds = [count * k // parts for k in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def chunks(count: int, per_thread: int = 2) -> list[tuple[int, int]]:
    """`count` items (a batch axis) as contiguous ranges for `parallel_for`: one range
    with one thread, else `per_thread` ranges per thread (a thread that falls behind
    leaves its later ranges to the others)."""
    size = threads()
    return split(count, 1 if size == 1 else size * per_thread)


def per_thread(count: int, fn: Callable[[int, int], None]) -> None:
    """fn(start, stop) over one contiguous range of range(count) per intra-op thread
    (near-equal sizes; one call here with one thread): for work whose pieces cost the
    same and should not be cut finer, e.g. a recurrence over independent samples."""
    parts = split(count, threads())
    parallel_for(len(parts), lambda k: fn(*parts[k]))


SMALL_PASS = 1 << 18  # elements: a pass this small stays on the calling thread


def over_rows(rows: int, elements: int, fn: Callable[[int, int], None]) -> None:
    """fn(start, stop) over contiguous ranges covering range(rows): the rows of one pass
    over `elements` elements. One call here for a small pass or one thread, else
    `chunks(rows)` on the intra-op threads (fn must only write its own rows)."""
    parts = chunks(rows) if elements >= SMALL_PASS else [(0, rows)]
    if len(parts) == 1:
        fn(0, rows)
        return
    parallel_for(len(parts), lambda k: fn(*parts[k]))


# OpenBLAS threads a GEMM of at least this many multiply-adds (its SMP_THRESHOLD_MIN
# times GEMM_MULTITHREAD_THRESHOLD); after such a call its idle threads spin for about
# 0.1 s, on the cores the pool needs.
BLAS_THREADED = 65536 * 4


def on_one_blas_thread(fn: Callable, *args: object) -> object:
    """fn(*args) with BLAS held at one thread (when more are configured): for a small
    product that should neither wake BLAS's threads nor differ from the one-thread
    result. With one thread configured, just the call."""
    if (_state["threads"] or threads()) <= 1:
        return fn(*args)
    _enter()
    try:
        return fn(*args)
    finally:
        _leave()


OWN_THREADS_PRODUCT = 1 << 24  # multiply-adds from which a product uses BLAS's threads


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of 2-D arrays. With several threads configured, a product that OpenBLAS
    would thread but that is too small to gain much from it (below OWN_THREADS_PRODUCT)
    runs with BLAS held at one thread: the one-thread result bit for bit, and BLAS's
    threads stay asleep instead of spinning on the cores the pool needs next. Larger
    products use BLAS's own threads (faster than row blocks on the pool, measured)."""
    return product(np.matmul, a.shape[0] * a.shape[1] * b.shape[1], a, b)


def product(fn: Callable, macs: int, *args: object) -> object:
    """fn(*args), a matrix product of `macs` multiply-adds, under `matmul`'s rule: BLAS
    held at one thread from BLAS_THREADED up to OWN_THREADS_PRODUCT when several
    threads are configured."""
    if (_state["threads"] or threads()) > 1 and BLAS_THREADED <= macs:
        if macs < OWN_THREADS_PRODUCT:
            return on_one_blas_thread(fn, *args)
        _state["woken"] = time.monotonic()
    return fn(*args)


BLAS_SPIN = 0.1  # seconds OpenBLAS's idle threads spin after a threaded call


def blas_spinning() -> bool:
    """Whether a product through `matmul` / `product` ran on BLAS's own threads within
    the last BLAS_SPIN seconds: they may still spin on a core, and an op whose pieces
    would share that core may do better on BLAS's threads itself."""
    return time.monotonic() - _state["woken"] < BLAS_SPIN


def rows_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of 2-D arrays by one range of a's rows per intra-op thread (BLAS at one
    thread in each; one product here with one thread): for a large product in an op
    whose other work runs on the pool, where BLAS's own threads would spin on the
    pool's cores for about 0.1 s afterwards."""
    out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    per_thread(a.shape[0], lambda lo, hi: np.matmul(a[lo:hi], b, out=out[lo:hi]))
    return out


def _after_fork() -> None:
    """A forked child has none of the parent's pool threads and no region running."""
    global _lock
    _lock = threading.Lock()
    if _state["active"]:
        _set_blas(_state["saved"])
    _state.update(active=0, pool=None, size=0)


os.register_at_fork(after_in_child=_after_fork)
