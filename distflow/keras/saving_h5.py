"""Keras's HDF5 weight layouts (via h5py; HDF5 holds arrays, nothing is pickled).

Keras 3 (`model.weights.h5` inside a `.keras` archive, and `*.weights.h5` files): one
group per object, at the path Keras's saver reaches it by, holding `vars/0`, `vars/1`, ...
(the object's own variables, trainable first). Paths: a Sequential's or functional
model's layers under `layers/<name>`, named by class in `model.layers` order
(`dense`, `dense_1`, ...), a layer held in an attribute under the attribute's name
(`cell` of an LSTM, `bn` of a subclassed model), lists of layers by class as above; the
optimizer under `optimizer` (`iterations`, `learning_rate`, then its slots). A layer whose
Keras counterpart keeps its weights in sublayers (MultiHeadAttention) says where with
`_keras_weight_groups()`.

tf.keras 2 (legacy `.h5`): `layer_names` lists the layers with weights in order, each
group's `weight_names` its datasets in `layer.weights` order.

Loading is all or nothing: every array is read and checked against the model before the
first variable is assigned.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

from distflow.keras import saving_config

__all__ = ["keras_layout", "keras_layer_order", "read_keras_weights", "read_legacy_weights",
           "write_keras_weights"]

# Keras's optimizer variables after `iterations` and `learning_rate`: groups of slots,
# each group interleaved per trainable variable (distflow slot names).
_OPTIMIZER_SLOTS = {
    "adam": lambda hp: [("m", "v")] + ([("v_hat",)] if hp.get("amsgrad") else []),
    "adamw": lambda hp: [("m", "v")] + ([("v_hat",)] if hp.get("amsgrad") else []),
    "sgd": lambda hp: [("momentum",)] if hp.get("momentum") else [],
    "rmsprop": lambda hp: [("velocity",)] + ([("momentum",)] if hp.get("momentum") else [])
    + ([("average_gradient",)] if hp.get("centered") else []),
    "adagrad": lambda hp: [("accumulator",)],
}
_INTERNAL = frozenset({"_tracked_layers", "_inbound_nodes", "_outbound_nodes"})


def snake_case(name: str) -> str:
    """Keras's `to_snake_case` (what its saver names list members by)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# --------------------------------------------------------------------------- the layout


def keras_layer_order(model: Any) -> list[Any]:
    """`model.layers` in Keras 3's order (functional models: Keras's depth order)."""
    if getattr(model, "_graph", None) is None or type(model).__name__ == "Sequential":
        return list(model.layers)
    by_name = {layer.name: layer for layer in model.layers}
    order = saving_config.functional_layer_order(model.get_config())
    return [by_name[name] for name in order if name in by_name]


def _is_layer(value: Any) -> bool:
    return hasattr(value, "_own_trainable") and hasattr(value, "_sublayers")


def _children(obj: Any) -> list[tuple[str, Any]]:
    """(attribute, layer or list of layers) in the order Keras's saver visits them."""
    first = []
    graph = getattr(obj, "_graph", None) is not None or type(obj).__name__ == "Sequential"
    if graph:
        first.append(("layers", keras_layer_order(obj)))
    attrs = {k: v for k, v in obj.__dict__.items()
             if not k.startswith("_") and k not in _INTERNAL}
    if hasattr(obj, "compile") and not graph:  # a subclassed Model: Keras's `layers` property
        attrs["layers"] = list(obj.layers)
    rest = []
    for key in sorted(attrs, key=snake_case):
        value = attrs[key]
        if _is_layer(value):
            rest.append((key, value))
        elif isinstance(value, list | tuple | dict):
            items = list(value.values()) if isinstance(value, dict) else list(value)
            if any(_is_layer(v) for v in items):
                rest.append((key, [v for v in items if _is_layer(v)]))
    return first + rest


def keras_layout(model: Any) -> dict[str, tuple[Any, list]]:
    """`path -> (object, its own variables)` of `model` in Keras 3's weights file.

    Raises:
        ValueError: when a variable of the model has no place in the layout (a layer
            keeping sublayers in private attributes): saving it would drop weights.
    """
    out: dict[str, tuple[Any, list]] = {}
    _walk(model, "", out, set())
    placed = {id(v) for _, variables in out.values() for v in variables}
    missing = [v.name for v in model.weights if id(v) not in placed]
    if missing:
        raise ValueError(f"Cannot map the weights {missing} of model '{model.name}' to Keras's "
                         "file layout (their layer keeps sublayers in private attributes). "
                         "Save to a `.safetensors` path, which keeps every weight.")
    return out


