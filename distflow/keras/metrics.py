"""Metrics, as `keras.metrics`: stateful objects that accumulate over batches.

A metric is updated with `update_state(y_true, y_pred, sample_weight=None)`,
read with `result()` and cleared with `reset_state()`. Metrics never take part
in differentiation: they read the arrays behind tensors (`.value`) and compute
with NumPy, keeping their running totals in float64, so that accumulating
several batches gives the same result as one batch holding them all.

`get(identifier)` turns a name, a config dict, a function or a `Metric` into a
`Metric`; `resolve(identifier, loss)` also applies Keras's rule for
`"accuracy"` / `"acc"` and `"crossentropy"` / `"ce"`, which pick the binary,
categorical or sparse categorical variant from the loss (or, when the loss
says nothing, from the shapes of the first batch).

Every metric's state is a few additive NumPy arrays (`get_state()`), so the
states of several workers combine with `merge_state`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from distflow.keras._objects import class_and_config, serialize_object
from distflow.tensor import Tensor, Variable

EPSILON = 1e-7  # Keras's backend.epsilon()


def _np(x: Any) -> np.ndarray:
    """The array behind a tensor, or `x` as an array (no copy when possible)."""
    return x.value if isinstance(x, Tensor) else np.asarray(x)


def _snake_case(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or
                                   (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _match_rank(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's squeeze-or-expand: (N,) labels against (N, 1) predictions become (N, 1)."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape[:-1])
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape + (1,))
    return y_true, y_pred


def _same_shape(y_true: Any, y_pred: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _match_rank(_np(y_true), _np(y_pred))
    if y_true.shape != y_pred.shape:
        hint = (" Integer class labels need the sparse variant (e.g. "
                "sparse_categorical_accuracy)." if y_true.shape == y_pred.shape[:-1] else "")
        raise ValueError(f"`y_true` and `y_pred` must have the same shape for {what}. "
                         f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
                         + hint)
    return y_true, y_pred


def _last_axis_mean(values: np.ndarray) -> np.ndarray:
    """One value per sample; rank-1 inputs already are (Keras would average the batch)."""
    return values.mean(axis=-1) if values.ndim > 1 else values


class MetricValue(float):
    """A float returned by `result()`; `.numpy()` is there for code written for TF tensors."""

    def numpy(self) -> np.float64:
        """The value as a NumPy scalar."""
        return np.float64(self)


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


def _float_pair(y_true: Any, y_pred: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _same_shape(y_true, y_pred, what)
    return y_true.astype(np.float64, copy=False), y_pred.astype(np.float64, copy=False)


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


# Keras's short names.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence


# ------------------------------------------------------------------ weights


def _weights_like(sample_weight: Any, values: np.ndarray) -> np.ndarray:
    """`sample_weight` (float64) rank-matched to `values`: (N,) or (N, 1) per sample."""
    weights = np.asarray(_np(sample_weight), dtype=np.float64)
    if weights.ndim == values.ndim + 1 and weights.shape[-1] == 1:
        weights = weights.reshape(weights.shape[:-1])
    elif 0 < weights.ndim < values.ndim:
        weights = weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))
    try:
        np.broadcast_shapes(weights.shape, values.shape)
    except ValueError:
        raise ValueError(
            f"`sample_weight` must have one weight per sample. Received: sample_weight.shape="
            f"{np.shape(_np(sample_weight))} for values of shape {values.shape}.") from None
    return weights


def _samplewise_totals(values: Any, sample_weight: Any = None) -> tuple[float, float]:
    """(weighted sum, weight) of the per-sample means of `values`, as Keras's Mean counts.

    Values with more than one axis are first averaged over the non-batch axes, so
    every sample counts once (times its weight).
    """
    values = np.asarray(_np(values), dtype=np.float64)
    if values.ndim == 0 and (sample_weight is None or np.ndim(_np(sample_weight)) == 0):
        weight = 1.0 if sample_weight is None else float(_np(sample_weight))  # a loss value
        return float(values) * weight, weight
    if sample_weight is not None:
        weights = _weights_like(sample_weight, values)
        values, weights = np.broadcast_arrays(values, weights)
    if values.size == 0:
        return 0.0, 0.0
    samples = values.shape[0] if values.ndim else 1
    per_sample = values.size // samples  # values in each sample
    if sample_weight is None:
        return float(values.sum()) / per_sample, float(samples)
    return (float(np.vdot(values, weights)) / per_sample,
            float(weights.sum()) / per_sample)


# ------------------------------------------------------------------ classes


class Metric:
    """Base class of stateful metrics.

    Subclasses list their additive state in `_state_shapes` (name -> shape), set
    in `reset_state()` as float64 arrays, and implement `update_state` and `result`.

    Args:
        name: the metric's name (the key in `History` and progress output).
        dtype: kept for Keras compatibility (results are Python floats).
    """

    _state_shapes: dict[str, tuple[int, ...]] = {}

    def __init__(self, name: str | None = None, dtype: Any = None):
        self.name = name or _snake_case(type(self).__name__)
        self.dtype = "float32" if dtype is None else np.dtype(dtype).name
        self._variables: list[tuple[Variable, np.ndarray]] = []
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the statistics of one batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_state().")

    def result(self) -> Any:
        """The metric's value over everything accumulated since the last reset."""
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    def reset_state(self) -> None:
        """Clears the accumulated state (variables from `add_weight` return to their start)."""
        for name, shape in self._state_shapes.items():
            setattr(self, name, np.zeros(shape, dtype=np.float64))
        for variable, initial in self._variables:
            variable.assign(initial)

    def add_weight(self, name: str | None = None, shape: Any = (), initializer: Any = "zeros",
                   dtype: Any = None, **kwargs: Any) -> Variable:
        """A non-trainable state variable for custom metrics, as in Keras.

        `reset_state()` puts it back to its initial value; `get_state()`/`merge_state()`
        include it (summed, Keras's default aggregation).

        Args:
            name: the variable's name within the metric.
            shape: its shape (scalar by default).
            initializer: an initializer name ("zeros", "ones", ...), instance or callable.
            dtype: defaults to the metric's dtype.
            **kwargs: Keras's `aggregation`/`synchronization`, accepted and ignored.
        """
        from distflow.keras import initializers

        if name is not None and not isinstance(name, str):  # Keras 3 order: shape first
            name, shape = None, name
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        dtype = dtype or self.dtype
        initial = np.array(_np(initializers.get(initializer)(shape, dtype)), dtype=dtype)
        variable = Variable(initial, name=f"{self.name}/{name or 'variable'}", trainable=False)
        self._variables.append((variable, initial.copy()))
        return variable

    add_variable = add_weight

    @property
    def variables(self) -> list[Variable]:
        """The variables created with `add_weight`."""
        return [variable for variable, _ in self._variables]

    def reset_states(self) -> None:
        """The TF 2.x name of `reset_state` (calls a subclass's override)."""
        self.reset_state()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Updates with one batch and returns the result (as Keras metrics do)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def _state_items(self) -> list[tuple[str, tuple[int, ...], Any]]:
        """(name, shape, setter) of every additive state array, variables included."""
        items = [(name, tuple(shape), lambda v, n=name: setattr(self, n, v))
                 for name, shape in self._state_shapes.items()]
        items += [(f"variables/{i}", var.shape, var.assign)
                  for i, (var, _) in enumerate(self._variables)]
        return items

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays, by name (all additive across batches and workers)."""
        state = {name: np.array(getattr(self, name), dtype=np.float64)
                 for name in self._state_shapes}
        for i, (variable, _) in enumerate(self._variables):
            state[f"variables/{i}"] = np.array(variable.value, dtype=np.float64)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a state produced by `get_state()`."""
        for name, shape, setter in self._state_items():
            value = np.asarray(state[name], dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"State '{name}' of {self.name} must have shape {shape}. "
                                 f"Received: shape={value.shape}")
            setter(value.copy())

    def merge_state(self, others: Iterable[Metric | dict[str, Any]]) -> None:
        """Adds the states of other metrics of the same kind (e.g. from other workers)."""
        mine = self.get_state()
        for other in others:
            state = other.get_state() if isinstance(other, Metric) else other
            for name in mine:
                mine[name] = mine[name] + np.asarray(state[name], np.float64)
        self.set_state(mine)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-safe."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """Rebuilds a metric from `get_config()`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


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
            config["fn"] = _FUNCTION_NAMES.get(self._fn, getattr(self._fn, "__name__", None))
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MeanMetricWrapper:
        """Rebuilds the wrapper (a built-in function may be given by name)."""
        config = dict(config)
        if cls is MeanMetricWrapper:
            fn = config.pop("fn")
            return cls(_function_by_name(fn, {}) if isinstance(fn, str) else fn, **config)
        return cls(**config)



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


