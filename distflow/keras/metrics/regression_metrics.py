"""Keras's regression metrics beyond the mean errors (exported by `keras.metrics`).

R2Score, CosineSimilarity, LogCoshError, Poisson, CategoricalHinge, with
Keras 3's formulas; per-sample functions compute in float64 with NumPy (metrics
never take part in differentiation).

Also the errors (MSE, MAE, MAPE, MSLE, RMSE) and the hinge metrics.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras.metrics.metric import (
    EPSILON,
    Metric,
    MetricValue,
    _float_pair,
    _last_axis_mean,
    _np,
)
from distflow.keras.metrics.reduction_metrics import Mean, MeanMetricWrapper


def mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of (y_true - y_pred)**2 over the last axis."""
    y_true, y_pred = _float_pair(y_true, y_pred, "mean_squared_error")
    return _last_axis_mean(np.square(y_pred - y_true))


def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of |y_true - y_pred| over the last axis."""
    y_true, y_pred = _float_pair(y_true, y_pred, "mean_absolute_error")
    return _last_axis_mean(np.abs(y_pred - y_true))


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample 100 * mean(|y_true - y_pred| / max(|y_true|, EPSILON))."""
    y_true, y_pred = _float_pair(y_true, y_pred, "mean_absolute_percentage_error")
    return 100.0 * _last_axis_mean(np.abs(y_true - y_pred) / np.maximum(np.abs(y_true), EPSILON))


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of (log1p(max(y_pred, EPSILON)) - log1p(max(y_true, EPSILON)))**2."""
    y_true, y_pred = _float_pair(y_true, y_pred, "mean_squared_logarithmic_error")
    diff = np.log1p(np.maximum(y_pred, EPSILON)) - np.log1p(np.maximum(y_true, EPSILON))
    return _last_axis_mean(np.square(diff))




def _signed(y_true: np.ndarray) -> np.ndarray:
    if y_true.size and np.all((y_true == 0) | (y_true == 1)):
        return 2.0 * y_true - 1.0
    return y_true


def hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean(max(1 - y_true * y_pred, 0)), {0, 1} labels mapped to {-1, 1}."""
    y_true, y_pred = _float_pair(y_true, y_pred, "hinge")
    return _last_axis_mean(np.maximum(1.0 - _signed(y_true) * y_pred, 0.0))


