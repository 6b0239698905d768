"""Twin processes: an op's row ranges run in other processes, free of this one's GIL.

An op whose pieces are many short NumPy calls (a recurrence's steps, a convolution's
slices) gains little from a second thread: each call takes the GIL for its Python
part, and the two threads hand it back and forth at every call. Measured on this
project's two-core machines, the example CNN's training step took 17.5 ms on two
threads against 23.6 on one, while two processes each stepping half the batch on one
thread took 11.6-11.9 ms side by side (benchmarks/README.md, "Issue 17 closed";
`benchmarks/twin_bench.py`).

So with `intra_op.threads()` = N > 1, a process keeps N - 1 twins: Python processes
running `python -m distflow.twin`, BLAS at one thread, started the first time they
are wanted (about 0.3 s, once). `split(count, kernel, *args)` cuts range(count) into N near-equal
row ranges, sends all but the first to the twins, runs the first itself and returns
when every range is done. Kernels and arguments follow three rules:

- a kernel is a module-level function marked `@twin.kernel`, called as
  kernel(part, start, stop, *args) for range number `part` and writing only its own
  rows of its outputs; a twin imports it by module and name (only marked functions
  of `distflow` modules run);
- array arguments live in `twin.array` memory (or are views of such arrays): pages
  both processes map (one `memfd` each, passed to a twin over its socket once), so
  nothing is copied or pickled; other arguments are ints, floats, bools, strings,
  None or tuples of these, sent as JSON;
- a kernel that sums over its rows writes one partial per range (a `twin.array`
  whose first axis is indexed by `part`) for the caller to add in range order.

A call whose arrays are not all twin arrays, or made while another thread uses the
twins, runs its ranges on threads (the same results). With one thread configured,
`DISTFLOW_TWINS=0`, or no `os.memfd_create`, `twin.array` is a plain NumPy array and
every call runs on threads; so do all calls after twins failed to start (with one
warning saying why). A twin that dies, or does not answer within
`DISTFLOW_TWIN_TIMEOUT` seconds, fails the call with an error naming it and the
kernel; the next call starts new twins. Twins exit when their parent's socket
closes (the parent exited or was killed).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import intra_op, process_env

__all__ = ["array", "copy", "counts", "ensure_started", "holds", "kernel", "pids", "shared",
           "split"]

_MESSAGE = 1 << 16  # bytes: the largest message either side sends
SPIN = 200e-6  # seconds the caller polls for a twin's answer before sleeping
_KERNELS: dict[str, Callable] = {}


def kernel(fn: Callable) -> Callable:
    """Marks a module-level function as a kernel twins may run (see the module
    docstring); returns it unchanged."""
    _KERNELS[_kernel_name(fn)] = fn
    fn.twin_kernel = True
    return fn


def _kernel_name(fn: Callable) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


# ---------------------------------------------------------------- shared arrays


class _Segment:
    """One memfd mapped here: its file descriptor, size and address."""

    def __init__(self, nbytes: int):
        self.fd = os.memfd_create("distflow-twin", os.MFD_CLOEXEC)
        self.size = max(mmap.PAGESIZE, -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE)
        os.ftruncate(self.fd, self.size)
        self.map = mmap.mmap(self.fd, self.size)
        self.address = np.frombuffer(self.map, np.uint8, 1).ctypes.data
        self.id = next(_SEGMENT_IDS)


_SEGMENT_IDS = iter(range(1, 1 << 62))
_SEGMENTS: dict[int, tuple[int, int, int]] = {}  # id -> (address, size, fd)
_DROPPED: deque[int] = deque()  # segments freed since the twins last heard
_POOL: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()
_POOL_SHAPES, _POOL_DEPTH = 32, 3  # sizes kept, arrays per size
_LOCK = threading.Lock()


def _shared_flat(count: int, dtype: np.dtype) -> np.ndarray:
    """A 1-D array of `count` items over a fresh segment, which lives as long as any
    view of the array."""
    seg = _Segment(count * dtype.itemsize)
    flat = np.frombuffer(seg.map, dtype, count)
    _SEGMENTS[seg.id] = (seg.address, seg.size, seg.fd)
    weakref.finalize(seg.map, _release, seg.id, seg.fd)
    return flat


def _release(seg_id: int, fd: int) -> None:
    """A segment's last array is gone: close its fd here and tell the twins. Takes no
    lock (the garbage collector may call it anywhere, a locked section included)."""
    _SEGMENTS.pop(seg_id, None)
    _DROPPED.append(seg_id)
    os.close(fd)


def shared_possible() -> bool:
    """Whether twins can run here: several intra-op threads, `DISTFLOW_TWINS` on, and
    memfds (Linux)."""
    return (intra_op.threads() > 1 and hasattr(os, "memfd_create")
            and bool(process_env.read("DISTFLOW_TWINS")))


def array(shape: tuple, dtype: Any) -> np.ndarray:
    """An uninitialised array of `shape` that twins can read and write (a plain array
    where twins cannot run), reused across calls once nothing references it any more:
    neither it nor any view of it (as `workspace.reusable`)."""
    dtype = np.dtype(dtype)
    shared = shared_possible()
    count = math.prod(shape)
    key = (count, dtype.str, shared)
    with _LOCK:
        flats = _POOL.setdefault(key, [])
        _POOL.move_to_end(key)
        for flat in flats:
            # the list, `flat`, the argument: every view's base is the flat array
            if sys.getrefcount(flat) == 3:
                return flat.reshape(shape)
    flat = _shared_flat(count, dtype) if shared else np.empty(count, dtype)
    evicted = []  # dropped outside the lock: their segments' finalizers may run then
    with _LOCK:
        if len(flats) < _POOL_DEPTH:
            flats.append(flat)
        while len(_POOL) > _POOL_SHAPES:
            evicted.append(_POOL.popitem(last=False))
    return flat.reshape(shape)


def copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `a` in a `twin.array` (its shape and dtype)."""
    out = array(a.shape, a.dtype)
    np.copyto(out, a)
    return out


