"""`keras.utils.bounding_boxes` against Keras 3 (tests/goldens/bounding_boxes.json, written by
tools/make_goldens_utils.py): conversions between every pair of formats, clipping, crop,
pad, affine transforms, IoU/CIoU and anchor deltas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distflow import keras

G = json.loads((Path(__file__).parent / "goldens" / "bounding_boxes.json").read_text())
BOXES, OTHER = np.array(G["boxes"], np.float32), np.array(G["other"], np.float32)
ANCHORS = np.array(G["anchors"], np.float32)
bb = keras.utils.bounding_boxes


def _close(got, want, atol=1e-4):
    np.testing.assert_allclose(np.asarray(got), np.array(want, np.float32), rtol=1e-5,
                               atol=atol)


@pytest.mark.parametrize("source", sorted(G["convert"]))
def test_convert_format_matches_keras(source):
    start = bb.convert_format(BOXES, "xyxy", source, height=100, width=120)
    for target, want in G["convert"][source].items():
        _close(bb.convert_format(start, source, target, height=100, width=120), want)


def test_clip_crop_pad_and_affine_match_keras():
    labels = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 0]], np.int32)
    clipped = bb.clip_to_image_size({"boxes": BOXES - np.float32(30), "labels": labels}, 50, 40)
    _close(clipped["boxes"], G["clip"]["boxes"])
    assert np.asarray(clipped["labels"]).tolist() == G["clip"]["labels"]
    rel = bb.clip_to_image_size({"boxes": (BOXES - np.float32(30)) / np.float32(40)},
                                bounding_box_format="rel_xyxy")
    _close(rel["boxes"], G["clip"]["rel"])
    _close(bb.crop(BOXES, 10, 15, 50, 60), G["crop"])
    _close(bb.pad(BOXES, 7, 3), G["pad"])
    angle = np.array([30.0, -12.0], np.float32)
    _close(bb.affine_transform(
        BOXES, angle, np.array([0.1, -0.05], np.float32), np.array([0.0, 0.2], np.float32),
        np.array([1.2, 0.9], np.float32), np.array([5.0, 0.0], np.float32),
        np.array([0.0, -8.0], np.float32), 100, 120), G["affine"], atol=1e-3)
    zeros, ones = np.zeros(2, np.float32), np.ones(2, np.float32)
    _close(bb.affine_transform(BOXES, angle, zeros, zeros, ones, zeros, zeros, 100, 120,
                               center_x=0.2, center_y=0.7), G["affine_center"], atol=1e-3)


def test_iou_and_ciou_match_keras():
    iou = G["iou"]
    _close(bb.compute_iou(BOXES[0], OTHER[1], "xyxy"), iou["unbatched"])
    _close(bb.compute_iou(BOXES, OTHER, "xyxy"), iou["batched"])
    _close(bb.compute_iou(BOXES[0], OTHER[0], "yxyx"), iou["yxyx"])
    masked = OTHER.copy()
    masked[0, 1] = -1
    _close(bb.compute_iou(BOXES, masked, "xyxy", use_masking=True, mask_val=-2), iou["masked"])
    _close(bb.compute_iou(BOXES[1] / 120, OTHER[0] / 120, "rel_xyxy",
                          image_shape=(100, 120, 3)), iou["rel"])
    _close(bb.compute_ciou(BOXES, OTHER, "xyxy"), G["ciou"]["xyxy"])
    _close(bb.compute_ciou(BOXES[0], OTHER[0], "center_xywh"), G["ciou"]["center"])


def test_deltas_match_keras():
    deltas = bb.encode_box_to_deltas(ANCHORS, BOXES[0], "xyxy", "xyxy")
    _close(deltas, G["encode"]["plain"])
    _close(bb.encode_box_to_deltas(ANCHORS, BOXES[0], "xyxy", "xywh", "center_xywh",
                                   variance=[0.1, 0.1, 0.2, 0.2]), G["encode"]["variance"])
    _close(bb.decode_deltas_to_boxes(ANCHORS, deltas, "xyxy", "xyxy"), G["decode"]["plain"])
    _close(bb.decode_deltas_to_boxes(ANCHORS, np.asarray(deltas) * 3, "xyxy", "center_yxhw",
                                     "center_xywh", variance=[0.1, 0.1, 0.2, 0.2]),
           G["decode"]["variance"])
    levels = bb.decode_deltas_to_boxes({"p3": ANCHORS, "p4": ANCHORS * 2},
                                       {"p3": deltas, "p4": deltas}, "xyxy", "rel_xyxy",
                                       image_shape=(100, 120, 3))
    for level, want in G["decode"]["levels"].items():
        _close(levels[level], want)


def test_bounding_box_errors_are_keras_s():
    with pytest.raises(ValueError, match="last dimension of 4"):
        bb.convert_format(np.zeros((2, 3)), "xyxy", "yxyx")
    with pytest.raises(ValueError, match="Invalid source or target"):
        bb.convert_format(np.zeros((2, 4)), "xyxy", "cxcy")
    with pytest.raises(ValueError, match="height"):
        bb.convert_format(np.zeros((2, 4)), "xyxy", "rel_xyxy")
    with pytest.raises(NotImplementedError):
        bb.crop(BOXES, 0, 0, 1, 1, bounding_box_format="yxyx")
    with pytest.raises(ValueError, match="image_shape"):
        bb.compute_iou(BOXES, OTHER, "rel_xyxy")
    with pytest.raises(ValueError, match="length 4"):
        bb.encode_box_to_deltas(ANCHORS, BOXES[0], "xyxy", "xyxy", variance=[1.0, 1.0])
    converted = bb.convert_format({"boxes": BOXES, "labels": [1]}, "xyxy", "xywh")
    assert set(converted) == {"boxes", "labels"} and np.asarray(converted["boxes"]).shape == \
        BOXES.shape
