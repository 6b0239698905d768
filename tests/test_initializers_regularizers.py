"""Keras initializers, regularizers and activations against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

import distflow as df
from distflow.keras import activations, initializers, layers, regularizers
from distflow.tensor import reset_names
from distflow.test_util import check_grads

# ----------------------------------------------------------------- initializers


def test_fans_for_dense_and_conv_kernels():
    assert initializers.compute_fans((20, 30)) == (20, 30)
    assert initializers.compute_fans((3, 3, 4, 8)) == (36, 72)
    assert initializers.compute_fans((5,)) == (5, 5)


@pytest.mark.parametrize("name,shape,bound_or_std,kind", [
    ("glorot_uniform", (200, 300), math.sqrt(6 / 500), "uniform"),
    ("he_uniform", (3, 3, 20, 40), math.sqrt(6 / 180), "uniform"),
    ("lecun_uniform", (400, 50), math.sqrt(3 / 400), "uniform"),
    ("glorot_normal", (200, 300), math.sqrt(2 / 500), "normal"),
    ("he_normal", (3, 3, 20, 40), math.sqrt(2 / 180), "normal"),
    ("lecun_normal", (400, 50), math.sqrt(1 / 400), "normal"),
])
def test_variance_scaling_presets(name, shape, bound_or_std, kind):
    values = initializers.get(name)(shape).numpy()
    assert values.shape == shape and values.dtype == np.float32
    if kind == "uniform":
        assert np.abs(values).max() <= bound_or_std
        assert values.std() == pytest.approx(bound_or_std / math.sqrt(3), rel=0.05)
    else:  # truncated at two (scaled) standard deviations, variance restored
        assert np.abs(values).max() <= 2 * bound_or_std / 0.87962566103423978 + 1e-6
        assert values.std() == pytest.approx(bound_or_std, rel=0.05)


def test_simple_initializers():
    assert np.all(initializers.Zeros()((2, 3)).numpy() == 0)
    assert np.all(initializers.get("ones")((4,)).numpy() == 1)
    assert np.all(initializers.Constant(2.5)((2, 2)).numpy() == 2.5)
    normal = initializers.RandomNormal(mean=1.0, stddev=0.1)((200, 200)).numpy()
    assert normal.mean() == pytest.approx(1.0, abs=0.01)
    assert normal.std() == pytest.approx(0.1, rel=0.05)
    uniform = initializers.RandomUniform(-0.5, 0.5)((10000,)).numpy()
    assert uniform.min() >= -0.5 and uniform.max() < 0.5
    truncated = initializers.TruncatedNormal(stddev=1.0)((10000,)).numpy()
    assert np.abs(truncated).max() <= 2.0
    np.testing.assert_array_equal(initializers.Identity(3.0)((2, 3)).numpy(),
                                  3.0 * np.eye(2, 3))


def test_orthogonal_is_orthogonal_for_tall_and_wide_shapes():
    tall = initializers.Orthogonal(seed=1)((6, 4)).numpy().astype(np.float64)
    np.testing.assert_allclose(tall.T @ tall, np.eye(4), atol=1e-5)
    wide = initializers.Orthogonal(gain=2.0, seed=1)((3, 5)).numpy().astype(np.float64)
    np.testing.assert_allclose(wide @ wide.T, 4 * np.eye(3), atol=1e-5)


def test_seeds_make_initial_weights_reproducible():
    seeded = initializers.GlorotUniform(seed=5)
    np.testing.assert_array_equal(seeded((3, 4)).numpy(), seeded((3, 4)).numpy())
    unseeded = initializers.GlorotUniform()
    assert not np.array_equal(unseeded((3, 4)).numpy(), unseeded((3, 4)).numpy())

    def build_weights():
        reset_names()
        df.random.set_seed(42)
        dense = layers.Dense(5)
        dense.build((None, 3))
        return dense.kernel.numpy()

    np.testing.assert_array_equal(build_weights(), build_weights())


def test_initializer_get_serialize_and_errors():
    init = initializers.get({"class_name": "HeNormal", "config": {"seed": 3}})
    assert isinstance(init, initializers.HeNormal) and init.seed == 3
    again = initializers.deserialize(initializers.serialize(init))
    np.testing.assert_array_equal(again((4, 4)).numpy(), init((4, 4)).numpy())
    assert initializers.get(None) is None
    assert isinstance(initializers.get("GlorotUniform"), initializers.GlorotUniform)

    def custom(shape, dtype=None):
        return np.full(shape, 7.0, np.float32)

    assert initializers.get(custom) is custom
    with pytest.raises(ValueError, match="Unknown initializer: 'glorot_unifrom'"):
        initializers.get("glorot_unifrom")
    with pytest.raises(ValueError, match="mode='fan_sum'"):
        initializers.VarianceScaling(mode="fan_sum")
    with pytest.raises(ValueError, match="seed=-1"):
        initializers.RandomNormal(seed=-1)


def test_custom_initializer_function_in_a_layer():
    dense = layers.Dense(2, kernel_initializer=lambda shape, dtype=None: np.full(shape, 0.5))
    np.testing.assert_allclose(dense(np.ones((1, 4))).numpy(), [[2.0, 2.0]])


# ----------------------------------------------------------------- regularizers


def test_regularizer_values():
    w = np.array([[1.0, -2.0], [0.5, 0.0]], np.float32)
    assert float(regularizers.L1(0.1)(w)) == pytest.approx(0.1 * 3.5)
    assert float(regularizers.L2(0.2)(w)) == pytest.approx(0.2 * 5.25)
    assert float(regularizers.l1_l2(0.1, 0.2)(w)) == pytest.approx(0.35 + 1.05)
    assert float(regularizers.L1L2()(w)) == 0.0
    assert regularizers.get("l2").get_config() == {"l2": 0.01}
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}


def test_regularizer_serialization_and_errors():
    reg = regularizers.L1L2(l1=0.3, l2=0.4)
    back = regularizers.get(regularizers.serialize(reg))
    assert isinstance(back, regularizers.L1L2) and back.get_config() == reg.get_config()
    assert regularizers.get(None) is None
    with pytest.raises(ValueError, match="Unknown regularizer: 'l3'"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="l2=-1"):
        regularizers.L2(-1)


# ------------------------------------------------------------------ activations


X = np.linspace(-4, 4, 17).astype(np.float64)
REFERENCES = {
    "relu": np.maximum(X, 0),
    "sigmoid": 1 / (1 + np.exp(-X)),
    "tanh": np.tanh(X),
    "elu": np.where(X > 0, X, np.exp(X) - 1),
    "selu": 1.0507009873554805 * np.where(X > 0, X, 1.6732632423543772 * (np.exp(X) - 1)),
    "softplus": np.log1p(np.exp(X)),
    "softsign": X / (1 + np.abs(X)),
    "leaky_relu": np.where(X > 0, X, 0.2 * X),
    "linear": X,
    "swish": X / (1 + np.exp(-X)),
    "silu": X / (1 + np.exp(-X)),
    "gelu": np.array([x * 0.5 * (1 + math.erf(x / math.sqrt(2))) for x in X]),
    "relu6": np.clip(X, 0, 6),
    "exponential": np.exp(X),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_values_and_gradients(name):
    fn = activations.get(name)
    np.testing.assert_allclose(fn(X).numpy(), REFERENCES[name], rtol=1e-6, atol=1e-7)
    assert activations.serialize(fn) in (name, "silu")
    smooth_points = X + 0.03  # keep central differences off the kinks at 0
    check_grads(lambda t: fn(t), [smooth_points], rtol=1e-4, atol=1e-6)


def test_softmax_and_relu_options():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(activations.softmax(logits).numpy(), expected, rtol=1e-6)
    capped = activations.relu(X, negative_slope=0.1, max_value=2.0).numpy()
    np.testing.assert_allclose(capped, np.minimum(np.where(X > 0, X, 0.1 * X), 2.0))
    np.testing.assert_allclose(activations.relu(X, alpha=0.1).numpy(),
                               np.where(X > 0, X, 0.1 * X))
    shifted = activations.relu(X, threshold=1.0).numpy()
    np.testing.assert_allclose(shifted, np.where(X >= 1.0, X, 0.0))


def test_activation_get_errors_and_identity():
    assert activations.get(None) is activations.linear
    assert activations.get(np.tanh) is np.tanh
    with pytest.raises(ValueError, match="Unknown activation function: 'rellu'"):
        activations.get("rellu")
    with pytest.raises(ValueError, match="Could not interpret"):
        activations.get(3)


def test_deserialize_takes_names_and_rejects_malformed_configs():
    assert isinstance(initializers.deserialize("zeros"), initializers.Zeros)
    assert isinstance(regularizers.deserialize("l2"), regularizers.L2)
    with pytest.raises(ValueError, match="Unknown initializer class: 'Nope'"):
        initializers.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="'class_name' and 'config'"):
        regularizers.deserialize({"config": {}})
