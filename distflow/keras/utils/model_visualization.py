"""`keras.utils.model_to_dot` and `plot_model`: a model's layer graph in Graphviz's language.

`model_to_dot` returns a `DotGraph` whose `to_string()` is the Graphviz text (the
method pydot's `Dot` has); no package is needed. `plot_model` writes that text to
a `.dot`/`.gv` file, or renders PNG/SVG/PDF/... with Graphviz's `dot` program when
it is installed (otherwise ImportError saying what to install).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any


class DotGraph:
    """A Graphviz graph as text: `to_string()`, `create(prog, format)`, `write(path)`."""

    def __init__(self, text: str):
        self.text = text

    def to_string(self) -> str:
        """The Graphviz source."""
        return self.text

    def create(self, prog: str = "dot", format: str = "png") -> bytes:  # noqa: A002
        """The graph rendered by Graphviz's `prog` (needs Graphviz installed)."""
        binary = shutil.which(prog)
        if binary is None:
            raise ImportError(f"Rendering a model plot as {format!r} needs Graphviz's `{prog}` "
                              "program (e.g. apt-get install graphviz); a .dot file is written "
                              "without it: plot_model(model, to_file='model.dot').")
        done = subprocess.run([binary, f"-T{format}"], input=self.text.encode("utf-8"),
                              capture_output=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{prog} failed: {done.stderr.decode('utf-8', 'replace')}")
        return done.stdout

    def write(self, path: Any, prog: str = "dot", format: str = "raw") -> None:  # noqa: A002
        """Writes the source (`format="raw"`) or a rendering to `path`."""
        data = self.text.encode("utf-8") if format in ("raw", "dot") else \
            self.create(prog, format)
        with open(path, "wb") as f:
            f.write(data)


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shape_text(value: Any) -> str:
    return "?" if value is None else str(value)


def _label(layer: Any, show_shapes: bool, show_dtype: bool, show_layer_names: bool,
           show_layer_activations: bool, show_trainable: bool) -> str:
    kind = type(layer).__name__
    lines = [f"{layer.name} ({kind})" if show_layer_names else kind]
    activation = getattr(layer, "activation", None)
    if show_layer_activations and activation is not None:
        lines.append(f"activation: {getattr(activation, '__name__', type(activation).__name__)}")
    if show_dtype:
        lines.append(f"dtype: {getattr(layer, 'dtype', '?')}")
    if show_shapes:
        lines.append(f"input: {_shape_text(_io_shape(layer, 'input'))}  "
                     f"output: {_shape_text(_io_shape(layer, 'output'))}")
    if show_trainable:
        lines.append(f"trainable: {bool(getattr(layer, 'trainable', True))}")
    return "\\n".join(line.replace('"', "'") for line in lines)


def _io_shape(layer: Any, which: str) -> Any:
    try:
        tensors = getattr(layer, which)
    except (AttributeError, ValueError, RuntimeError):
        return None
    shapes = [t.shape for t in (tensors if isinstance(tensors, list | tuple) else [tensors])]
    return shapes[0] if len(shapes) == 1 else shapes


def _edges(model: Any) -> list[tuple[Any, Any]]:
    layers = list(model.layers)
    members = {id(layer) for layer in layers}
    edges = []
    for layer in layers:
        for node in getattr(layer, "_inbound_nodes", []):
            parents = [t._node.layer for t in node.input_tensors if t._node is not None]
            edges += [(p, layer) for p in parents if id(p) in members]
    if not edges and type(model).__name__ == "Sequential":
        edges = list(zip(layers, layers[1:]))
    unique = []
    for edge in edges:
        if all(edge[0] is not a or edge[1] is not b for a, b in unique):
            unique.append(edge)
    return unique


def model_to_dot(model: Any, show_shapes: bool = False, show_dtype: bool = False,
                 show_layer_names: bool = True, rankdir: str = "TB", expand_nested: bool = False,
                 dpi: int = 200, subgraph: bool = False, show_layer_activations: bool = False,
                 show_trainable: bool = False, **kwargs: Any) -> DotGraph:
    """The model's layers (one box each) and connections as a `DotGraph`.

    Args:
        model: a built Sequential or functional model.
        show_shapes, show_dtype, show_layer_names, show_layer_activations,
            show_trainable: what each box shows.
        rankdir: "TB" (top to bottom) or "LR".
        expand_nested: accepted (nested models are drawn as one box).
        dpi: the rendering resolution.
        subgraph: accepted for Keras's signature.
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"`rankdir` must be 'TB', 'LR', 'BT' or 'RL'. Received: {rankdir!r}")
    if not getattr(model, "built", True) or not hasattr(model, "layers"):
        raise ValueError("This model has not yet been built. Build the model first by calling "
                         "`build()` or by calling the model on a batch of data.")
    lines = ["digraph G {", f"  graph [rankdir={rankdir}, dpi={int(dpi)}, concentrate=true];",
             "  node [shape=record];"]
    for layer in model.layers:
        text = _label(layer, show_shapes, show_dtype, show_layer_names, show_layer_activations,
                      show_trainable)
        lines.append(f"  {_quote(id(layer))} [label={_quote(text)}];")
    lines += [f"  {_quote(id(a))} -> {_quote(id(b))};" for a, b in _edges(model)]
    return DotGraph("\n".join(lines + ["}"]) + "\n")


def plot_model(model: Any, to_file: Any = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 200, show_layer_activations: bool = False,
               show_trainable: bool = False, **kwargs: Any) -> DotGraph:
    """Writes the model's graph to `to_file`: Graphviz text for `.dot`/`.gv`, else a
    rendering in the extension's format (PNG by default) by Graphviz's `dot`.

    Returns:
        The `DotGraph` (Keras returns an IPython image in notebooks).

    Raises:
        ImportError: for a rendered format when Graphviz's `dot` is not installed.
    """
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                       show_layer_names=show_layer_names, rankdir=rankdir,
                       expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable)
    extension = os.path.splitext(os.fspath(to_file))[1].lstrip(".").lower() or "png"
    dot.write(to_file, format="raw" if extension in ("dot", "gv") else extension)
    return dot
