"""`{"class_name", "config"}` serialization shared by losses, metrics, initializers and
regularizers (Keras's `serialize_keras_object` / `deserialize_keras_object` in small)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distflow.keras import saving_registry


def serialize_object(obj: Any, kind: str) -> dict[str, Any]:
    """`{"class_name": ..., "config": obj.get_config()}`.

    Raises:
        ValueError: when `obj` has no `get_config()`.
    """
    if not hasattr(obj, "get_config"):
        raise ValueError(f"Cannot serialize {kind} {obj!r}: it has no get_config(). Use a "
                         f"{kind} class with get_config() or a named function.")
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def class_and_config(config: Any, classes: Mapping[str, type], kind: str,
                     custom_objects: Mapping[str, Any] | None = None,
                     aliases: Mapping[str, type] | None = None) -> tuple[type, dict]:
    """The class a serialized `{"class_name", "config"}` names (custom ones first), and
    a copy of its config.

    Raises:
        ValueError: for a malformed dict, or a class that is neither built in nor in
            `custom_objects` (listing the built-in ones).
    """
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(f"A serialized {kind} is a name or a dict with 'class_name' and 'config'. "
                         f"Received: {config!r}")
    name = config["class_name"]
    cls = (saving_registry.lookup(str(name), custom_objects) or classes.get(name)
           or (aliases or {}).get(str(name)))
    if cls is None:
        raise ValueError(f"Unknown {kind} class: '{name}'. Use one of {sorted(classes)} or "
                         "pass the class in `custom_objects`.")
    return cls, dict(config.get("config") or {})


def snake_case(name: str) -> str:
    """A class name as Keras names its instances: 'MeanSquaredError' -> 'mean_squared_error'."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or
                                   (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
