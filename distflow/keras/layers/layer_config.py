"""A layer's config: `get_config`/`from_config` and the build config saved with models.

A custom layer whose constructor takes plain JSON values needs no `get_config`
(Keras 3's "auto config": `Layer.__new__` records the arguments).
"""

from __future__ import annotations

from typing import Any

from distflow.keras import regularizers

__all__ = ["ConfigMixin"]


def _shape_to_json(shape: Any) -> Any:
    if isinstance(shape, tuple | list):
        return [_shape_to_json(s) for s in shape]
    return None if shape is None else int(shape)

def _shape_from_json(shape: Any) -> Any:
    if isinstance(shape, list) and all(s is None or isinstance(s, int) for s in shape):
        return tuple(shape)
    if isinstance(shape, list):
        return [_shape_from_json(s) for s in shape]
    return shape


class ConfigMixin:
    """`get_config`, `from_config`, `get_build_config` and `build_from_config` of `Layer`."""

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-safe; `from_config(get_config())` rebuilds the layer."""
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": self._policy}
        auto = self.__dict__.get("_auto_config")
        if type(self).get_config is ConfigMixin.get_config and auto:
            config = {**auto, **config}
        if self._input_shape_arg is not None:
            config["batch_input_shape"] = [self._batch_size_arg, *self._input_shape_arg]
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        config.update(self._constraint_config())
        return config

    def _constraint_config(self) -> dict[str, Any]:
        from distflow.keras import constraints

        return {f"{key}_constraint": constraints.serialize(value)
                for key, value in (self.__dict__.get("_constraints") or {}).items()
                if value is not None}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """Creates a layer from its `get_config()` dict."""
        config = dict(config)
        if isinstance(config.get("dtype"), dict):  # a Keras 3 dtype policy
            config["dtype"] = config["dtype"].get("config", {}).get("name")
        if isinstance(config.get("batch_input_shape"), list):
            config["batch_input_shape"] = tuple(config["batch_input_shape"])
        return cls(**config)

    def get_build_config(self) -> dict[str, Any] | None:
        """The input shape the layer was built with (for saving), or None if not built."""
        if not self.built or self._build_input_shape is None:
            return None
        return {"input_shape": _shape_to_json(self._build_input_shape)}

    def build_from_config(self, config: dict[str, Any] | None) -> None:
        """Builds the layer from `get_build_config()`'s dict."""
        if config and config.get("input_shape") is not None and not self.built:
            self.build(_shape_from_json(config["input_shape"]))
