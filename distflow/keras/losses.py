"""Loss functions and classes, as `keras.losses`.

Two forms, as in Keras:

- functions (`mean_squared_error`, `binary_crossentropy`, ...) return one loss
  per sample (the last axis is reduced), with no weighting and no reduction;
- classes (`MeanSquaredError()`, ...) are called as
  `loss(y_true, y_pred, sample_weight=None)` and return the weighted, reduced
  loss: `"sum_over_batch_size"` (default: the sum divided by the number of
  per-sample values), `"sum"`, or `"none"` (the weighted per-sample values).

Everything is built from differentiable `distflow` ops, so a loss computed
under a `GradientTape` gives gradients with respect to `y_pred` (and to
`y_true` when it is a watched tensor). Cross-entropies with
`from_logits=True` use the fused, numerically stable core ops; with
probabilities they clip to `[EPSILON, 1 - EPSILON]` as Keras does.

`get(identifier)` turns a name (`"mse"`, `"sparse_categorical_crossentropy"`,
...), a config dict, a function or a `Loss` into a `Loss` object, which is what
`Model.compile` needs: unlike Keras, which hands back the bare function for a
name, it always returns something that accepts `sample_weight` and reduces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras._objects import class_and_config, serialize_object
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


# ------------------------------------------------------------ cross-entropies


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    """Mean binary cross-entropy over `axis` (the last one), one value per sample.

    Args:
        y_true: targets in [0, 1].
        y_pred: probabilities, or logits when `from_logits`.
        from_logits: whether `y_pred` are logits (stable fused op) or probabilities
            (clipped to [EPSILON, 1 - EPSILON]).
        label_smoothing: squeezes targets towards 0.5: y * (1 - s) + 0.5 * s.
        axis: the axis averaged over.
    """
    y_true, y_pred = _prepare(y_true, y_pred, "binary_crossentropy")
    y_true = _smooth(y_true, _check_fraction(label_smoothing, "label_smoothing"), 2)
    if from_logits:
        return ops.mean(nn.sigmoid_cross_entropy_with_logits(y_true, y_pred), axis=axis)
    p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    log_likelihood = ops.add(ops.multiply(y_true, ops.log(p)),
                             ops.multiply(ops.subtract(1.0, y_true), ops.log(ops.subtract(1.0, p))))
    return ops.negative(ops.mean(log_likelihood, axis=axis))


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    """Cross-entropy between one-hot (or soft) labels and the class scores along `axis`.

    Args:
        y_true: one-hot or probability labels, the shape of `y_pred`.
        y_pred: probabilities (renormalised to sum to 1, then clipped), or logits.
        from_logits: whether `y_pred` are logits (fused softmax cross-entropy).
        label_smoothing: mixes the labels with a uniform distribution over the classes.
        axis: the class axis.
    """
    y_true, y_pred = _prepare(y_true, y_pred, "categorical_crossentropy")
    y_true = _smooth(y_true, _check_fraction(label_smoothing, "label_smoothing"),
                     y_pred.shape[axis])
    if from_logits:
        return nn.softmax_cross_entropy_with_logits(y_true, y_pred, axis=axis)
    p = ops.divide(y_pred, ops.sum(y_pred, axis=axis, keepdims=True))
    log_p = ops.log(ops.clip(p, EPSILON, 1.0 - EPSILON))
    return ops.negative(ops.sum(ops.multiply(y_true, log_p), axis=axis))


def _sparse_labels(y_true: Any, y_pred: Tensor, ignore_class: int | None) -> tuple:
    """Validated int64 labels of shape y_pred.shape[:-1], and the mask of kept entries."""
    labels = _array(y_true)
    if labels.ndim == y_pred.ndim and labels.ndim and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind not in "fb" or not np.all(labels == np.floor(labels)):
            raise ValueError(f"Sparse labels must be integer class ids. Received dtype="
                             f"{labels.dtype}; use categorical_crossentropy for one-hot labels.")
    labels = labels.astype(np.int64, copy=False)
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"`y_true` must hold one class id per sample: shape {y_pred.shape[:-1]} (or with "
            f"a trailing 1) for y_pred.shape={y_pred.shape}. Received: y_true.shape="
            f"{_array(y_true).shape}. For one-hot labels use categorical_crossentropy.")
    mask = None
    if ignore_class is not None:
        mask = labels != ignore_class
        labels = np.where(mask, labels, 0)
    _check_label_range(labels, y_pred.shape[-1])
    return labels, mask


def _check_label_range(labels: np.ndarray, num_classes: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(
            f"Labels must be class ids in [0, {num_classes}) for a model with {num_classes} "
            f"outputs. Received a label {bad} (labels span [{labels.min()}, {labels.max()}]).")


def _pick(y_pred: Tensor, labels: np.ndarray) -> Tensor:
    """y_pred[..., label] for every sample (differentiable gather)."""
    grids = np.indices(labels.shape, sparse=True) if labels.ndim else ()
    return ops.getitem(y_pred, (*grids, labels))


def _sparse_ce_masked(y_true: Any, y_pred: Any, from_logits: bool,
                      ignore_class: int | None) -> tuple[Tensor, np.ndarray | None]:
    y_pred = _as_pred(y_pred)
    labels, mask = _sparse_labels(y_true, y_pred, ignore_class)
    if from_logits:
        losses = nn.sparse_softmax_cross_entropy_with_logits(labels, y_pred)
    else:
        p = ops.divide(_pick(y_pred, labels), ops.sum(y_pred, axis=-1))
        losses = ops.negative(ops.log(ops.clip(p, EPSILON, 1.0 - EPSILON)))
    if mask is not None:
        losses = ops.multiply(losses, Tensor._wrap(mask.astype(losses.dtype)))
    return losses, mask


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1) -> Tensor:
    """Cross-entropy of integer class ids against class scores on the last axis.

    Args:
        y_true: class ids of shape y_pred.shape[:-1] (a trailing axis of size 1 is dropped).
        y_pred: probabilities (renormalised, then clipped) or logits.
        from_logits: whether `y_pred` are logits (fused sparse softmax cross-entropy).
        ignore_class: a label whose entries get a loss of 0 (e.g. padding).
        axis: must be -1 (the class axis is last).
    """
    if axis not in (-1, np.ndim(_array(y_pred)) - 1):
        raise ValueError(f"sparse_categorical_crossentropy supports only axis=-1. "
                         f"Received: axis={axis}")
    return _sparse_ce_masked(y_true, y_pred, from_logits, ignore_class)[0]


def binary_focal_crossentropy(y_true: Any, y_pred: Any, apply_class_balancing: bool = False,
                              alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                              label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    """Binary cross-entropy scaled by (1 - p_t)**gamma, which down-weights easy examples.

    Args:
        y_true: targets in [0, 1].
        y_pred: probabilities, or logits when `from_logits`.
        apply_class_balancing: weight positives by `alpha` and negatives by 1 - alpha.
        alpha: the positive-class weight used with `apply_class_balancing`.
        gamma: the focusing exponent (0 gives plain binary cross-entropy).
        from_logits: whether `y_pred` are logits (a sigmoid is applied first).
        label_smoothing: squeezes targets towards 0.5.
        axis: the axis averaged over.
    """
    y_true, y_pred = _prepare(y_true, y_pred, "binary_focal_crossentropy")
    y_true = _smooth(y_true, _check_fraction(label_smoothing, "label_smoothing"), 2)
    p = ops.sigmoid(y_pred) if from_logits else y_pred
    clipped = ops.clip(p, EPSILON, 1.0 - EPSILON)
    not_true = ops.subtract(1.0, y_true)
    bce = ops.negative(ops.add(ops.multiply(y_true, ops.log(clipped)),
                               ops.multiply(not_true, ops.log(ops.subtract(1.0, clipped)))))
    p_t = ops.add(ops.multiply(y_true, p), ops.multiply(not_true, ops.subtract(1.0, p)))
    focal = ops.multiply(ops.power(ops.subtract(1.0, p_t), float(gamma)), bce)
    if apply_class_balancing:
        balance = ops.add(ops.multiply(y_true, float(alpha)), ops.multiply(not_true, 1.0 - alpha))
        focal = ops.multiply(balance, focal)
    return ops.mean(focal, axis=axis)


def categorical_focal_crossentropy(y_true: Any, y_pred: Any, alpha: float = 0.25,
                                   gamma: float = 2.0, from_logits: bool = False,
                                   label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    """Categorical cross-entropy with each class term scaled by alpha * (1 - p)**gamma.

    Args:
        y_true: one-hot or probability labels, the shape of `y_pred`.
        y_pred: probabilities (renormalised, then clipped) or logits.
        alpha: the overall weight of the focal terms.
        gamma: the focusing exponent.
        from_logits: whether `y_pred` are logits (a softmax is applied first).
        label_smoothing: mixes the labels with a uniform distribution over the classes.
        axis: the class axis.
    """
    y_true, y_pred = _prepare(y_true, y_pred, "categorical_focal_crossentropy")
    y_true = _smooth(y_true, _check_fraction(label_smoothing, "label_smoothing"),
                     y_pred.shape[axis])
    p = nn.softmax(y_pred, axis=axis) if from_logits else y_pred
    p = ops.clip(ops.divide(p, ops.sum(p, axis=axis, keepdims=True)), EPSILON, 1.0 - EPSILON)
    weight = ops.multiply(ops.power(ops.subtract(1.0, p), float(gamma)), float(alpha))
    return ops.negative(ops.sum(ops.multiply(weight, ops.multiply(y_true, ops.log(p))),
                                axis=axis))


def kl_divergence(y_true: Any, y_pred: Any) -> Tensor:
    """sum(y_true * log(y_true / y_pred)) over the last axis, both clipped to [EPSILON, 1]."""
    y_true, y_pred = _prepare(y_true, y_pred, "kl_divergence")
    y_true = ops.clip(y_true, EPSILON, 1.0)
    y_pred = ops.clip(y_pred, EPSILON, 1.0)
    return ops.sum(ops.multiply(y_true, ops.log(ops.divide(y_true, y_pred))), axis=-1)


# Keras's short and alternative names of the functions.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
logcosh = log_cosh
kld = KLD = kullback_leibler_divergence = kl_divergence
huber_loss = huber


# ---------------------------------------------------------------- reduction


def _check_reduction(reduction: Any) -> str:
    if reduction is None:
        return Reduction.NONE
    if reduction not in Reduction.all():
        raise ValueError(f"Invalid `reduction`: {reduction!r}. Use one of "
                         f"{list(Reduction.all())} (or None for 'none').")
    return Reduction.SUM_OVER_BATCH_SIZE if reduction == Reduction.AUTO else reduction


def _weights_for(sample_weight: Any, values: Tensor) -> np.ndarray:
    """`sample_weight` as an array that broadcasts against the per-sample losses."""
    weights = np.asarray(_array(sample_weight), dtype=values.dtype)
    if weights.ndim == values.ndim + 1 and weights.shape[-1] == 1:
        weights = weights.reshape(weights.shape[:-1])  # (N, 1) weights for (N,) losses
    elif 0 < weights.ndim < values.ndim:
        weights = weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))
    try:
        np.broadcast_shapes(weights.shape, values.shape)
    except ValueError:
        raise ValueError(
            f"`sample_weight` must have one weight per sample. Received: sample_weight.shape="
            f"{np.shape(_array(sample_weight))} for per-sample losses of shape {values.shape}."
        ) from None
    return weights


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
    weights = None if sample_weight is None else _weights_for(sample_weight, values)
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
        self.name = name or _snake_case(type(self).__name__)
        self.reduction = _check_reduction(reduction)
        self.dtype = None if dtype is None else np.dtype(dtype).name

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Tensor:
        """Per-sample losses, weighted by `sample_weight`, then reduced."""
        y_pred = _as_pred(y_pred, self.dtype)
        if not isinstance(y_true, Tensor):
            y_true = Tensor(y_true)  # custom `call`s get tensors on both sides, as in Keras
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


def _snake_case(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or
                                   (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


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
        fn_name = _FUNCTION_NAMES.get(self.fn, getattr(self.fn, "__name__", repr(self.fn)))
        return {**super().get_config(), "fn": fn_name, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossFunctionWrapper:
        """Rebuilds the wrapper; a non-built-in `fn` must already be a callable."""
        config = dict(config)
        fn = config.pop("fn")
        if isinstance(fn, str):
            fn = _function_by_name(fn, {})
        return cls(fn, **config)


def _function_by_name(name: str, custom_objects: dict[str, Any]) -> Callable:
    fn = custom_objects.get(name) or _FUNCTIONS.get(name) or _FUNCTIONS.get(name.lower())
    if fn is None:
        raise ValueError(f"Unknown loss function: '{name}'. Use one of {sorted(_FUNCTIONS)} "
                         "or pass the function in `custom_objects`.")
    return fn


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


class KLDivergence(Loss):
    """Kullback-Leibler divergence `sum(y_true * log(y_true / y_pred))` per sample."""

    def __init__(self, reduction: str | None = "sum_over_batch_size",
                 name: str = "kl_divergence", dtype: Any = None):
        super().__init__(name, reduction, dtype)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample KL divergence."""
        return kl_divergence(y_true, y_pred)


