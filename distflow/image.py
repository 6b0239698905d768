"""`tf.image`: resizing, flips, crops and colour adjustments of NHWC images.

    import distflow as tf
    tf.image.resize(images, [64, 64]); tf.image.flip_left_right(image)

Images are `[height, width, channels]` or a batch `[batch, height, width, channels]`.
Every op is built from differentiable core ops (slices, reversals, einsum), so the
tape takes gradients through them as TensorFlow does. Resizing follows TF 2's
`tf.image.resize`: half-pixel centres, no antialiasing; bilinear and nearest
neighbour only (other methods raise).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops, random
from distflow.array_ops import einsum, reverse
from distflow.conv_ops import extract_patches_nd, middle_dims
from distflow.tensor import Tensor


class ResizeMethod:
    """The names `tf.image.resize` accepts for `method`."""

    BILINEAR = "bilinear"
    NEAREST_NEIGHBOR = "nearest"
    BICUBIC = "bicubic"
    AREA = "area"
    LANCZOS3 = "lanczos3"
    LANCZOS5 = "lanczos5"
    GAUSSIAN = "gaussian"
    MITCHELLCUBIC = "mitchellcubic"


def _image(image: Any) -> Tensor:
    x = ops.convert_to_tensor(image)
    if x.ndim not in (3, 4):
        raise ValueError("An image must be 3-D [height, width, channels] or 4-D [batch, "
                         f"height, width, channels]. Received: shape={tuple(x.shape)}")
    return x


def _batched(fn):
    """Runs `fn` on a 4-D batch, adding and removing the batch axis for a 3-D image."""
    def apply(image: Any, *args: Any, **kwargs: Any) -> Tensor:
        x = _image(image)
        if x.ndim == 4:
            return fn(x, *args, **kwargs)
        return fn(ops.expand_dims(x, 0), *args, **kwargs)[0]
    apply.__name__, apply.__doc__ = fn.__name__, fn.__doc__
    return apply


def _hw(x: Tensor) -> tuple[int, int]:
    return int(x.shape[1]), int(x.shape[2])


# ------------------------------------------------------------ flips and rotations


def flip_left_right(image: Any) -> Tensor:
    """Mirrors the image horizontally (reverses the width axis)."""
    return reverse(_image(image), [-2])


def flip_up_down(image: Any) -> Tensor:
    """Mirrors the image vertically (reverses the height axis)."""
    return reverse(_image(image), [-3])


def _random_flip(image: Any, axis: int, seed: int | None) -> Tensor:
    x = _image(image)
    rng = np.random.default_rng(seed) if seed is not None else random.get_global_generator()
    n = 1 if x.ndim == 3 else int(x.shape[0])
    flip = rng.uniform(size=n) < 0.5
    mask = flip.reshape((n,) + (1,) * 3)[0] if x.ndim == 3 else flip.reshape((n, 1, 1, 1))
    return ops.where(mask, reverse(x, [axis]), x)


def random_flip_left_right(image: Any, seed: int | None = None) -> Tensor:
    """Mirrors each image horizontally with probability 1/2."""
    return _random_flip(image, -2, seed)


def random_flip_up_down(image: Any, seed: int | None = None) -> Tensor:
    """Mirrors each image vertically with probability 1/2."""
    return _random_flip(image, -3, seed)


def transpose(image: Any) -> Tensor:
    """Swaps the height and width axes."""
    x = _image(image)
    perm = [1, 0, 2] if x.ndim == 3 else [0, 2, 1, 3]
    return ops.transpose(x, perm)


def rot90(image: Any, k: int = 1) -> Tensor:
    """Rotates the image counter-clockwise by `k` quarter turns."""
    x = _image(image)
    for _ in range(int(k) % 4):
        x = transpose(flip_left_right(x))
    return x


# ------------------------------------------------------------ crops and pads


@_batched
def crop_to_bounding_box(image: Tensor, offset_height: int, offset_width: int,
                         target_height: int, target_width: int) -> Tensor:
    """The `target_height x target_width` window whose top-left corner is at the offsets."""
    h, w = _hw(image)
    if offset_height + target_height > h or offset_width + target_width > w or \
            min(offset_height, offset_width) < 0 or min(target_height, target_width) <= 0:
        raise ValueError(f"The crop box (offsets {offset_height}, {offset_width}; size "
                         f"{target_height}x{target_width}) must lie inside the {h}x{w} image.")
    return image[:, offset_height:offset_height + target_height,
                 offset_width:offset_width + target_width, :]


@_batched
def pad_to_bounding_box(image: Tensor, offset_height: int, offset_width: int,
                        target_height: int, target_width: int) -> Tensor:
    """Places the image at the offsets inside a zero `target_height x target_width` canvas."""
    h, w = _hw(image)
    below, right = target_height - offset_height - h, target_width - offset_width - w
    if min(offset_height, offset_width, below, right) < 0:
        raise ValueError(f"A {h}x{w} image at offsets ({offset_height}, {offset_width}) "
                         f"does not fit a {target_height}x{target_width} box.")
    return ops.pad(image, [[0, 0], [offset_height, below], [offset_width, right], [0, 0]])


@_batched
def resize_with_crop_or_pad(image: Tensor, target_height: int, target_width: int) -> Tensor:
    """Centre-crops and/or zero-pads the image to `target_height x target_width`."""
    h, w = _hw(image)
    cropped = crop_to_bounding_box(image, max(h - target_height, 0) // 2,
                                   max(w - target_width, 0) // 2,
                                   min(target_height, h), min(target_width, w))
    return pad_to_bounding_box(cropped, max(target_height - h, 0) // 2,
                               max(target_width - w, 0) // 2, target_height, target_width)


@_batched
def central_crop(image: Tensor, central_fraction: float) -> Tensor:
    """The central `central_fraction` of the image along height and width."""
    if not 0.0 < central_fraction <= 1.0:
        raise ValueError(f"central_fraction must be within (0, 1]. Received: "
                         f"central_fraction={central_fraction}")
    h, w = _hw(image)
    top, left = int((h - h * central_fraction) / 2), int((w - w * central_fraction) / 2)
    return image[:, top:h - top, left:w - left, :]


# ------------------------------------------------------------ resizing


def _linear_weights(size_in: int, size_out: int) -> np.ndarray:
    """The `[size_out, size_in]` bilinear interpolation matrix (half-pixel centres)."""
    pos = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    low = np.floor(pos)
    frac = (pos - low).astype(np.float32)
    lo, hi = np.clip(low, 0, size_in - 1).astype(int), np.clip(np.ceil(pos), 0, size_in - 1)
    weights = np.zeros((size_out, size_in), np.float32)
    rows = np.arange(size_out)
    np.add.at(weights, (rows, lo), 1.0 - frac)
    np.add.at(weights, (rows, hi.astype(int)), frac)
    return weights


def _nearest_index(size_in: int, size_out: int) -> np.ndarray:
    pos = np.floor((np.arange(size_out) + 0.5) * (size_in / size_out))
    return np.minimum(pos, size_in - 1).astype(np.int64)


def _aspect_size(h: int, w: int, size: tuple[int, int]) -> tuple[int, int]:
    scale = min(size[0] / h, size[1] / w)
    return int(round(h * scale)), int(round(w * scale))


@_batched
def resize(images: Tensor, size: Any, method: str = ResizeMethod.BILINEAR,
           preserve_aspect_ratio: bool = False, antialias: bool = False) -> Tensor:
    """Resizes to `size = [new_height, new_width]` as TF 2's `tf.image.resize`.

    Bilinear results are float32; nearest neighbour keeps the input dtype.
    """
    new_h, new_w = (int(s) for s in np.asarray(size.numpy() if isinstance(size, Tensor)
                                               else size).reshape(2))
    h, w = _hw(images)
    if preserve_aspect_ratio:
        new_h, new_w = _aspect_size(h, w, (new_h, new_w))
    if antialias and (new_h < h or new_w < w):
        raise ValueError("tf.image.resize(antialias=True) is not supported when shrinking "
                         "(it filters over the source pixels); use antialias=False.")
    if method == ResizeMethod.NEAREST_NEIGHBOR:
        return ops.gather(ops.gather(images, _nearest_index(h, new_h), axis=1),
                          _nearest_index(w, new_w), axis=2)
    if method != ResizeMethod.BILINEAR:
        raise ValueError(f"tf.image.resize supports method='bilinear' and 'nearest'. "
                         f"Received: method={method!r}")
    x = ops.cast(images, np.float32)
    return einsum("oh,bhwc,pw->bopc", _linear_weights(h, new_h), x,
                  _linear_weights(w, new_w))


# ------------------------------------------------------------ colour and value adjustments


_GRAY = np.array([0.2989, 0.5870, 0.1140], np.float32)


def _float_op(image: Any, fn) -> Tensor:
    """Applies `fn` in float32 and converts back to the image's dtype (TF's convention)."""
    x = _image(image)
    dtype = x.dtype
    if dtype.kind == "f":
        return fn(x)
    return convert_image_dtype(fn(convert_image_dtype(x, np.float32)), dtype, saturate=True)


def rgb_to_grayscale(images: Any) -> Tensor:
    """Luma of RGB images (ITU-R 601 weights), keeping a channel axis of size 1."""
    return _float_op(images, lambda x: ops.expand_dims(
        ops.reduce_sum(x * _GRAY.astype(x.dtype), axis=-1), -1))


def grayscale_to_rgb(images: Any) -> Tensor:
    """Repeats the single channel three times."""
    x = _image(images)
    return ops.tile(x, [1] * (x.ndim - 1) + [3])


def adjust_brightness(image: Any, delta: float) -> Tensor:
    """Adds `delta` to every value (in float, for integer images)."""
    return _float_op(image, lambda x: x + ops.cast(delta, x.dtype))


def adjust_contrast(images: Any, contrast_factor: float) -> Tensor:
    """Scales each channel's distance from its mean over height and width."""
    def contrast(x):
        mean = ops.reduce_mean(x, axis=[-3, -2], keepdims=True)
        return (x - mean) * ops.cast(contrast_factor, x.dtype) + mean
    return _float_op(images, contrast)


