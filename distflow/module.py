"""`tf.Module`: a container that finds the variables and sub-modules in its attributes.

    class Dense(df.Module):
        def __init__(self, n_in, n_out, name=None):
            super().__init__(name=name)
            self.w = df.Variable(df.random.normal([n_in, n_out]), name="w")
            self.b = df.Variable(df.zeros([n_out]), name="b")

`module.trainable_variables` walks the attributes (sorted by name, as TF
does), descending into lists, tuples, dicts, other modules and Keras layers,
and lists each variable once. `tf.train.Checkpoint` tracks modules the same way.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from distflow.tensor import Variable, unique_name

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def tracked_children(obj: Any) -> Iterator[tuple[str, Any]]:
    """(path, value) of the trackable values an object's attributes hold, sorted by name."""
    for key in sorted(vars(obj)):
        if key.startswith("_") and key not in ("_variables", "_trainable_variables"):
            continue
        yield from _walk(key, vars(obj)[key])


def _walk(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Variable) or _is_container(value):
        yield path, value
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            yield from _walk(f"{path}/{k}", value[k])
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(f"{path}/{i}", item)


def _is_container(value: Any) -> bool:
    """Modules, and Keras layers/models (anything with a `weights` list of variables)."""
    return isinstance(value, Module) or (
        not isinstance(value, type) and hasattr(type(value), "weights")
        and hasattr(value, "trainable_weights"))


def _variables_of(obj: Any, seen: set[int]) -> Iterator[Variable]:
    if isinstance(obj, Variable):
        if id(obj) not in seen:
            seen.add(id(obj))
            yield obj
        return
    if isinstance(obj, Module):
        for _, child in tracked_children(obj):
            yield from _variables_of(child, seen)
        return
    for var in obj.weights:  # a Keras layer or model
        yield from _variables_of(var, seen)


class Module:
    """Base class of objects that own variables (as `tf.Module`).

    Args:
        name: the module's name (defaults to the class name in snake case); must
            be a valid Python identifier-like name, as in TF.
    """

    def __init__(self, name: str | None = None):
        if name is None:
            name = _camel_to_snake(type(self).__name__)
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{name!r} is not a valid module name. Module names must be valid "
                             "Python identifiers (e.g. a string without spaces or '/').")
        self._name = name
        self._scope_name = unique_name(name)

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def name_scope(self) -> contextlib.AbstractContextManager:
        """A context for ops and variables created on behalf of this module."""
        return _NameScope(self._scope_name)

    @property
    def variables(self) -> tuple[Variable, ...]:
        """Every variable of this module and its sub-modules, each once."""
        return tuple(_variables_of(self, set()))

    @property
    def trainable_variables(self) -> tuple[Variable, ...]:
        """The variables with `trainable=True`."""
        return tuple(v for v in self.variables if v.trainable)

    @property
    def non_trainable_variables(self) -> tuple[Variable, ...]:
        """The variables with `trainable=False`."""
        return tuple(v for v in self.variables if not v.trainable)

    @property
    def submodules(self) -> tuple[Any, ...]:
        """Every module (and Keras layer) reachable from this one, breadth first."""
        out, seen, queue = [], {id(self)}, [self]
        while queue:
            node = queue.pop(0)
            if not isinstance(node, Module):
                continue
            for _, child in tracked_children(node):
                if _is_container(child) and id(child) not in seen:
                    seen.add(id(child))
                    out.append(child)
                    queue.append(child)
        return tuple(out)

    @classmethod
    def with_name_scope(cls, method: Callable) -> Callable:
        """Decorator: runs `method` inside the module's name scope."""
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with self.name_scope:
                return method(self, *args, **kwargs)
        return wrapper

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self._name!r}>"


_scope_stack: list[str] = []


class _NameScope(contextlib.AbstractContextManager):
    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> str:
        _scope_stack.append(self.name)
        return "/".join(_scope_stack) + "/"

    def __exit__(self, *exc: Any) -> None:
        _scope_stack.pop()


@contextlib.contextmanager
def name_scope(name: str) -> Iterator[str]:
    """`tf.name_scope(name)`: a context whose value is the current scope path.

    While a graph is being built (TF1 graph mode, a traced `function`) it also
    prefixes the names of the operations recorded inside, as TF's does.
    """
    from distflow.graph import core  # the graph package does not import this module

    with _NameScope(name) as path:
        graph = core.building_graph()
        if graph is None:
            yield path
        else:
            with graph.name_scope(name):
                yield path


def get_current_name_scope() -> str:
    """The active scope path ('' at top level)."""
    return "/".join(_scope_stack)
