"""`tf.strings`: element-wise string ops on the host, with TensorFlow's semantics.

    import distflow as tf
    tf.strings.lower(["Hello", "World"])   # array([b'hello', b'world'], dtype=object)
    tf.strings.to_number(["1.5", "2"])     # <tf.Tensor [1.5 2. ] float32>

Tensors hold numbers, so string results are NumPy arrays of `bytes` (what
TensorFlow's `.numpy()` gives for a `tf.string` tensor); numeric results
(lengths, parsed numbers, hash buckets, matches) are tensors. Inputs may be
`str`, `bytes`, lists or arrays of either; text is encoded as UTF-8.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from distflow.errors import InvalidArgumentError
from distflow.farmhash import fingerprint64
from distflow.primitive import _to_bytes, constant, string_array
from distflow.ragged import RaggedTensor
from distflow.tensor import Tensor

__all__ = ["as_string", "bytes_split", "join", "length", "lower", "reduce_join", "regex_full_match",
           "regex_replace", "split", "strip", "substr", "to_hash_bucket_fast", "to_number",
           "unsorted_segment_join", "upper"]


def as_bytes(value: Any) -> np.ndarray:
    """`value` as an object array of `bytes` (the form string results take)."""
    if isinstance(value, Tensor):
        raise TypeError(f"Expected a string tensor (a str/bytes array). Received: a "
                        f"{value.dtype.name} tensor; convert numbers with tf.strings.as_string.")
    return string_array(value)


def _map(fn, value: Any, otype: Any = object) -> np.ndarray:
    arr = as_bytes(value)
    if not arr.size:
        return arr.astype(otype)
    return np.vectorize(fn, otypes=[otype])(arr)


# ------------------------------------------------------------ element-wise


def length(input: Any, unit: str = "BYTE") -> Tensor:  # noqa: A002
    """Length of each string in bytes (`unit="BYTE"`) or code points (`"UTF8_CHAR"`), int32."""
    if unit not in ("BYTE", "UTF8_CHAR"):
        raise ValueError(f"unit must be 'BYTE' or 'UTF8_CHAR'. Received: unit={unit!r}")
    size = len if unit == "BYTE" else (lambda b: len(b.decode()))
    return constant(_map(size, input, np.int32))


def lower(input: Any, encoding: str = "") -> np.ndarray:  # noqa: A002
    """ASCII letters to lower case (all of Unicode with `encoding="utf-8"`)."""
    if encoding:
        return _map(lambda b: b.decode(encoding).lower().encode(encoding), input)
    return _map(bytes.lower, input)


def upper(input: Any, encoding: str = "") -> np.ndarray:  # noqa: A002
    """ASCII letters to upper case (all of Unicode with `encoding="utf-8"`)."""
    if encoding:
        return _map(lambda b: b.decode(encoding).upper().encode(encoding), input)
    return _map(bytes.upper, input)


def strip(input: Any) -> np.ndarray:  # noqa: A002
    """Removes leading and trailing ASCII whitespace."""
    return _map(bytes.strip, input)


def regex_replace(input: Any, pattern: str, rewrite: str,  # noqa: A002
                  replace_global: bool = True) -> np.ndarray:
    """Replaces matches of `pattern` by `rewrite` (`\\1` names a group), all or the first."""
    rx = re.compile(_to_bytes(pattern))
    count = 0 if replace_global else 1
    template = re.sub(rb"\\(\d)", rb"\\g<\1>", _to_bytes(rewrite))  # RE2's \0 is the match
    return _map(lambda b: rx.sub(template, b, count=count), input)


def regex_full_match(input: Any, pattern: str) -> Tensor:  # noqa: A002
    """Whether each whole string matches `pattern` (bool)."""
    rx = re.compile(_to_bytes(pattern))
    return constant(_map(lambda b: rx.fullmatch(b) is not None, input, np.bool_))


def substr(input: Any, pos: Any, len: Any, unit: str = "BYTE") -> np.ndarray:  # noqa: A002
    """The `len` bytes (or UTF-8 characters) from `pos` (negative counts from the end)."""
    if unit not in ("BYTE", "UTF8_CHAR"):
        raise ValueError(f"unit must be 'BYTE' or 'UTF8_CHAR'. Received: unit={unit!r}")
    arr = as_bytes(input)
    starts, sizes = np.broadcast_to(np.asarray(pos), arr.shape), np.broadcast_to(
        np.asarray(len), arr.shape)
    out = np.empty(arr.shape, object)
    for idx in np.ndindex(arr.shape):
        out[idx] = _substr(arr[idx], int(starts[idx]), int(sizes[idx]), unit)
    return out


def _substr(b: bytes, pos: int, size: int, unit: str) -> bytes:
    text = b if unit == "BYTE" else b.decode()
    n = builtin_len(text)
    if pos > n or pos < -n:
        raise InvalidArgumentError(f"pos {pos} out of range for string {b!r} of length {n}.")
    start = pos if pos >= 0 else n + pos
    piece = text[start:start + max(size, 0)]
    return piece if unit == "BYTE" else piece.encode()


builtin_len = len


# ------------------------------------------------------------ conversions


def to_number(string_tensor: Any, out_type: Any = np.float32) -> Tensor:
    """Parses each string as a number of `out_type` (float32 by default)."""
    dtype = np.dtype(getattr(out_type, "as_numpy_dtype", out_type))
    parse = float if dtype.kind == "f" else int

    def number(b: bytes):
        try:
            return parse(b.decode().strip())
        except ValueError:
            raise InvalidArgumentError(f"StringToNumberOp could not correctly convert string: "
                             f"{b.decode()!r} to {dtype.name}.") from None
    return constant(_map(number, string_tensor, dtype))


def as_string(input: Any, precision: int = -1, scientific: bool = False,  # noqa: A002
              shortest: bool = False, width: int = -1, fill: str = "") -> np.ndarray:
    """Formats each number as text: `%f`-style floats (or `%e` / `%g`), `%d` integers,
    `true`/`false` booleans, padded with `fill` to `width`."""
    arr = np.asarray(input.numpy() if isinstance(input, Tensor) else input)
    if arr.dtype.kind in "OSU":
        return as_bytes(arr)
    if scientific and shortest:
        raise ValueError("Cannot select both scientific and shortest notation.")
    spec = "%" + (fill if fill else "") + (str(width) if width > -1 else "")
    if arr.dtype.kind == "f":
        spec += (f".{precision}" if precision > -1 else "") + (
            "e" if scientific else "g" if shortest else "f")
    elif arr.dtype.kind == "b":
        return _map(lambda v: b"true" if v else b"false", arr.astype(bool).astype(object))
    else:
        spec += "d"
    return np.vectorize(lambda v: (spec % v).encode(), otypes=[object])(arr)


def to_hash_bucket_fast(input: Any, num_buckets: int) -> Tensor:  # noqa: A002
    """FarmHash Fingerprint64 of each string modulo `num_buckets` (int64), as TF."""
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1. Received: num_buckets={num_buckets}")
    return constant(_map(lambda b: fingerprint64(b) % num_buckets, input, np.int64))


def _fingerprint_bytes(value: int) -> bytes:
    return int(value).to_bytes(8, "little")


def fingerprint(data: Any, method: str = "farmhash64", name: str | None = None) -> Tensor:
    """FarmHash Fingerprint64 of each row of `data` (the first axis is the batch), as the
    `[batch, 8]` uint8 little-endian bytes TF gives.

    A numeric row is hashed as its raw little-endian bytes; a row of one string as that
    string; a row of several strings as the concatenation of their fingerprints.
    """
    if method != "farmhash64":
        raise ValueError(f"Unsupported fingerprint method: {method!r} (only 'farmhash64').")
    arr = data.numpy() if isinstance(data, Tensor) else np.asarray(data)
    if arr.ndim < 1:
        raise ValueError(f"tf.fingerprint needs data of rank >= 1 (a batch). Received: "
                         f"shape={arr.shape}")
    if arr.dtype.kind in "OSU":
        rows = [_string_row(as_bytes(row).reshape(-1)) for row in arr]
    else:
        rows = [np.ascontiguousarray(row).astype(row.dtype.newbyteorder("<")).tobytes()
                for row in arr]
    out = [np.frombuffer(_fingerprint_bytes(fingerprint64(r)), np.uint8) for r in rows]
    return constant(np.stack(out) if out else np.zeros((0, 8), np.uint8))


def _string_row(row: np.ndarray) -> bytes:
    if row.size == 1:
        return row[0]
    return b"".join(_fingerprint_bytes(fingerprint64(s)) for s in row)


# ------------------------------------------------------------ splits


def _pieces(fn, input: Any) -> Any:  # noqa: A002
    arr = as_bytes(input)
    if arr.ndim == 0:
        return string_array(fn(arr.item()))
    if arr.ndim != 1:
        raise ValueError(f"Splitting takes a scalar or a vector of strings. Received: shape="
                         f"{arr.shape}")
    rows = [fn(b) for b in arr]
    return RaggedTensor.from_row_lengths(string_array([p for r in rows for p in r]),
                                         [len(r) for r in rows])


def split(input: Any, sep: str | None = None, maxsplit: int = -1,  # noqa: A002
          name: str | None = None) -> Any:
    """Splits each string on `sep` (runs of whitespace when None, dropping empty pieces);
    a vector of strings gives a RaggedTensor of rows, a scalar one array of pieces."""
    delimiter = None if sep is None else _to_bytes(sep)
    if delimiter == b"":
        raise ValueError("sep must not be empty (use tf.strings.bytes_split).")
    return _pieces(lambda b: b.split(delimiter, maxsplit), input)


def bytes_split(input: Any, name: str | None = None) -> Any:  # noqa: A002
    """Each string's single bytes (a RaggedTensor for a vector of strings)."""
    return _pieces(lambda b: [b[i:i + 1] for i in range(len(b))], input)


