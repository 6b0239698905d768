"""TF1's `Session`: runs the part of a graph that `fetches` need, with `feed_dict`.

`run` resolves fetches (tensors, operations, names, variables, eager tensors, in
any nesting of lists, tuples, namedtuples and dicts), checks each feed against its
placeholder (shape and dtype, the error names the placeholder and the value
received), and runs a cached `Plan` per (fetches, feeds) combination.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from distflow.errors import InvalidArgumentError
from distflow.graph import core
from distflow.graph.core import GraphTensor, Operation
from distflow.graph.default_session import default_session, get_default_session  # noqa: F401
from distflow.graph.default_session import sessions as _sessions
from distflow.graph.executor import Plan
from distflow.tensor import Tensor, Variable


class Session:
    """Runs graph operations (`tf.compat.v1.Session`).

    Args:
        target: accepted for compatibility (only in-process execution).
        graph: the graph to run; defaults to the default graph.
        config: accepted for compatibility.
    """

    def __init__(self, target: str = "", graph: core.Graph | None = None,
                 config: Any = None):
        self.graph = graph if graph is not None else core.get_default_graph()
        # `with sess:` makes its graph the default: in graph mode, or for a graph passed in.
        # Eagerly on the default graph it does not (ops inside stay eager, as the seed
        # tutorial's `with tf.Session() as sess: sess.run(c)` and Keras calls need).
        self._enter_graph = graph is not None or not core.executing_eagerly()
        self._closed = False
        self._plans: dict[tuple, Plan] = {}
        self._contexts: list = []

    # ---------------------------------------------------------------------- run

    def run(self, fetches: Any, feed_dict: dict | None = None, options: Any = None,
            run_metadata: Any = None) -> Any:
        """Evaluates `fetches` (any nesting of tensors, operations and names).

        Returns:
            The same structure with NumPy values (None for operations).

        Raises:
            InvalidArgumentError: a placeholder the fetches need is not fed.
            ValueError / TypeError: a feed of the wrong shape or dtype (naming it).
        """
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        leaves: list = []
        template = self._fetch_template(fetches, leaves)
        feeds, values = self._feeds(feed_dict or {})
        tensors = [x for x in leaves if isinstance(x, GraphTensor)]
        targets = [x for x in leaves if isinstance(x, Operation)]
        key = (tuple(map(id, tensors)), tuple(map(id, targets)), tuple(map(id, feeds)))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = Plan(self.graph, tensors, feeds, targets)
        results = iter(plan.run(values))
        out = [_own(t, next(results)) if isinstance(t, GraphTensor) else
               None if isinstance(t, Operation) else t for t in leaves]
        return _rebuild(template, iter(out))

    def _element(self, fetch: Any) -> Any:
        if isinstance(fetch, str):
            return self.graph.as_graph_element(fetch)
        if isinstance(fetch, Variable) and (self.graph._variable_reads.get(id(fetch))
                                            is not None or _graph_of(fetch) is self.graph):
            return self.graph.read_variable(fetch)
        if isinstance(fetch, GraphTensor | Operation):
            if fetch.graph is not self.graph:
                raise ValueError(f"Fetch argument {fetch!r} is not an element of this graph "
                                 "(it was created in another graph).")
            return fetch
        if isinstance(fetch, Tensor):
            return fetch.numpy().copy()  # an eager tensor: its value already exists
        if fetch is None:
            raise TypeError("Fetch argument None has invalid type <class 'NoneType'>.")
        raise TypeError(f"Fetch argument {fetch!r} has invalid type {type(fetch).__name__}: "
                        "fetch tensors, operations, their names, or nested lists, tuples "
                        "and dicts of them.")

    def _fetch_template(self, fetches: Any, leaves: list) -> Any:
        if isinstance(fetches, dict):
            return {k: self._fetch_template(v, leaves) for k, v in fetches.items()}
        if isinstance(fetches, list | tuple) and not isinstance(fetches, Tensor):
            items = [self._fetch_template(v, leaves) for v in fetches]
            return type(fetches)(*items) if hasattr(fetches, "_fields") else \
                type(fetches)(items)
        leaves.append(self._element(fetches))
        return _LEAF

    def _feeds(self, feed_dict: dict) -> tuple[list, list]:
        feeds, values = [], []
        for key, value in feed_dict.items():
            t = self._element(key) if not isinstance(key, Variable) else \
                self.graph.read_variable(key)
            if not isinstance(t, GraphTensor):
                raise TypeError(f"Cannot interpret feed_dict key {key!r} as a Tensor of this "
                                "graph: use a placeholder (or another graph tensor) or its name.")
            feeds.append(t)
            values.append(check_feed(t, value))
        return feeds, values

    # ------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Releases the session; later `run` calls raise."""
        self._closed = True
        self._plans.clear()

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Session]:
        """Makes this the default session (for `Tensor.eval()` / `Operation.run()`)."""
        _sessions().append(self)
        try:
            yield self
        finally:
            _sessions().remove(self)

    def __enter__(self) -> Session:
        stack = contextlib.ExitStack()
        if self._enter_graph:
            stack.enter_context(self.graph.as_default())
        stack.enter_context(self.as_default())
        self._contexts.append(stack)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._contexts.pop().close()
        self.close()

    def list_devices(self) -> list:
        """The one local CPU device."""
        return ["/job:localhost/replica:0/task:0/device:CPU:0"]


