"""The graph IR: a `Graph` of `Operation`s whose outputs are symbolic `GraphTensor`s.

An operation is one of a few kinds, each with a kernel the executor calls on
NumPy arrays:

- "primitive": a registered `distflow.ops` primitive; the kernel is its forward,
  returning the output and the residuals (a hidden second output that the
  primitive's VJP operations read);
- "call": a public function that is not one primitive (argmax, comparisons,
  shape-dependent composites with unknown dimensions, optimizer updates); the
  kernel runs the eager function on the concrete values;
- "placeholder", "const", "variable" (reads a `Variable` by reference), "assign",
  and the gradient kinds "vjp", "call_vjp", "ones_like", "add_n", "zeros_like",
  "group".

Static shapes come from running the kernel once on small example arrays ("probes")
whose unknown dimensions have size 2, and a second time with size 3 when a
dimension is unknown: dimensions that differ between the two runs are unknown.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from distflow import tensor as _core
from distflow.graph.default_session import default_session
from distflow.tensor import GRAPH, Tensor, Variable
from distflow.tensor_shape import TensorShape, as_shape

PROBE_SIZES = (2, 3)
_local = threading.local()
_default = {"graph": None, "eager_disabled": False}
_SUSPENDED = object()  # pushed while a graph runs or probes: ops run eagerly again


# --------------------------------------------------------------------- contexts


def _stack() -> list:
    stack = getattr(_local, "graphs", None)
    if stack is None:
        stack = _local.graphs = []
    return stack


def building_graph() -> Graph | None:
    """The graph that ops record into in this thread, or None (eager)."""
    stack = getattr(_local, "graphs", None)
    if stack:
        top = stack[-1]
        return None if top is _SUSPENDED else top
    return get_default_graph() if _default["eager_disabled"] else None


def get_default_graph() -> Graph:
    """The innermost `Graph.as_default()` graph of this thread, else the global one."""
    for g in reversed(_stack()):
        if g is not _SUSPENDED:
            return g
    if _default["graph"] is None:
        _default["graph"] = Graph()
    return _default["graph"]


def reset_default_graph() -> None:
    """Replaces the global default graph by a new empty one (TF1's `reset_default_graph`)."""
    if any(g is not _SUSPENDED for g in _stack()):
        raise AssertionError("Do not use tf.reset_default_graph() to clear nested graphs. "
                             "Exit the `with graph.as_default():` blocks first.")
    _default["graph"] = Graph()


_active_lock = threading.Lock()


def activate(delta: int) -> None:
    """Changes the count of open graph contexts (all threads share it: locked)."""
    with _active_lock:
        GRAPH.active += delta


@contextlib.contextmanager
def _pushed(entry: Any) -> Iterator[None]:
    stack = _stack()
    stack.append(entry)
    activate(1)
    try:
        yield
    finally:
        activate(-1)
        stack.pop()


def suspended() -> contextlib.AbstractContextManager:
    """Runs ops eagerly inside a graph context (kernels and probes use it)."""
    return _pushed(_SUSPENDED)


def set_eager_disabled(disabled: bool) -> None:
    """Switches TF1 graph mode on (ops record into the default graph) or off."""
    if disabled != _default["eager_disabled"]:
        activate(1 if disabled else -1)
        _default["eager_disabled"] = disabled


def executing_eagerly() -> bool:
    """True when ops run immediately (no graph is being built in this thread)."""
    return building_graph() is None


# ----------------------------------------------------------------------- tensors


class GraphTensor(Tensor):
    """A symbolic tensor: output `value_index` of operation `op`, with a static shape.

    It has no value until its graph runs: `numpy()`, `bool()`, `float()` and `.value`
    raise (`.value` with `NoGraphForm` while the graph is built: code computing with
    NumPy on a symbolic tensor has no graph form, and must not compute on an example
    array). `array_dtype` and `array_shape` answer the eager wrappers' checks from the
    static spec; the recorders run kernels on `probe(i)`, example arrays of that spec.
    """

    __slots__ = ("op", "value_index", "_shape", "_dtype", "_probes")
    _symbolic = True

    def __init__(self, op: Operation, value_index: int, shape: TensorShape, dtype: Any,
                 probes: tuple | None):
        self._node = None
        self.op, self.value_index = op, value_index
        self._shape, self._dtype, self._probes = shape, np.dtype(dtype), probes

    @property
    def value(self) -> np.ndarray:
        if building_graph() is None:
            raise RuntimeError(
                f"Tensor '{self.name}' is symbolic: it belongs to a graph and has no value "
                "outside it. Fetch it with Session.run (TF1) or return it from the traced "
                "function.")
        raise _value_read(self)

    array_dtype = property(lambda self: self._dtype, doc="The NumPy dtype (static).")

    @property
    def array_shape(self) -> tuple:
        """The static shape as a tuple (None for an unknown dimension)."""
        if self._shape.rank is None:
            raise ValueError(f"Tensor '{self.name}' has an unknown rank.")
        return tuple(self._shape.as_list())

    def probe(self, i: int) -> np.ndarray:
        """The example array of probe run `i` (built from ones when not kept)."""
        if self._probes is None:
            self._probes = (_ones(self._shape, self._dtype, PROBE_SIZES[0]),
                            _ones(self._shape, self._dtype, PROBE_SIZES[1]))
        return self._probes[i]

    name = property(lambda self: f"{self.op.name}:{self.value_index}", doc="'op_name:index'.")
    graph = property(lambda self: self.op.graph, doc="The graph holding this tensor.")
    shape = property(lambda self: self._shape, doc="The static `TensorShape`.")
    dtype = property(lambda self: self._dtype, doc="NumPy dtype.")
    device = property(lambda self: "", doc="Always '' (everything runs on the CPU).")

    @property
    def ndim(self) -> int:
        if self._shape.rank is None:
            raise ValueError(f"Tensor '{self.name}' has an unknown rank.")
        return self._shape.rank

    @property
    def size(self) -> int | None:
        return self._shape.num_elements()

    def get_shape(self) -> TensorShape:
        """The static shape (TF1 name)."""
        return self._shape

    def set_shape(self, shape: Any) -> None:
        """Refines the static shape; ValueError when incompatible."""
        self._shape = self._shape.merge_with(as_shape(shape))

    def consumers(self) -> list[Operation]:
        """The operations that take this tensor as an input."""
        return [op for op in self.graph._ops if any(t is self for t in op.inputs)]

    def eval(self, feed_dict: dict | None = None, session: Any = None) -> np.ndarray:
        """Runs the graph for this tensor in `session` or the default session."""
        return (session or default_session(self)).run(self, feed_dict=feed_dict)

    def numpy(self) -> np.ndarray:
        raise NotImplementedError(
            f"Tensor '{self.name}' is symbolic: numpy() is only available in eager mode. Run "
            "it with Session.run, or return it from the traced function.")

    def _no_python_value(self, what: str):
        raise TypeError(
            f"Using a symbolic tensor ('{self.name}') as a Python {what} is not allowed: its "
            "value exists only when the graph runs. Use distflow.where for "
            "data-dependent choices, or compute the value outside the traced function.")

    def __bool__(self) -> bool:
        self._no_python_value("bool")

    def __float__(self) -> float:
        self._no_python_value("float")

    def __int__(self) -> int:
        self._no_python_value("int")

    def __index__(self) -> int:
        self._no_python_value("index")

    def __array__(self, dtype=None, copy=None):
        self._no_python_value("NumPy array")

    def __len__(self) -> int:
        if self._shape.rank is None or not self._shape.rank or self._shape[0] is None:
            raise TypeError(f"len is not well defined for the symbolic tensor '{self.name}' "
                            f"of shape {self._shape}.")
        return self._shape[0]

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: Any) -> Any:
        """Elementwise, as TF2; identity in TF1 graph mode (TF1's `Tensor.__eq__`)."""
        if _default["eager_disabled"]:
            return self is other
        from distflow import ops

        return ops.equal(self, other)

    def __ne__(self, other: Any) -> Any:
        if _default["eager_disabled"]:
            return self is not other
        from distflow import ops

        return ops.not_equal(self, other)

    def __repr__(self) -> str:
        return (f"<distflow.Tensor '{self.name}' shape={self._shape} "
                f"dtype={self._dtype.name}>")

    __str__ = __repr__


