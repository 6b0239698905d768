"""Saving and loading models: the `.keras` zip archive and `*.weights.safetensors` files.

A `.keras` file is a zip archive holding

* `metadata.json`: format name and version, distflow version, date;
* `config.json`: `{"class_name", "config", "build_config", "compile_config"}`, the
  architecture from `get_config()` and the `compile()` arguments (optimizer
  included), all JSON;
* `model.weights.safetensors`: the weights as `weights/00000`, `weights/00001`, ...
  in the order of `model.weights` (names are process-unique, so order is the stable
  key), plus the optimizer state as `optimizer/iterations` and
  `optimizer/<weight index>/<slot>`.

Nothing is pickled. HDF5 (`.h5`) is not supported.
"""

from __future__ import annotations

import datetime
import inspect
import json
import os
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

from distflow import serialization
from distflow.keras import layers

__all__ = ["compile_from_config", "deserialize_layer", "deserialize_model", "load_model",
           "load_weights", "save_model", "save_weights", "serialize_compile_config",
           "serialize_layer", "serialize_model"]

FORMAT = "distflow.keras"
FORMAT_VERSION = 1
_CONFIG, _METADATA, _WEIGHTS = "config.json", "metadata.json", "model.weights.safetensors"
_H5_SUFFIXES = (".h5", ".hdf5", ".keras.h5")


# --------------------------------------------------------------------------- layers and models


def serialize_layer(layer: Any) -> dict[str, Any]:
    """`{"class_name", "config"}` of a layer or model."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(config: dict[str, Any], custom_objects: dict | None = None) -> Any:
    """The layer (or nested model) described by `serialize_layer`'s dict.

    Classes are found in `custom_objects`, then in the layer registry
    (`layers.get_layer_class`), where the models and the functional API register
    theirs: this module imports neither.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"A layer config must be a dict with 'class_name' and 'config'. "
                         f"Received: {config!r}")
    name = config["class_name"]
    cls = layers.get_layer_class(name, custom_objects)
    inner = config.get("config") or {}
    # Models and wrappers (Bidirectional, TimeDistributed) rebuild inner layers that may
    # be custom classes: pass the mapping to any from_config that takes it.
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        return cls.from_config(inner, custom_objects=custom_objects)
    return cls.from_config(inner)


def serialize_model(model: Any) -> dict[str, Any]:
    """Architecture, build shape and compile arguments of `model`, JSON-safe."""
    return {**serialize_layer(model), "build_config": model.get_build_config(),
            "compile_config": model.get_compile_config()}


def deserialize_model(config: dict[str, Any], custom_objects: dict | None = None) -> Any:
    """A new (uncompiled) model from `serialize_model`'s dict, built when the shape is known."""
    model = deserialize_layer(config, custom_objects)
    if not model.built and config.get("build_config"):
        model.build_from_config(config["build_config"])
    return model


# --------------------------------------------------------------------------- compile config