def holds(a: np.ndarray) -> bool:
    """Whether `a` lies in twin memory (a `twin.array` or a view of one)."""
    return _locate(a) is not None


def shared(a: np.ndarray) -> np.ndarray:
    """`a` where twins can read it: `a` itself if it lies in twin memory already (e.g.
    another op's output) or twins cannot run here, else `copy(a)`."""
    return a if not shared_possible() or holds(a) else copy(a)


def _locate(a: np.ndarray) -> tuple[int, int] | None:
    """(segment id, byte offset) of an array that lies inside one segment, else None."""
    start = a.__array_interface__["data"][0]
    low, high = np.lib.array_utils.byte_bounds(a) if hasattr(np.lib, "array_utils") \
        else np.byte_bounds(a)
    for seg_id, (address, size, _) in list(_SEGMENTS.items()):
        if address <= low and high <= address + size:
            return seg_id, start - address
    return None


# ------------------------------------------------------------------ the wire


def _encode(value: Any, segments: set) -> Any:
    """A kernel argument as JSON: arrays as their segment, offset, shape, strides and
    dtype (their segment ids added to `segments`); None when it cannot be sent."""
    if isinstance(value, np.ndarray):
        where = _locate(value)
        if where is None:
            raise _NotShared
        segments.add(where[0])
        return {"array": [where[0], where[1], list(value.shape), list(value.strides),
                          value.dtype.str]}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, segments) for v in value]}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a twin kernel's argument must be a twin.array, a number, a string, "
                    f"None or a tuple of these. Received: {type(value).__name__}")


class _NotShared(Exception):
    """An array argument outside twin memory: the call runs on threads."""


def _decode(value: Any, maps: dict) -> Any:
    if isinstance(value, dict):
        if "tuple" in value:
            return tuple(_decode(v, maps) for v in value["tuple"])
        seg_id, offset, shape, strides, dtype = value["array"]
        return np.ndarray(shape, np.dtype(dtype), maps[seg_id], offset, strides)
    return value


