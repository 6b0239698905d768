"""Colour preprocessing layers, as Keras 3's: RandomGrayscale, RandomInvert, Solarization,
RandomPosterization, RandomColorDegeneration, RandomSharpness (random, training only) and
AutoContrast (always applied).

Pixel values are taken in `value_range` (default (0, 255)) and mapped to
(0, 255) for the computation as Keras does. The random layers return their
inputs unchanged with `training=False`; called directly they augment
(Keras's default), drawing from their own generator when `seed` is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras.layers.preprocessing_image import (
    _factor_pair,
    _ImageLayer,
    _ValueLayer,
    value_range_of,
)

__all__ = ["RandomGrayscale", "RandomInvert", "Solarization", "RandomPosterization",
           "AutoContrast", "RandomColorDegeneration", "RandomSharpness"]

_GRAY = np.array([0.2989, 0.5870, 0.1140], np.float32)


def _rescale(images: np.ndarray, source: Any, target: Any) -> np.ndarray:
    """Keras's _transform_value_range: linear map of `source` onto `target`."""
    (s0, s1), (t0, t1) = (np.float32(v) for v in source), (np.float32(v) for v in target)
    return ((images - s0) / (s1 - s0) * (t1 - t0) + t0).astype(np.float32)


class RandomGrayscale(_ImageLayer):
    """In training, turns each RGB image to grayscale (kept 3 channels) with probability `factor`.

    Args:
        factor: probability in [0, 1].
        data_format: "channels_last" only.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, factor: float = 0.5, data_format: str | None = None,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if not 0 <= factor <= 1:
            raise ValueError(f"`factor` should be between 0 and 1. Received: factor={factor}")
        self.factor = float(factor)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        apply = self._generator().uniform(0, 1, images.shape[0]) < self.factor
        gray = np.tensordot(images, _GRAY, axes=(-1, -1))[..., None]
        return np.where(apply[:, None, None, None], gray, images).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


class RandomInvert(_ValueLayer):
    """In training, replaces x by value_range[1] - x in each image with probability in `factor`.

    Args:
        factor: probability (or a (low, high) range it is drawn from per image).
        value_range: the (min, max) of the data.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    _bounds = (0, 1)
    _default_factor = 1.0

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        rng, n = self._generator(), images.shape[0]
        probability = rng.uniform(self.factor[0], self.factor[1], n)
        apply = rng.uniform(0, 1, n) < probability
        inverted = np.float32(self.value_range[1]) - images
        return np.where(apply[:, None, None, None], inverted, images)

class Solarization(_ImageLayer):
    """In training, adds a random amount then inverts pixels above a random threshold.

    As Keras: additions are drawn in [addition_factor[0], addition_factor[1] * 255] and
    thresholds in [threshold_factor[0], threshold_factor[1] * 255], on the 0..255 scale.

    Args:
        addition_factor: f in [0, 1] or a pair (low, high).
        threshold_factor: f in [0, 1] or a pair (low, high).
        value_range: the (min, max) of the data.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, addition_factor: Any = 0.0, threshold_factor: Any = 0.0,
                 value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.addition_factor = _factor_pair(addition_factor, (0, 1), "addition_factor")
        self.threshold_factor = _factor_pair(threshold_factor, (0, 1), "threshold_factor")
        self.value_range = value_range_of(value_range)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        rng, shape = self._generator(), (images.shape[0], 1, 1, 1)
        additions = rng.uniform(self.addition_factor[0], self.addition_factor[1] * 255, shape)
        thresholds = rng.uniform(self.threshold_factor[0], self.threshold_factor[1] * 255, shape)
        pixels = np.clip(_rescale(images, self.value_range, (0, 255)) + additions, 0, 255)
        pixels = np.where(pixels < thresholds, pixels, 255 - pixels).astype(np.float32)
        return _rescale(pixels, (0, 255), self.value_range)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "addition_factor": list(self.addition_factor),
                "threshold_factor": list(self.threshold_factor),
                "value_range": self.value_range}


class RandomPosterization(_ValueLayer):
    """In training, keeps `factor` bits of each 8-bit channel (a random count in a range).

    Args:
        factor: a (low, high) range of bits to keep, 1..8, high exclusive when low < high;
            an int f means (1, f), as in Keras.
        value_range: the (min, max) of the data.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    _bounds = (1, 8)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        low, high = int(self.factor[0]), int(self.factor[1])
        n = images.shape[0]
        bits = self._generator().integers(low, high, n) if low != high else np.full(n, low)
        shift = (8 - bits).astype(np.uint8)[:, None, None, None]
        pixels = _rescale(images, self.value_range, (0, 255)).astype(np.uint8)
        pixels = ((pixels >> shift) << shift).astype(np.float32)
        return _rescale(pixels, (0, 255), self.value_range)

class AutoContrast(_ImageLayer):
    """Stretches each image channel to the full value range (in training and inference).

    Args:
        value_range: the (min, max) of the data.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, value_range: Any = (0, 255), **kwargs: Any):
        super().__init__(**kwargs)
        self.value_range = value_range_of(value_range)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        pixels = _rescale(images, self.value_range, (0, 255))
        low = pixels.min(axis=(1, 2), keepdims=True)
        high = pixels.max(axis=(1, 2), keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.float32(255.0) / (high - low)
            stretched = np.clip(pixels * scale + (-low * scale), 0.0, 255.0)
        out = _rescale(stretched.astype(np.float32), (0, 255), self.value_range)
        return np.where(np.isnan(out), images, out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "value_range": self.value_range}


class RandomColorDegeneration(_ValueLayer):
    """In training, blends each image towards its grayscale version by a random factor.

    Args:
        factor: f in [-1, 1] (blend amounts in [-f, f]) or a pair (low, high).
        value_range: the (min, max) the outputs are clipped to.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    _bounds = (-1, 1)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        amount = self._generator().uniform(*self.factor, (images.shape[0], 1, 1, 1))
        gray = np.tensordot(images, _GRAY, axes=(-1, -1))[..., None]
        out = images + amount.astype(np.float32) * (gray - images)
        return np.clip(out, *self.value_range).astype(np.float32)

class RandomSharpness(_ValueLayer):
    """In training, sharpens (factor above 0.5) or blurs each image by a random factor.

    The image is blended with its 3x3 smoothing (weights 1/13, centre 5/13, 'same'
    zero padding) by 1 - 2 * factor, then clipped, as Keras.

    Args:
        factor: f in [0, 1] (factors in [0, f]) or a pair (low, high).
        value_range: the (min, max) the outputs are clipped to.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    _bounds = (0, 1)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        sharpness = self._generator().uniform(*self.factor, images.shape[0]) * 2
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
        h, w = images.shape[1:3]
        smoothed = sum(padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3))
        smoothed = (smoothed + np.float32(4.0) * images) / np.float32(13.0)
        blend = (1.0 - sharpness.astype(np.float32))[:, None, None, None]
        return np.clip(images + blend * (smoothed - images), *self.value_range).astype(
            np.float32)