def _walk(obj: Any, path: str, out: dict, visited: set) -> None:
    if id(obj) in visited:
        return
    visited.add(id(obj))
    out[path] = (obj, [*obj._own_trainable, *obj._own_non_trainable])
    if hasattr(obj, "_keras_weight_groups") and obj.built:  # Keras keeps them in sublayers
        out[path] = (obj, [])
        for attr, variables in obj._keras_weight_groups().items():
            out[f"{path}/{attr}" if path else attr] = (obj, variables)
    for attr, child in _children(obj):
        where = f"{path}/{attr}" if path else attr
        if isinstance(child, list):
            used: dict[str, int] = {}
            for item in child:
                name = snake_case(type(item).__name__)
                used[name] = used.get(name, -1) + 1
                _walk(item, f"{where}/{name}_{used[name]}" if used[name] else f"{where}/{name}",
                      out, visited)
        else:
            _walk(child, where, out, visited)


# --------------------------------------------------------------------------- Keras 3 files


def write_keras_weights(model: Any, h5: Any, include_optimizer: bool) -> None:
    """Writes `model`'s weights (and optimizer) into the open h5py file `h5`."""
    for path, (obj, variables) in keras_layout(model).items():
        _write_vars(h5, path, getattr(obj, "name", ""), [v.value for v in variables])
    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and optimizer is not None and hasattr(optimizer, "get_state"):
        arrays = _optimizer_arrays(model, optimizer)
        if arrays is not None:
            _write_vars(h5, "optimizer", optimizer.name, arrays)


def _write_vars(h5: Any, path: str, name: str, arrays: list) -> None:
    group = h5.require_group(f"{path}/vars" if path else "vars")
    group.attrs["name"] = name
    for i, array in enumerate(arrays):
        group.create_dataset(str(i), data=np.asarray(array))


def keras_trainable_order(model: Any) -> list:
    """`model.trainable_variables` in Keras 3's order (the optimizer's slot order)."""
    if getattr(model, "_graph", None) is None and type(model).__name__ != "Sequential":
        return list(model.trainable_weights)
    return [v for layer in keras_layer_order(model) for v in layer.trainable_weights]


def _slot_groups(optimizer: Any) -> list[tuple[str, ...]] | None:
    rule = getattr(getattr(optimizer, "rule", None), "name", None)
    groups = _OPTIMIZER_SLOTS.get(rule)
    return None if groups is None else groups(optimizer.hyperparameters())


def _optimizer_arrays(model: Any, optimizer: Any) -> list | None:
    groups = _slot_groups(optimizer)
    if groups is None:
        warnings.warn(f"The state of optimizer {type(optimizer).__name__} is not written: "
                      "distflow maps only Adam, AdamW, SGD, RMSprop and Adagrad slots to "
                      "Keras's layout. Save to a `.safetensors` path to keep it.", stacklevel=4)
        return None
    trainable = keras_trainable_order(model)
    if trainable and not all(v.name in optimizer._slots for v in trainable):
        optimizer.build(trainable)  # fresh slots, as Keras builds an optimizer on loading
    state = optimizer.get_state()
    arrays = [np.asarray(state["iterations"], np.int64)]
    if not _has_schedule(optimizer):
        arrays.append(np.asarray(optimizer.learning_rate.numpy(), np.float32))
    for group in groups:
        arrays += [state[f"{v.name}/{slot}"] for v in trainable for slot in group]
    return arrays


def _has_schedule(optimizer: Any) -> bool:
    return getattr(optimizer, "_learning_rate", None) is not getattr(
        optimizer, "_lr_variable", None)


