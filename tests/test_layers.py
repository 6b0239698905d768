"""Keras layers: forward passes against NumPy references written here, gradients
through layers by central differences, config round trips, weights, names and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import distflow as df
from distflow.keras import initializers, layers, regularizers
from distflow.tensor import reset_names
from distflow.test_util import check_grads


@pytest.fixture(autouse=True)
def _fresh_names():
    reset_names()
    df.random.set_seed(1234)
    yield


RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------- references


def same_padding(size, k, stride, dilation=1):
    span = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


def conv2d_reference(x, w, b, stride, padding, dilation=1):
    """Direct loops over output pixels (the definition, no im2col)."""
    n, h, wd, cin = x.shape
    kh, kw, _, cout = w.shape
    if padding == "same":
        oh, top, bottom = same_padding(h, kh, stride, dilation)
        ow, left, right = same_padding(wd, kw, stride, dilation)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    else:
        oh = (h - (kh - 1) * dilation - 1) // stride + 1
        ow = (wd - (kw - 1) * dilation - 1) // stride + 1
    out = np.zeros((n, oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            for di in range(kh):
                for dj in range(kw):
                    pixel = x[:, i * stride + di * dilation, j * stride + dj * dilation, :]
                    out[:, i, j, :] += pixel @ w[di, dj]
    return out + b


def pool_reference(x, size, stride, kind):
    n, h, w, c = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * stride:i * stride + size, j * stride:j * stride + size, :]
            out[:, i, j, :] = window.max(axis=(1, 2)) if kind == "max" else window.mean(
                axis=(1, 2))
    return out


# ------------------------------------------------------------------- Dense


def test_dense_matches_numpy_on_rank_2_and_3_inputs():
    layer = layers.Dense(5, activation="relu")
    x = rand(4, 3)
    y = layer(x).numpy()
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 5) and bias.shape == (5,)
    np.testing.assert_allclose(y, np.maximum(x @ kernel + bias, 0), rtol=1e-5, atol=1e-6)
    x3 = rand(2, 6, 3)
    np.testing.assert_allclose(layer(x3).numpy(), np.maximum(x3 @ kernel + bias, 0),
                               rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None, 6, 3)) == (None, 6, 5)


def test_dense_default_names_and_variable_names():
    first, second = layers.Dense(2), layers.Dense(2)
    assert (first.name, second.name) == ("dense", "dense_1")
    first(np.zeros((1, 3)))
    assert [v.name for v in first.weights] == ["dense/kernel", "dense/bias"]
    assert layers.Conv2D(1, 1).name == "conv2d"
    assert layers.MaxPooling2D().name == "max_pooling2d"
    assert layers.BatchNormalization().name == "batch_normalization"
    assert layers.GlobalAveragePooling2D().name == "global_average_pooling2d"
    assert layers.SimpleRNN(2).name == "simple_rnn"
    assert layers.Dense(2, name="head").name == "head"


@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True])
def test_dense_rejects_bad_units(units):
    with pytest.raises(ValueError, match=f"units={units!r}".replace("(", r"\(")):
        layers.Dense(units)


def test_dense_input_mismatch_after_build_is_clear():
    layer = layers.Dense(3)
    layer(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r'layer "dense".*axis -1 .* value 4.*\(2, 5\)'):
        layer(np.zeros((2, 5)))


def test_dense_kernel_initializer_and_no_bias():
    layer = layers.Dense(3, use_bias=False, kernel_initializer="ones")
    out = layer(np.full((2, 4), 2.0))
    assert len(layer.weights) == 1
    np.testing.assert_allclose(out.numpy(), np.full((2, 3), 8.0))


def test_unknown_keyword_argument_is_a_type_error():
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to Dense"):
        layers.Dense(3, input_shap=(4,))


def test_input_shape_kwargs_are_stored_without_batch_dimension():
    assert layers.Dense(3, input_shape=(4,))._input_shape_arg == (4,)
    assert layers.Dense(3, input_dim=7)._input_shape_arg == (7,)
    conv = layers.Conv2D(2, 3, batch_input_shape=(None, 28, 28, 1))
    assert conv._input_shape_arg == (28, 28, 1)
    assert conv.get_config()["batch_input_shape"] == [None, 28, 28, 1]
    assert layers.Dense(3)._input_shape_arg is None


def test_float64_numpy_inputs_are_cast_to_the_layer_dtype():
    out = layers.Dense(2)(np.ones((1, 3), dtype=np.float64))
    assert out.dtype == np.float32
    out64 = layers.Dense(2, dtype="float64")(np.ones((1, 3), dtype=np.float32))
    assert out64.dtype == np.float64


# ----------------------------------------------------------- weights API


def test_get_set_weights_round_trip_and_shape_errors():
    layer = layers.Dense(2)
    layer(np.zeros((1, 3)))
    new = [np.arange(6, dtype=np.float32).reshape(3, 2), np.array([1.0, -1.0], np.float32)]
    layer.set_weights(new)
    for got, want in zip(layer.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="weight list of length 1, but the layer was expecting 2"):
        layer.set_weights(new[:1])
    with pytest.raises(ValueError, match=r"weight shape \(3, 2\) is not compatible with "
                                         r"provided weight shape \(2, 3\)"):
        layer.set_weights([np.zeros((2, 3)), np.zeros(2)])
    np.testing.assert_array_equal(layer.get_weights()[0], new[0])  # unchanged after the error


def test_count_params_requires_build():
    layer = layers.Dense(4)
    with pytest.raises(ValueError, match="isn't built"):
        layer.count_params()
    layer.build((None, 3))
    assert layer.built and layer.count_params() == 3 * 4 + 4
    conv = layers.Conv2D(8, 3)
    conv.build((None, 10, 10, 2))
    assert conv.count_params() == 3 * 3 * 2 * 8 + 8


def test_freezing_moves_weights_to_non_trainable_and_stops_gradients():
    layer = layers.Dense(2)
    x = rand(3, 4)
    layer(x)
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    with df.GradientTape() as tape:
        y = df.reduce_sum(layer(x))
    assert tape.gradient(y, layer.kernel) is None
    layer.trainable = True
    assert [v.name for v in layer.trainable_variables] == ["dense/kernel", "dense/bias"]
    with df.GradientTape() as tape:
        y = df.reduce_sum(layer(x))
    grad = tape.gradient(y, layer.kernel).numpy()
    np.testing.assert_allclose(grad, np.repeat(x.sum(axis=0)[:, None], 2, axis=1), rtol=1e-5)


# --------------------------------------------------------------- Conv2D


@pytest.mark.parametrize("padding,stride,dilation", [
    ("valid", 1, 1), ("same", 1, 1), ("same", 2, 1), ("valid", 2, 1), ("same", 1, 2)])
def test_conv2d_matches_naive_loop(padding, stride, dilation):
    layer = layers.Conv2D(4, (3, 2), strides=stride, padding=padding, dilation_rate=dilation,
                          bias_initializer="random_normal")
    x = rand(2, 7, 6, 3)
    out = layer(x).numpy()
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 2, 3, 4)
    expected = conv2d_reference(x.astype(np.float64), kernel, bias, stride, padding, dilation)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert layer.compute_output_shape((None, 7, 6, 3)) == (None, *out.shape[1:])


@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    (3, 1, "valid", 1), (3, 2, "valid", 1), (3, 2, "same", 1), (2, 3, "valid", 1),
    (2, 3, "same", 1), (4, 2, "same", 1), (5, 2, "same", 1), (3, 1, "same", 2)])
def test_conv2d_transpose_is_the_adjoint_of_conv2d(kernel, stride, padding, dilation):
    """<conv_transpose(x), y> == <x, conv2d(y)> with the same kernel, strides and padding."""
    layer = layers.Conv2DTranspose(2, kernel, strides=stride, padding=padding,
                                   dilation_rate=dilation, use_bias=False, dtype="float64")
    x = rand(2, 4, 5, 3, dtype=np.float64)
    out = layer(x).numpy()
    assert out.shape == layer.compute_output_shape((2, 4, 5, 3))
    y = rand(*out.shape, dtype=np.float64)
    forward = df.nn.conv2d(y, layer.kernel.numpy(), strides=stride, padding=padding.upper(),
                           dilations=dilation).numpy()
    assert forward.shape == x.shape
    np.testing.assert_allclose(np.sum(out * y), np.sum(x * forward), rtol=1e-10)


@pytest.mark.parametrize("padding,stride", [("same", 1), ("valid", 2)])
def test_depthwise_and_separable_conv_match_per_channel_loops(padding, stride):
    x = rand(2, 6, 5, 3)
    depthwise = layers.DepthwiseConv2D(3, strides=stride, padding=padding, depth_multiplier=2,
                                       bias_initializer="random_normal")
    out = depthwise(x).numpy()
    kernel, bias = depthwise.get_weights()
    assert kernel.shape == (3, 3, 3, 2)
    for c in range(3):
        for j in range(2):
            expected = conv2d_reference(x[..., c:c + 1].astype(np.float64),
                                        kernel[:, :, c:c + 1, j:j + 1], bias[c * 2 + j],
                                        stride, padding)
            np.testing.assert_allclose(out[..., c * 2 + j:c * 2 + j + 1], expected,
                                       rtol=1e-4, atol=1e-5)
    separable = layers.SeparableConv2D(4, 3, strides=stride, padding=padding,
                                       depth_multiplier=2, bias_initializer="random_normal")
    got = separable(x).numpy()
    dw, pw, b = separable.get_weights()
    assert pw.shape == (1, 1, 6, 4) and b.shape == (4,)
    depthwise.set_weights([dw, np.zeros(6, np.float32)])
    np.testing.assert_allclose(got, depthwise(x).numpy() @ pw[0, 0] + b, rtol=1e-4, atol=1e-5)
    assert separable.compute_output_shape((None, 6, 5, 3)) == (None, *got.shape[1:])


def test_conv2d_argument_errors():
    with pytest.raises(ValueError, match="dilation_rate > 1"):
        layers.Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="padding='full'"):
        layers.Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size=0"):
        layers.Conv2D(2, 0)
    with pytest.raises(ValueError, match="channels_last"):
        layers.Conv2D(2, 3, data_format="channels_first")
    conv = layers.Conv2D(2, 3)
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        conv(np.zeros((2, 5, 5)))


def test_conv1d_causal_output_only_sees_the_past():
    layer = layers.Conv1D(2, 3, padding="causal")
    x = rand(1, 6, 2)
    base = layer(x).numpy()
    changed = x.copy()
    changed[0, 4] += 10.0  # a change at t=4 must not alter outputs before t=4
    after = layer(changed).numpy()
    np.testing.assert_allclose(after[0, :4], base[0, :4], rtol=1e-6)
    assert not np.allclose(after[0, 4:], base[0, 4:])


# --------------------------------------------------------------- pooling


@pytest.mark.parametrize("cls,kind", [(layers.MaxPooling2D, "max"),
                                      (layers.AveragePooling2D, "mean")])
def test_pooling_matches_naive_loop(cls, kind):
    x = rand(2, 7, 7, 3)
    layer = cls(pool_size=3, strides=2)
    out = layer(x).numpy()
    np.testing.assert_allclose(out, pool_reference(x, 3, 2, kind), rtol=1e-5, atol=1e-6)
    default = cls()(x).numpy()  # pool 2, strides default to the pool size
    np.testing.assert_allclose(default, pool_reference(x, 2, 2, kind), rtol=1e-5, atol=1e-6)


def test_global_pooling():
    x = rand(2, 4, 5, 3)
    np.testing.assert_allclose(layers.GlobalAveragePooling2D()(x).numpy(), x.mean(axis=(1, 2)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layers.GlobalMaxPooling2D()(x).numpy(), x.max(axis=(1, 2)))
    kept = layers.GlobalAveragePooling2D(keepdims=True)
    assert kept(x).shape == (2, 1, 1, 3) == kept.compute_output_shape((2, 4, 5, 3))
    seq = rand(2, 6, 3)
    np.testing.assert_allclose(layers.GlobalMaxPooling1D()(seq).numpy(), seq.max(axis=1))


# ---------------------------------------------------------- normalisation


def test_batch_normalization_training_inference_and_moving_statistics():
    layer = layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    x = (rand(16, 3) * np.array([1.0, 2.0, 0.5]) + np.array([0.0, 5.0, -3.0])).astype(
        np.float32)
    mean, var = x.mean(axis=0), x.var(axis=0)
    trained = layer(x, training=True).numpy()
    np.testing.assert_allclose(trained, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    moving_mean, moving_var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    np.testing.assert_allclose(moving_mean, 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moving_var, 0.9 + 0.1 * var, rtol=1e-5)
    inferred = layer(x, training=False).numpy()  # uses the moving statistics, no update
    np.testing.assert_allclose(inferred, (x - moving_mean) / np.sqrt(moving_var + 1e-3),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), moving_mean)
    assert [v.name for v in layer.trainable_weights] == [
        "batch_normalization/gamma", "batch_normalization/beta"]
    assert [v.name for v in layer.non_trainable_weights] == [
        "batch_normalization/moving_mean", "batch_normalization/moving_variance"]


def test_batch_normalization_on_images_normalises_per_channel_and_frozen_uses_moving_stats():
    layer = layers.BatchNormalization()
    x = rand(4, 3, 3, 2) * 3 + 1
    out = layer(x, training=True).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    layer.trainable = False
    before = layer.moving_mean.numpy()
    frozen = layer(x, training=True).numpy()  # a frozen BN runs in inference mode
    np.testing.assert_array_equal(layer.moving_mean.numpy(), before)
    expected = (x - before) / np.sqrt(layer.moving_variance.numpy() + 1e-3)
    np.testing.assert_allclose(frozen, expected, rtol=1e-4, atol=1e-5)


def test_batch_normalization_axis_1():
    layer = layers.BatchNormalization(axis=1, center=False, scale=False)
    x = rand(5, 3, 4)
    out = layer(x, training=True).numpy()
    mean, var = x.mean(axis=(0, 2), keepdims=True), x.var(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    assert layer.moving_mean.shape == (3,) and layer.weights[0].name.endswith("moving_mean")


def test_layer_normalization_matches_numpy():
    layer = layers.LayerNormalization(gamma_initializer="random_normal",
                                      beta_initializer="random_normal")
    x = rand(3, 4, 6)
    out = layer(x).numpy()
    gamma, beta = layer.gamma.numpy(), layer.beta.numpy()
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-3) * gamma + beta,
                               rtol=1e-4, atol=1e-5)
    multi = layers.LayerNormalization(axis=[1, 2])(x).numpy()
    m2, v2 = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(multi, (x - m2) / np.sqrt(v2 + 1e-3), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- dropout


def test_dropout_is_identity_at_inference_and_scales_kept_values_in_training():
    layer = layers.Dropout(0.25)
    x = np.ones((200, 50), np.float32)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    out = layer(x, training=True).numpy()
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.03


def test_dropout_seed_and_global_seed_reproducibility():
    x = np.ones((8, 8), np.float32)
    a = layers.Dropout(0.5, seed=7)(x, training=True).numpy()
    b = layers.Dropout(0.5, seed=7)(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    df.random.set_seed(3)
    c = layers.Dropout(0.5)(x, training=True).numpy()
    df.random.set_seed(3)
    d = layers.Dropout(0.5)(x, training=True).numpy()
    np.testing.assert_array_equal(c, d)
    with pytest.raises(ValueError, match="rate=1.5"):
        layers.Dropout(1.5)


def test_dropout_noise_shape_shares_the_mask():
    out = layers.Dropout(0.5, noise_shape=(None, 1, 4))(np.ones((3, 5, 4)), training=True)
    values = out.numpy()
    assert np.all(values == values[:, :1, :])


# ----------------------------------------------------------- other layers


def test_flatten_reshape_activation_embedding():
    x = rand(2, 3, 4)
    np.testing.assert_array_equal(layers.Flatten()(x).numpy(), x.reshape(2, 12))
    assert layers.Flatten().compute_output_shape((None, 3, 4)) == (None, 12)
    np.testing.assert_array_equal(layers.Reshape((4, 3))(x).numpy(), x.reshape(2, 4, 3))
    assert layers.Reshape((-1, 2)).compute_output_shape((None, 3, 4)) == (None, 6, 2)
    with pytest.raises(ValueError, match="target_shape"):
        layers.Reshape((5, 5))(x)
    np.testing.assert_allclose(layers.Activation("tanh")(x).numpy(), np.tanh(x), rtol=1e-6)
    emb = layers.Embedding(10, 4, mask_zero=True)
    ids = np.array([[0, 3, 9], [1, 1, 0]])
    out = emb(ids).numpy()
    np.testing.assert_array_equal(out, emb.embeddings.numpy()[ids])
    np.testing.assert_array_equal(emb.compute_mask(ids).numpy(), ids != 0)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 10\)"):
        emb(np.array([[10]]))


def test_merging_layers():
    a, b = rand(2, 3), rand(2, 3)
    np.testing.assert_allclose(layers.Add()([a, b]).numpy(), a + b, rtol=1e-6)
    np.testing.assert_allclose(layers.Subtract()([a, b]).numpy(), a - b, rtol=1e-6)
    np.testing.assert_allclose(layers.Average()([a, b]).numpy(), (a + b) / 2, rtol=1e-6)
    np.testing.assert_allclose(layers.Maximum()([a, b]).numpy(), np.maximum(a, b))
    cat = layers.Concatenate()
    np.testing.assert_array_equal(cat([a, b]).numpy(), np.concatenate([a, b], axis=-1))
    assert cat.compute_output_shape([(None, 3), (None, 5)]) == (None, 8)
    with pytest.raises(ValueError, match="list of at least 2 inputs"):
        layers.Add()(a)


# ----------------------------------------------------------- regularisers


def test_weight_regularization_losses_follow_the_current_weights():
    layer = layers.Dense(2, kernel_regularizer=regularizers.l2(0.1),
                         bias_regularizer=regularizers.L1(0.5))
    layer(np.zeros((1, 3)))
    kernel = np.arange(6, dtype=np.float32).reshape(3, 2) - 2
    layer.set_weights([kernel, np.array([1.0, -3.0], np.float32)])
    values = [float(t) for t in layer.losses]
    np.testing.assert_allclose(values, [0.1 * (kernel ** 2).sum(), 0.5 * 4.0], rtol=1e-6)
    with df.GradientTape() as tape:
        penalty = df.add_n(layer.losses)
    grad = tape.gradient(penalty, layer.kernel).numpy()
    np.testing.assert_allclose(grad, 0.2 * kernel, rtol=1e-6)


def test_activity_regularizer_divides_by_batch_size():
    layer = layers.Dense(2, kernel_initializer="ones", activity_regularizer="l2")
    out = layer(np.ones((4, 3), np.float32)).numpy()
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), 0.01 * (out ** 2).sum() / 4, rtol=1e-6)


# ----------------------------------------------------------- custom layers


class Scale(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = layers.Dropout(0.5)
        self.builds = 0

    def build(self, input_shape):
        self.builds += 1
        self.w = self.add_weight("w", (input_shape[-1],), initializer="ones",
                                 regularizer="l1")

    def call(self, inputs):  # no `training` argument: the flag still reaches `inner`
        return self.inner(inputs * self.w)


def test_custom_layer_builds_once_tracks_sublayers_and_propagates_training():
    layer = Scale()
    x = np.ones((50, 20), np.float32)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    trained = layer(x, training=True).numpy()
    assert (trained == 0).any() and (trained == 2).any()
    assert layer.builds == 1 and layer.built
    assert [v.name for v in layer.weights] == ["scale/w"]
    assert [float(t) for t in layer.losses] == pytest.approx([0.01 * 20])
    assert layer.count_params() == 20


class Block(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(3, kernel_regularizer="l2")
        self.norm = layers.BatchNormalization()

    def call(self, inputs, training=False):
        return self.norm(self.dense(inputs), training=training)


def test_nested_layers_collect_weights_losses_and_freeze_together():
    block = Block()
    block(rand(4, 2), training=True)
    assert [v.name for v in block.weights] == [
        "dense/kernel", "dense/bias", "batch_normalization/gamma", "batch_normalization/beta",
        "batch_normalization/moving_mean", "batch_normalization/moving_variance"]
    assert len(block.trainable_weights) == 4 and len(block.non_trainable_weights) == 2
    assert len(block.losses) == 1
    block.trainable = False
    assert block.trainable_weights == [] and not block.dense.trainable
    assert len(block.non_trainable_weights) == 6


# ------------------------------------------------------------- gradients


def _swap_weights(owner, names, layer, training=False):
    """f(x, *weights) running `layer` with `owner`'s weights replaced by the arguments."""
    def f(x, *weights):
        saved = {n: owner.__dict__[n] for n in names}
        for n, w in zip(names, weights):
            object.__setattr__(owner, n, w)
        try:
            return layer(x, training=training)
        finally:
            for n, w in saved.items():
                object.__setattr__(owner, n, w)
    return f


