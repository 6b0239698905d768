"""`keras.utils.bounding_boxes`: box format conversions, clipping, cropping, padding, affine
transforms, IoU/CIoU and anchor deltas, in NumPy (float32), with Keras 3's formulas.

Formats (case-insensitive), each box the last axis of 4 numbers:
"xyxy" [left, top, right, bottom], "yxyx", "xywh" [left, top, width, height],
"center_xywh", "center_yxhw", and the relative "rel_xyxy", "rel_yxyx", "rel_xywh",
"rel_center_xywh" (fractions of the image's `width`/`height`). Results are distflow
tensors (`.numpy()`); dict inputs (`{"boxes": ..., "labels": ...}`) keep their keys.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow.tensor import Tensor

SUPPORTED_FORMATS = ("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw", "rel_xyxy",
                     "rel_yxyx", "rel_xywh", "rel_center_xywh")
EPSILON = 1e-7  # keras.backend.epsilon()

__all__ = ["affine_transform", "clip_to_image_size", "compute_ciou", "compute_iou",
           "convert_format", "crop", "decode_deltas_to_boxes", "encode_box_to_deltas", "pad"]


def _array(x: Any, dtype: Any = None) -> np.ndarray:
    value = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    return value if dtype is None else value.astype(dtype)


def _split(boxes: np.ndarray) -> list[np.ndarray]:
    return [boxes[..., i:i + 1] for i in range(4)]


def _join(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts, axis=-1)


# Every format to and from "xyxy"; `h`, `w` are the image's size (relative formats).
def _to_xyxy(boxes: np.ndarray, source: str, h: Any, w: Any) -> np.ndarray:
    a, b, c, d = _split(boxes)
    if source.startswith("rel_"):
        box = _to_xyxy(boxes, source[4:], None, None)
        x1, y1, x2, y2 = _split(box)
        return _join(x1 * w, y1 * h, x2 * w, y2 * h)
    if source == "xyxy":
        return boxes
    if source == "yxyx":
        return _join(b, a, d, c)
    if source == "xywh":
        return _join(a, b, a + c, b + d)
    if source == "center_xywh":
        return _join(a - c / 2.0, b - d / 2.0, a + c / 2.0, b + d / 2.0)
    return _join(b - d / 2.0, a - c / 2.0, b + d / 2.0, a + c / 2.0)  # center_yxhw


def _from_xyxy(boxes: np.ndarray, target: str, h: Any, w: Any) -> np.ndarray:
    if target.startswith("rel_"):  # the absolute format's numbers over the image size
        absolute = _from_xyxy(boxes, target[4:], None, None)
        sizes = (h, w, h, w) if target == "rel_yxyx" else (w, h, w, h)
        return _join(*(part / size for part, size in zip(_split(absolute), sizes)))
    x1, y1, x2, y2 = _split(boxes)
    if target == "xyxy":
        return boxes
    if target == "yxyx":
        return _join(y1, x1, y2, x2)
    if target == "xywh":
        return _join(x1, y1, x2 - x1, y2 - y1)
    cx, cy, bw, bh = x1 + (x2 - x1) / 2.0, y1 + (y2 - y1) / 2.0, x2 - x1, y2 - y1
    return _join(cx, cy, bw, bh) if target == "center_xywh" else _join(cy, cx, bh, bw)


def _convert(boxes: Any, source: str, target: str, height: Any = None, width: Any = None,
             dtype: Any = "float32") -> np.ndarray:
    boxes = _array(boxes)
    if boxes.shape[-1] != 4:
        raise ValueError("`boxes` must be a tensor with the last dimension of 4. Received: "
                         f"boxes.shape={boxes.shape}")
    source, target = source.lower(), target.lower()
    if source not in SUPPORTED_FORMATS or target not in SUPPORTED_FORMATS:
        raise ValueError(f"Invalid source or target format. Supported formats: "
                         f"{SUPPORTED_FORMATS}. Received: source={source!r}, target={target!r}")
    if (source.startswith("rel_") or target.startswith("rel_")) and (height is None or
                                                                       width is None):
        raise ValueError("convert_format() must receive `height` and `width` transforming "
                         f"between relative and absolute formats. Received: source={source!r},"
                         f" target={target!r}, height={height}, width={width}.")
    boxes = boxes.astype(dtype)
    if source == target:
        return boxes
    h = None if height is None else np.asarray(height, dtype)
    w = None if width is None else np.asarray(width, dtype)
    if source.startswith("rel_") and target.startswith("rel_"):
        source, target = source[4:], target[4:]
    return _from_xyxy(_to_xyxy(boxes, source, h, w), target, h, w).astype(dtype)


def convert_format(boxes: Any, source: str, target: str, height: Any = None,
                   width: Any = None, dtype: Any = "float32") -> Any:
    """Boxes converted from format `source` to `target` (see the module docstring).

    Args:
        boxes: `(..., 4)` boxes, or a dict whose "boxes" entry is converted.
        source, target: formats.
        height, width: the image size (needed by the relative formats).
        dtype: the result's dtype.
    """
    if isinstance(boxes, dict):
        boxes["boxes"] = convert_format(boxes["boxes"], source, target, height, width, dtype)
        return boxes
    return Tensor._wrap(_convert(boxes, source, target, height, width, dtype))


def clip_to_image_size(bounding_boxes: dict[str, Any], height: Any = None, width: Any = None,
                       bounding_box_format: str = "xyxy") -> dict[str, Any]:
    """Clips "xyxy" boxes to `[0, width] x [0, height]` ("rel_xyxy": to [0, 1]); labels of
    boxes left with no area become -1.

    Args:
        bounding_boxes: `{"boxes": ..., "labels": ... (optional)}`.
    """
    if bounding_box_format not in ("xyxy", "rel_xyxy"):
        raise NotImplementedError("clip_to_image_size supports the 'xyxy' and 'rel_xyxy' "
                                  f"formats only. Received: {bounding_box_format!r}")
    if bounding_box_format == "xyxy" and (height is None or width is None):
        raise ValueError("`height` and `width` must be set if `format='xyxy'`.")
    boxes = _array(bounding_boxes["boxes"])
    high_x, high_y = (1.0, 1.0) if bounding_box_format == "rel_xyxy" else (width, height)
    x1, y1, x2, y2 = _split(boxes)
    clipped = _join(np.clip(x1, 0, high_x), np.clip(y1, 0, high_y), np.clip(x2, 0, high_x),
                    np.clip(y2, 0, high_y)).astype(boxes.dtype)
    result = dict(bounding_boxes)
    result["boxes"] = Tensor._wrap(clipped)
    if bounding_boxes.get("labels") is not None:
        cx1, cy1, cx2, cy2 = _split(clipped)
        area = ((cx2 - cx1) * (cy2 - cy1))[..., 0]
        labels = _array(bounding_boxes["labels"])
        result["labels"] = Tensor._wrap(np.where(area > 0, labels, -1).astype(labels.dtype))
    return result


def _xyxy_only(bounding_box_format: str, name: str) -> None:
    if bounding_box_format != "xyxy":
        raise NotImplementedError(f"{name} supports the 'xyxy' format only. Received: "
                                  f"bounding_box_format={bounding_box_format!r}")


def crop(boxes: Any, top: Any, left: Any, height: Any, width: Any,
         bounding_box_format: str = "xyxy") -> Any:
    """"xyxy" boxes in the frame of the crop at (`top`, `left`) of size `height` x `width`
    (shifted, then clipped to it)."""
    _xyxy_only(bounding_box_format, "crop")
    x1, y1, x2, y2 = _split(_array(boxes))
    return Tensor._wrap(_join(np.clip(x1 - left, 0, width), np.clip(y1 - top, 0, height),
                              np.clip(x2 - left, 0, width), np.clip(y2 - top, 0, height)))


def pad(boxes: Any, top: Any, left: Any, height: Any = None, width: Any = None,
        bounding_box_format: str = "xyxy") -> Any:
    """"xyxy" boxes shifted by the padding added at the `top` and `left`."""
    _xyxy_only(bounding_box_format, "pad")
    x1, y1, x2, y2 = _split(_array(boxes))
    return Tensor._wrap(_join(x1 + left, y1 + top, x2 + left, y2 + top))


def _inverse_affine(center_x: Any, center_y: Any, angle: np.ndarray, translate_x: Any,
                    translate_y: Any, scale: Any, shear_x: Any, shear_y: Any, height: Any,
                    width: Any) -> np.ndarray:
    """Keras's (batch, 3, 3) inverse affine matrices of the image augmentation layers."""
    f = angle.dtype.type
    rad = f(math.pi / 180.0)
    rot, sx, sy = -angle * rad, -_array(shear_x, angle.dtype) * rad, \
        -_array(shear_y, angle.dtype) * rad
    cx, cy = np.multiply(center_x, width - 1), np.multiply(center_y, height - 1)
    tx = np.multiply(-_array(translate_x, angle.dtype), width - 1)
    ty = np.multiply(-_array(translate_y, angle.dtype), height - 1)
    a = np.cos(rot - sy) / np.cos(sy)
    b = a * np.tan(sx) + np.sin(rot)
    c = -np.sin(rot - sy) / np.cos(sy)
    d = np.cos(rot) - c * np.tan(sx)
    scale = _array(scale, angle.dtype)
    a0, a1, b0, b1 = d * scale, -b * scale, -c * scale, a * scale
    a2 = cx - a0 * (cx + tx) - a1 * (cy + ty)
    b2 = cy - b0 * (cx + tx) - b1 * (cy + ty)
    zeros, ones = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros, ones], -1).reshape(-1, 3, 3) \
        .astype(angle.dtype)