class BinaryCrossentropy(Loss):
    """Binary cross-entropy, averaged over the last axis of each sample.

    Args:
        from_logits: whether `y_pred` are logits (stable) or probabilities (clipped).
        label_smoothing: in [0, 1]; targets become y * (1 - s) + 0.5 * s.
        axis: the axis averaged over.
        reduction, name, dtype: see `Loss`.
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "binary_crossentropy", dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_fraction(label_smoothing, "label_smoothing")
        self.axis = int(axis)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample binary cross-entropy."""
        return binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing,
                                   self.axis)

    def get_config(self) -> dict[str, Any]:
        """Base config plus `from_logits`, `label_smoothing`, `axis`."""
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class CategoricalCrossentropy(Loss):
    """Cross-entropy between one-hot (or soft) labels and predicted class scores.

    Args:
        from_logits: whether `y_pred` are logits (fused softmax cross-entropy) or
            probabilities (renormalised and clipped).
        label_smoothing: in [0, 1]; mixes the labels with the uniform distribution.
        axis: the class axis.
        reduction, name, dtype: see `Loss`.
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_crossentropy", dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_fraction(label_smoothing, "label_smoothing")
        self.axis = int(axis)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample categorical cross-entropy."""
        return categorical_crossentropy(y_true, y_pred, self.from_logits,
                                        self.label_smoothing, self.axis)

    def get_config(self) -> dict[str, Any]:
        """Base config plus `from_logits`, `label_smoothing`, `axis`."""
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class BinaryFocalCrossentropy(Loss):
    """Focal binary cross-entropy (Lin et al., 2017): easy examples weigh less.

    Args:
        apply_class_balancing: weight positives by `alpha`, negatives by 1 - alpha.
        alpha: the positive-class weight for class balancing.
        gamma: the focusing exponent.
        from_logits: whether `y_pred` are logits.
        label_smoothing: in [0, 1], as in `BinaryCrossentropy`.
        axis: the axis averaged over.
        reduction, name, dtype: see `Loss`.
    """

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25,
                 gamma: float = 2.0, from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str = "binary_focal_crossentropy", dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha, self.gamma = float(alpha), _check_gamma(gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_fraction(label_smoothing, "label_smoothing")
        self.axis = int(axis)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample focal binary cross-entropy."""
        return binary_focal_crossentropy(y_true, y_pred, self.apply_class_balancing, self.alpha,
                                         self.gamma, self.from_logits, self.label_smoothing,
                                         self.axis)

    def get_config(self) -> dict[str, Any]:
        """Base config plus the focal arguments."""
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing,
                "alpha": self.alpha, "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class CategoricalFocalCrossentropy(Loss):
    """Focal categorical cross-entropy: each class term scaled by alpha * (1 - p)**gamma.

    Args:
        alpha: the weight of the focal terms.
        gamma: the focusing exponent.
        from_logits: whether `y_pred` are logits.
        label_smoothing: in [0, 1], as in `CategoricalCrossentropy`.
        axis: the class axis.
        reduction, name, dtype: see `Loss`.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_focal_crossentropy", dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.alpha, self.gamma = float(alpha), _check_gamma(gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_fraction(label_smoothing, "label_smoothing")
        self.axis = int(axis)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample focal categorical cross-entropy."""
        return categorical_focal_crossentropy(y_true, y_pred, self.alpha, self.gamma,
                                              self.from_logits, self.label_smoothing, self.axis)

    def get_config(self) -> dict[str, Any]:
        """Base config plus the focal arguments."""
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma,
                "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}


def _check_gamma(gamma: Any) -> float:
    if not float(gamma) >= 0:
        raise ValueError(f"`gamma` must be >= 0. Received: gamma={gamma}")
    return float(gamma)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy of integer class ids (shape (N,) or (N, 1)) against class scores.

    Args:
        from_logits: whether `y_pred` are logits (fused sparse softmax cross-entropy)
            or probabilities (renormalised and clipped).
        ignore_class: optional label whose entries do not count: their loss is 0 and
            "sum_over_batch_size" averages over the other entries only.
        reduction, name, dtype: see `Loss`.
    """

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "sparse_categorical_crossentropy", dtype: Any = None):
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Per-sample sparse categorical cross-entropy (0 for ignored entries)."""
        return self._call_masked(y_true, _as_pred(y_pred))[0]

    def _call_masked(self, y_true: Any, y_pred: Tensor) -> tuple[Tensor, np.ndarray | None]:
        return _sparse_ce_masked(y_true, y_pred, self.from_logits, self.ignore_class)

    def get_config(self) -> dict[str, Any]:
        """Base config plus `from_logits` and `ignore_class`."""
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_class": self.ignore_class}


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
    from distflow.keras import ctc as ctc_module

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


# --------------------------------------------------------- name resolution

_CLASSES: dict[str, type[Loss]] = {cls.__name__: cls for cls in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, Huber, LogCosh, Poisson, CosineSimilarity, Hinge,
    SquaredHinge, CategoricalHinge, KLDivergence, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, BinaryFocalCrossentropy, CategoricalFocalCrossentropy,
    Dice, Tversky, CTC, CategoricalGeneralizedCrossEntropy, Circle, LossFunctionWrapper)}

# Function (and string) name -> (function, class computing the same loss).
_BUILTINS: dict[str, tuple[Callable, type[Loss]]] = {}
for _cls, _names in (
        (MeanSquaredError, ("mean_squared_error", "mse")),
        (MeanAbsoluteError, ("mean_absolute_error", "mae")),
        (MeanAbsolutePercentageError, ("mean_absolute_percentage_error", "mape")),
        (MeanSquaredLogarithmicError, ("mean_squared_logarithmic_error", "msle")),
        (Huber, ("huber", "huber_loss")),
        (LogCosh, ("log_cosh", "logcosh")),
        (Poisson, ("poisson",)),
        (CosineSimilarity, ("cosine_similarity",)),
        (Hinge, ("hinge",)),
        (SquaredHinge, ("squared_hinge",)),
        (CategoricalHinge, ("categorical_hinge",)),
        (KLDivergence, ("kl_divergence", "kld", "kullback_leibler_divergence")),
        (BinaryCrossentropy, ("binary_crossentropy", "bce")),
        (CategoricalCrossentropy, ("categorical_crossentropy", "cce")),
        (BinaryFocalCrossentropy, ("binary_focal_crossentropy",)),
        (CategoricalFocalCrossentropy, ("categorical_focal_crossentropy",)),
        (SparseCategoricalCrossentropy, ("sparse_categorical_crossentropy", "scce")),
        (Dice, ("dice",)), (Tversky, ("tversky",)), (CTC, ("ctc",)),
        (CategoricalGeneralizedCrossEntropy, ("categorical_generalized_cross_entropy",)),
        (Circle, ("circle",))):
    for _name in _names:
        _BUILTINS[_name] = (globals()[_names[0]], _cls)

_FUNCTIONS: dict[str, Callable] = {name: fn for name, (fn, _) in _BUILTINS.items()}
_FUNCTION_NAMES: dict[Callable, str] = {}
for _name, (_fn, _) in _BUILTINS.items():
    _FUNCTION_NAMES.setdefault(_fn, _name)
_CLASS_OF_FUNCTION: dict[Callable, type[Loss]] = {fn: cls for fn, cls in _BUILTINS.values()}


def _valid_names() -> list[str]:
    return sorted(_BUILTINS) + sorted(set(_CLASSES) - {"LossFunctionWrapper"})


def _from_string(name: str) -> Loss:
    cls = _CLASSES.get(name)
    if cls is None or cls is LossFunctionWrapper:
        entry = _BUILTINS.get(name) or _BUILTINS.get(name.lower())
        if entry is None:
            raise ValueError(f"Unknown loss: '{name}'. Use one of {_valid_names()}, a "
                             "callable `fn(y_true, y_pred)` or a `Loss` instance.")
        cls = entry[1]
    return cls()


def get(identifier: Any) -> Loss | None:
    """Resolves a loss identifier to a `Loss` object (None stays None).

    Args:
        identifier: a name ("mse", "mean_squared_error", "MeanSquaredError",
            "sparse_categorical_crossentropy", ...), a `{"class_name", "config"}` dict,
            a `Loss` instance (returned as is), a built-in loss function (its class
            with default arguments) or any callable `fn(y_true, y_pred)` returning
            per-sample losses (wrapped in `LossFunctionWrapper`).

    Raises:
        ValueError: for an unknown name, listing the valid ones, or an unusable type.
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        return _from_string(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        builtin = _CLASS_OF_FUNCTION.get(identifier)
        return builtin() if builtin is not None else LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Pass a name such "
                     "as 'mse', a `Loss` instance or a callable `fn(y_true, y_pred)`.")


def serialize(loss: Any) -> Any:
    """A JSON-safe description: `{"class_name", "config"}` for a `Loss`, a name for a function.

    Raises:
        ValueError: for a callable that is neither a `Loss` nor a named function.
    """
    if isinstance(loss, Loss):
        return serialize_object(loss, "loss")
    if loss in _FUNCTION_NAMES:
        return _FUNCTION_NAMES[loss]
    name = getattr(loss, "__name__", None)
    if callable(loss) and name and name != "<lambda>":
        return name
    raise ValueError(f"Cannot serialize loss {loss!r}: use a Loss subclass with get_config() "
                     "or a named function.")


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Loss:
    """Inverse of `serialize`; custom classes and functions come from `custom_objects`."""
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        custom = custom_objects.get(config)
        return get(custom) if custom is not None else _from_string(config)
    cls, cfg = class_and_config(config, _CLASSES, "loss", custom_objects)
    if cls is LossFunctionWrapper and isinstance(cfg.get("fn"), str):
        cfg["fn"] = _function_by_name(cfg["fn"], custom_objects)
    return cls.from_config(cfg)