@pytest.mark.parametrize("make,shape", [
    (lambda: layers.Dense(3, activation="tanh", dtype="float64"), (4, 5)),
    (lambda: layers.Conv2D(2, 3, strides=2, padding="same", activation="sigmoid",
                           dtype="float64"), (2, 5, 5, 3)),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, padding="same", dtype="float64"),
     (1, 3, 3, 2)),
    (lambda: layers.DepthwiseConv2D(2, depth_multiplier=2, dtype="float64"), (1, 4, 4, 2)),
])
def test_gradients_through_kernel_layers(make, shape):
    layer = make()
    x = rand(*shape, dtype=np.float64)
    layer(x)
    kernel = "depthwise_kernel" if hasattr(layer, "depthwise_kernel") else "kernel"
    f = _swap_weights(layer, [kernel, "bias"], layer)
    check_grads(f, [x, getattr(layer, kernel).numpy(), layer.bias.numpy()])


def test_gradients_through_batch_normalization_in_training():
    layer = layers.BatchNormalization(dtype="float64")
    x = rand(6, 4, dtype=np.float64)
    layer(x)
    f = _swap_weights(layer, ["gamma", "beta"], layer, training=True)
    check_grads(f, [x, layer.gamma.numpy() + 0.5, layer.beta.numpy()], rtol=1e-4)
    images = layers.BatchNormalization(dtype="float64")  # channels last, 4-D
    check_grads(lambda t: images(t, training=True), [rand(2, 3, 3, 2, dtype=np.float64)],
                rtol=1e-4)
    bare = layers.BatchNormalization(axis=1, center=False, scale=False, dtype="float64")
    check_grads(lambda t: bare(t, training=True), [rand(4, 3, 5, dtype=np.float64)], rtol=1e-4)


