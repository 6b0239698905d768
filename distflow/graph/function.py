"""`distflow.function`: trace a Python function into a graph once per input signature.

The first call with a new signature runs the Python function on placeholders
inside a fresh graph (Python side effects happen then, and only then; Python
control flow is unrolled), and compiles a `Plan` whose fetches are the returned
tensors and whose effects are every variable update recorded. Later calls with
the same signature run the plan. The signature is the nesting of the arguments,
each tensor's shape and dtype, each Variable's identity and every other Python
value.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import config as _config
from distflow import nest
from distflow import random as _random
from distflow import tensor as _names
from distflow.graph import core
from distflow.graph import record as _record
from distflow.graph.core import Graph, GraphTensor, NoGraphForm, Operation
from distflow.graph.executor import Plan
from distflow.graph.gradients import gradients
from distflow.tensor import Tensor, Variable, current_tape, record
from distflow.tensor_shape import TensorShape, TensorSpec

RETRACE_WARNING_AFTER = 5


class FuncGraph(Graph):
    """The graph of one trace: `inputs` (placeholders) and `outputs` (fetched tensors)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.inputs: list[GraphTensor] = []
        self.outputs: list[GraphTensor] = []
        self.structured_outputs: Any = None


class ConcreteFunction:
    """One trace: its graph, and the compiled plan that runs it.

    Attributes:
        graph: the `FuncGraph`.
        structured_outputs: what the Python function returned (symbolic tensors).
        inputs / outputs: the flat placeholders and fetched tensors.
        structured_input_signature: (args, kwargs) with `TensorSpec`s for tensors.
    """

    def __init__(self, graph: FuncGraph, arg_template: Any, specs: list[TensorSpec],
                 name: str):
        self.graph, self.name = graph, name
        self.structured_outputs = graph.structured_outputs
        self.inputs, self.outputs = graph.inputs, graph.outputs
        self._template, self._specs = arg_template, specs
        self.structured_input_signature = _fill(arg_template, specs)
        self._plan = Plan(graph, graph.outputs, graph.inputs, keep_stateful=True)
        flat = [None if isinstance(t, Operation) else t
                for t in nest.flatten(self.structured_outputs)]
        # per flat output: None (a Python value, returned as is) or whether to copy the array
        self._outs = [(t.op.kind in ("variable", "assign", "const"))
                      if isinstance(t, GraphTensor) else None for t in flat]
        self._flat = flat
        self._pack = _packer(self.structured_outputs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        leaves: list = []
        _signature((args, kwargs), leaves)
        return self._call_flat([_array(x) for x in leaves])

    def _call_flat(self, arrays: list, check: bool = True) -> Any:
        for spec, arr in zip(self._specs, arrays if check else ()):
            if not spec.is_compatible_with(arr):
                raise ValueError(f"The traced function '{self.name}' expects an input of "
                                 f"{spec}; received shape {arr.shape} dtype {arr.dtype}.")
        values = iter(self._plan.run(arrays))
        return self._pack([t if copy is None else _result(next(values), copy)
                           for t, copy in zip(self._flat, self._outs)])

    def _call_taped(self, arrays: list, leaves: list, eager: Callable) -> Any:
        """A call under an active tape: the outputs become tape nodes whose VJPs run this
        trace's backward plan (the forward recomputed, then the gradient operations).
        A trace whose gradient would re-run a stateful operation runs `eager` instead."""
        backward = self._backward()
        if backward is None:
            return eager()
        plan, sources = backward
        values = self._plan.run(arrays)
        floats = [i for i, t in enumerate(self.outputs) if t.dtype.kind == "f"]
        inputs = [x if isinstance(x, Tensor) else Tensor._wrap(a)
                  for x, a in zip(leaves, arrays)] + sources
        memo: dict = {}

        def grads(i: int, g: np.ndarray) -> list:
            if memo.get("key") is not g or memo.get("i") != i:
                seeds = [g if j == i else np.zeros_like(values[j]) for j in floats]
                memo.update(key=g, i=i, grads=plan.run([*arrays, *seeds]))
            return memo["grads"]

        outs = []
        for j, (t, value) in enumerate(zip(self.outputs, values)):
            if t.dtype.kind != "f":
                outs.append(Tensor._wrap(value))
                continue
            vjps = tuple(functools.partial(_grad_of, grads, j, k) for k in range(len(inputs)))
            outs.append(record(f"function:{self.name}", value, tuple(inputs), vjps, None))
        result = iter(outs)
        flat = [next(result) if copy is not None else t for t, copy in zip(self._flat, self._outs)]
        return nest.pack_sequence_as(self.structured_outputs, flat)

    def _backward(self) -> tuple[Plan, list] | None:
        """(plan, captured variables): d(outputs)/d(inputs and variables), built once."""
        if getattr(self, "_backward_plan", None) is None:
            graph = self.graph
            reads = [op.outputs[0] for op in graph._ops if op.kind == "variable" and
                     op.attrs["variable"].trainable and op.outputs[0].dtype.kind == "f"]
            outs = [t for t in self.outputs if t.dtype.kind == "f"]
            with graph.as_default():
                seeds = [core.placeholder(t.dtype, t.shape, "output_gradient") for t in outs]
                found = gradients(outs, [*self.inputs, *reads], seeds, name="backward",
                                  unconnected_gradients="zero")
            plan = Plan(graph, found, [*self.inputs, *seeds])
            stateful = any(op.stateful for op in plan.ops)
            self._backward_plan = False if stateful else (
                plan, [op.attrs["variable"] for op in (r.op for r in reads)])
        return self._backward_plan or None

    @property
    def num_kernel_calls(self) -> int:
        """Kernel calls per run after pruning, constant folding and CSE."""
        return self._plan.num_steps

    def __repr__(self) -> str:
        return f"<ConcreteFunction {self.name} signature={self.structured_input_signature}>"


class Function:
    """A traced function (what `distflow.function` returns)."""

    def __init__(self, python_function: Callable, input_signature: Any = None,
                 reduce_retracing: bool = False, jit_compile: bool | None = None,
                 name: str | None = None, eager_fallback: str | None = None,
                 **_ignored: Any):
        """`eager_fallback`: when given, a trace that fails for any reason makes every
        call run the Python function eagerly, with one warning naming the failure and
        ending with this text (Keras's compiled steps); else only distflow's own code
        reading a symbolic value falls back, and the user's errors are raised."""
        functools.update_wrapper(self, python_function)
        self._fallback_hint = eager_fallback
        self.python_function = python_function
        self.input_signature = None if input_signature is None else [
            s if isinstance(s, TensorSpec) else TensorSpec(*s) for s in input_signature]
        self.reduce_retracing, self.jit_compile = bool(reduce_retracing), jit_compile
        self._name = name or getattr(python_function, "__name__", "function")
        self._concrete: dict[Any, ConcreteFunction] = {}
        self._relaxed: list[tuple[Any, ConcreteFunction]] = []
        self._traces = 0
        self._calls = 0
        self._said_eager = False  # warned that it runs eagerly
        self._eager_reason: Any = None  # why every call runs eagerly (a failed trace)
        self._lock = threading.RLock()

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        """A method: one traced function per instance (kept while the instance lives)."""
        if instance is None:
            return self
        bound = self.__dict__.setdefault("_bound", weakref.WeakKeyDictionary())
        try:
            fn = bound.get(instance)
        except TypeError:  # not weak-referenceable: a new Function each time
            fn = None
        if fn is None:
            fn = Function(functools.partial(self.python_function, instance),
                          self.input_signature, self.reduce_retracing, self.jit_compile,
                          self._name)
            with contextlib.suppress(TypeError):
                bound[instance] = fn
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if core.building_graph() is not None or _config.functions_run_eagerly():
            return self.python_function(*args, **kwargs)  # inlined in a trace, or as asked
        self._calls += 1
        taped = current_tape() is not None
        if self.input_signature is None and not taped:  # the common case: one lookup
            leaves: list = []
            concrete = self._concrete.get(_call_key(args, kwargs, leaves))
            if concrete is not None:
                return concrete._call_flat([_array(x) for x in leaves], check=False)
        stateful = self._eager_reason or _stateful_argument((args, kwargs))
        if stateful is not None:
            return self._run_eagerly(stateful, args, kwargs)
        try:
            concrete, arrays = self._lookup(args, kwargs)
        except Exception as exc:
            if self._fallback_hint is None and not getattr(exc, "in_library", False):
                raise  # the user's code reads a value: an error, as in TF
            out = self.python_function(*args, **kwargs)  # the user's own error, if it is one
            self._eager_reason = exc  # e.g. a Keras loss or metric that reads values
            self._say_eager(exc)
            return out
        if taped:
            leaves = []
            _signature((args, kwargs), leaves)
            return concrete._call_taped(arrays, leaves, lambda: self.python_function(
                *args, **kwargs))
        return concrete._call_flat(arrays)

    def _run_eagerly(self, stateful: Any, args: tuple, kwargs: dict) -> Any:
        """Runs the Python function itself: an argument is an iterator (a trace would read it
        once and bake its first batch in), or the trace met code with no graph form (it
        reads tensors' values). Said once per function."""
        self._say_eager(stateful)
        return self.python_function(*args, **kwargs)

    def _say_eager(self, stateful: Any) -> None:
        if not self._said_eager:
            self._said_eager = True
            why = (f"it could not be traced: {type(stateful).__name__}: "
                   f"{str(stateful).rstrip('.')}"
                   if isinstance(stateful, Exception)
                   else f"its argument of type {type(stateful).__name__} is read as a Python "
                   f"object (an iterator), and a traced graph would read it once; pass the "
                   f"batch's tensors to trace it")
            warnings.warn(f"function '{self._name}' runs eagerly (same results, no "
                          f"graph): {why}{self._fallback_hint or ''}", stacklevel=4)

    def get_concrete_function(self, *args: Any, **kwargs: Any) -> ConcreteFunction:
        """The trace for these arguments (tensors, or `TensorSpec`s), tracing if needed."""
        if not args and not kwargs and self.input_signature is None:
            raise ValueError("get_concrete_function() needs arguments (tensors or "
                             "TensorSpecs) when the function has no input_signature.")
        return self._lookup(args, kwargs)[0]

    def concrete_functions(self) -> list[ConcreteFunction]:
        """The traces made so far, oldest first."""
        return list(self._concrete.values())

    def experimental_get_tracing_count(self) -> int:
        """How many times the Python function has been traced."""
        return self._traces

    # --------------------------------------------------------------- tracing

    def _lookup(self, args: tuple, kwargs: dict) -> tuple[ConcreteFunction, list]:
        if self.input_signature is not None:
            return self._lookup_signature(args, kwargs)
        leaves: list = []
        key = _call_key(args, kwargs, leaves)
        specs = [x if isinstance(x, TensorSpec) else None for x in leaves]
        arrays = [] if any(specs) else [_array(x) for x in leaves]
        specs = [s or TensorSpec(a.shape, a.dtype) for s, a in zip(specs, arrays or specs)]
        concrete = self._concrete.get(key)
        if concrete is None and self.reduce_retracing:
            concrete, specs = self._relax(key, specs)
        if concrete is None:
            with self._lock:  # one trace per signature, whichever thread calls first
                concrete = self._concrete.get(key)
                if concrete is None:
                    concrete = self._trace(args, kwargs, specs)
                    self._concrete[key] = concrete
                    if self.reduce_retracing:
                        self._relaxed.append((_structure_key(key), concrete))
        return concrete, arrays

    def _lookup_signature(self, args, kwargs) -> tuple[ConcreteFunction, list]:
        specs = self.input_signature
        if not args and not kwargs:  # get_concrete_function() of the signature
            args = tuple(specs)
        if kwargs or len(args) != len(specs):
            raise TypeError(f"'{self._name}' has input_signature {specs}: call it with "
                            f"{len(specs)} positional tensor arguments. Received "
                            f"{len(args)} positional and {sorted(kwargs)} keyword arguments.")
        if args and all(isinstance(a, TensorSpec) for a in args):
            arrays = []
        else:
            arrays = [_array(a) for a in args]
            for spec, arr in zip(specs, arrays):
                if not spec.is_compatible_with(arr):
                    raise ValueError(
                        f"Python inputs incompatible with input_signature of '{self._name}': "
                        f"expected {spec}, received shape {arr.shape} dtype {arr.dtype}.")
        concrete = self._concrete.get("signature")
        if concrete is None:
            with self._lock:
                concrete = self._concrete.get("signature")
                if concrete is None:
                    concrete = self._concrete["signature"] = self._trace(tuple(specs), {},
                                                                         specs)
        return concrete, arrays

    def _relax(self, key, specs) -> tuple[ConcreteFunction | None, list]:
        skey = _structure_key(key)
        for other_key, concrete in self._relaxed:
            if other_key == skey and all(s.is_compatible_with(TensorSpec(
                    t.shape, t.dtype)) for s, t in zip(concrete._specs, specs)):
                return concrete, specs
        for other_key, concrete in self._relaxed:
            if other_key == skey:
                return None, [TensorSpec(s.shape.most_specific_common_shape(t.shape), t.dtype)
                              for s, t in zip(concrete._specs, specs)]
        return None, specs

    def _trace(self, args: tuple, kwargs: dict, specs: list[TensorSpec]) -> ConcreteFunction:
        self._traces += 1
        if self._traces > RETRACE_WARNING_AFTER:
            warnings.warn(
                f"{self._traces} traces of the function '{self._name}' in {self._calls} calls: "
                "each new input shape, dtype or Python argument value traces it again, "
                "which is expensive. Pass tensors instead of Python numbers, set "
                "input_signature=[TensorSpec(shape=[None, ...])] or reduce_retracing=True.",
                UserWarning, stacklevel=4)
        graph = FuncGraph(self._name)
        template = _template((args, kwargs))
        draws = _random_state()
        with graph.as_default():
            graph.inputs = [core.placeholder(s.dtype, s.shape, s.name or f"input_{i}")
                            for i, s in enumerate(specs)]
            a, k = _fill(template, graph.inputs)
            out = self.python_function(*a, **k)
            out = _capture_outputs(graph, out)
        graph.structured_outputs = out
        graph.outputs = [t for t in nest.flatten(out) if isinstance(t, GraphTensor)]
        after = _random_state()
        if after[:2] != draws[:2] and after[2] == draws[2]:  # drawn, and not for new variables
            if self._fallback_hint is not None:  # a compiled Keras step: never freeze them
                raise NoGraphForm("it draws random numbers from distflow.random, which a "
                                  "trace would freeze into constants")
            warnings.warn(
                f"The traced function '{self._name}' drew random numbers from "
                "distflow.random while tracing: they are constants of the trace, the same at "
                "every call. Draw them outside and pass them in as arguments (distflow.nn."
                "dropout draws anew at every call).", UserWarning, stacklevel=4)
        concrete = ConcreteFunction(graph, template, specs, self._name)
        _drop_probes(graph)
        return concrete

    def __repr__(self) -> str:
        return f"<distflow.function {self._name}>"


def function(func: Callable | None = None, input_signature: Any = None,
             autograph: bool = True, jit_compile: bool | None = None,
             reduce_retracing: bool = False, experimental_relax_shapes: bool | None = None,
             name: str | None = None, **kwargs: Any) -> Any:
    """Compiles a Python function into a graph, as `tf.function` (decorator or call).

    Args:
        func: the function (omit to use `@function(...)` with arguments).
        input_signature: a list of `TensorSpec`s fixing the tensor arguments' shapes
            (None dimensions accept any size): one trace serves every call.
        autograph: accepted; Python control flow is unrolled at trace time.
        jit_compile: accepted; every graph is compiled by distflow's own executor.
        reduce_retracing: on a new shape, retrace once with the differing dimensions
            made unknown, so that later shapes reuse that trace.
        experimental_relax_shapes: the old name of `reduce_retracing`.
        name: the name of the traced graphs.

    Returns:
        A `Function`: call it like the Python function.
    """
    relax = bool(reduce_retracing or experimental_relax_shapes)

    def decorate(f: Callable) -> Function:
        return Function(f, input_signature, relax, jit_compile, name)
    return decorate if func is None else decorate(func)


# --------------------------------------------------------------- signatures


class _Arg:
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _is_input(x: Any) -> bool:
    return (isinstance(x, Tensor) and not isinstance(x, Variable | GraphTensor)) or \
        isinstance(x, np.ndarray | TensorSpec)


def _stateful_argument(value: Any) -> Any:
    """The first argument that changes when read (an iterator, a generator), or None."""
    if isinstance(value, list | tuple):
        return next((s for s in map(_stateful_argument, value) if s is not None), None)
    if isinstance(value, dict):
        return _stateful_argument(list(value.values()))
    if hasattr(value, "__next__") and not isinstance(value, Tensor | np.ndarray):
        return value
    return None


def _call_key(args: tuple, kwargs: dict, leaves: list) -> Any:
    """The cache key of a call (what `_signature` gives); positional arrays / tensors, or
    one tuple of them (a Keras step's batch `(x, y, sample_weight)`), take a shortcut that
    appends the arrays themselves to `leaves`."""
    if kwargs:
        return _signature((args, kwargs), leaves)
    nested = len(args) == 1 and type(args[0]) is tuple
    items = args[0] if nested else args
    arrays, specs = [], []
    for a in items:
        kind = type(a)
        if kind is Tensor:
            a = a.value
        elif kind is not np.ndarray:
            if a is not None or not nested:
                return _signature((args, kwargs), leaves)
            specs.append(("P", "NoneType", None))
            continue
        arrays.append(a)
        specs.append(("T", a.shape, a.ndim, a.dtype.str))
    leaves.extend(arrays)
    if nested:
        return ("tuple", (("tuple", (("tuple", tuple(specs)),)), ("dict", ())))
    return ("tuple", (("tuple", tuple(specs)), ("dict", ())))


def _signature(value: Any, leaves: list) -> Any:
    """A hashable key of `value`; tensor leaves are appended to `leaves`."""
    if _is_input(value):
        leaves.append(value)
        return ("T", tuple(value.shape), value.shape.rank if isinstance(value, TensorSpec)
                else len(value.shape), np.dtype(value.dtype).str)
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_signature(v, leaves) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _signature(value[k], leaves)) for k in sorted(value)))
    if isinstance(value, Variable):
        return ("V", id(value))
    try:
        hash(value)
        return ("P", type(value).__name__, value)
    except TypeError:
        return ("O", id(value))


