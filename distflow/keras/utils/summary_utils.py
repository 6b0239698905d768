"""The model summary table: `model.summary()`'s layer rows and parameter totals.

Keras 3's layout: name (type), output shape, parameter count, and a "Connected to"
column when the graph branches (several inputs or outputs, a layer called on
several tensors, or a layer called more than once); then the totals with their
sizes in bytes.
"""

from __future__ import annotations

import math
from typing import Any

from distflow.keras.tree import map_structure

__all__ = ["summary_lines", "summary_rows"]


def _shape_text(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(v)}" for k, v in shape.items()) + "}"
    if isinstance(shape, tuple):
        return "(" + ", ".join("None" if s is None else str(s) for s in shape) + \
            ("," if len(shape) == 1 else "") + ")"
    return str(shape)


def _layer_nodes(model: Any, layer: Any) -> list[Any]:
    nodes = [] if model._graph is None else [n for n in model._graph.nodes if n.layer is layer]
    inbound = layer.__dict__.get("_inbound_nodes")
    if not nodes and inbound and inbound[0].is_input:  # an InputLayer
        nodes = [inbound[0]]
    return nodes


def _output_shape_text(model: Any, layer: Any) -> str:
    nodes = _layer_nodes(model, layer)
    if len(nodes) > 1:
        return "multiple"
    if nodes:
        return _shape_text(map_structure(lambda t: t.shape, nodes[0].outputs))
    if layer.built and layer._build_input_shape is not None:
        try:  # a subclassed model's layer: the shape of its last build, as Keras 3
            return _shape_text(layer.compute_output_shape(layer._build_input_shape))
        except Exception:  # noqa: BLE001 - the summary must print whatever the layer does
            pass
    return "?"


def summary_rows(model: Any) -> list[list[str]]:
    """Per layer: "name (type)", the output shape ("?" when unknown) and the parameter
    count ("0 (unbuilt)" for a layer not built yet, as Keras 3)."""
    rows = []
    for layer in model.layers:
        params, _ = _param_totals(layer.weights)
        rows.append([f"{layer.name} ({type(layer).__name__})", _output_shape_text(model, layer),
                     f"{params:,}" if layer.built else f"{params:,} (unbuilt)"])
    return rows


def _connections(model: Any, layer: Any) -> list[str]:
    names = []
    for node in _layer_nodes(model, layer):
        for t in node.input_tensors:
            parent = t._node.layer
            names.append(f"{parent.name}[{parent._inbound_nodes.index(t._node)}][{t._index}]")
    return names or ["-"]


def _is_branched(model: Any) -> bool:
    if model._graph is None or type(model).__name__ == "Sequential":  # Keras 3's test
        return False
    g = model._graph
    return len(g.flat_inputs) > 1 or len(g.flat_outputs) > 1 or any(
        len(n.input_tensors) != 1 for n in g.nodes) or len(g.nodes) != len(
        {id(n.layer) for n in g.nodes})


def _readable_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def _param_totals(variables: list) -> tuple[int, int]:
    count = sum(math.prod(v.shape) for v in variables)
    size = sum(math.prod(v.shape) * v.value.dtype.itemsize for v in variables)
    return int(count), int(size)


def summary_lines(model: Any, line_length: int | None, positions: Any) -> list[str]:
    """The lines of `model.summary()` (`line_length`/`positions` as there)."""
    branched = _is_branched(model)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if branched else [])
    rows = []
    for layer, row in zip(model.layers, summary_rows(model)):
        links = _connections(model, layer) if branched else []
        rows.append(row + links[:1])
        rows.extend(["", "", ""] + [link] for link in links[1:])
    widths = _column_widths(headers, rows, line_length or (98 if branched else 65), positions)
    total = sum(widths)

    def fmt(cells: list[str]) -> str:
        return "".join(f" {c}".ljust(w) for c, w in zip(cells, widths)).rstrip()
    all_count, all_size = _param_totals(model.weights)
    train_count, train_size = _param_totals(model.trainable_weights)
    lines = [f'Model: "{model.name}"', "_" * total, fmt(headers), "=" * total]
    lines += [fmt(r) for r in rows]
    lines += ["=" * total,
              f"Total params: {all_count:,} ({_readable_bytes(all_size)})",
              f"Trainable params: {train_count:,} ({_readable_bytes(train_size)})",
              f"Non-trainable params: {all_count - train_count:,} "
              f"({_readable_bytes(all_size - train_size)})",
              "_" * total]
    return lines


def _column_widths(headers: list[str], rows: list[list[str]], line_length: int,
                   positions: Any) -> list[int]:
    if positions is None:
        positions = [.45, .84, 1.] if len(headers) == 3 else [.3, .6, .7, 1.]
    edges = [int(line_length * p) if p <= 1 else int(p) for p in positions][:len(headers)]
    widths = [b - a for a, b in zip([0, *edges[:-1]], edges)]
    for i in range(len(headers)):
        needed = max(len(r[i]) for r in [headers, *rows] if len(r) > i) + 2
        widths[i] = max(widths[i], needed)
    return widths


# =========================================================================== functional config