def test_gradients_through_layer_normalization_and_pooling():
    norm = layers.LayerNormalization(dtype="float64")
    x = rand(3, 5, dtype=np.float64)
    norm(x)
    check_grads(_swap_weights(norm, ["gamma", "beta"], norm),
                [x, norm.gamma.numpy() * 1.5, norm.beta.numpy()], rtol=1e-4)
    pool = layers.AveragePooling2D(2, padding="same", dtype="float64")
    check_grads(lambda t: pool(t), [rand(1, 5, 5, 2, dtype=np.float64)])


# ------------------------------------------------------------ config round trips


def double_it(x):
    return x * 2.0


def _round_trip_cases():
    img, seq, vec = (2, 6, 6, 3), (2, 5, 3), (2, 4)
    ids = np.array([[1, 2, 0], [3, 3, 4]])
    return [
        (layers.Dense(3, activation="relu", kernel_regularizer="l2",
                      bias_initializer="random_uniform"), vec),
        (layers.Conv2D(2, (3, 2), strides=(1, 2), padding="same", activation="elu"), img),
        (layers.Conv1D(2, 2, padding="causal", dilation_rate=2), seq),
        (layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu"), img),
        (layers.DepthwiseConv2D(2, depth_multiplier=3, depthwise_regularizer="l1"), img),
        (layers.SeparableConv2D(4, 3, padding="same", pointwise_regularizer="l2"), img),
        (layers.MaxPooling2D(3, strides=1, padding="same"), img),
        (layers.AveragePooling2D(2), img),
        (layers.MaxPooling1D(2), seq),
        (layers.GlobalAveragePooling2D(), img),
        (layers.GlobalMaxPooling2D(keepdims=True), img),
        (layers.GlobalAveragePooling1D(), seq),
        (layers.Flatten(), img),
        (layers.Reshape((-1, 3)), img),
        (layers.Dropout(0.3, seed=1), vec),
        (layers.BatchNormalization(momentum=0.8, epsilon=1e-2, center=False), img),
        (layers.LayerNormalization(axis=[1, 2], epsilon=1e-5), img),
        (layers.Embedding(6, 3, mask_zero=True), ids),
        (layers.Activation("softmax"), vec),
        (layers.Rescaling(1 / 255, offset=-1), img),
        (layers.SimpleRNN(3, return_sequences=True), seq),
        (layers.LSTM(3, return_state=True, go_backwards=True), seq),
        (layers.GRU(2, reset_after=False), seq),
        (layers.RNN(layers.LSTMCell(2), return_sequences=True), seq),
        (layers.ReLU(max_value=1.0, negative_slope=0.1), vec),
        (layers.LeakyReLU(0.2), vec),
        (layers.ELU(0.5), vec),
        (layers.Softmax(axis=1), vec),
        (layers.Permute((2, 1)), seq),
        (layers.RepeatVector(3), vec),
        (layers.ZeroPadding2D(((1, 0), (2, 1))), img),
        (layers.Cropping2D(1), img),
        (layers.UpSampling2D((2, 1)), img),
        (layers.Identity(), vec),
        (layers.Masking(0.5), seq),
        (layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 0.25]), seq),
        (layers.Normalization(axis=None, invert=True), img),
        (layers.PReLU(alpha_initializer="random_uniform", shared_axes=[1, 2]), img),
        (layers.ActivityRegularization(l1=0.1, l2=0.2), vec),
        (layers.ZeroPadding1D((2, 1)), seq),
        (layers.Cropping1D((1, 2)), seq),
        (layers.UpSampling1D(3), seq),
        (layers.RandomFlip("horizontal", seed=4), img),
        (layers.CategoryEncoding(6, output_mode="count"), ids),
        (layers.TimeDistributed(layers.Dense(2, activation="relu")), seq),
        (layers.Bidirectional(layers.GRU(2, return_sequences=True), merge_mode="sum"), seq),
        (layers.Bidirectional(layers.LSTM(2, return_state=True)), seq),
        (layers.SpatialDropout1D(0.2), seq),
        (layers.SpatialDropout2D(0.2), img),
        (layers.GaussianNoise(0.3, seed=2), vec),
        (layers.GaussianDropout(0.3), vec),
        (layers.Lambda(double_it, output_shape=(4,)), vec),
    ]


