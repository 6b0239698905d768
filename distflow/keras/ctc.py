"""Connectionist temporal classification (Graves et al., 2006): Keras's `ctc` loss.

`ctc_loss(labels, logits)` is a private primitive (forward and VJP side by side,
outside the core registry, like the layers' fused primitives): per sample

    loss = -log sum over alignments pi of labels of prod_t softmax(logits)[t, pi_t]

computed with the alpha recursion in log space over the extended label sequence
(a blank, index 0, between labels and at both ends); its gradient with respect to
the logits is softmax(logits) - occupancy, the posterior probability of each class
at each step (alpha + beta). Labels are dense rows padded with 0 (Keras's
`mask_index`): a row's labels are its first `count_nonzero(row)` entries. Every
sequence uses all T steps of the logits, as Keras's `ctc` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.ops import Primitive

_NEG_INF = -np.inf


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _extended(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(extended labels (B, S), valid state mask, skip-allowed mask) with blanks at even s."""
    lengths = np.count_nonzero(labels, axis=1)
    batch, width = labels.shape[0], 2 * labels.shape[1] + 1
    ext = np.zeros((batch, width), np.int64)
    ext[:, 1::2] = labels
    valid = np.arange(width)[None, :] < (2 * lengths + 1)[:, None]
    skip = np.zeros((batch, width), bool)
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    return ext, valid, skip & valid


def _logaddexp3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.logaddexp(np.logaddexp(a, b), c)


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x moved k states to the right along axis 1 (-inf shifted in)."""
    out = np.full_like(x, _NEG_INF)
    out[:, k:] = x[:, :-k] if k else x
    return out


def _alphas(emit: np.ndarray, valid: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """alpha[t, b, s]: log probability of the prefixes ending in state s at step t."""
    steps = emit.shape[0]
    alpha = np.full(emit.shape, _NEG_INF)
    alpha[0, :, :2] = emit[0, :, :2]
    alpha[0] = np.where(valid, alpha[0], _NEG_INF)
    for t in range(1, steps):
        prev = alpha[t - 1]
        total = _logaddexp3(prev, _shift(prev, 1), np.where(skip, _shift(prev, 2), _NEG_INF))
        alpha[t] = np.where(valid, total + emit[t], _NEG_INF)
    return alpha


def _betas(emit: np.ndarray, valid: np.ndarray, skip: np.ndarray,
           last: np.ndarray) -> np.ndarray:
    """beta[t, b, s]: log probability of the suffixes after step t from state s."""
    steps, batch, width = emit.shape
    beta = np.full(emit.shape, _NEG_INF)
    rows = np.arange(batch)
    beta[-1, rows, last] = 0.0
    beta[-1, rows, np.maximum(last - 1, 0)] = 0.0
    skip_from = np.zeros_like(skip)
    skip_from[:, :-2] = skip[:, 2:]  # from s, jumping to s + 2 is allowed
    for t in range(steps - 2, -1, -1):
        nxt = beta[t + 1] + emit[t + 1]
        ahead1 = np.full_like(nxt, _NEG_INF)
        ahead1[:, :-1] = nxt[:, 1:]
        ahead2 = np.full_like(nxt, _NEG_INF)
        ahead2[:, :-2] = nxt[:, 2:]
        beta[t] = np.where(valid, _logaddexp3(nxt, ahead1, np.where(skip_from, ahead2,
                                                                       _NEG_INF)), _NEG_INF)
    return beta


def _forward(labels: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, Any]:
    log_probs = _log_softmax(logits.astype(np.float64))  # (B, T, C)
    ext, valid, skip = _extended(labels.astype(np.int64))
    emit = np.take_along_axis(log_probs, np.broadcast_to(
        ext[:, None, :], (ext.shape[0], log_probs.shape[1], ext.shape[1])), axis=2)
    emit = np.moveaxis(emit, 1, 0)  # (T, B, S)
    alpha = _alphas(emit, valid, skip)
    last = 2 * np.count_nonzero(labels, axis=1)
    rows = np.arange(labels.shape[0])
    end = np.logaddexp(alpha[-1, rows, last], alpha[-1, rows, np.maximum(last - 1, 0)])
    end = np.where(last == 0, alpha[-1, rows, 0], end)
    loss = -end
    return loss.astype(logits.dtype), (log_probs, ext, valid, skip, emit, alpha, end, last)


def _logits_vjp(g: np.ndarray, res: Any) -> np.ndarray:
    log_probs, ext, valid, skip, emit, alpha, end, last = res
    beta = _betas(emit, valid, skip, last)
    with np.errstate(invalid="ignore", over="ignore"):
        occupancy = np.exp(alpha + beta - end[None, :, None])  # (T, B, S)
    occupancy = np.where(np.isfinite(end)[None, :, None], occupancy, 0.0)
    per_class = np.zeros(log_probs.shape)  # (B, T, C)
    for b in range(ext.shape[0]):
        np.add.at(per_class[b].T, ext[b], occupancy[:, b, :].T)
    probs = np.exp(log_probs)
    grad = probs * per_class.sum(axis=-1, keepdims=True) - per_class
    grad = np.where(np.isfinite(end)[:, None, None], grad, 0.0)
    return (grad * g[:, None, None]).astype(g.dtype)


ctc_loss = Primitive("keras_ctc_loss", _forward, (None, _logits_vjp))


def check_inputs(y_true: Any, y_pred: Any) -> None:
    """Keras's rank checks: labels (batch, max_label_length), logits (batch, steps, classes)."""
    if len(np.shape(y_true)) != 2:
        raise ValueError("Targets `y_true` are expected to be a tensor of shape "
                         "`(batch_size, max_length)` in integer format. Received: "
                         f"y_true.shape={np.shape(y_true)}")
    if len(np.shape(y_pred)) != 3:
        raise ValueError("Logits `y_pred` are expected to be a tensor of shape "
                         "`(batch_size, max_length, num_classes)`. Received: "
                         f"y_pred.shape={np.shape(y_pred)}")
