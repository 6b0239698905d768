"""Softmax and the cross-entropies with logits (`tf.nn`'s), each a primitive with its
VJP. `distflow.ops` re-exports them."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.primitive import (
    Primitive,
    _pair,
    _t,
    defop,
)
from distflow.tensor import Tensor


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so that exp never overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _log_softmax_np(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _softmax_fwd(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)
    return out, (out, axis)


def _softmax_vjp(g, r):
    out, axis = r
    return out * (g - (g * out).sum(axis=axis, keepdims=True))


def _log_softmax_fwd(x, axis):
    out = _log_softmax_np(x, axis)
    return out, (out, axis)


def _log_softmax_vjp(g, r):
    out, axis = r
    return g - np.exp(out) * g.sum(axis=axis, keepdims=True)


_softmax = defop("softmax", _softmax_fwd, _softmax_vjp)
_log_softmax = defop("log_softmax", _log_softmax_fwd, _log_softmax_vjp)


def softmax(logits: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, computed stably."""
    return _softmax(_t(logits), axis=int(axis))


def log_softmax(logits: Any, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along `axis`."""
    return _log_softmax(_t(logits), axis=int(axis))


def _sce_fwd(labels, logits, axis):
    logp = _log_softmax_np(logits, axis)
    return -(labels * logp).sum(axis=axis), (labels, logp, axis)


def _sce_vjp_logits(g, r):
    labels, logp, axis = r
    total = labels.sum(axis=axis, keepdims=True)
    return np.expand_dims(g, axis) * (np.exp(logp) * total - labels)


_softmax_ce = defop(
    "softmax_cross_entropy_with_logits", _sce_fwd,
    lambda g, r: -np.expand_dims(g, r[2]) * r[1],
    _sce_vjp_logits)


def softmax_cross_entropy_with_logits(labels: Any, logits: Any, axis: int = -1) -> Tensor:
    """Per-example cross-entropy between label distributions and softmax(logits), fused."""
    labels, logits = _pair(labels, logits)
    if labels.shape != logits.shape:
        raise ValueError(f"`labels` and `logits` must have the same shape. Received: "
                         f"labels.shape={labels.shape}, logits.shape={logits.shape}")
    return _softmax_ce(labels, logits, axis=int(axis) % logits.ndim)


def _label_index(labels: np.ndarray) -> tuple:
    """Index picking each example's label column (any number of leading axes)."""
    grids = np.indices(labels.shape, sparse=True) if labels.ndim > 1 else (
        np.arange(labels.shape[0]),) if labels.ndim == 1 else ()
    return (*grids, labels)


def _sparse_ce_fwd(logits, labels):
    shifted = logits - np.maximum.reduce(logits, axis=-1, keepdims=True)
    exps = np.exp(shifted)
    total = np.add.reduce(exps, axis=-1)
    index = _label_index(labels)
    return np.log(total) - shifted[index], (exps, total, index)


def _sparse_ce_vjp(g, r):
    exps, total, index = r
    grad = exps * (g / total)[..., None]  # g * softmax, in one pass over the logits
    grad[index] -= g
    return grad


_sparse_softmax_ce = defop("sparse_softmax_cross_entropy_with_logits", _sparse_ce_fwd,
                           _sparse_ce_vjp)


def sparse_softmax_cross_entropy_with_logits(labels: Any, logits: Any) -> Tensor:
    """Per-example cross-entropy of integer class labels against logits, fused."""
    logits = _t(logits)
    labels = _class_ids(labels, logits.shape[-1])
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"`labels` shape {labels.shape} must equal `logits` shape without "
                         f"its last axis {logits.shape[:-1]}.")
    # a symbolic `labels` stays a tensor: the graph passes its value when it runs
    return _sparse_softmax_ce(logits, labels=labels if labels._symbolic else labels.value)


def _sparse_ce_mean_fwd(logits, labels):
    labels, _ = _class_ids_fwd(labels, logits.shape[-1])
    values, residuals = _sparse_ce_fwd(logits, labels)
    count = values.size or 1
    return np.add.reduce(values, axis=None) / values.dtype.type(count), (residuals, count)


def _sparse_ce_mean_vjp(g, r):
    residuals, count = r
    return _sparse_ce_vjp(g / g.dtype.type(count), residuals)


# The mean over the batch of the sparse cross-entropy, its label check included: one
# kernel forward and one backward in a compiled Keras step (a private primitive; the
# same arithmetic as the check, the per-example op and `reduce_mean` in a row).
_sparse_ce_mean = Primitive("sparse_softmax_cross_entropy_mean", _sparse_ce_mean_fwd,
                            (_sparse_ce_mean_vjp,))


def sparse_softmax_cross_entropy_mean(labels: Any, logits: Any) -> Tensor:
    """The mean of `sparse_softmax_cross_entropy_with_logits(labels, logits)` (Keras's
    "sum over batch size"), as one op; `labels` shaped like `logits` without its last
    axis."""
    logits, labels = _t(logits), _t(labels)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"`labels` shape {labels.shape} must equal `logits` shape without "
                         f"its last axis {logits.shape[:-1]}.")
    return _sparse_ce_mean(logits, labels=labels if labels._symbolic else labels.value)


def _class_ids_fwd(labels: np.ndarray, n: int) -> tuple[np.ndarray, None]:
    """`labels` as integer class ids in [0, n), or a ValueError / TypeError saying why not."""
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(labels == np.floor(labels)):
            labels = labels.astype(np.int64)
        else:
            raise TypeError(f"Sparse labels must be integer class ids. Received dtype="
                            f"{labels.dtype}; use softmax_cross_entropy_with_logits for "
                            "one-hot or soft labels.")
    if labels.size and _as_unsigned(labels).max() >= n:
        _bad_labels(labels, n)  # negative ids would silently index from the end
    return labels, None


# The label check as a primitive without a gradient (private: the core's registry is left
# alone): a traced step runs it as one kernel call on the labels' array.
_check_class_ids = Primitive("sparse_class_ids", _class_ids_fwd, (None,))


def _class_ids(labels: Any, n: int) -> Tensor:
    """`labels` as a tensor of integer class ids in [0, n) (checked when the op runs)."""
    return _check_class_ids(_t(labels), n=n)


def _as_unsigned(labels: np.ndarray) -> np.ndarray:
    """Integer `labels` viewed as unsigned (no copy): a negative id becomes larger than any
    class count, so one `max` checks both ends of the range."""
    return labels if labels.dtype.kind == "u" else labels.view(f"u{labels.itemsize}")


def _bad_labels(labels: np.ndarray, n: int) -> None:
    raise ValueError(f"Labels must be in [0, {n}) for {n} classes. Received values in "
                     f"[{labels.min()}, {labels.max()}].") from None


def _sigmoid_ce_fwd(labels, logits):
    loss = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
    return loss, (labels, logits)


_sigmoid_ce = defop("sigmoid_cross_entropy_with_logits", _sigmoid_ce_fwd,
                    lambda g, r: -g * r[1],
                    lambda g, r: g * (_sigmoid(r[1]) - r[0]))


def sigmoid_cross_entropy_with_logits(labels: Any, logits: Any) -> Tensor:
    """Elementwise logistic loss, computed stably from logits."""
    labels, logits = _pair(labels, logits)
    if labels.shape != logits.shape:
        raise ValueError(f"`labels` and `logits` must have the same shape. Received: "
                         f"labels.shape={labels.shape}, logits.shape={logits.shape}")
    return _sigmoid_ce(labels, logits)
