"""Tensors, variables and the gradient tape: the reverse-mode engine.

A `Tensor` wraps one NumPy array. While a `GradientTape` is active, every
primitive op whose inputs are watched records a `_Node` holding only what its
vector-Jacobian products need (the residuals), links to its parents' nodes,
and never the parents' data. `GradientTape.gradient` walks those nodes in
reverse creation order and asks each primitive for the VJP of just the inputs
that lead to a requested source.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from distflow import nest, strategy_stack
from distflow.dtypes import _BY_NUMPY as _DTYPES
from distflow.tensor_shape import TensorShape

_shape_of = TensorShape._of

_SUPPORTED_KINDS = "fiub"  # float, signed int, unsigned int, bool
_state = threading.local()


class _GraphHooks:
    """Where graph mode (`distflow.graph`) plugs into the core, which never imports it.

    `active` counts the open graph contexts of all threads (plus one while eager
    execution is disabled); while it is 0 every hook is skipped with one attribute
    test, so eager code pays nothing else. The hooks return `NotImplemented` to
    let the eager code run.
    """

    __slots__ = ("active", "primitive", "call", "gradient", "assign", "probe")

    def __init__(self) -> None:
        self.active = 0
        self.primitive = self.call = self.gradient = self.assign = self.probe = None


GRAPH = _GraphHooks()


def graph_form(trigger: str = "symbolic", args: tuple[str, ...] = (),
               differentiable: bool = True, specialize: Callable | None = None
               ) -> Callable[[Callable], Callable]:
    """Declares how a public function that is not one primitive is recorded into a graph.

    Such functions read their inputs' values (argmax, comparisons) or compute op
    parameters from static shapes (expand_dims); while a graph is being built they
    are recorded as one "call" operation that runs the eager function when the
    graph runs (its gradient, when `differentiable`, re-runs it under a tape).

    Args:
        trigger: "symbolic" (record when any argument is a symbolic tensor),
            "args" (when one of `args` is symbolic), "unknown" (when one of `args`
            is symbolic with an unknown dimension), "stateful" (always while
            building; never folded or pruned) or "effect" (always while building, run
            for its side effect only: the call returns the `Operation`, e.g. an
            optimizer update).
        args: the argument names `trigger` looks at.
        differentiable: whether gradients flow through the recorded call.
        specialize: for an "effect" or "stateful" call, called once with the call's
            arguments when it is recorded; may return a kernel taking the arrays of the
            call's symbolic inputs (in the order they appear in the arguments) that the
            graph runs instead of the function (a plan made once for these arguments),
            or None. A stateful call's kernel returns the tuple of its output arrays.
    """
    def decorate(fn: Callable) -> Callable:
        fn.graph_kernel = specialize
        @functools.wraps(fn)
        def op(*a: Any, **k: Any) -> Any:
            if GRAPH.active:
                out = GRAPH.call(fn, trigger, args, differentiable, a, k)
                if out is not NotImplemented:
                    return out
            return fn(*a, **k)
        op.eager_function = fn
        return op
    return decorate


def _no_graph_form(t: Tensor) -> None:
    caller = sys._getframe(2).f_code.co_name
    raise TypeError(
        f"`{caller}` has no graph form: it needs the value of the symbolic tensor "
        f"'{t.name}', which exists only when the graph runs. Compute it from the graph's "
        "outputs after running it (Session.run, or outside the traced function).")


def _check_dtype(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind not in _SUPPORTED_KINDS:
        raise TypeError(
            "distflow tensors hold float, int or bool values. "
            f"Received: dtype={arr.dtype} (convert the data with .astype('float32') first)."
        )
    return arr


# (priority, registration order, base type, function): `tf.register_tensor_conversion_function`
CONVERSIONS: list[tuple[int, int, type, Any]] = []


def registered_conversion(value: Any, dtype: Any = None) -> Tensor | None:
    """The tensor a registered conversion function makes of `value` (None: none applies)."""
    for _, _, base, fn in CONVERSIONS:
        if isinstance(value, base):
            out = fn(value, dtype=dtype, name=None, as_ref=False)
            if out is not NotImplemented:
                return out
    return None


def as_array(value: Any, dtype: Any = None) -> np.ndarray:
    """Converts `value` to an ndarray with TensorFlow's default dtypes.

    Python floats become float32 and Python ints int32 (as `tf.constant` does);
    NumPy arrays keep their dtype unless `dtype` is given. No copy is made
    when none is needed.
    """
    if isinstance(value, Tensor):
        if value._symbolic:
            _no_graph_form(value)
        arr = value.value
    elif isinstance(value, (np.ndarray, np.generic)):
        if GRAPH.active and getattr(value, "_distflow_probe", False):
            GRAPH.probe(value)  # a value computed from a symbolic tensor's example value
        arr = np.asarray(value)
    elif CONVERSIONS and (converted := registered_conversion(value, dtype)) is not None:
        arr = as_array(converted)
    else:
        arr = np.asarray(value)
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        elif dtype is None and arr.dtype == np.int64:
            arr = arr.astype(np.int32)
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    return _check_dtype(arr)


class Tensor:
    """An immutable n-dimensional array that can take part in differentiation.

    Attributes:
        value: the underlying `numpy.ndarray` (library code reads it directly;
            treat it as read-only).
    """

    __slots__ = ("value", "_node", "__weakref__")
    __array_priority__ = 100  # so ndarray <op> Tensor defers to Tensor
    _symbolic = False  # True for graph tensors (`distflow.graph.GraphTensor`)

    def __init__(self, value: Any, dtype: Any = None):
        self.value = as_array(value, dtype)
        self._node = None

    @classmethod
    def _wrap(cls, arr: np.ndarray) -> Tensor:
        """Wraps an array produced by an op, skipping conversion checks."""
        t = object.__new__(Tensor)
        t.value = arr
        t._node = None
        return t

    # The array's dtype and shape for checks: a symbolic tensor answers from its static
    # spec without a value (see graph.core.GraphTensor).
    array_dtype = property(lambda self: self.value.dtype, doc="The NumPy dtype.")
    array_shape = property(lambda self: self.value.shape, doc="The shape as a tuple.")
    shape = property(lambda self: _shape_of(self.value.shape),
                     doc="A `TensorShape`: a tuple of dimensions with TF's methods.")
    dtype = property(lambda self: _DTYPES.get(self.value.dtype, self.value.dtype),
                     doc="The element type: a `DType`, equal to the NumPy dtype.")
    ndim = property(lambda self: self.value.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.value.size, doc="Number of elements.")

    def numpy(self) -> np.ndarray:
        """Returns the value as a NumPy array."""
        return self.value

    def __array__(self, dtype=None, copy=None):
        # An ndarray even for a 0-d result held as a NumPy scalar; a copy when NumPy asks
        # for one (np.array(variable) must not be a live view of the variable's buffer).
        value = self.value if isinstance(self.value, np.ndarray) else np.asarray(self.value)
        if dtype is not None and value.dtype != dtype:
            return value.astype(dtype)
        return value.copy() if copy else value

    def __format__(self, spec: str) -> str:
        if self.value.ndim == 0:  # f"{loss:.3f}" on a scalar, as on TF's eager tensors
            return format(self.value[()], spec)
        return object.__format__(self, spec)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor (a scalar) is undefined.")
        return self.value.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]  # the indexing op distflow.ops installs

    def __bool__(self) -> bool:
        return bool(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return self.value.__index__()

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        kind = type(self).__name__
        return (f"<distflow.{kind}: shape={self.shape}, dtype={self.dtype.name}, "
                f"numpy={self.value!r}>")

    def __str__(self) -> str:
        return str(self.value)


class Variable(Tensor):
    """A mutable tensor holding model state, watched by tapes when trainable.

    Args:
        initial_value: array-like or a callable returning one.
        name: base name; made unique in this process (`dense/kernel`,
            `dense/kernel_1`, ...) because names are parameter-server keys.
        trainable: whether tapes watch it automatically.
        dtype: optional dtype; defaults to the initial value's.
    """

    __slots__ = ("name", "trainable", "_leaf", "constraint", "_distribute_strategy")

    def __init__(self, initial_value: Any, name: str | None = None,
                 trainable: bool = True, dtype: Any = None, constraint: Any = None):
        if callable(initial_value):
            initial_value = initial_value()
        super().__init__(np.array(as_array(initial_value, dtype), copy=True))
        self.name = unique_name(name or "Variable")
        self.trainable = bool(trainable)
        self.constraint = constraint  # applied by the optimizer after each update, as in TF
        # A variable's leaf node is permanent: tapes need not create one per step.
        self._leaf = _Node((), (), None, None, "leaf", source=self)
        # The strategy whose scope() it was created in (None: none), as TF's variables.
        self._distribute_strategy = strategy_stack.current()

    def numpy(self) -> np.ndarray:
        """Returns a copy of the current value (later assignments do not change it)."""
        return self.value.copy()

    def _coerce(self, value: Any, what: str) -> np.ndarray:
        arr = as_array(value)
        if arr.shape != self.value.shape:
            try:
                arr = np.broadcast_to(arr, self.value.shape)
            except ValueError:
                raise ValueError(
                    f"Cannot {what} variable '{self.name}' of shape {self.value.shape} "
                    f"with a value of shape {arr.shape}."
                ) from None
        return arr

    def assign(self, value: Any) -> Variable:
        """Writes `value` into the variable in place (recorded while a graph is built)."""
        if GRAPH.active:
            out = GRAPH.assign(self, "assign", value)
            if out is not NotImplemented:
                return out
        np.copyto(self.value, self._coerce(value, "assign"), casting="unsafe")
        return self

    def assign_add(self, delta: Any) -> Variable:
        """Adds `delta` to the variable in place (recorded while a graph is built)."""
        if GRAPH.active:
            out = GRAPH.assign(self, "assign_add", delta)
            if out is not NotImplemented:
                return out
        np.add(self.value, self._coerce(delta, "assign_add"), out=self.value, casting="unsafe")
        return self

    def assign_sub(self, delta: Any) -> Variable:
        """Subtracts `delta` from the variable in place (recorded while a graph is built)."""
        if GRAPH.active:
            out = GRAPH.assign(self, "assign_sub", delta)
            if out is not NotImplemented:
                return out
        np.subtract(self.value, self._coerce(delta, "assign_sub"), out=self.value,
                    casting="unsafe")
        return self

    def read_value(self) -> Tensor:
        """Returns a constant snapshot of the current value."""
        return Tensor._wrap(self.value.copy())


_name_counts: dict[str, int] = {}
_name_lock = threading.Lock()


def unique_name(base: str) -> str:
    """Returns `base`, or `base_N` if `base` was already handed out in this process."""
    with _name_lock:
        n = _name_counts.get(base, 0)
        _name_counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


def reset_names() -> None:
    """Forgets handed-out names (used by `keras.backend.clear_session`)."""
    with _name_lock:
        _name_counts.clear()


# --------------------------------------------------------------------------- tape


class _Node:
    """One recorded op (or a leaf) in a tape's graph."""

    __slots__ = ("parents", "vjps", "residuals", "tape", "source", "name")

    def __init__(self, parents, vjps, residuals, tape, name, source=None):
        self.parents = parents
        self.vjps = vjps
        self.residuals = residuals
        self.tape = tape
        self.name = name
        self.source = source


