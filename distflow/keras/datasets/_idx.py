"""Reader of IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the values in C
order. The files are usually gzip-compressed; compression is detected from the
gzip magic bytes, not from the file name.

Every inconsistency (bad magic, unknown type, data shorter or longer than the
header says, broken gzip stream) raises `IdxFormatError` naming the file, so a
damaged download never turns into a garbage array.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

_GZIP_MAGIC = b"\x1f\x8b"
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxFormatError(ValueError):
    """A file is not a valid IDX file (or not a valid gzip of one)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Cannot read {path}: {reason}. The file is damaged or is not an "
                         "IDX file; delete it and fetch the data set again.")
        self.path = path


def read_idx(path: str | Path) -> np.ndarray:
    """Reads an IDX file (raw or gzip) into a writable native-endian NumPy array.

    Args:
        path: the file to read.

    Returns:
        An array with the shape and dtype given by the file's header.

    Raises:
        IdxFormatError: the file is not a complete, consistent IDX file.
        OSError: the file cannot be opened.
    """
    path = Path(path)
    data = _read_bytes(path)
    dtype, dims, offset = _parse_header(path, data)
    expected = math.prod(dims) * dtype.itemsize
    actual = len(data) - offset
    if actual < expected:
        raise IdxFormatError(path, f"truncated: the header announces shape {dims} "
                                   f"({expected} bytes of data) but only {actual} bytes follow")
    if actual > expected:
        raise IdxFormatError(path, f"{actual - expected} unexpected bytes after the "
                                   f"{expected} bytes of data announced for shape {dims}")
    values = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=offset)
    return values.reshape(dims).astype(dtype.newbyteorder("="))  # a native, writable copy


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as file:
        data = file.read()
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # bad header, CRC, or cut short
        raise IdxFormatError(path, f"broken gzip data ({exc})") from None


def _parse_header(path: Path, data: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    if len(data) < 4:
        raise IdxFormatError(path, f"only {len(data)} bytes, too short for an IDX header")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in _TYPES or ndim == 0:
        raise IdxFormatError(path, f"bad magic number 0x{data[:4].hex()} (expected 0x0000 "
                                   "then a type code such as 0x08 and the number of "
                                   "dimensions, e.g. 0x00000803 for images)")
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise IdxFormatError(path, f"truncated header: {ndim} dimensions need {offset} "
                                   f"bytes, the file has {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:offset])
    return np.dtype(_TYPES[type_code]), tuple(dims), offset
