"""IMDB movie reviews (25,000 train / 25,000 test, sentiment labels), as `keras.datasets.imdb`.

Reads Keras's `imdb.npz` (`~/.keras/datasets/imdb.npz`, `$DISTFLOW_DATA`, or
`path=` when it names a file) or downloads it; its reviews are pickled object
arrays, read with the restricted unpickler (NumPy arrays only).
"""

from __future__ import annotations

import json
import os

import numpy as np

from distflow.keras.datasets import _sequences as seq
from distflow.keras.datasets._keras_cache import KerasFile, load_npz, locate

__all__ = ["load_data", "get_word_index"]

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def load_data(path: str | os.PathLike = "imdb.npz", num_words: int | None = None,
              skip_top: int = 0, maxlen: int | None = None, seed: int = 113,
              start_char: int | None = 1, oov_char: int | None = 2, index_from: int = 3,
              **kwargs):
    """Loads IMDB as lists of word indices, exactly as Keras's loader.

    Args:
        path: the file name in Keras's cache, or a path to an existing `imdb.npz`.
        num_words: keep the `num_words` most frequent words (others become `oov_char`).
        skip_top: also treat the `skip_top` most frequent words as OOV.
        maxlen: drop sequences of `maxlen` words or more.
        seed: the shuffling seed.
        start_char: index marking each sequence's start (None: none).
        oov_char: index of dropped words (None: remove them).
        index_from: offset added to every word index.
        **kwargs: none accepted (Keras 3 raises too).

    Returns:
        `(x_train, y_train), (x_test, y_test)`: object arrays of int lists, int labels.
    """
    seq.check_kwargs(kwargs)
    spec = KerasFile("IMDB", (os.fspath(path),), f"{_ORIGIN}imdb.npz",
                     "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f")
    data = load_npz(locate(spec, path))
    rng = np.random.RandomState(seed)
    x_train, labels_train = seq.shuffled(rng, data["x_train"], data["y_train"])
    x_test, labels_test = seq.shuffled(rng, data["x_test"], data["y_test"])
    x_train = seq.offset_words(x_train, start_char, index_from)
    x_test = seq.offset_words(x_test, start_char, index_from)
    x_train, labels_train = seq.drop_long(maxlen, x_train, labels_train)
    x_test, labels_test = seq.drop_long(maxlen, x_test, labels_test)
    if maxlen and (not x_train or not x_test):
        raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no "
                         "sequence was kept. Increase maxlen.")
    xs = seq.cap_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test])
    idx = len(x_train)
    return ((np.array(xs[:idx], dtype="object"), labels[:idx]),
            (np.array(xs[idx:], dtype="object"), labels[idx:]))


def get_word_index(path: str | os.PathLike = "imdb_word_index.json") -> dict[str, int]:
    """The word -> index mapping of IMDB (indices before `index_from` is added)."""
    spec = KerasFile("IMDB word index", (os.fspath(path),), f"{_ORIGIN}imdb_word_index.json",
                     "bfafd718b763782e994055a2d397834f")
    with open(locate(spec, path), encoding="utf-8") as f:
        return json.load(f)