def _tape_stack() -> list:
    stack = getattr(_state, "tapes", None)
    if stack is None:
        stack = _state.tapes = []
    return stack


def current_tape() -> GradientTape | None:
    """The innermost recording tape of this thread, or None."""
    stack = getattr(_state, "tapes", None)
    return stack[-1] if stack else None


def _is_differentiable(t: Tensor) -> bool:
    return t.array_dtype.kind == "f"


class GradientTape:
    """Records operations for reverse-mode differentiation, as `tf.GradientTape`.

    Trainable variables used inside the `with` block are watched automatically;
    other tensors need `tape.watch(t)`. Only the innermost active tape records
    (gradients are NumPy arrays, so higher-order gradients are not supported).

    Args:
        persistent: allow several `gradient()` calls; otherwise the graph and its
            saved buffers are freed by the first call.
        watch_accessed_variables: watch trainable variables automatically.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self.persistent = persistent
        self._watch_vars = watch_accessed_variables
        self._leaves: dict[int, _Node] = {}
        self._nodes: list[_Node] = []  # recorded ops in creation order
        self._touched: dict[_Node, None] = {}  # leaves of auto-watched variables, in order
        self._used = False
        self._recording = False

    def __enter__(self) -> GradientTape:
        _tape_stack().append(self)
        self._recording = True
        return self

    def __exit__(self, *exc) -> None:
        stack = _tape_stack()
        if self in stack:
            stack.remove(self)
        self._recording = False

    def watch(self, tensor: Any) -> None:
        """Marks a tensor (or a nested list/tuple/dict of tensors) to be differentiated."""
        for t in nest.flatten(tensor):
            if not isinstance(t, Tensor):
                raise TypeError(f"`tape.watch` expects tensors. Received: {type(t).__name__}.")
            if _is_differentiable(t):
                self._leaf(t)

    def watched_variables(self) -> list[Variable]:
        """The variables watched so far, in first-use order."""
        found = [n.source for n in (*self._touched, *self._leaves.values())
                 if isinstance(n.source, Variable)]
        return list(dict.fromkeys(found))

    def _leaf(self, t: Tensor) -> _Node:
        node = self._leaves.get(id(t))
        if node is None:
            node = self._leaves[id(t)] = _Node((), (), None, self, "leaf", source=t)
        return node

    def node_for(self, t: Tensor) -> _Node | None:
        """The node through which gradients reach `t` on this tape, or None."""
        node = t._node
        if node is not None and node.tape is self:
            return node
        if type(t) is Variable and t.trainable and self._watch_vars and t.value.dtype.kind == "f":
            self._touched[t._leaf] = None
            return t._leaf
        return self._leaves.get(id(t))

    def _source_node(self, t: Any) -> _Node | None:
        if not isinstance(t, Tensor):
            raise TypeError(
                "`tape.gradient` sources must be tensors or variables. "
                f"Received: {type(t).__name__}."
            )
        node = t._node
        if node is not None and node.tape is self:
            return node
        node = self._leaves.get(id(t))
        if node is None and type(t) is Variable and t._leaf in self._touched:
            node = t._leaf
        return node

    def gradient(self, target: Any, sources: Any, output_gradients: Any = None,
                 unconnected_gradients: str = "none") -> Any:
        """Computes d(sum of target) / d(sources).

        Args:
            target: a tensor or a list of tensors; non-scalar targets are summed.
            sources: a tensor or a nested list/tuple/dict of tensors.
            output_gradients: optional upstream gradients, one per target.
            unconnected_gradients: "none" (return None) or "zero".

        Returns:
            Gradients in the structure of `sources`; None for unconnected ones.
        """
        if self._used:
            raise RuntimeError(
                "A non-persistent GradientTape can only be used to compute one set of "
                "gradients. Use GradientTape(persistent=True) to call gradient() repeatedly."
            )
        if GRAPH.active:  # a tape inside a traced function: the backward pass becomes ops
            out = GRAPH.gradient(self, target, sources, output_gradients, unconnected_gradients)
            if out is not NotImplemented:
                return out
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError("`unconnected_gradients` must be 'none' or 'zero'. "
                             f"Received: unconnected_gradients={unconnected_gradients!r}")
        flat_sources = nest.flatten(sources)
        source_nodes = [self._source_node(s) for s in flat_sources]
        grads = self._backprop(self._seeds(target, output_gradients),
                               {n for n in source_nodes if n is not None})
        if not self.persistent:
            self._release()
        out = []
        for src, node in zip(flat_sources, source_nodes):
            g = grads.get(node)  # None for an unconnected source (None is never a key)
            if g is None and unconnected_gradients == "zero":
                g = np.zeros_like(src.value)
            out.append(None if g is None else Tensor._wrap(_own(g, src.value.dtype)))
        return nest.pack_sequence_as(sources, out)

    def _seeds(self, target: Any, output_gradients: Any) -> list[tuple[_Node, np.ndarray]]:
        single = isinstance(target, Tensor)
        targets = [target] if single else nest.flatten(target)
        upstream = None
        if output_gradients is not None:
            upstream = [output_gradients] if single else list(output_gradients)
        seeds = []
        for i, t in enumerate(targets):
            if not isinstance(t, Tensor):
                continue
            node = self._source_node(t)
            if node is None:
                continue
            g = (np.ones(t.value.shape, t.value.dtype) if upstream is None
                 else np.broadcast_to(as_array(upstream[i], t.value.dtype), t.value.shape))
            seeds.append((node, g))
        return seeds

    def _backprop(self, seeds, wanted: set[_Node]) -> dict[_Node, np.ndarray]:
        """Runs the recorded nodes backwards, calling only VJPs that lead to `wanted`."""
        nodes = self._nodes
        useful = self._useful_nodes(wanted)
        grads: dict[_Node, np.ndarray] = {}
        for node, g in seeds:
            _accumulate(grads, node, g)
        result = {}
        for node in reversed(nodes):  # the hot loop: kept flat on purpose
            g = grads.pop(node, None)
            if g is None or node not in useful:
                continue
            if node in wanted:  # an intermediate tensor asked for as a source
                result[node] = g
            res = node.residuals
            for parent, vjp in zip(node.parents, node.vjps):
                if parent in useful:
                    if vjp is None:
                        _no_gradient(node, parent)
                    gi = vjp(g, res)
                    prev = grads.get(parent)
                    grads[parent] = gi if prev is None else prev + gi
        for node in wanted:  # leaves (and targets that are sources) were never popped
            if node not in result and node in grads:
                result[node] = grads[node]
        return result

    def _useful_nodes(self, wanted: set[_Node]) -> set[_Node]:
        """The nodes on a path to a wanted node: only their gradients are needed."""
        if wanted.issuperset(self._touched) and wanted.issuperset(self._leaves.values()):
            # Every recorded op has a tracked input, so with every leaf wanted, all lead there.
            return wanted.union(self._nodes)
        useful = set(wanted)
        for node in self._nodes:  # creation order: parents come first
            if not useful.isdisjoint(node.parents):
                useful.add(node)
        return useful

    def _release(self) -> None:
        """Frees the recorded graph and its saved buffers (non-persistent tapes)."""
        for node in self._nodes:
            node.residuals = None  # the saved buffers: what actually holds memory
        self._nodes = []
        self._leaves = {}
        self._touched = {}
        self._used = True

    def jacobian(self, target: Any, sources: Any, unconnected_gradients: str = "none",
                 parallel_iterations: Any = None, experimental_use_pfor: bool = True) -> Any:
        """d target / d sources, shaped target.shape + source.shape (a pass per target element)."""
        return _jacobian(self, target, sources, unconnected_gradients)

    def batch_jacobian(self, target: Tensor, source: Tensor, unconnected_gradients: str = "none",
                       parallel_iterations: Any = None, experimental_use_pfor: bool = True) -> Any:
        """Per-example Jacobians [batch, *target.shape[1:], *source.shape[1:]]."""
        return _batch_jacobian(self, target, source, unconnected_gradients)

    def stop_recording(self):
        """A context in which ops are not recorded on this tape."""
        return _stop_recording(self)

    def reset(self) -> None:
        """Clears what this tape recorded (it keeps recording inside its block)."""
        _reset(self)


def _own(g: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A writable array of the source's dtype (VJPs may return read-only broadcast views)."""
    if g.dtype != dtype:
        return g.astype(dtype)
    return g if g.flags.writeable else g.copy()


