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

    def _update_kernel(self, fn: Callable, values: Any = None, sample_weight: Any = None,
                       *rest: Any, **kwargs: Any) -> Callable | None:
        """A loss tracker's update in a traced step, `values` one symbolic float scalar
        and `sample_weight` a number or None: the two additions `update_state` makes."""
        if fn is not _MEAN_UPDATE or rest or kwargs or not _symbolic_scalar(values) or \
                not (sample_weight is None or type(sample_weight) in (int, float)):
            return None
        weight = 1.0 if sample_weight is None else float(sample_weight)

        def update(value: np.ndarray) -> None:
            self.total += float(value) * weight
            self.count += weight
        return update

    def _result_kernel(self, fn: Callable) -> Callable | None:
        """`result()` in a traced step as one array (what the recorded call returns)."""
        if fn is not _MEAN_RESULT:
            return None
        return lambda: (np.array(float(self.total / self.count) if self.count else 0.0),)


_MEAN_UPDATE, _MEAN_RESULT = Mean.update_state.__wrapped__, Mean.result.__wrapped__


def _symbolic_scalar(values: Any) -> bool:
    """Whether `values` is a graph tensor of one float (a loss) while a step is traced."""
    return bool(getattr(values, "_symbolic", False)) and values.shape.rank == 0 \
        and np.dtype(values.dtype).kind == "f"


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

    def _update_kernel(self, fn: Callable, y_true: Any = None, y_pred: Any = None,
                       sample_weight: Any = None, *rest: Any, **kwargs: Any
                       ) -> Callable | None:
        """In a traced step, unweighted, one symbolic label and prediction tensor: the
        function on the arrays and its per-sample values added up as `Mean` adds them
        (values of another rank take `Mean.update_state` itself)."""
        if fn is not _WRAPPER_UPDATE or rest or kwargs or sample_weight is not None or not (
                getattr(y_true, "_symbolic", False) and getattr(y_pred, "_symbolic", False)):
            return None
        mean_update = _MEAN_UPDATE

        def update(labels: np.ndarray, predictions: np.ndarray) -> None:
            values = np.asarray(self._fn(labels, predictions, **self._fn_kwargs), np.float64)
            if values.ndim != 1:
                mean_update(self, values)
                return
            self.total += float(values.sum())
            self.count += float(values.shape[0])
        return update

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


_WRAPPER_UPDATE = MeanMetricWrapper.update_state.__wrapped__