def _structure_key(key: Any) -> Any:
    if isinstance(key, tuple) and key and key[0] == "T":
        return ("T", key[2], key[3])
    if isinstance(key, tuple):
        return tuple(_structure_key(k) for k in key)
    return key


def _template(value: Any) -> Any:
    counter = [0]

    def walk(v):
        if _is_input(v):
            counter[0] += 1
            return _Arg(counter[0] - 1)
        if isinstance(v, list | tuple):
            items = [walk(x) for x in v]
            return type(v)(*items) if hasattr(v, "_fields") else type(v)(items)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v
    return walk(value)


def _fill(template: Any, values: list) -> Any:
    if isinstance(template, _Arg):
        return values[template.index]
    if isinstance(template, list | tuple):
        items = [_fill(x, values) for x in template]
        return type(template)(*items) if hasattr(template, "_fields") else type(template)(items)
    if isinstance(template, dict):
        return {k: _fill(x, values) for k, x in template.items()}
    return template


def _packer(structure: Any) -> Callable[[list], Any]:
    """`lambda flat: nest.pack_sequence_as(structure, flat)`, as one generated expression
    when `structure` is built of plain dicts, lists and tuples (a step's logs)."""
    counter = iter(range(len(nest.flatten(structure))))
    try:
        template = _slotted(structure, counter)
    except TypeError:  # a namedtuple, a Mapping of another type, unsortable keys
        return functools.partial(nest.pack_sequence_as, structure)
    return _record._filler(template)


