"""Cross-entropies (plain, sparse, focal) and the KL divergence: functions and classes.

With `from_logits=True` they use the fused, numerically stable core ops; with
probabilities they clip to `[EPSILON, 1 - EPSILON]` as Keras does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras.losses.loss import (
    EPSILON,
    Loss,
    _array,
    _as_pred,
    _check_fraction,
    _prepare,
    _smooth,
)
from distflow.tensor import Tensor

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




kld = KLD = kullback_leibler_divergence = kl_divergence


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
