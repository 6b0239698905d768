"""Keras 3's `config.json` format, to and from distflow's `{"class_name", "config"}` dicts.

Keras 3 writes every object as `{"module", "class_name", "config", "registered_name"}`
(layers add `build_config`; functional layers `name` and `inbound_nodes`), dtypes as
`DTypePolicy` objects and the tensors a functional layer is called on as
`{"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history"}}`.
tf.keras 2 (legacy `.h5` files) writes no `module`, dtypes as strings and nodes as
`[[layer, node, tensor, kwargs], ...]`. `to_keras` and `from_keras` translate;
`from_keras` raises, naming the class and the field, when a file asks for something
distflow does not implement (a field it lacks, set to a value other than Keras's default):
nothing is dropped silently.

Custom classes are named `package>Name` by `register_keras_serializable`, as in Keras.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from distflow.keras.saving_registry import get_registered_name, lookup

__all__ = ["from_keras", "functional_layer_order", "to_keras"]

# Fields of Keras 3 configs distflow's classes lack; a file may hold them at these values
# (Keras's defaults: the behaviour distflow has), any other value is an error.
KERAS_ONLY_DEFAULTS: dict[str, Any] = {
    "quantization_config": None, "lora_rank": None, "lora_alpha": None, "optional": False,
    "synchronized": False, "renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99,
    "input_axes": None, "output_axes": None, "activity_regularizer": None, "sparse": False,
    "ragged": False, "unroll": False, "stateful": False,
    "autocast": True, "shared_object_id": None, "seed": None, "groups": 1, "mask_zero": False,
    "build_input_shape": None, "input_dtype": None, "implementation": 2, "time_major": False,
    "reset_after": True, "use_cudnn": "auto", "recurrent_dropout": 0.0, "dropout": 0.0,
    "noise_shape": None, "data_format": "channels_last", "batch_size": None,
    "input_length": None, "rms_scaling": False, "use_gate": False, "flash_attention": None,
}
# Fields accepted whatever their value: distflow's RNNs always give zeros at masked steps of
# their sequence output (Keras's `zero_output_for_mask=True`, which Bidirectional sets; a
# plain Keras LSTM carries the previous output there). Refusing it would refuse every RNN.
_TOLERATED = frozenset({"zero_output_for_mask"})
_LAYER_KEYS = ("layers", "layer", "cell", "forward_layer", "backward_layer", "cells")
_OBJECT_MODULES = (("_initializer", "keras.initializers"), ("_regularizer", "keras.regularizers"),
                   ("_constraint", "keras.constraints"))
_MODEL_MODULES = {"Sequential": "keras", "Functional": "keras.src.models.functional",
                  "Model": "keras"}


# --------------------------------------------------------------------------- distflow -> Keras


def to_keras(entry: dict[str, Any], specs: dict[tuple, tuple] | None = None,
             classes: dict[str, type] | None = None) -> dict[str, Any]:
    """Keras 3's form of a layer or model dict from `saving.serialize_model`.

    Args:
        entry: `{"class_name", "config", ...}`.
        specs: `(layer name, node, tensor) -> (shape, dtype)` of the functional tensors.
        classes: layer name -> class, for the registered names of custom classes.
    """
    specs, classes = specs or {}, classes or {}
    name = entry["class_name"]
    cls = classes.get((entry.get("config") or {}).get("name"))
    config = _config_to_keras(name, entry.get("config") or {}, specs, classes)
    module, registered = _MODEL_MODULES.get(name, "keras.layers"), None
    if cls is not None and not cls.__module__.startswith("distflow."):
        registered = get_registered_name(cls)  # a custom class: Keras finds it by this
        module = None if ">" in registered else cls.__module__
    if name == "Functional":
        registered = name  # as Keras 3 writes it
    out = {"module": module, "class_name": name, "config": config,
           "registered_name": registered}
    for key in ("build_config", "compile_config", "name"):
        if key in entry:
            out[key] = entry[key]
    if "inbound_nodes" in entry:
        out["inbound_nodes"] = _tensors_to_keras(entry["inbound_nodes"], specs)
    return out


def _map_config(config: dict, refs: Callable, layer: Callable, obj: Callable,
                leaf: Callable) -> dict:
    """`config` with its tensor references, nested layers, nested objects (initializers,
    dtype policies, ...) and other values converted by the functions given."""
    out = {}
    for key, value in config.items():
        if key in ("input_layers", "output_layers"):
            value = refs(value)
        elif key in _LAYER_KEYS and isinstance(value, list):
            value = [layer(v) for v in value]
        elif key in _LAYER_KEYS and isinstance(value, dict) and "class_name" in value:
            value = layer(value)
        elif isinstance(value, dict) and "class_name" in value and "config" in value:
            value = obj(key, value)
        else:
            value = leaf(key, value)
        out[key] = value
    return out


def _policy(name: str) -> dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def _config_to_keras(class_name: str, config: dict, specs: dict, classes: dict) -> dict:
    if "input_layers" in config and isinstance(config.get("layers"), list):
        rank = {name: i for i, name in enumerate(functional_layer_order(config))}
        config = {**config, "layers": sorted(config["layers"], key=lambda e: rank.get(
            e.get("name", e["config"].get("name")), len(rank)))}
    out = _map_config(config, refs=_refs_to_lists,
                      layer=lambda v: to_keras(v, specs, classes),
                      obj=lambda key, v: {"module": _object_module(key), **v,
                                          "registered_name": None},
                      leaf=lambda key, v: _policy(v) if key == "dtype" and isinstance(v, str)
                      and class_name != "InputLayer" else v)
    if class_name == "Sequential" and config.get("build_input_shape") is not None:
        out["layers"] = [_input_layer(config), *out.get("layers", [])]
        out.pop("input_dtype", None)
    return out


def _input_layer(config: dict) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": config["build_input_shape"],
                       "dtype": config.get("input_dtype") or "float32", "sparse": False,
                       "ragged": False, "name": f"{config['name']}_input"},
            "registered_name": None}


def _object_module(key: str) -> str:
    for suffix, module in _OBJECT_MODULES:
        if key.endswith(suffix):
            return module
    return "keras"


def _refs_to_lists(value: Any) -> Any:
    if isinstance(value, dict) and "__keras_tensor__" in value:
        return list(value["__keras_tensor__"])
    if isinstance(value, list):
        return [_refs_to_lists(v) for v in value]
    return value


def _tensors_to_keras(value: Any, specs: dict) -> Any:
    if isinstance(value, dict) and "__keras_tensor__" in value:
        history = list(value["__keras_tensor__"])
        shape, dtype = specs.get(tuple(history), (None, "float32"))
        return {"class_name": "__keras_tensor__",
                "config": {"shape": shape, "dtype": dtype, "keras_history": history}}
    if isinstance(value, dict):
        return {k: _tensors_to_keras(v, specs) for k, v in value.items()}
    if isinstance(value, list):
        return [_tensors_to_keras(v, specs) for v in value]
    return value


# --------------------------------------------------------------------------- Keras -> distflow


def from_keras(entry: dict[str, Any], custom_objects: dict | None = None,
               where: str = "the file") -> dict[str, Any]:
    """distflow's form of a Keras 3 (or tf.keras 2) layer or model dict.

    Raises:
        ValueError: for a class distflow does not have, or a field it does not implement
            set to a value other than Keras's default (naming the layer, class and field).
    """
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"A layer config in {where} must be a dict with 'class_name' and "
                         f"'config'. Received: {entry!r}")
    cls = _layer_class(entry, custom_objects, where)
    registered = entry.get("registered_name")
    name = entry["class_name"]
    if registered and registered != name:  # found as `package>Name` unless passed as `Name`
        name = registered if lookup(registered, custom_objects) is not None \
            else cls.__name__
    config = dict(entry.get("config") or {})
    label = f"{entry['class_name']} '{config.get('name', entry.get('name', '?'))}' in {where}"
    out: dict[str, Any] = {"class_name": name,
                           "config": _config_from_keras(cls, config, custom_objects, label)}
    for key in ("build_config", "compile_config", "name"):
        if key in entry:
            out[key] = entry[key]
    if "inbound_nodes" in entry:
        out["inbound_nodes"] = [_call_kwargs(cls, _node_from_keras(n), label)
                                for n in entry["inbound_nodes"]]
    return out


def _call_kwargs(cls: type, node: dict, label: str) -> dict:
    """`node` without the call arguments `cls.call` lacks that Keras recorded as None
    (`mask=None`); any other value for one of them is an error."""
    params = inspect.signature(cls.call).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return node
    kwargs = {}
    for key, value in node["kwargs"].items():
        if key in params:
            kwargs[key] = value
        elif value is not None:
            raise ValueError(f"{label} is called with `{key}`={value!r}, which distflow's "
                             f"{cls.__name__}.call does not take.")
    return {**node, "kwargs": kwargs}


def _layer_class(entry: dict, custom_objects: dict | None, where: str) -> type:
    from distflow.keras import layers

    registered = entry.get("registered_name")
    if registered and registered != entry["class_name"]:
        found = lookup(registered, custom_objects)
        if found is None:
            raise ValueError(f"{where} uses the custom class '{registered}': register it with "
                             "`@keras.saving.register_keras_serializable` (same package and "
                             "name) or pass it in `custom_objects`.")
        return found
    try:
        return layers.get_layer_class(entry["class_name"], custom_objects)
    except ValueError:
        raise ValueError(f"{where} holds a layer of class '{entry['class_name']}', which "
                         "distflow does not implement. Pass an equivalent class in "
                         "`custom_objects` or rebuild the model from supported layers.") from None


def _config_from_keras(cls: type, config: dict, custom_objects: dict | None,
                       label: str) -> dict:
    out = _map_config(config, refs=_refs_from_lists,
                      layer=lambda v: from_keras(v, custom_objects, label),
                      obj=lambda key, v: v["config"]["name"] if v["class_name"] == "DTypePolicy"
                      else _object_from_keras(key, v, label),
                      leaf=lambda key, v: v)
    if cls.__name__ == "Sequential":
        _sequential_input(out)
    return _drop_defaults(cls, out, label)


def _sequential_input(config: dict) -> None:
    """Keras 3 lists a Sequential's InputLayer first; distflow keeps its shape and dtype."""
    layers = config.get("layers") or []
    if layers and layers[0]["class_name"] == "InputLayer":
        inner = layers.pop(0)["config"]
        shape = inner.get("batch_shape") or inner.get("batch_input_shape")
        config.setdefault("build_input_shape", shape)
        config["input_dtype"] = inner.get("dtype") or "float32"


