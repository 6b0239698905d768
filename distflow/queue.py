"""`tf.queue`: thread-safe queues of tensor tuples, as TF's eager queues.

`enqueue` blocks while the queue is full, `dequeue` while it is empty; after
`close()` enqueues raise `CancelledError` and dequeues drain what is left, then
raise `OutOfRangeError` (TF's classes). Elements are tuples of tensors, one per
component (`dtypes`); a one-component queue hands back tensors, not tuples.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from distflow import ops
from distflow.errors import CancelledError, OutOfRangeError
from distflow.tensor import Tensor, as_array


class QueueBase:
    """A bounded queue of tuples of tensors; subclasses choose which element leaves.

    Args:
        capacity: the most elements it holds (enqueue blocks beyond it).
        dtypes: one dtype per component.
        shapes: optional shape per component, checked on enqueue.
        names: optional component names (then elements are dicts).
    """

    def __init__(self, capacity: int, dtypes: Any, shapes: Any = None, names: Any = None,
                 shared_name: str | None = None, name: str = "queue"):
        self._dtypes = [np.dtype(d) for d in _as_list(dtypes)]
        self._shapes = None if shapes is None else [tuple(s) for s in _as_list(shapes, True)]
        self._names = None if names is None else list(_as_list(names))
        self._capacity = int(capacity)
        self._items: collections.deque = collections.deque()
        self._closed = False
        self._cond = threading.Condition()
        self.name = name

    dtypes = property(lambda self: list(self._dtypes), doc="The components' dtypes.")
    shapes = property(lambda self: self._shapes, doc="The components' shapes, if given.")
    names = property(lambda self: self._names, doc="The components' names, if given.")

    def size(self, name: str | None = None) -> Tensor:
        """The number of elements, an int32 scalar."""
        with self._cond:
            return Tensor._wrap(np.asarray(len(self._items), np.int32))

    def is_closed(self, name: str | None = None) -> Tensor:
        """Whether `close()` was called, a bool scalar."""
        return Tensor._wrap(np.asarray(self._closed))

    def close(self, cancel_pending_enqueues: bool = False, name: str | None = None) -> None:
        """No more enqueues; pending dequeues finish with what is left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def enqueue(self, vals: Any, name: str | None = None) -> None:
        """Adds one element (blocks while full)."""
        self._put([self._element(vals)])

    def enqueue_many(self, vals: Any, name: str | None = None) -> None:
        """Adds the elements sliced along the first axis of every component."""
        parts = self._element(vals, many=True)
        self._put([tuple(Tensor._wrap(c.value[i]) for c in parts)
                   for i in range(len(parts[0].value))])

    def dequeue(self, name: str | None = None) -> Any:
        """Removes one element (blocks while empty)."""
        return self._unpack(self._get(1, exact=True)[0])

    def dequeue_many(self, n: int, name: str | None = None) -> Any:
        """Removes `n` elements, stacked per component (blocks until there are `n`)."""
        return self._stacked(self._get(int(n), exact=True))

    def dequeue_up_to(self, n: int, name: str | None = None) -> Any:
        """Removes up to `n` elements; fewer only once the queue is closed."""
        return self._stacked(self._get(int(n), exact=False))

    def _element(self, vals: Any, many: bool = False) -> tuple:
        if isinstance(vals, dict):
            if self._names is None:
                raise ValueError("This queue has no component names; enqueue a list.")
            vals = [vals[k] for k in self._names]
        vals = list(vals) if isinstance(vals, (list, tuple)) else [vals]
        if len(vals) != len(self._dtypes):
            raise ValueError(f"The queue has {len(self._dtypes)} components. Received "
                             f"{len(vals)} values.")
        out = tuple(ops.cast(ops.convert_to_tensor(v), d) for v, d in zip(vals, self._dtypes))
        for t, shape in zip(out, self._shapes or []):
            got = tuple(t.shape[1:] if many else t.shape)
            if got != shape:
                raise ValueError(f"The queue's component shape is {shape}. Received: {got}")
        return out

    def _put(self, elements: list) -> None:
        with self._cond:
            for element in elements:
                self._cond.wait_for(lambda: self._closed or len(self._items) < self._capacity)
                if self._closed:
                    raise CancelledError(f"Queue '{self.name}' is closed.")
                self._items.append(element)
                self._cond.notify_all()

    def _get(self, n: int, exact: bool) -> list:
        with self._cond:
            self._cond.wait_for(lambda: len(self._items) >= self._ready(n) or self._closed)
            if len(self._items) < n and (exact or not self._items):
                raise OutOfRangeError(f"Queue '{self.name}' is closed and has "
                                      f"{len(self._items)} elements (asked for {n}).")
            out = [self._take() for _ in range(min(n, len(self._items)))]
            self._cond.notify_all()
            return out

    def _ready(self, n: int) -> int:
        return n

    def _take(self) -> tuple:
        return self._items.popleft()

    def _unpack(self, element: tuple) -> Any:
        if self._names is not None:
            return dict(zip(self._names, element))
        return element[0] if len(element) == 1 else list(element)

    def _stacked(self, elements: list) -> Any:
        return self._unpack(tuple(ops.stack(list(c)) for c in zip(*elements)))


def _as_list(value: Any, shapes: bool = False) -> Sequence:
    if shapes and value and not isinstance(value[0], (list, tuple)):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else [value]


class FIFOQueue(QueueBase):
    """Elements leave in the order they came."""


class RandomShuffleQueue(QueueBase):
    """Elements leave in random order; a dequeue waits until more than
    `min_after_dequeue` are held (unless closed), so the mix stays shuffled.

    Args:
        capacity, min_after_dequeue, dtypes, shapes, names: as TF.
        seed: seeds the order (the same seed, the same order).
    """

    def __init__(self, capacity: int, min_after_dequeue: int, dtypes: Any, shapes: Any = None,
                 names: Any = None, seed: int | None = None, shared_name: str | None = None,
                 name: str = "random_shuffle_queue"):
        super().__init__(capacity, dtypes, shapes, names, shared_name, name)
        self._min_after = int(min_after_dequeue)
        self._rng = np.random.default_rng(seed)

    def _ready(self, n: int) -> int:
        return n + self._min_after

    def _take(self) -> tuple:
        i = int(self._rng.integers(len(self._items)))
        self._items.rotate(-i)
        element = self._items.popleft()
        self._items.rotate(i)
        return element


class PriorityQueue(QueueBase):
    """The element with the smallest int64 priority (its first component) leaves first;
    `types` are the other components' dtypes, as TF."""

    def __init__(self, capacity: int, types: Any, shapes: Any = None, names: Any = None,
                 shared_name: str | None = None, name: str = "priority_queue"):
        shapes = None if shapes is None else [(), *_as_list(shapes, True)]
        super().__init__(capacity, [np.int64, *_as_list(types)], shapes, names, shared_name,
                         name)

    def _take(self) -> tuple:
        best = min(range(len(self._items)), key=lambda i: int(as_array(self._items[i][0])))
        element = self._items[best]
        del self._items[best]
        return element
