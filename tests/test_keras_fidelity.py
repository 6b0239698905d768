"""Behaviours that used to differ silently from TensorFlow/Keras, one test each.

Expected values are Keras 3's (TF 2.21), as noted in each test.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from test_hyperparams import _mirrored

import distflow as df
from distflow import keras, optimizers
from distflow.keras import backend, layers
from distflow.keras.functional import Input
from distflow.keras.models import Model, Sequential

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- optimizers


def test_unknown_optimizer_argument_raises_as_in_keras_3():
    with pytest.raises(ValueError, match=r"Argument\(s\) not recognized: \{'beta1': 0.5\}"):
        optimizers.Adam(beta1=0.5)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.SGD(0.1, nesterov_momentum=True)


def test_lr_is_a_deprecated_alias_that_sets_the_learning_rate():
    with pytest.warns(DeprecationWarning, match="`lr` argument is deprecated"):
        opt = optimizers.Adam(lr=0.05)
    assert float(opt.learning_rate) == pytest.approx(0.05)
    assert opt.get_config()["learning_rate"] == 0.05


def test_decay_is_ignored_with_keras_3s_warning():
    with pytest.warns(UserWarning, match="`decay` is no longer supported"):
        opt = optimizers.SGD(0.1, decay=0.01)
    w = df.Variable(np.zeros(1, np.float32), name="decay/w")
    for _ in range(3):
        opt.apply_gradients([(np.ones(1, np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [-0.3], rtol=1e-6)  # no decay applied


def test_ema_arguments_are_checked_and_clipping_arguments_are_exclusive():
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.Adam(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        optimizers.Adam(use_ema=True, ema_overwrite_frequency=0)
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.SGD(gradient_accumulation_steps=1)


def test_gradient_accumulation_applies_the_mean_every_n_steps():
    opt = optimizers.SGD(0.1, gradient_accumulation_steps=2)
    w = df.Variable(np.zeros(1, np.float32), name="accum/w")
    opt.apply_gradients([(np.array([1.0], np.float32), w)])
    np.testing.assert_array_equal(w.numpy(), [0.0])
    opt.apply_gradients([(np.array([3.0], np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [-0.2], rtol=1e-6)
    assert int(opt.iterations) == 2


def test_loss_scale_factor_unscales_the_gradients():
    opt = optimizers.SGD(0.1, loss_scale_factor=4.0)
    assert float(opt.scale_loss(df.constant(2.0))) == 8.0
    w = df.Variable(np.zeros(1, np.float32), name="scale/w")
    opt.apply_gradients([(np.array([4.0], np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [-0.1], rtol=1e-6)


def test_learning_rate_and_iterations_are_variables():
    opt = optimizers.SGD(0.1)
    w = df.Variable(np.zeros(1, np.float32), name="vars/w")
    assert isinstance(opt.learning_rate, df.Variable) and isinstance(opt.iterations, df.Variable)
    opt.learning_rate.assign(0.5)
    opt.apply_gradients([(np.ones(1, np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [-0.5], rtol=1e-6)
    backend.set_value(opt.learning_rate, 0.25)
    assert backend.get_value(opt.learning_rate) == pytest.approx(0.25)
    opt.apply_gradients([(np.ones(1, np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [-0.75], rtol=1e-6)
    assert opt.iterations.numpy() == 2 and opt.iterations.dtype == np.int64
    assert opt.learning_rate.numpy() == np.float32(0.25)


def test_an_assigned_learning_rate_reaches_the_servers(servers):
    server = servers(mode="sync")
    strategy = _mirrored(server)
    w = df.Variable(np.zeros((2, 2), np.float32), name="assign_lr/w")
    opt = optimizers.SGD(0.1)
    try:
        with strategy.scope():
            opt.apply_gradients([(np.ones((2, 2), np.float32), w)])
            opt.learning_rate.assign(0.5)
            opt.apply_gradients([(np.ones((2, 2), np.float32), w)])
    finally:
        strategy.close()
    np.testing.assert_allclose(w.numpy(), np.full((2, 2), -0.6), rtol=1e-6)
    assert server.stats_dict()["learning_rate"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- metrics


def test_two_metrics_with_one_name_get_unique_names():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = Sequential([Input(shape=(3,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(), keras.metrics.AUC(num_thresholds=50), "mae",
                           "mae"])
    history = model.fit(x, y, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "auc", "auc_1", "mae", "mae_1"}  # Keras 3's keys


# ----------------------------------------------------------------------------- core ops


def test_argmax_and_argmin_default_to_axis_0_with_output_type():
    x = [[1, 3], [4, 2]]
    np.testing.assert_array_equal(df.argmax(x).numpy(), [1, 0])  # tf.argmax: axis 0
    np.testing.assert_array_equal(df.argmin(x).numpy(), [0, 1])
    assert df.argmax(x).dtype == np.int64
    assert df.argmax([1, 3], output_type="int32").dtype == np.int32
    np.testing.assert_array_equal(df.argmax(x, axis=1).numpy(), [1, 0])


def test_numpy_conversions_and_format_of_0_d_tensors():
    loss = df.reduce_sum(df.constant([1.0, 2.5]))
    assert f"{loss:.3f}" == "3.500"
    scalar = df.shape(df.zeros((5, 2)))[0]
    assert np.asarray(scalar).shape == () and int(np.asarray(scalar)) == 5
    assert np.array(loss).shape == () and float(np.array(loss)) == 3.5


def test_np_array_of_a_variable_is_a_snapshot():
    bn = layers.BatchNormalization()
    model = Sequential([Input(shape=(2,)), bn])
    model.compile(optimizer="sgd", loss="mse")
    before, copied = np.array(bn.moving_mean), np.copy(bn.moving_mean)
    x = np.random.default_rng(0).normal(loc=3.0, size=(32, 2)).astype(np.float32)
    model.fit(x, x, epochs=1, verbose=0)
    np.testing.assert_array_equal(before, [0.0, 0.0])
    np.testing.assert_array_equal(copied, [0.0, 0.0])
    assert not np.allclose(np.array(bn.moving_mean), 0.0)


# ----------------------------------------------------------------------------- fit


def test_1d_inputs_are_expanded_for_an_input_of_last_dimension_1():
    x = np.linspace(-1, 1, 32).astype(np.float32)
    model = Sequential([Input(shape=(1,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, 2 * x + 1, epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (32, 1)
    assert np.isfinite(model.evaluate(x, 2 * x + 1, verbose=0))
    inp = Input(shape=(1,))
    functional = Model(inp, layers.Dense(1)(inp))
    assert functional.predict(x, verbose=0).shape == (32, 1)


def test_tensorboard_writer_is_a_dependency(tmp_path):
    lines = (REPO / "pyproject.toml").read_text().splitlines()
    dependencies = next(line for line in lines if line.startswith("dependencies = "))
    assert '"tensorboardX' in dependencies  # installed with distflow, not an extra
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.callbacks.TensorBoard(log_dir=str(tmp_path))


def test_legacy_optimizers_apply_tf_keras_2s_time_based_decay():
    from distflow.keras.optimizers import legacy

    with pytest.warns(DeprecationWarning):
        opt = legacy.SGD(lr=0.1, decay=0.5)
    w = df.Variable(np.zeros(1, np.float32), name="legacy/w")
    for _ in range(3):
        opt.apply_gradients([(np.ones(1, np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [-(0.1 + 0.1 / 1.5 + 0.1 / 2.0)], rtol=1e-6)
    assert isinstance(optimizers.legacy.Adam(), optimizers.Adam)
    assert float(optimizers.legacy.RMSprop().learning_rate) == pytest.approx(0.001)


def _ema_fit(use_ema, callbacks=()):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    model.set_weights([np.full((3, 1), 0.2, np.float32), np.zeros(1, np.float32)])
    model.compile(optimizer=optimizers.SGD(0.05, use_ema=use_ema, ema_momentum=0.9),
                  loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                        validation_data=(x[:16], y[:16]), callbacks=list(callbacks))
    return model, history.history, (x[:16], y[:16])


def test_fit_with_use_ema_ends_with_the_moving_averages():
    plain, _, _ = _ema_fit(False)
    model, _, _ = _ema_fit(True)
    kernel = model.layers[0].kernel
    np.testing.assert_array_equal(kernel.numpy(), model.optimizer._ema[kernel.name])
    assert not np.allclose(kernel.numpy(), plain.layers[0].kernel.numpy())


def test_swap_ema_weights_validates_with_the_averages():
    model, history, (xv, yv) = _ema_fit(True, [keras.callbacks.SwapEMAWeights()])
    assert history["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv, verbose=0),
                                                    rel=1e-6)
    unswapped, history, _ = _ema_fit(True)
    assert history["val_loss"][-1] != pytest.approx(unswapped.evaluate(xv, yv, verbose=0),
                                                    rel=1e-6)
    with pytest.raises(ValueError, match="use_ema"):
        _ema_fit(False, [keras.callbacks.SwapEMAWeights()])


def test_use_ema_is_refused_under_a_strategy(servers):
    server = servers(mode="sync")
    strategy = _mirrored(server)
    w = df.Variable(np.zeros((2, 2), np.float32), name="ema_ps/w")
    try:
        with strategy.scope(), pytest.raises(NotImplementedError, match="use_ema"):
            optimizers.SGD(0.1, use_ema=True).apply_gradients(
                [(np.ones((2, 2), np.float32), w)])
    finally:
        strategy.close()


def test_a_learning_rate_function_of_no_arguments_is_called_every_step():
    rate = {"value": 0.1}
    opt = optimizers.SGD(lambda: rate["value"])
    w = df.Variable(np.zeros(1, np.float32), name="lr_fn/w")
    opt.apply_gradients([(np.ones(1, np.float32), w)])
    rate["value"] = 0.5
    assert float(opt.learning_rate) == pytest.approx(0.5)
    opt.apply_gradients([(np.ones(1, np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [-0.6], rtol=1e-6)
    assert opt.get_config()["learning_rate"] == 0.5


def test_weight_decay_exclusions_are_configured_before_the_first_step(servers):
    opt = optimizers.AdamW(0.1)
    w = df.Variable(np.ones(2, np.float32), name="wd_excl/w")
    opt.apply_gradients([(np.zeros(2, np.float32), w)])
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["w"])
    strategy = _mirrored(servers(mode="sync"))
    fresh = optimizers.AdamW(0.1)
    fresh.exclude_from_weight_decay(var_list=[w])
    try:
        with strategy.scope(), pytest.raises(NotImplementedError, match="weight_decay"):
            fresh.apply_gradients([(np.zeros(2, np.float32), w)])
    finally:
        strategy.close()