def _as_list(out):
    return [t.numpy() for t in out] if isinstance(out, list) else [out.numpy()]


@pytest.mark.parametrize("layer,shape", _round_trip_cases(),
                         ids=lambda v: type(v).__name__ if isinstance(v, layers.Layer) else "")
def test_config_round_trip_gives_same_outputs(layer, shape):
    x = shape if isinstance(shape, np.ndarray) else rand(*shape)
    out = _as_list(layer(x))
    config = layer.get_config()
    json.dumps(config)  # JSON-safe
    clone = layers.deserialize({"class_name": type(layer).__name__, "config": config},
                               {"double_it": double_it})
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    for a, b in zip(out, _as_list(clone(x))):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    revived = layers.deserialize(layers.serialize(layer), {"double_it": double_it})
    assert type(revived) is type(layer) and revived.get_config() == config
    # compute_output_shape agrees with what the layer produced (batch dim unknown)
    in_shape = (None, *x.shape[1:])
    predicted = layer.compute_output_shape(in_shape)
    predicted = predicted if isinstance(predicted, list) else [predicted]
    assert [tuple(p[1:]) for p in predicted] == [o.shape[1:] for o in out]


def test_deserialize_unknown_layer_is_clear():
    with pytest.raises(ValueError, match="Unknown layer: 'Nope'"):
        layers.deserialize({"class_name": "Nope", "config": {}})
    assert layers.get_layer_class("Scale", {"Scale": Scale}) is Scale


