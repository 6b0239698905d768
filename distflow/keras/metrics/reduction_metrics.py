"""`Mean`, `Sum` and `MeanMetricWrapper` (the running mean of a per-sample function)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras.metrics.metric import (
    Metric,
    MetricValue,
    _function_by_name,
    _np,
    _samplewise_totals,
    _weights_like,
)


class Mean(Metric):
    """Weighted mean of the values passed to `update_state(values, sample_weight=None)`.

    Values with several axes count once per sample (their mean over the non-batch
    axes), as in Keras.
    """

    _state_shapes = {"total": (), "count": ()}

    def __init__(self, name: str = "mean", dtype: Any = None):
        super().__init__(name, dtype)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Adds a batch of values (or one value)."""
        total, count = _samplewise_totals(values, sample_weight)
        self.total += total
        self.count += count

    def result(self) -> MetricValue:
        """total / count (0 before any update)."""
        return MetricValue(self.total / self.count if self.count else 0.0)


class Sum(Metric):
    """Weighted sum of the values passed to `update_state(values, sample_weight=None)`."""

    _state_shapes = {"total": ()}

    def __init__(self, name: str = "sum", dtype: Any = None):
        super().__init__(name, dtype)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Adds the (weighted) sum of a batch."""
        values = np.asarray(_np(values), dtype=np.float64)
        if sample_weight is not None:
            values = values * _weights_like(sample_weight, values)
        self.total += float(values.sum())

    def result(self) -> MetricValue:
        """The running sum."""
        return MetricValue(self.total)


class MeanMetricWrapper(Mean):
    """The mean over samples of a per-sample function `fn(y_true, y_pred, **kwargs)`.

    Args:
        fn: returns one value per sample (NumPy arrays or tensors).
        name: the metric's name (defaults to the function's name).
        dtype: see `Metric`.
        **kwargs: passed to `fn` at every update.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, dtype: Any = None,
                 **kwargs: Any):
        if not callable(fn):
            raise TypeError(f"`fn` must be callable. Received: fn={fn!r}")
        super().__init__(name or getattr(fn, "__name__", "mean_metric_wrapper"), dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the per-sample values of one batch."""
        Mean.update_state(self, self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self) -> dict[str, Any]:
        """Name, dtype and the function's keyword arguments."""
        config = {**super().get_config(), **self._fn_kwargs}
        if type(self) is MeanMetricWrapper:
            config["fn"] = getattr(self._fn, "__name__", None)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MeanMetricWrapper:
        """Rebuilds the wrapper (a built-in function may be given by name)."""
        config = dict(config)
        if cls is MeanMetricWrapper:
            fn = config.pop("fn")
            return cls(_function_by_name(fn, {}) if isinstance(fn, str) else fn, **config)
        return cls(**config)