def adjust_gamma(image: Any, gamma: float = 1, gain: float = 1) -> Tensor:
    """`gain * image ** gamma` (in float, for integer images)."""
    return _float_op(image, lambda x: ops.power(x, ops.cast(gamma, x.dtype)) *
                     ops.cast(gain, x.dtype))


@_batched
def per_image_standardization(image: Tensor) -> Tensor:
    """Each image shifted to mean 0 and scaled by max(stddev, 1/sqrt(num_elements))."""
    x = ops.cast(image, np.float32) if image.dtype.kind != "f" else image
    n = int(np.prod(x.shape[1:]))
    mean = ops.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    var = ops.reduce_mean(ops.square(x - mean), axis=[1, 2, 3], keepdims=True)
    # max(stddev, 1/sqrt(n)) as sqrt(max(variance, 1/n)): no 0/0 gradient for a flat image
    return (x - mean) / ops.sqrt(ops.maximum(var, ops.cast(1.0 / n, x.dtype)))


def _dtype_max(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0


def convert_image_dtype(image: Any, dtype: Any, saturate: bool = False) -> Tensor:
    """Converts between image dtypes, rescaling: floats are in [0, 1], integers in [0, MAX].

    Float to float is a plain cast; integer to float divides by the integer
    type's MAX; float to integer multiplies by MAX + 0.5 and truncates.
    """
    x = ops.convert_to_tensor(image)
    src, dst = x.dtype, np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    if src == dst:
        return x
    if src.kind == "f" and dst.kind == "f":
        return ops.cast(x, dst)
    if dst.kind == "f":
        return ops.cast(x, dst) * ops.cast(1.0 / _dtype_max(src), dst)
    if src.kind == "f":
        scaled = x * ops.cast(_dtype_max(dst) + 0.5, src)
        if saturate:
            scaled = ops.clip_by_value(scaled, float(np.iinfo(dst).min), _dtype_max(dst))
        return ops.cast(scaled, dst)
    return _int_to_int(x, dst)


def _int_to_int(x: Tensor, dst: np.dtype) -> Tensor:
    src_bits, dst_bits = x.dtype.itemsize * 8, dst.itemsize * 8
    src_bits -= x.dtype.kind == "i"
    dst_bits -= dst.kind == "i"
    if src_bits > dst_bits:
        return ops.cast(x // (2 ** (src_bits - dst_bits)), dst)
    return ops.cast(x, dst) * ops.cast(2 ** (dst_bits - src_bits), dst)


def extract_patches(images: Any, sizes: Any, strides: Any, rates: Any, padding: str) -> Tensor:
    """`[batch, out_h, out_w, kh * kw * channels]` patches of a 4-D batch (`sizes`,
    `strides`, `rates` as `[1, h, w, 1]`), each flattened in (row, column, channel) order."""
    x = _image(images)
    if x.ndim != 4:
        raise ValueError(f"extract_patches needs a 4-D batch. Received: shape={tuple(x.shape)}")
    return extract_patches_nd(x, middle_dims(sizes, 2, "sizes"),
                              middle_dims(strides, 2, "strides"), middle_dims(rates, 2, "rates"),
                              padding)


# ------------------------------------------------------------ measures


@_batched
def total_variation(images: Tensor) -> Tensor:
    """Sum of absolute differences between neighbouring pixels, per image."""
    dy = ops.abs(images[:, 1:, :, :] - images[:, :-1, :, :])
    dx = ops.abs(images[:, :, 1:, :] - images[:, :, :-1, :])
    return ops.reduce_sum(dy, axis=[1, 2, 3]) + ops.reduce_sum(dx, axis=[1, 2, 3])


def image_gradients(image: Any) -> tuple[Tensor, Tensor]:
    """Forward differences `(dy, dx)` of a 4-D batch, zero in the last row / column."""
    x = _image(image)
    if x.ndim != 4:
        raise ValueError(f"image_gradients needs a 4-D batch. Received: shape={tuple(x.shape)}")
    dy = ops.pad(x[:, 1:, :, :] - x[:, :-1, :, :], [[0, 0], [0, 1], [0, 0], [0, 0]])
    dx = ops.pad(x[:, :, 1:, :] - x[:, :, :-1, :], [[0, 0], [0, 0], [0, 1], [0, 0]])
    return dy, dx


def psnr(a: Any, b: Any, max_val: float) -> Tensor:
    """Peak signal-to-noise ratio between image batches, per image (in dB)."""
    x, y = ops.cast(_image(a), np.float32), ops.cast(_image(b), np.float32)
    mse = ops.reduce_mean(ops.square(x - y), axis=[-3, -2, -1])
    return (20.0 * np.log10(max_val) - 10.0 / np.log(10.0) * ops.log(mse))
