"""Overlap (Dice, Tversky), sequence (CTC), metric-learning (Circle) and noise-robust
(categorical generalized cross-entropy) losses: functions and classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras import ctc as ctc_module
from distflow.keras.losses.loss import EPSILON, Loss, _array, _as_pred, _as_true
from distflow.keras.losses.probabilistic_losses import _pick, _sparse_labels
from distflow.tensor import Tensor

# --------------------------------------------------------- overlap and sequence losses


def _overlap(y_true: Any, y_pred: Any) -> tuple[Tensor, Tensor]:
    y_pred = _as_pred(y_pred)
    return _as_true(y_true, y_pred.dtype), y_pred


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Tensor:
    """Dice loss: 1 - 2 sum(y_true y_pred) / (sum(y_true) + sum(y_pred) + epsilon).

    The sums run over `axis` (None: every element, so the loss is one scalar for the
    batch, as in Keras; e.g. axis=(1, 2, 3) gives one value per image).
    """
    y_true, y_pred = _overlap(y_true, y_pred)
    axis = _axis(axis)
    intersection = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    union = ops.add(ops.add(ops.sum(y_true, axis=axis), ops.sum(y_pred, axis=axis)), EPSILON)
    return ops.subtract(1.0, ops.divide(ops.multiply(intersection, 2.0), union))


def tversky(y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5,
            axis: Any = None) -> Tensor:
    """Tversky loss (Salehi et al. 2017): 1 - TP / (TP + alpha FP + beta FN + epsilon).

    TP = sum(y_true y_pred), FP = sum((1 - y_pred) y_true), FN = sum(y_pred (1 - y_true))
    over `axis` (Keras's own naming of FP and FN); alpha = beta = 0.5 is the Dice loss.
    """
    y_true, y_pred = _overlap(y_true, y_pred)
    axis = _axis(axis)
    tp = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    fp = ops.sum(ops.multiply(ops.subtract(1.0, y_pred), y_true), axis=axis)
    fn = ops.sum(ops.multiply(y_pred, ops.subtract(1.0, y_true)), axis=axis)
    denominator = ops.add(ops.add(ops.add(tp, ops.multiply(fp, float(alpha))),
                                  ops.multiply(fn, float(beta))), EPSILON)
    return ops.subtract(1.0, ops.divide(tp, denominator))


def ctc(y_true: Any, y_pred: Any) -> Tensor:
    """CTC loss per sample of logits `y_pred` (batch, steps, classes) for labels `y_true`.

    Labels are (batch, max_label_length) class ids padded with 0, which is also the
    blank class (Keras's `mask_index`); see `distflow.keras.ctc` for the algorithm.
    """
    ctc_module.check_inputs(y_true, y_pred)
    labels = Tensor._wrap(np.asarray(_array(y_true)).astype(np.int64))
    return ctc_module.ctc_loss(labels, _as_pred(y_pred))


def categorical_generalized_cross_entropy(y_true: Any, y_pred: Any, q: float) -> Tensor:
    """Generalized cross-entropy (Zhang & Sabuncu 2018): (1 - p**q) / q per sample.

    p is the predicted probability of the sample's class (`y_true`: class ids); q -> 0
    gives cross-entropy, q = 1 the mean absolute error.
    """
    y_pred = _as_pred(y_pred)
    labels, _ = _sparse_labels(y_true, y_pred, None)
    p = _pick(y_pred, labels)
    return ops.divide(ops.subtract(1.0, ops.power(p, float(q))), float(q))


def _masked_logsumexp(x: Tensor, mask: np.ndarray) -> Tensor:
    """log(sum(exp(x) over the masked entries of each row)); 0 for a row with none."""
    shift = np.where(mask, x.value, -np.inf).max(axis=1, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0).astype(x.dtype)
    terms = ops.multiply(ops.exp(ops.subtract(x, shift)), mask.astype(x.dtype))
    total = ops.add(ops.sum(terms, axis=1), (~mask.any(axis=1)).astype(x.dtype))
    return ops.add(ops.log(total), shift[:, 0])


def _circle_values(y_true: Any, y_pred: Any, ref_labels: Any = None, ref_embeddings: Any = None,
                   remove_diagonal: bool = True, gamma: float = 80.0,
                   margin: float = 0.4) -> tuple[Tensor, np.ndarray]:
    """Per-sample circle losses and the rows that count (those with a positive loss)."""
    y_pred = _as_pred(y_pred)
    labels = np.asarray(_array(y_true)).astype(np.int64).reshape(-1, 1)
    refs = y_pred if ref_embeddings is None else _as_pred(ref_embeddings)
    ref = labels if ref_labels is None else np.asarray(_array(ref_labels)).astype(
        np.int64).reshape(-1, 1)
    distances = ops.maximum(ops.subtract(1.0, ops.matmul(y_pred, ops.transpose(refs))), 0.0)
    positive = labels == ref.T
    negative = ~positive
    if remove_diagonal:
        positive &= ~np.eye(len(labels), len(ref), dtype=bool)
    pos_weights = ops.maximum(ops.multiply(ops.add(distances, margin), positive.astype(
        distances.dtype)), 0.0)
    neg_weights = ops.maximum(ops.multiply(ops.subtract(1.0 + margin, distances),
                                           negative.astype(distances.dtype)), 0.0)
    pos = ops.multiply(ops.multiply(pos_weights, ops.subtract(margin, distances)), -gamma)
    neg = ops.multiply(ops.multiply(neg_weights, ops.subtract(1.0 - margin, distances)), gamma)
    valid = positive.any(axis=1) & negative.any(axis=1)
    total = ops.add(_masked_logsumexp(pos, positive), _masked_logsumexp(neg, negative))
    losses = ops.multiply(nn.softplus(total), valid.astype(distances.dtype))
    return losses, losses.value > 0


def circle(y_true: Any, y_pred: Any, ref_labels: Any = None, ref_embeddings: Any = None,
           remove_diagonal: bool = True, gamma: float = 80.0, margin: float = 0.4) -> Tensor:
    """Circle loss (Sun et al. 2020) of L2-normalized embeddings `y_pred` with integer labels.

    d = max(1 - y_pred @ refs.T, 0) (cosine distances to the reference embeddings,
    `y_pred` itself by default); positives share the label (the diagonal removed),
    negatives do not. Per sample: softplus(logsumexp(-gamma * max(d + m, 0) * (m - d))
    over positives + logsumexp(gamma * max(1 + m - d, 0) * (1 - m - d)) over negatives).
    A sample without a positive or a negative gets 0.
    """
    return _circle_values(y_true, y_pred, ref_labels, ref_embeddings, remove_diagonal,
                          gamma, margin)[0]


class Circle(Loss):
    """The circle loss (see `circle`); the mean runs over the samples with a positive loss,
    as Keras masks the others out."""

    def __init__(self, gamma: float = 80.0, margin: float = 0.4, remove_diagonal: bool = True,
                 reduction: str | None = "sum_over_batch_size", name: str = "circle",
                 dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.gamma, self.margin, self.remove_diagonal = gamma, margin, remove_diagonal

    def _call_masked(self, y_true: Any, y_pred: Tensor) -> tuple[Tensor, np.ndarray | None]:
        return _circle_values(y_true, y_pred, remove_diagonal=self.remove_diagonal,
                              gamma=self.gamma, margin=self.margin)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample circle losses."""
        return self._call_masked(y_true, y_pred)[0]

    def get_config(self) -> dict[str, Any]:
        """Base config plus `gamma`, `margin` and `remove_diagonal`."""
        return {**super().get_config(), "gamma": self.gamma, "margin": self.margin,
                "remove_diagonal": self.remove_diagonal}


class CategoricalGeneralizedCrossEntropy(Loss):
    """Generalized cross-entropy of class ids against probabilities (see the function).

    Args:
        q: in (0, 1).
        reduction, name, dtype: see `Loss`.
    """

    def __init__(self, q: float = 0.5, reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_generalized_cross_entropy", dtype: Any = None):
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 < q < 1:
            raise ValueError(f"q must be in the interval (0, 1). Received: q={q!r}")
        super().__init__(name, reduction, dtype)
        self.q = float(q)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample generalized cross-entropy."""
        return categorical_generalized_cross_entropy(y_true, y_pred, q=self.q)

    def get_config(self) -> dict[str, Any]:
        """Base config plus `q`."""
        return {**super().get_config(), "q": self.q}


class Dice(Loss):
    """The Dice loss (see `dice`); `axis` selects the dimensions it sums over."""

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "dice",
                 axis: Any = None, dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.axis = axis

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Dice loss over `axis`."""
        return dice(y_true, y_pred, axis=self.axis)

    def get_config(self) -> dict[str, Any]:
        """Base config plus `axis`."""
        return {**super().get_config(), "axis": self.axis}


class Tversky(Loss):
    """The Tversky loss (see `tversky`)."""

    def __init__(self, alpha: float = 0.5, beta: float = 0.5,
                 reduction: str | None = "sum_over_batch_size", name: str = "tversky",
                 axis: Any = None, dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.alpha, self.beta, self.axis = float(alpha), float(beta), axis

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Tversky loss over `axis`."""
        return tversky(y_true, y_pred, alpha=self.alpha, beta=self.beta, axis=self.axis)

    def get_config(self) -> dict[str, Any]:
        """Base config plus `alpha`, `beta` and `axis`."""
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "axis": self.axis}


class CTC(Loss):
    """Connectionist temporal classification of logits against 0-padded labels (see `ctc`)."""

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "ctc",
                 dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample CTC losses."""
        return ctc(y_true, y_pred)