def _serialize_object(obj: Any) -> Any:
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    if isinstance(obj, dict):
        return {str(k): _serialize_object(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_serialize_object(v) for v in obj]
    if hasattr(obj, "get_config"):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    if callable(obj) and hasattr(obj, "__name__"):
        return obj.__name__  # a function: found again by name (built-in or custom_objects)
    raise TypeError(f"Cannot serialize {obj!r} into the compile config.")


def _deserialize_object(obj: Any, module: Any, custom_objects: dict | None) -> Any:
    custom = custom_objects or {}
    if isinstance(obj, str):
        return custom.get(obj, obj)
    if isinstance(obj, list):
        return [_deserialize_object(v, module, custom_objects) for v in obj]
    if isinstance(obj, dict) and "class_name" in obj and "config" in obj:
        cls = custom.get(obj["class_name"]) or getattr(module, obj["class_name"], None)
        if cls is None:
            raise ValueError(f"Unknown object {obj['class_name']!r} in the saved compile "
                             "config. Pass it in `custom_objects`.")
        return cls.from_config(obj["config"]) if hasattr(cls, "from_config") else \
            cls(**obj["config"])
    if isinstance(obj, dict):
        return {k: _deserialize_object(v, module, custom_objects) for k, v in obj.items()}
    return obj


def serialize_compile_config(model: Any) -> dict[str, Any]:
    """The `compile()` arguments of `model` (optimizer included), JSON-safe."""
    from distflow import optimizers

    args = model._compile_config or {}
    return {"optimizer": optimizers.serialize(model.optimizer),
            "loss": _serialize_object(args.get("loss")),
            "loss_weights": _serialize_object(args.get("loss_weights")),
            "metrics": _serialize_object(args.get("metrics")),
            "weighted_metrics": _serialize_object(args.get("weighted_metrics"))}


def compile_from_config(model: Any, config: dict[str, Any],
                        custom_objects: dict | None = None) -> None:
    """Compiles `model` with the arguments `serialize_compile_config` recorded."""
    from distflow import optimizers
    from distflow.keras import losses, metrics

    model.compile(
        optimizer=optimizers.deserialize(config["optimizer"], custom_objects),
        loss=_deserialize_object(config.get("loss"), losses, custom_objects),
        loss_weights=config.get("loss_weights"),
        metrics=_deserialize_object(config.get("metrics"), metrics, custom_objects),
        weighted_metrics=_deserialize_object(config.get("weighted_metrics"), metrics,
                                             custom_objects))


# --------------------------------------------------------------------------- weights


def _weight_tensors(model: Any, include_optimizer: bool) -> tuple[dict, dict[str, str]]:
    if not model.built:
        raise ValueError(f"Model '{model.name}' has no weights yet: it has not been built. "
                         "Call it on data (or `build(input_shape)`) before saving.")
    variables = model.weights
    tensors = {f"weights/{i:05d}": v.value for i, v in enumerate(variables)}
    metadata = {"format": "distflow.weights", "format_version": str(FORMAT_VERSION),
                "weight_names": json.dumps([v.name for v in variables])}
    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and optimizer is not None and hasattr(optimizer, "get_state"):
        index = {v.name: i for i, v in enumerate(variables)}
        for key, array in optimizer.get_state().items():
            if key == "iterations":
                tensors["optimizer/iterations"] = np.asarray(array)
                continue
            var_name, _, slot = key.rpartition("/")
            if var_name in index:
                tensors[f"optimizer/{index[var_name]:05d}/{slot}"] = np.asarray(array)
    return tensors, metadata


def _assign_weights(model: Any, tensors: dict[str, np.ndarray], source: str,
                    skip_mismatch: bool = False) -> None:
    variables = model.weights
    keys = sorted(k for k in tensors if k.startswith("weights/"))
    if len(keys) != len(variables) and not skip_mismatch:
        raise ValueError(f"{source} holds {len(keys)} weights but model '{model.name}' has "
                         f"{len(variables)}. The file was saved from a different architecture.")
    problems = []
    for key, var in zip(keys, variables):
        array = tensors[key]
        if tuple(array.shape) != tuple(var.shape):
            problems.append(f"'{var.name}': model shape {tuple(var.shape)}, saved "
                            f"{tuple(array.shape)}")
    if problems and not skip_mismatch:
        raise ValueError(f"Weight shapes in {source} do not match model '{model.name}': "
                         + "; ".join(problems))
    for key, var in zip(keys, variables):
        if tuple(tensors[key].shape) == tuple(var.shape):
            var.assign(tensors[key])


def _restore_optimizer(model: Any, tensors: dict[str, np.ndarray]) -> None:
    optimizer = model.optimizer
    if "optimizer/iterations" not in tensors or not hasattr(optimizer, "set_state"):
        return
    variables = model.weights
    state = {"iterations": tensors["optimizer/iterations"]}
    for key, array in tensors.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "optimizer" and int(parts[1]) < len(variables):
            state[f"{variables[int(parts[1])].name}/{parts[2]}"] = np.array(array)
    optimizer.set_state(state)


def _check_suffix(path: str, suffixes: tuple[str, ...], what: str) -> None:
    if path.lower().endswith(_H5_SUFFIXES):
        raise ValueError(f"The HDF5 format (.h5) is not supported: distflow never writes "
                         f"HDF5 or pickles. Use a {what} path ending in {suffixes[0]!r}. "
                         f"Received: filepath={path}")
    if not path.endswith(suffixes):
        raise ValueError(f"Invalid filepath extension for {what}: the path must end in "
                         f"{' or '.join(repr(s) for s in suffixes)}. Received: filepath={path}")


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Writes `model.weights` to a `*.weights.safetensors` file (atomically)."""
    path = os.fspath(filepath)
    _check_suffix(path, (".weights.safetensors", ".safetensors"), "`save_weights`")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False.")
    tensors, metadata = _weight_tensors(model, include_optimizer=False)
    serialization.save_file(tensors, path, metadata)


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False) -> None:
    """Loads weights from a `*.safetensors` file written by `save_weights` or a `.keras` file."""
    path = os.fspath(filepath)
    _check_suffix(path, (".safetensors", ".keras"), "`load_weights`")
    if not model.built:
        raise ValueError(f"Model '{model.name}' must be built before loading weights: call it "
                         "on data or call `model.build(input_shape)` first.")
    if path.endswith(".keras"):
        tensors = _read_archive(path)[2]
    else:
        tensors, _ = _load_safetensors(path)
    _assign_weights(model, tensors, f"'{path}'", skip_mismatch)


def _load_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file not found: filepath={path}")
    try:
        return serialization.load_file(path)
    except serialization.SafetensorsError as exc:
        raise ValueError(f"Cannot load weights from '{path}': {exc}") from None


# --------------------------------------------------------------------------- .keras archives


def save_model(model: Any, filepath: Any, overwrite: bool = True, zipped: bool | None = None,
               include_optimizer: bool = True, save_format: str | None = None) -> None:
    """Writes `model` to a `.keras` zip archive (atomically: temp file, fsync, rename).

    Args:
        model: the model.
        filepath: destination, ending in `.keras`.
        overwrite: replace an existing file.
        zipped: only True (the default) is supported.
        include_optimizer: also store the optimizer's slots and step counter.
        save_format: None or 'keras'.
    """
    path = os.fspath(filepath)
    if save_format not in (None, "keras") or zipped is False:
        raise ValueError("Only the zipped `.keras` format is supported. Received: "
                         f"save_format={save_format!r}, zipped={zipped!r}")
    _check_suffix(path, (".keras",), "saving a model")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False.")
    config = json.dumps(serialize_model(model), indent=1, default=json_default)
    tensors, metadata = _weight_tensors(model, include_optimizer)
    weights = serialization.dumps(tensors, metadata)
    _write_archive(path, {_METADATA: json.dumps(_metadata()).encode(),
                          _CONFIG: config.encode(), _WEIGHTS: weights})


def json_default(value: Any) -> Any:
    """`json.dumps`'s `default`: NumPy scalars and arrays become JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} in the model config is not JSON "
                    f"serializable: {value!r}. Layers' get_config() must return plain values.")


