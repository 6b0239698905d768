"""String inputs reach the host-side preprocessing layers through a functional model.

TF's parameter-server tutorial builds `keras.Model({"features": Input(shape=(3,),
dtype="string")}, StringLookup(...)(raw))` and maps it over a batched dataset of
strings. The model keeps strings as NumPy arrays (tensors hold numbers) and
gives what the lookup gives eagerly: vocabulary index + 1, 0 for out-of-vocabulary
tokens, as real Keras does.
"""

from __future__ import annotations

import numpy as np
import pytest

import distflow as tf
from distflow import keras

VOCAB = ["avenger", "ironman", "batman", "hulk", "spiderman", "kingkong", "wonder_woman"]
TOKENS = np.array([["avenger", "hulk", "zzz"], ["batman", "ironman", "hulk"]])


def _expected(tokens: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda w: VOCAB.index(w) + 1 if w in VOCAB else 0)(tokens)


def _stage() -> keras.Model:
    raw = keras.Input(shape=(3,), dtype="string", name="features")
    return keras.Model({"features": raw},
                       keras.layers.StringLookup(vocabulary=VOCAB, mask_token=None)(raw))


def test_a_string_input_model_looks_tokens_up():
    stage = _stage()
    out = stage({"features": TOKENS})
    np.testing.assert_array_equal(np.asarray(out), _expected(TOKENS))
    assert out.dtype == tf.int64


def test_the_model_maps_over_a_batched_string_dataset():
    stage = _stage()
    rows = np.array([["avenger", "hulk", "zzz"], ["spiderman", "kingkong", "batman"]] * 2)
    ds = tf.data.Dataset.from_tensor_slices({"features": rows}).batch(2).map(stage)
    got = np.concatenate([np.asarray(b) for b in ds])
    np.testing.assert_array_equal(got, _expected(rows))


def test_an_unbatched_element_is_refused_as_keras_refuses_it():
    with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(3,\)"):
        _stage()({"features": TOKENS[0]})
