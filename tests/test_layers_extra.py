"""The 3-D, 1-D transposed/depthwise, normalization and attention layers beyond the goldens."""

from __future__ import annotations

import numpy as np
import pytest

from distflow import keras
from distflow.keras import layers

NEW_LAYERS = [
    (layers.Conv3D, {"filters": 2, "kernel_size": 2}, (2, 4, 4, 4, 1)),
    (layers.Conv3DTranspose, {"filters": 2, "kernel_size": 2, "strides": 2}, (2, 2, 3, 3, 1)),
    (layers.Conv1DTranspose, {"filters": 2, "kernel_size": 3}, (2, 6, 2)),
    (layers.DepthwiseConv1D, {"kernel_size": 3, "depth_multiplier": 2}, (2, 6, 2)),
    (layers.SeparableConv1D, {"filters": 3, "kernel_size": 3}, (2, 6, 2)),
    (layers.MaxPooling3D, {"pool_size": 2}, (2, 4, 4, 4, 1)),
    (layers.AveragePooling3D, {"pool_size": 2, "padding": "same"}, (2, 3, 4, 4, 1)),
    (layers.GlobalAveragePooling3D, {}, (2, 3, 4, 4, 1)),
    (layers.UpSampling3D, {"size": 2}, (2, 2, 2, 2, 1)),
    (layers.ZeroPadding3D, {"padding": 1}, (2, 2, 2, 2, 1)),
    (layers.Cropping3D, {"cropping": 1}, (2, 4, 4, 4, 1)),
    (layers.GroupNormalization, {"groups": 2}, (2, 6, 4)),
    (layers.UnitNormalization, {}, (2, 6, 4)),
    (layers.RMSNormalization, {}, (2, 6, 4)),
]


@pytest.mark.parametrize("cls,config,shape", NEW_LAYERS, ids=lambda v: getattr(v, "__name__", ""))
def test_new_layers_round_trip_their_config_and_declare_their_output_shape(cls, config, shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    layer = cls(**config)
    out = layer(x)
    assert tuple(layer.compute_output_shape(shape)) == out.shape
    clone = layers.deserialize(layers.serialize(layer))
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), out.numpy(), rtol=1e-6)


def test_alpha_dropout_keeps_mean_and_variance_of_selu_activations_and_is_seeded():
    x = np.random.default_rng(1).normal(size=(200, 500)).astype(np.float32)
    first = layers.AlphaDropout(0.2, seed=3)(x, training=True).numpy()
    np.testing.assert_array_equal(first, layers.AlphaDropout(0.2, seed=3)(x, training=True))
    assert abs(first.mean()) < 0.02 and abs(first.std() - 1) < 0.02
    alpha_p, rate = -1.6732632423543772 * 1.0507009873554805, 0.2
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    dropped = a * alpha_p - a * alpha_p * rate  # a * alpha_p + b
    assert np.mean(np.isclose(first, dropped, atol=1e-6)) == pytest.approx(rate, abs=0.01)
    np.testing.assert_array_equal(layers.AlphaDropout(0.2)(x).numpy(), x)


def test_a_conv3d_model_trains_and_its_loss_goes_down():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 4, 6, 6, 1)).astype(np.float32)
    y = x.mean(axis=(1, 2, 3))
    model = keras.Sequential([keras.Input((4, 6, 6, 1)), layers.Conv3D(4, 3, padding="same"),
                              layers.GroupNormalization(2), layers.MaxPooling3D(2),
                              layers.GlobalAveragePooling3D(), layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_attention_returns_its_scores_and_masks_future_steps_when_causal():
    q = np.random.default_rng(3).normal(size=(2, 5, 4)).astype(np.float32)
    out, scores = layers.Attention()([q, q], return_attention_scores=True, use_causal_mask=True)
    assert out.shape == (2, 5, 4)
    np.testing.assert_allclose(np.triu(scores.numpy()[0], 1), 0, atol=1e-7)
    np.testing.assert_allclose(scores.numpy().sum(-1), 1, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[query, value\]"):
        layers.Attention()(q)


def test_reversible_embedding_ties_its_weights_and_round_trips_its_config():
    layer = layers.ReversibleEmbedding(6, 3, mask_zero=True)
    vectors = layer(np.array([[0, 2, 5]]))
    logits = layer(vectors, reverse=True)
    np.testing.assert_allclose(logits.numpy(), vectors.numpy() @ layer.embeddings.numpy().T,
                               rtol=1e-6)
    assert len(layer.weights) == 1
    clone = layers.deserialize(layers.serialize(layer))
    clone(np.array([[1]]))
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(vectors, reverse=True).numpy(), logits.numpy(), rtol=1e-6)


def test_wrapper_builds_and_serializes_the_layer_it_wraps():
    class Twice(layers.Wrapper):
        def call(self, inputs):
            return self.layer(self.layer(inputs))

    wrapped = Twice(layers.Dense(2, use_bias=False, kernel_initializer="identity"))
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    np.testing.assert_allclose(wrapped(x).numpy(), x)
    clone = Twice.from_config(wrapped.get_config())
    assert isinstance(clone.layer, layers.Dense) and clone.layer.units == 2
    with pytest.raises(ValueError, match="supported layer type"):
        layers.Wrapper("dense")