class _Residual:
    """The hidden second output of a primitive operation: what its VJPs read."""

    __slots__ = ("op",)

    def __init__(self, op: Operation):
        self.op = op


class Probe(np.ndarray):
    """An example array standing for a symbolic tensor while its graph is built.

    NumPy keeps the subclass through arithmetic, so a value computed from a probe is
    recognised where it would enter the graph (converted to a tensor, a constant or
    a parameter): that code read a symbolic tensor's value (`.value`), which has no
    graph form.
    """

    _distflow_probe = True


def probe_converted(value: Any) -> None:
    """The core's hook: a probe-derived array is being converted while building."""
    if building_graph() is not None:
        check_not_probe(value, "A value")


def as_probe(arr: Any) -> Probe:
    """`arr` viewed as a `Probe`."""
    arr = np.asanyarray(arr)
    return arr if isinstance(arr, Probe) else arr.view(Probe)


class NoGraphForm(TypeError):
    """Code read the value of a symbolic tensor: what it computes has no graph form.

    Attributes:
        in_library: the code is distflow's own (a Keras loss, metric or layer not yet
            written with graph-recordable ops): `function` then runs eagerly instead.
    """

    in_library = False


_PACKAGE_DIR = __file__.rsplit("/graph/", 1)[0] + "/"  # distflow's own source files