def affine_transform(boxes: Any, angle: Any, translate_x: Any, translate_y: Any, scale: Any,
                     shear_x: Any, shear_y: Any, height: Any, width: Any,
                     center_x: Any = None, center_y: Any = None,
                     bounding_box_format: str = "xyxy") -> Any:
    """The boxes (batch, n, 4) around their corners moved by the per-image affine transform
    (rotation in degrees, translation as a fraction of the size, scale, shear in degrees)
    that Keras's random affine layers apply."""
    _xyxy_only(bounding_box_format, "affine_transform")
    angle = _array(angle)
    matrix = _inverse_affine(0.5 if center_x is None else center_x,
                             0.5 if center_y is None else center_y, angle, translate_x,
                             translate_y, scale, shear_x, shear_y, height, width)
    boxes = _array(boxes, matrix.dtype)
    corners = boxes[..., [0, 1, 2, 1, 2, 3, 0, 3]].reshape(*boxes.shape[:2], 4, 2)
    corners = np.concatenate([corners, np.ones(corners.shape[:-1] + (1,), corners.dtype)], -1)
    moved = np.einsum("bnxy,byz->bnxz", corners, matrix[:, :2, :].transpose(0, 2, 1))
    return Tensor._wrap(_join(moved.min(axis=2), moved.max(axis=2)))


