"""The per-thread stack of entered sessions (TF1's default session).

Below `core` and `session`: `GraphTensor.eval()` and `Operation.run()` read the
innermost entered session here, and `Session.as_default()` / `with sess:` push onto
it, so neither module imports the other for it.
"""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()


def sessions() -> list:
    """This thread's entered sessions, innermost last (the list itself, to push and pop)."""
    stack = getattr(_local, "sessions", None)
    if stack is None:
        stack = _local.sessions = []
    return stack


def get_default_session() -> Any:
    """The innermost session entered with `with sess:` / `as_default()`, or None."""
    stack = sessions()
    return stack[-1] if stack else None


def default_session(what: Any) -> Any:
    """The default session, or a ValueError saying how to provide one."""
    sess = get_default_session()
    if sess is None:
        raise ValueError(
            f"Cannot evaluate {getattr(what, 'name', what)!r} with `eval()` / `run()`: no "
            "default session is registered. Use `with sess.as_default():` (or `with sess:`, "
            "or an InteractiveSession), or pass `session=sess`.")
    return sess
