"""`tf.nn`'s sampled losses (`nce_loss`, `sampled_softmax_loss`) and their helper
`compute_accidental_hits`, plus the sequence-label helpers (`collapse_repeated`,
`ctc_unique_labels`) and `isotonic_regression`.

The losses follow TF's recipe: logits of the true classes and of `num_sampled`
candidates (drawn by the log-uniform sampler unless `sampled_values` are given),
each corrected by the log of its expected count, then a sigmoid (NCE) or softmax
cross-entropy. They are built from gathers, products and the core losses, so
the tape differentiates them with respect to the weights, biases and inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops
from distflow.array_ops import scatter_nd
from distflow.candidate_sampling import log_uniform_candidate_sampler
from distflow.nn_more import embedding_lookup
from distflow.segment_ops import unsorted_segment_mean
from distflow.tensor import Tensor, stop_gradient

_FLOAT_MAX = float(np.finfo(np.float32).max)


def _ints(value: Any) -> np.ndarray:
    return np.asarray(value.numpy() if isinstance(value, Tensor) else value).astype(np.int64)


def compute_accidental_hits(true_classes: Any, sampled_candidates: Any, num_true: int,
                            seed: int | None = None,
                            name: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Where a sampled candidate is one of a row's true classes: `(rows int32, candidate
    positions int64, weights float32 = -FLT_MAX)`, to mask those logits."""
    true = _ints(true_classes).reshape(-1, num_true)
    sampled = _ints(sampled_candidates).reshape(-1)
    rows, _, cols = np.nonzero(true[:, :, None] == sampled[None, None, :])  # TF's order:
    # row, then true class, then candidate position
    return (ops.constant(rows.astype(np.int32)), ops.constant(cols.astype(np.int64)),
            ops.constant(np.full(len(rows), -_FLOAT_MAX, np.float32)))


def _sampled_logits(weights: Any, biases: Any, labels: Any, inputs: Any, num_sampled: int,
                    num_classes: int, num_true: int, sampled_values: Any,
                    remove_accidental_hits: bool, seed: int | None
                    ) -> tuple[Tensor, Tensor]:
    true = _ints(labels).reshape(-1, num_true)
    if sampled_values is None:
        sampled_values = log_uniform_candidate_sampler(true, num_true, num_sampled, True,
                                                       num_classes, seed)
    sampled, true_expected, sampled_expected = (stop_gradient(ops.convert_to_tensor(v))
                                                for v in sampled_values)  # no gradient, as TF
    sampled = _ints(sampled)
    x = ops.convert_to_tensor(inputs)
    batch = true.shape[0]
    true_w = ops.reshape(embedding_lookup(weights, true.reshape(-1)), [batch, num_true, -1])
    true_b = ops.reshape(embedding_lookup(biases, true.reshape(-1)), [batch, num_true])
    true_logits = ops.reduce_sum(ops.expand_dims(x, 1) * true_w, axis=-1) + true_b
    sampled_logits = ops.matmul(x, ops.transpose(embedding_lookup(weights, sampled))) + \
        embedding_lookup(biases, sampled)
    if remove_accidental_hits:
        rows, cols, hits = compute_accidental_hits(true, sampled, num_true)
        index = np.stack([rows.numpy(), cols.numpy()], axis=1).astype(np.int64)
        sampled_logits = sampled_logits + scatter_nd(index, ops.cast(hits, x.dtype),
                                                     [batch, len(sampled)])
    true_logits = true_logits - ops.log(ops.cast(true_expected, x.dtype))
    sampled_logits = sampled_logits - ops.log(ops.cast(sampled_expected, x.dtype))
    logits = ops.concat([true_logits, sampled_logits], 1)
    targets = ops.concat([ops.ones_like(true_logits) / num_true,
                          ops.zeros_like(sampled_logits)], 1)
    return logits, targets


def nce_loss(weights: Any, biases: Any, labels: Any, inputs: Any, num_sampled: int,
             num_classes: int, num_true: int = 1, sampled_values: Any = None,
             remove_accidental_hits: bool = False, name: str = "nce_loss") -> Tensor:
    """Noise-contrastive estimation loss per example (`[batch]`).

    Args:
        weights: `[num_classes, dim]` class embeddings.
        biases: `[num_classes]` class biases.
        labels: int `[batch, num_true]` target classes.
        inputs: `[batch, dim]` activations.
        num_sampled: negative classes drawn per batch.
        num_classes: number of classes.
        num_true: targets per example.
        sampled_values: `(sampled, true_expected_count, sampled_expected_count)` from a
            candidate sampler; the log-uniform sampler (unique) when None.
        remove_accidental_hits: mask sampled classes that are true classes.
    """
    logits, targets = _sampled_logits(weights, biases, labels, inputs, num_sampled,
                                      num_classes, num_true, sampled_values,
                                      remove_accidental_hits, None)
    losses = ops.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    return ops.reduce_sum(losses, axis=1)


