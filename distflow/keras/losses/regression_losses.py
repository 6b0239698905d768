"""Regression and hinge losses: per-sample functions and their `Loss` classes."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras.losses.loss import _LOG2, EPSILON, Loss, _prepare
from distflow.tensor import Tensor

# ----------------------------------------------------------- regression losses


def mean_squared_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean((y_pred - y_true)**2) over the last axis, one value per sample."""
    y_true, y_pred = _prepare(y_true, y_pred, "mean_squared_error")
    return ops.mean(ops.square(ops.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean(|y_pred - y_true|) over the last axis."""
    y_true, y_pred = _prepare(y_true, y_pred, "mean_absolute_error")
    return ops.mean(ops.abs(ops.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Tensor:
    """100 * mean(|y_true - y_pred| / max(|y_true|, EPSILON)) over the last axis."""
    y_true, y_pred = _prepare(y_true, y_pred, "mean_absolute_percentage_error")
    scale = ops.maximum(ops.abs(y_true), EPSILON)
    ratio = ops.abs(ops.divide(ops.subtract(y_true, y_pred), scale))
    return ops.multiply(ops.mean(ratio, axis=-1), 100.0)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean((log(1 + max(y_pred, EPSILON)) - log(1 + max(y_true, EPSILON)))**2)."""
    y_true, y_pred = _prepare(y_true, y_pred, "mean_squared_logarithmic_error")
    log_pred = ops.log(ops.add(ops.maximum(y_pred, EPSILON), 1.0))
    log_true = ops.log(ops.add(ops.maximum(y_true, EPSILON), 1.0))
    return ops.mean(ops.square(ops.subtract(log_pred, log_true)), axis=-1)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Tensor:
    """Quadratic for |error| <= delta, linear beyond: mean over the last axis.

    0.5 * e**2 if |e| <= delta, else delta * |e| - 0.5 * delta**2, written as
    0.5 * q**2 + delta * (|e| - q) with q = min(|e|, delta).
    """
    y_true, y_pred = _prepare(y_true, y_pred, "huber")
    abs_error = ops.abs(ops.subtract(y_pred, y_true))
    quadratic = ops.minimum(abs_error, float(delta))
    linear = ops.subtract(abs_error, quadratic)
    per_element = ops.add(ops.multiply(ops.square(quadratic), 0.5),
                          ops.multiply(linear, float(delta)))
    return ops.mean(per_element, axis=-1)


def log_cosh(y_true: Any, y_pred: Any) -> Tensor:
    """mean(log(cosh(y_pred - y_true))), computed as x + softplus(-2x) - log 2."""
    y_true, y_pred = _prepare(y_true, y_pred, "log_cosh")
    x = ops.subtract(y_pred, y_true)
    stable = ops.add(x, ops.softplus(ops.multiply(x, -2.0)))
    return ops.mean(ops.subtract(stable, _LOG2), axis=-1)


def poisson(y_true: Any, y_pred: Any) -> Tensor:
    """mean(y_pred - y_true * log(y_pred + EPSILON)) over the last axis."""
    y_true, y_pred = _prepare(y_true, y_pred, "poisson")
    log_pred = ops.log(ops.add(y_pred, EPSILON))
    return ops.mean(ops.subtract(y_pred, ops.multiply(y_true, log_pred)), axis=-1)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Tensor:
    """Negative cosine similarity along `axis` (-1 means the vectors point the same way)."""
    y_true, y_pred = _prepare(y_true, y_pred, "cosine_similarity")
    cos = ops.sum(ops.multiply(nn.l2_normalize(y_true, axis), nn.l2_normalize(y_pred, axis)),
                  axis=axis)
    return ops.negative(cos)


# ------------------------------------------------------------- hinge losses


def _signed_labels(y_true: Tensor) -> Tensor:
    """Keras converts {0, 1} labels to {-1, 1}; other labels are used as given."""
    values = y_true.value
    if values.size and np.all((values == 0) | (values == 1)):
        return ops.subtract(ops.multiply(y_true, 2.0), 1.0)
    return y_true


def hinge(y_true: Any, y_pred: Any) -> Tensor:
    """mean(max(1 - y_true * y_pred, 0)), labels in {-1, 1} (or {0, 1}, converted)."""
    y_true, y_pred = _prepare(y_true, y_pred, "hinge")
    margin = ops.subtract(1.0, ops.multiply(_signed_labels(y_true), y_pred))
    return ops.mean(ops.relu(margin), axis=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> Tensor:
    """mean(max(1 - y_true * y_pred, 0)**2), labels in {-1, 1} (or {0, 1})."""
    y_true, y_pred = _prepare(y_true, y_pred, "squared_hinge")
    margin = ops.subtract(1.0, ops.multiply(_signed_labels(y_true), y_pred))
    return ops.mean(ops.square(ops.relu(margin)), axis=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> Tensor:
    """max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0), one-hot labels."""
    y_true, y_pred = _prepare(y_true, y_pred, "categorical_hinge")
    positive = ops.sum(ops.multiply(y_true, y_pred), axis=-1)
    negative = ops.max(ops.multiply(ops.subtract(1.0, y_true), y_pred), axis=-1)
    return ops.relu(ops.add(ops.subtract(negative, positive), 1.0))



mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
logcosh = log_cosh
huber_loss = huber


class MeanSquaredError(Loss):
    """Mean of squared errors: `mean((y_true - y_pred)**2)` per sample."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample mean squared error."""
        return mean_squared_error(y_true, y_pred)


class MeanAbsoluteError(Loss):
    """Mean of absolute errors: `mean(|y_true - y_pred|)` per sample."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample mean absolute error."""
        return mean_absolute_error(y_true, y_pred)


class MeanAbsolutePercentageError(Loss):
    """`100 * mean(|y_true - y_pred| / max(|y_true|, EPSILON))` per sample."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "mean_absolute_percentage_error", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample mean absolute percentage error."""
        return mean_absolute_percentage_error(y_true, y_pred)


class MeanSquaredLogarithmicError(Loss):
    """`mean((log(1 + y_pred) - log(1 + y_true))**2)` per sample."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "mean_squared_logarithmic_error", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample mean squared logarithmic error."""
        return mean_squared_logarithmic_error(y_true, y_pred)


class Huber(Loss):
    """Huber loss: quadratic for errors up to `delta`, linear beyond.

    Args:
        delta: the error size where the loss turns linear (> 0).
        reduction, name, dtype: see `Loss`.
    """

    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str = "huber_loss", dtype: Any = None):
        if not float(delta) > 0:
            raise ValueError(f"`delta` must be positive. Received: delta={delta}")
        super().__init__(name, reduction, dtype)
        self.delta = float(delta)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample Huber loss."""
        return huber(y_true, y_pred, self.delta)

    def get_config(self) -> dict[str, Any]:
        """Base config plus `delta`."""
        return {**super().get_config(), "delta": self.delta}


class LogCosh(Loss):
    """`mean(log(cosh(y_pred - y_true)))` per sample."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "log_cosh", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample log-cosh loss."""
        return log_cosh(y_true, y_pred)


class Poisson(Loss):
    """`mean(y_pred - y_true * log(y_pred))` per sample."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "poisson", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample Poisson loss."""
        return poisson(y_true, y_pred)


class CosineSimilarity(Loss):
    """Negative cosine similarity along `axis`.

    Args:
        axis: the axis of the vectors.
        reduction, name, dtype: see `Loss`.
    """

    def __init__(self, axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str = "cosine_similarity", dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.axis = int(axis)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample negative cosine similarity."""
        return cosine_similarity(y_true, y_pred, self.axis)

    def get_config(self) -> dict[str, Any]:
        """Base config plus `axis`."""
        return {**super().get_config(), "axis": self.axis}


class Hinge(Loss):
    """`mean(max(1 - y_true * y_pred, 0))` with labels in {-1, 1} or {0, 1}."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "hinge", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample hinge loss."""
        return hinge(y_true, y_pred)


class SquaredHinge(Loss):
    """`mean(max(1 - y_true * y_pred, 0)**2)` with labels in {-1, 1} or {0, 1}."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "squared_hinge", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample squared hinge loss."""
        return squared_hinge(y_true, y_pred)


class CategoricalHinge(Loss):
    """Hinge loss over one-hot labels: `max(max_wrong - correct + 1, 0)`."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_hinge", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample categorical hinge loss."""
        return categorical_hinge(y_true, y_pred)
