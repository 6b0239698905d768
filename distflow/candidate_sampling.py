"""Candidate samplers for sampled losses (`tf.random.*_candidate_sampler`, also in
`tf.nn`): draw `num_sampled` class ids from a fixed distribution and report how many
times each true and sampled class is expected to be drawn.

Each returns `(sampled_candidates int64 [num_sampled], true_expected_count float32
[batch, num_true], sampled_expected_count float32 [num_sampled])`. A class of
probability p is expected `p * num_sampled` times when drawing with replacement;
with `unique=True` draws repeat until `num_sampled` distinct classes are found, and
the expectation is `1 - (1 - p) ** tries` for the number of draws that took, as TF
computes it. Draws use `tf.random`'s generator (or `seed`); they are random, so only
the expectations are comparable with TensorFlow's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import random
from distflow.primitive import constant
from distflow.tensor import Tensor


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(seed) if seed is not None else random.get_global_generator()


def _classes(true_classes: Any, num_true: int) -> np.ndarray:
    arr = np.asarray(true_classes.numpy() if isinstance(true_classes, Tensor) else true_classes)
    if arr.ndim != 2 or arr.shape[1] != num_true:
        raise ValueError(f"true_classes must be [batch_size, num_true={num_true}]. Received: "
                         f"shape={arr.shape}")
    return arr.astype(np.int64)


def _sample(probs: np.ndarray, num_sampled: int, unique: bool, rng: np.random.Generator
            ) -> tuple[np.ndarray, int]:
    """Draws from `probs`; returns the samples and the number of draws made."""
    if not unique:
        return rng.choice(len(probs), size=num_sampled, p=probs), num_sampled
    if num_sampled > np.count_nonzero(probs):
        raise ValueError(f"Cannot draw {num_sampled} distinct classes from "
                         f"{np.count_nonzero(probs)} with non-zero probability.")
    seen: dict[int, None] = {}
    tries = 0
    while len(seen) < num_sampled:
        draws = rng.choice(len(probs), size=num_sampled, p=probs)
        for d in draws:
            tries += 1
            seen.setdefault(int(d), None)
            if len(seen) == num_sampled:
                break
    return np.fromiter(seen, np.int64, num_sampled), tries


def _expected(p: np.ndarray, num_sampled: int, tries: int, unique: bool) -> np.ndarray:
    if not unique:
        return (p * num_sampled).astype(np.float32)
    return (-np.expm1(tries * np.log1p(-np.minimum(p, 1.0 - 1e-12)))).astype(np.float32)


def _sampler(probs: np.ndarray, true_classes: Any, num_true: int, num_sampled: int,
             unique: bool, seed: int | None) -> tuple[Tensor, Tensor, Tensor]:
    classes = _classes(true_classes, num_true)
    if classes.size and (classes.min() < 0 or classes.max() >= len(probs)):
        raise ValueError(f"true_classes must lie in [0, {len(probs)}). Received: "
                         f"{classes.tolist()}")
    sampled, tries = _sample(probs, num_sampled, unique, _rng(seed))
    return (constant(sampled.astype(np.int64)),
            constant(_expected(probs[classes], num_sampled, tries, unique)),
            constant(_expected(probs[sampled], num_sampled, tries, unique)))


def uniform_candidate_sampler(true_classes: Any, num_true: int, num_sampled: int,
                              unique: bool, range_max: int, seed: int | None = None,
                              name: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Samples classes uniformly from `[0, range_max)`."""
    return _sampler(np.full(range_max, 1.0 / range_max), true_classes, num_true, num_sampled,
                    unique, seed)


def log_uniform_candidate_sampler(true_classes: Any, num_true: int, num_sampled: int,
                                  unique: bool, range_max: int, seed: int | None = None,
                                  name: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Samples from Zipf's law: P(c) = log((c + 2) / (c + 1)) / log(range_max + 1)
    (frequent classes first, as word ids sorted by frequency)."""
    c = np.arange(range_max, dtype=np.float64)
    probs = np.log((c + 2) / (c + 1)) / np.log(range_max + 1)
    return _sampler(probs, true_classes, num_true, num_sampled, unique, seed)


def fixed_unigram_candidate_sampler(true_classes: Any, num_true: int, num_sampled: int,
                                    unique: bool, range_max: int, vocab_file: str = "",
                                    distortion: float = 1.0, num_reserved_ids: int = 0,
                                    num_shards: int = 1, shard: int = 0,
                                    unigrams: Any = (), seed: int | None = None,
                                    name: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Samples class `num_reserved_ids + i` in proportion to `unigrams[i] ** distortion`
    (counts from `unigrams` or the last comma-separated column of `vocab_file`'s lines);
    the reserved ids are never drawn."""
    if num_shards != 1:
        raise ValueError(f"Sharded vocabularies are not supported. Received: "
                         f"num_shards={num_shards}")
    counts = np.asarray(_vocab_counts(vocab_file) if vocab_file else list(unigrams), np.float64)
    if num_reserved_ids + len(counts) != range_max:
        raise ValueError(f"num_reserved_ids ({num_reserved_ids}) plus the {len(counts)} "
                         f"unigrams must equal range_max ({range_max}).")
    weights = np.concatenate([np.zeros(num_reserved_ids), counts ** distortion])
    return _sampler(weights / weights.sum(), true_classes, num_true, num_sampled, unique, seed)


def _vocab_counts(path: str) -> list[float]:
    with open(path) as f:
        return [float(line.rstrip("\n").split(",")[-1]) for line in f if line.strip()]


def all_candidate_sampler(true_classes: Any, num_true: int, num_sampled: int, unique: bool,
                          seed: int | None = None,
                          name: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Every class `0 .. num_sampled - 1`, each expected once (for testing sampled losses)."""
    classes = _classes(true_classes, num_true)
    return (constant(np.arange(num_sampled, dtype=np.int64)),
            constant(np.ones(classes.shape, np.float32)),
            constant(np.ones(num_sampled, np.float32)))
