"""Accuracy metrics: exact, binary, categorical, sparse and top-k, per-sample and as classes."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras.metrics.metric import _last_axis_mean, _np, _same_shape
from distflow.keras.metrics.reduction_metrics import MeanMetricWrapper

# ------------------------------------------------------- per-sample functions


def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where `y_pred` equals `y_true` exactly, else 0.0 (elementwise)."""
    y_true, y_pred = _same_shape(y_true, y_pred, "accuracy")
    return (y_true == y_pred).astype(np.float64)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Per-sample fraction of entries where (y_pred > threshold) equals the 0/1 label."""
    y_true, y_pred = _same_shape(y_true, y_pred, "binary_accuracy")
    return _last_axis_mean((y_true == (y_pred > threshold)).astype(np.float64))


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where argmax of the one-hot label equals argmax of the prediction."""
    y_true, y_pred = _same_shape(y_true, y_pred, "categorical_accuracy")
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def _sparse_labels(y_true: Any, y_pred: np.ndarray, what: str) -> np.ndarray:
    labels = _np(y_true)
    if labels.ndim == y_pred.ndim and labels.ndim and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"{what} needs one class id per sample: y_true of shape {y_pred.shape[:-1]} (or "
            f"with a trailing 1) for y_pred.shape={y_pred.shape}. Received: y_true.shape="
            f"{_np(y_true).shape}. For one-hot labels use the categorical variant.")
    return labels


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where the integer label equals argmax of the prediction."""
    y_pred = _np(y_pred)
    labels = _sparse_labels(y_true, y_pred, "sparse_categorical_accuracy")
    return (labels == np.argmax(y_pred, axis=-1)).astype(np.float64)


def _in_top_k(y_pred: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Whether each label's score is among the k largest (ties count in, as tf.math.in_top_k)."""
    labels = labels.astype(np.int64, copy=False)
    num_classes = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"Labels must be in [0, {num_classes}). Received values in "
                         f"[{labels.min()}, {labels.max()}].")
    target = np.take_along_axis(y_pred, labels[..., None], axis=-1)
    return (y_pred > target).sum(axis=-1) < k


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """1.0 where the one-hot label's class is among the k highest predictions."""
    y_true, y_pred = _same_shape(y_true, y_pred, "top_k_categorical_accuracy")
    return _in_top_k(y_pred, np.argmax(y_true, axis=-1), k).astype(np.float64)


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """1.0 where the integer label is among the k highest predictions."""
    y_pred = _np(y_pred)
    labels = _sparse_labels(y_true, y_pred, "sparse_top_k_categorical_accuracy")
    return _in_top_k(y_pred, labels, k).astype(np.float64)



class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly (use the variants below for scores)."""

    def __init__(self, name: str = "accuracy", dtype: Any = None):
        super().__init__(accuracy, name, dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often `y_pred > threshold` matches the 0/1 label.

    Args:
        name, dtype: see `Metric`.
        threshold: the decision threshold (0.5 for probabilities, 0.0 for logits).
    """

    def __init__(self, name: str = "binary_accuracy", dtype: Any = None,
                 threshold: float = 0.5):
        super().__init__(binary_accuracy, name, dtype, threshold=float(threshold))


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the predicted class (argmax) matches the one-hot label's class."""

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None):
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the predicted class (argmax) matches the integer label."""

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None):
        super().__init__(sparse_categorical_accuracy, name, dtype)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"`k` must be a positive int. Received: k={k!r}")
    return int(k)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label's class is among the `k` highest predictions.

    Args:
        k: how many top predictions count.
        name, dtype: see `Metric`.
    """

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None):
        super().__init__(top_k_categorical_accuracy, name, dtype, k=_check_k(k))


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the `k` highest predictions.

    Args:
        k: how many top predictions count.
        name, dtype: see `Metric`.
    """

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy",
                 dtype: Any = None):
        super().__init__(sparse_top_k_categorical_accuracy, name, dtype, k=_check_k(k))
