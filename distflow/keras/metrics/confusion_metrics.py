"""Keras's confusion-matrix metrics: Precision, Recall, AUC and the ones below.

Keras's confusion-matrix metrics beyond Precision/Recall/AUC (exported by `keras.metrics`).

TruePositives, FalsePositives, TrueNegatives, FalseNegatives; PrecisionAtRecall,
RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity; F1Score,
FBetaScore; IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU. As every metric
here, the state is additive float64 arrays (`get_state`/`merge_state` combine
workers), and the formulas are Keras 3's (each class's docstring gives it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras.metrics.accuracy_metrics import _check_k
from distflow.keras.metrics.metric import (
    EPSILON,
    Metric,
    MetricValue,
    _np,
    _same_shape,
    _weights_like,
)

# ------------------------------------------------------- confusion-based metrics


def _keep_top_k(y_pred: np.ndarray, k: int) -> np.ndarray:
    """Sets every prediction outside each sample's k highest to -inf (Keras's top_k filter)."""
    if k >= y_pred.shape[-1]:
        return y_pred
    top = np.argpartition(-y_pred, k - 1, axis=-1)[..., :k]
    kept = np.zeros(y_pred.shape, dtype=bool)
    np.put_along_axis(kept, top, True, axis=-1)
    return np.where(kept, y_pred, -np.inf)


def _confusion_inputs(y_true: Any, y_pred: Any, sample_weight: Any, top_k: int | None,
                      class_id: int | None, what: str) -> tuple[np.ndarray, ...]:
    """Flat boolean labels, float predictions and weights, after top_k and class_id."""
    y_true, y_pred = _same_shape(y_true, y_pred, what)
    y_pred = y_pred.astype(np.float64, copy=False)
    weights = (np.ones(y_pred.shape) if sample_weight is None else
               np.broadcast_to(_weights_like(sample_weight, y_pred), y_pred.shape))
    if top_k is not None:
        y_pred = _keep_top_k(y_pred, top_k)
    if class_id is not None:
        if not 0 <= class_id < y_pred.shape[-1]:
            raise ValueError(f"`class_id` must be in [0, {y_pred.shape[-1]}). "
                             f"Received: class_id={class_id}")
        y_true, y_pred, weights = y_true[..., class_id], y_pred[..., class_id], \
            weights[..., class_id]
    return y_true.ravel() != 0, y_pred.ravel(), np.ravel(weights)


def _thresholds(thresholds: Any, top_k: int | None) -> np.ndarray:
    if thresholds is None:
        # Keras: 0.5 for probabilities; with top_k every kept prediction counts as positive.
        return np.array([0.5 if top_k is None else -np.inf])
    values = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if values.ndim != 1 or np.any((values < 0) | (values > 1)):
        raise ValueError(f"`thresholds` must be a float or a list of floats in [0, 1]. "
                         f"Received: thresholds={thresholds!r}")
    return values


def _divide_no_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


class _ThresholdMetric(Metric):
    """True and false positive/negative weights at each threshold, for Precision and Recall."""

    _state_shapes: dict[str, tuple[int, ...]] = {}

    def __init__(self, thresholds: Any = None, top_k: int | None = None,
                 class_id: int | None = None, name: str | None = None, dtype: Any = None):
        self.top_k = None if top_k is None else _check_k(top_k)
        self.class_id = None if class_id is None else int(class_id)
        self.thresholds = _thresholds(thresholds, self.top_k)
        self._given_thresholds = thresholds
        n = len(self.thresholds)
        self._state_shapes = {"true_positives": (n,), "false_positives": (n,),
                              "false_negatives": (n,)}
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the weighted confusion counts of one batch at every threshold."""
        labels, preds, weights = _confusion_inputs(y_true, y_pred, sample_weight, self.top_k,
                                                   self.class_id, self.name)
        predicted = (preds[None, :] > self.thresholds[:, None]).astype(np.float64)
        positive_weight = np.where(labels, weights, 0.0)
        true_pos = predicted @ positive_weight
        self.true_positives += true_pos
        self.false_positives += predicted @ (weights - positive_weight)
        self.false_negatives += positive_weight.sum() - true_pos

    def _value(self, ratio: np.ndarray) -> Any:
        return MetricValue(ratio[0]) if np.ndim(self._given_thresholds) == 0 else ratio

    def get_config(self) -> dict[str, Any]:
        """Name, dtype, thresholds, top_k and class_id."""
        given = self._given_thresholds
        thresholds = np.asarray(given).tolist() if given is not None else None
        return {**super().get_config(), "thresholds": thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_ThresholdMetric):
    """Weighted true positives / predicted positives, with predictions above a threshold.

    Args:
        thresholds: a float (result is a float) or a list (result is an array), in [0, 1];
            default 0.5.
        top_k: only each sample's k highest predictions can count as positive.
        class_id: compute the metric for this class column only.
        name, dtype: see `Metric`.
    """

    def __init__(self, thresholds: Any = None, top_k: int | None = None,
                 class_id: int | None = None, name: str = "precision", dtype: Any = None):
        super().__init__(thresholds, top_k, class_id, name, dtype)

    def result(self) -> Any:
        """tp / (tp + fp), 0 where nothing was predicted positive."""
        tp = self.true_positives
        return self._value(_divide_no_nan(tp, tp + self.false_positives))