class Hinge(MeanMetricWrapper):
    """Mean hinge loss."""

    def __init__(self, name: str = "hinge", dtype: Any = None):
        super().__init__(hinge, name, dtype)


class SquaredHinge(MeanMetricWrapper):
    """Mean squared hinge loss."""

    def __init__(self, name: str = "squared_hinge", dtype: Any = None):
        super().__init__(squared_hinge, name, dtype)


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


# ------------------------------------------------------------ name resolution

_CLASSES: dict[str, type[Metric]] = {cls.__name__: cls for cls in (
    Mean, Sum, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy,
    SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, RootMeanSquaredError, BinaryCrossentropy,
    CategoricalCrossentropy, SparseCategoricalCrossentropy, KLDivergence, Hinge, SquaredHinge,
    Precision, Recall, AUC)}

# Lower-case names accepted by `get`; the metric is named by the string given (as in Keras).
_NAMES: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "kl_divergence": KLDivergence, "kld": KLDivergence,
    "hinge": Hinge, "squared_hinge": SquaredHinge,
    "precision": Precision, "recall": Recall, "auc": AUC,
}

_FUNCTIONS: dict[str, Callable] = {fn.__name__: fn for fn in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mean_squared_error,
    mean_absolute_error, mean_absolute_percentage_error, mean_squared_logarithmic_error,
    binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy,
    kl_divergence, hinge, squared_hinge)}
