"""keras.constraints and the layers' *_constraint arguments (values against Keras 3 are in
tests/test_goldens.py)."""

from __future__ import annotations

import numpy as np
import pytest
from test_hyperparams import _mirrored

import distflow as df
from distflow import keras, optimizers
from distflow.keras import constraints, layers
from distflow.keras.functional import Input
from distflow.keras.models import Sequential

RNG = np.random.default_rng(8)


def _fit(model, x, y):
    model.compile(optimizer=optimizers.SGD(0.5), loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)


def test_dense_constraints_hold_after_every_update():
    dense = layers.Dense(3, kernel_constraint=constraints.MaxNorm(0.5), bias_constraint="non_neg")
    x = RNG.normal(size=(32, 4)).astype(np.float32)
    _fit(Sequential([Input(shape=(4,)), dense]), x, 5 * RNG.normal(size=(32, 3)).astype("f4"))
    assert np.all(np.linalg.norm(dense.kernel.numpy(), axis=0) <= 0.5 + 1e-6)
    assert np.all(dense.bias.numpy() >= 0)
    assert dense.kernel_constraint.get_config() == {"max_value": 0.5, "axis": 0}


@pytest.mark.parametrize("make,weight,check", [
    (lambda: layers.Conv2D(2, 3, kernel_constraint=constraints.UnitNorm(axis=[0, 1, 2])),
     "kernel", lambda w: np.allclose(np.linalg.norm(w.reshape(-1, w.shape[-1]), axis=0), 1,
                                     atol=1e-5)),
    (lambda: layers.DepthwiseConv2D(3, depthwise_constraint="non_neg"), "depthwise_kernel",
     lambda w: np.all(w >= 0)),
    (lambda: layers.BatchNormalization(gamma_constraint=constraints.MinMaxNorm(0.0, 0.1)),
     "gamma", lambda w: np.linalg.norm(w) <= 0.1 + 1e-6),
], ids=["conv2d", "depthwise", "batchnorm"])
def test_convolution_and_normalization_constraints(make, weight, check):
    layer = make()
    model = Sequential([Input(shape=(6, 6, 2)), layer, layers.Flatten(), layers.Dense(1)])
    _fit(model, RNG.normal(size=(16, 6, 6, 2)).astype("f4"), RNG.normal(size=(16, 1)).astype("f4"))
    assert check(getattr(layer, weight).numpy())


def test_embedding_and_recurrent_constraints():
    embedding = layers.Embedding(10, 4, embeddings_constraint=constraints.MaxNorm(0.2, axis=1))
    lstm = layers.LSTM(3, recurrent_constraint="unit_norm")
    model = Sequential([Input(shape=(5,)), embedding, lstm, layers.Dense(1)])
    _fit(model, RNG.integers(0, 10, size=(16, 5)).astype("f4"),
         RNG.normal(size=(16, 1)).astype("f4"))
    assert np.all(np.linalg.norm(embedding.embeddings.numpy(), axis=1) <= 0.2 + 1e-6)
    np.testing.assert_allclose(np.linalg.norm(lstm.cell.recurrent_kernel.numpy(), axis=0), 1,
                               atol=1e-5)
    assert lstm.get_config()["recurrent_constraint"]["class_name"] == "UnitNorm"


def test_config_round_trip_keeps_the_constraint():
    dense = layers.Dense(2, kernel_constraint=constraints.MinMaxNorm(0.1, 0.9, rate=0.5))
    rebuilt = layers.Dense.from_config(dense.get_config())
    assert rebuilt.kernel_constraint.get_config() == dense.kernel_constraint.get_config()
    rebuilt.build((None, 3))
    assert isinstance(rebuilt.kernel.constraint, constraints.MinMaxNorm)
    assert keras.constraints.deserialize(keras.constraints.serialize(
        constraints.RadialConstraint())).get_config() == {}


def test_add_weight_constraint_and_variable_constraint():
    layer = layers.Layer()
    w = layer.add_weight("w", (2, 2), "ones", constraint="non_neg")
    assert isinstance(w.constraint, constraints.NonNeg)
    opt = optimizers.SGD(1.0)
    opt.apply_gradients([(np.full((2, 2), 3.0, np.float32), w)])
    np.testing.assert_array_equal(w.numpy(), 0.0)


def test_radial_constraint_makes_rings_as_tf_keras_2_did():
    w = np.arange(25.0).reshape(5, 5, 1, 1)
    out = constraints.RadialConstraint()(w).numpy()[..., 0, 0]
    assert out[2, 2] == w[1, 1, 0, 0] and out[1, 2] == w[2, 2, 0, 0]
    assert np.all(out[0] == w[3, 3, 0, 0]) and np.all(out[:, 4] == w[3, 3, 0, 0])
    with pytest.raises(ValueError, match="rank 4"):
        constraints.RadialConstraint()(np.ones((3, 3)))


def test_unknown_identifier_and_strategy_refusal(servers):
    with pytest.raises(ValueError, match="Could not interpret constraint identifier"):
        constraints.get("max_nrom")
    server = servers(mode="sync")
    strategy = _mirrored(server)
    w = df.Variable(np.ones((2, 2), np.float32), name="constrained_ps/w",
                    constraint=constraints.NonNeg())
    try:
        with strategy.scope(), pytest.raises(NotImplementedError, match="constraints"):
            optimizers.SGD(0.1).apply_gradients([(np.ones((2, 2), np.float32), w)])
    finally:
        strategy.close()
    np.testing.assert_array_equal(w.numpy(), 1.0)  # nothing half-applied
