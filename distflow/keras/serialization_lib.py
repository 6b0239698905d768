"""Keras 3's object (de)serialization: `serialize_keras_object`, `deserialize_keras_object`.

The dict format is Keras 3's, so configs written here read in Keras and back:

* plain values (None, bool, int, float, str) stay as they are; lists and tuples are
  serialized item by item (a tuple stays a tuple), dicts value by value;
* NumPy arrays become `{"class_name": "__numpy__", "config": {"value", "dtype"}}`,
  tensors `"__tensor__"`, bytes `"__bytes__"`, slices `"__slice__"`, `...`
  `"__ellipsis__"`; NumPy scalars become Python numbers;
* a function becomes `{"module": "builtins", "class_name": "function", "config":
  <registered name>, "registered_name": "function"}`;
* an object with `get_config()` becomes `{"module", "class_name", "config",
  "registered_name"}` (+ `"build_config"` / `"compile_config"` when it has them):
  built-in classes under their public Keras module (`"keras.layers"`,
  `"keras.initializers"`, ...) with `registered_name` None; other classes under
  their Python module with their registered name (`"package>Name"`).

Classes are found in `custom_objects`, the registry (`saving_registry`), then the
Keras namespace the `module` names. The namespaces are imported by name when first
needed, so this module sits below all of them.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from distflow.keras import saving_registry

_PLAIN = (str, int, float, bool)
# Public Keras namespace -> the distflow module holding its classes and functions.
_NAMESPACES = {"layers": "distflow.keras.layers", "losses": "distflow.keras.losses",
               "metrics": "distflow.keras.metrics",
               "optimizers.schedules": "distflow.optimizers.schedules",
               "optimizers": "distflow.optimizers", "initializers": "distflow.keras.initializers",
               "regularizers": "distflow.keras.regularizers",
               "constraints": "distflow.keras.constraints",
               "callbacks": "distflow.keras.callbacks", "activations": "distflow.keras.activations"}
_TOP_LEVEL = ("Model", "Sequential", "Functional")  # Keras files say module "keras"


def serialize_keras_object(obj: Any) -> Any:
    """`obj` as Keras 3's JSON-safe config (see the module docstring for the format).

    Raises:
        TypeError: for an object that has no `get_config()` and no registered name.
        ValueError: for a lambda (Keras stores its bytecode, which is unsafe to load:
            use a named function registered with `register_keras_serializable`).
    """
    if obj is None or isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, list | tuple):
        items = [serialize_keras_object(x) for x in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        return {key: serialize_keras_object(value) for key, value in obj.items()}
    special = _serialize_special(obj)
    if special is not None:
        return special
    if isinstance(obj, types.FunctionType):
        return _serialize_function(obj)
    return _serialize_instance(obj)


def _serialize_special(obj: Any) -> Any:
    """The `__bytes__`/`__numpy__`/... dicts and NumPy scalars; None for anything else."""
    if isinstance(obj, bytes):
        return {"class_name": "__bytes__", "config": {"value": obj.decode("utf-8")}}
    if isinstance(obj, slice):
        return {"class_name": "__slice__", "config": {
            key: serialize_keras_object(getattr(obj, key)) for key in ("start", "stop", "step")}}
    if obj is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if _is_tensor(obj):
        value = np.asarray(obj.numpy())
        return {"class_name": "__tensor__", "config": {"value": value.tolist(),
                                                       "dtype": value.dtype.name}}
    if isinstance(obj, np.ndarray | np.generic):
        if isinstance(obj, np.ndarray) and obj.ndim > 0:
            return {"class_name": "__numpy__", "config": {"value": obj.tolist(),
                                                          "dtype": obj.dtype.name}}
        return obj.item()
    if type(obj).__name__ == "DType" and hasattr(obj, "as_numpy_dtype"):
        return obj.name
    return None


def _is_tensor(obj: Any) -> bool:
    return any(c.__name__ == "Tensor" and c.__module__ == "distflow.tensor"
               for c in type(obj).__mro__)


def _serialize_function(fn: types.FunctionType) -> dict[str, Any]:
    if fn.__name__ == "<lambda>":
        raise ValueError("A lambda cannot be serialized safely (Keras stores its bytecode). "
                         "Use a named function, registered with "
                         "`keras.saving.register_keras_serializable()`. Received: "
                         f"{fn!r}")
    return {"module": "builtins", "class_name": "function",
            "config": saving_registry.get_registered_name(fn), "registered_name": "function"}


def _serialize_instance(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize object {obj!r} of type {cls}. To be serializable, "
                        "a class must implement the `get_config()` method.")
    config = obj.get_config()
    if not isinstance(config, dict):
        raise TypeError(f"The `get_config()` method of {obj!r} should return a dict. It "
                        f"returned: {config!r}")
    public = _public_module(cls)
    out = {"module": public or cls.__module__, "class_name": cls.__name__,
           "config": serialize_keras_object(config),
           "registered_name": None if public else saving_registry.get_registered_name(cls)}
    for key in ("build_config", "compile_config"):
        getter = getattr(obj, f"get_{key}", None)
        value = getter() if callable(getter) else None
        if value is not None:
            out[key] = serialize_keras_object(value)
    return out


def _public_module(cls: type) -> str | None:
    """`"keras.<namespace>"` when `cls` is a built-in class of that namespace, else None."""
    if not cls.__module__.startswith("distflow."):
        return None
    if cls.__name__ in _TOP_LEVEL:
        return "keras"
    for namespace, module_name in _NAMESPACES.items():
        if getattr(importlib.import_module(module_name), cls.__name__, None) is cls:
            return f"keras.{namespace}"
    return None


def deserialize_keras_object(config: Any, custom_objects: Mapping[str, Any] | None = None,
                             safe_mode: bool = True, **kwargs: Any) -> Any:
    """The object `serialize_keras_object`'s (or Keras 3's) `config` describes.

    Args:
        config: the serialized form.
        custom_objects: `{name: class or function}` consulted first.
        safe_mode: refuses `"__lambda__"` configs (always: distflow never loads bytecode).
        **kwargs: accepted for Keras's signature (`module_objects`, `printable_module_name`).

    Raises:
        TypeError: when a class or function named in `config` cannot be found.
    """
    if config is None or isinstance(config, _PLAIN):
        return config
    if isinstance(config, list | tuple):
        items = [deserialize_keras_object(x, custom_objects) for x in config]
        return tuple(items) if isinstance(config, tuple) else items
    if not isinstance(config, Mapping):
        raise TypeError(f"Could not parse config: {config!r}")
    if "class_name" not in config or "config" not in config:
        return {key: deserialize_keras_object(value, custom_objects)
                for key, value in config.items()}
    special = _deserialize_special(config)
    if special is not _NOT_SPECIAL:
        return special
    if config["class_name"] == "function":
        return _function(config, custom_objects)
    return _instance(config, custom_objects)


_NOT_SPECIAL = object()


def _deserialize_special(config: Mapping[str, Any]) -> Any:
    name, inner = config["class_name"], config["config"]
    if name == "__numpy__":
        return np.array(inner["value"], dtype=inner["dtype"])
    if name == "__tensor__":
        from distflow.tensor import Tensor

        return Tensor._wrap(np.array(inner["value"], dtype=inner["dtype"]))
    if name == "__bytes__":
        return inner["value"].encode("utf-8")
    if name == "__slice__":
        return slice(*(deserialize_keras_object(inner[k]) for k in ("start", "stop", "step")))
    if name == "__ellipsis__":
        return Ellipsis
    if name == "__lambda__":
        raise ValueError("Requested the deserialization of a `lambda` (stored as bytecode). "
                         "distflow never loads bytecode: redefine it as a named function and "
                         "pass it in `custom_objects`.")
    return _NOT_SPECIAL


def _function(config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None) -> Any:
    name = config["config"]
    found = saving_registry.lookup(name, custom_objects)
    for namespace in ("activations", "losses", "metrics"):
        if found is None:
            candidate = getattr(importlib.import_module(_NAMESPACES[namespace]), name, None)
            found = candidate if inspect.isfunction(candidate) else None
    if found is None:
        raise TypeError(f"Could not locate function '{name}'. Make sure custom functions are "
                        "decorated with `@keras.saving.register_keras_serializable()` or "
                        f"passed in `custom_objects`. Full object config: {dict(config)}")
    return found


def _instance(config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None) -> Any:
    cls = _find_class(config, custom_objects)
    inner = deserialize_keras_object(config["config"], custom_objects) \
        if not isinstance(config["config"], Mapping) else dict(config["config"])
    if not hasattr(cls, "from_config"):
        raise TypeError(f"Unable to reconstruct an instance of '{cls.__name__}' because the "
                        f"class is missing a `from_config()` method. Full object config: "
                        f"{dict(config)}")
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        obj = cls.from_config(inner, custom_objects=custom_objects)
    else:
        obj = cls.from_config(inner)
    if config.get("build_config") and hasattr(obj, "build_from_config") and \
            not getattr(obj, "built", False):
        obj.build_from_config(config["build_config"])
    if config.get("compile_config") and hasattr(obj, "compile_from_config"):
        obj.compile_from_config(config["compile_config"])
    return obj


def _find_class(config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None) -> type:
    name, registered = config["class_name"], config.get("registered_name")
    for key in (registered, name):
        found = saving_registry.lookup(key, custom_objects,
                                       lambda n: _builtin_class(config, n)) if key else None
        if found is not None:
            return found
    raise TypeError(f"Could not locate class '{name}'. Make sure custom classes are decorated "
                    "with `@keras.saving.register_keras_serializable()` or passed in "
                    f"`custom_objects`. Full object config: {dict(config)}")


def _builtin_class(config: Mapping[str, Any], name: str) -> type | None:
    """distflow's class `name` in the namespace the config's `module` names (else any)."""
    module = str(config.get("module") or "")
    namespaces = [module[len("keras."):]] if module.startswith("keras.") else []
    if module == "keras" or name in _TOP_LEVEL:
        models = importlib.import_module("distflow.keras.models")
        found = getattr(models, name, None) or (models.Model if name == "Functional" else None)
        if found is not None:
            return found
    for namespace in namespaces + [n for n in _NAMESPACES if n not in namespaces]:
        if namespace in _NAMESPACES:
            found = getattr(importlib.import_module(_NAMESPACES[namespace]), name, None)
            if isinstance(found, type):
                return found
    return None


class legacy:  # noqa: N801  (Keras's namespace `keras.utils.legacy`)
    """`keras.utils.legacy`: tf.keras 2's `{"class_name", "config"}` (de)serialization."""

    @staticmethod
    def serialize_keras_object(instance: Any) -> Any:
        """`{"class_name", "config"}` of an object with `get_config()`, a function's name,
        or None."""
        if instance is None:
            return None
        if hasattr(instance, "get_config"):
            return {"class_name": saving_registry.get_registered_name(type(instance)),
                    "config": instance.get_config()}
        if hasattr(instance, "__name__"):
            return saving_registry.get_registered_name(instance)
        raise ValueError(f"Cannot serialize {instance!r}: it has no get_config() or name.")

    @staticmethod
    def deserialize_keras_object(identifier: Any, module_objects: Mapping | None = None,
                                 custom_objects: Mapping | None = None,
                                 printable_module_name: str = "object") -> Any:
        """The object a legacy config (a dict or a function name) describes."""
        if identifier is None:
            return None
        name = identifier["class_name"] if isinstance(identifier, Mapping) else identifier
        if not isinstance(name, str):
            raise ValueError(f"Could not interpret serialized {printable_module_name}: "
                             f"{identifier!r}")
        found = saving_registry.lookup(name, custom_objects) or \
            (module_objects or {}).get(name)
        if found is None:
            raise ValueError(f"Unknown {printable_module_name}: '{name}'. Please ensure you "
                             "are using a `keras.utils.custom_object_scope` and that this "
                             "object is included in the scope.")
        if not isinstance(identifier, Mapping):
            return found
        return found.from_config(identifier.get("config") or {})
