"""The `Loss` base class, `LossFunctionWrapper`, reductions and the shared input handling.

A `Loss` is called as `loss(y_true, y_pred, sample_weight=None)`: its `call`
gives per-sample values, which are weighted and reduced here
(`reduce_weighted_values`, the reductions of `Reduction`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import ops
from distflow.keras._objects import snake_case
from distflow.keras.sample_weights import rank_matched
from distflow.tensor import Tensor

EPSILON = 1e-7  # Keras's backend.epsilon(): the clip margin for probabilities
_LOG2 = math.log(2.0)


class Reduction:
    """Names of the reductions a `Loss` can apply (`tf.keras.losses.Reduction`)."""

    NONE = "none"
    SUM = "sum"
    SUM_OVER_BATCH_SIZE = "sum_over_batch_size"
    MEAN = "mean"
    MEAN_WITH_SAMPLE_WEIGHT = "mean_with_sample_weight"
    AUTO = "auto"

    @classmethod
    def all(cls) -> tuple[str, ...]:
        """Every accepted reduction name."""
        return (cls.SUM_OVER_BATCH_SIZE, cls.SUM, cls.NONE, cls.MEAN,
                cls.MEAN_WITH_SAMPLE_WEIGHT, cls.AUTO)


# ------------------------------------------------------------ input handling


def _array(x: Any) -> np.ndarray:
    return x.value if isinstance(x, Tensor) else np.asarray(x)


def _as_pred(y_pred: Any, dtype: Any = None) -> Tensor:
    """`y_pred` as a floating tensor (integers and bools become float32)."""
    if not isinstance(y_pred, Tensor):
        y_pred = Tensor(y_pred, dtype)  # lists become float32, arrays keep their dtype
    if dtype is not None and y_pred.dtype != np.dtype(dtype):
        return ops.cast(y_pred, dtype)
    if y_pred.dtype.kind != "f":
        return ops.cast(y_pred, np.float32)
    return y_pred


def _as_true(y_true: Any, dtype: np.dtype) -> Tensor:
    """`y_true` as a tensor of `dtype` (a tensor keeps its gradient path)."""
    if isinstance(y_true, Tensor):
        return y_true if y_true.dtype == dtype else ops.cast(y_true, dtype)
    return Tensor._wrap(np.asarray(y_true, dtype=dtype))


def _match_rank(y_true: Tensor, y_pred: Tensor) -> tuple[Tensor, Tensor]:
    """Keras's squeeze-or-expand: (N,) against (N, 1) gives both (N, 1)."""
    dt, dp = y_true.ndim, y_pred.ndim
    if dt == dp + 1 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    elif dp == dt + 1 and y_pred.shape[-1] == 1:
        y_true = ops.expand_dims(y_true, -1)
    return y_true, y_pred


def _prepare(y_true: Any, y_pred: Any, what: str) -> tuple[Tensor, Tensor]:
    """Converts both sides, matches ranks and requires equal shapes."""
    y_pred = _as_pred(y_pred)
    y_true, y_pred = _match_rank(_as_true(y_true, y_pred.dtype), y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"`y_true` and `y_pred` must have the same shape for {what}. Received: "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}. For integer class "
            "labels use sparse_categorical_crossentropy; for one-hot labels make the model's "
            "last layer output one value per class.")
    return y_true, y_pred


def _check_fraction(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1]. Received: {name}={value}")
    return value


def _smooth(y_true: Tensor, smoothing: float, num_classes: int) -> Tensor:
    """Moves `smoothing` of the label mass to a uniform distribution over the classes."""
    if not smoothing:
        return y_true
    return ops.add(ops.multiply(y_true, 1.0 - smoothing), smoothing / num_classes)



# ---------------------------------------------------------------- reduction


def _check_reduction(reduction: Any) -> str:
    if reduction is None:
        return Reduction.NONE
    if reduction not in Reduction.all():
        raise ValueError(f"Invalid `reduction`: {reduction!r}. Use one of "
                         f"{list(Reduction.all())} (or None for 'none').")
    return Reduction.SUM_OVER_BATCH_SIZE if reduction == Reduction.AUTO else reduction


