"""Recording into a graph: the hooks the core calls while a graph is being built.

`primitive` records a registered primitive (its forward is the kernel), `call`
records a public function that is not one primitive, `assign` records a variable
update, and `gradient` turns `GradientTape.gradient` on symbolic tensors into
gradient operations (`distflow.graph.gradients`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from distflow import nest
from distflow import random as _random
from distflow import tensor as _tensor
from distflow.graph import core
from distflow.graph.core import GraphTensor, building_graph
from distflow.tensor import GRAPH, GradientTape, Tensor, Variable

# ------------------------------------------------------------------ probes


def _outside_graph(values: Any) -> Any:
    for v in values:
        if isinstance(v, GraphTensor):
            raise RuntimeError(
                f"Tensor '{v.name}' is symbolic but no graph is being built here: use it "
                f"inside `with {v.name.split(':')[0]!r}'s graph.as_default():` (TF1) or inside "
                "the traced function that made it.")
    return NotImplemented


def probe_specs(run: Callable[[int], tuple], unknown: bool) -> tuple[list, list]:
    """Runs `run(i)` for probe 0 (and 1 when a dimension is unknown) eagerly.

    Returns:
        (specs, probes): per output, (TensorShape, dtype) and (probe0, probe1).
    """
    tapes = getattr(_tensor._state, "tapes", None)
    _tensor._state.tapes = []  # a user's tape must not record the probe runs
    try:
        with core.suspended(), np.errstate(all="ignore"):
            first = run(0)
            second = run(1) if unknown else first
    finally:
        _tensor._state.tapes = tapes if tapes is not None else []
    specs, probes = [], []
    for a, b in zip(first, second):
        a, b = core.as_probe(a), core.as_probe(b)
        if a.ndim != b.ndim:
            shape = None
        else:
            shape = [x if x == y else None for x, y in zip(a.shape, b.shape)]
        specs.append((shape, a.dtype))
        probes.append((a, b))
    return specs, probes


def _has_unknown(tensors: list) -> bool:
    return any(not t.shape.is_fully_defined() for t in tensors)


# -------------------------------------------------------------- primitives


def record_primitive(prim: Any, inputs: tuple, params: dict) -> Any:
    """Records `prim(*inputs, **params)` into the building graph (the core's hook)."""
    graph = building_graph()
    if graph is None:
        return _outside_graph(inputs)
    ins = [graph.capture(t) for t in inputs]
    for key, value in params.items():
        for leaf in value if isinstance(value, tuple) else (value,):
            core.check_not_probe(leaf, f"Parameter `{key}` of {prim.name}")
    tensor_params = [k for k, v in params.items() if isinstance(v, GraphTensor)]
    extra = [graph.capture(params[k]) for k in tensor_params]
    kernel = _primitive_kernel(prim.forward, params, len(ins), tensor_params)
    specs, probes = probe_specs(
        lambda i: kernel(*[t.probe(i) for t in ins + extra])[:1], _has_unknown(ins + extra))
    op = graph._add("primitive", prim.name, ins, dict(params), kernel, specs, probes=probes,
                    residual=True, extra_inputs=tuple(extra))
    op.primitive = prim
    return op.outputs[0]


def _primitive_kernel(forward: Callable, params: dict, n: int, tensor_params: list) -> Callable:
    """The forward with its parameters bound; tensor-valued ones come after the inputs."""
    if not tensor_params:
        return functools.partial(forward, **params) if params else forward
    fixed = {k: v for k, v in params.items() if k not in tensor_params}

    def kernel(*values):
        return forward(*values[:n], **fixed, **dict(zip(tensor_params, values[n:])))
    return kernel


# ------------------------------------------------------------------ calls


class _Slot:
    """Marks where the i-th symbolic input goes in a recorded call's arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _template(value: Any, found: list, reads: bool = False) -> Any:
    """`value` with its symbolic tensors replaced by `_Slot`s (appended to `found`).

    With `reads`, Variables too: a recorded call reads them when the graph runs, not
    when it is built (an update, which needs the Variables themselves, keeps them).
    """
    if isinstance(value, GraphTensor) or (reads and isinstance(value, Variable)):
        found.append(value)
        return _Slot(len(found) - 1)
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return type(value)(_template(v, found, reads) for v in value)
    if isinstance(value, dict):
        return {k: _template(v, found, reads) for k, v in value.items()}
    return value


def _fill(template: Any, values: list) -> Any:
    if isinstance(template, _Slot):
        return values[template.index]
    if isinstance(template, list | tuple):
        return type(template)(_fill(v, values) for v in template)
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


def _filler(template: Any) -> Callable[[list], Any]:
    """`lambda values: _fill(template, values)` as one generated expression (a recorded
    call's kernel rebuilds its arguments at every run: no walk over the template then)."""
    namespace: dict[str, Any] = {}
    source = _fill_source(template, namespace)
    return eval(f"lambda v: {source}", namespace)  # noqa: S307 (our own generated source)


def _fill_source(template: Any, namespace: dict) -> str:
    """The Python expression of `template` filled from the list `v`; constants (leaves,
    dict keys, container types other than list and tuple) go into `namespace`."""
    if isinstance(template, _Slot):
        return f"v[{template.index}]"
    if isinstance(template, list | tuple):
        items = "".join(_fill_source(x, namespace) + ", " for x in template)
        kind = type(template)
        if kind is list or kind is tuple:
            return f"[{items}]" if kind is list else f"({items})"
        return f"{_constant(kind, namespace)}([{items}])"
    if isinstance(template, dict):
        return "{" + "".join(f"{_constant(k, namespace)}: {_fill_source(x, namespace)}, "
                             for k, x in template.items()) + "}"
    return _constant(template, namespace)


def _constant(value: Any, namespace: dict) -> str:
    name = f"c{len(namespace)}"
    namespace[name] = value
    return name


def _named(fn: Callable, args: tuple, kwargs: dict, names: tuple) -> list:
    bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    return [bound[n] for n in names if n in bound]


def _symbolic_in(values: Any) -> list:
    """The symbolic tensors and Variables in `values` (what a recorded call reads)."""
    found: list = []
    _template(values, found, reads=True)
    return found


def _should_record(fn, trigger, names, args, kwargs) -> bool:
    if trigger in ("stateful", "effect"):
        return True
    if trigger == "symbolic":
        return bool(_symbolic_in((args, kwargs)))
    chosen = _symbolic_in(_named(fn, args, kwargs, names))
    return bool(chosen) and (trigger == "args" or _has_unknown(chosen))


def record_call(fn: Callable, trigger: str, names: tuple, differentiable: bool,
                args: tuple, kwargs: dict) -> Any:
    """Records the eager function `fn(*args, **kwargs)` as one "call" operation.

    When a gradient of the call is built, its kernel runs `fn` under a `GradientTape`
    and keeps the tape as the operation's residual: the "call_vjp" operation asks that
    tape, so the gradient sees the very values (dropout masks) of the forward run.
    """
    graph = building_graph()
    if graph is None:
        return _outside_graph(_symbolic_in((args, kwargs)))
    if not _should_record(fn, trigger, names, args, kwargs):
        return NotImplemented
    if trigger == "effect":
        return record_effect(fn, args, kwargs, fn.__name__)
    inputs: list = []
    template = _template((args, kwargs), inputs, reads=True)
    for leaf in nest.flatten(template):
        core.check_not_probe(leaf, f"An argument of {fn.__name__}")
    inputs = [graph.capture(t) for t in inputs]
    stateful = trigger == "stateful"
    structure: dict = {}
    if stateful and names:  # the output is like the named argument: no probe run
        like = graph.capture(_named(fn, args, kwargs, names)[0])
        specs, probes = [(like.shape, like.dtype)], None
    else:
        specs, probes = probe_specs(_probe_call(fn, template, inputs, structure, stateful),
                                    _has_unknown(inputs))
    state = {"taped": False}
    kernel = _special_kernel(fn, args, kwargs) if stateful else None
    op = graph._add("call", fn.__name__, inputs,
                    {"function": fn, "template": template, "differentiable": differentiable,
                     "state": state},
                    kernel or _call_kernel(fn, template, state, differentiable), specs,
                    probes=probes,
                    stateful=stateful, residual=differentiable)
    if "out" not in structure:
        return op.outputs[0]
    leaves = iter(op.outputs)
    return nest.pack_sequence_as(structure["out"], [next(leaves) if isinstance(x, Tensor)
                                                    else x for x in structure["flat"]])


def _call_kernel(fn: Callable, template: Any, state: dict, differentiable: bool) -> Callable:
    fill = _filler(template)

    def kernel(*values):
        tensors = [Tensor._wrap(v) for v in values]
        a, k = fill(tensors)
        if not state["taped"]:
            out = fn(*a, **k)
            if type(out) is Tensor and not differentiable:  # one tensor: no flattening
                return (out.value,)
            flat = [t.value for t in nest.flatten(out) if isinstance(t, Tensor)]
            return (*flat, None) if differentiable else tuple(flat)
        with GradientTape(persistent=True) as tape:
            tape.watch([t for t in tensors if t.value.dtype.kind == "f"])
            flat = [t for t in nest.flatten(fn(*a, **k)) if isinstance(t, Tensor)]
        return (*(t.value for t in flat), (tape, tensors, flat))
    return kernel


def _probe_call(fn, template, inputs, structure, stateful):
    def run(i):
        state = _random.get_global_generator().bit_generator.state if stateful else None
        a, k = _fill(template, [Tensor._wrap(t.probe(i)) for t in inputs])
        out = fn(*a, **k)
        if state is not None:
            _random.get_global_generator().bit_generator.state = state
        structure["out"], structure["flat"] = out, nest.flatten(out)
        return [t.value for t in structure["flat"] if isinstance(t, Tensor)]
    return run


def record_effect(fn: Callable, args: tuple, kwargs: dict, name: str) -> Any:
    """Records `fn(*args, **kwargs)` as a stateful operation with no outputs (an update).

    Iterators among the arguments, positional or keyword (`zip(grads, variables)`), are
    read into lists first.
    """
    graph = building_graph()
    args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
    kwargs = {k: list(a) if isinstance(a, Iterator) else a for k, a in kwargs.items()}
    inputs: list = []
    template = _template((args, kwargs), inputs)
    for leaf in nest.flatten(template):
        core.check_not_probe(leaf, f"An argument of {name}")
    inputs = [graph.capture(t) for t in inputs]
    kernel = _effect_kernel(fn, args, kwargs, template)
    return graph._add("call", name, inputs, {"function": fn, "template": template,
                                             "differentiable": False}, kernel, [],
                      stateful=True)


def _special_kernel(fn: Callable, args: tuple, kwargs: dict) -> Callable | None:
    """The kernel `fn` makes for these arguments (`graph_form(specialize=...)`), or None."""
    specialize = getattr(fn, "graph_kernel", None)
    return specialize(*args, **kwargs) if specialize is not None else None


def _effect_kernel(fn: Callable, args: tuple, kwargs: dict, template: Any) -> Callable:
    """What an effect runs: the function's own kernel for these arguments, if it makes
    one (`graph_form(specialize=...)`), else the function on the rebuilt arguments."""
    special = _special_kernel(fn, args, kwargs)
    if special is not None:
        def run(*values):
            special(*values)
            return ()
        run.gradient_fold = getattr(special, "gradient_fold", None)  # see update_fold
        return run
    fill = _filler(template)

    def kernel(*values):
        a, k = fill([Tensor._wrap(v) for v in values])
        fn(*a, **k)
        return ()
    return kernel


# --------------------------------------------------------------- assigns


def record_assign(var: Variable, kind: str, value: Any) -> Any:
    """Records `var.assign*(value)`; the result is the variable's new value."""
    graph = building_graph()
    if graph is None:
        return _outside_graph([value])
    core.check_not_probe(value, f"The value assigned to '{var.name}'")
    v = graph.capture(value if isinstance(value, Tensor) else Tensor(value, var.dtype))
    shape = var.value.shape
    if not v.shape.is_compatible_with(np.broadcast_shapes(
            tuple(1 if d is None else d for d in v.shape), shape)):
        raise ValueError(f"Cannot {kind} variable '{var.name}' of shape {shape} with a value "
                         f"of shape {v.shape}.")
    graph.read_variable(var)  # reads made later run after this update
    op = graph._add("assign", {"assign": "Assign", "assign_add": "AssignAdd",
                               "assign_sub": "AssignSub"}[kind], [v],
                    {"variable": var, "kind": kind}, assign_kernel(var, kind, graph),
                    [(shape, var.value.dtype)], name=None, stateful=True)
    return op.outputs[0]


_UPDATES = {"assign": lambda buf, v: np.copyto(buf, v, casting="unsafe"),
            "assign_add": lambda buf, v: np.add(buf, v, out=buf, casting="unsafe"),
            "assign_sub": lambda buf, v: np.subtract(buf, v, out=buf, casting="unsafe")}


def assign_kernel(var: Variable, kind: str, graph: core.Graph) -> Callable:
    """The kernel writing into `var`'s buffer in place; it returns the buffer."""
    update, key, uninitialized = _UPDATES[kind], id(var), graph.uninitialized

    def kernel(value):
        if kind != "assign" and key in uninitialized:
            graph.read_variable(var).op._kernel()  # raises FailedPreconditionError
        update(var.value, np.broadcast_to(value, var.value.shape))
        uninitialized.discard(key)
        return (var.value,)
    return kernel


# ------------------------------------------------------------- tape inside


def tape_gradient(tape: Any, target: Any, sources: Any, output_gradients: Any,
                  unconnected: str) -> Any:
    """`GradientTape.gradient` on symbolic targets: gradient operations in the graph."""
    from distflow.graph.gradients import gradients

    targets = [target] if isinstance(target, Tensor) else nest.flatten(target)
    if not any(isinstance(t, GraphTensor) for t in targets):
        return NotImplemented
    graph = next(t for t in targets if isinstance(t, GraphTensor)).graph
    flat = nest.flatten(sources)
    xs = [_tape_source(tape, graph, s) for s in flat]
    upstream = None
    if output_gradients is not None:
        upstream = [output_gradients] if isinstance(target, Tensor) else list(output_gradients)
    with graph.as_default():
        grads = gradients(targets, xs, upstream, unconnected_gradients=unconnected,
                          like=flat)
    if not tape.persistent:
        tape._used = True
    return nest.pack_sequence_as(sources, grads)


def _tape_source(tape: Any, graph: core.Graph, source: Any) -> GraphTensor | None:
    if not isinstance(source, Tensor):
        raise TypeError("`tape.gradient` sources must be tensors or variables. "
                        f"Received: {type(source).__name__}.")
    if isinstance(source, Variable):
        watched = (source.trainable and tape._watch_vars) or id(source) in tape._leaves
        return graph._variable_reads.get(id(source)) if watched else None
    if isinstance(source, GraphTensor):
        if source.op.kind == "placeholder" and id(source) not in tape._leaves:
            return None  # an input of the function that the tape does not watch
        return source
    return None


def install() -> None:
    """Plugs the recorders into the core (done once, when `distflow.graph` is imported)."""
    GRAPH.primitive = record_primitive
    GRAPH.call = record_call
    GRAPH.assign = record_assign
    GRAPH.gradient = tape_gradient
    GRAPH.probe = core.probe_converted
