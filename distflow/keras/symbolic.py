"""Calling a layer on KerasTensors: build it, infer the output shapes, record the `Node`.

`Layer.__call__` hands symbolic inputs here. An output's shape comes from the
layer's own `compute_output_shape` when it has one, else from running the layer on
zeros twice (unknown dimensions as 1, then 2: the dimensions that differ are
unknown).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras.keras_tensor import KerasTensor, Node
from distflow.keras.tree import flatten, map_structure
from distflow.tensor import Tensor, unique_name

__all__ = ["symbolic_call"]

_PASSTHROUGH_KWARGS = frozenset({"training", "mask"})


def symbolic_call(layer: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
    """Applies `layer` to KerasTensors: builds it, infers output shapes, records the node.

    Called by `Layer.__call__` when any input is a `KerasTensor`.

    Returns:
        New KerasTensor(s), in the structure the layer's `call` returns.
    """
    layer._maybe_build(inputs)
    layer._check_inputs(inputs)
    specs = _output_specs(layer, inputs, args, kwargs)
    node = Node(layer, inputs, args, kwargs)
    made: list[KerasTensor] = []

    def make(spec: tuple[tuple, str]) -> KerasTensor:
        shape, dtype = spec
        made.append(KerasTensor(shape, dtype, name=unique_name(layer.name + "_output"),
                                node=node, index=len(made)))
        return made[-1]
    node.outputs = _map_specs(make, specs)
    return node.outputs


def _map_specs(fn: Callable, specs: Any) -> Any:
    if isinstance(specs, _Spec):
        return fn(specs)
    if isinstance(specs, dict):
        return {k: _map_specs(fn, v) for k, v in specs.items()}
    return type(specs)(_map_specs(fn, s) for s in specs)


class _Spec(tuple):
    """(shape, dtype) of one output: a tuple subclass so structures can tell it apart."""


def _output_specs(layer: Any, inputs: Any, args: tuple, kwargs: dict) -> Any:
    custom = not getattr(type(layer).compute_output_shape, "runs_the_layer", False)
    if custom and not args and set(kwargs) <= _PASSTHROUGH_KWARGS:
        try:
            shapes = layer.compute_output_shape(map_structure(lambda t: t.shape, inputs))
            dtype = _guess_dtype(layer, inputs)
            return _shapes_to_specs(shapes, dtype)
        except (NotImplementedError, TypeError, ValueError, IndexError, KeyError):
            pass  # fall back to running the layer
    return _probe_specs(layer, inputs, args, kwargs)


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple | list) and all(
        s is None or isinstance(s, int | np.integer) for s in x)


def _shapes_to_specs(shapes: Any, dtype: str) -> Any:
    if _is_shape(shapes):
        return _Spec((tuple(None if s is None else int(s) for s in shapes), dtype))
    if isinstance(shapes, dict):
        return {k: _shapes_to_specs(v, dtype) for k, v in shapes.items()}
    return [_shapes_to_specs(s, dtype) for s in shapes]


def _guess_dtype(layer: Any, inputs: Any) -> str:
    """Float inputs (or a layer with weights, e.g. Embedding) give the layer's dtype."""
    first = flatten(inputs)[0]
    if np.dtype(first.dtype).kind == "f" or layer.weights:
        return layer.dtype
    return first.dtype


def _probe_specs(layer: Any, inputs: Any, args: tuple, kwargs: dict) -> Any:
    """Runs the layer on zeros; dims that change when unknown dims change are unknown."""
    flat_in = [t for t in flatten([inputs, list(args), kwargs]) if isinstance(t, KerasTensor)]
    has_unknown = any(s is None for t in flat_in for s in t.shape)
    first = _run_on_zeros(layer, inputs, args, kwargs, fill=1)
    second = _run_on_zeros(layer, inputs, args, kwargs, fill=2) if has_unknown else first
    flat_a, flat_b = flatten(first), flatten(second)
    specs = [_Spec((tuple(a if a == b else None for a, b in zip(x.shape, y.shape)),
                    x.dtype.name)) if x.ndim == y.ndim else _Spec(((None,) * x.ndim, x.dtype.name))
             for x, y in zip(flat_a, flat_b)]
    it = iter(specs)
    return map_structure(lambda _: next(it), first)


def _run_on_zeros(layer: Any, inputs: Any, args: tuple, kwargs: dict, fill: int) -> Any:
    def zeros(x: Any) -> Any:
        if not isinstance(x, KerasTensor):
            return x
        shape = [fill if s is None else s for s in x.shape]
        if x.dtype == "string":  # strings reach only host-side layers, as NumPy arrays
            return np.full(shape, "", dtype=object)
        return Tensor._wrap(np.zeros(shape, x.dtype))
    kwargs = {k: map_structure(zeros, v) for k, v in kwargs.items()}
    kwargs.setdefault("training", False)
    try:
        with np.errstate(all="ignore"):  # zeros may divide by zero; only shapes matter
            return layer(map_structure(zeros, inputs), *[map_structure(zeros, a) for a in args],
                         **kwargs)
    except Exception as exc:
        shapes = map_structure(lambda t: t.shape if isinstance(t, KerasTensor) else t, inputs)
        raise type(exc)(f"Exception encountered when calling layer '{layer.name}' "
                        f"({type(layer).__name__}) on symbolic inputs of shape {shapes}: "
                        f"{exc}") from exc