def reduce_weighted_values(values: Tensor, sample_weight: Any = None,
                           reduction: str = "sum_over_batch_size",
                           mask: np.ndarray | None = None) -> Tensor:
    """Weights per-sample losses and reduces them as a `Loss` does.

    Args:
        values: per-sample losses (a tensor).
        sample_weight: optional weights broadcastable to `values` ((N,) or (N, 1) for (N,)).
        reduction: "sum_over_batch_size"/"mean" (sum / number of values), "sum",
            "mean_with_sample_weight" (sum / sum of weights) or "none".
        mask: optional boolean array of the values that count (the others are already 0);
            "sum_over_batch_size" then divides by the number of counted values.
    """
    weights = None if sample_weight is None else rank_matched(
        sample_weight, values.shape, values.dtype, "per-sample losses")
    if weights is not None:
        values = ops.multiply(values, Tensor._wrap(weights))
    if reduction == Reduction.NONE:
        return values
    total = ops.sum(values)
    if reduction == Reduction.SUM or values.size == 0:
        return total
    if reduction == Reduction.MEAN_WITH_SAMPLE_WEIGHT:
        return ops.divide(total, _weight_total(weights, mask, values))
    if mask is None:
        return ops.divide(total, float(values.size))
    return ops.divide(total, float(max(int(np.count_nonzero(mask)), 1)))


def _weight_total(weights: np.ndarray | None, mask: np.ndarray | None, values: Tensor) -> float:
    full = np.ones(values.shape) if weights is None else np.broadcast_to(weights, values.shape)
    if mask is not None:
        full = full * np.broadcast_to(mask, values.shape)
    total = float(np.sum(full))
    return total if total != 0 else 1.0  # all-zero weights give a loss of 0, not NaN


# ------------------------------------------------------------------ classes


class Loss:
    """Base class: subclasses implement `call(y_true, y_pred)` -> per-sample losses.

    Args:
        name: name of the loss (defaults to the snake_case class name).
        reduction: "sum_over_batch_size" (default), "sum", "none" (or None),
            "mean" (same as the default) or "mean_with_sample_weight".
        dtype: dtype the predictions are cast to, None to keep theirs.
    """

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size",
                 dtype: Any = None):
        self.name = name or snake_case(type(self).__name__)
        self.reduction = _check_reduction(reduction)
        self.dtype = None if dtype is None else np.dtype(dtype).name

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Tensor:
        """Per-sample losses, weighted by `sample_weight`, then reduced."""
        y_pred = _as_pred(y_pred, self.dtype)
        if not isinstance(y_true, Tensor):
            y_true = Tensor(y_true)  # custom `call`s get tensors on both sides, as in Keras
        if y_true.dtype.kind == "f" and y_true.dtype != y_pred.dtype:
            y_true = ops.cast(y_true, y_pred.dtype)  # Keras converts both to the loss dtype
        values, mask = self._call_masked(y_true, y_pred)
        return reduce_weighted_values(values, sample_weight, self.reduction, mask)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample losses; implemented by subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def _call_masked(self, y_true: Any, y_pred: Tensor) -> tuple[Tensor, np.ndarray | None]:
        return self.call(y_true, y_pred), None

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-safe."""
        return {"name": self.name, "reduction": self.reduction, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Rebuilds a loss from `get_config()`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"



class LossFunctionWrapper(Loss):
    """A `Loss` around a per-sample function `fn(y_true, y_pred, **kwargs)`.

    Args:
        fn: the function returning per-sample losses.
        reduction: see `Loss`.
        name: name of the loss (defaults to the function's name).
        dtype: see `Loss`.
        **kwargs: extra keyword arguments passed to `fn` at every call.
    """

    def __init__(self, fn: Callable[..., Tensor], reduction: str | None = "sum_over_batch_size",
                 name: str | None = None, dtype: Any = None, **kwargs: Any):
        if not callable(fn):
            raise TypeError(f"`fn` must be callable. Received: fn={fn!r}")
        super().__init__(name or getattr(fn, "__name__", None) or "loss", reduction, dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """`fn(y_true, y_pred, **kwargs)`."""
        return ops.convert_to_tensor(self.fn(y_true, y_pred, **self._fn_kwargs))

    def get_config(self) -> dict[str, Any]:
        """The base config plus the function's name and its keyword arguments."""
        fn_name = getattr(self.fn, "__name__", repr(self.fn))
        return {**super().get_config(), "fn": fn_name, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossFunctionWrapper:
        """Rebuilds the wrapper; a non-built-in `fn` must already be a callable."""
        config = dict(config)
        fn = config.pop("fn")
        if isinstance(fn, str):
            fn = _function_by_name(fn, {})
        return cls(fn, **config)




# Every built-in per-sample loss function by name, aliases included (filled by
# `losses.registry`), so a `LossFunctionWrapper` config naming its function can be read.
FUNCTIONS: dict[str, Callable] = {}


def _function_by_name(name: str, custom_objects: dict[str, Any]) -> Callable:
    fn = custom_objects.get(name) or FUNCTIONS.get(name) or FUNCTIONS.get(name.lower())
    if fn is None:
        raise ValueError(f"Unknown loss function: '{name}'. Use one of {sorted(FUNCTIONS)} "
                         "or pass the function in `custom_objects`.")
    return fn