def _image_size(image_shape: Any) -> tuple[Any, Any]:
    return (None, None) if image_shape is None else tuple(image_shape)[:2]


def compute_iou(boxes1: Any, boxes2: Any, bounding_box_format: str, use_masking: bool = False,
                mask_val: float = -1, image_shape: Any = None) -> Any:
    """Pairwise IoU: `(n, m)` for unbatched `(n, 4)`/`(m, 4)` boxes, `(b, n, m)` batched.

    With `use_masking`, pairs where either box has only negative coordinates (padding)
    get `mask_val`.
    """
    boxes1, boxes2 = _array(boxes1), _array(boxes2)
    for name, boxes in (("boxes1", boxes1), ("boxes2", boxes2)):
        if boxes.ndim not in (2, 3):
            raise ValueError(f"compute_iou() expects {name} to be batched (rank 3) or "
                             f"unbatched (rank 2). Received len({name}.shape)={boxes.ndim}.")
    if "rel" in bounding_box_format and image_shape is None:
        raise ValueError("When using relative bounding box formats (e.g. `rel_yxyx`) the "
                         f"`image_shape` argument must be provided. Received `image_shape`: "
                         f"{image_shape}")
    height, width = _image_size(image_shape)
    b1 = _convert(boxes1, bounding_box_format, "yxyx", height, width)
    b2 = _convert(boxes2, bounding_box_format, "yxyx", height, width)
    swap = (1, 0) if b2.ndim == 2 else (0, 2, 1)
    (y1a, x1a, y2a, x2a), (y1b, x1b, y2b, x2b) = _split(b1), \
        [np.transpose(p, swap) for p in _split(b2)]
    inter = np.maximum(0, np.minimum(y2a, y2b) - np.maximum(y1a, y1b)) * \
        np.maximum(0, np.minimum(x2a, x2b) - np.maximum(x1a, x1b))
    area1 = (y2a - y1a) * (x2a - x1a)
    area2 = np.transpose((y2b - y1b) * (x2b - x1b), swap)[..., 0]
    area2 = np.expand_dims(area2, 1 if area2.ndim == 2 else 0)
    iou = inter / (area1 + area2 - inter + np.float32(EPSILON))
    if use_masking:
        perm = (1, 0) if b1.ndim == 2 else (0, 2, 1)
        background = (b1.max(axis=-1, keepdims=True) < 0) | \
            np.transpose(b2.max(axis=-1, keepdims=True) < 0, perm)
        iou = np.where(background, np.float32(mask_val), iou)
    return Tensor._wrap(iou.astype(np.float32))


