"""Cross-entropies and the KL divergence, per-sample (NumPy, float64) and as metric classes."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras.metrics.accuracy_metrics import _sparse_labels
from distflow.keras.metrics.metric import EPSILON, _float_pair, _last_axis_mean, _np
from distflow.keras.metrics.reduction_metrics import MeanMetricWrapper


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0) -> np.ndarray:
    """Per-sample binary cross-entropy (mean over the last axis), as the loss computes it."""
    y_true, y_pred = _float_pair(y_true, y_pred, "binary_crossentropy")
    y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        loss = np.maximum(y_pred, 0) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
    else:
        p = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        loss = -(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p))
    return _last_axis_mean(loss)


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0) -> np.ndarray:
    """Per-sample categorical cross-entropy, as the loss computes it."""
    y_true, y_pred = _float_pair(y_true, y_pred, "categorical_crossentropy")
    y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_pred.shape[-1]
    if from_logits:
        log_p = _log_softmax(y_pred)
    else:
        log_p = np.log(np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True),
                               EPSILON, 1.0 - EPSILON))
    return -(y_true * log_p).sum(axis=-1)


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any,
                                    from_logits: bool = False) -> np.ndarray:
    """Per-sample cross-entropy of integer labels, as the loss computes it."""
    y_pred = _np(y_pred).astype(np.float64, copy=False)
    labels = _sparse_labels(y_true, y_pred, "sparse_categorical_crossentropy")
    labels = labels.astype(np.int64, copy=False)[..., None]
    if from_logits:
        return -np.take_along_axis(_log_softmax(y_pred), labels, axis=-1)[..., 0]
    picked = np.take_along_axis(y_pred, labels, axis=-1)[..., 0] / y_pred.sum(axis=-1)
    return -np.log(np.clip(picked, EPSILON, 1.0 - EPSILON))


def kl_divergence(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample sum(y_true * log(y_true / y_pred)), both clipped to [EPSILON, 1]."""
    y_true, y_pred = _float_pair(y_true, y_pred, "kl_divergence")
    y_true, y_pred = np.clip(y_true, EPSILON, 1.0), np.clip(y_pred, EPSILON, 1.0)
    return (y_true * np.log(y_true / y_pred)).sum(axis=-1)



kld = KLD = kl_divergence


class BinaryCrossentropy(MeanMetricWrapper):
    """Mean binary cross-entropy.

    Args:
        name, dtype: see `Metric`.
        from_logits: whether predictions are logits.
        label_smoothing: as in the loss.
    """

    def __init__(self, name: str = "binary_crossentropy", dtype: Any = None,
                 from_logits: bool = False, label_smoothing: float = 0.0):
        super().__init__(binary_crossentropy, name, dtype, from_logits=bool(from_logits),
                         label_smoothing=float(label_smoothing))


class CategoricalCrossentropy(MeanMetricWrapper):
    """Mean categorical cross-entropy.

    Args:
        name, dtype: see `Metric`.
        from_logits: whether predictions are logits.
        label_smoothing: as in the loss.
    """

    def __init__(self, name: str = "categorical_crossentropy", dtype: Any = None,
                 from_logits: bool = False, label_smoothing: float = 0.0):
        super().__init__(categorical_crossentropy, name, dtype, from_logits=bool(from_logits),
                         label_smoothing=float(label_smoothing))


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Mean sparse categorical cross-entropy.

    Args:
        name, dtype: see `Metric`.
        from_logits: whether predictions are logits.
    """

    def __init__(self, name: str = "sparse_categorical_crossentropy", dtype: Any = None,
                 from_logits: bool = False):
        super().__init__(sparse_categorical_crossentropy, name, dtype,
                         from_logits=bool(from_logits))


class KLDivergence(MeanMetricWrapper):
    """Mean Kullback-Leibler divergence between label and predicted distributions."""

    def __init__(self, name: str = "kl_divergence", dtype: Any = None):
        super().__init__(kl_divergence, name, dtype)