class Recall(_ThresholdMetric):
    """Weighted true positives / actual positives, with predictions above a threshold.

    Args:
        thresholds: a float (result is a float) or a list (result is an array), in [0, 1];
            default 0.5.
        top_k: only each sample's k highest predictions can count as positive.
        class_id: compute the metric for this class column only.
        name, dtype: see `Metric`.
    """

    def __init__(self, thresholds: Any = None, top_k: int | None = None,
                 class_id: int | None = None, name: str = "recall", dtype: Any = None):
        super().__init__(thresholds, top_k, class_id, name, dtype)

    def result(self) -> Any:
        """tp / (tp + fn), 0 where there was no positive label."""
        tp = self.true_positives
        return self._value(_divide_no_nan(tp, tp + self.false_negatives))


class AUC(Metric):
    """Area under the ROC or precision-recall curve, from confusion counts at thresholds.

    Predictions are bucketed once per batch (no per-threshold pass), so the cost of an
    update barely depends on `num_thresholds`.

    Args:
        num_thresholds: how many evenly spaced thresholds in [0, 1] (> 1).
        curve: "ROC" or "PR".
        summation_method: "interpolation" (trapezoids for ROC, Davis & Goadrich for PR),
            "minoring" or "majoring" (lower or upper Riemann sums).
        name, dtype: see `Metric`.
        thresholds: explicit thresholds in [0, 1] instead of `num_thresholds`.
        from_logits: apply a sigmoid to predictions first.
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 summation_method: str = "interpolation", name: str = "auc", dtype: Any = None,
                 thresholds: Any = None, from_logits: bool = False):
        self.curve = str(curve).upper()
        self.summation_method = str(summation_method).lower()
        if self.curve not in ("ROC", "PR"):
            raise ValueError(f"`curve` must be 'ROC' or 'PR'. Received: curve={curve!r}")
        if self.summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError("`summation_method` must be 'interpolation', 'minoring' or "
                             f"'majoring'. Received: summation_method={summation_method!r}")
        self._given_thresholds = None if thresholds is None else _thresholds(thresholds, None)
        self.thresholds = _auc_thresholds(num_thresholds, self._given_thresholds)
        self.num_thresholds = len(self.thresholds)
        self.from_logits = bool(from_logits)
        n = self.num_thresholds
        self._state_shapes = {"true_positives": (n,), "false_positives": (n,),
                              "true_negatives": (n,), "false_negatives": (n,)}
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the confusion counts of one batch at every threshold."""
        labels, preds, weights = _confusion_inputs(y_true, y_pred, sample_weight, None, None,
                                                   self.name)
        if self.from_logits:
            preds = 0.5 * (1.0 + np.tanh(0.5 * preds))  # sigmoid without overflow
        # bucket = how many thresholds lie strictly below the prediction, so a prediction
        # counts as positive at threshold j exactly when bucket > j.
        bucket = np.searchsorted(self.thresholds, preds, side="left")
        n = self.num_thresholds
        positive = np.where(labels, weights, 0.0)
        pos_hist = np.bincount(bucket, weights=positive, minlength=n + 1)
        neg_hist = np.bincount(bucket, weights=weights - positive, minlength=n + 1)
        tp = np.cumsum(pos_hist[::-1])[::-1][1:]
        fp = np.cumsum(neg_hist[::-1])[::-1][1:]
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += pos_hist.sum() - tp
        self.true_negatives += neg_hist.sum() - fp

    def result(self) -> MetricValue:
        """The area under the chosen curve."""
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return MetricValue(_interpolate_pr_auc(tp, fp, fn))
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return MetricValue(np.sum((x[:-1] - x[1:]) * heights))

    def get_config(self) -> dict[str, Any]:
        """Name, dtype and the constructor's curve arguments."""
        given = self._given_thresholds
        return {**super().get_config(), "num_thresholds": self.num_thresholds,
                "curve": self.curve, "summation_method": self.summation_method,
                "thresholds": None if given is None else given.tolist(),
                "from_logits": self.from_logits}


