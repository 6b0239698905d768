"""keras.mixed_precision: dtype policies and LossScaleOptimizer's dynamic loss scaling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import distflow as df
from distflow import keras, optimizers
from distflow.keras import layers, mixed_precision
from distflow.keras.functional import Input
from distflow.keras.models import Sequential


def test_global_policy_sets_the_default_layer_dtype():
    try:
        mixed_precision.set_global_policy("float64")
        assert layers.Dense(2).dtype == "float64"
        assert mixed_precision.global_policy().compute_dtype == "float64"
    finally:
        mixed_precision.set_global_policy("float32")
    assert layers.Dense(2).dtype == "float32"
    with pytest.raises(NotImplementedError, match="bfloat16"):
        mixed_precision.set_global_policy("mixed_bfloat16")
    with pytest.raises(ValueError, match="float type"):
        mixed_precision.Policy("int32")


MIXED = json.loads((Path(__file__).parent / "goldens" / "mixed_precision.json").read_text())


@pytest.fixture
def mixed_float16():
    mixed_precision.set_global_policy("mixed_float16")
    yield
    mixed_precision.set_global_policy("float32")


def _mixed_model():
    model = Sequential([Input(shape=(6,)), layers.Dense(8, activation="relu"),
                        layers.BatchNormalization(), layers.Dense(4),
                        layers.Activation("softmax", dtype="float32")])
    model.set_weights([np.array(w, np.float32) for w in MIXED["weights"]])
    return model


def test_mixed_float16_computes_in_float16_on_float32_variables_as_keras(mixed_float16):
    policy = mixed_precision.global_policy()
    assert (policy.name, policy.compute_dtype, policy.variable_dtype) == (
        "mixed_float16", "float16", "float32")
    model = _mixed_model()
    x, y = np.array(MIXED["x"], np.float32), np.array(MIXED["y"], np.float32)
    assert [w.dtype.name for w in model.weights] == MIXED["variable_dtypes"]
    hidden = model.layers[0](x)
    assert hidden.dtype.name == MIXED["hidden_dtype"] == "float16"
    np.testing.assert_allclose(hidden.numpy(), MIXED["hidden"], rtol=1e-3, atol=1e-3)
    with df.GradientTape() as tape:
        out = model(x, training=True)
        loss = keras.losses.CategoricalCrossentropy()(y, out)
    assert out.dtype.name == MIXED["output_dtype"]
    np.testing.assert_allclose(out.numpy(), MIXED["output"], rtol=1e-4, atol=1e-5)
    assert float(loss) == pytest.approx(MIXED["loss"], rel=1e-5)
    grads = tape.gradient(loss, model.trainable_weights)
    for got, want in zip(grads, MIXED["grads"]):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
    assert layers.Dense(2).get_config()["dtype"] == "mixed_float16"


def test_recurrent_and_attention_layers_compute_in_float16_as_keras(mixed_float16):
    x = Input((5, 3))
    lstm = layers.LSTM(4, return_sequences=True)(x)
    gru = layers.GRU(4, return_sequences=True)(lstm)
    attention = layers.MultiHeadAttention(2, 2)(gru, gru)
    out = layers.Dense(2, dtype="float32")(layers.GlobalAveragePooling1D()(attention))
    model = keras.Model(x, [lstm, gru, attention, out])
    case = MIXED["sequence"]
    model.set_weights([np.array(w, np.float32) for w in case["weights"]])
    outputs = model(np.array(case["x"], np.float32))
    assert [t.dtype.name for t in outputs] == case["dtypes"]
    assert all(w.dtype == np.float32 for w in model.weights)
    for got, want in zip(outputs, case["outputs"]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-3, atol=1e-3)


def test_mixed_float16_fit_matches_keras_and_scales_the_loss(mixed_float16):
    model = _mixed_model()
    model.compile(optimizer=optimizers.SGD(0.1), loss="categorical_crossentropy")
    assert type(model.optimizer).__name__ == MIXED["optimizer"] == "LossScaleOptimizer"
    history = model.fit(np.array(MIXED["x"], np.float32), np.array(MIXED["y"], np.float32),
                        batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(history, MIXED["history"], rtol=1e-4)
    for got, want in zip(model.get_weights(), MIXED["weights_after_fit"]):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse", auto_scale_loss=False)
    assert isinstance(model.optimizer, optimizers.SGD)


def test_loss_scale_optimizer_skips_non_finite_steps_and_adapts_its_scale():
    opt = mixed_precision.LossScaleOptimizer(optimizers.SGD(0.1), initial_scale=8.0,
                                             dynamic_growth_steps=2)
    w = df.Variable(np.zeros(2, np.float32), name="lso/w")
    assert float(opt.scale_loss(df.constant(1.5))) == 12.0
    opt.apply_gradients([(np.array([np.inf, 1.0], np.float32), w)])
    assert float(opt.dynamic_scale.numpy()) == 4.0 and int(opt.iterations) == 0
    np.testing.assert_array_equal(w.numpy(), 0.0)
    opt.apply_gradients([(np.array([4.0, 8.0], np.float32), w)])  # scaled by 4
    np.testing.assert_allclose(w.numpy(), [-0.1, -0.2], rtol=1e-6)
    opt.apply_gradients([(np.array([4.0, 8.0], np.float32), w)])
    assert float(opt.dynamic_scale.numpy()) == 8.0  # two finite steps: doubled
    rebuilt = optimizers.deserialize(optimizers.serialize(opt))
    assert isinstance(rebuilt.inner_optimizer, optimizers.SGD) and rebuilt.initial_scale == 8.0


def test_fit_with_a_loss_scale_optimizer_equals_fit_without():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-1.0], [0.5]], np.float32)
    weights = None
    results = []
    for wrap in (False, True):
        model = Sequential([Input(shape=(3,)), layers.Dense(1)])
        weights = weights or model.get_weights()
        model.set_weights(weights)
        opt = optimizers.SGD(0.05)
        model.compile(optimizer=keras.mixed_precision.LossScaleOptimizer(opt) if wrap else opt,
                      loss="mse")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.timeout(120)
def test_mixed_float16_fit_through_a_parameter_server_equals_local_fit(mixed_float16):
    from distflow.distribute import ClusterSpec
    from distflow.distribute import strategy as strategy_module
    from distflow.distribute.server import ParameterServer, ServerConfig

    x = np.array(MIXED["x"], np.float32).repeat(4, axis=0)
    y = np.array(MIXED["y"], np.float32).repeat(4, axis=0)

    def fit():
        model = _mixed_model()
        model.compile(optimizer=optimizers.SGD(0.1), loss="categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return model

    local = fit().get_weights()
    server = ParameterServer(ServerConfig(mode="sync", num_workers=1, heartbeat_timeout=10.0,
                                          stats_interval=0))
    server.start()
    strategy = strategy_module.MirroredStrategy(
        cluster=ClusterSpec(ps_addrs=(server.address,), num_workers=1, heartbeat_timeout=10.0))
    try:
        with strategy.scope():
            remote = fit()
    finally:
        strategy.close()
        server.stop()
    assert server.version == 4  # 32 rows, batches of 8: every step went to the server
    assert all(w.dtype == np.float32 for w in remote.get_weights())
    for a, b in zip(local, remote.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
