"""Augmentation layers, as Keras 3's: RandomHue, RandomSaturation, RandomColorJitter,
RandomGaussianBlur, Equalization, ContrastLimitedAdaptiveHistogramEqualization,
MixUp, CutMix and RandomErasing.

Each random layer draws its parameters (`draw(images)`, a dict with Keras's
transformation keys) and applies them (`transform(images, params)`), in
training calls only; called directly they augment (Keras's default). Colour
conversions are TensorFlow's `rgb_to_hsv` / `hsv_to_rgb` formulas.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras.layers.preprocessing_color import _rescale
from distflow.keras.layers.preprocessing_image import (
    RandomBrightness,
    RandomContrast,
    _factor_pair,
    _ImageLayer,
    _ValueLayer,
    value_range_of,
)
from distflow.tensor import Tensor

__all__ = ["RandomHue", "RandomSaturation", "RandomColorJitter", "RandomGaussianBlur",
           "Equalization", "MixUp", "CutMix", "RandomErasing",
           "ContrastLimitedAdaptiveHistogramEqualization"]

_EPSILON = np.float32(1e-7)


def rgb_to_hsv(images: np.ndarray) -> np.ndarray:
    """RGB -> HSV on the last axis (hue in [0, 1)), TensorFlow's formulas."""
    r, g, b = images[..., 0], images[..., 1], images[..., 2]
    value = images.max(axis=-1)
    spread = value - images.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        saturation = np.where(value > 0, spread / value, np.float32(0))
        norm = (np.float32(1) / spread) * np.float32(1 / 6)
        hue = np.where(r == value, norm * (g - b),
                       np.where(g == value, norm * (b - r) + np.float32(2 / 6),
                                norm * (r - g) + np.float32(4 / 6)))
    hue = np.where(spread > 0, hue, np.float32(0))
    hue = np.where(hue < 0, hue + np.float32(1), hue)
    return np.stack([hue, saturation, value], axis=-1).astype(np.float32)


def hsv_to_rgb(images: np.ndarray) -> np.ndarray:
    """HSV -> RGB on the last axis, TensorFlow's formulas."""
    hue, saturation, value = images[..., 0], images[..., 1], images[..., 2]
    dh = hue * np.float32(6)
    red = np.clip(np.abs(dh - 3) - 1, 0, 1)
    green = np.clip(2 - np.abs(dh - 2), 0, 1)
    blue = np.clip(2 - np.abs(dh - 4), 0, 1)
    one_minus = 1 - saturation
    return np.stack([(one_minus + saturation * c) * value for c in (red, green, blue)],
                    axis=-1).astype(np.float32)


class _Augment(_ValueLayer):
    """`draw` parameters per batch, `transform` with them (training calls only)."""

    _bounds = (-1, 1)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        return self.transform(images, self.draw(images))

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """This call's random parameters for a batch of images."""
        raise NotImplementedError

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """The augmentation of a batch with given parameters."""
        raise NotImplementedError


class RandomHue(_Augment):
    """In training, rotates each image's hue by a random amount.

    As Keras: the shift is +-u / 2 with u drawn in `factor` and a random sign, applied in
    HSV on the image scaled to [0, 1]; the result is clipped and scaled back.

    Args:
        factor: f in [-1, 1] (u in [-f, f]) or a pair (low, high).
        value_range: the (min, max) of the data.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        rng, n = self._generator(), images.shape[0]
        sign = np.where(rng.uniform(0, 1, n) > 0.5, -1.0, 1.0)
        return {"factor": (sign * rng.uniform(*self.factor, n) * 0.5).astype(np.float32)}

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        hsv = rgb_to_hsv(_rescale(images, self.value_range, (0, 1)))
        hue = hsv[..., 0] + np.asarray(params["factor"], np.float32)[:, None, None]
        hue = np.where(hue > 1, hue - 1, hue)
        hsv[..., 0] = np.where(hue < 0, hue + 1, hue)
        rgb = np.clip(hsv_to_rgb(hsv), 0, 1)
        return _rescale(rgb, (0, 1), self.value_range)


class RandomSaturation(_Augment):
    """In training, scales each image's saturation by u / (1 - u), u drawn in `factor`.

    As Keras: the HSV conversion is of the pixel values as they are, and the new
    saturation is clipped to `value_range`.

    Args:
        factor: f in [-1, 1] (u in [-f, f]) or a pair (low, high); 0.5 keeps the image.
        value_range: the (min, max) of the data.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        u = self._generator().uniform(*self.factor, images.shape[0]).astype(np.float32)
        return {"factor": u / (1 - u + _EPSILON)}

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        hsv = rgb_to_hsv(images)
        scale = np.asarray(params["factor"], np.float32)[:, None, None]
        hsv[..., 1] = np.clip(hsv[..., 1] * scale, *self.value_range)
        return hsv_to_rgb(hsv)