# ------------------------------------------------------------ joins


def join(inputs: Any, separator: str = "") -> np.ndarray:
    """Joins the strings of the (broadcast) inputs element-wise with `separator`."""
    parts = np.broadcast_arrays(*[as_bytes(x) for x in inputs])
    sep = _to_bytes(separator)
    out = np.empty(parts[0].shape, object)
    for idx in np.ndindex(out.shape):
        out[idx] = sep.join(p[idx] for p in parts)
    return out


def reduce_join(inputs: Any, axis: Any = None, keepdims: bool = False,
                separator: str = "") -> np.ndarray:
    """Joins strings along `axis` (all axes when None) with `separator`."""
    arr = as_bytes(inputs)
    axes = tuple(range(arr.ndim)) if axis is None else tuple(
        a % arr.ndim for a in np.atleast_1d(axis))
    rest = [a for a in range(arr.ndim) if a not in axes]
    moved = np.transpose(arr, rest + list(axes))
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    sep = _to_bytes(separator)
    out = np.empty(flat.shape[:-1], object)
    for idx in np.ndindex(out.shape):
        out[idx] = sep.join(flat[idx])
    if keepdims:
        out = np.expand_dims(out, axes)
    return out


def unsorted_segment_join(inputs: Any, segment_ids: Any, num_segments: int,
                          separator: str = "") -> np.ndarray:
    """Joins the strings of each segment (in input order); empty for segments with none."""
    arr = as_bytes(inputs)
    ids = np.asarray(segment_ids.numpy() if isinstance(segment_ids, Tensor) else segment_ids)
    if ids.shape != arr.shape:
        raise ValueError(f"segment_ids must have the shape of inputs {arr.shape}. Received: "
                         f"segment_ids.shape={ids.shape}")
    groups: list[list[bytes]] = [[] for _ in range(int(num_segments))]
    for value, i in zip(arr.reshape(-1), ids.reshape(-1)):
        if 0 <= i < num_segments:
            groups[int(i)].append(value)
    out = np.empty(int(num_segments), object)
    out[:] = [_to_bytes(separator).join(g) for g in groups]
    return out
