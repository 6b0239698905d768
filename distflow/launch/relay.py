"""Copying a child's output to the launcher's console, each line prefixed with its process.

A line ends with `\\n`. Text after a `\\r` redraws the current line in place (a
live progress bar): on a terminal the launcher redraws `[worker 0] <text>` in
place too, as soon as the bytes arrive, and only the final text of a line goes
to the process's log and its kept tail. A line of another process written while
a bar is drawn first ends the bar's line, so the two never mix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO

CHUNK = 65536


class Console:
    """One output stream shared by the relays of every process (stdout or stderr)."""

    def __init__(self, stream: IO[str], lock: threading.Lock):
        self.stream, self.lock = stream, lock
        self.open: object | None = None  # the relay whose line is drawn in place
        self.width = 0  # width of that line

    def line(self, owner: object, text: str) -> None:
        """Writes a finished line of `owner` (over its in-place line, if it has one)."""
        if self.open is owner:
            self._write("\r" + text + " " * max(self.width - len(text), 0) + "\n")
        else:
            self._write(("\n" if self.open is not None else "") + text + "\n")
        self.open, self.width = None, 0

    def redraw(self, owner: object, text: str) -> None:
        """Draws `owner`'s unfinished line in place."""
        if self.open is not None and self.open is not owner:
            self._write("\n")
            self.width = 0
        padding = " " * max(self.width - len(text), 0)
        self._write("\r" + text + padding)
        self.open, self.width = owner, len(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # console gone (e.g. piped into head): keep draining the child


def relay(stream: IO[bytes], prefix: str, console: Console,
          keep: Callable[[str, bytes], None]) -> None:
    """Copies `stream` to `console` until EOF; `keep(text, raw)` gets every finished line."""
    pending = b""
    for chunk in iter(lambda: stream.read1(CHUNK), b""):
        pending = _pass(pending + chunk, prefix, console, keep)
    if pending:
        _finish(pending, prefix, console, keep)
    stream.close()


def _pass(data: bytes, prefix: str, console: Console,
          keep: Callable[[str, bytes], None]) -> bytes:
    """Writes the finished lines of `data` and redraws its unfinished one; returns the rest."""
    *lines, rest = data.split(b"\n")
    for raw in lines:
        _finish(raw, prefix, console, keep)
    if b"\r" in rest:
        shown = _last_drawn(rest)
        if shown:
            with console.lock:
                console.redraw(keep, prefix + shown)
        rest = rest[rest.rindex(b"\r"):]  # the line so far is what follows its last \r
    return rest


def _finish(raw: bytes, prefix: str, console: Console,
            keep: Callable[[str, bytes], None]) -> None:
    text = _last_drawn(raw.rstrip(b"\r")) if b"\r" in raw else raw.decode(
        "utf-8", errors="replace")
    with console.lock:
        console.line(keep, prefix + text)
        keep(text, text.encode() + b"\n")


def _last_drawn(raw: bytes) -> str:
    """The text after the last `\\r` that has text (what a terminal would show)."""
    parts = [p for p in raw.split(b"\r") if p]
    return parts[-1].decode("utf-8", errors="replace") if parts else ""
