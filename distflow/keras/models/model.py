"""`keras.Model`: a `Layer` that trains, functional (`Model(inputs, outputs)`) or subclassed.

The training half is the trainer (`keras/trainers/`: `compile`, the public
`train_step`/`test_step`/`predict_step`, `fit`/`evaluate`/`predict`); this module
holds what makes a model a network: its functional graph or its subclass's `call`,
building, the structure accessors, the summary, and configs and saving.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras import functional, saving
from distflow.keras.functional import GraphNetwork
from distflow.keras.keras_tensor import KerasTensor
from distflow.keras.layers import register_layer
from distflow.keras.layers.base import Layer, _call_parameters
from distflow.keras.trainers.loops import Loops
from distflow.keras.trainers.trainer import Trainer
from distflow.keras.tree import flatten, map_shape_structure, map_structure
from distflow.keras.utils.summary_utils import summary_lines
from distflow.tensor import Tensor

__all__ = ["Functional", "Model"]


class Model(Loops, Layer):
    """A trainable stack of layers: `Model(inputs, outputs)` (functional) or a subclass.

    Functional: `Model(inputs=Input(...), outputs=<tensor from calling layers>)`.
    Subclassed: define layers in `__init__` (as attributes, lists allowed) and the
    forward pass in `call(inputs, training=False)`.

    Args:
        inputs: the functional model's input KerasTensor(s) (list or dict allowed).
        outputs: its output KerasTensor(s).
        name: model name.
        trainable: whether training updates its weights.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        if cls is Model and (len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs):
            return object.__new__(Functional)
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any):
        inputs = kwargs.pop("inputs", args[0] if args else None)
        outputs = kwargs.pop("outputs", args[1] if len(args) > 1 else None)
        if len(args) > 2:
            raise TypeError(f"Model() takes inputs and outputs as positional arguments; "
                            f"received {len(args)} positional arguments.")
        Layer.__init__(self, trainable=kwargs.pop("trainable", True),
                       name=kwargs.pop("name", None), dtype=kwargs.pop("dtype", None), **kwargs)
        Trainer.__init__(self)
        self._graph: GraphNetwork | None = None
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("A functional Model needs both `inputs` and `outputs`. "
                                 f"Received: inputs={inputs}, outputs={outputs}")
            self._init_graph(inputs, outputs)

    def _init_graph(self, inputs: Any, outputs: Any) -> None:
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(outputs, tuple):
            outputs = list(outputs)
        self._graph = GraphNetwork(inputs, outputs)
        self._tracked_layers = list(self._graph.layers)
        self.built = True
        self._build_input_shape = map_structure(lambda t: t.shape, inputs)

    # ------------------------------------------------------------ forward

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        """Runs the functional graph (subclasses override this)."""
        if self._graph is None:
            raise NotImplementedError(f"Model '{self.name}' has no `call()`: subclass Model and "
                                      "implement call(self, inputs, training=False), or build "
                                      "a functional Model(inputs, outputs).")
        return self._graph.run(self._flat_model_inputs(inputs))

    def _flat_model_inputs(self, inputs: Any) -> list[Any]:
        g = self._graph
        if isinstance(inputs, dict):
            # `flat_inputs` holds a dict's inputs in sorted key order (tree flattening).
            keys = sorted(g.inputs) if isinstance(g.inputs, dict) else [t.name for t in
                                                                         g.flat_inputs]
            missing = [k for k in keys if k not in inputs]
            if missing:
                raise ValueError(f"Model '{self.name}' expects inputs named {keys}; missing "
                                 f"{missing} in the data's keys {sorted(inputs)}.")
            flat = [inputs[k] for k in keys]
        else:
            flat = flatten(inputs) if isinstance(inputs, list | tuple) else [inputs]
        if len(flat) != len(g.flat_inputs):
            raise ValueError(f'Layer "{self.name}" expects {len(g.flat_inputs)} input(s), but '
                             f"it received {len(flat)} input tensors.")
        for i, (t, v) in enumerate(zip(g.flat_inputs, flat)):
            shape = tuple(v.shape)
            if len(shape) != len(t.shape) or any(
                    a is not None and a != b for a, b in zip(t.shape, shape)):
                raise ValueError(f'Input {i} of layer "{self.name}" is incompatible with the '
                                 f"layer: expected shape={t.shape}, found shape={shape}")
        return flat

    def _build_model(self, input_shape: Any = None) -> None:
        """Builds a subclassed model by running `call` once on zeros of `input_shape`."""
        if self._graph is not None or self.built:
            return
        if input_shape is None:
            raise ValueError(f"Model '{self.name}' cannot be built without an input shape. "
                             "Call model.build(input_shape) or call the model on data.")

        def zeros(shape: tuple) -> Tensor:
            return Tensor._wrap(np.zeros([1 if s is None else s for s in shape], self.dtype))
        dummy = map_shape_structure(zeros, input_shape)
        params, var_kw = _call_parameters(type(self).call)
        kwargs = {"training": False} if "training" in params or var_kw else {}
        self.call(dummy, **kwargs)
        self._build_input_shape = input_shape
        self.built = True

    def _ensure_built(self, batches: Any) -> None:
        # A model without `call` (Keras's VAE guide) is trained by its own train_step
        # through its sublayers: nothing to build, as in Keras.
        if not self.built and (self._graph is not None or type(self).call is not Model.call):
            self(batches.first_x(), training=False)

    # ------------------------------------------------------------ structure

    @property
    def layers(self) -> list[Layer]:
        """The model's layers (functional: in graph order, InputLayers included)."""
        if self._graph is not None:
            return list(self._tracked_layers)
        return self._sublayers()

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name (or by index in `layers`)."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[layer.name for layer in self.layers]}.")

    @property
    def inputs(self) -> list[KerasTensor] | None:
        """The functional model's input tensors (a list), or None for a subclassed model."""
        return None if self._graph is None else list(self._graph.flat_inputs)

    @property
    def outputs(self) -> list[KerasTensor] | None:
        """The functional model's output tensors (a list), or None for a subclassed model."""
        return None if self._graph is None else list(self._graph.flat_outputs)

    @property
    def input(self) -> Any:
        """The input tensor(s) in the structure given to `Model`."""
        self._require_graph("input")
        return self._graph.inputs

    @property
    def output(self) -> Any:
        """The output tensor(s) in the structure given to `Model`."""
        self._require_graph("output")
        return self._graph.outputs

    @property
    def input_shape(self) -> Any:
        """Input shape (batch dimension None); a list for several inputs."""
        if self._graph is not None:
            shapes = [t.shape for t in self._graph.flat_inputs]
            return shapes[0] if len(shapes) == 1 else shapes
        if self._build_input_shape is None:
            raise AttributeError(f"Model '{self.name}' has no input shape yet: it has not been "
                                 "built (call it on data or call build(input_shape)).")
        return map_shape_structure(lambda s: (None, *s[1:]), self._build_input_shape)

    @property
    def output_shape(self) -> Any:
        """Output shape (batch dimension None); a list for several outputs."""
        if self._graph is not None:
            shapes = [t.shape for t in self._graph.flat_outputs]
            return shapes[0] if len(shapes) == 1 else shapes
        if self._build_input_shape is None:
            raise AttributeError(f"Model '{self.name}' has no output shape yet: it has not "
                                 "been built.")
        return self.compute_output_shape(self.input_shape)

    def _require_graph(self, what: str) -> None:
        if self._graph is None:
            raise AttributeError(f"Model '{self.name}' has no `{what}`: only functional and "
                                 "built Sequential models have symbolic inputs and outputs.")

    def count_params(self) -> int:
        """Number of scalars in all weights (each shared weight counted once)."""
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on model '{self.name}', but the "
                             "model isn't built. Build it via `model.build(input_shape)` or by "
                             "calling it on data.")
        return int(sum(math.prod(v.shape) for v in self.weights))

    # ------------------------------------------------------------ compile

    # ------------------------------------------------------------ summary

    def summary(self, line_length: int | None = None, positions: list[float] | None = None,
                print_fn: Callable[..., Any] | None = None, expand_nested: bool = False,
                show_trainable: bool = False, layer_range: Any = None) -> None:
        """Prints the layer table: name (type), output shape, parameter count, totals.

        Args:
            line_length: total width (default 65, or 98 with a "Connected to" column).
            positions: relative (or absolute) right edges of the columns.
            print_fn: called with each line (default `print`).
            expand_nested / show_trainable / layer_range: accepted for compatibility.
        """
        print_fn = print_fn or print  # unbuilt layers show '?' and "0 (unbuilt)", as Keras 3
        for line in summary_lines(self, line_length, positions):
            print_fn(line)

    # ------------------------------------------------------------ config and saving

    def get_config(self) -> dict[str, Any]:
        """Functional models: their layers and connections; subclassed: `__init__` args."""
        if self._graph is not None:
            return functional.functional_config(self)
        return super().get_config()

    def _keras_tensor_specs(self) -> dict[tuple, tuple]:
        """Shapes and dtypes of the functional tensors (for Keras 3's config), else {}."""
        return functional.tensor_specs(self) if self._graph is not None else {}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Model:
        """Rebuilds a model from `get_config()`'s dict."""
        if "layers" in config and "input_layers" in config:
            target = Functional if cls is Model else cls
            return functional.functional_from_config(target, config, custom_objects)
        try:
            return cls(**config)
        except TypeError as exc:
            raise TypeError(f"Unable to revive model {cls.__name__} from its config {config}: "
                            f"{exc}. A subclassed model must implement `get_config()` "
                            "returning its constructor arguments (and `from_config` if they "
                            "need deserializing).") from exc

    def get_build_config(self) -> dict[str, Any] | None:
        """The input shape the model was built with (for saving)."""
        if not self.built or self._build_input_shape is None:
            return None
        shape = self._build_input_shape
        return {"input_shape": map_shape_structure(lambda s: [None, *list(s)[1:]], shape)}

    def build_from_config(self, config: dict[str, Any] | None) -> None:
        """Builds the model from `get_build_config()`'s dict."""
        if config and config.get("input_shape") is not None and not self.built:
            shape = config["input_shape"]
            self.build(map_shape_structure(tuple, shape))
            self.built = True

    def get_compile_config(self) -> dict[str, Any] | None:
        """The `compile()` arguments, JSON-safe (None when not compiled)."""
        return saving.serialize_compile_config(self) if self.compiled else None

    def compile_from_config(self, config: dict[str, Any],
                            custom_objects: dict | None = None) -> None:
        """Compiles the model from `get_compile_config()`'s dict."""
        saving.compile_from_config(self, config, custom_objects)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string (`models.model_from_json` reads it)."""
        return json.dumps(saving.serialize_model(self), default=saving.json_default, **kwargs)

    def save(self, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
        """Saves architecture, weights, compile and optimizer state to a `.keras` file."""
        saving.save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Saves the weights to a `*.weights.safetensors` file."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any, skip_mismatch: bool = False, **kwargs: Any) -> None:
        """Loads weights saved by `save_weights` (or from a `.keras` file)."""
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)


class Functional(Model):
    """A model defined by `Model(inputs, outputs)` (the class Keras names 'Functional')."""




# Assigned after the class body on purpose: `Layer.__init_subclass__` wraps a `build`
# defined in a class body with a wrapper that requires `input_shape`, while Keras lets a
# model with a known input be built with `model.build()`. It sets `built` itself.
Model.build = Model._build_model  # type: ignore[method-assign]
register_layer(Model)
register_layer(Functional)