def _metadata() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        distflow_version = version("distflow")
    except Exception:  # noqa: BLE001 - not installed as a package (running from a checkout)
        distflow_version = "unknown"
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "distflow_version": distflow_version,
            "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat()}


def _write_archive(path: str, members: dict[str, bytes]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w") as archive:
                for name, data in members.items():
                    method = zipfile.ZIP_STORED if name == _WEIGHTS else zipfile.ZIP_DEFLATED
                    archive.writestr(name, data, compress_type=method)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_archive(path: str) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """(metadata, config, weight tensors) of a `.keras` file, with clear errors."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"File not found: filepath={path}. Please ensure the file is "
                                "an accessible `.keras` zip file.")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory; distflow loads `.keras` files only "
                         "(SavedModel directories are a TensorFlow format).")
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [m for m in (_METADATA, _CONFIG, _WEIGHTS) if m not in archive.namelist()]
            if missing:
                raise ValueError(f"'{path}' is not a complete .keras file: missing {missing}.")
            members = {m: archive.read(m) for m in (_METADATA, _CONFIG, _WEIGHTS)}
        metadata = json.loads(members[_METADATA])
        config = json.loads(members[_CONFIG])
        tensors, _ = serialization.loads(bytearray(members[_WEIGHTS]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error,
            json.JSONDecodeError, UnicodeDecodeError, serialization.SafetensorsError) as exc:
        raise ValueError(f"Cannot load '{path}': it is not a valid .keras file (truncated or "
                         f"corrupt: {exc}). Save the model again.") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"'{path}' was not written by distflow (format "
                         f"{metadata.get('format') if isinstance(metadata, dict) else None!r}"
                         f", expected {FORMAT!r}).")
    return metadata, config, tensors


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    """Loads a model written by `save_model` (`model.save(path)`).

    Args:
        filepath: the `.keras` file.
        custom_objects: {name: class or function} for custom layers, losses, metrics.
        compile: restore the compile arguments and the optimizer state.

    Returns:
        The model, with its weights (and compiled, if it was and `compile` is True).
    """
    path = os.fspath(filepath)
    _check_suffix(path, (".keras",), "`load_model`")
    _, config, tensors = _read_archive(path)
    model = deserialize_model(config, custom_objects)
    _assign_weights(model, tensors, f"'{path}'")
    if compile and config.get("compile_config"):
        compile_from_config(model, config["compile_config"], custom_objects)
        _restore_optimizer(model, tensors)
    return model


def weights_to_bytes(model: Any) -> bytes:
    """The weights of `model` as safetensors bytes (for in-memory snapshots)."""
    tensors, metadata = _weight_tensors(model, include_optimizer=False)
    return serialization.dumps(tensors, metadata)


def weights_from_bytes(model: Any, data: bytes) -> None:
    """Restores weights captured by `weights_to_bytes`."""
    tensors, _ = serialization.loads(bytearray(data))
    _assign_weights(model, tensors, "the weights buffer")


# Keras 3's object registration and (de)serialization, also exported as `keras.saving.*`.
from distflow.keras.saving_registry import *  # noqa: E402, F401, F403
from distflow.keras.serialization_lib import (  # noqa: E402, F401
    deserialize_keras_object,
    serialize_keras_object,
)