def sampled_softmax_loss(weights: Any, biases: Any, labels: Any, inputs: Any,
                         num_sampled: int, num_classes: int, num_true: int = 1,
                         sampled_values: Any = None, remove_accidental_hits: bool = True,
                         seed: int | None = None, name: str = "sampled_softmax_loss") -> Tensor:
    """Softmax cross-entropy over the true and sampled classes only, per example
    (`[batch]`); arguments as `nce_loss`."""
    logits, targets = _sampled_logits(weights, biases, labels, inputs, num_sampled,
                                      num_classes, num_true, sampled_values,
                                      remove_accidental_hits, seed)
    return ops.softmax_cross_entropy_with_logits(labels=stop_gradient(targets), logits=logits)


# ------------------------------------------------------------ label sequences


def collapse_repeated(labels: Any, seq_length: Any,
                      name: str | None = None) -> tuple[Tensor, Tensor]:
    """Merges runs of a repeated label in each `[batch, max_len]` row (within its
    `seq_length`): `(labels padded with 0 to the longest result, new lengths)`."""
    arr, lengths = _ints(labels), _ints(seq_length)
    rows = []
    for row, n in zip(arr, lengths):
        seq = row[:n]
        keep = np.ones(len(seq), bool)
        keep[1:] = seq[1:] != seq[:-1]
        rows.append(seq[keep])
    width = max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), width), arr.dtype)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    dtype = labels.dtype if isinstance(labels, Tensor) else np.asarray(labels).dtype
    return (ops.constant(out.astype(dtype)),
            ops.constant(np.array([len(r) for r in rows], np.asarray(seq_length).dtype)))


def ctc_unique_labels(labels: Any, name: str | None = None) -> tuple[Tensor, Tensor]:
    """Per row, the distinct labels in order of appearance (int64, zero-padded to the row
    width) and each position's index into them (int32)."""
    arr = _ints(labels)
    unique = np.zeros_like(arr)
    index = np.zeros_like(arr)
    for i, row in enumerate(arr):
        values, first, inverse = np.unique(row, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        unique[i, :len(values)] = values[order]
        index[i] = rank[inverse]
    return ops.constant(unique.astype(np.int64)), ops.constant(index.astype(np.int32))


# ------------------------------------------------------------ isotonic regression


def _pav(row: np.ndarray, decreasing: bool) -> np.ndarray:
    """Segment ids of the pool-adjacent-violators fit of one row."""
    sign = 1.0 if decreasing else -1.0
    blocks: list[list[float]] = []  # [sum, count]
    for v in sign * row:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] <= blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    return np.repeat(np.arange(len(blocks)), [c for _, c in blocks])


def isotonic_regression(inputs: Any, decreasing: bool = True,
                        axis: int = -1) -> tuple[Tensor, Tensor]:
    """The closest non-increasing (or non-decreasing) sequence along `axis` in least
    squares: `(fit, segment ids int32)`; each fitted value is its segment's mean."""
    x = ops.convert_to_tensor(inputs)
    moved = ops.transpose(x, _last(x.ndim, axis)) if axis % x.ndim != x.ndim - 1 else x
    flat = ops.reshape(moved, [-1, int(moved.shape[-1])])
    rows, width = (int(d) for d in flat.shape)
    segments = np.stack([_pav(r, decreasing) for r in flat.numpy().astype(np.float64)]) \
        if rows else np.zeros((0, width), np.int64)
    ids = segments + (np.arange(rows) * width)[:, None]
    means = unsorted_segment_mean(ops.reshape(flat, [-1]), ids.reshape(-1), rows * width)
    fit = ops.reshape(ops.gather(means, ids.reshape(-1)), list(moved.shape))
    seg = segments.reshape(tuple(moved.shape)).astype(np.int32)
    if moved is not x:
        perm = _last(x.ndim, axis)
        inverse = list(np.argsort(perm))
        fit, seg = ops.transpose(fit, inverse), np.transpose(seg, inverse)
    return fit, ops.constant(seg)


def _last(rank: int, axis: int) -> list[int]:
    axis %= rank
    return [a for a in range(rank) if a != axis] + [axis]
