"""Custom objects: `register_keras_serializable`, `custom_object_scope`, the registered names.

Keras 3's object registration (`keras.saving.*`, also under `keras.utils`):

* `register_keras_serializable(package="Custom", name=None)` records a class or a
  function under `"package>name"` in the global dictionary `get_custom_objects()`;
* `CustomObjectScope({name: obj})` (alias `custom_object_scope`) makes objects known
  by name inside a `with` block, for this thread, replacing the scope entered
  before it (as Keras does);
* `get_registered_name(obj)` / `get_registered_object(name)` translate between the
  two; the loaders (`load_model`, layer and object deserialization) ask
  `lookup(class_name)`, which also finds a registered class by its bare name.

Standard library only, so every loader can import it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any

# The public names: `keras.saving` and `keras.utils` re-export exactly these.
__all__ = ["CustomObjectScope", "custom_object_scope", "get_custom_objects",
           "get_registered_name", "get_registered_object", "register_keras_serializable"]

_GLOBAL_CUSTOM_OBJECTS: dict[str, Any] = {}
_GLOBAL_CUSTOM_NAMES: dict[Any, str] = {}
_SCOPE = threading.local()  # .objects: the innermost CustomObjectScope's dict


class CustomObjectScope:
    """Objects known by name to deserialization while the scope is entered.

    Example:
        >>> with CustomObjectScope({"MyLayer": MyLayer}):
        ...     model = load_model("m.keras")

    Args:
        custom_objects: a dict `{name: class or function}` (None: an empty scope).
    """

    def __init__(self, custom_objects: Mapping[str, Any] | None = None):
        if custom_objects is not None and not isinstance(custom_objects, Mapping):
            raise TypeError("`custom_objects` must be a dict of {name: object}. Received: "
                            f"custom_objects={custom_objects!r}")
        self.custom_objects = dict(custom_objects or {})
        self.backup: dict[str, Any] | None = None

    def __enter__(self) -> CustomObjectScope:
        self.backup = dict(_scope_objects())
        _SCOPE.objects = dict(self.custom_objects)
        return self

    def __exit__(self, *exc: Any) -> None:
        _SCOPE.objects = dict(self.backup or {})


custom_object_scope = CustomObjectScope


def _scope_objects() -> dict[str, Any]:
    return getattr(_SCOPE, "objects", {})


def get_custom_objects() -> dict[str, Any]:
    """The global dictionary of registered objects (`{"package>name": obj}`), mutable.

    Adding `get_custom_objects()["MyLayer"] = MyLayer` makes `MyLayer` known to every
    loader, as in Keras. Scoped objects (`CustomObjectScope`) are not in it.
    """
    return _GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package: str = "Custom", name: str | None = None
                                ) -> Callable[[Any], Any]:
    """A decorator registering a class or function under `"package>name"`.

    Registered layers and models are found again when a file names them, here and in
    Keras 3 (which must register the same name). Registering the same name again for
    a class of the same qualified name (a notebook cell run twice) replaces it.

    Args:
        package: the package part of the registered name.
        name: the name part (default: the object's `__name__`).

    Raises:
        ValueError: (when decorating) for a class without `get_config()`, or a name
            already registered to another object.
    """
    def decorator(arg: Any) -> Any:
        registered = f"{package}>{name if name is not None else arg.__name__}"
        if inspect.isclass(arg) and not hasattr(arg, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() "
                             f"method. Received: {arg.__name__}")
        old = _GLOBAL_CUSTOM_OBJECTS.get(registered)
        if old is not None and old is not arg and \
                getattr(old, "__qualname__", None) != getattr(arg, "__qualname__", None):
            raise ValueError(f"{registered} has already been registered to {old}. "
                             f"Received: {arg}")
        _GLOBAL_CUSTOM_OBJECTS[registered] = arg
        _GLOBAL_CUSTOM_NAMES[arg] = registered
        return arg

    return decorator


def get_registered_name(obj: Any) -> str:
    """`"package>name"` for a registered object, else its `__name__`."""
    try:
        return _GLOBAL_CUSTOM_NAMES[obj]
    except (KeyError, TypeError):  # TypeError: an unhashable object is never registered
        return obj.__name__


def get_registered_object(name: str, custom_objects: Mapping[str, Any] | None = None,
                          module_objects: Mapping[str, Any] | None = None) -> Any:
    """The object registered as `name`, or None.

    Looks in the entered `CustomObjectScope`, the global dictionary, then
    `custom_objects` and `module_objects`, in Keras's order.
    """
    for table in (_scope_objects(), _GLOBAL_CUSTOM_OBJECTS, custom_objects or {},
                  module_objects or {}):
        if name in table:
            return table[name]
    return None


def lookup(name: str, custom_objects: Mapping[str, Any] | None = None,
           builtin: Callable[[str], Any] | None = None) -> Any:
    """What a loader resolves `name` (a class or function name) to, or None.

    `custom_objects` first, then `get_registered_object`, then `builtin(name)` (the
    loader's own class of that name, or None), then a registered object whose bare name (after
    `>`) is `name`: configs store the class name alone. A user's `my>Dense` is found
    by "my>Dense", and by "Dense" only where no built-in Dense exists.
    """
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    found = get_registered_object(name)
    if found is None and builtin is not None:
        found = builtin(name)
    if found is not None:
        return found
    matches = [obj for key, obj in _GLOBAL_CUSTOM_OBJECTS.items()
               if key.rpartition(">")[2] == name]
    if not matches and custom_objects:  # {"Name": cls} given for a "package>Name" entry
        return custom_objects.get(name.rpartition(">")[2])
    return matches[-1] if matches else None
