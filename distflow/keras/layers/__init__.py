"""Keras layers: `from distflow.keras.layers import Dense, Conv2D, ...`.

`serialize(layer)` / `deserialize(config)` convert between a layer and
`{"class_name": ..., "config": ...}` (used by model saving); custom layer
classes are found through `custom_objects` or `register_layer`.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from distflow.keras import saving_registry
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.core import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    Lambda,
    Masking,
    Rescaling,
    Reshape,
)

# Modules whose public names (their __all__) are exported here.
_EXPORTED: list[str] = []
_MODULES = ("convolutional", "pooling", "normalization", "regularization", "recurrent",
            "wrappers", "merging", "reshaping", "activation", "attention", "preprocessing",
            "einsum_dense")
for _module_name in _MODULES:
    _module = importlib.import_module(f"distflow.keras.layers.{_module_name}")
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
        _EXPORTED.append(_name)

_REGISTRY: dict[str, type] = {}
# Layer classes defined above this package, registered by their modules when imported
# (`register_layer`); a lookup before that imports the module named here.
_REGISTERED_BY = {"InputLayer": "distflow.keras.functional",
                  "TensorOp": "distflow.keras.functional", "Model": "distflow.keras.models",
                  "Functional": "distflow.keras.models", "Sequential": "distflow.keras.models"}


def register_layer(cls: type, name: str | None = None) -> type:
    """Makes a custom Layer subclass known to `deserialize` (usable as a decorator)."""
    _REGISTRY[name or cls.__name__] = cls
    return cls


def get_layer_class(class_name: str, custom_objects: dict[str, Any] | None = None) -> type:
    """The Layer class called `class_name` (custom objects first, then built-ins)."""
    if class_name in _REGISTERED_BY and class_name not in _REGISTRY:
        importlib.import_module(_REGISTERED_BY[class_name])
    cls = saving_registry.lookup(class_name, custom_objects, _builtin_layer)
    if cls is None:
        raise ValueError(f"Unknown layer: '{class_name}'. Pass the class in `custom_objects` "
                         "or register it with `distflow.keras.layers.register_layer`.")
    return cls


def _builtin_layer(class_name: str) -> type | None:
    """A class registered under `class_name` or a Layer this package exports by that name."""
    cls = _REGISTRY.get(class_name)
    if cls is None:
        candidate = globals().get(class_name)
        if isinstance(candidate, type) and issubclass(candidate, Layer):
            cls = candidate
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
    inner = config.get("config") or {}
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        return cls.from_config(inner, custom_objects=custom_objects)
    return cls.from_config(inner)


__all__ = sorted({"Activation", "Dense", "Dropout", "Embedding", "Flatten", "Identity",
                  "Lambda", "Masking", "Rescaling", "Reshape", "Layer", "InputSpec", "serialize",
                  "deserialize", "get_layer_class", "register_layer", "Input", "InputLayer",
                  *_EXPORTED})


def __getattr__(name: str) -> Any:
    # `Input` / `InputLayer` live with the functional API (imported lazily: it imports us).
    if name in ("Input", "InputLayer"):
        return getattr(importlib.import_module("distflow.keras.functional"), name)
    raise AttributeError(f"module 'distflow.keras.layers' has no attribute {name!r}")


# Keras 3's preprocessing and extra layers, in their own modules.
_MORE_MODULES = ("preprocessing_lookup", "preprocessing_hashing",
                 "preprocessing_discretization", "preprocessing_text", "preprocessing_image",
                 "convolutional_extra", "volumetric", "normalization_extra", "attention_extra",
                 "pipeline", "adaptive_pooling", "preprocessing_color", "core_extra",
                 "recurrent_stacked", "convolutional_recurrent", "preprocessing_augment",
                 "preprocessing_geometry")
for _module_name in _MORE_MODULES:
    _module = importlib.import_module(f"distflow.keras.layers.{_module_name}")
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
__all__.sort()
