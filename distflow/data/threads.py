"""The threaded transformations: `prefetch` (a producer thread ahead of the consumer)
and `map(num_parallel_calls=...)` (a thread pool, results in input order)."""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from distflow.data.base import Dataset, implementation
from distflow.data.structure import (
    AUTOTUNE,
    _call,
    _peek,
    _spec_of,
    _tensors,
    _to_numpy_structure,
)
from distflow.data.transforms import _Unary

_PREFETCH_POLL = 1.0  # seconds between checks that the producer thread is alive


@implementation
class _Prefetch(_Unary):
    """Produces up to `buffer_size` elements ahead in a background thread."""

    def __init__(self, input_dataset: Dataset, buffer_size: int):
        super().__init__(input_dataset)
        self._size = 2 if buffer_size in (AUTOTUNE, 0) else int(buffer_size)

    def _elements(self) -> Iterator[Any]:
        q: queue.Queue = queue.Queue(self._size)
        stop = threading.Event()
        done = object()
        thread = threading.Thread(target=_produce, args=(self._input, q, stop, done),
                                  daemon=True, name="distflow-prefetch")
        thread.start()
        try:
            while True:
                item = _get(q, thread)
                if item is done:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()


@dataclass
class _Failure:
    error: BaseException


def _produce(dataset: Dataset, q: queue.Queue, stop: threading.Event, done: object) -> None:
    try:
        for element in dataset._iter_numpy():
            if not _put(q, element, stop):
                return
        _put(q, done, stop)
    except BaseException as e:  # handed to the consumer, which re-raises it
        _put(q, _Failure(e), stop)


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=_PREFETCH_POLL)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, thread: threading.Thread) -> Any:
    while True:
        try:
            return q.get(timeout=_PREFETCH_POLL)
        except queue.Empty:
            if not thread.is_alive() and q.empty():
                raise RuntimeError("The prefetch thread ended without delivering its "
                                   "elements.") from None


@implementation
class _ParallelMap(_Unary):
    """`map(num_parallel_calls=N)`: N threads apply the function; output keeps input order."""

    def __init__(self, input_dataset: Dataset, map_func: Callable, workers: int):
        super().__init__(input_dataset)
        self._fn = map_func
        self._workers = (os.cpu_count() or 1) if workers == AUTOTUNE else workers

    def _apply(self, element: Any) -> Any:
        return _to_numpy_structure(_call(self._fn, _tensors(element)))

    def _elements(self) -> Iterator[Any]:
        with ThreadPoolExecutor(self._workers, thread_name_prefix="distflow-map") as pool:
            pending: deque = deque()
            for element in self._input._iter_numpy():
                pending.append(pool.submit(self._apply, element))
                if len(pending) >= 2 * self._workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    @property
    def element_spec(self) -> Any:
        return _spec_of(_peek(self))
