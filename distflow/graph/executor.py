"""Compiles the part of a graph that some fetches need into one flat Python function.

`Plan(graph, fetches, feeds)`:

1. prunes: only the operations the fetches (and target operations, and in a traced
   function every stateful operation) depend on, stopping at fed tensors;
2. folds constants: an operation whose inputs are all constants (and that is not
   stateful) runs once, now, and its outputs become constants;
3. eliminates common subexpressions: two operations with the same kernel,
   parameters and inputs become one;
4. generates the source of one function: a line `s7, s8 = k3(s1, s5)` per kernel
   call in creation order (a topological order), a `del` after each value's last
   use so that NumPy can reuse the memory, then `return (...)`;
5. writes in place where a dead input allows it, and folds a plain SGD update into the
   product computing its gradient (`fold_updates`).

Running the plan is one call of that function: no tape, no dictionaries.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from distflow import ops
from distflow.errors import InvalidArgumentError
from distflow.graph import core
from distflow.graph.fold_updates import folded_steps

_FOLDABLE = ("primitive", "call", "vjp", "call_vjp", "ones_like", "zeros_like", "add_n")


class Plan:
    """An executable, optimised slice of a graph.

    Args:
        graph: the graph.
        fetches: the graph tensors whose values `run` returns.
        feeds: the graph tensors whose values `run` receives.
        targets: operations to run for their effects.
        keep_stateful: also run every stateful operation (a traced function's updates).
    """

    def __init__(self, graph: core.Graph, fetches: Sequence[Any], feeds: Sequence[Any] = (),
                 targets: Sequence[core.Operation] = (), keep_stateful: bool = False):
        self.graph, self.fetches, self.feeds = graph, list(fetches), list(feeds)
        fed = {id(t) for t in self.feeds}
        roots = [t.op for t in self.fetches if id(t) not in fed] + list(targets)
        if keep_stateful:
            roots += [op for op in graph._ops if op.stateful]
        self.ops = _needed(roots, fed)
        self._compile(fed)

    # ----------------------------------------------------------------- compile

    def _compile(self, fed: set) -> None:
        slots: dict[int, str] = {id(t): f"f{i}" for i, t in enumerate(self.feeds)}
        consts: dict[str, Any] = {}
        seen: dict[Any, tuple] = {}
        steps = []
        for op in self.ops:
            if op.kind == "placeholder":
                _missing_feed(op)
            ins = [slots[id(h)] for h in op._all_inputs()]
            outs = op._all_outputs()
            if op.kind == "const":
                name = slots[id(outs[0])] = f"c{len(consts)}"
                consts[name] = op.attrs["value"]
                continue
            if op.kind in _FOLDABLE and not op.stateful and ins and all(
                    s.startswith("c") for s in ins):
                with core.suspended():
                    values = op._kernel(*[consts[s] for s in ins])
                for h, v in zip(outs, values):
                    name = slots[id(h)] = f"c{len(consts)}"
                    consts[name] = v
                continue
            key = _cse_key(op, ins)
            if key is not None and key in seen:
                for h, name in zip(outs, seen[key]):
                    slots[id(h)] = name
                continue
            names = tuple(f"s{len(slots) + j}" for j in range(len(outs)))
            for h, name in zip(outs, names):
                slots[id(h)] = name
            if key is not None:
                seen[key] = names
            steps.append((op, ins, names))
        self._fetch_names = [slots[id(t)] for t in self.fetches]
        self.steps = steps
        self._build(steps, consts)

    def _build(self, steps: list, consts: dict) -> None:
        lines = [f"def plan({', '.join(f'f{i}' for i in range(len(self.feeds)))}):"]
        last_use = _last_uses(steps, self._fetch_names)
        namespace: dict[str, Any] = dict(consts)
        in_place = _in_place_steps(steps, self._fetch_names)
        folded = self._folded = folded_steps(steps, self._fetch_names, _is_fresh)
        for j, (op, ins, outs) in enumerate(steps):
            namespace[f"k{j}"] = folded.get(j) or in_place.get(j, op._kernel)
            targets = ", ".join(o if o in last_use else "_" for o in outs) or "_"
            call = f"k{j}({', '.join(ins)})"
            lines.append(f"    {targets}, = {call}" if len(outs) == 1 else
                         f"    {targets} = {call}" if outs else f"    {call}")
            dead = sorted({s for s in ins if last_use.get(s) == j and s.startswith("s")})
            if dead:
                lines.append(f"    del {', '.join(dead)}")
        lines.append(f"    return ({''.join(n + ', ' for n in self._fetch_names)})")
        self.source = "\n".join(lines)
        exec(compile(self.source, "<distflow plan>", "exec"), namespace)  # noqa: S102
        self._plan = namespace["plan"]

    @property
    def in_place_steps(self) -> int:
        """How many kernel calls write into a dead input's buffer instead of a new one."""
        return len(_in_place_steps(self.steps, self._fetch_names))

    @property
    def folded_updates(self) -> int:
        """How many products write their variable's SGD update themselves (`fold_updates`)."""
        return len(self._folded)

    # --------------------------------------------------------------------- run

    def run(self, feed_values: Sequence[np.ndarray] = ()) -> tuple:
        """Runs the plan on the fed arrays; returns the fetched arrays.

        The kernels run eagerly: called from eager code they run as they are (the ops
        inside them take the eager path); called while a graph is being built (a TF1
        `Session.run` under `as_default()`, eager execution disabled) the graph is
        suspended around them.
        """
        if core.building_graph() is None:
            return self._run(feed_values)
        stack = core._stack()
        stack.append(core._SUSPENDED)  # kernels run eagerly (what `core.suspended` does)
        core.activate(1)
        try:
            return self._run(feed_values)
        finally:
            core.activate(-1)
            stack.pop()

    def _run(self, feed_values: Sequence[np.ndarray]) -> tuple:
        try:
            return self._plan(*feed_values)
        except Exception as e:
            op = self._failing_op(sys.exc_info()[2])
            if op is not None:
                e.add_note(f"(while running operation '{op.name}' of type {op.type})")
            raise

    def _failing_op(self, tb) -> core.Operation | None:
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<distflow plan>":
                line = self.source.splitlines()[tb.tb_lineno - 1]
                if "= k" in line or line.strip().startswith("k"):
                    j = int(line.split("k", 1)[1].split("(", 1)[0]) if "= k" not in line \
                        else int(line.split("= k", 1)[1].split("(", 1)[0])
                    return self.steps[j][0]
            tb = tb.tb_next
        return None

    @property
    def num_steps(self) -> int:
        """How many kernel calls one run makes (after pruning, folding and CSE)."""
        return len(self.steps)


def _needed(roots: list, fed: set) -> list[core.Operation]:
    seen: dict[int, core.Operation] = {}
    stack = list(roots)
    while stack:
        op = stack.pop()
        if id(op) in seen:
            continue
        seen[id(op)] = op
        stack.extend(h.op for h in op._all_inputs() if id(h) not in fed)
        stack.extend(op.control_inputs)
    return sorted(seen.values(), key=lambda o: o._index)


def _missing_feed(op: core.Operation) -> None:
    t = op.outputs[0]
    raise InvalidArgumentError(
        f"You must feed a value for placeholder tensor '{op.name}' with dtype "
        f"{t.dtype.name} and shape {t.shape}: pass feed_dict={{{op.name}: <array>}} "
        "(the placeholder object or its name as the key).")


def _freeze(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("array", id(value))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    hash(value)
    return value


def _cse_key(op: core.Operation, ins: list) -> Any:
    if op.stateful or op.kind not in ("primitive", "vjp"):
        return None
    try:
        if op.kind == "primitive":
            return ("p", op.type, _freeze(op.attrs), tuple(ins))
        return ("v", op.type, op.attrs["input"], tuple(ins))
    except TypeError:
        return None


def _last_uses(steps: list, fetched: list) -> dict[str, int]:
    last: dict[str, int] = {}
    for j, (_, ins, _outs) in enumerate(steps):
        for s in ins:
            last[s] = j
    for s in fetched:
        last[s] = len(steps)
    return last


# ---------------------------------------------------------------- in-place steps

def _relu_grad_in_place(g, out):
    return (ops.relu_grad(g, out, result=g),)


# Gradient kernels that may overwrite their upstream gradient, and those whose output is
# a new array nothing else refers to (a primitive says both itself: `Primitive.in_place`
# and `Primitive.fresh`).
_VJP_IN_PLACE = {"relu_grad": _relu_grad_in_place}
_FRESH_VJPS = {"matmul_grad"}


def _primitive_of(op: core.Operation) -> Any:
    return getattr(op, "primitive", None) if op.kind == "primitive" else None


def _in_place_kernel(op: core.Operation) -> Any:
    if op.kind == "vjp":
        return _VJP_IN_PLACE.get(op.type)
    prim = _primitive_of(op)
    return prim.in_place if prim is not None and not op.attrs else None


def _is_fresh(op: core.Operation) -> bool:
    if op.kind == "vjp":
        return op.type in _FRESH_VJPS
    prim = _primitive_of(op)
    return prim is not None and prim.fresh


def _in_place_steps(steps: list, fetched: list) -> dict[int, Any]:
    """Steps that may overwrite their first input: it is a fresh, unshared array that no
    other step reads and the caller does not fetch (buffer reuse, liveness-checked)."""
    producer, uses = {}, {}
    for op, ins, outs in steps:
        if outs:
            producer[outs[0]] = op
        for s in ins:
            uses[s] = uses.get(s, 0) + 1
    chosen = {}
    for j, (op, ins, _) in enumerate(steps):
        kernel = _in_place_kernel(op)
        if kernel is not None and ins and uses.get(ins[0]) == 1 and ins[0] not in fetched \
                and ins[0] in producer and _is_fresh(producer[ins[0]]) \
                and op.inputs[0].dtype.kind == "f":
            chosen[j] = kernel
    return chosen
