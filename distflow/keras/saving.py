"""Saving and loading models: Keras 3's files, Keras 2's `.h5`, and distflow's safetensors.

* `model.save("m.keras")` writes Keras 3's archive (`saving_keras3`): `config.json` in
  Keras 3's config format (`saving_config`), `metadata.json`, and `model.weights.h5` in
  Keras 3's HDF5 weight layout (`saving_h5`), optimizer state included. Keras 3 loads it.
* `save_weights("w.weights.h5")` writes Keras 3's weights file; `"w.weights.safetensors"`
  (any `.safetensors` path) writes distflow's: `weights/00000`, ... in `model.weights`
  order, plus the optimizer as `optimizer/iterations`, `optimizer/<index>/<slot>`.
* `load_model` reads Keras 3 `.keras` files (Keras's or distflow's), distflow's earlier
  `.keras` archives (`model.weights.safetensors` inside) and legacy (tf.keras 2 / Keras 2)
  `.h5` full-model files; `load_weights` reads all of those and `.weights.h5`, legacy
  `.h5` weights and `.safetensors` files.

Nothing is pickled: configs are JSON, weights HDF5 or safetensors arrays. A load that is
rejected (a class distflow lacks, a field it does not implement, a shape that differs, a
damaged file) raises before any weight of the model changes.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np

from distflow import serialization
from distflow.keras import layers, saving_config, saving_h5, saving_keras3
from distflow.keras.saving_registry import (
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)

__all__ = ["compile_from_config", "deserialize_layer", "deserialize_model",
           "get_registered_name", "get_registered_object", "keras_config", "load_model",
           "load_weights", "register_keras_serializable", "save_model", "save_weights",
           "serialize_compile_config", "serialize_layer", "serialize_model"]

FORMAT = "distflow.keras"
FORMAT_VERSION = 1
_CONFIG, _METADATA, _WEIGHTS = "config.json", "metadata.json", "model.weights.safetensors"
_H5_SUFFIXES = (".h5", ".hdf5")


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
    if not path.lower().endswith(suffixes):
        raise ValueError(f"Invalid filepath extension for {what}: the path must end in "
                         f"{' or '.join(repr(s) for s in suffixes)}. Received: filepath={path}")


def _check_overwrite(path: str, overwrite: bool) -> None:
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False.")


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Writes `model.weights` to `*.weights.h5` (Keras 3's layout) or `*.safetensors`.

    Both are written atomically and get the user's umask.
    """
    path = os.fspath(filepath)
    if path.lower().endswith(_H5_SUFFIXES) and not path.endswith(".weights.h5"):
        raise ValueError("The filename must end in `.weights.h5` (Keras 3's weights file) or "
                         f"`.weights.safetensors`. Received: filepath={path}")
    _check_suffix(path, (".weights.h5", ".safetensors"), "`save_weights`")
    _check_overwrite(path, overwrite)
    _require_built(model, "saving")
    if path.endswith(".weights.h5"):
        saving_keras3.write_weights(model, path)
        return
    tensors, metadata = _weight_tensors(model, include_optimizer=False)
    serialization.save_file(tensors, path, metadata)


def _require_built(model: Any, what: str) -> None:
    if not model.built:
        raise ValueError(f"Model '{model.name}' has no weights yet: it must be built before "
                         f"{what} weights. Call it on data or `model.build(input_shape)` first.")


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False) -> None:
    """Loads weights from `.weights.h5` (Keras 3), legacy `.h5`, `.keras` or `.safetensors`.

    Every array is read and checked before the first assignment: a rejected file leaves
    the model's weights unchanged.
    """
    path = os.fspath(filepath)
    _check_suffix(path, (".safetensors", ".keras", *_H5_SUFFIXES), "`load_weights`")
    _require_built(model, "loading")
    source = f"'{path}'"
    if path.lower().endswith(_H5_SUFFIXES):
        with saving_keras3.open_h5(path, source) as h5:
            plan = _h5_weight_plan(model, h5, source, skip_mismatch)
        _assign_plan(plan)
    elif path.endswith(".keras") and saving_keras3.is_keras3_archive(path):
        _, _, h5 = saving_keras3.read_archive(path)
        with h5:
            _assign_plan(saving_h5.read_keras_weights(model, h5, source,
                                                      skip_mismatch=skip_mismatch))
    else:
        tensors = _read_archive(path)[2] if path.endswith(".keras") else \
            _load_safetensors(path)[0]
        _assign_weights(model, tensors, source, skip_mismatch)


