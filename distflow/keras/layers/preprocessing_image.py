"""Image preprocessing layers, as Keras 3's (NHWC images, batched or single).

Resizing follows `tf.image.resize` (half-pixel centres, no antialiasing);
`affine_transform` follows TensorFlow's ImageProjectiveTransformV3 (the fill
modes reflect / wrap / constant / nearest, bilinear or nearest sampling), which
Keras's RandomRotation, RandomZoom and RandomTranslation call with the
matrices built here as Keras builds them. In inference (`training=False`,
as in `predict`) the random layers return the images unchanged, cast to
float32, exactly as Keras; called directly without `training` they augment
(Keras's default is training=True for these layers). In training they draw
from the layer's own generator when `seed` is given (reproducible), otherwise
from distflow's global generator. Keras's random streams are not reproduced:
training-mode draws differ from Keras's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import random
from distflow.keras.layers import base
from distflow.keras.layers.convolutional import check_data_format
from distflow.keras.layers.preprocessing_lookup import HostLayer
from distflow.tensor import Tensor

__all__ = ["Resizing", "CenterCrop", "RandomCrop", "RandomRotation", "RandomZoom",
           "RandomTranslation", "RandomContrast", "RandomBrightness"]

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


# ------------------------------------------------------------------ resizing

def _resize_axis(size_in: int, size_out: int, method: str) -> tuple[np.ndarray, ...]:
    """Source indices (and bilinear weights) along one axis, as tf.image.resize."""
    scale = size_in / size_out
    out = np.arange(size_out, dtype=np.float64)
    if method == "nearest":
        return (np.minimum(np.floor((out + 0.5) * scale), size_in - 1).astype(np.int64),)
    src = (out + 0.5) * scale - 0.5
    low = np.floor(src)
    lerp = (src - low).astype(np.float32)
    lower = np.clip(low, 0, size_in - 1).astype(np.int64)
    upper = np.clip(np.ceil(src), 0, size_in - 1).astype(np.int64)
    return lower, upper, lerp


def resize(images: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """Resizes NHWC `images` to (height, width) as `tf.image.resize` (float32 result)."""
    images = images.astype(np.float32)
    rows = _resize_axis(images.shape[1], height, method)
    cols = _resize_axis(images.shape[2], width, method)
    if method == "nearest":
        return images[:, rows[0]][:, :, cols[0]]
    top, bottom = images[:, rows[0]], images[:, rows[1]]
    wy = rows[2][None, :, None, None]
    wx = cols[2][None, None, :, None]

    def across(part: np.ndarray) -> np.ndarray:
        left, right = part[:, :, cols[0]], part[:, :, cols[1]]
        return left + (right - left) * wx
    upper_row, lower_row = across(top), across(bottom)
    return upper_row + (lower_row - upper_row) * wy


def crop_box(height: int, width: int, target_h: int, target_w: int) -> tuple[int, ...]:
    """Keras's centred crop with the target's aspect ratio: (top, left, crop_h, crop_w)."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def smart_resize(images: np.ndarray, height: int, width: int,
                 method: str = "bilinear") -> np.ndarray:
    """Centre-crops to the target aspect ratio, then resizes (Keras's smart_resize)."""
    top, left, crop_h, crop_w = crop_box(images.shape[1], images.shape[2], height, width)
    return resize(images[:, top:top + crop_h, left:left + crop_w], height, width, method)


# ------------------------------------------------------------ affine transform

