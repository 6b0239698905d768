"""Kills the launcher's children if the launcher dies without cleaning up.

The launcher (``launch/children.py``) starts ``python -m
distflow.launch.watchdog GRACE`` in its own session and writes to its stdin
one line per change: ``+PGID`` when a child process group starts, ``-PGID``
when it is reaped, ``exit`` when the launcher ends normally. If stdin
reaches end-of-file without ``exit`` (the launcher was killed, even with
SIGKILL), the watchdog sends SIGTERM to every group still listed, waits up
to GRACE seconds and sends SIGKILL.

This backs up ``PR_SET_PDEATHSIG``, which covers direct children on Linux
only and cannot be escalated to SIGKILL by itself.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def group_alive(pgid: int) -> bool:
    """True if the group's leader is alive and not a zombie (Linux /proc)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pgid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def kill_groups(groups: set[int], grace: float) -> None:
    """SIGTERM each group, wait up to ``grace`` seconds, then SIGKILL the rest."""
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(group_alive(g) for g in groups):
        time.sleep(0.05)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def watch(stream, grace: float) -> int:
    """Follows the launcher's messages on ``stream`` until it ends."""
    groups: set[int] = set()
    for raw in stream:
        line = raw.strip()
        if line == "exit":
            return 0
        if line[:1] in ("+", "-") and line[1:].isdigit():
            (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
    if groups:
        print(f"[launch watchdog] the launcher is gone; stopping {len(groups)} orphaned "
              "process group(s)", file=sys.stderr, flush=True)
        kill_groups(groups, grace)
    return 0


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle
    grace = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    return watch(sys.stdin, grace)


if __name__ == "__main__":
    sys.exit(main())
