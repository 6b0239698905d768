"""`tf.autograph`: distflow traces Python as written, so there is nothing to convert.

`experimental.do_not_convert` returns its function unchanged (also as a bare
decorator), `to_code` says there is no generated code, verbosity settings are
recorded.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

_verbosity = {"level": 0}


def _do_not_convert(func: Callable | None = None) -> Any:
    if func is None:
        return lambda f: f
    return func


def set_verbosity(level: int, alsologtostdout: bool = False) -> None:
    """Recorded; distflow's autograph logs nothing."""
    _verbosity["level"] = int(level)


def to_code(entity: Callable, recursive: bool = True, experimental_optional_features: Any = None
            ) -> str:
    """The function's own source: there is no converted code."""
    return inspect.getsource(entity)


def to_graph(entity: Callable, recursive: bool = True, experimental_optional_features: Any = None
             ) -> Callable:
    """The function itself (it runs as Python)."""
    return entity


def trace(*args: Any) -> None:
    """Prints its arguments (autograph.trace)."""
    print(*args)  # noqa: T201


experimental = SimpleNamespace(
    do_not_convert=_do_not_convert,
    Feature=SimpleNamespace(**{n: n for n in (
        "ALL", "AUTO_CONTROL_DEPS", "ASSERT_STATEMENTS", "BUILTIN_FUNCTIONS",
        "EQUALITY_OPERATORS", "LISTS", "NAME_SCOPES")}),
    set_loop_options=lambda **kwargs: None,
)