def _map_coordinates(coord: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Out-of-image coordinates folded back in, as TF's MapCoordinate per fill mode."""
    if mode == "constant" or size <= 1 and mode != "nearest":
        return coord if mode == "constant" else np.zeros_like(coord)
    if mode == "reflect":
        span = 2 * size
        low = coord < 0
        c = np.where(low & (coord < -span), span * np.trunc(-coord / span) + coord, coord)
        c = np.where(low, np.where(c < -size, c + span, -c - 1), c)
        high = coord > size - 1
        h = coord - span * np.trunc(coord / span)
        h = np.where(h >= size, span - h - 1, h)
        coord = np.where(high, h, c)
    elif mode == "wrap":
        sz = size - 1
        coord = np.where(coord < 0, coord + size * (np.trunc(-coord / sz) + 1),
                         np.where(coord > size - 1, coord - size * np.trunc(coord / sz), coord))
    return np.clip(coord, 0, size - 1)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C's round(): halves go away from zero (NumPy's round goes to even)."""
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _read(image: np.ndarray, y: np.ndarray, x: np.ndarray, fill: float) -> np.ndarray:
    """Pixels at integer (y, x), `fill` outside the image; image is (H, W, C)."""
    h, w = image.shape[:2]
    inside = (y >= 0) & (y <= h - 1) & (x >= 0) & (x <= w - 1)
    yi, xi = np.clip(y, 0, h - 1).astype(np.int64), np.clip(x, 0, w - 1).astype(np.int64)
    return np.where(inside[..., None], image[yi, xi], np.float32(fill))


def affine_transform(images: np.ndarray, transform: np.ndarray,
                     interpolation: str = "bilinear", fill_mode: str = "constant",
                     fill_value: float = 0.0) -> np.ndarray:
    """Applies per-image projective transforms [a0, a1, a2, b0, b1, b2, c0, c1] to NHWC images.

    An output pixel (x, y) samples the input at ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)
    with k = c0 x + c1 y + 1, as `keras.ops.image.affine_transform`.
    """
    images = images.astype(np.float32)
    transform = np.broadcast_to(np.asarray(transform, np.float32).reshape(-1, 8),
                                (images.shape[0], 8))
    n, h, w, _ = images.shape
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                         indexing="ij")
    out = np.empty_like(images)
    for i in range(n):
        a0, a1, a2, b0, b1, b2, c0, c1 = transform[i]
        k = c0 * xs + c1 * ys + 1
        x = _map_coordinates((a0 * xs + a1 * ys + a2) / k, w, fill_mode)
        y = _map_coordinates((b0 * xs + b1 * ys + b2) / k, h, fill_mode)
        if interpolation == "nearest":
            out[i] = _read(images[i], _round_half_away(y), _round_half_away(x), fill_value)
            continue
        y0, x0 = np.floor(y), np.floor(x)
        top = (x0 + 1 - x)[..., None] * _read(images[i], y0, x0, fill_value) + \
            (x - x0)[..., None] * _read(images[i], y0, x0 + 1, fill_value)
        bottom = (x0 + 1 - x)[..., None] * _read(images[i], y0 + 1, x0, fill_value) + \
            (x - x0)[..., None] * _read(images[i], y0 + 1, x0 + 1, fill_value)
        out[i] = (y0 + 1 - y)[..., None] * top + (y - y0)[..., None] * bottom
    return out


def rotation_matrix(angles_deg: np.ndarray, height: int, width: int) -> np.ndarray:
    """Keras's rotation about the image centre, one 8-vector per angle (degrees)."""
    theta = np.asarray(angles_deg, np.float32) * np.float32(math.pi / 180.0)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    cos, sin = np.cos(theta), np.sin(theta)
    zeros = np.zeros_like(theta)
    return np.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos,
                     zeros, zeros], axis=1).astype(np.float32)


def zoom_matrix(zx: np.ndarray, zy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Keras's zoom about the image centre by factors (zx, zy) (above 1 zooms out)."""
    zx, zy = np.asarray(zx, np.float32), np.asarray(zy, np.float32)
    zeros = np.zeros_like(zx)
    return np.stack([zx, zeros, (width - 1.0) / 2.0 * (1.0 - zx), zeros, zy,
                     (height - 1.0) / 2.0 * (1.0 - zy), zeros, zeros], axis=1).astype(np.float32)


def translation_matrix(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Keras's shift by (dx, dy) pixels (the content moves right / down for positive values)."""
    dx, dy = np.asarray(dx, np.float32), np.asarray(dy, np.float32)
    ones, zeros = np.ones_like(dx), np.zeros_like(dx)
    return np.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], axis=1)


# -------------------------------------------------------------------- layers

def _check_images(images: np.ndarray, name: str) -> None:
    if images.ndim not in (3, 4):
        raise ValueError(f'Layer "{name}" expects images of rank 3 (HWC) or 4 (NHWC). '
                         f"Received: inputs.shape={images.shape}")


class _ImageLayer(HostLayer):
    """Batched or single NHWC images in, float32 out; `_images(batch, training)` per subclass."""

    def __init__(self, seed: int | None = None, data_format: str | None = None, **kwargs: Any):
        kwargs.pop("bounding_box_format", None)
        super().__init__(**kwargs)
        check_data_format(data_format)
        self.seed, self.data_format = seed, "channels_last"
        self._rng = None if seed is None else np.random.default_rng(int(seed))

    def _generator(self) -> np.random.Generator:
        return self._rng if self._rng is not None else random.get_global_generator()

    def host_call(self, inputs: np.ndarray, training: bool | None = None) -> Tensor:
        _check_images(inputs, self.name)
        batch = inputs[None] if inputs.ndim == 3 else inputs
        out = self._images(batch.astype(np.float32), bool(training))
        return Tensor._wrap(out[0] if inputs.ndim == 3 else out)

    def call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        training = kwargs.pop("training", None)
        if training is None:  # the enclosing call's flag, else Keras's default: True
            training = getattr(base._context, "training", None)
        if training is None:
            training = True
        return {**kwargs, "training": training}

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed, "data_format": self.data_format}


