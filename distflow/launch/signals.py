"""SIGINT/SIGTERM for a launcher: remember the first, forward every one to the children.

Also ``--watch-stdin``: a launcher started over ssh ends (as if it got SIGTERM)
when its stdin closes, i.e. when the ssh client that started it is gone.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

__all__ = ["SignalForwarder"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalForwarder:
    """While installed, SIGINT and SIGTERM go to `forward`; the first one is kept.

    Args:
        forward: called with each signal number (sends it to the children).
    """

    def __init__(self, forward: Callable[[int], None]) -> None:
        self.forward = forward
        self.received: int | None = None  # the first signal, which sets the exit code
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Replaces the SIGINT and SIGTERM handlers (main thread only)."""
        self._previous = {s: signal.signal(s, self._on_signal) for s in SIGNALS}

    def restore(self) -> None:
        """Puts the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame) -> None:
        if self.received is None:
            self.received = signum
        self.forward(signum)

    def watch_stdin(self) -> None:
        """Starts a thread that sends this process SIGTERM when stdin closes."""
        threading.Thread(target=_wait_for_stdin_eof, daemon=True).start()


def _wait_for_stdin_eof() -> None:
    """``--watch-stdin``: our ssh client is gone when stdin closes."""
    try:
        while os.read(0, 4096):  # raw fd: a buffered reader's lock breaks shutdown
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
