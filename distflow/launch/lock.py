"""One run at a time per checkpoint directory: a lock file naming its holder.

The launcher that starts parameter servers with `--checkpoint-dir DIR` creates
`DIR/distflow.lock` (atomically: `O_CREAT | O_EXCL`) holding its host, process
id and run id, and removes it when the run ends. A second run on DIR is
refused with a message naming the holder. A lock left by a launcher that died
is stale: when the holder is on this host and its process is gone, the lock is
taken over (and said so); a holder on another host cannot be checked from here,
so the message says which file to remove once that run is known to be over.
"""

from __future__ import annotations

import json
import os
import socket
import time

LOCK_NAME = "distflow.lock"


class LockError(RuntimeError):
    """The checkpoint directory is held by another run."""


def acquire(directory: str, run_id: str) -> tuple[str, str | None]:
    """Takes the lock of `directory`; returns its path and a note if a stale one was taken over.

    Raises:
        LockError: another live run holds it (the message names host, pid and run id).
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_NAME)
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id,
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    note = None
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            note = _check_stale(path)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(holder, handle)
        return path, note
    raise LockError(f"Could not take the lock {path}: another run keeps creating it.")


def release(path: str) -> None:
    """Removes the lock if it is still this process's."""
    try:
        with open(path, encoding="utf-8") as handle:
            if json.load(handle).get("pid") != os.getpid():
                return
        os.remove(path)
    except (OSError, ValueError):
        pass


def _check_stale(path: str) -> str:
    """Removes a stale lock and says so; raises `LockError` for a live holder."""
    try:
        with open(path, encoding="utf-8") as handle:
            held = json.load(handle)
    except (OSError, ValueError):
        held = {}
    host, pid = held.get("host"), held.get("pid")
    here = host == socket.gethostname()
    if here and isinstance(pid, int) and not _alive(pid):
        os.remove(path)
        return f"took over the stale lock of run {held.get('run_id')!r} (pid {pid} is gone)"
    who = (f"run {held.get('run_id')!r} of the launcher with pid {pid} on host {host!r}, "
           f"since {held.get('since')}") if held else "an unreadable lock file"
    raise LockError(
        f"The checkpoint directory {os.path.dirname(path)} is in use by {who}. Two runs "
        f"writing the same checkpoints would corrupt each other. Wait for that run to end, "
        f"use another --checkpoint-dir, or, if that run is over"
        f"{'' if here else ' (it is on another host)'}, remove {path}.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