def _auc_thresholds(num_thresholds: Any, given: np.ndarray | None) -> np.ndarray:
    """Sorted thresholds bracketed by -EPSILON and 1 + EPSILON, as Keras builds them."""
    if given is not None:
        inner = np.sort(given)
    else:
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) \
                or num_thresholds <= 1:
            raise ValueError("`num_thresholds` must be an int > 1. "
                             f"Received: num_thresholds={num_thresholds!r}")
        inner = np.arange(1, num_thresholds - 1) / (num_thresholds - 1)
    return np.concatenate([[-EPSILON], inner, [1.0 + EPSILON]])


def _interpolate_pr_auc(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """Davis & Goadrich (2006) PR-AUC: precision interpolated between thresholds.

    Between adjacent thresholds tp grows linearly with the predicted positives p, so
    precision = slope + intercept / p, which integrates in closed form over recall.
    """
    d_tp = tp[:-1] - tp[1:]
    p = tp + fp
    d_p = p[:-1] - p[1:]
    slope = _divide_no_nan(d_tp, np.maximum(d_p, 0))
    intercept = tp[1:] - slope * p[1:]
    both_positive = (p[:-1] > 0) & (p[1:] > 0)
    p_ratio = np.where(both_positive, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.where(p_ratio > 0, p_ratio, 1.0))
    increments = _divide_no_nan(slope * (d_tp + intercept * log_ratio),
                                np.maximum(tp[1:] + fn[1:], 0))
    return float(np.sum(increments))




# ------------------------------------------------------------ counts at thresholds


def _counts(labels: np.ndarray, preds: np.ndarray, weights: np.ndarray,
            thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted tp/fp/tn/fn at each threshold (a prediction above it is positive)."""
    predicted = (preds[None, :] > thresholds[:, None]).astype(np.float64)
    positive = np.where(labels, weights, 0.0)
    negative = weights - positive
    tp, fp = predicted @ positive, predicted @ negative
    return {"true_positives": tp, "false_positives": fp,
            "true_negatives": negative.sum() - fp, "false_negatives": positive.sum() - tp}


class _Count(Metric):
    """One confusion count at the given thresholds (float result for a single threshold)."""

    _kind = ""

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        self.thresholds = _thresholds(thresholds, None)
        self._given_thresholds = thresholds
        self._state_shapes = {"accumulator": (len(self.thresholds),)}
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's weighted count at every threshold."""
        labels, preds, weights = _confusion_inputs(y_true, y_pred, sample_weight, None, None,
                                                   self.name)
        self.accumulator += _counts(labels, preds, weights, self.thresholds)[self._kind]

    def result(self) -> Any:
        """The count (an array for a list of thresholds)."""
        if np.ndim(self._given_thresholds) == 0:
            return MetricValue(self.accumulator[0])
        return self.accumulator.copy()

    def get_config(self) -> dict[str, Any]:
        """Name, dtype and thresholds."""
        given = self._given_thresholds
        return {**super().get_config(),
                "thresholds": None if given is None else np.asarray(given).tolist()}


def _count_class(name: str, kind: str, doc: str) -> type[_Count]:
    return type(name, (_Count,), {"_kind": kind, "__doc__": doc, "__module__": __name__})


TruePositives = _count_class(
    "TruePositives", "true_positives",
    "Weighted count of positive labels predicted above the threshold (default 0.5).")
FalsePositives = _count_class(
    "FalsePositives", "false_positives",
    "Weighted count of negative labels predicted above the threshold (default 0.5).")
TrueNegatives = _count_class(
    "TrueNegatives", "true_negatives",
    "Weighted count of negative labels predicted at or below the threshold (default 0.5).")
FalseNegatives = _count_class(
    "FalseNegatives", "false_negatives",
    "Weighted count of positive labels predicted at or below the threshold (default 0.5).")


# ------------------------------------------------------------ one rate at another's target


def _even_thresholds(num_thresholds: Any) -> np.ndarray:
    """Keras's list: [0, 1/(n-1), ..., (n-2)/(n-1), 1] ([0.5] for n == 1)."""
    if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) \
            or num_thresholds <= 0:
        raise ValueError("Argument `num_thresholds` must be an integer > 0. Received: "
                         f"num_thresholds={num_thresholds!r}")
    if num_thresholds == 1:
        return np.array([0.5])
    inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    return np.array([0.0, *inner, 1.0])


def _rates(state: Metric) -> dict[str, np.ndarray]:
    tp, fp = state.true_positives, state.false_positives
    tn, fn = state.true_negatives, state.false_negatives
    return {"recall": _divide_no_nan(tp, tp + fn), "precision": _divide_no_nan(tp, tp + fp),
            "specificity": _divide_no_nan(tn, tn + fp)}


class _AtTarget(Metric):
    """The best `dependent` rate among thresholds whose `constrained` rate reaches `value`.

    result = max(dependent[t] for t with constrained[t] >= value), 0 when none.
    """

    _constrained = ""
    _dependent = ""
    _value_name = ""

    def __init__(self, value: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"Argument `{self._value_name}` must be in the range [0, 1]. "
                             f"Received: {self._value_name}={value!r}")
        self.value = float(value)
        self.num_thresholds = num_thresholds
        self.thresholds = _even_thresholds(num_thresholds)
        self.class_id = None if class_id is None else int(class_id)
        n = len(self.thresholds)
        self._state_shapes = {k: (n,) for k in ("true_positives", "false_positives",
                                                "true_negatives", "false_negatives")}
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's confusion counts at every threshold."""
        labels, preds, weights = _confusion_inputs(y_true, y_pred, sample_weight, None,
                                                   self.class_id, self.name)
        for key, value in _counts(labels, preds, weights, self.thresholds).items():
            setattr(self, key, getattr(self, key) + value)

    def result(self) -> MetricValue:
        """The maximum under the constraint (see the class docstring)."""
        rates = _rates(self)
        feasible = rates[self._constrained] >= self.value
        best = rates[self._dependent][feasible].max(initial=0.0) if feasible.any() else 0.0
        return MetricValue(best)

    def get_config(self) -> dict[str, Any]:
        """Name, dtype, the target value, num_thresholds and class_id."""
        return {**super().get_config(), self._value_name: self.value,
                "num_thresholds": self.num_thresholds, "class_id": self.class_id}


class PrecisionAtRecall(_AtTarget):
    """Best precision where recall >= `recall`."""

    _constrained, _dependent, _value_name = "recall", "precision", "recall"

    def __init__(self, recall: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)


class RecallAtPrecision(_AtTarget):
    """Best recall where precision >= `precision`."""

    _constrained, _dependent, _value_name = "precision", "recall", "precision"

    def __init__(self, precision: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)


class SensitivityAtSpecificity(_AtTarget):
    """Best sensitivity (recall) where specificity >= `specificity`."""

    _constrained, _dependent, _value_name = "specificity", "recall", "specificity"

    def __init__(self, specificity: float, num_thresholds: int = 200,
                 class_id: int | None = None, name: str | None = None, dtype: Any = None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)


class SpecificityAtSensitivity(_AtTarget):
    """Best specificity where sensitivity (recall) >= `sensitivity`."""

    _constrained, _dependent, _value_name = "recall", "specificity", "sensitivity"

    def __init__(self, sensitivity: float, num_thresholds: int = 200,
                 class_id: int | None = None, name: str | None = None, dtype: Any = None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)


# ------------------------------------------------------------ F-scores


class _LazyState(Metric):
    """A metric whose state arrays get their shape from the first batch (class count)."""

    def __init__(self, name: str | None, dtype: Any):
        self._state_shapes = {}
        super().__init__(name, dtype)

    def _build(self, shapes: dict[str, tuple[int, ...]]) -> None:
        if not self._state_shapes:
            self._state_shapes = shapes
            self.reset_state()


def _two_d(y_true: Any, y_pred: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(_np(y_true), np.float64)
    y_pred = np.asarray(_np(y_pred), np.float64)
    if y_true.ndim != 2 or y_pred.ndim != 2:
        raise ValueError(f"{what} expects 2D inputs with shape (batch_size, output_dim). "
                         f"Received input shapes: y_pred.shape={y_pred.shape} and "
                         f"y_true.shape={y_true.shape}.")
    return y_true, y_pred


class FBetaScore(_LazyState):
    """F-beta per class (or averaged) from thresholded predictions, as Keras 3 computes it.

    Predictions are positive above `threshold`, or (threshold None) where they equal the
    row's maximum (and are nonzero). precision = tp / (tp + fp + eps), recall likewise;
    F = (1 + beta**2) * p * r / (beta**2 * p + r + eps). `average`: None (one value per
    class), 'micro' (global counts), 'macro' (mean over classes), 'weighted' (weighted
    by each class's label total).

    Args:
        average: None, 'micro', 'macro' or 'weighted'.
        beta: > 0.
        threshold: in (0, 1], or None.
        name, dtype: see `Metric`.
    """

    def __init__(self, average: str | None = None, beta: float = 1.0,
                 threshold: float | None = None, name: str = "fbeta_score", dtype: Any = None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("Invalid `average` argument value. Expected one of: {None, "
                             f"'micro', 'macro', 'weighted'}}. Received: average={average}")
        if isinstance(beta, bool) or not isinstance(beta, int | float) or beta <= 0:
            raise ValueError("`beta` should be a float greater than 0. Received: "
                             f"beta={beta!r}")
        if threshold is not None and not (isinstance(threshold, int | float)
                                          and 0 < threshold <= 1):
            raise ValueError("`threshold` should be a float in the range (0, 1]. Received: "
                             f"threshold={threshold!r}")
        self.average, self.beta, self.threshold = average, float(beta), threshold
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's per-class (or global, for 'micro') counts."""
        y_true, y_pred = _two_d(y_true, y_pred, type(self).__name__)
        if self.threshold is None:
            top = y_pred.max(axis=-1, keepdims=True)
            predicted = ((y_pred >= top) & (np.abs(y_pred) > 1e-9)).astype(np.float64)
        else:
            predicted = (y_pred > self.threshold).astype(np.float64)
        weights = 1.0 if sample_weight is None else \
            np.asarray(_np(sample_weight), np.float64).reshape(-1, 1)
        axis = None if self.average == "micro" else 0
        shape = () if self.average == "micro" else (y_pred.shape[-1],)
        self._build({k: shape for k in ("true_positives", "false_positives",
                                        "false_negatives", "intermediate_weights")})
        self.true_positives += np.sum(predicted * y_true * weights, axis=axis)
        self.false_positives += np.sum(predicted * (1 - y_true) * weights, axis=axis)
        self.false_negatives += np.sum((1 - predicted) * y_true * weights, axis=axis)
        self.intermediate_weights += np.sum(y_true * weights, axis=axis)

    def result(self) -> Any:
        """The score (an array of one value per class when `average` is None)."""
        if not self._state_shapes:
            return MetricValue(0.0)
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + EPSILON)
        recall = tp / (tp + self.false_negatives + EPSILON)
        b2 = self.beta ** 2
        score = precision * recall / (b2 * precision + recall + EPSILON) * (1 + b2)
        if self.average == "weighted":
            weights = self.intermediate_weights / (self.intermediate_weights.sum() + EPSILON)
            return MetricValue(np.sum(score * weights))
        if self.average is not None:
            return MetricValue(np.mean(score))
        return score

    def get_config(self) -> dict[str, Any]:
        """Name, dtype, average, beta and threshold."""
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """FBetaScore with beta = 1 (see `FBetaScore`)."""

    def __init__(self, average: str | None = None, threshold: float | None = None,
                 name: str = "f1_score", dtype: Any = None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name,
                         dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """Name, dtype, average and threshold."""
        config = super().get_config()
        del config["beta"]
        return config


# ------------------------------------------------------------ intersection over union


def _class_ids(values: Any, sparse: bool, axis: int) -> np.ndarray:
    arr = np.asarray(_np(values))
    return (arr if sparse else np.argmax(arr, axis=axis)).reshape(-1)


class IoU(Metric):
    """Intersection over union of the classes in `target_class_ids`, from a confusion matrix.

    iou_c = cm[c, c] / (row_c + col_c - cm[c, c] + eps); the result is the sum over the
    target classes divided by the number of them with a nonzero denominator. Labels out
    of range (or equal to `ignore_class`) count with weight 0.

    Args:
        num_classes: number of classes (the matrix is num_classes x num_classes).
        target_class_ids: the classes averaged.
        name, dtype: see `Metric`.
        ignore_class: a label value left out.
        sparse_y_true / sparse_y_pred: whether labels / predictions are class ids (else
            one-hot or scores, reduced with argmax over `axis`).
        axis: the class axis of dense inputs.
    """

    def __init__(self, num_classes: int, target_class_ids: Any, name: str | None = None,
                 dtype: Any = None, ignore_class: int | None = None, sparse_y_true: bool = True,
                 sparse_y_pred: bool = True, axis: int = -1):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive int. Received: "
                             f"num_classes={num_classes!r}")
        self.num_classes = num_classes
        self.target_class_ids = [int(c) for c in target_class_ids]
        if max(self.target_class_ids, default=-1) >= num_classes:
            raise ValueError("Target class id is out of range: it must be < num_classes. "
                             f"Received: target_class_ids={target_class_ids}")
        self.ignore_class, self.axis = ignore_class, axis
        self.sparse_y_true, self.sparse_y_pred = bool(sparse_y_true), bool(sparse_y_pred)
        self._state_shapes = {"total_cm": (num_classes, num_classes)}
        super().__init__(name, dtype or "int64")  # Keras's default dtype here is "int"

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's (weighted) confusion matrix: rows labels, columns predictions."""
        labels = _class_ids(y_true, self.sparse_y_true, self.axis).astype(np.int64)
        preds = _class_ids(self._predictions(y_pred), self.sparse_y_pred,
                           self.axis).astype(np.int64)
        weights = np.ones(labels.shape) if sample_weight is None else np.broadcast_to(
            self._weights(sample_weight), labels.shape)
        n = self.num_classes
        valid = (labels >= 0) & (labels < n) & (preds >= 0) & (preds < n)
        if self.ignore_class is not None:
            valid &= labels != self.ignore_class
        cells = np.where(valid, labels * n + preds, 0)
        self.total_cm += np.bincount(cells, weights=np.where(valid, weights, 0.0),
                                     minlength=n * n).reshape(n, n)

    def _predictions(self, y_pred: Any) -> Any:
        return y_pred

    def _weights(self, sample_weight: Any) -> np.ndarray:
        """Flat float64 weights; an integer metric truncates float weights, as Keras does."""
        weights = np.asarray(_np(sample_weight))
        if "int" in self.dtype and weights.dtype.kind == "f":
            warnings.warn("You are passing weight as `float`, but dtype is `int`. This may "
                          "result in an incorrect weight due to type casting Consider using "
                          "integer weights.", stacklevel=3)
            weights = weights.astype(np.int64)
        return weights.astype(np.float64).reshape(-1)

    def result(self) -> MetricValue:
        """Mean IoU over the target classes that occur (see the class docstring)."""
        cm = self.total_cm
        tp = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1) - tp
        ids = self.target_class_ids
        valid = np.sum(denominator[ids] > 1e-9)
        iou = tp[ids] / (denominator[ids] + EPSILON)
        return MetricValue(iou.sum() / (valid + EPSILON))

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {**super().get_config(), "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of binary labels, predictions >= `threshold` counting as class 1."""

    def __init__(self, target_class_ids: Any = (0, 1), threshold: float = 0.5,
                 name: str | None = None, dtype: Any = None):
        self.threshold = float(threshold)
        super().__init__(2, target_class_ids, name=name, dtype=dtype)

    def _predictions(self, y_pred: Any) -> Any:
        return (np.asarray(_np(y_pred), np.float32) >= self.threshold).astype(np.int64)

    def get_config(self) -> dict[str, Any]:
        """Name, dtype, target_class_ids and threshold."""
        return {"name": self.name, "dtype": self.dtype,
                "target_class_ids": self.target_class_ids, "threshold": self.threshold}


class MeanIoU(IoU):
    """IoU averaged over all `num_classes` classes."""

    def __init__(self, num_classes: int, name: str | None = None, dtype: Any = None,
                 ignore_class: int | None = None, sparse_y_true: bool = True,
                 sparse_y_pred: bool = True, axis: int = -1):
        super().__init__(num_classes, list(range(num_classes)), name, dtype, ignore_class,
                         sparse_y_true, sparse_y_pred, axis)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        config = super().get_config()
        del config["target_class_ids"]
        return config


class OneHotIoU(IoU):
    """IoU with one-hot labels (and, by default, score predictions reduced by argmax)."""

    def __init__(self, num_classes: int, target_class_ids: Any, name: str | None = None,
                 dtype: Any = None, ignore_class: int | None = None,
                 sparse_y_pred: bool = False, axis: int = -1):
        super().__init__(num_classes, target_class_ids, name, dtype, ignore_class, False,
                         sparse_y_pred, axis)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """MeanIoU with one-hot labels (and, by default, score predictions reduced by argmax)."""

    def __init__(self, num_classes: int, name: str | None = None, dtype: Any = None,
                 ignore_class: int | None = None, sparse_y_pred: bool = False, axis: int = -1):
        super().__init__(num_classes, name, dtype, ignore_class, False, sparse_y_pred, axis)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        config = super().get_config()
        del config["sparse_y_true"]
        return config


CLASSES: tuple[type[Metric], ...] = (
    TruePositives, FalsePositives, TrueNegatives, FalseNegatives, PrecisionAtRecall,
    RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity, FBetaScore,
    F1Score, IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU)

NAMES: dict[str, Callable[..., Metric]] = {
    "true_positives": TruePositives, "false_positives": FalsePositives,
    "true_negatives": TrueNegatives, "false_negatives": FalseNegatives,
    "f1_score": F1Score, "fbeta_score": FBetaScore}

__all__ = [cls.__name__ for cls in CLASSES]
