"""The word-index processing IMDB and Reuters share, step for step as Keras's loaders."""

from __future__ import annotations

from typing import Any

import numpy as np


def shuffled(rng: np.random.RandomState, *arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays permuted together by one `rng.shuffle` of their indices (Keras's order)."""
    indices = np.arange(len(arrays[0]))
    rng.shuffle(indices)
    return [a[indices] for a in arrays]


def offset_words(xs: Any, start_char: int | None, index_from: int) -> list[list[int]]:
    """Prepends `start_char` (unless None) and shifts every word index by `index_from`."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in xs]
    return [[w + index_from for w in x] for x in xs]


def drop_long(maxlen: int | None, xs: list, labels: Any) -> tuple[list, Any]:
    """Keeps the sequences shorter than `maxlen` (all, labels untouched, when it is falsy)."""
    if not maxlen:
        return xs, labels
    kept = [(x, y) for x, y in zip(xs, labels) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]


def cap_vocabulary(xs: list, num_words: int | None, skip_top: int,
                   oov_char: int | None) -> list[list[int]]:
    """Words outside [skip_top, num_words) become `oov_char` (or are dropped when None)."""
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def check_kwargs(kwargs: dict[str, Any]) -> None:
    """Keras 3's loaders take no other keyword arguments."""
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {sorted(kwargs)}.")
