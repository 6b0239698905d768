"""`tf.saved_model.save` / `load` in distflow's own directory format.

Layout of an export directory:

* `saved_model.json`: `{"format": "distflow.saved_model", "version": 1, "kind":
  "keras" | "module", "class": "<module>.<qualname>", "variables": [paths]}`;
* kind "keras": `model.keras`, the Keras 3 archive (architecture, weights,
  optimizer), loaded back as a working model with `keras.models.load_model`;
* kind "module": `variables/variables.safetensors` and `.index.json`, a
  `tf.train.Checkpoint` of the object. Python code is not serialised (no
  pickle), so `load` returns a `tf.Module` whose attributes hold the restored
  variables under their original attribute paths, without methods.

TensorFlow-written SavedModels (`saved_model.pb`) cannot be loaded: `load`
says so.
"""

from __future__ import annotations

import json
import os
from typing import Any

from distflow import train
from distflow.module import Module
from distflow.tensor import Variable

_FORMAT = "distflow.saved_model"
_META = "saved_model.json"


def _is_keras_model(obj: Any) -> bool:
    return hasattr(obj, "get_config") and hasattr(obj, "save") and hasattr(obj, "weights")


def save(obj: Any, export_dir: Any, signatures: Any = None, options: Any = None) -> None:
    """Writes `obj` (a Keras model or a `tf.Module`) to `export_dir`."""
    export_dir = os.fspath(export_dir)
    os.makedirs(export_dir, exist_ok=True)
    kind = "keras" if _is_keras_model(obj) else "module"
    if kind == "keras":
        obj.save(os.path.join(export_dir, "model.keras"))
        paths = [w.name for w in obj.weights]
    else:
        if not isinstance(obj, Module):
            raise ValueError(f"saved_model.save expects a tf.Module or a Keras model. "
                             f"Received: {type(obj).__name__}")
        ckpt = train.Checkpoint(root=obj)
        ckpt.write(os.path.join(export_dir, "variables", "variables"))
        paths = sorted(ckpt._graph().variables)
    meta = {"format": _FORMAT, "version": 1, "kind": kind,
            "class": f"{type(obj).__module__}.{type(obj).__qualname__}", "variables": paths}
    with open(os.path.join(export_dir, _META), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)


def contains_saved_model(export_dir: Any) -> bool:
    """Whether `export_dir` holds a distflow SavedModel."""
    return os.path.exists(os.path.join(os.fspath(export_dir), _META))


def load(export_dir: Any, tags: Any = None, options: Any = None) -> Any:
    """Loads what `save` wrote: a Keras model, or a `tf.Module` holding the variables."""
    export_dir = os.fspath(export_dir)
    meta_path = os.path.join(export_dir, _META)
    if not os.path.exists(meta_path):
        if os.path.exists(os.path.join(export_dir, "saved_model.pb")):
            raise ValueError(f"{export_dir!r} is a TensorFlow SavedModel; distflow loads only "
                             "its own format (written by distflow.saved_model.save).")
        raise FileNotFoundError(f"No SavedModel in {export_dir!r} (missing {_META}).")
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{meta_path} is not a distflow SavedModel description.")
    if meta["kind"] == "keras":
        from distflow.keras import models

        return models.load_model(os.path.join(export_dir, "model.keras"))
    return _load_module(os.path.join(export_dir, "variables", "variables"))


class _Restored(Module):
    """A module rebuilt from saved variables (attributes only, no methods)."""


def _load_module(prefix: str) -> Module:
    root = _Restored(name="restored")
    for path, value in train.load_checkpoint_arrays(prefix).items():
        parts = path.split("/")
        if parts[0] != "root":
            continue
        node = root
        for part in parts[1:-1]:
            child = node.__dict__.get(part)
            if child is None:
                child = _Restored(name="restored")
                node.__dict__[part] = child
            node = child
        node.__dict__[parts[-1]] = Variable(value, name=parts[-1])
    return root
