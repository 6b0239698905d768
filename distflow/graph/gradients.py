"""Symbolic reverse mode: gradient operations built from the primitives' own VJPs.

`gradients(ys, xs)` walks the graph backwards from `ys` (creation order reversed
is a valid order) over the operations that lie on a path from some `x`, and adds
one "vjp" operation per (operation, input) pair: its kernel is the primitive's
VJP, reading the forward operation's residuals. A "call" operation gets one
"call_vjp" operation that re-runs the eager function under a `GradientTape`.
Several contributions to one tensor are summed by an "add_n" operation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import nest
from distflow.graph.core import GraphTensor, Operation, building_graph, get_default_graph
from distflow.tensor import Tensor, Variable

_DIFFERENTIABLE = ("primitive", "call", "cond", "while")

# Gradient rules of the operation kinds defined above this module ("cond", "while":
# graph.control_flow registers them when imported, which it is before it makes one):
# kind -> rule(graph, op, upstream, reach) -> [(input index, gradient tensor)].
_KIND_GRADIENTS: dict[str, Callable] = {}


def register_kind_gradient(kind: str) -> Callable[[Callable], Callable]:
    """Decorator: `rule` builds the gradient operations of every operation of `kind`."""
    def register(rule: Callable) -> Callable:
        _KIND_GRADIENTS[kind] = rule
        return rule
    return register


def gradients(ys: Any, xs: Any, grad_ys: Any = None, name: str = "gradients",
              stop_gradients: Any = None, unconnected_gradients: str = "none",
              like: list | None = None) -> list[GraphTensor | None]:
    """d(sum of ys)/d(xs) as graph tensors (`tf.compat.v1.gradients`).

    Args:
        ys: a tensor or list of tensors to differentiate.
        xs: a tensor, Variable or list of them.
        grad_ys: optional upstream gradients, one per y.
        name: name scope of the gradient operations.
        stop_gradients: tensors treated as constants.
        unconnected_gradients: "none" (None for unconnected xs) or "zero".
        like: the original sources (zeros for "zero" take their shapes).

    Returns:
        One gradient tensor (or None) per x.
    """
    if unconnected_gradients not in ("none", "zero"):
        raise ValueError("`unconnected_gradients` must be 'none' or 'zero'. "
                         f"Received: unconnected_gradients={unconnected_gradients!r}")
    ys = [ys] if isinstance(ys, Tensor) else list(ys)
    xs_list = [xs] if isinstance(xs, Tensor) else list(xs)
    graph = building_graph() or get_default_graph()
    xs_sym = [_as_source(graph, x) for x in xs_list]
    stops = {id(t) for t in nest.flatten(stop_gradients or []) if isinstance(t, GraphTensor)}
    with graph.name_scope(name):
        found = _backprop(graph, ys, xs_sym, grad_ys, stops)
    out = []
    for x, src in zip(xs_sym, like or xs_list):
        g = found.get(id(x)) if x is not None else None
        if g is None and unconnected_gradients == "zero":
            g = _zeros_like(graph, graph.capture(src))
        out.append(g)
    return out


def _as_source(graph, x: Any) -> GraphTensor | None:
    if x is None:
        return None
    if isinstance(x, Variable):
        return graph._variable_reads.get(id(x))
    if isinstance(x, GraphTensor):
        return x
    raise TypeError(f"gradients: `xs` must be graph tensors or variables. Received: "
                    f"{type(x).__name__}.")


def _reachable(graph, xs: list, stops: set) -> tuple[set, set]:
    """The float tensors and operations that depend on some x."""
    tensors = {id(x) for x in xs if x is not None}
    ops: set = set()
    start = min((x.op._index for x in xs if x is not None), default=len(graph._ops))
    for op in graph._ops[start:]:
        if op.kind in _DIFFERENTIABLE and any(id(t) in tensors for t in op.inputs):
            if op.kind == "call" and not op.attrs["differentiable"]:
                continue
            ops.add(op)
            tensors.update(id(o) for o in op.outputs
                           if o.dtype.kind == "f" and id(o) not in stops)
    return tensors, ops


def _backprop(graph, ys, xs, grad_ys, stops) -> dict[int, GraphTensor]:
    reach, ops = _reachable(graph, xs, stops)
    wanted = {id(x) for x in xs if x is not None}
    grads: dict[int, list] = {}
    last = -1
    for i, y in enumerate(ys):
        if not isinstance(y, GraphTensor) or id(y) not in reach:
            continue
        seed = grad_ys[i] if grad_ys is not None and grad_ys[i] is not None else None
        grads.setdefault(id(y), []).append(
            _ones_like(graph, y) if seed is None else graph.capture(
                seed if isinstance(seed, Tensor) else Tensor(seed, y.dtype)))
        last = max(last, y.op._index)
    result: dict[int, GraphTensor] = {}
    for op in reversed(graph._ops[:last + 1]):
        if op not in ops:
            continue
        upstream = [_pop_sum(graph, grads, result, wanted, o) for o in op.outputs]
        if all(g is None for g in upstream):
            continue
        if op.kind == "primitive":
            _primitive_vjps(graph, op, upstream[0], reach, grads)
        elif op.kind in _KIND_GRADIENTS:
            for i, g in _KIND_GRADIENTS[op.kind](graph, op, upstream, reach):
                grads.setdefault(id(op.inputs[i]), []).append(g)
        else:
            _call_vjps(graph, op, upstream, reach, grads)
    for key in wanted:
        if key not in result and key in grads:
            result[key] = _sum(graph, grads.pop(key))
    return result


def _pop_sum(graph, grads, result, wanted, tensor) -> GraphTensor | None:
    parts = grads.pop(id(tensor), None)
    if not parts:
        return None
    total = _sum(graph, parts)
    if id(tensor) in wanted:
        result[id(tensor)] = total
    return total


def _sum(graph, parts: list) -> GraphTensor:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return graph._add("add_n", "AddN", parts, {}, _add_n, [(first.shape, first.dtype)],
                      name="AddN").outputs[0]


def _add_n(*values):
    return (functools.reduce(np.add, values),)


def _ones_like(graph, y: GraphTensor) -> GraphTensor:
    if y.shape.is_fully_defined():  # the usual scalar loss: a constant seed
        return graph.constant(np.ones(tuple(y.shape), y.dtype), name="grad_ys")
    return graph._add("ones_like", "OnesLike", [y], {}, lambda v: (np.ones(v.shape, v.dtype),),
                      [(y.shape, y.dtype)], name="grad_ys").outputs[0]


def _zeros_like(graph, x: GraphTensor) -> GraphTensor:
    return graph._add("zeros_like", "ZerosLike", [x], {},
                      lambda v: (np.zeros(v.shape, v.dtype),), [(x.shape, x.dtype)]).outputs[0]


def _primitive_vjps(graph, op: Operation, g: GraphTensor, reach: set, grads: dict) -> None:
    prim = op.primitive
    for i, x in enumerate(op.inputs):
        if id(x) not in reach:
            continue
        if _passes_through(op, i, x, g):  # d(x + y)/dx with nothing broadcast: g itself
            grads.setdefault(id(x), []).append(g)
            continue
        vjp = prim.vjps[0] if prim.variadic else prim.vjps[i]
        if vjp is None:
            raise LookupError(
                f"No gradient is defined for input {i} of op '{op.name}' ({prim.name}). Wrap "
                "the value in distflow.stop_gradient(...) if no gradient should flow through it.")
        if prim.variadic:
            vjp = functools.partial(vjp, i)
        out = graph._add("vjp", f"{prim.name}_grad", [g], {"forward": op, "input": i},
                         _vjp_kernel(vjp, x.dtype), [(x.shape, x.dtype)],
                         name=f"{op.name}_grad", extra_inputs=(op._residual,))
        grads.setdefault(id(x), []).append(out.outputs[0])


def _passes_through(op: Operation, i: int, x: GraphTensor, g: GraphTensor) -> bool:
    return (op.type == "add" or (op.type == "subtract" and i == 0)) and \
        x.shape.is_fully_defined() and x.shape == op.outputs[0].shape and x.dtype == g.dtype


def _vjp_kernel(vjp: Callable, dtype: np.dtype) -> Callable:
    def kernel(g, residuals):
        out = vjp(g, residuals)
        return (out if out.dtype == dtype else out.astype(dtype),)
    return kernel


def _call_vjps(graph, op: Operation, upstream: list, reach: set, grads: dict) -> None:
    wanted = [i for i, x in enumerate(op.inputs) if id(x) in reach]
    have = [j for j, g in enumerate(upstream) if g is not None]
    op.attrs["state"]["taped"] = True  # the forward kernel now keeps its tape
    specs = [(op.inputs[i].shape, op.inputs[i].dtype) for i in wanted]
    out = graph._add("call_vjp", f"{op.type}_grad", [upstream[j] for j in have],
                     {"forward": op}, _call_vjp_kernel(wanted, have), specs,
                     name=f"{op.name}_grad", extra_inputs=(op._residual,))
    for i, g in zip(wanted, out.outputs):
        grads.setdefault(id(op.inputs[i]), []).append(g)


def _call_vjp_kernel(wanted: list, have: list) -> Callable:
    def kernel(*values):
        tape, tensors, flat = values[-1]
        out = tape.gradient([flat[j] for j in have], [tensors[i] for i in wanted],
                            output_gradients=list(values[:-1]))
        return tuple(np.zeros_like(tensors[i].value) if g is None else g.value
                     for i, g in zip(wanted, out))
    return kernel
