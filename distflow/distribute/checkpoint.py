"""Parameter-server checkpoints: atomic, checksummed, no pickle.

Format (a valid safetensors file, so other tools can read the arrays):

    8 bytes   little-endian u64 N: length of the JSON header
    N bytes   JSON header, space-padded to a multiple of 8 bytes:
              {"__metadata__": {"format": "distflow-ps-checkpoint",
                                "format_version": "1",
                                "distflow": "<JSON string, see below>"},
               "<tensor name>": {"dtype": "F32", "shape": [..],
                                 "data_offsets": [begin, end]}, ...}
    data      the tensors' C-order bytes, offsets relative to the data start

The `distflow` metadata string is JSON: {"meta": {...caller's metadata: version,
epoch, step, optimizer config, shard...}, "crc32": {"<tensor name>": <crc32 of
its bytes>}}. A file whose size, header or checksums do not match is corrupt.

Files are named `ckpt-<version, 12 digits>.safetensors`, written to a temporary
file in the same directory, fsynced, renamed into place (atomic on POSIX) and
the directory fsynced; the newest `keep` files are kept.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("distflow.checkpoint")

FORMAT = "distflow-ps-checkpoint"
PREFIX, SUFFIX = "ckpt-", ".safetensors"
_DTYPES = {"float16": "F16", "float32": "F32", "float64": "F64", "int8": "I8",
           "int16": "I16", "int32": "I32", "int64": "I64", "uint8": "U8", "uint16": "U16",
           "uint32": "U32", "uint64": "U64", "bool": "BOOL"}
_NUMPY = {v: k for k, v in _DTYPES.items()}


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
    arrays = {name: np.ascontiguousarray(a) for name, a in tensors.items()}
    header = _header(arrays, meta)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for arr in arrays.values():
            f.write(memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else b"")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(root)
    _prune(root, keep)
    return path


def _header(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    entries, offset, crcs = {}, 0, {}
    for name, arr in arrays.items():
        if arr.dtype.name not in _DTYPES:
            raise ValueError(f"Cannot checkpoint tensor {name!r}: dtype must be one of "
                             f"{sorted(_DTYPES)}. Received: {arr.dtype.name}")
        entries[name] = {"dtype": _DTYPES[arr.dtype.name], "shape": list(arr.shape),
                         "data_offsets": [offset, offset + arr.nbytes]}
        crcs[name] = zlib.crc32(arr.reshape(-1).view(np.uint8)) if arr.size else 0
        offset += arr.nbytes
    extra = json.dumps({"meta": dict(meta), "crc32": crcs}, sort_keys=True)
    body = {"__metadata__": {"format": FORMAT, "format_version": "1", "distflow": extra},
            **entries}
    raw = json.dumps(body).encode("utf-8")
    return raw + b" " * (-len(raw) % 8)


def _fsync_dir(root: Path) -> None:
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        CheckpointError: truncated file, bad header, size or checksum mismatch.
    """
    data = bytearray(Path(path).read_bytes())
    header, start = _parse_header(data, path)
    extra = _parse_extra(header, path)
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor(data, start, name, entry, path)
        expected = extra["crc32"].get(name)
        actual = zlib.crc32(memoryview(data)[start + entry["data_offsets"][0]:
                                             start + entry["data_offsets"][1]])
        if expected != actual:
            raise CheckpointError(f"Checkpoint {path}: checksum mismatch for tensor {name!r} "
                                  f"(stored {expected}, computed {actual}); the file is corrupt.")
    end = max((e["data_offsets"][1] for n, e in header.items() if n != "__metadata__"),
              default=0)
    if len(data) != start + end:
        raise CheckpointError(f"Checkpoint {path} has {len(data)} bytes; its header "
                              f"describes {start + end}. The file is truncated or corrupt.")
    return tensors, extra["meta"]


def _parse_header(data: bytearray, path: Any) -> tuple[dict, int]:
    if len(data) < 8:
        raise CheckpointError(f"Checkpoint {path} is truncated ({len(data)} bytes).")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise CheckpointError(f"Checkpoint {path} is truncated: header of {length} bytes "
                              f"in a file of {len(data)}.")
    try:
        header = json.loads(bytes(data[8:8 + length]))
    except ValueError as exc:
        raise CheckpointError(f"Checkpoint {path}: unreadable header ({exc}).") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"Checkpoint {path}: the header is not a JSON object.")
    return header, 8 + length


def _parse_extra(header: dict, path: Any) -> dict:
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path} is not a distflow parameter-server checkpoint "
                              f"(format {found!r}).")
    try:
        extra = json.loads(meta["distflow"])
        if not isinstance(extra.get("meta"), dict) or not isinstance(extra.get("crc32"), dict):
            raise ValueError("missing meta or crc32")
    except (KeyError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"Checkpoint {path}: bad distflow metadata ({exc}).") from None
    return extra


def _tensor(data: bytearray, start: int, name: str, entry: Any, path: Any) -> np.ndarray:
    try:
        dtype = np.dtype(_NUMPY[entry["dtype"]])
        shape = tuple(int(d) for d in entry["shape"])
        begin, end = (int(x) for x in entry["data_offsets"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint {path}: bad entry for {name!r} ({exc}).") from None
    if end - begin != math.prod(shape) * dtype.itemsize or start + end > len(data):
        raise CheckpointError(f"Checkpoint {path}: tensor {name!r} lies outside the file or "
                              f"does not match its shape; the file is truncated or corrupt.")
    return np.frombuffer(data, dtype=dtype, count=math.prod(shape),
                         offset=start + begin).reshape(shape)


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
