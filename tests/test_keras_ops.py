"""keras.ops: Keras 3's defaults where they differ from TensorFlow's, and gradients."""

from __future__ import annotations

import numpy as np

import distflow as df
from distflow.keras import ops


def test_keras_defaults():
    x = np.array([[1, 5], [4, 2]])
    assert int(ops.argmax(x)) == 1 and int(ops.argmin(x)) == 0  # flattened, as keras.ops
    np.testing.assert_array_equal(ops.argmax(x, axis=0).numpy(), [1, 0])
    assert ops.argmax(x, axis=1, keepdims=True).shape == (2, 1)
    assert ops.shape(np.ones((3, 2))) == (3, 2)
    assert ops.concatenate([np.ones((1, 2)), np.zeros((1, 2))]).shape == (2, 2)
    assert ops.ones((2,)).dtype == np.float32 and ops.zeros((2,), dtype="int32").dtype == np.int32
    assert ops.arange(3).dtype == np.int32 and ops.arange(0.0, 1.0, 0.5).dtype == np.float32
    assert ops.one_hot(np.array([0, 2]), 3).numpy().tolist() == [[1, 0, 0], [0, 0, 1]]


def test_vae_style_expression_is_differentiable():
    z_mean = df.Variable(np.array([[0.5, -1.0]], np.float32), name="ops/z_mean")
    z_log_var = df.Variable(np.array([[0.1, 0.2]], np.float32), name="ops/z_log_var")
    with df.GradientTape() as tape:
        kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        kl = ops.mean(ops.sum(kl, axis=1))
    g_mean, g_var = tape.gradient(kl, [z_mean, z_log_var])
    np.testing.assert_allclose(g_mean.numpy(), z_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(g_var.numpy(), 0.5 * (np.exp(z_log_var.numpy()) - 1), rtol=1e-6)
