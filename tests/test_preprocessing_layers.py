"""Preprocessing layers beyond the goldens: configs round-trip, errors say what to fix."""

from __future__ import annotations

import numpy as np
import pytest

from distflow import keras
from distflow.keras import layers


def test_string_lookup_reads_a_vocabulary_file_and_round_trips_its_config(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("yes\nno\nmaybe\n", encoding="utf-8")
    layer = layers.StringLookup(vocabulary=str(path), num_oov_indices=0)
    np.testing.assert_array_equal(layer(["no", "maybe", "yes"]).numpy(), [1, 2, 0])
    clone = layers.deserialize(layers.serialize(layer))
    assert clone.get_vocabulary() == ["yes", "no", "maybe"]
    np.testing.assert_array_equal(clone(np.array([b"maybe"])).numpy(), [2])


def test_string_lookup_with_no_oov_index_names_the_unknown_token():
    layer = layers.StringLookup(vocabulary=["a", "b"], num_oov_indices=0)
    with pytest.raises(ValueError, match=r"found OOV values \['zebra'\]"):
        layer(["a", "zebra"])


def test_lookup_layers_refuse_adapt_after_a_vocabulary_and_a_repeated_token():
    with pytest.raises(ValueError, match="Cannot adapt"):
        layers.IntegerLookup(vocabulary=[1, 2]).adapt(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="repeated terms are: \\['a'\\]"):
        layers.StringLookup(vocabulary=["a", "b", "a"])


def test_string_lookup_inverts_its_own_lookup():
    forward = layers.StringLookup(vocabulary=["x", "y", "z"])
    back = layers.StringLookup(vocabulary=["x", "y", "z"], invert=True)
    tokens = np.array([["z", "y"], ["x", "q"]])
    assert back(forward(tokens)).numpy().tolist() == [[b"z", b"y"], [b"x", b"[UNK]"]]


def test_hashing_and_lookup_raise_on_what_distflow_does_not_compute():
    with pytest.raises(ValueError, match="salt"):
        layers.Hashing(4, salt=7)
    with pytest.raises(ValueError, match="sparse"):
        layers.StringLookup(vocabulary=["a"], output_mode="multi_hot", sparse=True)
    with pytest.raises(ValueError, match="ragged"):
        layers.TextVectorization(ragged=True)


def test_text_vectorization_adapts_from_batches_and_round_trips_its_config():
    texts = np.array(["b a a", "c a", "d d d d"])
    layer = layers.TextVectorization(output_sequence_length=3)
    layer.adapt(iter([texts[:2], texts[2:]]))
    assert layer.get_vocabulary() == ["", "[UNK]", "d", "a", "c", "b"]
    clone = layers.TextVectorization.from_config(layer.get_config())
    np.testing.assert_array_equal(clone(["a e d"]).numpy(), layer(["a e d"]).numpy())
    np.testing.assert_array_equal(layer(["a e d"]).numpy(), [[3, 1, 2]])


def test_discretization_config_keeps_adapted_boundaries():
    layer = layers.Discretization(num_bins=3)
    layer.adapt(np.arange(30, dtype=np.float32))
    clone = layers.Discretization.from_config(layer.get_config())
    assert clone.bin_boundaries == layer.bin_boundaries
    values = np.array([0.0, 15.0, 29.0], np.float32)
    np.testing.assert_array_equal(clone(values).numpy(), layer(values).numpy())
    with pytest.raises(ValueError, match="either `num_bins` or `bin_boundaries`"):
        keras.layers.Discretization()
