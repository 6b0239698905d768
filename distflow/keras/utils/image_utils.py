"""Image helpers of `keras.utils`: `img_to_array`, `array_to_img`, `load_img`, `save_img`.

`array_to_img` and `load_img` return Pillow images, as Keras's do, so they need
Pillow (`pip install pillow`); without it they raise ImportError saying so.
`img_to_array` needs nothing, and `save_img` writes PNG files with the small codec
in `png` when Pillow is absent (other formats need Pillow).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from distflow import png


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError("This image function returns or reads Pillow images and needs "
                          "Pillow: pip install pillow") from err
    return Image


def _data_format(data_format: str | None) -> str:
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("`data_format` must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    return data_format


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """A 3-D float array (`(height, width, channels)` by default) of an image or array.

    Args:
        img: a Pillow image or an array of rank 2 or 3.
        data_format: "channels_last" (default) or "channels_first".
        dtype: dtype of the result (default float32).
    """
    data_format = _data_format(data_format)
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 2:
        x = x[None] if data_format == "channels_first" else x[..., None]
    elif x.ndim == 3:
        x = x.transpose(2, 0, 1) if data_format == "channels_first" else x
    else:
        raise ValueError(f"Unsupported image shape: {x.shape}. Expected rank 2 or 3.")
    return x


def _to_uint8(x: Any, data_format: str | None, scale: bool) -> np.ndarray:
    """Keras's array -> 8-bit pixels: channels last, shifted and scaled to [0, 255]."""
    x = np.asarray(x, dtype="float32")
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with "
                         f"shape: {x.shape}")
    if _data_format(data_format) == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        peak = np.max(x)
        if peak != 0:
            x = x / peak
        x = x * 255
    if x.shape[2] not in (1, 3, 4):
        raise ValueError(f"Unsupported channel number: {x.shape[2]}")
    return x.astype(np.uint8)


def array_to_img(x: Any, data_format: str | None = None, scale: bool = True,
                 dtype: Any = None) -> Any:
    """A Pillow image of a 3-D array (needs Pillow).

    Args:
        x: `(height, width, 1|3|4)` (channels last) array.
        data_format: "channels_last" (default) or "channels_first".
        scale: shift and scale the values to [0, 255] first (Keras's default).
        dtype: accepted for Keras's signature.
    """
    image = _pil()
    pixels = _to_uint8(x, data_format, scale)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    return image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)


def save_img(path: Any, x: Any, data_format: str | None = None, file_format: str | None = None,
             scale: bool = True, **kwargs: Any) -> None:
    """Saves a 3-D array as an image file (PNG without Pillow; any format with it).

    Args:
        path: the file path.
        x: the image array (see `array_to_img`).
        data_format: "channels_last" (default) or "channels_first".
        file_format: "png", "jpeg", ... (default: from the file extension).
        scale: shift and scale the values to [0, 255] first.
        **kwargs: passed to Pillow's `Image.save`.
    """
    path = os.fspath(path)
    file_format = (file_format or os.path.splitext(path)[1].lstrip(".") or "png").lower()
    try:
        _pil()
    except ImportError:
        if file_format != "png":
            raise ImportError(f"Saving a {file_format!r} image needs Pillow: pip install "
                              "pillow (PNG files are written without it).") from None
        with open(path, "wb") as f:
            f.write(png.encode_png(_to_uint8(x, data_format, scale)))
        return
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format in ("jpg", "jpeg"):
        img = img.convert("RGB")  # JPEG has no alpha channel, as Keras does
    img.save(path, format="jpeg" if file_format == "jpg" else file_format, **kwargs)


_PIL_RESAMPLE = {"nearest": "NEAREST", "bilinear": "BILINEAR", "bicubic": "BICUBIC",
                 "hamming": "HAMMING", "box": "BOX", "lanczos": "LANCZOS"}


def load_img(path: Any, color_mode: str = "rgb", target_size: tuple[int, int] | None = None,
             interpolation: str = "nearest", keep_aspect_ratio: bool = False) -> Any:
    """Loads an image file as a Pillow image (needs Pillow).

    Args:
        path: a file path or a binary file object.
        color_mode: "grayscale", "rgb" or "rgba".
        target_size: `(height, width)` to resize to, or None.
        interpolation: "nearest", "bilinear", "bicubic", "hamming", "box" or "lanczos".
        keep_aspect_ratio: crop the center to the target aspect ratio before resizing.
    """
    image = _pil()
    modes = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
    if color_mode not in modes:
        raise ValueError('color_mode must be "grayscale", "rgb", or "rgba". Received: '
                         f"color_mode={color_mode!r}")
    if interpolation not in _PIL_RESAMPLE:
        raise ValueError(f"Invalid interpolation method {interpolation!r}. Supported methods "
                         f"are {', '.join(_PIL_RESAMPLE)}")
    source = path if hasattr(path, "read") else open(os.fspath(path), "rb")  # noqa: SIM115
    with source:
        img = image.open(source)
        img.load()
    if img.mode != modes[color_mode]:
        img = img.convert(modes[color_mode])
    if target_size is None or img.size == (target_size[1], target_size[0]):
        return img
    if keep_aspect_ratio:
        img = img.crop(_center_box(img.size, target_size))
    return img.resize((target_size[1], target_size[0]),
                      getattr(image, _PIL_RESAMPLE[interpolation]))


def _center_box(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    crop_w = min(width, int(height * target[1] / target[0]))
    crop_h = min(height, int(width * target[0] / target[1]))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def decode_image(path: str, channels: int) -> np.ndarray:
    """uint8 `(height, width, channels)` pixels of an image file: PNG with the built-in
    codec, other formats with Pillow (ImportError naming it when absent)."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(png.SIGNATURE):
        try:
            pixels = png.decode_png(data)
        except png.UnsupportedPNG:
            pixels = None
        if pixels is not None and pixels.dtype == np.uint8:  # 16-bit: Pillow's conversion
            return _channels(pixels, channels)
    try:
        image = _pil()
    except ImportError as err:
        raise ImportError(f"Reading {path!r} needs Pillow (only 8-bit PNG files are read "
                          "without it): pip install pillow") from err
    import io

    with image.open(io.BytesIO(data)) as img:
        return _channels(np.asarray(img.convert("RGBA")), channels)


def _channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Converts to 1, 3 or 4 channels as `tf.io.decode_image(channels=...)` does."""
    have = pixels.shape[-1]
    if have == channels:
        return pixels
    rgb = pixels[..., :3] if have >= 3 else np.repeat(pixels[..., :1], 3, axis=-1)
    if channels == 3:
        return rgb
    if channels == 4:
        alpha = pixels[..., -1:] if have in (2, 4) else np.full(rgb.shape[:2] + (1,), 255,
                                                                 np.uint8)
        return np.concatenate([rgb, alpha], axis=-1)
    if have < 3:
        return pixels[..., :1]
    weights = np.array([0.2989, 0.587, 0.114], np.float32)  # TF's rgb_to_grayscale
    return np.round(rgb.astype(np.float32) @ weights)[..., None].astype(np.uint8)