def check_not_probe(value: Any, what: str) -> None:
    """Raises `NoGraphForm` naming the code that computed `value` from a symbolic tensor."""
    if isinstance(value, Tensor) and not value._symbolic:
        value = value.value
    if isinstance(value, Probe):
        raise _no_graph_form(
            f"{what} was computed from the value of a symbolic tensor ({_caller()}): that "
            "code reads `.value` / NumPy of a tensor that exists only when the graph runs, "
            "so it has no graph form. Compute it with distflow ops, or outside the graph.")


def _value_read(t: GraphTensor) -> NoGraphForm:
    return _no_graph_form(
        f"{_caller()} reads the value of the symbolic tensor '{t.name}' (NumPy on `.value`), "
        "which exists only when the graph runs, so that code has no graph form. Compute "
        "it with distflow ops, or outside the traced function.")


def _no_graph_form(message: str) -> NoGraphForm:
    """The error, marked `in_library` when the culprit is distflow's own code."""
    frame = _culprit_frame()
    error = NoGraphForm(message)
    error.in_library = frame is not None and frame.filename.startswith(_PACKAGE_DIR)
    return error


def _caller() -> str:
    frame = _culprit_frame()
    if frame is None:
        return "unknown code"
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"


def _culprit_frame() -> Any:
    """The innermost frame outside the graph machinery (the code that read a value)."""
    import traceback

    inside = ("distflow/graph/", "distflow/tensor.py", "distflow/ops.py", "distflow/primitive.py",
              "distflow/shape_ops.py", "distflow/softmax_ops.py", "contextlib.py")
    for frame in reversed(traceback.extract_stack()[:-3]):
        if not any(part in frame.filename for part in inside):
            return frame
    return None


def _ones(shape: TensorShape, dtype: np.dtype, unknown: int) -> Probe:
    if shape.rank is None:  # probed as a scalar (a keep_prob or learning-rate placeholder)
        return np.ones((), dtype=dtype).view(Probe)
    dims = [unknown if d is None else d for d in shape]
    probe = np.ones(dims, dtype=dtype)
    if probe.dtype.kind == "f" and len(dims) >= 2 and dims[-1] == dims[-2]:
        probe += np.eye(dims[-1], dtype=dtype)  # square matrices: invertible, SPD (linalg ops)
    return probe.view(Probe)


# -------------------------------------------------------------------- operations


