"""TF1's losses (`tf.compat.v1.losses`), reduced as TF1 does by default.

The default reduction, SUM_BY_NONZERO_WEIGHTS, divides the weighted sum by the
number of non-zero weights: with the default `weights=1.0`, the mean.
"""

from __future__ import annotations

from typing import Any

from distflow import nn, ops


def _reduce(losses: Any, weights: Any) -> Any:
    if isinstance(weights, int | float) and weights == 1.0:
        return ops.reduce_mean(losses)
    weighted = ops.multiply(losses, weights)
    present = ops.cast(ops.not_equal(ops.add(ops.zeros_like(losses), weights), 0.0),
                       losses.dtype)
    return ops.divide(ops.reduce_sum(weighted), ops.maximum(ops.reduce_sum(present), 1.0))


def mean_squared_error(labels: Any, predictions: Any, weights: Any = 1.0, scope: Any = None,
                       loss_collection: Any = None, reduction: Any = None) -> Any:
    """Weighted mean of (labels - predictions)**2."""
    return _reduce(ops.square(ops.subtract(predictions, labels)), weights)


def absolute_difference(labels: Any, predictions: Any, weights: Any = 1.0,
                        **_kwargs: Any) -> Any:
    """Weighted mean of |labels - predictions|."""
    return _reduce(ops.abs(ops.subtract(predictions, labels)), weights)


def softmax_cross_entropy(onehot_labels: Any, logits: Any, weights: Any = 1.0,
                          **_kwargs: Any) -> Any:
    """Weighted mean softmax cross-entropy of one-hot labels."""
    return _reduce(nn.softmax_cross_entropy_with_logits(onehot_labels, logits), weights)


def sparse_softmax_cross_entropy(labels: Any, logits: Any, weights: Any = 1.0,
                                 **_kwargs: Any) -> Any:
    """Weighted mean softmax cross-entropy of integer labels."""
    return _reduce(nn.sparse_softmax_cross_entropy_with_logits(labels, logits), weights)


def sigmoid_cross_entropy(multi_class_labels: Any, logits: Any, weights: Any = 1.0,
                          **_kwargs: Any) -> Any:
    """Weighted mean logistic loss."""
    return _reduce(nn.sigmoid_cross_entropy_with_logits(multi_class_labels, logits), weights)