class InteractiveSession(Session):
    """A session that makes itself the default on creation (for shells and notebooks)."""

    def __init__(self, target: str = "", graph: core.Graph | None = None,
                 config: Any = None):
        super().__init__(target, graph, config)
        _sessions().append(self)

    def close(self) -> None:
        if self in _sessions():
            _sessions().remove(self)
        super().close()


_LEAF = object()


def _rebuild(template: Any, values: Iterator) -> Any:
    if template is _LEAF:
        return next(values)
    if isinstance(template, dict):
        return {k: _rebuild(v, values) for k, v in template.items()}
    items = [_rebuild(v, values) for v in template]
    return type(template)(*items) if hasattr(template, "_fields") else type(template)(items)


def _own(t: GraphTensor, value: Any) -> Any:
    """A fetched array the caller may keep: copies of variable buffers and constants."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    if isinstance(value, np.ndarray) and (
            not value.flags.writeable or t.op.kind in ("variable", "assign", "const")):
        return value.copy()
    return value


def _graph_of(var: Variable) -> Any:
    return getattr(var, "graph", None)


def check_feed(t: GraphTensor, value: Any) -> np.ndarray:
    """The fed value as an array of `t`'s dtype; errors name `t` and what was received."""
    if isinstance(value, GraphTensor):
        raise TypeError(f"The value of a feed cannot be a symbolic tensor (received "
                        f"{value.name} for {t.name}). Feed NumPy arrays, lists or scalars; "
                        "run the tensor first to get its value.")
    arr = value.value if isinstance(value, Tensor) else np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Cannot feed a value of dtype {arr.dtype} to tensor '{t.name}' of "
                        f"dtype {t.dtype.name}. Received: {_short(value)}")
    if arr.dtype.kind == "f" and t.dtype.kind in "iub" and not np.all(arr == np.round(arr)):
        raise TypeError(f"Cannot feed float values to tensor '{t.name}' of dtype "
                        f"{t.dtype.name} (the fractions would be lost). Received: "
                        f"{_short(value)}")
    if not t.shape.is_compatible_with(arr.shape):
        raise ValueError(f"Cannot feed value of shape {arr.shape} for Tensor '{t.name}', "
                         f"which has shape {t.shape}.")
    return arr if arr.dtype == t.dtype else arr.astype(t.dtype)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


__all__ = ["InteractiveSession", "Session", "get_default_session", "InvalidArgumentError"]
