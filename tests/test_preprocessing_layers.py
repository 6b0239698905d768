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


RANDOM_IMAGE_LAYERS = [
    (layers.RandomCrop, {"height": 4, "width": 5}),
    (layers.RandomRotation, {"factor": 0.3}),
    (layers.RandomZoom, {"height_factor": 0.4, "width_factor": 0.2}),
    (layers.RandomTranslation, {"height_factor": 0.3, "width_factor": 0.3,
                                "fill_mode": "constant"}),
    (layers.RandomContrast, {"factor": 0.5}),
    (layers.RandomBrightness, {"factor": 0.5}),
    (layers.RandomGrayscale, {"factor": 0.5}),
    (layers.RandomInvert, {"factor": 0.9}),
    (layers.Solarization, {"addition_factor": 0.3, "threshold_factor": 0.6}),
    (layers.RandomPosterization, {"factor": (1, 8)}),
    (layers.RandomColorDegeneration, {"factor": 0.8}),
    (layers.RandomSharpness, {"factor": 0.9}),
]


@pytest.mark.parametrize("cls,config", RANDOM_IMAGE_LAYERS,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_random_image_layers_in_training_are_seeded_in_range_and_change_the_images(cls, config):
    images = np.random.default_rng(0).uniform(0, 255, size=(6, 8, 10, 3)).astype(np.float32)
    first = cls(**config, seed=5)(images, training=True).numpy()
    again = cls(**config, seed=5)(images, training=True).numpy()
    other = cls(**config, seed=6)(images, training=True).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    want = (6, 4, 5, 3) if cls is layers.RandomCrop else images.shape
    assert first.shape == want and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 255.0
    np.testing.assert_array_equal(cls(**config)(images, training=False).numpy(), images)


def test_random_rotation_by_a_half_turn_flips_the_image_both_ways():
    image = np.arange(20, dtype=np.float32).reshape(1, 4, 5, 1)
    out = layers.RandomRotation((0.5, 0.5), interpolation="nearest")(image, training=True)
    np.testing.assert_allclose(out.numpy(), image[:, ::-1, ::-1], atol=1e-4)


def test_a_model_with_augmentation_layers_trains_and_predicts_unchanged_images():
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.RandomRotation(0.1, seed=1),
                              layers.RandomContrast(0.2, seed=2), layers.Resizing(4, 4),
                              layers.Flatten(), layers.Dense(1)])
    x = np.random.default_rng(1).uniform(0, 1, size=(16, 8, 8, 1)).astype(np.float32)
    model.compile("sgd", "mse")
    history = model.fit(x, np.ones((16, 1), np.float32), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    plain = keras.Sequential([keras.Input((8, 8, 1)), layers.Resizing(4, 4), layers.Flatten(),
                              model.layers[-1]])
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0),
                               rtol=1e-6)


def test_a_scalar_token_gives_a_scalar_index_as_in_keras_dataset_maps():
    label = layers.StringLookup(vocabulary=["yes", "no"], num_oov_indices=0)
    assert label("no").shape == () and int(label("no").numpy()) == 1
    assert label(np.array(b"yes")).shape == ()
    assert layers.IntegerLookup(vocabulary=[7, 9])(np.int64(9)).shape == ()
