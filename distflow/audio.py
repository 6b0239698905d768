"""`tf.audio`: 16-bit PCM WAV files to float samples and back, as TensorFlow.

    import distflow as tf
    audio, rate = tf.audio.decode_wav(tf.io.read_file("clip.wav"))   # [samples, channels]
    tf.io.write_file("out.wav", tf.audio.encode_wav(audio, rate))

Samples are float32 in [-1, 1): a 16-bit value v decodes to v / 32768, and encoding
scales by 32768, rounds and saturates. Encoded files are `bytes` (TF's scalar string).
"""

from __future__ import annotations

import io
import wave
from typing import Any

import numpy as np

from distflow.errors import InvalidArgumentError
from distflow.primitive import constant
from distflow.tensor import Tensor

_SCALE = 32768.0


def _contents(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    arr = np.asarray(value, dtype=object)
    if arr.shape != () or not isinstance(arr.item(), bytes | str):
        raise TypeError(f"decode_wav expects the file's bytes (a scalar string). Received: "
                        f"{type(value).__name__}")
    item = arr.item()
    return item.encode("latin-1") if isinstance(item, str) else item


def decode_wav(contents: Any, desired_channels: int = -1, desired_samples: int = -1,
               name: str | None = None) -> tuple[Tensor, Tensor]:
    """Decodes a 16-bit PCM WAV file into `(audio, sample_rate)`.

    Args:
        contents: the file's bytes.
        desired_channels: channels to return (-1: the file's); a mono file is repeated
            into more, extra channels of a wider file are dropped.
        desired_samples: samples to return (-1: all); shorter files are zero-padded.

    Returns:
        float32 `[samples, channels]` audio and the int32 sample rate.
    """
    try:
        with wave.open(io.BytesIO(_contents(contents)), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as e:
        raise InvalidArgumentError(f"decode_wav: not a readable WAV file ({e}).") from None
    if width != 2:
        raise ValueError(f"decode_wav reads 16-bit PCM only. Received: {8 * width}-bit samples")
    audio = np.frombuffer(frames, "<i2").reshape(-1, channels).astype(np.float32) / _SCALE
    return constant(_fit(audio, desired_channels, desired_samples)), constant(np.int32(rate))


def _fit(audio: np.ndarray, channels: int, samples: int) -> np.ndarray:
    if channels > 0 and channels != audio.shape[1]:
        if audio.shape[1] == 1:
            audio = np.repeat(audio, channels, axis=1)
        elif channels < audio.shape[1]:
            audio = audio[:, :channels]
        else:
            raise ValueError(f"decode_wav cannot make {channels} channels of a "
                             f"{audio.shape[1]}-channel file.")
    if samples >= 0:
        audio = np.pad(audio[:samples], ((0, max(samples - len(audio), 0)), (0, 0)))
    return audio


def encode_wav(audio: Any, sample_rate: Any, name: str | None = None) -> bytes:
    """Encodes float `[samples, channels]` audio as a 16-bit PCM WAV file's bytes."""
    arr = np.asarray(audio.numpy() if isinstance(audio, Tensor) else audio, np.float32)
    if arr.ndim != 2:
        raise ValueError(f"encode_wav expects audio of shape [samples, channels]. Received: "
                         f"shape={arr.shape}")
    rate = int(np.asarray(sample_rate.numpy() if isinstance(sample_rate, Tensor)
                          else sample_rate))
    raw = arr.astype(np.float64) * _SCALE
    scaled = np.clip(np.sign(raw) * np.floor(np.abs(raw) + 0.5), -_SCALE, _SCALE - 1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(arr.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(scaled.astype("<i2").tobytes())
    return buf.getvalue()
