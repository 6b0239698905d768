"""Named NumPy arrays to and from the safetensors format, with NumPy only (never pickle).

Layout of a file (the public safetensors format, so other tools can read ours):

* 8 bytes: little-endian unsigned length N of the header;
* N bytes: a JSON object, padded with spaces to a multiple of 8 bytes,
  `{"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
  "__metadata__": {"<key>": "<string>", ...}}`; offsets are relative to the
  start of the data section;
* the data: each tensor's raw little-endian C-order bytes, back to back.

distflow adds one CRC-32 per tensor in `__metadata__["distflow.crc32"]` (a JSON
string) and checks it when present, so a flipped bit is an error, not silently
wrong weights. Files from other writers (without it) load as well.

Public API: `save_file(tensors, path, metadata)`, `load_file(path)`,
`dumps(tensors, metadata)`, `loads(data)`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import zlib
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np

__all__ = ["SafetensorsError", "atomic_write", "dumps", "load_file", "loads", "save_file"]

_CODES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "i1", "I16": "<i2", "I32": "<i4",
          "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}
_CODE_OF = {(np.dtype(v).kind, np.dtype(v).itemsize): k for k, v in _CODES.items()}
_CRC_KEY = "distflow.crc32"
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's bound
_ALIGN = 8


class SafetensorsError(ValueError):
    """A file or buffer that is not a valid safetensors payload (truncated, corrupt, ...)."""


# --------------------------------------------------------------------------- writing


def _prepare(tensors: Mapping[str, Any]) -> list[tuple[str, np.ndarray, str]]:
    if not isinstance(tensors, Mapping):
        raise TypeError(f"`tensors` must be a dict of name -> array. Received: "
                        f"{type(tensors).__name__}")
    out = []
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError(f"Tensor names must be non-empty strings other than "
                             f"'__metadata__'. Received: name={name!r}")
        arr = np.asarray(getattr(value, "value", value))
        code = _CODE_OF.get((arr.dtype.kind, arr.dtype.itemsize))
        if code is None:
            raise TypeError(f"Tensor '{name}' has dtype {arr.dtype}, which safetensors cannot "
                            f"store. Supported: {sorted(_CODES)} (cast it first).")
        out.append((name, np.asarray(arr, dtype=np.dtype(_CODES[code]), order="C"), code))
    return out


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("`metadata` must be a dict of str -> str (safetensors stores only "
                        f"strings; json.dumps other values). Received: {metadata!r}")
    if _CRC_KEY in metadata:
        raise ValueError(f"The metadata key {_CRC_KEY!r} is reserved by distflow.")
    return dict(metadata)


def _header(prepared: list[tuple[str, np.ndarray, str]], metadata: dict[str, str]) -> bytes:
    entries: dict[str, Any] = {}
    crcs = {}
    offset = 0
    for name, arr, code in prepared:
        entries[name] = {"dtype": code, "shape": list(arr.shape),
                         "data_offsets": [offset, offset + arr.nbytes]}
        crcs[name] = zlib.crc32(memoryview(arr).cast("B")) if arr.nbytes else 0
        offset += arr.nbytes
    entries["__metadata__"] = {**metadata, _CRC_KEY: json.dumps(crcs, separators=(",", ":"))}
    raw = json.dumps(entries, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(len(raw) + 8) % _ALIGN)  # data starts 8-byte aligned
    return len(raw).to_bytes(8, "little") + raw


def _write_to(f: BinaryIO, tensors: Mapping[str, Any], metadata: Mapping | None) -> None:
    prepared = _prepare(tensors)
    f.write(_header(prepared, _check_metadata(metadata)))
    for _, arr, _ in prepared:
        if arr.nbytes:
            f.write(memoryview(arr).cast("B"))


def dumps(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serializes named arrays to safetensors bytes.

    Args:
        tensors: name -> array (NumPy arrays, or anything with a `.value` array).
        metadata: optional str -> str pairs stored in the header.

    Returns:
        The file contents as bytes.
    """
    buf = io.BytesIO()
    _write_to(buf, tensors, metadata)
    return buf.getvalue()