_FUNCTION_NAMES: dict[Callable, str] = {fn: name for name, fn in _FUNCTIONS.items()}


def _function_by_name(name: str, custom_objects: dict[str, Any]) -> Callable:
    fn = custom_objects.get(name) or _FUNCTIONS.get(name)
    if fn is None:
        raise ValueError(f"Unknown metric function: '{name}'. Use one of {sorted(_FUNCTIONS)} "
                         "or pass the function in `custom_objects`.")
    return fn


def _valid_names() -> list[str]:
    return (sorted([*_NAMES, *_ACCURACY_NAMES, *_CROSSENTROPY_NAMES])
            + sorted(_CLASSES))


def _from_string(identifier: str) -> Metric:
    cls = _CLASSES.get(identifier)
    if cls is not None and cls not in (MeanMetricWrapper,):
        return cls()
    key = identifier.lower()
    if key in _ACCURACY_NAMES + _CROSSENTROPY_NAMES:
        family = "accuracy" if key in _ACCURACY_NAMES else "crossentropy"
        return ShapeResolvedMetric(family, name=identifier)
    cls = _NAMES.get(key)
    if cls is None:
        raise ValueError(f"Unknown metric: '{identifier}'. Use one of {_valid_names()}, a "
                         "callable `fn(y_true, y_pred)` or a `Metric` instance.")
    return cls(name=identifier)


def _from_callable(fn: Callable) -> Metric:
    """Wraps a per-sample function; a built-in loss function uses its NumPy twin here."""
    name = getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", "")
    if module == "distflow.keras.losses" and name in _FUNCTIONS:
        return MeanMetricWrapper(_FUNCTIONS[name], name=name)  # no tape, float64
    return MeanMetricWrapper(fn, name=name)


def get(identifier: Any) -> Metric | None:
    """Resolves a metric identifier to a `Metric` (None stays None).

    Args:
        identifier: a name ("mae", "binary_accuracy", "AUC", ...; the metric is named
            by that string), a `{"class_name", "config"}` dict, a `Metric` (returned as
            is) or class, or a callable `fn(y_true, y_pred)` returning per-sample values
            (wrapped in `MeanMetricWrapper`). "accuracy"/"acc" and "crossentropy"/"ce"
            pick their variant from the first batch's shapes (`ShapeResolvedMetric`);
            `resolve` also reads the loss. Exact-match accuracy is "Accuracy".

    Raises:
        ValueError: for an unknown name (listing the valid ones) or an unusable type.
    """
    if identifier is None or isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        return _from_string(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return _from_callable(identifier)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Pass a name "
                     "such as 'accuracy', a `Metric` instance or a callable.")


