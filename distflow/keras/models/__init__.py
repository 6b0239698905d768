"""`keras.models`: `Model`, `Sequential`, and saving, loading and cloning models.

`model` (the `Model` class: network, summary, configs), `sequential`, `cloning`
(`load_model`, `save_model`, `clone_model`, `model_from_json`). Training lives in
`keras/trainers/`.
"""

from distflow.keras.models.cloning import clone_model, load_model, model_from_json, save_model
from distflow.keras.models.model import Functional, Model
from distflow.keras.models.sequential import Sequential

__all__ = ["Functional", "Model", "Sequential", "clone_model", "load_model", "model_from_json",
           "save_model"]