def save_file(tensors: Mapping[str, Any], path: str | os.PathLike,
              metadata: Mapping[str, str] | None = None) -> None:
    """Writes named arrays to `path` atomically (temp file, fsync, rename).

    A crash while writing leaves the previous file (if any) intact.

    Args:
        tensors: name -> array.
        path: destination file.
        metadata: optional str -> str pairs stored in the header.
    """
    atomic_write(path, lambda f: _write_to(f, tensors, metadata))


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Calls `write(file)` on a temporary file beside `path`, then renames it onto `path`.

    The file gets the permissions any new file of the user gets (0o666 less the umask,
    as `open()` gives), not a temporary file's 0o600. A crash or an exception while
    writing leaves the previous file (if any) intact and no temporary file behind.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    """Makes the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reading


def _parse_header(buf: memoryview, source: str) -> tuple[dict, int]:
    if len(buf) < 8:
        raise SafetensorsError(f"{source} is not a safetensors file: it has {len(buf)} bytes, "
                               "fewer than the 8-byte header length (truncated or empty).")
    n = int.from_bytes(buf[:8], "little")
    if n > _MAX_HEADER or 8 + n > len(buf):
        raise SafetensorsError(f"{source} is truncated or not a safetensors file: the header "
                               f"claims {n} bytes but only {len(buf) - 8} follow.")
    try:
        header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError(f"{source} has a corrupt safetensors header ({exc}).") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: the safetensors header is not a JSON object.")
    return header, 8 + n


def _tensor_spec(name: str, entry: Any, source: str) -> tuple[np.dtype, tuple, int, int]:
    def bad(why: str) -> SafetensorsError:
        return SafetensorsError(f"{source}: invalid header entry for tensor '{name}': {why}. "
                                f"Entry: {entry!r}")
    if not isinstance(entry, dict):
        raise bad("not an object")
    code, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if code not in _CODES:
        raise bad(f"unsupported dtype {code!r} (supported: {sorted(_CODES)})")
    if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise bad("shape must be a list of non-negative ints")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise bad("data_offsets must be [begin, end] with 0 <= begin <= end")
    dtype = np.dtype(_CODES[code])
    if offsets[1] - offsets[0] != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise bad(f"{offsets[1] - offsets[0]} bytes do not hold shape {shape} of {code}")
    return dtype, tuple(shape), offsets[0], offsets[1]


def _check_layout(specs: dict[str, tuple], data_len: int, source: str) -> None:
    """Tensors must tile the data section exactly: no overlap, no hole, nothing missing."""
    spans = sorted((begin, end, name) for name, (_, _, begin, end) in specs.items())
    position = 0
    for begin, end, name in spans:
        if begin != position:
            raise SafetensorsError(f"{source}: tensor '{name}' starts at byte {begin} of the "
                                   f"data, expected {position} (overlapping or gap: corrupt).")
        position = end
    if position != data_len:
        what = "truncated" if position > data_len else "has trailing bytes"
        raise SafetensorsError(f"{source} is {what}: the header describes {position} bytes of "
                               f"tensor data, the file holds {data_len}.")


def _parse_metadata(header: dict, source: str) -> tuple[dict[str, str], dict[str, int] | None]:
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{source}: __metadata__ must map strings to strings.")
    crcs = None
    if _CRC_KEY in metadata:
        try:
            crcs = json.loads(metadata.pop(_CRC_KEY))
        except json.JSONDecodeError:
            raise SafetensorsError(f"{source}: corrupt checksum table in the header.") from None
    return metadata, crcs


def _loads(buf: memoryview, source: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    header, start = _parse_header(buf, source)
    metadata, crcs = _parse_metadata(header, source)
    specs = {name: _tensor_spec(name, entry, source) for name, entry in header.items()}
    data = buf[start:]
    _check_layout(specs, len(data), source)
    tensors = {}
    for name, (dtype, shape, begin, end) in specs.items():
        chunk = data[begin:end]
        if crcs is not None and name in crcs and (zlib.crc32(chunk) if end > begin else 0) \
                != crcs[name]:
            raise SafetensorsError(f"{source}: checksum mismatch for tensor '{name}' "
                                   "(the file is corrupt).")
        arr = np.frombuffer(chunk, dtype=dtype).reshape(shape)
        tensors[name] = arr.astype(dtype.newbyteorder("="), copy=False)
    return tensors, metadata


def loads(data: bytes | bytearray | memoryview) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parses safetensors bytes.

    Args:
        data: the bytes of a safetensors file. Pass a `bytearray` to get writable
            arrays without a copy; arrays from `bytes` are read-only views.

    Returns:
        `(tensors, metadata)`: name -> array in the file's order, and the header's
        metadata strings.

    Raises:
        SafetensorsError: the data is truncated, corrupt or not safetensors.
    """
    return _loads(memoryview(data).cast("B"), "The safetensors data")


def load_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a safetensors file (arrays are writable and share one buffer).

    Args:
        path: the file.

    Returns:
        `(tensors, metadata)` as `loads` returns them.

    Raises:
        FileNotFoundError: no such file.
        SafetensorsError: the file is truncated, corrupt or not safetensors.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    return _loads(memoryview(buf), f"File '{path}'")
