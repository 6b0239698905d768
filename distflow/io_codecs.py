"""`tf.io`'s byte codecs: raw bytes to numbers (`decode_raw`), CSV records
(`decode_csv`), web-safe base64 and zlib/gzip decompression, on the host with
TensorFlow's semantics.

String inputs and results are NumPy arrays of `bytes` (see `distflow.strings`).
"""

from __future__ import annotations

import base64
import csv
import gzip
import zlib
from typing import Any

import numpy as np

from distflow import png
from distflow.errors import InvalidArgumentError
from distflow.primitive import constant, string_array
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


# ------------------------------------------------------------ CSV


def _column_default(default: Any) -> tuple[np.dtype, Any]:
    """A column's dtype and default value (None: the field is required)."""
    if isinstance(default, list | tuple) and len(default) == 1 and isinstance(default[0], Tensor):
        default = default[0]  # [tf.constant(0, tf.int64)]: the tensor's dtype
    value = default if isinstance(default, Tensor | np.ndarray) else constant(default)
    arr = value if isinstance(value, np.ndarray) else value.numpy()
    dtype = np.dtype(object) if arr.dtype.kind in "OSU" else arr.dtype
    if dtype.kind != "O" and dtype.name not in ("float32", "float64", "int32", "int64"):
        raise TypeError(f"record_defaults must be float32, float64, int32, int64 or string. "
                        f"Received: {dtype.name}")
    return dtype, (arr.reshape(-1)[0] if arr.size else None)


def _fields(record: bytes, delim: str, quoted: bool) -> list[str]:
    text = record.decode()
    if quoted:
        return next(csv.reader([text], delimiter=delim, quotechar='"', doublequote=True))
    return text.split(delim)


def _parse(text: str, dtype: np.dtype, column: int) -> Any:
    if dtype.kind == "O":
        return text.encode()
    try:
        return (float if dtype.kind == "f" else int)(text)
    except ValueError:
        raise InvalidArgumentError(f"Field {column} in record is not a valid {dtype.name}: "
                                   f"{text!r}") from None


def decode_csv(records: Any, record_defaults: Any, field_delim: str = ",",
               use_quote_delim: bool = True, name: str | None = None, na_value: str = "",
               select_cols: Any = None) -> list[Any]:
    """Parses CSV lines into one tensor per column (text columns as arrays of bytes).

    Args:
        records: string(s), one record each; the results have their shape.
        record_defaults: one default per column (e.g. `[[0.0], [0], [""]]`): its dtype
            is the column's, its value fills empty or `na_value` fields; an empty
            default (`tf.constant([], tf.int32)`) makes the field required.
        field_delim: the one-character separator.
        use_quote_delim: `"..."` quotes fields (`""` is a quote inside one).
        select_cols: the (increasing) columns to read, one default each.
    """
    arr = string_array(records)
    columns = [_column_default(d) for d in record_defaults]
    cols = list(range(len(columns))) if select_cols is None else [int(c) for c in select_cols]
    if len(cols) != len(columns) or cols != sorted(set(cols)):
        raise ValueError(f"select_cols must be increasing, one per record default. Received: "
                         f"select_cols={select_cols}")
    out = [np.empty(arr.shape, dtype) for dtype, _ in columns]
    for idx in np.ndindex(arr.shape):
        fields = _fields(arr[idx], field_delim, use_quote_delim)
        if (select_cols is None and len(fields) != len(cols)) or cols[-1] >= len(fields):
            raise InvalidArgumentError(f"Expect {len(cols)} fields but have {len(fields)} in "
                                       f"record {arr[idx]!r}")
        for k, (c, (dtype, default)) in enumerate(zip(cols, columns)):
            text = fields[c]
            if text == "" or text == na_value:
                if default is None:
                    raise InvalidArgumentError(f"Field {c} is required but missing in record "
                                               f"{arr[idx]!r}")
                out[k][idx] = default
            else:
                out[k][idx] = _parse(text, dtype, c)
    return [o if o.dtype.kind == "O" else constant(o) for o in out]


