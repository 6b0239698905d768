"""TF's `name=` keyword on every op: accepted, and used as a name scope while the op runs.

`accept_names(globals())` at the end of a module wraps its public functions that
do not take `name` themselves, so `tf.math.sin(x, name="s")` works as in TF.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import FunctionType
from typing import Any


def accept_name(fn: Callable) -> Callable:
    """`fn`, taking an optional `name=` keyword (ops run inside that name scope)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    if "name" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn

    @functools.wraps(fn)
    def with_name(*args: Any, name: str | None = None, **kwargs: Any) -> Any:
        if name is None:
            return fn(*args, **kwargs)
        from distflow.module import name_scope

        with name_scope(str(name)):
            return fn(*args, **kwargs)

    sig = inspect.signature(fn)
    extra = inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None)
    with_name.__signature__ = sig.replace(parameters=[*sig.parameters.values(), extra])
    return with_name


def accept_names(namespace: dict[str, Any]) -> None:
    """Wraps every public plain function of a module namespace with `accept_name`."""
    for key, value in list(namespace.items()):
        if not key.startswith("_") and type(value) is FunctionType:
            namespace[key] = accept_name(value)
