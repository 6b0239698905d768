"""`keras.preprocessing.image`: `array_to_img`, `img_to_array`, `load_img`, `save_img`,
`smart_resize`."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras.layers.preprocessing_image import smart_resize as _smart_resize_batch
from distflow.keras.utils.image_utils import array_to_img, img_to_array, load_img, save_img

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img", "smart_resize"]


def smart_resize(x: Any, size: tuple[int, int], interpolation: str = "bilinear",
                 data_format: str = "channels_last", backend_module: Any = None) -> np.ndarray:
    """Centre-crops an image (or a batch) to the target aspect ratio, then resizes it.

    Args:
        x: `(height, width, channels)` or `(batch, height, width, channels)`.
        size: `(height, width)`.
        interpolation: "bilinear" or "nearest".
        data_format: "channels_last" or "channels_first".
    """
    images = np.asarray(x)
    if images.ndim not in (3, 4):
        raise ValueError("Expected an image array with shape `(height, width, channels)`, or "
                         f"`(batch_size, height, width, channels)`, but got input with incorrect "
                         f"rank, of shape {images.shape}.")
    first = data_format == "channels_first"
    batch = images if images.ndim == 4 else images[None]
    if first:
        batch = batch.transpose(0, 2, 3, 1)
    out = _smart_resize_batch(batch, int(size[0]), int(size[1]), interpolation)
    if first:
        out = out.transpose(0, 3, 1, 2)
    return out if images.ndim == 4 else out[0]
