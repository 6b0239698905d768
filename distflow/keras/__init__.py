"""Keras-compatible API: `from distflow import keras` or `import distflow.keras as keras`.

Submodules (`models`, `layers`, `losses`, `metrics`, `callbacks`, `optimizers`,
`datasets`, `utils`, `initializers`, `regularizers`, `activations`, `backend`,
`saving`, `constraints`, `preprocessing`) are imported on first use, so `import distflow`
stays cheap and a parameter-server process never loads the model code. `keras.optimizers` is
`distflow.optimizers`.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("models", "layers", "losses", "metrics", "callbacks", "datasets", "utils",
               "initializers", "regularizers", "activations", "backend", "saving",
               "training_context", "constraints", "mixed_precision", "random",
               "ops", "preprocessing")
_FROM_MODELS = ("Sequential", "Model")


def __getattr__(name: str) -> Any:
    if name == "optimizers":
        return importlib.import_module("distflow.optimizers")
    if name in _SUBMODULES:
        return importlib.import_module(f"distflow.keras.{name}")
    if name in _FROM_MODELS:
        return getattr(importlib.import_module("distflow.keras.models"), name)
    if name == "Input":
        return importlib.import_module("distflow.keras.functional").Input
    raise AttributeError(f"module 'distflow.keras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_SUBMODULES, *_FROM_MODELS, "Input", "optimizers"])