# ------------------------------------------------------------ training


def test_layers_train_with_a_tape_and_an_optimizer():
    from distflow import optimizers

    rng = np.random.default_rng(5)
    x = rng.standard_normal((256, 2)).astype(np.float32)
    y = ((x[:, 0] * x[:, 1]) > 0).astype(np.int64)  # XOR-like quadrants: needs the hidden layer
    stack = [layers.Dense(16, activation="relu"), layers.BatchNormalization(),
             layers.Dropout(0.1), layers.Dense(2)]
    opt = optimizers.Adam(0.05)

    def forward(inputs, training):
        for layer in stack:
            inputs = layer(inputs, training=training)
        return inputs

    def loss_value(training):
        logits = forward(x, training)
        return df.reduce_mean(df.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

    initial = float(loss_value(False))
    for _ in range(60):
        with df.GradientTape() as tape:
            loss = loss_value(True)
        params = [v for layer in stack for v in layer.trainable_variables]
        opt.apply_gradients(zip(tape.gradient(loss, params), params))
    accuracy = (np.argmax(forward(x, False).numpy(), axis=1) == y).mean()
    assert float(loss_value(False)) < initial / 2 and accuracy > 0.9
    assert np.any(stack[1].moving_mean.numpy() != 0)  # moving statistics were updated


class Affine(layers.Layer):
    def __init__(self, units, slope=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.slope = units, slope

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1], self.units))

    def call(self, inputs):
        return df.matmul(inputs, self.w) * self.slope


