"""Saving, loading and cloning whole models: `keras.models.load_model`, `clone_model`, ..."""

from __future__ import annotations

import json
from typing import Any

from distflow.keras import saving
from distflow.keras.models.model import Model

__all__ = ["clone_model", "load_model", "model_from_json", "save_model"]


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True,
               safe_mode: bool = True) -> Model:
    """Loads a model saved with `model.save(path)` (a `.keras` file).

    Args:
        filepath: the `.keras` file.
        custom_objects: {name: class or function} for custom layers, losses, metrics.
        compile: restore the compile configuration and optimizer state.
        safe_mode: accepted for compatibility (nothing is ever unpickled).
    """
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile)


def save_model(model: Model, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
    """Same as `model.save(filepath)`: a `.keras` archive."""
    model.save(filepath, overwrite=overwrite, **kwargs)


def clone_model(model: Model, custom_objects: dict | None = None) -> Model:
    """A new model with the same architecture (and layer names) and fresh weights.

    Args:
        model: a functional, Sequential or (config-serializable) subclassed model.
        custom_objects: classes of custom layers, by name.
    """
    config = {**saving.serialize_layer(model), "build_config": model.get_build_config()}
    return saving.deserialize_model(config, custom_objects)


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    """The (unbuilt-weights) model described by `model.to_json()`."""
    return saving.deserialize_model(json.loads(json_string), custom_objects)

