"""Reuters newswire topics (11,228 wires, 46 topics), as `keras.datasets.reuters`.

Reads Keras's `reuters.npz` (Keras's cache, `$DISTFLOW_DATA`, or `path=` naming
a file) or downloads it; the wires are pickled object arrays, read with the
restricted unpickler (NumPy arrays only).
"""

from __future__ import annotations

import json
import os

import numpy as np

from distflow.keras.datasets import _sequences as seq
from distflow.keras.datasets._keras_cache import KerasFile, load_npz, locate

__all__ = ["load_data", "get_word_index", "get_label_names"]

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_LABELS = ("cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing",
           "money-supply", "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass",
           "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum",
           "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi",
           "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem",
           "dlr", "gas", "silver", "wpi", "hog", "lead")


def load_data(path: str | os.PathLike = "reuters.npz", num_words: int | None = None,
              skip_top: int = 0, maxlen: int | None = None, test_split: float = 0.2,
              seed: int = 113, start_char: int | None = 1, oov_char: int | None = 2,
              index_from: int = 3, **kwargs):
    """Loads Reuters as lists of word indices, exactly as Keras's loader.

    Args:
        path: the file name in Keras's cache, or a path to an existing `reuters.npz`.
        num_words, skip_top, maxlen, seed, start_char, oov_char, index_from: as
            `imdb.load_data`.
        test_split: the fraction of wires (after shuffling) used for testing.
        **kwargs: none accepted (Keras 3 raises too).

    Returns:
        `(x_train, y_train), (x_test, y_test)`: object arrays of int lists, int labels.
    """
    seq.check_kwargs(kwargs)
    spec = KerasFile("Reuters", (os.fspath(path),), f"{_ORIGIN}reuters.npz",
                     "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916")
    data = load_npz(locate(spec, path))
    xs, labels = seq.shuffled(np.random.RandomState(seed), data["x"], data["y"])
    xs, labels = seq.drop_long(maxlen, seq.offset_words(xs, start_char, index_from), labels)
    xs = seq.cap_vocabulary(xs, num_words, skip_top, oov_char)
    idx = int(len(xs) * (1 - test_split))
    return ((np.array(xs[:idx], dtype="object"), np.array(labels[:idx])),
            (np.array(xs[idx:], dtype="object"), np.array(labels[idx:])))


def get_word_index(path: str | os.PathLike = "reuters_word_index.json") -> dict[str, int]:
    """The word -> index mapping of Reuters (indices before `index_from` is added)."""
    spec = KerasFile("Reuters word index", (os.fspath(path),),
                     f"{_ORIGIN}reuters_word_index.json", "4d44cc38712099c9e383dc6e5f11a921")
    with open(locate(spec, path), encoding="utf-8") as f:
        return json.load(f)


def get_label_names() -> tuple[str, ...]:
    """The 46 topic names, indexed by label."""
    return _LABELS