def squared_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean(max(1 - y_true * y_pred, 0)**2)."""
    y_true, y_pred = _float_pair(y_true, y_pred, "squared_hinge")
    return _last_axis_mean(np.square(np.maximum(1.0 - _signed(y_true) * y_pred, 0.0)))




mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error


class MeanSquaredError(MeanMetricWrapper):
    """Mean over samples of the per-sample mean squared error."""

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """Mean over samples of the per-sample mean absolute error."""

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(mean_absolute_error, name, dtype)


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """Mean over samples of the per-sample mean absolute percentage error."""

    def __init__(self, name: str = "mean_absolute_percentage_error", dtype: Any = None):
        super().__init__(mean_absolute_percentage_error, name, dtype)


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """Mean over samples of the per-sample mean squared logarithmic error."""

    def __init__(self, name: str = "mean_squared_logarithmic_error", dtype: Any = None):
        super().__init__(mean_squared_logarithmic_error, name, dtype)


class RootMeanSquaredError(Mean):
    """sqrt of the weighted mean of squared errors over everything seen."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None):
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the squared errors of one batch."""
        y_true, y_pred = _float_pair(y_true, y_pred, "root_mean_squared_error")
        super().update_state(np.square(y_pred - y_true), sample_weight)

    def result(self) -> MetricValue:
        """sqrt(total / count)."""
        return MetricValue(np.sqrt(self.total / self.count) if self.count else 0.0)




class Hinge(MeanMetricWrapper):
    """Mean hinge loss."""

    def __init__(self, name: str = "hinge", dtype: Any = None):
        super().__init__(hinge, name, dtype)


class SquaredHinge(MeanMetricWrapper):
    """Mean squared hinge loss."""

    def __init__(self, name: str = "squared_hinge", dtype: Any = None):
        super().__init__(squared_hinge, name, dtype)




def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """sum(l2_normalize(y_true) * l2_normalize(y_pred), axis) per sample."""
    y_true, y_pred = _float_pair(y_true, y_pred, "cosine_similarity")

    def normalize(x: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.maximum(np.sum(np.square(x), axis=axis, keepdims=True), 1e-12))
    return np.sum(normalize(y_true) * normalize(y_pred), axis=axis)


def log_cosh(y_true: Any, y_pred: Any) -> np.ndarray:
    """mean(log(cosh(y_pred - y_true)), axis=-1), computed without overflow."""
    y_true, y_pred = _float_pair(y_true, y_pred, "log_cosh")
    x = y_pred - y_true
    return np.mean(x + np.logaddexp(0.0, -2.0 * x) - np.log(2.0), axis=-1)


def poisson(y_true: Any, y_pred: Any) -> np.ndarray:
    """mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)."""
    y_true, y_pred = _float_pair(y_true, y_pred, "poisson")
    return np.mean(y_pred - y_true * np.log(y_pred + EPSILON), axis=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """max(0, 1 + max((1 - y_true) * y_pred) - sum(y_true * y_pred)) per sample."""
    y_true, y_pred = _float_pair(y_true, y_pred, "categorical_hinge")
    pos = np.sum(y_true * y_pred, axis=-1)
    neg = np.max((1.0 - y_true) * y_pred, axis=-1)
    return np.maximum(0.0, 1.0 + neg - pos)


def pearson_correlation(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """mean(z(y_true) * z(y_pred), axis): z centers and divides by the standard deviation."""
    y_true, y_pred = _float_pair(y_true, y_pred, "pearson_correlation")

    def standardized(x: np.ndarray) -> np.ndarray:
        centered = x - np.mean(x, axis=axis, keepdims=True)
        return centered / np.std(centered, axis=axis, keepdims=True)
    return np.mean(standardized(y_true) * standardized(y_pred), axis=axis)


def concordance_correlation(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """Keras 3's concordance correlation, as written there:

    mean(2 (y_true - mean(y_pred)) (y_pred - mean(y_pred)) /
         (var(y_true) + var(y_pred) + (mean(y_true) - mean(y_pred))**2 + epsilon), axis).
    """
    y_true, y_pred = _float_pair(y_true, y_pred, "concordance_correlation")
    true_mean = np.mean(y_true, axis=axis, keepdims=True)
    pred_mean = np.mean(y_pred, axis=axis, keepdims=True)
    norm = np.var(y_true - true_mean, axis=axis, keepdims=True) + \
        np.var(y_pred - pred_mean, axis=axis, keepdims=True) + np.square(true_mean - pred_mean)
    covar = (y_true - pred_mean) * (y_pred - pred_mean)
    return np.mean(2 * covar / (norm + EPSILON), axis=axis)


class PearsonCorrelation(MeanMetricWrapper):
    """Mean Pearson correlation along `axis` (see `pearson_correlation`)."""

    def __init__(self, name: str = "pearson_correlation", dtype: Any = None, axis: int = -1):
        super().__init__(pearson_correlation, name=name, dtype=dtype, axis=axis)


class ConcordanceCorrelation(MeanMetricWrapper):
    """Mean concordance correlation along `axis` (see `concordance_correlation`)."""

    def __init__(self, name: str = "concordance_correlation", dtype: Any = None,
                 axis: int = -1):
        super().__init__(concordance_correlation, name=name, dtype=dtype, axis=axis)


class CosineSimilarity(MeanMetricWrapper):
    """Mean cosine similarity between labels and predictions along `axis`."""

    def __init__(self, name: str = "cosine_similarity", dtype: Any = None, axis: int = -1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)


class LogCoshError(MeanMetricWrapper):
    """Mean of log(cosh(prediction error))."""

    def __init__(self, name: str = "logcosh", dtype: Any = None):
        super().__init__(log_cosh, name=name, dtype=dtype)


class Poisson(MeanMetricWrapper):
    """Mean Poisson deviance term y_pred - y_true * log(y_pred)."""

    def __init__(self, name: str = "poisson", dtype: Any = None):
        super().__init__(poisson, name=name, dtype=dtype)


class CategoricalHinge(MeanMetricWrapper):
    """Mean categorical hinge of one-hot labels against scores."""

    def __init__(self, name: str = "categorical_hinge", dtype: Any = None):
        super().__init__(categorical_hinge, name=name, dtype=dtype)


class R2Score(Metric):
    """The coefficient of determination, per output column then aggregated (Keras 3's).

    Per column: 1 - SSE / (sum(w y^2) - sum(w y)^2 / sum(w)); infinite values (constant
    labels) become 0. `class_aggregation`: 'uniform_average' (mean over columns),
    'variance_weighted_average' (weighted by each column's total variance) or None
    (one value per column). With `num_regressors` p > 0 and n labels seen (rows times
    columns, as Keras counts them): adjusted R2 = 1 - (1 - R2) (n - 1) / (n - p - 1).

    Args:
        class_aggregation: see above.
        num_regressors: number of independent variables for the adjusted score.
        name, dtype: see `Metric`.
    """

    def __init__(self, class_aggregation: str | None = "uniform_average",
                 num_regressors: int = 0, name: str = "r2_score", dtype: Any = None):
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError("Invalid value for argument `class_aggregation`. Expected one of "
                             "{None, 'uniform_average', 'variance_weighted_average'}. "
                             f"Received: class_aggregation={class_aggregation}")
        if isinstance(num_regressors, bool) or not isinstance(num_regressors, int) \
                or num_regressors < 0:
            raise ValueError("Invalid value for argument `num_regressors`. Expected a value "
                             f">= 0. Received: num_regressors={num_regressors!r}")
        self.class_aggregation, self.num_regressors = class_aggregation, num_regressors
        self._state_shapes = {}
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's weighted sums per column."""
        y_true, y_pred = _float_pair(y_true, y_pred, "R2Score")
        if y_true.ndim != 2:
            raise ValueError("R2Score expects 2D inputs with shape (batch_size, output_dim). "
                             f"Received input shapes: y_pred.shape={y_pred.shape} and "
                             f"y_true.shape={y_true.shape}.")
        if not self._state_shapes:
            columns = (y_true.shape[-1],)
            self._state_shapes = {"squared_sum": columns, "sum": columns, "total_mse": columns,
                                  "count": columns, "num_samples": ()}
            self.reset_state()
        weights = np.ones(()) if sample_weight is None else np.asarray(_np(sample_weight),
                                                                        np.float64)
        weights = np.broadcast_to(weights.reshape(-1, 1) if weights.ndim == 1 else weights,
                                  y_true.shape)
        self.sum += np.sum(y_true * weights, axis=0)
        self.squared_sum += np.sum(y_true * y_true * weights, axis=0)
        self.total_mse += np.sum(np.square(y_true - y_pred) * weights, axis=0)
        self.count += np.sum(weights, axis=0)
        self.num_samples += y_true.size

    def result(self) -> Any:
        """The (aggregated, optionally adjusted) score."""
        if not self._state_shapes:
            return MetricValue(0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            total = self.squared_sum - self.sum * (self.sum / self.count)
            raw = 1.0 - self.total_mse / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        score = _aggregate(raw, total, self.class_aggregation)
        return _adjusted(score, float(self.num_samples), self.num_regressors)

    def get_config(self) -> dict[str, Any]:
        """Name, dtype, class_aggregation and num_regressors."""
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


def _aggregate(raw: np.ndarray, total: np.ndarray, how: str | None) -> Any:
    if how == "uniform_average":
        return float(np.mean(raw))
    if how == "variance_weighted_average":
        return float(np.sum(total * raw) / np.sum(total))
    return raw


def _adjusted(score: Any, n: float, p: int) -> Any:
    if p == 0:
        return MetricValue(score) if np.ndim(score) == 0 else score
    if p >= n - 1:
        warnings.warn("More independent predictors than datapoints in adjusted R2 score (or "
                      "as many): falling back to standard R2 score.", stacklevel=3)
        return MetricValue(score) if np.ndim(score) == 0 else score
    adjusted = 1.0 - (1.0 - np.asarray(score)) * (n - 1.0) / (n - p - 1.0)
    return MetricValue(adjusted) if np.ndim(adjusted) == 0 else adjusted


CLASSES: tuple[type[Metric], ...] = (R2Score, CosineSimilarity, LogCoshError, Poisson,
                                     CategoricalHinge, PearsonCorrelation,
                                     ConcordanceCorrelation)
NAMES: dict[str, Callable[..., Metric]] = {
    "r2_score": R2Score, "cosine_similarity": CosineSimilarity, "logcosh": LogCoshError,
    "log_cosh": LogCoshError, "poisson": Poisson, "categorical_hinge": CategoricalHinge,
    "pearson_correlation": PearsonCorrelation,
    "concordance_correlation": ConcordanceCorrelation}
# Metric twins of loss functions of the same name (`metrics.get(losses.poisson)`); not
# cosine_similarity, whose loss is the negative similarity.
FUNCTIONS: tuple[Callable, ...] = (log_cosh, poisson, categorical_hinge, pearson_correlation,
                                   concordance_correlation)