def _object_from_keras(key: str, value: dict, label: str) -> dict:
    """An initializer, regularizer or constraint: Keras-only fields checked like a layer's."""
    module = _object_module(key).rpartition(".")[2]
    import importlib

    namespace = importlib.import_module(f"distflow.keras.{module}") if module != "keras" \
        else None
    cls = getattr(namespace, value["class_name"], None) if namespace else None
    config = dict(value.get("config") or {})
    if cls is not None and isinstance(cls, type):
        config = _drop_defaults(cls, config, f"{label} ({key}={value['class_name']})")
    return {"class_name": value["class_name"], "config": config}


def _accepted(cls: type) -> set[str] | None:
    """Keyword arguments `cls` takes (through its MRO, and its RNN cell's), or None when
    that cannot be told (models: their `from_config` decides)."""
    from distflow.keras.layers import base

    if hasattr(cls, "compile"):
        return None
    names: set[str] = set()
    cell = getattr(cls, "cell_class", None)
    for klass in (*cls.__mro__, *(cell.__mro__ if isinstance(cell, type) else ())):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                          p.KEYWORD_ONLY))
        if klass.__module__ == base.__name__:
            names |= set(base._ALLOWED_KWARGS)
    return names or None


def _drop_defaults(cls: type, config: dict, label: str) -> dict:
    """`config` without the Keras-only fields at their defaults; others are an error."""
    accepted = _accepted(cls)
    if accepted is None or _is_graph_config(config):
        return config
    out = {}
    for key, value in config.items():
        if key in accepted or key.endswith("_constraint"):  # every Layer takes constraints
            out[key] = value
        elif key in _TOLERATED or value is None:  # None: a Keras feature not in use
            continue
        elif key in KERAS_ONLY_DEFAULTS and _same(value, KERAS_ONLY_DEFAULTS[key]):
            continue
        else:
            raise ValueError(f"{label} sets `{key}`={value!r}, which distflow's {cls.__name__} "
                             f"does not support (it accepts {sorted(accepted)}). Remove the "
                             "argument from the model or rebuild it without it.")
    return out


