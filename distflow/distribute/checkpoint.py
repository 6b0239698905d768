"""Parameter-server checkpoints: atomic, checksummed, no pickle.

A checkpoint is a safetensors file written by `distflow.serialization` (one
CRC-32 per tensor, written to a temporary file, fsynced, renamed into place,
directory fsynced), so other tools can read the arrays. Its `__metadata__`
holds four strings:

    "format":         "distflow-ps-checkpoint"
    "format_version": "3"
    "meta":           JSON of the caller's metadata (version, position,
                      optimizer config, shard, parameter names, run id, ...)
    "checksum":       CRC-32 (8 hex digits) over everything loaded from the
                      file: the other metadata strings, and each tensor's
                      name, dtype, shape and bytes (`_digest`)

So no byte of the file can change what is loaded without failing the check:
a damaged header, metadata or tensor makes the file corrupt
(`CheckpointError`), never a different state. Version 2 files (no checksum)
are still read. A caller may also check the metadata's schema (`load`'s
`validate`; the parameter server's is `check_ps_meta`).

Tensors are named `param/<name>` and `slot/<name>/<slot>` by the server.
Files are named `ckpt-<version, 12 digits>.safetensors`; the newest `keep`
files are kept, and `valid_checkpoints` / `load_latest` fall back to older ones
(with a warning) when the newest does not verify.
"""

from __future__ import annotations

import json
import logging
import math
import os
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from distflow import serialization

log = logging.getLogger("distflow.checkpoint")