def test_custom_layer_config_is_captured_from_its_constructor():
    layer = Affine(3, slope=2.0, name="affine_head")
    x = rand(2, 4)
    out = layer(x).numpy()
    config = layer.get_config()
    assert config["units"] == 3 and config["slope"] == 2.0 and config["name"] == "affine_head"
    clone = layers.deserialize(layers.serialize(layer), custom_objects={"Affine": Affine})
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), out, rtol=1e-6)


# ------------------------------------------------------ wrappers and noise


def test_time_distributed_applies_one_layer_to_every_step():
    dense = layers.Dense(3)
    wrapped = layers.TimeDistributed(dense)
    x = rand(2, 4, 5)
    out = wrapped(x).numpy()
    for t in range(4):
        np.testing.assert_allclose(out[:, t], dense(x[:, t]).numpy(), rtol=1e-6)
    assert [w.name for w in wrapped.weights] == ["dense/kernel", "dense/bias"]


def test_bidirectional_concatenates_forward_and_reversed_backward_runs():
    layer = layers.Bidirectional(layers.SimpleRNN(3, return_sequences=True))
    x = rand(2, 5, 4)
    out = layer(x).numpy()
    fw, bw = layer.forward_layer, layer.backward_layer
    assert bw.go_backwards and not fw.go_backwards and bw.name == "backward_simple_rnn"
    expected_bw = bw(x).numpy()[:, ::-1]  # step t of the output is the state after seeing t..T-1
    np.testing.assert_allclose(out, np.concatenate([fw(x).numpy(), expected_bw], axis=-1),
                               rtol=1e-6)
    reversed_input = fw(np.ascontiguousarray(x[:, ::-1])).numpy()  # the forward cell on x reversed
    bw.set_weights(fw.get_weights())
    np.testing.assert_allclose(bw(x).numpy(), reversed_input, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="merge_mode='avg'"):
        layers.Bidirectional(layers.LSTM(2), merge_mode="avg")
    with pytest.raises(ValueError, match="recurrent layer"):
        layers.Bidirectional(layers.Dense(2))