class Operation:
    """A node of a graph: `type`, `inputs`, `outputs`, attributes and a kernel.

    Attributes:
        name: unique name in its graph (with the name scope as a prefix).
        type: the primitive's registry name, or the kind's TF-style type name.
        kind: how it runs (see the module docstring).
        inputs: the input `GraphTensor`s.
        outputs: the output `GraphTensor`s.
        attrs: the op's parameters (a primitive's keyword parameters).
        control_inputs: operations that must run first.
        stateful: side effects or randomness: never folded, merged or pruned in a function.
    """

    def __init__(self, graph: Graph, kind: str, type_: str, name: str, inputs: list,
                 attrs: dict, kernel: Callable | None, stateful: bool = False,
                 extra_inputs: tuple = ()):
        self.graph, self.kind, self.type, self.name = graph, kind, type_, name
        self.inputs, self.attrs, self._kernel = list(inputs), attrs, kernel
        self.stateful = stateful
        self._extra_inputs = tuple(extra_inputs)
        self.control_inputs = list(graph._control_inputs())
        self.outputs: list[GraphTensor] = []
        self._residual: _Residual | None = None
        self._index = len(graph._ops)

    def values(self) -> tuple[GraphTensor, ...]:
        """The outputs as a tuple."""
        return tuple(self.outputs)

    def _all_inputs(self) -> tuple:
        return (*self.inputs, *self._extra_inputs)

    def _all_outputs(self) -> tuple:
        return (*self.outputs, self._residual) if self._residual is not None else tuple(
            self.outputs)

    def run(self, feed_dict: dict | None = None, session: Any = None) -> None:
        """Runs this operation in `session` or the default session."""
        (session or default_session(self)).run(self, feed_dict=feed_dict)

    def get_attr(self, name: str) -> Any:
        """One attribute of the operation."""
        return self.attrs[name]

    def __repr__(self) -> str:
        ins = ", ".join(t.name for t in self.inputs)
        return f"<distflow.Operation '{self.name}' type={self.type} inputs=[{ins}]>"


# ------------------------------------------------------------------------- graph

_SCOPE_OK = re.compile(r"^[A-Za-z0-9_.\-/>]*$")