def _h5_weight_plan(model: Any, h5: Any, source: str, skip_mismatch: bool) -> list:
    """Keras 3 layout, or tf.keras 2's (`layer_names`, at the root or in `model_weights`)."""
    if "model_weights" in h5:
        return saving_h5.read_legacy_weights(model, h5["model_weights"], source,
                                             skip_mismatch)
    if "layer_names" in h5.attrs:
        return saving_h5.read_legacy_weights(model, h5, source, skip_mismatch)
    return saving_h5.read_keras_weights(model, h5, source, skip_mismatch=skip_mismatch)


def _assign_plan(plan: list) -> None:
    for var, array in plan:
        var.assign(array.astype(var.dtype, copy=False) if hasattr(var, "dtype") else array)


def _load_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file not found: filepath={path}")
    try:
        return serialization.load_file(path)
    except serialization.SafetensorsError as exc:
        raise ValueError(f"Cannot load weights from '{path}': {exc}") from None


# --------------------------------------------------------------------------- .keras archives


def keras_config(model: Any) -> dict[str, Any]:
    """`model`'s `config.json` in Keras 3's format (module, class_name, config,
    registered_name, build_config, compile_config)."""
    specs: dict = {}
    classes: dict[str, type] = {}
    for layer in model._flatten_layers():
        specs.update(getattr(layer, "_keras_tensor_specs", dict)())
        classes[layer.name] = type(layer)
    config = saving_config.to_keras(serialize_model(model), specs, classes)
    config["compile_config"] = _compile_to_keras(config.get("compile_config"))
    return json.loads(json.dumps(config, default=json_default))