def serialize(metric: Metric) -> dict[str, Any]:
    """`{"class_name", "config"}` of a metric."""
    if not isinstance(metric, Metric):
        raise ValueError(f"Cannot serialize {metric!r}: it is not a Metric.")
    return serialize_object(metric, "metric")


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Metric:
    """Inverse of `serialize` (a plain name also works); custom classes via `custom_objects`."""
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        custom = custom_objects.get(config)
        return get(custom) if custom is not None else _from_string(config)
    cls, cfg = class_and_config(config, _CLASSES, "metric", custom_objects)
    if cls is MeanMetricWrapper and isinstance(cfg.get("fn"), str):
        cfg["fn"] = _function_by_name(cfg["fn"], custom_objects)
    return cls.from_config(cfg)


# --------------------------------------- "accuracy" and "crossentropy", as compile reads them

_ACCURACY_NAMES = ("accuracy", "acc")
_CROSSENTROPY_NAMES = ("crossentropy", "ce")


def _loss_families(losses: Any) -> tuple:
    """(kind, predictions are scores rather than probabilities, loss classes, loss functions)."""
    return (
        ("binary", False, (losses.BinaryCrossentropy, losses.BinaryFocalCrossentropy),
         (losses.binary_crossentropy, losses.binary_focal_crossentropy)),
        ("binary", True, (losses.Hinge, losses.SquaredHinge),  # margins: the sign decides
         (losses.hinge, losses.squared_hinge)),
        ("categorical", False, (losses.CategoricalCrossentropy,
                                losses.CategoricalFocalCrossentropy, losses.CategoricalHinge),
         (losses.categorical_crossentropy, losses.categorical_focal_crossentropy,
          losses.categorical_hinge)),
        ("sparse", False, (losses.SparseCategoricalCrossentropy,),
         (losses.sparse_categorical_crossentropy,)))


def _loss_kind(loss: Any) -> tuple[str, bool] | None:
    """("binary" | "categorical" | "sparse", scores_not_probabilities) implied by a loss."""
    from distflow.keras import losses  # imported here: metrics alone stay light

    if isinstance(loss, dict | list | tuple):
        return None  # one loss per output: the caller resolves per output
    try:
        obj = losses.get(loss)
    except (ValueError, TypeError):
        return None
    wrapped = isinstance(obj, losses.LossFunctionWrapper)
    fn, kwargs = (obj.fn, obj._fn_kwargs) if wrapped else (None, {})
    for kind, scores, classes, functions in _loss_families(losses):
        if isinstance(obj, classes):
            return kind, scores or bool(getattr(obj, "from_logits", False))
        if fn in functions:
            return kind, scores or bool(kwargs.get("from_logits", False))
    return None


def _shape_kind(y_true: Any, y_pred: Any) -> str:
    """Keras's fallback from shapes: one output -> binary; rank or trailing 1 -> sparse."""
    true_shape, pred_shape = np.shape(_np(y_true)), np.shape(_np(y_pred))
    if len(pred_shape) <= 1 or pred_shape[-1] == 1:
        return "binary"
    if len(true_shape) < len(pred_shape) or true_shape[-1] == 1:
        return "sparse"
    return "categorical"


def _family_metric(family: str, kind: str, from_logits: bool, name: str) -> Metric:
    if family == "accuracy":
        if kind == "binary":
            # Logits are positive exactly when the probability is above 0.5.
            return BinaryAccuracy(name=name, threshold=0.0 if from_logits else 0.5)
        cls = CategoricalAccuracy if kind == "categorical" else SparseCategoricalAccuracy
        return cls(name=name)
    cls = {"binary": BinaryCrossentropy, "categorical": CategoricalCrossentropy,
           "sparse": SparseCategoricalCrossentropy}[kind]
    return cls(name=name, from_logits=from_logits)


