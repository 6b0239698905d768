"""Pipeline: a sequence of layers applied one after another, as Keras 3's.

Unlike a Sequential model it is a plain layer, meant for preprocessing: it
passes strings and NumPy arrays through untouched (each layer converts what it
needs), and `training` defaults to True as in Keras.
"""

from __future__ import annotations

from typing import Any

from distflow.keras.layers.base import Layer, _flat, _is_symbolic

__all__ = ["Pipeline"]


class Pipeline(Layer):
    """Applies `layers` in order.

    Args:
        layers: the layers (or callables) to apply.
        name: the layer's name.
    """

    def __init__(self, layers: list, name: str | None = None, **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self._pipeline_layers = list(layers)

    @property
    def layers(self) -> list:
        """The layers, in order."""
        return self._pipeline_layers

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if any(_is_symbolic(x) for x in _flat(inputs)):
            return super().__call__(inputs, *args, **kwargs)
        self.built = True
        return self.call(inputs, *args, **kwargs)

    def call(self, inputs: Any, training: bool | None = True, mask: Any = None) -> Any:
        for layer in self._pipeline_layers:
            kwargs = {} if training is None or not isinstance(layer, Layer) else \
                {"training": training}
            inputs = layer(inputs, **kwargs)
        return inputs

    def get_config(self) -> dict[str, Any]:
        from distflow.keras.layers import serialize
        return {"name": self.name, "trainable": self.trainable,
                "layers": [serialize(layer) for layer in self._pipeline_layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Pipeline:
        from distflow.keras.layers import deserialize
        layers = config.get("layers")
        if not isinstance(layers, list | tuple):
            raise ValueError("`Pipeline` config must contain a `layers` key mapping to a list of "
                             f"serialized layers. Received config with layers={layers}.")
        rest = {k: v for k, v in config.items() if k not in ("layers", "dtype")}
        return cls([deserialize(x, custom_objects) for x in layers], **rest)