def _compile_to_keras(config: dict | None) -> dict | None:
    if not config:
        return None
    modules = {"optimizer": "keras.optimizers", "loss": "keras.losses",
               "metrics": "keras.metrics", "weighted_metrics": "keras.metrics"}
    out = {key: _with_module(value, modules.get(key, "keras")) for key, value in config.items()}
    return {**out, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _with_module(value: Any, module: str) -> Any:
    if isinstance(value, dict) and "class_name" in value:
        return {"module": module, "class_name": value["class_name"],
                "config": value.get("config"), "registered_name": None}
    if isinstance(value, dict):
        return {k: _with_module(v, module) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_module(v, module) for v in value]
    return value


def _without_module(value: Any) -> Any:
    """Keras's serialized objects as distflow's `{"class_name", "config"}` (tf.keras 2.11+
    names its optimizers `Custom>Adam`: the class is the part after `>`)."""
    if isinstance(value, dict) and "class_name" in value:
        return {"class_name": str(value["class_name"]).rpartition(">")[2],
                "config": value.get("config") or {}}
    if isinstance(value, dict):
        return {k: _without_module(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_module(v) for v in value]
    return value


def save_model(model: Any, filepath: Any, overwrite: bool = True, zipped: bool | None = None,
               include_optimizer: bool = True, save_format: str | None = None) -> None:
    """Writes `model` to a `.keras` file in Keras 3's format (atomically, with the umask).

    Args:
        model: the model.
        filepath: destination, ending in `.keras`.
        overwrite: replace an existing file.
        zipped: only True (the default) is supported.
        include_optimizer: also store the optimizer's step counter and slots.
        save_format: None or 'keras'.
    """
    path = os.fspath(filepath)
    if save_format not in (None, "keras") or zipped is False:
        raise ValueError("Only the zipped `.keras` format is supported. Received: "
                         f"save_format={save_format!r}, zipped={zipped!r}")
    if path.lower().endswith(_H5_SUFFIXES):
        raise ValueError("Writing the legacy HDF5 full-model format is not supported (distflow "
                         "reads it). Use a path ending in '.keras'. Received: "
                         f"filepath={path}")
    _check_suffix(path, (".keras",), "saving a model")
    _check_overwrite(path, overwrite)
    _require_built(model, "saving")
    saving_keras3.write_archive(path, keras_config(model), model, include_optimizer)


def json_default(value: Any) -> Any:
    """`json.dumps`'s `default`: NumPy scalars and arrays become JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} in the model config is not JSON "
                    f"serializable: {value!r}. Layers' get_config() must return plain values.")


def _read_archive(path: str) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """(metadata, config, weight tensors) of one of distflow's earlier `.keras` files."""
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


def _check_file(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"File not found: filepath={path}. Please ensure the file is "
                                f"an accessible {what} file.")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory; distflow loads `.keras` and `.h5` files only "
                         "(SavedModel directories are a TensorFlow format).")


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    """Loads a model from a `.keras` file (Keras 3's or distflow's) or a legacy `.h5` file.

    Args:
        filepath: the `.keras` or `.h5` file.
        custom_objects: {name: class or function} for custom layers, losses, metrics
            (registered classes, `package>Name`, are found without it).
        compile: restore the compile arguments and the optimizer state.

    Returns:
        The model, with its weights (and compiled, if it was and `compile` is True).

    Raises:
        ValueError: for a class or config field distflow does not implement (naming it),
            weights that do not fit, or a damaged file.
    """
    path = os.fspath(filepath)
    _check_suffix(path, (".keras", *_H5_SUFFIXES), "`load_model`")
    _check_file(path, "`.keras`")
    if path.lower().endswith(_H5_SUFFIXES):
        return _load_legacy_h5(path, custom_objects, compile)
    if saving_keras3.is_keras3_archive(path):
        return _load_keras3(path, custom_objects, compile)
    _, config, tensors = _read_archive(path)
    model = deserialize_model(config, custom_objects)
    _assign_weights(model, tensors, f"'{path}'")
    if compile and config.get("compile_config"):
        compile_from_config(model, config["compile_config"], custom_objects)
        _restore_optimizer(model, tensors)
    return model


def _model_from_keras(config: dict, custom_objects: dict | None, source: str) -> Any:
    return deserialize_model(saving_config.from_keras(config, custom_objects, source),
                             custom_objects)


def _load_keras3(path: str, custom_objects: dict | None, compile: bool) -> Any:
    source = f"'{path}'"
    _, config, h5 = saving_keras3.read_archive(path)
    with h5:
        model = _model_from_keras(config, custom_objects, source)
        _assign_plan(saving_h5.read_keras_weights(model, h5, source))
        if compile and config.get("compile_config"):
            compile_from_config(model, _without_module(config["compile_config"]),
                                custom_objects)
            saving_h5.read_keras_weights(model, h5, source, with_optimizer=True)
    return model


def _load_legacy_h5(path: str, custom_objects: dict | None, compile: bool) -> Any:
    source = f"'{path}'"
    with saving_keras3.open_h5(path, source) as h5:
        if "model_config" not in h5.attrs:
            raise ValueError(f"{source} holds weights only (no `model_config`): build the "
                             "model and call `model.load_weights(path)` instead.")
        config = _unwrap_single_io(json.loads(_h5_text(h5.attrs["model_config"])))
        model = _model_from_keras(config, custom_objects, source)
        _assign_plan(saving_h5.read_legacy_weights(model, h5["model_weights"], source))
        training = h5.attrs.get("training_config")
        if compile and training is not None and "optimizer_weights" in h5:
            warnings.warn(f"{source}: the optimizer state of a legacy `.h5` file is not "
                          "restored (the optimizer starts afresh); `.keras` files keep it.",
                          stacklevel=3)
    if compile and training is not None:
        training = json.loads(_h5_text(training))
        optimizer = _without_module(training["optimizer_config"])
        for key in ("jit_compile", "is_legacy_optimizer"):  # tf.keras 2's, no effect here
            optimizer["config"].pop(key, None)
        compile_from_config(model, {**_without_module(training), "optimizer": optimizer},
                            custom_objects)
    return model


def _unwrap_single_io(config: dict) -> dict:
    """tf.keras 2 lists a single input or output as `[[name, node, tensor]]`; its models
    still took and returned one tensor (Keras 3 writes `[name, node, tensor]`)."""
    inner = config.get("config") or {}
    for key in ("input_layers", "output_layers"):
        value = inner.get(key)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
            inner[key] = value[0]
    return config


def _h5_text(value: Any) -> str:
    """An HDF5 string attribute as `str`."""
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


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