def _no_gradient(node: _Node, parent: _Node) -> None:
    i = next(i for i, (p, vjp) in enumerate(zip(node.parents, node.vjps))
             if p is parent and vjp is None)
    raise LookupError(
        f"No gradient is defined for input {i} of op '{node.name}'. Wrap the value "
        "in distflow.stop_gradient(...) if no gradient should flow through it."
    )


def _accumulate(grads: dict[_Node, np.ndarray], node: _Node, g: np.ndarray) -> None:
    prev = grads.get(node)
    grads[node] = g if prev is None else prev + g


_new_tensor = object.__new__


def record(name: str, out: np.ndarray, inputs: tuple, vjps: tuple, residuals: Any) -> Tensor:
    """Wraps an op's output and records it on the active tape when needed.

    Args:
        name: op name, for error messages.
        out: the forward result.
        inputs: the op's differentiable input tensors, matching `vjps`.
        vjps: one function `(g, residuals) -> grad` per input (None: no gradient).
        residuals: what the VJPs need, and nothing more.
    """
    result = _new_tensor(Tensor)
    result.value = out
    result._node = None
    stack = getattr(_state, "tapes", None)
    if not stack or out.dtype.kind != "f":
        return result
    tape = stack[-1]
    parents = []
    for t in inputs:
        node = t._node
        parents.append(node if node is not None and node.tape is tape else tape.node_for(t))
    if any(parents):  # nodes are always truthy: is any input tracked?
        node = result._node = _Node(tuple(parents), vjps, residuals, tape, name)
        tape._nodes.append(node)
    return result