def _is_graph_config(config: dict) -> bool:
    return "layers" in config and isinstance(config["layers"], list)


def _same(value: Any, default: Any) -> bool:
    return value == default or (value is None and default in (False, 0, 0.0))


def _refs_from_lists(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return {"__keras_tensor__": list(value)}
    if isinstance(value, list):
        return [_refs_from_lists(v) for v in value]
    return value


def _node_from_keras(node: Any) -> dict[str, Any]:
    """One call of a functional layer: Keras 3's `{"args", "kwargs"}` or tf.keras 2's list."""
    if isinstance(node, list):  # tf.keras 2: [[name, node, tensor, kwargs], ...]
        refs = [{"__keras_tensor__": list(item[:3])} for item in node]
        kwargs = node[0][3] if node and len(node[0]) > 3 else {}
        return {"args": [refs[0] if len(refs) == 1 else refs], "kwargs": kwargs or {}}
    return {"args": _tensors_from_keras(node.get("args", [])),
            "kwargs": _tensors_from_keras(node.get("kwargs", {}))}


def _tensors_from_keras(value: Any) -> Any:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return {"__keras_tensor__": list(value["config"]["keras_history"])}
    if isinstance(value, dict):
        return {k: _tensors_from_keras(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tensors_from_keras(v) for v in value]
    return value


# --------------------------------------------------------------------------- layer order


def functional_layer_order(config: dict[str, Any]) -> list[str]:
    """Layer names of a functional config in the order Keras 3 lists `model.layers`.

    Keras orders by depth (deepest, the inputs, first; depth 0 is the output), ties by
    the order a depth-first walk from the outputs first meets each layer.
    """
    entries = {e.get("name", e["config"].get("name")): e for e in config["layers"]}
    parents = {(name, i): _node_refs(node) for name, e in entries.items()
               for i, node in enumerate(e.get("inbound_nodes") or [])}
    first_seen: dict[str, int] = {}
    ordered_nodes: list[tuple[str, int]] = []
    for name, index, _ in _flat_refs(config.get("output_layers")):
        _visit((name, index), parents, first_seen, ordered_nodes, set())
    node_depth: dict[tuple, int] = {}
    layer_depth: dict[str, int] = {}
    for node in reversed(ordered_nodes):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node[0], 0))
        layer_depth[node[0]] = node_depth[node] = depth
        for parent in parents.get(node, []):
            node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for name, _, _ in _flat_refs(config.get("input_layers")):
        if name not in layer_depth:
            layer_depth[name], first_seen[name] = 0, -1
    return sorted(layer_depth, key=lambda n: (-layer_depth[n], first_seen[n]))


def _visit(node: tuple, parents: dict, first_seen: dict, ordered: list, done: set) -> None:
    stack = [(node, False)]
    while stack:
        current, expanded = stack.pop()
        if expanded:
            ordered.append(current)
            continue
        if current in done:
            continue
        done.add(current)
        first_seen.setdefault(current[0], len(first_seen))
        stack.append((current, True))
        stack.extend((p, False) for p in reversed(parents.get(current, [])))


def _node_refs(node: Any) -> list[tuple[str, int]]:
    return [(name, index) for name, index, _ in _flat_refs(_tensors_from_keras(
        node if isinstance(node, dict) else _node_from_keras(node)))]


def _flat_refs(value: Any) -> list[tuple[str, int, int]]:
    if isinstance(value, dict) and "__keras_tensor__" in value:
        return [tuple(value["__keras_tensor__"])]
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [tuple(value)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _flat_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _flat_refs(v)]
    return []
