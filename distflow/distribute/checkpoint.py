"""Parameter-server checkpoints: atomic, checksummed, no pickle.

A checkpoint is a safetensors file written by `distflow.serialization` (one
CRC-32 per tensor, written to a temporary file, fsynced, renamed into place,
directory fsynced), so other tools can read the arrays. Its `__metadata__`
holds three strings:

    "format":         "distflow-ps-checkpoint"
    "format_version": "2"
    "meta":           JSON of the caller's metadata (version, position,
                      optimizer config, shard, parameter names, ...)

Tensors are named `param/<name>` and `slot/<name>/<slot>` by the server. A file
whose layout, header or checksums do not match is corrupt (`CheckpointError`).

Files are named `ckpt-<version, 12 digits>.safetensors`; the newest `keep`
files are kept, and `load_latest` falls back to an older one (with a warning)
when the newest does not verify.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from distflow import serialization

log = logging.getLogger("distflow.checkpoint")

FORMAT = "distflow-ps-checkpoint"
FORMAT_VERSION = "2"
PREFIX, SUFFIX = "ckpt-", ".safetensors"


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupt or not a distflow checkpoint."""


def checkpoint_path(directory: str | os.PathLike, version: int) -> Path:
    """The file name of the checkpoint of `version` in `directory`."""
    return Path(directory) / f"{PREFIX}{version:012d}{SUFFIX}"


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Checkpoint files in `directory`, newest (highest version) first."""
    root = Path(directory)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX)
             and p.name[len(PREFIX):-len(SUFFIX)].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):-len(SUFFIX)]), reverse=True)


def save(directory: str | os.PathLike, version: int, tensors: Mapping[str, np.ndarray],
         meta: Mapping[str, Any], keep: int = 3) -> Path:
    """Writes a checkpoint atomically and removes all but the newest `keep`.

    Args:
        directory: created if missing.
        version: orders the checkpoints (the server's version).
        tensors: name -> array.
        meta: JSON-safe metadata stored beside the arrays.
        keep: how many checkpoints to keep, >= 1.

    Returns:
        The path written.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(root, version)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "meta": json.dumps(dict(meta), sort_keys=True)}
    serialization.save_file(tensors, path, header)
    _prune(root, keep)
    return path


def _prune(root: Path, keep: int) -> None:
    for old in list_checkpoints(root)[max(1, keep):]:
        try:
            old.unlink()
        except OSError as exc:
            log.warning("Could not remove old checkpoint %s: %s", old, exc)


def load(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Reads and verifies one checkpoint.

    Returns:
        (tensors, meta): writable arrays and the metadata given to `save`.

    Raises:
        CheckpointError: truncated file, bad header, layout or checksum mismatch.
    """
    try:
        tensors, header = serialization.load_file(path)
    except serialization.SafetensorsError as exc:
        raise CheckpointError(f"Corrupt checkpoint: {exc}") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a distflow parameter-server checkpoint "
                              f"(format {header.get('format')!r}, expected {FORMAT!r}).")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"Checkpoint {path} has format version "
                              f"{header.get('format_version')!r}; this distflow reads "
                              f"{FORMAT_VERSION!r}.")
    try:
        meta = json.loads(header["meta"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint {path}: unreadable metadata ({exc}).") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"Checkpoint {path}: the metadata is not a JSON object.")
    return tensors, meta


def load_latest(directory: str | os.PathLike) -> tuple[Path, dict[str, np.ndarray],
                                                       dict[str, Any]] | None:
    """The newest checkpoint that verifies, falling back to older ones with a warning.

    Returns:
        (path, tensors, meta), or None when the directory holds no valid checkpoint.
    """
    for path in list_checkpoints(directory):
        try:
            tensors, meta = load(path)
        except (CheckpointError, OSError) as exc:
            log.warning("Skipping checkpoint %s: %s Falling back to the previous one.",
                        path, exc)
            continue
        return path, tensors, meta
    return None