def test_noise_layers_only_act_in_training():
    x = np.ones((6, 10, 4), np.float32)
    for layer in (layers.SpatialDropout1D(0.5), layers.GaussianNoise(1.0),
                  layers.GaussianDropout(0.5)):
        np.testing.assert_array_equal(layer(x).numpy(), x)
        assert not np.array_equal(layer(x, training=True).numpy(), x)
    dropped = layers.SpatialDropout1D(0.5)(x, training=True).numpy()
    assert np.all(dropped == dropped[:, :1, :])  # whole channels are dropped together
    images = layers.SpatialDropout2D(0.5)(np.ones((3, 4, 4, 5)), training=True).numpy()
    assert np.all(images == images[:, :1, :1, :])


def test_lambda_layer_and_its_serialization_rules():
    layer = layers.Lambda(lambda t: df.square(t))
    x = rand(2, 3)
    np.testing.assert_allclose(layer(x).numpy(), x ** 2, rtol=1e-6)
    assert layer.compute_output_shape((None, 3)) == (None, 3)
    with pytest.raises(ValueError, match="anonymous function"):
        layer.get_config()
    named = layers.Lambda(double_it)
    with pytest.raises(ValueError, match="custom_objects"):
        layers.deserialize(layers.serialize(named))


def test_layer_input_and_output_in_a_functional_graph():
    from distflow import keras

    inputs = keras.Input(shape=(4,))
    hidden = layers.Dense(3, name="hidden")
    features = hidden(inputs)
    assert hidden.input is inputs and hidden.output is features
    assert tuple(features.shape) == (None, 3)
    with pytest.raises(AttributeError, match="never called on a symbolic input"):
        _ = layers.Dense(2).output
    hidden(keras.Input(shape=(4,)))
    with pytest.raises(AttributeError, match="called 2 times"):
        _ = hidden.output


def test_normalization_adapts_to_data_and_inverts():
    data = (rand(500, 3) * np.array([1.0, 10.0, 0.1]) + np.array([5.0, -2.0, 0.0])).astype(
        np.float32)
    layer = layers.Normalization()
    layer.adapt(data)
    np.testing.assert_allclose(layer.mean.numpy(), data.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.variance.numpy(), data.var(axis=0), rtol=1e-4)
    out = layer(data).numpy()
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-4)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    batched = layers.Normalization()
    batched.adapt(data[i:i + 64] for i in range(0, 500, 64))  # an iterable of batches
    np.testing.assert_allclose(batched.mean.numpy(), layer.mean.numpy(), rtol=1e-5)
    inverse = layers.Normalization(mean=layer.mean.numpy(), variance=layer.variance.numpy(),
                                   invert=True)
    np.testing.assert_allclose(inverse(out).numpy(), data, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="adapt\\(\\) would overwrite"):
        inverse.adapt(data)