@graph_form(differentiable=False)
@graph_form(differentiable=False)
def stop_gradient(x: Any) -> Tensor:
    """Returns `x` as a tensor through which no gradient flows."""
    return Tensor._wrap(as_array(x))


# ------------------------------------------------------------------- jacobians
# Jacobians from a recorded tape: one backward pass per output element.
#
# `GradientTape.jacobian`, `batch_jacobian`, `stop_recording` and `reset`
# delegate here. A backward pass seeded with a one-hot cotangent gives one row
# of the Jacobian, so a target of n elements costs n passes over the tape (TF
# vectorises these passes with pfor; the results are the same).


def _check_mode(unconnected_gradients: str) -> None:
    if unconnected_gradients not in ("none", "zero"):
        raise ValueError("`unconnected_gradients` must be 'none' or 'zero'. "
                         f"Received: unconnected_gradients={unconnected_gradients!r}")


def _jacobian_rows(tape, target: Tensor, seeds: Iterator[np.ndarray],
                   sources: list) -> list[list]:
    """Runs one backward pass per seed; returns per-source lists of gradients (or None)."""
    if tape._used:
        raise RuntimeError("A non-persistent GradientTape can only be used to compute one set "
                           "of gradients. Use GradientTape(persistent=True).")
    nodes = [tape._source_node(s) for s in sources]
    wanted = {n for n in nodes if n is not None}
    target_node = tape._source_node(target)
    rows: list[list] = [[] for _ in sources]
    for seed in seeds:
        grads = tape._backprop([(target_node, seed)], wanted) if target_node else {}
        for i, node in enumerate(nodes):
            rows[i].append(grads.get(node))
    return rows


