"""`keras.Sequential`: a linear stack of layers, each feeding the next."""

from __future__ import annotations

from typing import Any

from distflow.keras import saving
from distflow.keras.functional import GraphNetwork, InputLayer
from distflow.keras.keras_tensor import KerasTensor
from distflow.keras.layers import register_layer
from distflow.keras.layers.base import Layer
from distflow.keras.layers.pooling import conv_then_pool, pools_conv_output
from distflow.keras.models.model import Model
from distflow.keras.tree import flatten

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers, each feeding the next.

    The model is built as soon as the input shape is known: from an `Input` /
    `InputLayer` given first, from the first layer's `input_shape=` /
    `input_dim=`, or from the first data it sees.

    Args:
        layers: optional list of layers (an `Input` tensor may come first).
        name: model name.
        trainable: whether training updates its weights.
    """

    def __init__(self, layers: list[Any] | None = None, name: str | None = None,
                 trainable: bool = True, **kwargs: Any):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._input_tensor: KerasTensor | None = None
        self._output_tensor: Any = None
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        """The layers in order (without the InputLayer)."""
        return list(self._tracked_layers)

    def add(self, layer: Any, rebuild: bool = True) -> None:
        """Appends a layer (or sets the input, for an `Input` tensor / `InputLayer`)."""
        if isinstance(layer, KerasTensor):
            if layer._node is None or not layer._node.is_input:
                raise ValueError("Only an `Input` tensor can be added to a Sequential model; "
                                 f"received {layer}.")
            layer = layer._node.layer
        if isinstance(layer, InputLayer):
            if self._tracked_layers or self._input_tensor is not None:
                raise ValueError("An InputLayer (or Input) can only be the first layer of a "
                                 f"Sequential model. Received it after {self.layers}.")
            self._input_tensor = layer.output
            return
        if not isinstance(layer, Layer):
            raise TypeError("The added layer must be an instance of class Layer. Received: "
                            f"layer={layer!r} of type {type(layer)}.")
        if any(existing.name == layer.name for existing in self._tracked_layers):
            raise ValueError("All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in this "
                             "model. Update the `name` argument to pass a unique name.")
        self._tracked_layers.append(layer)
        first_shape = getattr(layer, "_input_shape_arg", None)
        if self._input_tensor is None and len(self._tracked_layers) == 1 and \
                first_shape is not None:
            self._input_tensor = InputLayer(batch_shape=(layer._batch_size_arg, *first_shape),
                                            ).output
        if self._input_tensor is not None and rebuild:
            self._extend_graph(layer)

    def pop(self, rebuild: bool = True) -> Layer:
        """Removes and returns the last layer."""
        if not self._tracked_layers:
            raise TypeError("There are no layers in the model.")
        layer = self._tracked_layers.pop()
        self._output_tensor, self._graph = None, None
        if self._input_tensor is not None and self._tracked_layers and rebuild:
            self._rebuild()
        return layer

    def _extend_graph(self, layer: Layer) -> None:
        if self._output_tensor is None:
            self._rebuild()
            return
        self._set_output(layer(self._output_tensor))

    def _rebuild(self) -> None:
        x = self._input_tensor
        for layer in self._tracked_layers:
            x = layer(x)
        self._set_output(x)

    def _set_output(self, output: Any) -> None:
        if len(flatten(output)) != 1:
            raise ValueError("All layers in a Sequential model should have a single output "
                             f"tensor. For multi-output layers, use the functional API. Got "
                             f"{output}")
        self._output_tensor = output
        self._graph = GraphNetwork(self._input_tensor, output)
        self.built = True
        self._build_input_shape = self._input_tensor.shape

    def _build_sequential(self, input_shape: Any = None) -> None:
        """Builds the model for inputs of `input_shape` (batch dimension first)."""
        if self._input_tensor is None:
            if input_shape is None:
                raise ValueError("You must provide an `input_shape` argument.")
            shape = tuple(input_shape)
            self._input_tensor = InputLayer(batch_shape=(None, *shape[1:])).output
        if not self._tracked_layers:
            raise ValueError(f"Sequential model '{self.name}' has no layers: add some before "
                             "building or calling it.")
        self._rebuild()

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        x, fused_with = inputs, None
        for layer, after in zip(self._tracked_layers, self._tracked_layers[1:] + [None]):
            if layer is fused_with:  # its output is already x
                fused_with = None
                continue
            pooled = conv_then_pool(layer, after, x) if after is not None and \
                pools_conv_output(layer, after) else None
            x, fused_with = (layer(x), None) if pooled is None else (pooled, after)
        return x

    @property
    def input_shape(self) -> Any:
        if self._input_tensor is None:
            raise AttributeError(f"Sequential model '{self.name}' has no input shape yet: give "
                                 "the first layer an `input_shape` or call it on data.")
        return self._input_tensor.shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": self.dtype,
                                  "layers": [saving.serialize_layer(layer)
                                             for layer in self._tracked_layers]}
        if self._input_tensor is not None:
            config["build_input_shape"] = list(self._input_tensor.shape)
            config["input_dtype"] = self._input_tensor.dtype
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None
                    ) -> Sequential:
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        if config.get("build_input_shape") is not None:
            model.add(InputLayer(batch_shape=config["build_input_shape"],
                                 dtype=config.get("input_dtype")))
        for layer_config in config.get("layers", []):
            model.add(saving.deserialize_layer(layer_config, custom_objects))
        return model

    def get_build_config(self) -> dict[str, Any] | None:
        if self._input_tensor is None:
            return None
        return {"input_shape": list(self._input_tensor.shape)}




# As for `Model.build`: assigned after the class body (see models/model.py).
Sequential.build = Sequential._build_sequential  # type: ignore[method-assign]
register_layer(Sequential)