def read_keras_weights(model: Any, h5: Any, source: str, with_optimizer: bool = False,
                       skip_mismatch: bool = False) -> list[tuple[Any, np.ndarray]]:
    """`(variable, array)` for every variable of `model`, read and checked, not assigned.

    Raises:
        ValueError: a layer's group is missing or holds a different number or shape of
            arrays than the model (naming the path and layer).
    """
    plan, problems = [], []
    for path, (obj, variables) in keras_layout(model).items():
        arrays = _read_vars(h5, path)
        if len(arrays) != len(variables):
            problems.append(f"'{path or '/'}' (layer '{obj.name}'): the model has "
                            f"{len(variables)} variables, the file {len(arrays)}")
        else:
            _pair(variables, arrays, f"at '{path}'", plan, problems)
    if problems and not skip_mismatch:
        raise ValueError(f"{source} does not match model '{model.name}': "
                         + "; ".join(problems))
    if with_optimizer and "optimizer" in h5:
        _plan_optimizer(model, _read_vars(h5, "optimizer"), source)
    return plan


def _pair(variables: list, arrays: list, where: str, plan: list, problems: list) -> None:
    """Appends `(variable, array)` to `plan`, or a shape difference to `problems`."""
    for var, array in zip(variables, arrays):
        if tuple(array.shape) == tuple(var.shape):
            plan.append((var, array))
        else:
            problems.append(f"'{var.name}': model shape {tuple(var.shape)}, {where} "
                            f"{tuple(array.shape)}")


def _read_vars(h5: Any, path: str) -> list[np.ndarray]:
    key = f"{path}/vars" if path else "vars"
    if key not in h5:
        return []
    group = h5[key]
    return [np.asarray(group[str(i)][()]) for i in range(len(group))]


def _plan_optimizer(model: Any, arrays: list, source: str) -> None:
    """Restores the optimizer's step and slots from Keras's list (after the weights)."""
    optimizer = model.optimizer
    groups = _slot_groups(optimizer) if optimizer is not None else None
    if groups is None or not arrays:
        if arrays:
            warnings.warn(f"{source}: the optimizer state is not restored (distflow maps "
                          "Adam, AdamW, SGD, RMSprop and Adagrad only).", stacklevel=4)
        return
    trainable = keras_trainable_order(model)
    skip = 1 if _has_schedule(optimizer) else 2
    expected = skip + len(trainable) * sum(len(g) for g in groups)
    if len(arrays) != expected:
        warnings.warn(f"{source}: the optimizer state is not restored: the file holds "
                      f"{len(arrays)} optimizer variables, {type(optimizer).__name__} over "
                      f"this model has {expected}.", stacklevel=4)
        return
    state, i = {"iterations": np.asarray(arrays[0], np.int64)}, skip
    for group in groups:
        for var in trainable:
            for slot in group:
                state[f"{var.name}/{slot}"] = np.array(arrays[i])
                i += 1
    optimizer.set_state(state)


# --------------------------------------------------------------------------- tf.keras 2 files


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_legacy_weights(model: Any, group: Any, source: str,
                        skip_mismatch: bool = False) -> list[tuple[Any, np.ndarray]]:
    """`(variable, array)` pairs from a tf.keras 2 weights group, matched layer by layer in
    order (the layers with weights), as Keras 2's `load_weights` does.

    Raises:
        ValueError: different numbers of layers or weights, or shapes (naming them).
    """
    names = [_text(n) for n in group.attrs["layer_names"]]
    saved = [(n, [np.asarray(group[n][_text(w)][()]) for w in group[n].attrs["weight_names"]])
             for n in names]
    saved = [(n, arrays) for n, arrays in saved if arrays]
    layers = [layer for layer in keras_layer_order(model) if layer.weights]
    if len(saved) != len(layers):
        raise ValueError(f"{source} holds weights for {len(saved)} layers "
                         f"({[n for n, _ in saved]}) but model '{model.name}' has "
                         f"{len(layers)} layers with weights ({[x.name for x in layers]}).")
    plan, problems = [], []
    for (name, arrays), layer in zip(saved, layers):
        if len(arrays) != len(layer.weights):
            problems.append(f"layer '{layer.name}' has {len(layer.weights)} weights, the "
                            f"file's '{name}' {len(arrays)}")
        else:
            _pair(layer.weights, arrays, f"in the file's '{name}'", plan, problems)
    if problems and not skip_mismatch:
        raise ValueError(f"{source} does not match model '{model.name}': " + "; ".join(problems))
    return plan