def _assemble(rows: list, shape: tuple, src: Tensor, zero: bool) -> Tensor | None:
    if all(r is None for r in rows) and not zero:
        return None
    full = [np.zeros(src.shape, src.dtype) if r is None else r for r in rows]
    out = np.stack(full).reshape(shape) if full else np.zeros(shape, src.dtype)
    return Tensor._wrap(out.astype(src.dtype, copy=False))


def _jacobian(tape, target: Any, sources: Any, unconnected_gradients: str = "none") -> Any:
    """d target[i...] / d source[j...], shaped target.shape + source.shape per source."""
    _check_mode(unconnected_gradients)
    target = target if isinstance(target, Tensor) else Tensor(target)
    flat = nest.flatten(sources)
    n = target.size

    def seeds():
        for k in range(n):
            seed = np.zeros(n, target.dtype)
            seed[k] = 1
            yield seed.reshape(target.shape)

    rows = _jacobian_rows(tape, target, seeds(), flat)
    out = [_assemble(r, target.shape + s.shape, s, unconnected_gradients == "zero")
           for r, s in zip(rows, flat)]
    _finish_jacobian(tape)
    return nest.pack_sequence_as(sources, out)


def _batch_jacobian(tape, target: Tensor, source: Tensor,
                   unconnected_gradients: str = "none") -> Tensor | None:
    """Per-example Jacobians: [b, *target.shape[1:], *source.shape[1:]].

    Assumes example i of `target` depends only on example i of `source`, as TF does.
    """
    _check_mode(unconnected_gradients)
    if target.ndim < 1 or source.ndim < 1 or target.shape[0] != source.shape[0]:
        raise ValueError(f"batch_jacobian needs target and source with the same first "
                         f"(batch) dimension. Received shapes {target.shape} and {source.shape}.")
    b, inner = target.shape[0], int(np.prod(target.shape[1:], dtype=np.int64))

    def seeds():
        for k in range(inner):
            seed = np.zeros((b, inner), target.dtype)
            seed[:, k] = 1
            yield seed.reshape(target.shape)

    rows = _jacobian_rows(tape, target, seeds(), [source])[0]
    _finish_jacobian(tape)
    if all(r is None for r in rows) and unconnected_gradients != "zero":
        return None
    full = [np.zeros(source.shape, source.dtype) if r is None else r for r in rows]
    per = np.stack(full, axis=1) if full else np.zeros((b, 0) + source.shape[1:], source.dtype)
    return Tensor._wrap(per.reshape((b,) + target.shape[1:] + source.shape[1:]).astype(
        source.dtype, copy=False))


def _finish_jacobian(tape) -> None:
    if not tape.persistent:
        tape._release()


@contextlib.contextmanager
def _stop_recording(tape) -> Iterator[None]:
    """Ops inside the block are not recorded on `tape` (it must be active)."""
    stack = _tape_stack()
    if tape not in stack:
        raise ValueError("Tape must be recording to call stop_recording(): use it inside the "
                         "tape's `with` block.")
    i = stack.index(tape)
    stack.remove(tape)
    try:
        yield
    finally:
        stack.insert(i, tape)


def _reset(tape) -> None:
    """Forgets everything recorded so far; the tape keeps recording if active."""
    tape._nodes = []
    tape._leaves = {}
    tape._touched = {}
    tape._used = False