class RandomColorJitter(_ImageLayer):
    """In training, RandomBrightness, RandomContrast, RandomSaturation then RandomHue, each
    only if its factor is given.

    Args:
        value_range: the (min, max) of the data.
        brightness_factor, contrast_factor, saturation_factor, hue_factor: the factor of
            each layer, or None to skip it.
        seed: optional int seed (each inner layer gets it).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, value_range: Any = (0, 255), brightness_factor: Any = None,
                 contrast_factor: Any = None, saturation_factor: Any = None,
                 hue_factor: Any = None, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.value_range = value_range_of(value_range)
        self.factors = {"brightness_factor": brightness_factor,
                        "contrast_factor": contrast_factor,
                        "saturation_factor": saturation_factor, "hue_factor": hue_factor}
        kinds = (RandomBrightness, RandomContrast, RandomSaturation, RandomHue)
        self._steps = [kind(factor=factor, value_range=self.value_range, seed=seed)
                       for kind, factor in zip(kinds, self.factors.values())
                       if factor is not None]

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        for step in self._steps:
            images = step._images(images, training)
        return images

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "value_range": self.value_range, **self.factors}


def _gaussian(size: int, sigma: np.float32) -> np.ndarray:
    x = np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2)
    kernel = np.exp(np.float32(-0.5) * (x / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_blur(images: np.ndarray, kernel_size: tuple, sigma: np.ndarray) -> np.ndarray:
    """Keras's image.gaussian_blur: each channel correlated, zero 'same' padding, with the
    outer product of 1-D Gaussians (rows: kernel_size[1], sigma[1]; columns: [0])."""
    kernel = np.outer(_gaussian(kernel_size[1], sigma[1]), _gaussian(kernel_size[0], sigma[0]))
    kh, kw = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(images, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    h, w = images.shape[1:3]
    out = np.zeros_like(images)
    for i in range(kh):
        for j in range(kw):
            out += kernel[i, j] * padded[:, i:i + h, j:j + w]
    return out


def _odd_pair(value: Any, name: str) -> tuple[int, int]:
    values = tuple(value) if isinstance(value, list | tuple) else (value, value)
    if len(values) != 2:
        raise ValueError(f"The `{name}` argument should be a number (or a list of two "
                         f"numbers) Received: {name}={value}")
    if any(int(v) % 2 == 0 for v in values):
        raise ValueError(f"{name} must be an odd number. Received: {name}={value}")
    return int(values[0]), int(values[1])


class RandomGaussianBlur(_Augment):
    """In training, blurs each image with probability drawn in `factor`.

    One sigma per axis is drawn in `sigma` for the whole batch (as Keras); the
    result is clipped to `value_range`.

    Args:
        factor: the blur probability: f in [0, 1] (drawn in [0, f]) or a pair.
        kernel_size: an odd int, or a pair of odd ints.
        sigma: the range sigma is drawn from: s (in [0, s]) or a pair.
        value_range: the (min, max) of the data.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    _default_factor = 1.0

    def __init__(self, factor: Any = 1.0, kernel_size: Any = 3, sigma: Any = 1.0,
                 value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any):
        super().__init__(factor, value_range, seed, **kwargs)
        self.kernel_size = _odd_pair(kernel_size, "kernel_size")
        self.sigma = _factor_pair(sigma, self._bounds, "sigma")

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        rng, n = self._generator(), images.shape[0]
        probability = rng.uniform(*self.factor, n)
        sigma = rng.uniform(*self.sigma, 2).astype(np.float32) + np.float32(1e-6)
        return {"should_apply_blur": rng.uniform(0, 1, n) < probability, "blur_factor": sigma}

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        blurred = gaussian_blur(images, self.kernel_size,
                                np.asarray(params["blur_factor"], np.float32))
        apply = np.asarray(params["should_apply_blur"], bool)[:, None, None, None]
        return np.clip(np.where(apply, blurred, images), *self.value_range).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": list(self.kernel_size),
                "sigma": list(self.sigma)}