FORMAT = "distflow-ps-checkpoint"
FORMAT_VERSION = "3"
READABLE_VERSIONS = ("2", "3")  # 2: before the whole-file checksum
PREFIX, SUFFIX = "ckpt-", ".safetensors"


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupt or not a distflow checkpoint."""


class OtherRunError(ValueError):
    """Valid checkpoints that belong to another run (a server refuses to resume them)."""


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
    header["checksum"] = _digest(header, tensors)
    serialization.save_file(tensors, path, header)
    _prune(root, keep)
    return path


def _prune(root: Path, keep: int) -> None:
    for old in list_checkpoints(root)[max(1, keep):]:
        try:
            old.unlink()
        except OSError as exc:
            log.warning("Could not remove old checkpoint %s: %s", old, exc)


def _digest(header: Mapping[str, str], tensors: Mapping[str, np.ndarray]) -> str:
    """CRC-32 of the metadata strings and of each tensor's name, dtype, shape and
    little-endian bytes, in name order: everything `load` returns."""
    crc = zlib.crc32(json.dumps(dict(header), sort_keys=True).encode())
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        crc = zlib.crc32(json.dumps([name, array.dtype.str, list(array.shape)]).encode(), crc)
        crc = zlib.crc32(memoryview(array.reshape(-1)).cast("B"), crc)
    return f"{crc:08x}"


Validator = Callable[[dict[str, Any], Mapping[str, np.ndarray]], None]


def load(path: str | os.PathLike, validate: Validator | None = None
         ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Reads and verifies one checkpoint.

    Args:
        path: the file.
        validate: called with (meta, tensors); raises `CheckpointError` when
            the metadata does not follow the caller's schema.

    Returns:
        (tensors, meta): writable arrays and the metadata given to `save`.

    Raises:
        CheckpointError: truncated file, bad header, layout, checksum or schema.
    """
    try:
        tensors, header = serialization.load_file(path)
    except serialization.SafetensorsError as exc:
        raise CheckpointError(f"Corrupt checkpoint: {exc}") from None
    except (ValueError, TypeError, KeyError, UnicodeError, OverflowError) as exc:
        raise CheckpointError(f"Corrupt checkpoint {path}: {type(exc).__name__}: "
                              f"{exc}") from None
    _check_header(path, header, tensors)
    try:
        meta = json.loads(header["meta"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint {path}: unreadable metadata ({exc}).") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"Checkpoint {path}: the metadata is not a JSON object.")
    if validate is not None:
        validate(meta, tensors)
    return tensors, meta


def _check_header(path: Any, header: dict[str, str], tensors: Mapping[str, np.ndarray]) -> None:
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a distflow parameter-server checkpoint "
                              f"(format {header.get('format')!r:.50}, expected {FORMAT!r}).")
    version = header.get("format_version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"Checkpoint {path} has format version {version!r:.20}; this "
                              f"distflow reads {', '.join(READABLE_VERSIONS)}.")
    if version == "2" and "checksum" not in header:
        return  # written before the checksum (the tensors still have their CRCs)
    stored = header.pop("checksum", None)  # (a "3" damaged into "2" is still checked)
    if stored != _digest(header, tensors):
        raise CheckpointError(f"Checkpoint {path}: checksum mismatch (stored "
                              f"{stored!r:.20}): the file was damaged after it was written.")


def valid_checkpoints(directory: str | os.PathLike, validate: Validator | None = None
                      ) -> Iterator[tuple[Path, dict[str, np.ndarray], dict[str, Any]]]:
    """The checkpoints of `directory` that verify, newest first, as (path, tensors, meta);
    each one skipped is logged with its problem."""
    for path in list_checkpoints(directory):
        try:
            tensors, meta = load(path, validate)
        except (CheckpointError, OSError) as exc:
            log.warning("Skipping checkpoint %s: %s Falling back to the previous one.",
                        path, exc)
            continue
        yield path, tensors, meta


def load_latest(directory: str | os.PathLike, validate: Validator | None = None
                ) -> tuple[Path, dict[str, np.ndarray], dict[str, Any]] | None:
    """The newest checkpoint that verifies, falling back to older ones with a warning.

    Returns:
        (path, tensors, meta), or None when the directory holds no valid checkpoint.
    """
    return next(valid_checkpoints(directory, validate), None)


# ---------------------------------------------------------------- the server's schema

_MODES = ("sync", "async")


def check_ps_meta(meta: dict[str, Any], tensors: Mapping[str, np.ndarray]) -> None:
    """The schema of a parameter server's checkpoint metadata, checked against its tensors.

    `version` and `shard` ints >= 0, `mode` sync/async, `position` a map of
    scalars, `optimizer` a map with a string `name`, a map `hp` and a number
    or schedule map `learning_rate`, `params` distinct strings each with a
    `param/<name>` tensor, every other tensor a `slot/<param>/<slot>`, and
    `run_id` a string or null and `run_named` a bool when present.

    Raises:
        CheckpointError: naming the first field that does not fit.
    """
    for key in ("version", "shard"):
        _require(_is_count(meta.get(key)), key, meta.get(key))
    _require(meta.get("mode") in _MODES, "mode", meta.get("mode"))
    position = meta.get("position")
    _require(isinstance(position, dict) and all(
        isinstance(v, int | float | str | bool) for v in position.values()), "position", position)
    _check_optimizer(meta.get("optimizer"))
    _require(meta.get("run_id") is None or isinstance(meta.get("run_id"), str), "run_id",
             meta.get("run_id"))
    _require(isinstance(meta.get("run_named", False), bool), "run_named", meta.get("run_named"))
    names = meta.get("params")
    _require(isinstance(names, list) and all(isinstance(n, str) for n in names)
             and len(set(names)) == len(names), "params", names)
    expected = {f"param/{n}" for n in names}
    _require(expected <= tensors.keys(), "params", sorted(expected - tensors.keys())[:5])
    slots = [t for t in tensors if t not in expected]
    _require(all(t.startswith("slot/") and t[5:].rpartition("/")[0] in names for t in slots),
             "tensors", slots[:5])


def _check_optimizer(optimizer: Any) -> None:
    _require(isinstance(optimizer, dict) and isinstance(optimizer.get("name"), str)
             and isinstance(optimizer.get("hp", {}), dict), "optimizer", optimizer)
    rate = optimizer.get("learning_rate", 0.01)
    _require(isinstance(rate, dict) or (isinstance(rate, int | float) and not isinstance(
        rate, bool) and math.isfinite(rate) and rate >= 0), "optimizer.learning_rate", rate)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _require(ok: bool, field: str, value: Any) -> None:
    if not ok:
        raise CheckpointError(f"The checkpoint's metadata does not fit the parameter "
                              f"server's schema: `{field}` is {value!r:.200}.")
