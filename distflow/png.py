"""PNG files in NumPy and zlib: the encoder TensorBoard image summaries and
`tf.io.encode_png` write, and the decoder behind `tf.io.decode_png` / `decode_image`.

Decoding reads 8- and 16-bit non-interlaced images of every colour type (grey,
RGB, palette, grey + alpha, RGBA) and undoes the five row filters.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


class UnsupportedPNG(ValueError):
    """A valid PNG this decoder does not read (interlaced, or a bit depth below 8)."""


def encode_png(pixels: np.ndarray) -> bytes:
    """A PNG file of an [h, w] or [h, w, c] uint8 or uint16 image (c = 1 to 4), unfiltered."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or not 1 <= pixels.shape[-1] <= 4 or pixels.dtype not in (np.uint8,
                                                                               np.uint16):
        raise ValueError("PNG pixels must be uint8 or uint16 of shape (height, width[, 1-4]). "
                         f"Received: shape {pixels.shape}, dtype {pixels.dtype}")
    h, w, c = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    color = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    data = pixels.astype(">u2").view(np.uint8) if depth == 16 else pixels.astype(np.uint8)
    rows = np.concatenate([np.zeros((h, 1), np.uint8), data.reshape(h, -1)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    return (SIGNATURE + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes())) + chunk(b"IEND", b""))


def _chunks(data: bytes) -> dict[bytes, bytes]:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file (bad signature): the file does not start with "
                         "PNG's 8-byte signature")
    found: dict[bytes, bytes] = {}
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + size]
        found[kind] = found.get(kind, b"") + body if kind == b"IDAT" else body
        pos += 12 + size
        if kind == b"IEND":
            break
    return found


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw: np.ndarray, h: int, stride: int, bpp: int) -> np.ndarray:
    rows = raw.reshape(h, stride + 1)
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 1:
            line = np.cumsum(line.reshape(-1, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:
            line = (line + prev) % 256
        elif kind in (3, 4):
            line = _sequential(line, prev, bpp, kind)
        elif kind != 0:
            raise ValueError(f"bad PNG filter type {kind}")
        out[y] = prev = line
    return out.astype(np.uint8)


def _sequential(line: np.ndarray, prev: np.ndarray, bpp: int, kind: int) -> np.ndarray:
    """The Average (3) and Paeth (4) filters: each pixel depends on its left neighbour."""
    out = line.copy()
    zero = np.zeros(bpp, np.int32)
    for x in range(0, len(line), bpp):
        left = out[x - bpp:x] if x else zero
        up, corner = prev[x:x + bpp], prev[x - bpp:x] if x else zero
        pred = (left + up) // 2 if kind == 3 else _paeth(left, up, corner)
        out[x:x + bpp] = (line[x:x + bpp] + pred) % 256
    return out


def decode_png(data: bytes) -> np.ndarray:
    """The `[height, width, channels]` pixels of a PNG file (uint8, or uint16 for 16-bit
    files); palette images are expanded to RGB, or RGBA when they carry transparency."""
    chunks = _chunks(data)
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    if interlace or depth not in (8, 16) or color not in _CHANNELS:
        raise UnsupportedPNG(f"unsupported PNG (bit depth {depth}, colour type {color}, "
                         f"interlace {interlace}): 8/16-bit non-interlaced images only")
    samples = _CHANNELS[color]
    bpp = samples * depth // 8
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8)
    flat = _unfilter(raw, h, w * bpp, bpp)
    if depth == 16:
        pixels = flat.reshape(h, w * samples, 2).view(">u2").reshape(h, w, samples)
        return pixels.astype(np.uint16)
    pixels = flat.reshape(h, w, samples)
    if color == 3:
        return _palette(pixels[..., 0], chunks)
    return pixels


def _palette(index: np.ndarray, chunks: dict[bytes, bytes]) -> np.ndarray:
    table = np.frombuffer(chunks[b"PLTE"], np.uint8).reshape(-1, 3)
    if b"tRNS" not in chunks:
        return table[index]
    alpha = np.full(len(table), 255, np.uint8)
    trns = np.frombuffer(chunks[b"tRNS"], np.uint8)
    alpha[:len(trns)] = trns
    return np.concatenate([table, alpha[:, None]], axis=1)[index]