class Equalization(_ImageLayer):
    """In training, histogram equalization of each channel over the whole batch (as Keras).

    Pixels are mapped to 0..255, counted in `bins` bins, and looked up in the rounded
    cumulative histogram stretched to 0..255; a channel with one used bin is unchanged.

    Args:
        value_range: the (min, max) of the data.
        bins: the number of histogram bins.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, value_range: Any = (0, 255), bins: int = 256, **kwargs: Any):
        super().__init__(**kwargs)
        self.value_range, self.bins = value_range_of(value_range), int(bins)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        pixels = _rescale(images, self.value_range, (0, 255))
        channels = [self._equalize(pixels[..., i]) for i in range(images.shape[-1])]
        return _rescale(np.stack(channels, axis=-1), (0, 255), self.value_range)

    def _equalize(self, channel: np.ndarray) -> np.ndarray:
        top = self.bins - 1
        index = np.clip((channel * np.float32(top) / np.float32(255)).astype(np.int32), 0, top)
        histogram = np.bincount(index.ravel(), minlength=self.bins)
        if np.count_nonzero(histogram) <= 1:
            return channel
        cdf = np.cumsum(histogram)
        low = cdf[np.nonzero(cdf)[0][0]]
        spread = (cdf[-1] - low) or 1
        table = np.clip(np.round((cdf - low) * 255 / spread), 0, 255).astype(np.float32)
        scaled = (channel / np.float32(255)) * np.float32(top)
        return table[np.clip(scaled, 0, top).astype(np.int32)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "value_range": self.value_range, "bins": self.bins}


def _tile_lookup_tables(tiles: np.ndarray, clip_limit: float) -> np.ndarray:
    """(..., tile pixels) 0..255 values -> (..., 256) clipped-histogram equalization tables."""
    area = tiles.shape[-1]
    values = np.clip(tiles.astype(np.int32), 0, 255)
    flat = values.reshape(-1, area)
    hists = np.zeros((flat.shape[0], 256), np.float32)
    np.add.at(hists, (np.arange(flat.shape[0])[:, None], flat), 1)
    if clip_limit > 0:
        limit = np.float32(clip_limit * area / 256.0)
        clipped = np.minimum(hists, limit)
        hists = clipped + (hists - clipped).sum(axis=-1, keepdims=True) / np.float32(256)
    cdf = np.cumsum(hists, axis=-1, dtype=np.float32)
    low = cdf.min(axis=-1, keepdims=True)
    spread = np.float32(area) - low
    spread = np.where(spread == 0, np.float32(1), spread)
    tables = np.clip((cdf - low) * np.float32(255) / spread, 0, 255)
    return tables.reshape(*tiles.shape[:-1], 256)


def _tile_weights(size: int, tile: int, grid: int) -> tuple[np.ndarray, ...]:
    """Per pixel along one axis: the two neighbouring tile centres (in the edge-padded grid)
    and the weight of the second."""
    position = (np.arange(size, dtype=np.float32) - np.float32(tile / 2.0)) / np.float32(
        tile) + np.float32(1)
    low = np.floor(position)
    weight = position - low
    return (np.clip(low, 0, grid + 1).astype(np.int64),
            np.clip(low + 1, 0, grid + 1).astype(np.int64), weight)


def clahe(images: np.ndarray, clip_limit: float, grid: tuple[int, int]) -> np.ndarray:
    """Contrast-limited adaptive histogram equalization of 0..255 NHWC images, as Keras:
    per tile and channel lookup tables, blended bilinearly between tile centres."""
    n, height, width, channels = images.shape
    (grid_h, grid_w) = grid
    tile_h, tile_w = -(-height // grid_h), -(-width // grid_w)
    padded = np.pad(images, ((0, 0), (0, tile_h * grid_h - height),
                             (0, tile_w * grid_w - width), (0, 0)), mode="symmetric")
    tiles = padded.reshape(n, grid_h, tile_h, grid_w, tile_w, channels).transpose(
        0, 1, 3, 5, 2, 4).reshape(n, grid_h, grid_w, channels, tile_h * tile_w)
    tables = np.pad(_tile_lookup_tables(tiles, clip_limit),
                    ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0)), mode="edge")
    y0, y1, wy = _tile_weights(padded.shape[1], tile_h, grid_h)
    x0, x1, wx = _tile_weights(padded.shape[2], tile_w, grid_w)
    pixels = np.clip(padded, 0, 255).astype(np.int64)
    b = np.arange(n)[:, None, None, None]
    c = np.arange(channels)[None, None, None, :]
    y0, y1, wy = y0[None, :, None, None], y1[None, :, None, None], wy[None, :, None, None]
    x0, x1, wx = x0[None, None, :, None], x1[None, None, :, None], wx[None, None, :, None]
    top = tables[b, y0, x0, c, pixels] * (1 - wx) + tables[b, y0, x1, c, pixels] * wx
    bottom = tables[b, y1, x0, c, pixels] * (1 - wx) + tables[b, y1, x1, c, pixels] * wx
    out = top * (1 - wy) + bottom * wy
    return out[:, :height, :width].astype(np.float32)


class ContrastLimitedAdaptiveHistogramEqualization(_ImageLayer):
    """CLAHE: histogram equalization per tile of a `tile_grid_size` grid, each histogram
    clipped at `clip_limit` times its mean count (the excess spread evenly), the tiles'
    mappings blended bilinearly; applied in training and inference, as Keras.

    Args:
        value_range: the (min, max) of the data.
        clip_limit: the clipping factor (0 or less: no clipping).
        tile_grid_size: (rows, columns) of tiles.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, value_range: Any = (0, 255), clip_limit: float = 4.0,
                 tile_grid_size: Any = (8, 8), **kwargs: Any):
        super().__init__(**kwargs)
        self.value_range = value_range_of(value_range)
        self.clip_limit = float(clip_limit)
        self.tile_grid_size = tuple(int(v) for v in tile_grid_size)
        if len(self.tile_grid_size) != 2 or min(self.tile_grid_size) < 1:
            raise ValueError("`tile_grid_size` must be two positive integers. Received: "
                             f"tile_grid_size={tile_grid_size}")

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        pixels = _rescale(images, self.value_range, (0, 255))
        return _rescale(clahe(pixels, self.clip_limit, self.tile_grid_size), (0, 255),
                        self.value_range)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "value_range": self.value_range,
                "clip_limit": self.clip_limit, "tile_grid_size": list(self.tile_grid_size)}