def _send(sock: socket.socket, message: dict, fds: tuple = ()) -> None:
    data = json.dumps(message).encode()
    if len(data) > _MESSAGE:
        raise ValueError(f"a twin message is limited to {_MESSAGE} bytes. Received "
                         f"{len(data)} bytes for {message.get('kernel', message['op'])}: pass "
                         f"large or variable-size values as a twin.array instead")
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


# ------------------------------------------------------------ the parent's side


class _Twin:
    """One twin process and this side of its socket."""

    def __init__(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
                       [_package_root(), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "distflow.twin", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL)
        theirs.close()
        self.sock, self.sent = ours, set()

    def wait_ready(self, timeout: float) -> None:
        """Waits for the twin's hello (it has imported NumPy and this module)."""
        reply = self.receive(timeout, "its start-up (importing NumPy and distflow)")
        if reply.get("op") != "ready":
            raise RuntimeError(f"twin process {self.proc.pid} said {reply} instead of ready")

    def receive(self, timeout: float, waiting_for: str) -> dict:
        """The twin's next message; a clear error if it dies or stays silent. Polls for
        up to SPIN seconds before sleeping on the socket: a sleeping process takes tens
        of microseconds to wake on these machines."""
        data = self._poll()
        self.sock.settimeout(timeout)
        try:
            if data is None:
                data = self.sock.recv(_MESSAGE)
        except TimeoutError:
            raise TimeoutError(
                f"twin process {self.proc.pid} did not answer within {timeout:g} s while "
                f"this process waited for {waiting_for} (DISTFLOW_TWIN_TIMEOUT sets the "
                f"limit)") from None
        if not data:
            code = self.proc.wait(5)
            raise RuntimeError(f"twin process {self.proc.pid} exited (code {code}) while "
                               f"this process waited for {waiting_for}")
        return json.loads(data)

    def _poll(self) -> bytes | None:
        """The next message if it arrives within SPIN seconds, else None."""
        deadline = time.perf_counter() + SPIN
        self.sock.setblocking(False)
        while True:
            try:
                return self.sock.recv(_MESSAGE)
            except BlockingIOError:
                if time.perf_counter() > deadline:
                    return None

    def run(self, name: str, part: int, span: tuple, args: list, segments: set,
            dropped: list) -> None:
        """Sends the segments it lacks, the dropped ones, then the call."""
        try:
            self._send_run(name, part, span, args, segments, dropped)
        except OSError as error:
            raise RuntimeError(f"twin process {self.proc.pid} exited (code "
                               f"{self.proc.poll()}) before it was sent {name} over rows "
                               f"{span[0]}:{span[1]} ({error})") from error

    def _send_run(self, name, part, span, args, segments, dropped) -> None:
        if dropped:
            _send(self.sock, {"op": "drop", "ids": dropped})
            self.sent.difference_update(dropped)
        for seg_id in sorted(segments - self.sent):
            _send(self.sock, {"op": "segment", "id": seg_id, "size": _SEGMENTS[seg_id][1]},
                  (_SEGMENTS[seg_id][2],))
            self.sent.add(seg_id)
        _send(self.sock, {"op": "run", "kernel": name, "part": part, "span": list(span),
                          "args": args})

    def close(self) -> None:
        self.sock.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _package_root() -> str:
    """The directory holding this `distflow` package (what a twin must import)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_state: dict[str, Any] = {"twins": [], "error": None}
_IN_USE = threading.Lock()


def _start(count: int) -> list[_Twin]:
    """Starts `count` twins and waits for their hellos (all or none)."""
    twins = []
    try:
        for _ in range(count):
            twins.append(_Twin())
        for twin in twins:
            twin.wait_ready(_timeout())
    except BaseException:
        for twin in twins:
            twin.close()
        raise
    return twins


def _timeout() -> float:
    return float(process_env.read("DISTFLOW_TWIN_TIMEOUT"))


def _twins(count: int) -> list[_Twin] | None:
    """`count` running twins, started here if needed; None once a start has failed
    (warned once; `ensure_started` tries again)."""
    if len(_state["twins"]) != count and _state["error"] is None:
        _stop()
        try:
            _state["twins"] = _start(count)
        except Exception as error:  # noqa: BLE001 - the ops go on on threads
            _state["error"] = error
            warnings.warn(f"distflow's twin processes did not start ({error}); ops run "
                          f"their ranges on threads instead (set DISTFLOW_TWINS=0 to choose "
                          f"that without trying)", RuntimeWarning, stacklevel=4)
    return None if _state["error"] is not None else _state["twins"]


def ensure_started() -> list[int]:
    """Starts the twins this process's thread count calls for, if they do not run, and
    returns their pids (none where twins cannot run); raises what stops them."""
    if not shared_possible():
        return []
    with _IN_USE:  # not while another thread's call uses the twins
        _state["error"] = None
        count = intra_op.threads() - 1
        if len(_state["twins"]) != count:
            _stop()
            _state["twins"] = _start(count)
        return pids()


def pids() -> list[int]:
    """The running twins' process ids."""
    return [twin.proc.pid for twin in _state["twins"]]


def _stop() -> None:
    """Closes every twin (they exit on the closed socket)."""
    twins, _state["twins"] = _state["twins"], []
    for twin in twins:
        twin.close()


def split(count: int, fn: Callable, *args: Any) -> list[tuple[int, int]]:
    """fn(part, start, stop, *args) for each of the `intra_op.threads()` near-equal
    ranges (start, stop) that cut range(count), part = 0, 1, ...: the first here, the
    others in twin processes (started here on first use; on threads where twins do
    not run, see the module docstring); returns the ranges in part order. `fn` must
    be a `@twin.kernel`."""
    if not getattr(fn, "twin_kernel", False):
        raise TypeError(f"twin.split runs functions marked @twin.kernel only. Received: "
                        f"{fn.__module__}.{fn.__qualname__}")
    parts = intra_op.split(count, intra_op.threads())
    if len(parts) > 1 and shared_possible() and _IN_USE.acquire(blocking=False):
        try:
            twins = _twins(len(parts) - 1)
            if twins is not None and _run_on_twins(twins, fn, parts, args):
                _COUNTS["twins"] += 1
                return parts
        finally:
            _IN_USE.release()
    _COUNTS["threads" if len(parts) > 1 else "here"] += 1
    intra_op.parallel_for(len(parts), lambda k: fn(k, *parts[k], *args))
    return parts


_COUNTS = {"twins": 0, "threads": 0, "here": 0}


def counts() -> dict[str, int]:
    """How many `split` calls ran their ranges on the twins, on threads (twins wanted
    but not used: an argument outside twin memory, another thread using them, a
    failed start, DISTFLOW_TWINS=0), or all here (one range), since the process
    started: a benchmark's or a profile's check that an op's ranges reached the
    twins."""
    return dict(_COUNTS)


def _run_on_twins(twins: list[_Twin], fn: Callable, parts: list, args: tuple) -> bool:
    """Ranges 1.. on the twins and range 0 here; False (nothing run) when an array
    argument is not in twin memory."""
    segments: set = set()
    try:
        wire = [_encode(a, segments) for a in args]
    except _NotShared:
        return False
    dropped = [_DROPPED.popleft() for _ in range(len(_DROPPED))]
    name = _kernel_name(fn)
    try:
        for k, twin in enumerate(twins, 1):
            twin.run(name, k, parts[k], wire, segments, dropped)
    except RuntimeError:
        _stop()
        raise
    failure = None
    try:
        intra_op.run_as_piece(fn, 0, *parts[0], *args)
    except BaseException as error:  # noqa: BLE001 - raised once the twins have answered
        failure = error
    try:
        _collect(twins, name, parts)
    except _KernelError:
        raise
    except BaseException:
        _stop()  # e.g. Ctrl-C while waiting: an answer left unread would be misread later
        raise
    if failure is not None:
        raise failure
    return True


def _collect(twins: list[_Twin], name: str, parts: list) -> None:
    """Every twin's answer; raises the first failure once all have answered or
    failed (the caller stops the twins then: a kernel error leaves them in step, but
    a death or a silence may leave a late answer in a socket)."""
    errors = []
    for k, twin in enumerate(twins, 1):
        try:
            reply = twin.receive(_timeout(), f"{name} over rows {parts[k][0]}:{parts[k][1]}")
        except (TimeoutError, RuntimeError, OSError) as error:
            errors.append(error)
            continue
        if reply.get("op") != "done":
            errors.append(_remote_error(twin, name, reply))
    if errors:  # a death or a silence first
        raise sorted(errors, key=lambda e: isinstance(e, _KernelError))[0]


class _KernelError(RuntimeError):
    """A kernel raised in a twin process."""


def _remote_error(twin: _Twin, name: str, reply: dict) -> Exception:
    return _KernelError(f"{name} failed in twin process {twin.proc.pid}: "
                        f"{reply.get('error')}\n{reply.get('traceback', '')}")


def _after_fork() -> None:
    """A forked child shares none of its parent's twins (and closes its copies of their
    sockets, so that they still see their parent's exit)."""
    for twin in _state["twins"]:
        twin.sock.close()
    _state.update(twins=[], error=None)
    _SEGMENTS.clear()
    _DROPPED.clear()
    _POOL.clear()


os.register_at_fork(after_in_child=_after_fork)


@kernel
def probe(part: int, start: int, stop: int, out: np.ndarray, pids_out: np.ndarray,
          pause: float = 0.0, fail: str | None = None) -> None:
    """A kernel for checks and for timing the round trip: out[start:stop] = its row
    numbers, pids_out[part] = the pid of the process that ran the range; ranges after
    the first sleep `pause` seconds first (a slow twin), and every range raises
    ValueError(fail) if `fail` is given."""
    if pause > 0 and part > 0:
        time.sleep(pause)
    if fail is not None:
        raise ValueError(fail)
    out[start:stop] = np.arange(start, stop)
    pids_out[part] = os.getpid()


# ------------------------------------------------------------------ the twin


def _kernel_by_name(name: str) -> Callable:
    """A marked kernel of a distflow module, imported on first use."""
    module, _, qualname = name.partition(":")
    if module != "distflow" and not module.startswith("distflow."):
        raise ValueError(f"twins run distflow's kernels only. Received: {name}")
    if name not in _KERNELS:
        __import__(module)
    fn = _KERNELS.get(name)
    if fn is None:
        raise ValueError(f"{name} is not a @twin.kernel")
    return fn


def _serve(sock: socket.socket) -> None:
    """The twin's loop: map segments, drop them, run kernels, until the socket closes."""
    import traceback
    maps: dict[int, mmap.mmap] = {}
    _send(sock, {"op": "ready", "pid": os.getpid()})
    while True:
        data, fds, _, _ = socket.recv_fds(sock, _MESSAGE, 1)
        if not data:
            return
        message = json.loads(data)
        if message["op"] == "segment":
            maps[message["id"]] = mmap.mmap(fds[0], message["size"])
            os.close(fds[0])
        elif message["op"] == "drop":
            for seg_id in message["ids"]:
                maps.pop(seg_id, None)
        else:
            try:
                fn = _kernel_by_name(message["kernel"])
                fn(message["part"], *message["span"], *(_decode(a, maps) for a in message["args"]))
                _send(sock, {"op": "done"})
            except Exception as error:  # noqa: BLE001 - the parent raises it
                _send(sock, {"op": "failed", "error": f"{type(error).__name__}: {error}",
                             "traceback": traceback.format_exc()[-4000:]})


def _main(argv: list[str]) -> None:
    """`python -m distflow.twin FD`: serve the parent on socket FD (run through the
    imported module, whose kernel registry the kernels' modules fill)."""
    import signal

    from distflow import twin
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides about Ctrl-C
    with socket.socket(fileno=int(argv[1])) as sock:
        twin._serve(sock)


if __name__ == "__main__":
    _main(sys.argv)