def compute_ciou(boxes1: Any, boxes2: Any, bounding_box_format: str,
                 image_shape: Any = None) -> Any:
    """Complete IoU of corresponding boxes (elementwise, not pairwise): IoU minus the
    normalized center distance and the aspect-ratio term (Zheng et al. 2020), as Keras."""
    if "rel" in bounding_box_format:
        raise ValueError("compute_ciou() does not take relative bounding box formats (e.g. "
                         f"`rel_yxyx`). Received: bounding_box_format={bounding_box_format!r}")
    height, width = _image_size(image_shape)
    eps = np.float32(EPSILON)
    x1a, y1a, x2a, y2a = _split(_convert(boxes1, bounding_box_format, "xyxy", height, width))
    x1b, y1b, x2b, y2b = _split(_convert(boxes2, bounding_box_format, "xyxy", height, width))
    w1, h1, w2, h2 = x2a - x1a, y2a - y1a + eps, x2b - x1b, y2b - y1b + eps
    inter = np.maximum(np.minimum(x2a, x2b) - np.maximum(x1a, x1b), 0) * \
        np.maximum(np.minimum(y2a, y2b) - np.maximum(y1a, y1b), 0)
    iou = (inter / (w1 * h1 + w2 * h2 - inter + eps + eps))[..., 0]
    diagonal = ((np.maximum(x2a, x2b) - np.minimum(x1a, x1b)) ** 2 +
                (np.maximum(y2a, y2b) - np.minimum(y1a, y1b)) ** 2 + eps)[..., 0]
    centers = (((x1a + x2a) / 2 - (x1b + x2b) / 2) ** 2 +
               ((y1a + y2a) / 2 - (y1b + y2b) / 2) ** 2)[..., 0]
    v = (np.float32(4 / math.pi ** 2) * (np.arctan(w2 / h2) - np.arctan(w1 / h1)) ** 2)[..., 0]
    alpha = v / (v - iou + (1 + eps))
    return Tensor._wrap((iou - (centers / diagonal + v * alpha)).astype(np.float32))


def _variance(variance: Any) -> np.ndarray | None:
    if variance is None:
        return None
    variance = _array(variance, np.float32)
    if variance.shape[-1] != 4:
        raise ValueError(f"`variance` must be length 4, got {variance}")
    return variance


def _check_encoding(encoding: str, name: str) -> None:
    if encoding not in ("center_xywh", "center_yxhw"):
        raise ValueError(f"`{name}` should be one of 'center_xywh' or 'center_yxhw', got "
                         f"{encoding!r}")


def encode_box_to_deltas(anchors: Any, boxes: Any, anchor_format: str, box_format: str,
                         encoding_format: str = "center_yxhw", variance: Any = None,
                         image_shape: Any = None) -> Any:
    """Boxes relative to their anchors: center offsets over the anchor's size, then the log
    of the size ratios (divided by `variance`), in `encoding_format`'s order."""
    variance = _variance(variance)
    _check_encoding(encoding_format, "encoding_format")
    height, width = _image_size(image_shape)
    anchors = _convert(anchors, anchor_format, encoding_format, height, width)
    boxes = _convert(boxes, box_format, encoding_format, height, width)
    anchor_size = np.maximum(anchors[..., 2:], np.float32(EPSILON))
    box_size = np.maximum(boxes[..., 2:], np.float32(EPSILON))
    delta = _join((boxes[..., :2] - anchors[..., :2]) / anchor_size,
                  np.log(box_size / anchor_size))
    return Tensor._wrap(delta if variance is None else delta / variance)


def decode_deltas_to_boxes(anchors: Any, boxes_delta: Any, anchor_format: str, box_format: str,
                           encoded_format: str = "center_yxhw", variance: Any = None,
                           image_shape: Any = None) -> Any:
    """The inverse of `encode_box_to_deltas` (dicts of levels decode level by level)."""
    variance = _variance(variance)
    _check_encoding(encoded_format, "encoded_format")
    height, width = _image_size(image_shape)

    def decode(anchor: Any, delta: Any) -> Any:
        anchor = _convert(anchor, anchor_format, encoded_format, height, width)
        delta = _array(delta, np.float32) * (1 if variance is None else variance)
        box = _join(delta[..., :2] * anchor[..., 2:] + anchor[..., :2],
                    np.exp(delta[..., 2:]) * anchor[..., 2:])
        return Tensor._wrap(_convert(box, encoded_format, box_format, height, width))

    if isinstance(anchors, dict) and isinstance(boxes_delta, dict):
        return {level: decode(anchor, boxes_delta[level]) for level, anchor in anchors.items()}
    return decode(anchors, boxes_delta)
