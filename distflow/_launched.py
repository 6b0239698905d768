"""What a process started by the launcher changes in itself on `import distflow`.

Only under the launcher (`DISTFLOW_ROLE` set): an uncaught `KeyboardInterrupt`
(Ctrl-C, which the launcher forwards to every process) prints one line instead
of a traceback per process. Scripts that catch it behave as usual, and the
process still ends as interrupted by SIGINT.
"""

from __future__ import annotations

import sys
from types import TracebackType

_previous = sys.excepthook


def _quiet_interrupt(kind: type[BaseException], value: BaseException,
                     traceback: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        print("interrupted (Ctrl-C): stopping", file=sys.stderr, flush=True)
        return
    _previous(kind, value, traceback)


def install() -> None:
    """Installs the quiet interrupt hook (once)."""
    if sys.excepthook is not _quiet_interrupt:
        sys.excepthook = _quiet_interrupt