# ------------------------------------------------------------ small layers


def test_prelu_learns_a_slope_per_channel():
    layer = layers.PReLU(alpha_initializer=initializers.Constant(0.25), shared_axes=[1, 2])
    x = rand(2, 3, 3, 4)
    out = layer(x).numpy()
    assert layer.alpha.shape == (1, 1, 4)
    np.testing.assert_allclose(out, np.where(x > 0, x, 0.25 * x), rtol=1e-6)


def test_prelu_alpha_constraint_is_applied_after_each_update():
    layer = layers.PReLU(alpha_initializer="ones", alpha_constraint="non_neg")
    layer(rand(2, 3))
    df.optimizers.SGD(1.0).apply_gradients([(np.full((3,), 5.0, np.float32), layer.alpha)])
    np.testing.assert_array_equal(layer.alpha.numpy(), 0.0)
    assert layer.get_config()["alpha_constraint"]["class_name"] == "NonNeg"


def test_activity_regularization_layer_is_identity_with_a_loss():
    layer = layers.ActivityRegularization(l1=0.1, l2=0.5)
    x = rand(4, 3)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    expected = (0.1 * np.abs(x).sum() + 0.5 * (x ** 2).sum()) / 4
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)


def test_dot_layer():
    a, b = rand(2, 3), rand(2, 3)
    np.testing.assert_allclose(layers.Dot(axes=1)([a, b]).numpy(),
                               (a * b).sum(axis=1, keepdims=True), rtol=1e-5)
    cosine = layers.Dot(axes=1, normalize=True)([a, b]).numpy()[:, 0]
    expected = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(cosine, expected, rtol=1e-5)
    x, y = rand(2, 4, 3), rand(2, 5, 3)
    layer = layers.Dot(axes=2)
    np.testing.assert_allclose(layer([x, y]).numpy(), np.einsum("bmn,bpn->bmp", x, y),
                               rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape([(None, 4, 3), (None, 5, 3)]) == (None, 4, 5)


def test_one_dimensional_padding_cropping_upsampling():
    x = rand(2, 4, 3)
    np.testing.assert_array_equal(layers.ZeroPadding1D((1, 2))(x).numpy(),
                                  np.pad(x, ((0, 0), (1, 2), (0, 0))))
    np.testing.assert_array_equal(layers.Cropping1D((1, 1))(x).numpy(), x[:, 1:3])
    np.testing.assert_array_equal(layers.UpSampling1D(2)(x).numpy(), np.repeat(x, 2, axis=1))


def test_random_flip_only_in_training_and_flips_whole_images():
    images = rand(32, 3, 4, 2)
    layer = layers.RandomFlip("horizontal", seed=0)
    np.testing.assert_array_equal(layer(images).numpy(), images)
    out = layer(images, training=True).numpy()
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f or k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 32


def test_category_encoding_modes():
    ids = np.array([[1, 3, 3], [0, 0, 2]])
    counts = layers.CategoryEncoding(4, output_mode="count")(ids).numpy()
    np.testing.assert_array_equal(counts, [[0, 1, 0, 2], [2, 0, 1, 0]])
    multi = layers.CategoryEncoding(4)(ids).numpy()
    np.testing.assert_array_equal(multi, counts > 0)
    one = layers.CategoryEncoding(3, output_mode="one_hot")(np.array([2, 0])).numpy()
    np.testing.assert_array_equal(one, [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 4\)"):
        layers.CategoryEncoding(4)(np.array([[4]]))


def test_layers_referencing_each_other_do_not_loop():
    outer = Block()
    outer.dense.owner = outer  # a back reference, as user code sometimes keeps
    outer(rand(2, 3))
    assert len(outer.weights) == 6
    outer.norm.trainable = False
    assert [v.name for v in outer.trainable_weights] == ["dense/kernel", "dense/bias"]


def test_sublayers_are_found_in_attributes_lists_tuples_and_dicts_in_keras_order():
    import collections

    class Holder(df.keras.layers.Layer):
        def __init__(self, given):
            super().__init__()
            self.first = df.keras.layers.Dense(1, name="first")
            self.blocks = {"b": df.keras.layers.Dense(1, name="b"),
                           "a": [df.keras.layers.Dense(1, name="a0"),
                                 (7, df.keras.layers.Dense(1, name="a1"))]}
            self.ordered = collections.OrderedDict(z=df.keras.layers.Dense(1, name="z"),
                                                   y=df.keras.layers.Dense(1, name="y"))
            self.numbers = [1, 2.0, "three", None]
            self.again = [self.first]  # found once
            self.given_arg_only = None
            del given  # a layer passed to __init__ but never assigned is not tracked

    holder = Holder(df.keras.layers.Dense(1, name="untracked"))
    names = [layer.name for layer in holder._flatten_layers(include_self=False)]
    assert names == ["first", "a0", "a1", "b", "y", "z"]