class _Mixing(_ImageLayer):
    """Mixes each image (and label) with another of the batch; inputs are images, or a dict
    {"images": ..., "labels": ...} whose labels are mixed with the images' weights."""

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(inputs, dict):
            return super().__call__(inputs, *args, **kwargs)
        training = self.call_kwargs(dict(kwargs))["training"]
        images = np.asarray(inputs["images"], np.float32)
        labels = np.asarray(inputs["labels"], np.float32)
        if not training:
            return {**inputs, "images": Tensor._wrap(images), "labels": Tensor._wrap(labels)}
        params = self.draw(images)
        return {**inputs, "images": Tensor._wrap(self.transform(images, params)),
                "labels": Tensor._wrap(self.transform_labels(labels, params))}

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        return self.transform(images, self.draw(images)) if training else images

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """This call's random parameters for a batch of images."""
        raise NotImplementedError

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """The images mixed with the given parameters."""
        raise NotImplementedError

    def transform_labels(self, labels: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Labels mixed with the given permutation and weights."""
        weight = np.asarray(params["mix_weight"], np.float32).reshape(-1, 1)
        other = labels[np.asarray(params["permutation_order"])]
        return (weight * labels + (1 - weight) * other).astype(np.float32)


class MixUp(_Mixing):
    """In training, out_i = w_i * x_i + (1 - w_i) * x_p(i), w_i ~ Beta(alpha, alpha), p a
    random permutation; labels (dict inputs) are mixed alike, as Keras.

    Args:
        alpha: the Beta distribution's parameter.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, alpha: float = 0.2, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.alpha = float(alpha)

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The permutation and the mixing weights of a batch."""
        rng, n = self._generator(), images.shape[0]
        return {"permutation_order": rng.permutation(n),
                "mix_weight": rng.beta(self.alpha, self.alpha, n).astype(np.float32)}

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        weight = np.asarray(params["mix_weight"], np.float32).reshape(-1, 1, 1, 1)
        other = images[np.asarray(params["permutation_order"])]
        return (weight * images + (1 - weight) * other).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


def _span(rng: np.random.Generator, n: int, length: int, ratio: np.ndarray) -> tuple:
    """Random [start, end) spans of `ratio * length` inside [0, length), as Keras."""
    size = (ratio * length).astype(np.float32)
    start = rng.uniform(0, 1, n).astype(np.float32) * (np.float32(length) - size)
    return start, start + size


def box_masks(shape: tuple, x0: Any, x1: Any, y0: Any, y1: Any) -> np.ndarray:
    """(n, h, w, c) booleans: pixel (y, x) of image i is in [x0_i, x1_i) x [y0_i, y1_i)."""
    n, h, w, c = shape
    rows = np.arange(h, dtype=np.float32)[None, :, None, None]
    cols = np.arange(w, dtype=np.float32)[None, None, :, None]
    x0, x1, y0, y1 = (np.asarray(v, np.float32).reshape(-1, 1, 1, 1) for v in (x0, x1, y0, y1))
    inside = (cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1)
    return np.broadcast_to(inside, (n, h, w, c))


class CutMix(_Mixing):
    """In training, pastes a random box of another image of the batch into each image;
    labels (dict inputs) are mixed by the pasted area, as Keras.

    The box covers a fraction 1 - w of the image (w ~ Beta(a, a), a drawn in `factor`).

    Args:
        factor: the range of the Beta parameter: f in [0, 1] (drawn in [0, f]) or a pair.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, factor: Any = 1.0, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(factor, (0, 1), "factor")

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The permutation, the boxes' masks and the labels' mixing weights."""
        rng, (n, h, w, _) = self._generator(), images.shape
        alpha = rng.uniform(*self.factor) + 1e-6
        ratio = np.sqrt(1 - rng.beta(alpha, alpha, n)).astype(np.float32)
        x0, x1 = _span(rng, n, w, ratio)
        y0, y1 = _span(rng, n, h, ratio)
        return {"permutation_order": rng.permutation(n),
                "batch_masks": box_masks(images.shape, x0, x1, y0, y1),
                "mix_weight": 1 - (x1 - x0) * (y1 - y0) / np.float32(w * h)}

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        other = images[np.asarray(params["permutation_order"])]
        return np.where(np.asarray(params["batch_masks"], bool), other, images).astype(
            np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor)}


class RandomErasing(_Augment):
    """In training, with probability drawn in `factor`, fills a random box of each image.

    The box's sides are sqrt(s) of the image's, s drawn in `scale` per side; the fill is
    `fill_value` (a number or one per channel), or by default Gaussian noise times
    value_range[1], as Keras.

    Args:
        factor: the erasing probability: f in [0, 1] (drawn in [0, f]) or a pair.
        scale: the range of the box's area fractions per side.
        fill_value: None (noise), a number, or a list of three numbers.
        value_range: the (min, max) of the data.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    _default_factor = 1.0

    def __init__(self, factor: Any = 1.0, scale: Any = (0.02, 0.33), fill_value: Any = None,
                 value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any):
        super().__init__(factor, value_range, seed, **kwargs)
        self.scale = _factor_pair(scale, self._bounds, "scale")
        if fill_value is not None and not isinstance(fill_value, int | float) and not (
                isinstance(fill_value, list | tuple) and len(fill_value) == 3):
            raise ValueError("The `fill_value` argument should be a number (or a list of "
                             f"three numbers) Received: fill_value={fill_value}")
        self.fill_value = fill_value

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        rng, (n, h, w, _) = self._generator(), images.shape
        sides = np.sqrt(rng.uniform(*self.scale, (n, 2))).astype(np.float32)
        x0, x1 = _span(rng, n, w, sides[:, 0])
        y0, y1 = _span(rng, n, h, sides[:, 1])
        apply = rng.uniform(0, 1, n) < rng.uniform(*self.factor, n)
        if self.fill_value is None:
            fill = rng.standard_normal(images.shape).astype(np.float32) * np.float32(
                self.value_range[1])
        else:
            fill = np.broadcast_to(np.asarray(self.fill_value, np.float32), images.shape)
        return {"apply_erasing": apply, "batch_masks": box_masks(images.shape, x0, x1, y0, y1),
                "fill_value": fill}

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        masks = np.asarray(params["batch_masks"], bool)
        apply = np.asarray(params["apply_erasing"], bool)[:, None, None, None]
        fill = np.asarray(params["fill_value"], np.float32)
        return np.where(masks & apply, fill, images).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": list(self.scale),
                "fill_value": self.fill_value}
