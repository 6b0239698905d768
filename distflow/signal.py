"""`tf.signal`: framing, windows, real DCTs and mel filter banks.

    import distflow as tf
    frames = tf.signal.frame(audio, frame_length=400, frame_step=160)
    frames * tf.signal.hann_window(400)

The ops are linear maps (gathers and matrix products) over the core ops, so the
tape differentiates them. Fourier transforms (fft, rfft, stft) are left out:
their results are complex, and distflow tensors hold real numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import ops
from distflow.tensor import Tensor


def _length(x: Tensor, axis: int) -> int:
    return int(x.shape[axis])


def frame(signal: Any, frame_length: int, frame_step: int, pad_end: bool = False,
          pad_value: Any = 0, axis: int = -1, name: str | None = None) -> Tensor:
    """Overlapping windows of `frame_length` every `frame_step` samples along `axis`:
    that axis becomes `[frames, frame_length]`. With `pad_end`, the end is padded with
    `pad_value` so that every sample starts a frame's worth of windows."""
    x = ops.convert_to_tensor(signal)
    axis = axis % x.ndim
    n = _length(x, axis)
    if pad_end:
        frames = -(-n // frame_step)
        extra = max((frames - 1) * frame_step + frame_length - n, 0)
        pads = [[0, 0]] * x.ndim
        pads[axis] = [0, extra]
        x = ops.pad(x, pads, constant_values=pad_value)
    else:
        frames = max(1 + (n - frame_length) // frame_step, 0) if n >= frame_length else 0
    index = np.arange(frames)[:, None] * frame_step + np.arange(frame_length)[None, :]
    taken = ops.gather(x, index.reshape(-1).astype(np.int64), axis=axis)
    shape = list(x.shape[:axis]) + [frames, frame_length] + list(x.shape[axis + 1:])
    return ops.reshape(taken, shape)


def overlap_and_add(signal: Any, frame_step: int, name: str | None = None) -> Tensor:
    """Sums `[..., frames, frame_length]` frames placed every `frame_step` samples:
    `[..., (frames - 1) * frame_step + frame_length]`."""
    x = ops.convert_to_tensor(signal)
    frames, length = _length(x, -2), _length(x, -1)
    out = (frames - 1) * frame_step + length if frames else 0
    place = np.zeros((frames * length, out), x.dtype)
    rows = np.arange(frames * length)
    place[rows, (rows // length) * frame_step + rows % length] = 1
    flat = ops.reshape(x, list(x.shape[:-2]) + [frames * length])
    return ops.matmul(flat, place)


# ------------------------------------------------------------ windows


def _window(values: np.ndarray, dtype: Any) -> Tensor:
    return ops.constant(values.astype(np.dtype(getattr(dtype, "as_numpy_dtype", dtype))))


def _raised_cosine(length: int, periodic: bool, a: float, b: float, dtype: Any) -> Tensor:
    if length == 1:
        return _window(np.ones(1), dtype)
    n = length if periodic else length - 1
    return _window(a - b * np.cos(2 * np.pi * np.arange(length) / n), dtype)


def hann_window(window_length: int, periodic: bool = True, dtype: Any = np.float32,
                name: str | None = None) -> Tensor:
    """The Hann window `0.5 - 0.5 cos(2 pi n / N)` (N = length if periodic, else length-1)."""
    return _raised_cosine(int(window_length), periodic, 0.5, 0.5, dtype)


def hamming_window(window_length: int, periodic: bool = True, dtype: Any = np.float32,
                   name: str | None = None) -> Tensor:
    """The Hamming window `0.54 - 0.46 cos(2 pi n / N)`."""
    return _raised_cosine(int(window_length), periodic, 0.54, 0.46, dtype)


def vorbis_window(window_length: int, dtype: Any = np.float32,
                  name: str | None = None) -> Tensor:
    """The Vorbis power-complementary window `sin(pi/2 sin^2(pi (n + 1/2) / N))`."""
    n = np.arange(window_length)
    return _window(np.sin(np.pi / 2 * np.sin(np.pi * (n + 0.5) / window_length) ** 2), dtype)


def kaiser_window(window_length: int, beta: float = 12.0, dtype: Any = np.float32,
                  name: str | None = None) -> Tensor:
    """The Kaiser window with shape parameter `beta` (symmetric)."""
    return _window(np.kaiser(int(window_length), beta), dtype)


# ------------------------------------------------------------ discrete cosine transforms


def _dct_matrix(kind: int, n: int, norm: str | None) -> np.ndarray:
    """`[n, n]` matrix M with dct(x) = M @ x (scipy's / TF's unnormalized scaling)."""
    k, j = np.arange(n)[:, None], np.arange(n)[None, :]
    if kind == 1:
        m = 2 * np.cos(np.pi * k * j / max(n - 1, 1))
        m[:, 0], m[:, -1] = 1.0, (-1.0) ** np.arange(n)
    elif kind == 2:
        m = 2 * np.cos(np.pi * k * (2 * j + 1) / (2 * n))
        if norm == "ortho":
            m *= np.where(k == 0, math.sqrt(1 / (4 * n)), math.sqrt(1 / (2 * n)))
    elif kind == 3:
        m = np.where(j == 0, 1.0, 2.0) * np.cos(np.pi * j * (2 * k + 1) / (2 * n))
        if norm == "ortho":
            m = _dct_matrix(2, n, "ortho").T
    else:
        m = 2 * np.cos(np.pi * (2 * k + 1) * (2 * j + 1) / (4 * n))
        if norm == "ortho":
            m *= math.sqrt(1 / (2 * n))
    return m


def _check_dct(kind: int, axis: int, norm: str | None, x: Tensor) -> None:
    if kind not in (1, 2, 3, 4) or axis != -1 or norm not in (None, "ortho"):
        raise ValueError(f"dct supports type 1-4, axis=-1 and norm None or 'ortho'. Received: "
                         f"type={kind}, axis={axis}, norm={norm!r}")
    if kind == 1 and (norm is not None or _length(x, -1) < 2):
        raise ValueError("A type-1 DCT needs norm=None and at least 2 samples.")


def dct(input: Any, type: int = 2, n: int | None = None, axis: int = -1,  # noqa: A002
        norm: str | None = None, name: str | None = None) -> Tensor:
    """The type-1 to 4 discrete cosine transform of the last axis (truncated or
    zero-padded to `n` first), scaled as scipy's `dct` (`norm="ortho"`: orthonormal)."""
    x = ops.convert_to_tensor(input)
    if n is not None:
        length = _length(x, -1)
        x = x[..., :n] if n <= length else ops.pad(x, [[0, 0]] * (x.ndim - 1) + [[0, n - length]])
    _check_dct(type, axis, norm, x)
    matrix = _dct_matrix(type, _length(x, -1), norm).astype(x.dtype)
    return ops.matmul(x, np.ascontiguousarray(matrix.T))


def idct(input: Any, type: int = 2, n: int | None = None, axis: int = -1,  # noqa: A002
         norm: str | None = None, name: str | None = None) -> Tensor:
    """The inverse DCT as TF defines it: a DCT of the inverse type (3 for 2, 2 for 3; 1 and 4
    are their own), unscaled unless `norm="ortho"` (divide by 2N for a true inverse)."""
    return dct(input, {2: 3, 3: 2}.get(type, type), n, axis, norm)


# ------------------------------------------------------------ mel scale


def _hertz_to_mel(hz: np.ndarray) -> np.ndarray:
    return np.float32(1127.0) * np.log1p(hz / np.float32(700.0))


def linear_to_mel_weight_matrix(num_mel_bins: int = 20, num_spectrogram_bins: int = 129,
                                sample_rate: float = 8000, lower_edge_hertz: float = 125.0,
                                upper_edge_hertz: float = 3800.0, dtype: Any = np.float32,
                                name: str | None = None) -> Tensor:
    """`[num_spectrogram_bins, num_mel_bins]` triangular filters, evenly spaced on the mel
    scale (1127 ln(1 + f/700)) between the edges; the DC bin gets no weight, as TF."""
    if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2:
        raise ValueError(f"Need 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2. "
                         f"Received: {lower_edge_hertz}, {upper_edge_hertz}, {sample_rate}")
    f32 = np.float32
    freqs = np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins).astype(f32)[1:]
    bins = _hertz_to_mel(freqs)[:, None]
    edges = np.linspace(_hertz_to_mel(f32(lower_edge_hertz)), _hertz_to_mel(f32(upper_edge_hertz)),
                        num_mel_bins + 2).astype(f32)
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    weights = np.maximum(f32(0), np.minimum((bins - lower) / (center - lower),
                                            (upper - bins) / (upper - center)))
    return _window(np.pad(weights, [[1, 0], [0, 0]]), dtype)


def mfccs_from_log_mel_spectrograms(log_mel_spectrograms: Any,
                                    name: str | None = None) -> Tensor:
    """Mel-frequency cepstral coefficients: the DCT-II of the last axis / sqrt(2 * bins)."""
    x = ops.convert_to_tensor(log_mel_spectrograms)
    return dct(x, type=2) * ops.cast(1.0 / math.sqrt(2.0 * _length(x, -1)), x.dtype)