class ShapeResolvedMetric(MeanMetricWrapper):
    """"accuracy" or "crossentropy" whose variant is chosen from the first batch's shapes.

    Used by `resolve` when the loss does not say whether labels are binary, one-hot or
    sparse. After the first `update_state` it behaves as the chosen metric.

    Args:
        family: "accuracy" or "crossentropy".
        name, dtype: see `Metric`.
        from_logits: whether predictions are logits.
    """

    def __init__(self, family: str = "accuracy", name: str | None = None, dtype: Any = None,
                 from_logits: bool = False):
        if family not in ("accuracy", "crossentropy"):
            raise ValueError("`family` must be 'accuracy' or 'crossentropy'. "
                             f"Received: family={family!r}")
        Mean.__init__(self, name or family, dtype)
        self.family, self.from_logits = family, bool(from_logits)
        self._fn, self._fn_kwargs = None, {}
        self.kind: str | None = None

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Picks the variant on the first batch, then accumulates as it does."""
        if self._fn is None:
            self.kind = _shape_kind(y_true, y_pred)
            chosen = _family_metric(self.family, self.kind, self.from_logits, self.name)
            self._fn, self._fn_kwargs = chosen._fn, chosen._fn_kwargs
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        """Name, dtype, family and from_logits."""
        return {"name": self.name, "dtype": self.dtype, "family": self.family,
                "from_logits": self.from_logits}


_CLASSES[ShapeResolvedMetric.__name__] = ShapeResolvedMetric


def resolve(identifier: Any, loss: Any = None, y_true: Any = None, y_pred: Any = None) -> Metric:
    """Resolves a `compile(metrics=...)` entry, reading "accuracy" as Keras does.

    "accuracy"/"acc" (and "crossentropy"/"ce") become the binary, categorical or sparse
    categorical variant implied by `loss` (a name, function or `Loss`): binary (focal)
    cross-entropy and hinge losses -> binary (threshold 0 for logits and hinge margins),
    categorical cross-entropy -> categorical, sparse categorical cross-entropy ->
    sparse. Otherwise the shapes decide (Keras's fallback): a last output axis of 1 ->
    binary; labels of lower rank or with a trailing axis of 1 -> sparse; else
    categorical. Without `y_true`/`y_pred` the choice waits for the first batch.
    The metric keeps the name it was asked by ("acc" stays "acc").

    Args:
        identifier: anything `get` accepts.
        loss: the compiled loss, or None.
        y_true: optional example labels (used only when the loss does not decide).
        y_pred: optional example predictions (same).

    Raises:
        ValueError: for an unknown name.
    """
    if not isinstance(identifier, str) or \
            identifier.lower() not in _ACCURACY_NAMES + _CROSSENTROPY_NAMES:
        return get(identifier)
    family = "accuracy" if identifier.lower() in _ACCURACY_NAMES else "crossentropy"
    implied = _loss_kind(loss)
    if implied is not None:
        return _family_metric(family, implied[0], implied[1], identifier)
    if y_true is not None and y_pred is not None:
        return _family_metric(family, _shape_kind(y_true, y_pred), False, identifier)
    return ShapeResolvedMetric(family, name=identifier)


def register_module(module: Any) -> None:
    """Adds a sibling module's metrics (its CLASSES, NAMES and FUNCTIONS) to this namespace.

    `confusion_metrics` and `regression_metrics` call it when they are imported, which
    the import at the end of this module guarantees.
    """
    for cls in module.CLASSES:
        _CLASSES[cls.__name__] = cls
        globals()[cls.__name__] = cls
    _NAMES.update(module.NAMES)
    for fn in getattr(module, "FUNCTIONS", ()):
        _FUNCTIONS[fn.__name__] = fn
        _FUNCTION_NAMES[fn] = fn.__name__
        globals().setdefault(fn.__name__, fn)




# Imported last (they subclass the classes above); each registers its metrics here.
from distflow.keras import confusion_metrics, regression_metrics  # noqa: E402, F401

# Keras's `keras.metrics` also exports these loss functions under their own names.
from distflow.keras.losses import (  # noqa: E402, F401
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
    huber,
)
