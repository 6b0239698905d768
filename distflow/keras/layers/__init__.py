"""Keras layers: `from distflow.keras.layers import Dense, Conv2D, ...`.

`serialize(layer)` / `deserialize(config)` convert between a layer and
`{"class_name": ..., "config": ...}` (used by model saving); custom layer
classes are found through `custom_objects` or `register_layer`.
"""

from __future__ import annotations

import importlib
from typing import Any

from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.core import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    Masking,
    Rescaling,
    Reshape,
)

# Modules whose public Layer subclasses are exported here (loaded when present).
_EXPORTED: list[str] = []
_MODULES = ("convolutional", "pooling", "normalization", "recurrent", "merging",
            "reshaping", "activation")
for _module_name in _MODULES:
    try:
        _module = importlib.import_module(f"distflow.keras.layers.{_module_name}")
    except ModuleNotFoundError as _err:
        if _err.name != f"distflow.keras.layers.{_module_name}":
            raise
        continue
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)
        _EXPORTED.append(_name)

_REGISTRY: dict[str, type] = {}


def register_layer(cls: type, name: str | None = None) -> type:
    """Makes a custom Layer subclass known to `deserialize` (usable as a decorator)."""
    _REGISTRY[name or cls.__name__] = cls
    return cls


def get_layer_class(class_name: str, custom_objects: dict[str, Any] | None = None) -> type:
    """The Layer class called `class_name` (custom objects first, then built-ins)."""
    cls = (custom_objects or {}).get(class_name) or _REGISTRY.get(class_name)
    if cls is None:
        candidate = globals().get(class_name)
        if isinstance(candidate, type) and issubclass(candidate, Layer):
            cls = candidate
    if cls is None:
        raise ValueError(f"Unknown layer: '{class_name}'. Pass the class in `custom_objects` "
                         "or register it with `distflow.keras.layers.register_layer`.")
    return cls


def serialize(layer: Layer) -> dict[str, Any]:
    """`{"class_name": ..., "config": layer.get_config()}`."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Layer:
    """Recreates a layer from `serialize`'s dict."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("A layer config must be a dict with 'class_name' and 'config'. "
                         f"Received: {config!r}")
    cls = get_layer_class(config["class_name"], custom_objects)
    return cls.from_config(config.get("config") or {})


__all__ = sorted({"Activation", "Dense", "Dropout", "Embedding", "Flatten", "Identity",
                  "Masking", "Rescaling", "Reshape", "Layer", "InputSpec", "serialize",
                  "deserialize", "get_layer_class", "register_layer", *_EXPORTED})


def __getattr__(name: str) -> Any:
    # `Input` / `InputLayer` live with the functional API (imported lazily: it imports us).
    if name in ("Input", "InputLayer"):
        return getattr(importlib.import_module("distflow.keras.functional"), name)
    raise AttributeError(f"module 'distflow.keras.layers' has no attribute {name!r}")
