"""TF1 variables: `Variable` / `get_variable` in graph mode, scopes and initializers.

A variable made while a graph is being built is a `RefVariable`: a distflow
`Variable` (its array lives in the process, shared by the graph's sessions) that
the graph reads by reference, with an `initializer` operation. Reading it before
the initializer ran raises `FailedPreconditionError`, as TF1 does.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from distflow import nest
from distflow import random as _random
from distflow.graph import core
from distflow.graph.core import GraphTensor, Operation
from distflow.graph.record import assign_kernel
from distflow.tensor import Variable, as_array
from distflow.tensor_shape import TensorShape, as_shape

GLOBAL_VARIABLES, TRAINABLE_VARIABLES = "variables", "trainable_variables"


class GraphKeys:
    """Standard collection names."""

    GLOBAL_VARIABLES = GLOBAL_VARIABLES
    TRAINABLE_VARIABLES = TRAINABLE_VARIABLES
    LOCAL_VARIABLES = "local_variables"
    UPDATE_OPS = "update_ops"
    LOSSES = "losses"


class RefVariable(Variable):
    """A variable of a TF1 graph: `initializer`, `op`, `graph`, `eval()`."""

    __slots__ = ("graph", "initializer", "initial_value")

    def __init__(self, graph: core.Graph, initial_value: Any, name: str, trainable: bool,
                 dtype: Any):
        if isinstance(initial_value, GraphTensor):
            if not initial_value.shape.is_fully_defined():
                raise ValueError(f"The initial value of variable '{name}' must have a fully "
                                 f"defined shape. Received shape {initial_value.shape}.")
            arr = np.zeros(initial_value.shape, np.dtype(dtype or initial_value.dtype))
        else:
            arr = as_array(initial_value, dtype)
        super().__init__(arr, name=name, trainable=trainable)
        self.graph = graph
        with graph.name_scope(None):  # the variable's name already holds its scope
            source = initial_value if isinstance(initial_value, GraphTensor) else \
                graph.constant(np.array(arr, copy=True), name=f"{self.name}/initial_value")
            self.initial_value = source
            graph.read_variable(self)
            self.initializer = graph._add(
                "assign", "Assign", [source], {"variable": self, "kind": "assign"},
                assign_kernel(self, "assign", graph), [(arr.shape, arr.dtype)],
                name=f"{self.name}/Assign", stateful=True)
        graph.uninitialized.add(id(self))
        graph.add_to_collection(GLOBAL_VARIABLES, self)
        if trainable:
            graph.add_to_collection(TRAINABLE_VARIABLES, self)

    op = property(lambda self: self.graph.read_variable(self).op, doc="The variable's op.")
    shape = property(lambda self: TensorShape(self.value.shape), doc="Static shape.")

    def get_shape(self) -> TensorShape:
        return self.shape

    def eval(self, session: Any = None) -> np.ndarray:
        """The current value, through `session` or the default session."""
        from distflow.graph.default_session import default_session

        return (session or default_session(self)).run(self)

    def read_value(self) -> Any:
        """The graph tensor reading this variable."""
        return self.graph.read_variable(self)

    def initialized_value(self) -> Any:
        """The value after initialization (the initial value tensor here)."""
        return self.initial_value

    def load(self, value: Any, session: Any = None) -> None:
        """Writes `value` into the variable now."""
        with core.suspended():
            Variable.assign(self, value)
        self.graph.uninitialized.discard(id(self))

    def __repr__(self) -> str:
        return f"<distflow.compat.v1.Variable '{self.name}' shape={self.shape} " \
               f"dtype={self.dtype.name}>"


def Variable_(initial_value: Any = None, trainable: bool = True, name: str | None = None,
              dtype: Any = None, **_kwargs: Any) -> Variable:
    """`tf.compat.v1.Variable`: a graph variable in graph mode, else an eager one."""
    if initial_value is None:
        raise ValueError("initial_value must be specified.")
    graph = core.building_graph()
    if callable(initial_value):
        initial_value = initial_value()
    if graph is None:
        return Variable(initial_value, name=name, trainable=trainable, dtype=dtype)
    return RefVariable(graph, initial_value, graph._scope + (name or "Variable"),
                       trainable, dtype)


# ------------------------------------------------------------------ scopes

_scopes: list[tuple[str, Any]] = []
_eager_store: dict[str, Variable] = {}
AUTO_REUSE = "auto_reuse"


@contextlib.contextmanager
def variable_scope(name_or_scope: Any, default_name: str | None = None, reuse: Any = None,
                   **_kwargs: Any) -> Iterator[str]:
    """Prefixes `get_variable` names (and op names) with `name/`; `reuse` shares them."""
    name = name_or_scope if isinstance(name_or_scope, str) else default_name
    if name is None:
        raise ValueError("variable_scope needs a name (or default_name).")
    if not isinstance(name_or_scope, str) and default_name is not None:
        name = core.get_default_graph().unique_name(
            _current_scope() + default_name, mark_as_used=True).rsplit("/", 1)[-1]
    inherited = _scopes[-1][1] if _scopes else None
    _scopes.append((_current_scope() + name + "/", reuse if reuse is not None else inherited))
    try:
        with core.get_default_graph().name_scope(_scopes[-1][0]):
            yield _scopes[-1][0].rstrip("/")
    finally:
        _scopes.pop()


def _current_scope() -> str:
    return _scopes[-1][0] if _scopes else ""


def _store() -> dict:
    graph = core.building_graph()
    if graph is None:
        return _eager_store
    return graph.__dict__.setdefault("_get_variable_store", {})


def get_variable(name: str, shape: Any = None, dtype: Any = "float32",
                 initializer: Any = None, trainable: bool = True, **_kwargs: Any) -> Variable:
    """Gets an existing variable of this scope or creates one (`tf.compat.v1.get_variable`).

    The default initializer is Glorot-uniform (zeros for integers), as in TF1.
    """
    full = _current_scope() + name
    reuse = _scopes[-1][1] if _scopes else None
    store = _store()
    if full in store:
        if reuse in (None, False):
            raise ValueError(f"Variable {full} already exists, disallowed. Did you mean to set "
                             "reuse=True or reuse=tf.AUTO_REUSE in VarScope?")
        return store[full]
    if reuse is True:
        raise ValueError(f"Variable {full} does not exist, or was not created with "
                         "tf.get_variable(). Did you mean to set reuse=tf.AUTO_REUSE in "
                         "VarScope?")
    value = _initial_value(full, initializer, shape, dtype)
    graph = core.building_graph()
    with contextlib.ExitStack() as stack:
        if graph is not None:
            stack.enter_context(graph.name_scope(""))
        var = Variable_(value, trainable=trainable, name=full, dtype=dtype)
    store[full] = var
    return var


def _initial_value(name: str, initializer: Any, shape: Any, dtype: Any) -> Any:
    if initializer is None:
        initializer = glorot_uniform_initializer() if np.dtype(dtype).kind == "f" else \
            zeros_initializer()
    if callable(initializer):
        if shape is None:
            raise ValueError(f"The shape of new variable {name} must be fully defined, "
                             "but received shape=None.")
        return initializer(tuple(as_shape(shape)), dtype=dtype)
    return initializer


# ------------------------------------------------------------ initializers


def zeros_initializer(dtype: Any = "float32"):
    """Initializer of zeros."""
    return lambda shape, dtype=dtype, **_: np.zeros(shape, np.dtype(dtype))


def ones_initializer(dtype: Any = "float32"):
    """Initializer of ones."""
    return lambda shape, dtype=dtype, **_: np.ones(shape, np.dtype(dtype))


def constant_initializer(value: Any = 0, dtype: Any = "float32"):
    """Initializer filling (or reshaping) `value`."""
    def init(shape, dtype=dtype, **_):
        arr = np.asarray(value, np.dtype(dtype))
        return np.broadcast_to(arr, shape).copy() if arr.size == 1 else arr.reshape(shape)
    return init


def random_normal_initializer(mean: float = 0.0, stddev: float = 1.0, seed: Any = None,
                              dtype: Any = "float32"):
    """Initializer drawing from N(mean, stddev**2)."""
    return lambda shape, dtype=dtype, **_: _random.normal(shape, mean, stddev, dtype,
                                                          seed).value
def truncated_normal_initializer(mean: float = 0.0, stddev: float = 1.0, seed: Any = None,
                                 dtype: Any = "float32"):
    """Initializer drawing from a normal truncated at two standard deviations."""
    return lambda shape, dtype=dtype, **_: _random.truncated_normal(shape, mean, stddev, dtype,
                                                                    seed).value


def random_uniform_initializer(minval: float = -0.05, maxval: float = 0.05, seed: Any = None,
                               dtype: Any = "float32"):
    """Initializer drawing uniformly from [minval, maxval)."""
    return lambda shape, dtype=dtype, **_: _random.uniform(shape, minval, maxval, dtype,
                                                           seed).value


def glorot_uniform_initializer(seed: Any = None, dtype: Any = "float32"):
    """Uniform in +-sqrt(6 / (fan_in + fan_out)) (TF1's default for get_variable)."""
    def init(shape, dtype=dtype, **_):
        shape = tuple(shape)
        receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
        fan_in = shape[-2] * receptive if len(shape) > 1 else (shape[0] if shape else 1)
        fan_out = shape[-1] * receptive if shape else 1
        limit = math.sqrt(6.0 / max(1, fan_in + fan_out))
        return _random.uniform(shape, -limit, limit, dtype, seed).value
    return init


# --------------------------------------------------------- initializer ops


def _graph() -> core.Graph:
    return core.building_graph() or core.get_default_graph()


def global_variables(scope: str | None = None) -> list:
    """The graph's variables (`tf.compat.v1.global_variables`)."""
    return _graph().get_collection(GLOBAL_VARIABLES, scope)


def trainable_variables(scope: str | None = None) -> list:
    """The graph's trainable variables."""
    return _graph().get_collection(TRAINABLE_VARIABLES, scope)


def group(*inputs: Any, name: str | None = None) -> Operation:
    """An operation that runs all `inputs` (operations or tensors)."""
    graph = _graph()
    ops = [i.op if isinstance(i, GraphTensor) else i for i in nest.flatten(inputs)]
    with graph.control_dependencies(ops):
        return graph._add("group", "NoOp", [], {}, lambda: (), [], name=name or "group_deps")


def variables_initializer(var_list: list, name: str = "init") -> Operation:
    """An operation running the initializers of `var_list`."""
    return group(*[v.initializer for v in var_list if isinstance(v, RefVariable)], name=name)


def global_variables_initializer() -> Operation:
    """An operation initializing every variable of the default graph."""
    return variables_initializer(global_variables(), name="init")


initialize_all_variables = global_variables_initializer


def is_variable_initialized(variable: Variable) -> bool:
    """Whether `variable` holds a value yet."""
    graph = getattr(variable, "graph", None)
    return graph is None or id(variable) not in graph.uninitialized


def report_uninitialized_variables(var_list: list | None = None) -> list[str]:
    """Names of the variables not initialized yet."""
    return [v.name for v in (var_list or global_variables()) if not is_variable_initialized(v)]


def reset_scopes() -> None:
    """Forgets eager get_variable names and open scopes (used by tests)."""
    _eager_store.clear()