class Resizing(_ImageLayer):
    """Resizes images to (height, width) with bilinear or nearest sampling.

    Args:
        height, width: output size.
        interpolation: "bilinear" or "nearest" (others raise).
        crop_to_aspect_ratio: centre-crop to the target aspect ratio before resizing.
        pad_to_aspect_ratio: must be False (not implemented).
        fill_mode, fill_value: accepted for Keras compatibility (used only when padding).
        antialias: must be False (tf.image.resize's antialiasing is not implemented).
        data_format: "channels_last" only.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear",
                 crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False,
                 fill_mode: str = "constant", fill_value: float = 0.0, antialias: bool = False,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(data_format=data_format, **kwargs)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"distflow's Resizing supports interpolation 'bilinear' and "
                             f"'nearest'. Received: interpolation={interpolation!r}")
        if pad_to_aspect_ratio or antialias:
            raise ValueError("distflow's Resizing has no pad_to_aspect_ratio or antialias; "
                             "use crop_to_aspect_ratio, or resize without them.")
        self.height, self.width, self.interpolation = int(height), int(width), interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.fill_mode, self.fill_value = fill_mode, fill_value

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if self.crop_to_aspect_ratio:
            return smart_resize(images, self.height, self.width, self.interpolation)
        return resize(images, self.height, self.width, self.interpolation)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        return (*shape[:-3], self.height, self.width, shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio, "pad_to_aspect_ratio": False,
                "fill_mode": self.fill_mode, "fill_value": self.fill_value, "antialias": False}


class CenterCrop(Resizing):
    """Crops the centre (height, width) of each image; smaller images are resized as Keras.

    Args:
        height, width: output size.
        data_format: "channels_last" only.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, height: int, width: int, data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(height, width, data_format=data_format, **kwargs)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        h_diff, w_diff = images.shape[1] - self.height, images.shape[2] - self.width
        if h_diff >= 0 and w_diff >= 0:
            top, left = h_diff // 2, w_diff // 2
            return images[:, top:top + self.height, left:left + self.width]
        return smart_resize(images, self.height, self.width)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {k: config[k] for k in ("name", "trainable", "dtype", "height", "width",
                                       "data_format") if k in config}


class RandomCrop(Resizing):
    """In training, crops a random (height, width) window (resizing when the image is smaller).

    In inference the images pass unchanged (cast to float32), as Keras 3.

    Args:
        height, width: crop size.
        seed: optional int seed (the layer then has its own generator).
        data_format: "channels_last" only.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, height: int, width: int, seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(height, width, data_format=data_format, seed=seed, **kwargs)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        h, w = images.shape[1:3]
        if h > self.height and w > self.width:
            rng = self._generator()
            top = int(rng.uniform(0, h - self.height + 1))
            left = int(rng.uniform(0, w - self.width + 1))
            return images[:, top:top + self.height, left:left + self.width]
        return smart_resize(images, self.height, self.width)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {k: config[k] for k in ("name", "trainable", "dtype", "height", "width", "seed",
                                       "data_format") if k in config}


def _factor_pair(factor: Any, bounds: tuple[float, float], name: str) -> tuple[float, float]:
    """Keras's factor rule: a number f -> (max(-|f|, low), |f|), a pair -> sorted."""
    message = (f"The `{name}` argument should be a number (or a list of two numbers) in the "
               f"range [{bounds[0]}, {bounds[1]}]. Received: {name}={factor}")
    if isinstance(factor, list | tuple):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(message)
        low, high = sorted(factor)
        return float(low), float(high)
    if not isinstance(factor, int | float) or not bounds[0] <= factor <= bounds[1]:
        raise ValueError(message)
    return float(max(-abs(factor), bounds[0])), float(abs(factor))


class _AffineLayer(_ImageLayer):
    """Random rotation / zoom / translation through `affine_transform`."""

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if fill_mode not in _FILL_MODES:
            raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one "
                                      f"{_FILL_MODES}.")
        if interpolation not in _INTERPOLATIONS:
            raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of "
                                      f"one {_INTERPOLATIONS}.")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, fill_value

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        matrix = self._matrix(images.shape[0], *images.shape[1:3])
        return affine_transform(images, matrix, self.interpolation, self.fill_mode,
                                self.fill_value)

    def _matrix(self, n: int, height: int, width: int) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