class Graph:
    """A dataflow graph: operations in creation order (always a topological order)."""

    def __init__(self) -> None:
        self._ops: list[Operation] = []
        self._names: dict[str, Operation] = {}
        self._name_counts: dict[str, int] = {}
        self._scope = ""
        self._control_stack: list[list[Operation]] = []
        self._captures: dict[int, GraphTensor] = {}
        self._keep: list[Any] = []  # objects whose id() keys a capture: kept alive
        self._variable_reads: dict[int, GraphTensor] = {}
        self._collections: dict[str, list] = {}
        self.uninitialized: set[int] = set()
        self.finalized = False
        self.version = 0
        self.outer: Graph | None = None  # the enclosing graph of a cond / while_loop branch
        self.captured: list[tuple[GraphTensor, GraphTensor]] = []  # (outer tensor, placeholder)

    # ----------------------------------------------------------- public API

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Graph]:
        """Makes this graph the default (and the one ops record into) in this thread."""
        with _pushed(self):
            yield self

    def get_operations(self) -> list[Operation]:
        """Every operation, in creation order."""
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        """The operation called `name`; KeyError naming it when absent."""
        if ":" in name:
            raise ValueError(f"Name '{name}' appears to refer to a Tensor, not an Operation.")
        op = self._names.get(name)
        if op is None:
            raise KeyError(f"The name '{name}' refers to an Operation not in the graph.")
        return op

    def get_tensor_by_name(self, name: str) -> GraphTensor:
        """The tensor called 'op_name:index'; KeyError naming it when absent."""
        op_name, sep, index = name.rpartition(":")
        if not sep or not index.isdigit():
            raise ValueError(f"The name '{name}' looks like an Operation name, not a Tensor: "
                             "Tensor names end with ':<output index>' (e.g. 'x:0').")
        op = self._names.get(op_name)
        if op is None or int(index) >= len(op.outputs):
            raise KeyError(f"The name '{name}' refers to a Tensor which does not exist.")
        return op.outputs[int(index)]

    def as_graph_element(self, obj: Any) -> Any:
        """Resolves a name, tensor or operation of this graph."""
        if isinstance(obj, str):
            return self.get_tensor_by_name(obj) if ":" in obj else \
                self.get_operation_by_name(obj)
        return obj

    @contextlib.contextmanager
    def name_scope(self, name: str | None) -> Iterator[str]:
        """Prefixes the names of the ops created inside with `name/` (made unique)."""
        old = self._scope
        if name is None or name == "":
            self._scope = ""
        elif name.endswith("/"):
            self._scope = name
        else:
            if not _SCOPE_OK.match(name):
                raise ValueError(f"'{name}' is not a valid scope name.")
            self._scope = self.unique_name(old + name) + "/"
        try:
            yield self._scope
        finally:
            self._scope = old

    def get_name_scope(self) -> str:
        """The current scope without its trailing '/'."""
        return self._scope.rstrip("/")

    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """`name`, or `name_N` when taken (TF's naming)."""
        key = name.lower()
        n = self._name_counts.get(key, 0)
        unique = name if n == 0 else f"{name}_{n}"
        while unique.lower() in self._name_counts and n:
            n += 1
            unique = f"{name}_{n}"
        if mark_as_used:
            self._name_counts[key] = n + 1
            if unique.lower() != key:
                self._name_counts[unique.lower()] = 1
        return unique

    @contextlib.contextmanager
    def control_dependencies(self, control_inputs: Any) -> Iterator[None]:
        """Ops created inside run after `control_inputs` (ops or tensors)."""
        ops = [] if control_inputs is None else [
            c.op if isinstance(c, GraphTensor) else c for c in control_inputs]
        self._control_stack.append(ops)
        try:
            yield
        finally:
            self._control_stack.pop()

    def add_to_collection(self, name: str, value: Any) -> None:
        """Appends to the named collection."""
        self._collections.setdefault(name, []).append(value)

    def get_collection(self, name: str, scope: str | None = None) -> list:
        """A copy of the named collection (filtered by name prefix `scope`)."""
        items = list(self._collections.get(name, []))
        if scope:
            items = [v for v in items if getattr(v, "name", "").startswith(scope)]
        return items

    def finalize(self) -> None:
        """Makes the graph read-only."""
        self.finalized = True

    def as_graph_def(self) -> Any:
        """The graph as TensorFlow's `GraphDef` protocol buffer (needs tensorboardX)."""
        from distflow.graph.graphdef import as_graph_def

        return as_graph_def(self)

    def to_dot(self) -> str:
        """The graph as Graphviz text (`dot -Tsvg`)."""
        lines = ["digraph G {", "  rankdir=BT;"]
        for op in self._ops:
            label = f"{op.name}\\n{op.type}"
            lines.append(f'  "{op.name}" [shape=box, label="{label}"];')
            for t in op.inputs:
                lines.append(f'  "{t.op.name}" -> "{op.name}" [label="{t.shape}"];')
            lines.extend(f'  "{c.name}" -> "{op.name}" [style=dashed];'
                         for c in op.control_inputs)
        return "\n".join(lines + ["}"])

    def __repr__(self) -> str:
        return f"<distflow.Graph with {len(self._ops)} operations>"

    # ----------------------------------------------------------- internals

    def _control_inputs(self) -> list[Operation]:
        return [op for ops in self._control_stack for op in ops]

    def _make_name(self, name: str | None, default: str) -> str:
        return self.unique_name(self._scope + (name or default))

    def _add(self, kind: str, type_: str, inputs: list, attrs: dict, kernel: Callable | None,
             specs: list[tuple], name: str | None = None, probes: list | None = None,
             stateful: bool = False, residual: bool = False,
             extra_inputs: tuple = ()) -> Operation:
        """Creates an operation with outputs of the given (shape, dtype) specs."""
        if self.finalized:
            raise RuntimeError("Graph is finalized and cannot be modified.")
        op = Operation(self, kind, type_, self._make_name(name, type_), inputs, attrs, kernel,
                       stateful, extra_inputs)
        for i, (shape, dtype) in enumerate(specs):
            op.outputs.append(GraphTensor(op, i, as_shape(shape), dtype,
                                          None if probes is None else probes[i]))
        if residual:
            op._residual = _Residual(op)
        self._ops.append(op)
        self._names[op.name] = op
        self.version += 1
        return op

    def capture(self, value: Any) -> GraphTensor:
        """The graph tensor standing for `value` (a graph tensor, Variable or constant)."""
        if isinstance(value, GraphTensor):
            if value.graph is not self:
                return self._capture_outer(value)
            return value
        if isinstance(value, Variable):
            if self.outer is not None:  # a branch reads it through the enclosing graph
                return self._capture_outer(self.outer.capture(value))
            return self.read_variable(value)
        key = id(value)
        found = self._captures.get(key)
        if found is None:
            check_not_probe(value, "A constant of the graph")
            arr = value.value if isinstance(value, Tensor) else _core.as_array(value)
            found = self._captures[key] = self.constant(arr)
            self._keep.append(value)
        return found

    def _capture_outer(self, value: GraphTensor) -> GraphTensor:
        """A placeholder of this branch graph standing for a tensor of an enclosing graph."""
        if self.outer is None:
            raise ValueError(f"Tensor '{value.name}' must be from the same graph as the other "
                             "inputs of the operation (it belongs to another graph).")
        found = self._captures.get(id(value))
        if found is None:
            outside = self.outer.capture(value)
            found = self._captures[id(value)] = self.placeholder(
                value.dtype, value.shape, f"capture_{len(self.captured)}")
            self.captured.append((outside, found))
            self._keep.append(value)
        return found

    def placeholder(self, dtype: Any, shape: Any, name: str | None = None) -> GraphTensor:
        """A "Placeholder" operation of this graph (see the module's `placeholder`)."""
        shape, dtype = as_shape(shape), np.dtype(dtype)
        return self._add("placeholder", "Placeholder", [], {"dtype": dtype, "shape": shape},
                         None, [(shape, dtype)], name=name).outputs[0]

    def constant(self, arr: np.ndarray, name: str | None = None) -> GraphTensor:
        """A "Const" operation holding `arr`."""
        return self._add("const", "Const", [], {"value": arr}, lambda a=arr: (a,),
                         [(arr.shape, arr.dtype)], name=name, probes=[(arr, arr)]).outputs[0]

    def read_variable(self, var: Variable) -> GraphTensor:
        """The (one, cached) operation reading `var` by reference when the graph runs."""
        found = self._variable_reads.get(id(var))
        if found is None:
            uninitialized = self.uninitialized

            def kernel(v=var, key=id(var)):
                if key in uninitialized:
                    from distflow.errors import FailedPreconditionError
                    raise FailedPreconditionError(
                        f"Attempting to use uninitialized value {v.name}: run "
                        "global_variables_initializer() (or the variable's initializer) "
                        "first.")
                return (v.value,)
            arr = var.value
            with self.name_scope(None):  # the variable's name already holds its scope
                op = self._add("variable", "VariableV2", [], {"variable": var}, kernel,
                               [(arr.shape, arr.dtype)], name=var.name)
            found = self._variable_reads[id(var)] = op.outputs[0]
            self._keep.append(var)
        return found


def placeholder(dtype: Any = "float32", shape: Any = None, name: str | None = None
                ) -> GraphTensor:
    """A tensor whose value is fed when the graph runs (`tf.compat.v1.placeholder`).

    Args:
        dtype: element type.
        shape: dimensions, None entries unknown; None for any shape.
        name: operation name (default "Placeholder").

    Raises:
        RuntimeError: outside graph mode (eager execution has nothing to feed).
    """
    graph = building_graph()
    if graph is None:
        raise RuntimeError(
            "placeholder() is not compatible with eager execution: call "
            "distflow.compat.v1.disable_eager_execution() first, or build inside "
            "`with distflow.Graph().as_default():`.")
    return graph.placeholder(dtype, shape, name)
