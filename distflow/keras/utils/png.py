"""A small PNG codec (8-bit, non-interlaced) on the standard library's `zlib`.

It lets the image utilities and `image_dataset_from_directory` read and write PNG
files without Pillow. Reading supports grayscale, RGB, palette, grayscale+alpha and
RGBA images with every filter type; writing stores grayscale, RGB or RGBA, unfiltered.
Other formats (16-bit, interlaced, JPEG, ...) need Pillow.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # color type -> samples per pixel


class UnsupportedPNG(ValueError):
    """A PNG this codec does not decode (Pillow does)."""


def is_png(data: bytes) -> bool:
    """Whether `data` starts with the PNG signature."""
    return data[:8] == SIGNATURE


def decode(data: bytes) -> np.ndarray:
    """The pixels of a PNG file's bytes: uint8 `(height, width, channels)`; a palette
    image is expanded to RGB (RGBA when it has transparency).

    Raises:
        UnsupportedPNG: for 16-bit or interlaced images.
        ValueError: for bytes that are not a PNG file.
    """
    if not is_png(data):
        raise ValueError("Not a PNG file (the 8-byte signature is missing).")
    chunks = _chunks(data)
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks["IHDR"][0])
    if depth != 8 or interlace or color not in _CHANNELS:
        raise UnsupportedPNG(f"PNG with bit depth {depth}, color type {color}, interlace "
                             f"{interlace} is not supported without Pillow (8-bit, "
                             "non-interlaced only). Install pillow: pip install pillow")
    channels = _CHANNELS[color]
    raw = zlib.decompress(b"".join(chunks.get("IDAT", [])))
    pixels = _unfilter(raw, height, width * channels, channels).reshape(height, width, channels)
    if color == 3:
        return _expand_palette(pixels[..., 0], chunks)
    return pixels


def _chunks(data: bytes) -> dict[str, list[bytes]]:
    chunks: dict[str, list[bytes]] = {}
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.setdefault(kind.decode("latin-1"), []).append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    if "IHDR" not in chunks:
        raise ValueError("Corrupt PNG file: no IHDR chunk.")
    return chunks


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    rows = np.frombuffer(raw, np.uint8)
    if rows.size != height * (stride + 1):
        raise ValueError(f"Corrupt PNG file: {rows.size} bytes of pixel data for "
                         f"{height} rows of {stride} bytes.")
    rows = rows.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    previous = np.zeros(stride, np.int32)
    for y in range(height):
        line = rows[y, 1:].astype(np.int32)
        out[y] = previous = _unfilter_row(int(rows[y, 0]), line, previous, bpp)
    return out


def _unfilter_row(kind: int, line: np.ndarray, up: np.ndarray, bpp: int) -> np.ndarray:
    if kind == 0:
        return line
    if kind == 2:
        return (line + up) & 0xFF
    out = line.copy()
    for x in range(len(line)):  # Sub, Average and Paeth depend on the bytes just decoded
        left = out[x - bpp] if x >= bpp else 0
        corner = up[x - bpp] if x >= bpp else 0
        out[x] = (line[x] + _predict(kind, left, int(up[x]), int(corner))) & 0xFF
    return out


def _predict(kind: int, left: int, up: int, corner: int) -> int:
    if kind == 1:
        return left
    if kind == 3:
        return (left + up) // 2
    if kind == 4:
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        return left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
    raise ValueError(f"Corrupt PNG file: unknown filter type {kind}.")


def _expand_palette(indices: np.ndarray, chunks: dict[str, list[bytes]]) -> np.ndarray:
    palette = np.frombuffer(chunks["PLTE"][0], np.uint8).reshape(-1, 3)
    if "tRNS" in chunks:
        alpha = np.full(len(palette), 255, np.uint8)
        given = np.frombuffer(chunks["tRNS"][0], np.uint8)
        alpha[:len(given)] = given
        palette = np.concatenate([palette, alpha[:, None]], axis=1)
    return palette[indices]


def encode(pixels: np.ndarray) -> bytes:
    """PNG bytes of uint8 pixels shaped `(height, width)` or `(height, width, 1|3|4)`."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3, 4) or pixels.dtype != np.uint8:
        raise ValueError("PNG pixels must be uint8 of shape (height, width[, 1|3|4]). "
                         f"Received: shape {pixels.shape}, dtype {pixels.dtype}")
    height, width, channels = pixels.shape
    color = {1: 0, 3: 2, 4: 6}[channels]
    rows = np.concatenate([np.zeros((height, 1), np.uint8),
                           pixels.reshape(height, width * channels)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(
        rows.tobytes())) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)