class RandomRotation(_AffineLayer):
    """In training, rotates each image by a random angle in `factor` * 360 degrees.

    Args:
        factor: a fraction of a full turn f (angles in [-f, f] turns) or a pair (low, high).
        fill_mode: "reflect", "wrap", "constant" or "nearest".
        interpolation: "bilinear" or "nearest".
        seed: optional int seed.
        fill_value: the value outside the image for fill_mode="constant".
        data_format: "channels_last" only.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, factor: Any, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = _factor_pair(factor, (-1, 1), "factor")

    def _matrix(self, n: int, height: int, width: int) -> np.ndarray:
        angles = self._generator().uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, n)
        return rotation_matrix(angles, height, width)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_AffineLayer):
    """In training, zooms each image by random factors (negative zooms in, positive out).

    Args:
        height_factor: f for a zoom in [-f, f] of the height, or a pair (low, high).
        width_factor: the same for the width; None keeps the aspect ratio.
        fill_mode, interpolation, seed, fill_value, data_format: as `RandomRotation`.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, height_factor: Any, width_factor: Any = None,
                 fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_pair(height_factor, (-1, math.inf), "height_factor")
        self._width = None if width_factor is None else \
            _factor_pair(width_factor, (-1, math.inf), "width_factor")

    def _matrix(self, n: int, height: int, width: int) -> np.ndarray:
        rng = self._generator()
        zy = rng.uniform(1.0 + self._height[0], 1.0 + self._height[1], n).astype(np.float32)
        zx = zy if self._width is None else \
            rng.uniform(1.0 + self._width[0], 1.0 + self._width[1], n).astype(np.float32)
        return zoom_matrix(zx, zy, height, width)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor}


class RandomTranslation(_AffineLayer):
    """In training, shifts each image by random fractions of its height and width.

    Args:
        height_factor: f for shifts in [-f, f] of the height, or a pair (low, high).
        width_factor: the same for the width.
        fill_mode, interpolation, seed, fill_value, data_format: as `RandomRotation`.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, height_factor: Any, width_factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, data_format: str | None = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_pair(height_factor, (-1, 1), "height_factor")
        self._width = _factor_pair(width_factor, (-1, 1), "width_factor")

    def _matrix(self, n: int, height: int, width: int) -> np.ndarray:
        rng = self._generator()
        dy = rng.uniform(*self._height, n).astype(np.float32) * height
        dx = rng.uniform(*self._width, n).astype(np.float32) * width
        return translation_matrix(dx, dy)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor}


def value_range_of(value_range: Any) -> list[float]:
    """A (min, max) pair, sorted; anything else raises Keras's error."""
    if not isinstance(value_range, list | tuple) or len(value_range) != 2:
        raise ValueError("The `value_range` argument should be a list of two numbers. "
                         f"Received: value_range={value_range}")
    return sorted(float(v) for v in value_range)


class _ValueLayer(_ImageLayer):
    """Random per-image value changes clipped to `value_range`."""

    _bounds: tuple[float, float] = (0, 1)
    _default_factor: Any = None  # None: `factor` must be given

    def __init__(self, factor: Any = None, value_range: Any = (0, 255),
                 seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        factor = self._default_factor if factor is None else factor
        if factor is None:
            raise TypeError(f"{type(self).__name__} needs a `factor` argument.")
        self.factor = _factor_pair(factor, self._bounds, "factor")
        self.value_range = value_range_of(value_range)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor),
                "value_range": list(self.value_range)}


class RandomContrast(_ValueLayer):
    """In training, (x - mean) * c + mean per image and channel, c in [1 - f, 1 + f], clipped.

    Args:
        factor: f in [0, 1] or a pair (low, high) giving c in [1 - low, 1 + high].
        value_range: the (min, max) the outputs are clipped to.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        low, high = self.factor
        c = self._generator().uniform(1.0 - low, 1.0 + high, (images.shape[0], 1, 1, 1))
        mean = images.mean(axis=(1, 2), keepdims=True)
        out = (images - mean) * c.astype(np.float32) + mean
        return np.clip(out, *self.value_range).astype(np.float32)


class RandomBrightness(_ValueLayer):
    """In training, adds a random delta in factor * (max - min) of `value_range`, clipped.

    Args:
        factor: f in [-1, 1] (deltas in [-f, f]) or a pair (low, high).
        value_range: the (min, max) of the data; outputs are clipped to it.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    _bounds = (-1, 1)

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return images
        delta = self._generator().uniform(*self.factor, (images.shape[0], 1, 1, 1))
        delta = delta * (self.value_range[1] - self.value_range[0])
        return np.clip(images + delta.astype(np.float32), *self.value_range).astype(np.float32)