def _slotted(value: Any, counter: Any) -> Any:
    """`value` with its leaves replaced by `_record._Slot`s numbered in `nest`'s order."""
    if type(value) is list or type(value) is tuple:
        return type(value)(_slotted(v, counter) for v in value)
    if type(value) is dict:
        slots = {k: _slotted(value[k], counter) for k in sorted(value)}
        return {k: slots[k] for k in value}
    if isinstance(value, list | tuple | dict) or nest.is_nested(value):
        raise TypeError(f"not a plain container: {type(value).__name__}")
    return _record._Slot(next(counter))


def _grad_of(grads: Callable, output: int, source: int, g: np.ndarray, _residuals: Any) -> Any:
    return grads(output, g)[source]


def _array(x: Any) -> np.ndarray:
    if isinstance(x, TensorSpec):
        raise TypeError("A TensorSpec can only be used to get a concrete function.")
    if isinstance(x, Tensor):
        return x.value
    return np.asarray(x)


def _capture_outputs(graph: FuncGraph, out: Any) -> Any:
    """Returned Variables become reads of their value (a copy is returned per call)."""
    flat = nest.flatten(out)
    fixed = [graph.read_variable(x) if isinstance(x, Variable) else
             x.outputs[0] if isinstance(x, Operation) and x.outputs else x for x in flat]
    return nest.pack_sequence_as(out, fixed)


def _result(value: np.ndarray, copy: bool) -> Tensor:
    """An output the caller owns: variables' buffers, constants and read-only views copied."""
    if copy or not value.flags.writeable:
        value = value.copy()
    return Tensor._wrap(value)


def _random_state() -> tuple:
    """The global generator's position and the variable names handed out so far."""
    generator = _random.get_global_generator()
    return (id(generator), str(generator.bit_generator.state["state"]),
            frozenset(_names._name_counts))


def _drop_probes(graph: Graph) -> None:
    """Frees the example arrays kept while tracing (a shape is all a trace keeps)."""
    for op in graph._ops:
        if op.kind != "const":
            for t in op.outputs:
                t._probes = None


__all__ = ["ConcreteFunction", "Function", "TensorShape", "TensorSpec", "function"]
