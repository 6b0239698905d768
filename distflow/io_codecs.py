"""`tf.io`'s byte codecs: raw bytes to numbers (`decode_raw`), web-safe base64 and
zlib/gzip decompression, on the host with TensorFlow's semantics.

String inputs and results are NumPy arrays of `bytes` (see `distflow.strings`).
"""

from __future__ import annotations

import base64
import gzip
import zlib
from typing import Any

import numpy as np

from distflow.graph.errors import InvalidArgumentError
from distflow.primitive import constant
from distflow.strings import as_bytes
from distflow.tensor import Tensor

_map_bytes = np.vectorize  # element-wise over object arrays of bytes


def decode_raw(input_bytes: Any, out_type: Any, little_endian: bool = True,
               fixed_length: int | None = None, name: str | None = None) -> Tensor:
    """Reinterprets each string's bytes as numbers of `out_type`: shape `input.shape + [n]`.

    All strings must give the same count `n` (or pass `fixed_length`, in bytes:
    longer strings are cut, shorter ones zero-padded).
    """
    dtype = np.dtype(getattr(out_type, "as_numpy_dtype", out_type))
    dtype = dtype.newbyteorder("<" if little_endian else ">")
    arr = as_bytes(input_bytes)
    flat = [_fixed(b, fixed_length) for b in arr.reshape(-1)]
    sizes = {len(b) for b in flat}
    if len(sizes) > 1 or any(n % dtype.itemsize for n in sizes):
        raise InvalidArgumentError(f"decode_raw: every string must hold the same whole number of "
                         f"{dtype.name} values ({dtype.itemsize} bytes each). Received byte "
                         f"lengths {sorted(sizes)}; pass fixed_length= for uneven strings.")
    n = (sizes.pop() if sizes else 0) // dtype.itemsize
    values = [np.frombuffer(b, dtype) for b in flat]
    out = np.stack(values) if values else np.zeros((0, n), dtype)
    return constant(out.astype(dtype.newbyteorder("=")).reshape(arr.shape + (n,)))


def _fixed(b: bytes, length: int | None) -> bytes:
    return b if length is None else b[:length].ljust(length, b"\0")


def encode_base64(input: Any, pad: bool = False, name: str | None = None) -> np.ndarray:  # noqa: A002
    """Web-safe base64 (`-` and `_` for `+` and `/`); `=` padding only with `pad`."""
    def encode(b: bytes) -> bytes:
        text = base64.urlsafe_b64encode(b)
        return text if pad else text.rstrip(b"=")
    return _map_bytes(encode, otypes=[object])(as_bytes(input))


def decode_base64(input: Any, name: str | None = None) -> np.ndarray:  # noqa: A002
    """Decodes web-safe base64, with or without `=` padding."""
    def decode(b: bytes) -> bytes:
        try:
            return base64.urlsafe_b64decode(b + b"=" * (-len(b) % 4))
        except ValueError:
            raise InvalidArgumentError(f"decode_base64: invalid base64 data {b!r}.") from None
    return _map_bytes(decode, otypes=[object])(as_bytes(input))


def decode_compressed(bytes: Any, compression_type: str = "",  # noqa: A002
                      name: str | None = None) -> np.ndarray:
    """Decompresses each string: `"ZLIB"`, `"GZIP"`, or `""` (unchanged)."""
    kinds = {"": lambda b: b, "ZLIB": zlib.decompress, "GZIP": gzip.decompress}
    if compression_type not in kinds:
        raise ValueError(f"compression_type must be '', 'ZLIB' or 'GZIP'. Received: "
                         f"{compression_type!r}")
    return _map_bytes(kinds[compression_type], otypes=[object])(as_bytes(bytes))