# ------------------------------------------------------------ images


def _one_file(contents: Any, what: str) -> bytes:
    arr = string_array(contents)
    if arr.shape != ():
        raise ValueError(f"{what} takes one file's bytes (a scalar string). Received: "
                         f"shape={arr.shape}")
    return arr.item()


def _convert_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Grey/RGB with or without alpha to `channels` (0: as stored), as TF's decoders do."""
    have = pixels.shape[-1]
    if channels in (0, have):
        return pixels
    full = np.iinfo(pixels.dtype).max
    colour = pixels[..., :have - (have in (2, 4))]  # without alpha
    if colour.shape[-1] == 3 and channels in (1, 2):
        raise ValueError("Converting a colour PNG to grey (channels=1 or 2) is not supported.")
    if channels in (1, 2):
        base = colour
    else:
        base = np.repeat(colour, 3, axis=-1) if colour.shape[-1] == 1 else colour
    if channels in (2, 4):
        alpha = pixels[..., -1:] if have in (2, 4) else np.full(pixels.shape[:-1] + (1,), full,
                                                               pixels.dtype)
        base = np.concatenate([base, alpha], axis=-1)
    return base


def decode_png(contents: Any, channels: int = 0, dtype: Any = np.uint8,
               name: str | None = None) -> Tensor:
    """The `[height, width, channels]` pixels of a PNG file, as uint8 or uint16."""
    try:
        pixels = png.decode_png(_one_file(contents, "decode_png"))
    except (ValueError, KeyError, zlib.error) as e:
        raise InvalidArgumentError(f"decode_png: {e}") from None
    out = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    if out == np.uint16 and pixels.dtype == np.uint8:
        pixels = pixels.astype(np.uint16) * 257
    elif out == np.uint8 and pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif out not in (np.uint8, np.uint16):
        raise TypeError(f"decode_png gives uint8 or uint16. Received: dtype={out}")
    return constant(_convert_channels(pixels, int(channels)))


def encode_png(image: Any, compression: int = -1, name: str | None = None) -> bytes:
    """A PNG file of a `[height, width, channels]` uint8 or uint16 image (1 to 4 channels)."""
    arr = image.numpy() if isinstance(image, Tensor) else np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4) or arr.dtype not in (np.uint8,
                                                                                np.uint16):
        raise ValueError(f"encode_png takes a uint8/uint16 [height, width, 1-4] image. "
                         f"Received: shape={arr.shape}, dtype={arr.dtype}")
    return png.encode_png(arr)


def is_jpeg(contents: Any, name: str | None = None) -> Tensor:
    """Whether the bytes start with JPEG's marker (FF D8 FF)."""
    return constant(np.bool_(_one_file(contents, "is_jpeg")[:3] == b"\xff\xd8\xff"))


def decode_image(contents: Any, channels: int | None = None, dtype: Any = np.uint8,
                 name: str | None = None, expand_animations: bool = True) -> Tensor:
    """Decodes a PNG file (TF also reads JPEG, GIF and BMP, which are not supported here);
    a float `dtype` rescales to [0, 1] as `tf.image.convert_image_dtype`."""
    data = _one_file(contents, "decode_image")
    if not data.startswith(png.SIGNATURE):
        kind = "JPEG" if data[:3] == b"\xff\xd8\xff" else "GIF" if data[:3] == b"GIF" else \
            "BMP" if data[:2] == b"BM" else "unknown"
        raise InvalidArgumentError(f"decode_image reads PNG files only. Received: a {kind} "
                                   f"file.")
    out = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    pixels = decode_png(data, channels or 0, np.uint16 if out == np.uint16 else np.uint8)
    if out.kind == "f":
        scale = np.asarray(1.0 / np.iinfo(pixels.dtype).max, out)
        return Tensor._wrap(np.asarray(pixels.value, out) * scale)
    return pixels
