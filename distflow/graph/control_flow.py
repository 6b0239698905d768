"""`cond` and `while_loop`: data-dependent control flow that runs inside a graph.

Eagerly (or with a Python / eager condition) they are plain Python. With a
symbolic condition each branch (or the loop's condition and body) is traced into
its own graph, whose placeholders stand for the tensors of the enclosing graph it
uses (`Graph.captured`); one "cond" / "while" operation runs the chosen branch's
plan (the loop's plans, iteration after iteration) when the graph runs. A cond's
gradient runs the chosen branch's backward plan; while_loop has no gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import nest
from distflow.graph.core import Graph, GraphTensor, building_graph
from distflow.graph.executor import Plan
from distflow.graph.gradients import gradients, register_kind_gradient
from distflow.tensor import Tensor
from distflow.tensor_shape import TensorShape


class _Branch:
    """One traced function of a cond or loop: its graph, outputs, structure and plan."""

    def __init__(self, outer: Graph, fn: Callable, name: str, args: list | None = None):
        self.graph = Graph()
        self.graph.outer = outer
        with self.graph.as_default():
            self.inputs = [self.graph.placeholder(a.dtype, a.shape, f"{name}_arg{i}")
                           for i, a in enumerate(args or [])]
            self.structure = fn(*self.inputs)
            self.outputs = [self.graph.capture(_as_tensor(t)) for t in nest.flatten(self.structure)]
        feeds = self.inputs + [p for _, p in self.graph.captured]
        self.plan = Plan(self.graph, self.outputs, feeds, keep_stateful=True)

    def stateful(self) -> bool:
        return any(op.stateful for op in self.plan.ops)

    def run(self, args: list, captures: dict) -> tuple:
        return self.plan.run([*args, *(captures[id(o)] for o, _ in self.graph.captured)])


def _as_tensor(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, bool | int | float | np.ndarray | np.generic):
        return Tensor(value)
    raise TypeError(f"The branches of cond / the body of while_loop must return tensors (or "
                    f"numbers). Received: {type(value).__name__}.")


def _captures(branches: list) -> list[GraphTensor]:
    found: dict[int, GraphTensor] = {}
    for b in branches:
        for outside, _ in b.graph.captured:
            found.setdefault(id(outside), outside)
    return list(found.values())


def cond(pred: Any, true_fn: Callable, false_fn: Callable, name: str | None = None) -> Any:
    """`true_fn()` if `pred` else `false_fn()`; in a graph, decided when the graph runs.

    Both functions take no arguments and must return the same structure of tensors
    with the same dtypes (TF's rule).
    """
    graph = building_graph()
    if graph is None or not isinstance(pred, GraphTensor):
        return true_fn() if bool(pred) else false_fn()
    branches = [_Branch(graph, true_fn, "true"), _Branch(graph, false_fn, "false")]
    _check_same(branches)
    captures = _captures(branches)
    specs = [(TensorShape(a.shape).most_specific_common_shape(b.shape), a.dtype)
             for a, b in zip(branches[0].outputs, branches[1].outputs)]
    op = graph._add("cond", "If", [graph.capture(pred), *captures],
                    {"branches": branches, "captures": captures},
                    _cond_kernel(branches, captures), specs, name=name or "cond",
                    stateful=any(b.stateful() for b in branches))
    return nest.pack_sequence_as(branches[0].structure, op.outputs)


def _check_same(branches: list) -> None:
    a, b = branches
    if len(a.outputs) != len(b.outputs) or any(
            x.dtype != y.dtype for x, y in zip(a.outputs, b.outputs)):
        raise TypeError(
            "true_fn and false_fn arguments to cond must have the same number, type, and "
            f"overall structure of return values. Received dtypes "
            f"{[x.dtype.name for x in a.outputs]} and {[y.dtype.name for y in b.outputs]}.")


def _cond_kernel(branches: list, captures: list) -> Callable:
    def kernel(pred, *values):
        given = {id(t): v for t, v in zip(captures, values)}
        return branches[0 if bool(pred) else 1].run([], given)
    return kernel


def while_loop(cond_fn: Callable, body: Callable, loop_vars: Any,
               maximum_iterations: int | None = None, name: str | None = None,
               **_kwargs: Any) -> Any:
    """Repeats `loop_vars = body(*loop_vars)` while `cond_fn(*loop_vars)` holds.

    In a graph (the loop variables become tensors) the condition is checked when the
    graph runs; the loop variables keep their shapes and dtypes (as TF requires
    without `shape_invariants`). Its gradient runs the body's backward plan once per
    iteration, last to first, from the loop variables each iteration started with.
    """
    single = not isinstance(loop_vars, list | tuple)
    values = [loop_vars] if single else list(loop_vars)
    graph = building_graph()
    if graph is None:
        return _python_loop(cond_fn, body, values, maximum_iterations, single)
    inputs = [graph.capture(_as_tensor(v)) for v in values]
    test = _Branch(graph, lambda *xs: cond_fn(*xs), "cond", inputs)
    step = _Branch(graph, lambda *xs: body(*xs), "body", inputs)
    for x, y in zip(inputs, step.outputs):
        if x.dtype != y.dtype or not x.shape.is_compatible_with(y.shape):
            raise ValueError(f"while_loop: the body changed a loop variable from {x.dtype.name} "
                             f"{x.shape} to {y.dtype.name} {y.shape}; loop variables keep "
                             "their shape and dtype.")
    captures = _captures([test, step])
    state = {"taped": False}
    op = graph._add("while", "While", [*inputs, *captures],
                    {"captures": captures, "body": step, "state": state},
                    _while_kernel(test, step, len(inputs), captures, maximum_iterations, state),
                    [(x.shape, x.dtype) for x in inputs], name=name or "while",
                    stateful=test.stateful() or step.stateful(), residual=True)
    return op.outputs[0] if single else type(loop_vars)(op.outputs) if isinstance(
        loop_vars, list | tuple) else op.outputs


def _python_loop(cond_fn, body, values, maximum_iterations, single) -> Any:
    n = 0
    while (maximum_iterations is None or n < maximum_iterations) and bool(cond_fn(*values)):
        out = body(*values)
        values = [out] if single else list(out)
        n += 1
    return values[0] if single else values


def _while_kernel(test: _Branch, step: _Branch, n: int, captures: list,
                  maximum_iterations: int | None, state: dict) -> Callable:
    def kernel(*values):
        given = {id(t): v for t, v in zip(captures, values[n:])}
        current, i, history = list(values[:n]), 0, []
        while (maximum_iterations is None or i < maximum_iterations) and bool(
                test.run(current, given)[0]):
            if state["taped"]:  # what the gradient replays, iteration by iteration
                history.append(current)
            current = list(step.run(current, given))
            i += 1
        return (*current, history)
    return kernel


__all__ = ["cond", "cond_gradient", "while_loop"]


# ------------------------------------------------------------------ gradient


@register_kind_gradient("cond")
def cond_gradient(graph: Graph, op: Any, upstream: list, reach: set) -> list:
    """Gradient operations of a "cond": (input index, gradient tensor) pairs."""
    branches, captures = op.attrs["branches"], op.attrs["captures"]
    wanted = [i for i, t in enumerate(captures) if id(t) in reach]
    have = [j for j, g in enumerate(upstream) if g is not None]
    plans = []
    for b in branches:
        mine = {id(o): p for o, p in b.graph.captured}
        with b.graph.as_default():
            seeds = [b.graph.placeholder(b.outputs[j].dtype, b.outputs[j].shape, "seed")
                     for j in have]
            xs = [mine.get(id(captures[i])) for i in wanted]
            found = gradients([b.outputs[j] for j in have], [x for x in xs if x is not None],
                              seeds, unconnected_gradients="zero")
        got = iter(found)
        fetches = [next(got) if x is not None else None for x in xs]
        feeds = [p for _, p in b.graph.captured] + seeds
        plans.append((Plan(b.graph, [f for f in fetches if f is not None], feeds), fetches, b))
    specs = [(captures[i].shape, captures[i].dtype) for i in wanted]
    grad_op = graph._add("cond_grad", "IfGrad", [op.inputs[0], *captures,
                                                 *(upstream[j] for j in have)],
                         {"forward": op}, _cond_grad_kernel(plans, captures, wanted),
                         specs, name=f"{op.name}_grad")
    return [(i + 1, g) for i, g in zip(wanted, grad_op.outputs)]


@register_kind_gradient("while")
def while_gradient(graph: Graph, op: Any, upstream: list, reach: set) -> list:
    """Gradient operations of a "while": (input index, gradient tensor) pairs."""
    step, captures = op.attrs["body"], op.attrs["captures"]
    n = len(step.inputs)
    floats = [i for i in range(n) if step.inputs[i].dtype.kind == "f"]
    mine = {id(o): p for o, p in step.graph.captured}
    caps = [i for i, t in enumerate(captures) if t.dtype.kind == "f" and id(t) in mine]
    with step.graph.as_default():
        seeds = [step.graph.placeholder(step.inputs[i].dtype, step.inputs[i].shape, "seed")
                 for i in floats]
        xs = [step.inputs[i] for i in floats] + [mine[id(captures[i])] for i in caps]
        found = gradients([step.outputs[i] for i in floats], xs, seeds,
                          unconnected_gradients="zero")
    feeds = step.inputs + [p for _, p in step.graph.captured] + seeds
    plan = Plan(step.graph, found, feeds)
    op.attrs["state"]["taped"] = True
    wanted = [i for i in floats if id(op.inputs[i]) in reach] + [
        n + i for i in caps if id(captures[i]) in reach]
    have = [i for i in floats if upstream[i] is not None]
    grad_op = graph._add(
        "while_grad", "WhileGrad", [*op.inputs, *(upstream[i] for i in have)], {"forward": op},
        _while_grad_kernel(plan, step, captures, floats, caps, have, wanted),
        [(op.inputs[i].shape, op.inputs[i].dtype) for i in wanted], name=f"{op.name}_grad",
        extra_inputs=(op._residual,))
    return list(zip(wanted, grad_op.outputs))


def _while_grad_kernel(plan, step, captures, floats, caps, have, wanted) -> Callable:
    n, m = len(step.inputs), len(captures)

    def kernel(*values):
        history = values[-1]
        given = {id(t): v for t, v in zip(captures, values[n:n + m])}
        captured = [given[id(o)] for o, _ in step.graph.captured]
        upstream = dict(zip(have, values[n + m:-1]))
        g = [upstream.get(i, np.zeros_like(values[i])) for i in floats]
        total = [np.zeros_like(given[id(captures[i])]) for i in caps]
        for current in reversed(history):
            out = plan.run([*current, *captured, *g])
            g = list(out[:len(floats)])
            total = [t + c for t, c in zip(total, out[len(floats):])]
        found = dict(zip(floats, g)) | {n + i: t for i, t in zip(caps, total)}
        return tuple(found[i] for i in wanted)
    return kernel


def _cond_grad_kernel(plans: list, captures: list, wanted: list) -> Callable:
    n = len(captures)

    def kernel(pred, *values):
        plan, fetches, branch = plans[0 if bool(pred) else 1]
        given = {id(t): v for t, v in zip(captures, values[:n])}
        feeds = [given[id(o)] for o, _ in branch.graph.captured] + list(values[n:])
        got = iter(plan.run(feeds))
        return tuple(next(got) if f is not None else np.zeros_like(values[i])
                     for i, f in zip(wanted, fetches))
    return kernel
