"""Interactive logging (`keras.utils.enable_interactive_logging`, ...): where Keras's
messages and progress bars go.

Enabled (the default), messages are written to `sys.stdout`; disabled, they go to
the Python `logging` logger "distflow.keras" at INFO level instead (Keras sends them
to absl's logger), and progress bars are not drawn.
"""

from __future__ import annotations

import logging
import sys
import threading

_STATE = threading.local()  # .interactive: per thread, as Keras's global state


def enable_interactive_logging() -> None:
    """Messages and progress bars go to stdout (the default)."""
    _STATE.interactive = True


def disable_interactive_logging() -> None:
    """Messages go to the "distflow.keras" logger; no progress bars."""
    _STATE.interactive = False


def is_interactive_logging_enabled() -> bool:
    """Whether messages are written to stdout (see the module docstring)."""
    return getattr(_STATE, "interactive", True)


def print_msg(message: str, line_break: bool = True) -> None:
    """Writes `message` to stdout, or logs it when interactive logging is disabled."""
    if is_interactive_logging_enabled():
        sys.stdout.write(message + ("\n" if line_break else ""))
        sys.stdout.flush()
    else:
        logging.getLogger("distflow.keras").info(message)
