"""StackedRNNCells, ConvLSTM1D/2D/3D, SpectralNormalization and GroupQueryAttention: configs,
masks, errors and training (their outputs and gradients against Keras are in
test_goldens_extra.py)."""

import numpy as np
import pytest

import distflow as df
import distflow.keras as keras

RNG = np.random.default_rng(5)


def _stacked_rnn(**kwargs):
    cells = [keras.layers.LSTMCell(3), keras.layers.GRUCell(2)]
    return keras.layers.RNN(keras.layers.StackedRNNCells(cells), **kwargs)


LAYERS = [
    (lambda: _stacked_rnn(return_sequences=True), (2, 5, 3)),
    (lambda: keras.layers.ConvLSTM2D(2, 3, padding="same", recurrent_dropout=0.1),
     (2, 3, 5, 4, 2)),
    (lambda: keras.layers.ConvLSTM1D(2, 2, strides=2, return_sequences=True), (2, 3, 6, 2)),
    (lambda: keras.layers.ConvLSTM3D(1, 2, go_backwards=True), (1, 2, 3, 3, 3, 2)),
    (lambda: keras.layers.SpectralNormalization(keras.layers.Dense(3), power_iterations=2),
     (2, 4)),
]


@pytest.mark.parametrize("make, shape", LAYERS)
def test_config_round_trip_gives_the_same_layer_and_outputs(make, shape):
    layer = make()
    x = RNG.normal(size=shape).astype(np.float32)
    out = layer(x)
    copy = keras.layers.deserialize(keras.layers.serialize(layer))
    copy(x)
    copy.set_weights(layer.get_weights())
    assert copy.get_config() == {**layer.get_config(), "name": copy.name}
    np.testing.assert_allclose(copy(x).numpy(), out.numpy(), rtol=1e-6)
    assert tuple(out.shape) == tuple(layer.compute_output_shape(shape))


def test_group_query_attention_config_round_trip():
    layer = keras.layers.GroupQueryAttention(head_dim=2, num_query_heads=4,
                                             num_key_value_heads=2, use_gate=True,
                                             sliding_window=2)
    q, v = RNG.normal(size=(2, 4, 3)).astype(np.float32), RNG.normal(
        size=(2, 6, 3)).astype(np.float32)
    out, scores = layer(q, v, return_attention_scores=True)
    assert scores.shape == (2, 4, 4, 6)
    copy = keras.layers.GroupQueryAttention.from_config(layer.get_config())
    copy(q, v)
    copy.set_weights(layer.get_weights())
    np.testing.assert_allclose(copy(q, v).numpy(), out.numpy(), rtol=1e-5, atol=1e-6)
    # the sliding window: no query attends to a key 2 or more steps away
    distance = np.abs(np.arange(4)[:, None] - np.arange(6)[None, :])
    assert np.all(scores.numpy()[..., distance >= 2] == 0)


def test_stacked_cells_return_one_state_entry_per_cell():
    rnn = _stacked_rnn(return_state=True)
    output, lstm_states, gru_state = rnn(RNG.normal(size=(2, 5, 3)).astype(np.float32))
    assert [s.shape for s in lstm_states] == [(2, 3), (2, 3)]
    np.testing.assert_array_equal(np.asarray(gru_state[0]), output.numpy())
    # as Keras: a cell whose state_size is an int has one shape, not a list of one
    assert rnn.compute_output_shape((2, 5, 3)) == [(2, 2), [(2, 3), (2, 3)], (2, 2)]


@pytest.mark.parametrize("make, shape", [
    (lambda: _stacked_rnn(), (2, 6, 3)),
    (lambda: keras.layers.ConvLSTM2D(2, 3, padding="same"), (2, 6, 4, 4, 2))])
def test_masked_steps_carry_the_state_as_if_the_sequence_ended(make, shape):
    layer = make()
    x = RNG.normal(size=shape).astype(np.float32)
    mask = np.ones(shape[:2], bool)
    mask[1, 4:] = False
    masked = layer(x, mask=mask).numpy()
    short = layer(x[:, :4]).numpy()
    np.testing.assert_allclose(masked[1], short[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(masked[0], layer(x).numpy()[0], rtol=1e-6)


def test_conv_lstm_trains_with_fit():
    df.random.set_seed(3)
    model = keras.Sequential([keras.Input((4, 6, 6, 1)),
                              keras.layers.ConvLSTM2D(3, 3, padding="same"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    x = RNG.normal(size=(16, 4, 6, 6, 1)).astype(np.float32)
    y = x.mean(axis=(1, 2, 3, 4))[:, None] * 4
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]


def test_spectral_normalization_bounds_the_kernel_norm_during_fit():
    df.random.set_seed(4)
    model = keras.Sequential([keras.Input((5,)), keras.layers.SpectralNormalization(
        keras.layers.Dense(4, kernel_initializer=keras.initializers.RandomNormal(stddev=3.0)),
        power_iterations=5)])
    model.compile(optimizer="sgd", loss="mse")
    x = RNG.normal(size=(32, 5)).astype(np.float32)
    model.fit(x, x[:, :4], epochs=3, batch_size=8, verbose=0)
    kernel = model.layers[0].layer.kernel.numpy()
    # the last update's gradient step moves sigma a little away from 1
    assert np.linalg.norm(kernel, 2) == pytest.approx(1.0, abs=0.1)
    model.layers[0](x, training=True)
    assert np.linalg.norm(model.layers[0].layer.kernel.numpy(), 2) == pytest.approx(1.0,
                                                                                     abs=1e-3)


@pytest.mark.parametrize("make, error, match", [
    (lambda: keras.layers.GroupQueryAttention(2, 3, 2), ValueError, "divisible"),
    (lambda: keras.layers.GroupQueryAttention(2, 2, 1, sliding_window=0), ValueError,
     "sliding_window=0"),
    (lambda: keras.layers.SpectralNormalization(keras.layers.Dense(2), power_iterations=0),
     ValueError, "power_iterations=0"),
    (lambda: keras.layers.SpectralNormalization("dense"), ValueError, "Received: 'dense'"),
    (lambda: keras.layers.StackedRNNCells([keras.layers.Dense(2)]), ValueError, "state_size"),
    (lambda: keras.layers.ConvLSTM2D(2, 3, stateful=True), NotImplementedError, "Stateful"),
    (lambda: keras.layers.ConvLSTM2D(2, 3, data_format="channels_first"), ValueError,
     "channels_last"),
])
def test_bad_arguments_raise_keras_style_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_spectral_normalization_needs_a_kernel():
    layer = keras.layers.SpectralNormalization(keras.layers.Dropout(0.5))
    with pytest.raises(ValueError, match="Dropout object has no attribute 'kernel'"):
        layer(np.ones((2, 3), np.float32))


def test_conv_lstm_needs_static_spatial_dimensions():
    layer = keras.layers.ConvLSTM2D(2, 3)
    with pytest.raises(ValueError, match="static input shapes"):
        layer.build((None, 4, None, 5, 2))


AUGMENTATIONS = [
    lambda: keras.layers.RandomHue(0.5, seed=1),
    lambda: keras.layers.RandomSaturation(0.5, seed=1),
    lambda: keras.layers.RandomColorJitter(brightness_factor=0.2, contrast_factor=0.3,
                                           saturation_factor=0.4, hue_factor=0.2, seed=1),
    lambda: keras.layers.RandomGaussianBlur(kernel_size=(3, 5), sigma=(0.5, 2.0), seed=1),
    lambda: keras.layers.Equalization(bins=64),
    lambda: keras.layers.MixUp(alpha=0.4, seed=4),  # (seed 1 draws the identity first)
    lambda: keras.layers.CutMix(seed=4),
    lambda: keras.layers.RandomErasing(factor=(1.0, 1.0), fill_value=0.0, seed=1),
    lambda: keras.layers.RandomShear(x_factor=0.3, y_factor=(0.1, 0.2), seed=1),
    lambda: keras.layers.RandomPerspective(factor=(1.0, 1.0), scale=0.5, seed=1),
]


@pytest.mark.parametrize("make", AUGMENTATIONS)
def test_augmentations_change_training_calls_only_and_round_trip_their_config(make):
    layer = make()
    x = RNG.uniform(0, 255, size=(4, 6, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    out = layer(x, training=True).numpy()
    assert out.shape == x.shape and out.dtype == np.float32 and not np.allclose(out, x)
    copy = type(layer).from_config(layer.get_config())
    assert copy.get_config() == {**layer.get_config(), "name": copy.name}
    assert layer(x[0]).shape == x.shape[1:]  # a single image


def test_clahe_applies_in_inference_too_and_round_trips_its_config():
    layer = keras.layers.ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(2, 2))
    x = RNG.uniform(60, 120, size=(2, 8, 8, 3)).astype(np.float32)  # a low-contrast image
    out = layer(x, training=False).numpy()
    np.testing.assert_array_equal(out, layer(x, training=True).numpy())
    assert out.max() - out.min() > x.max() - x.min()  # the contrast is stretched
    copy = type(layer).from_config(layer.get_config())
    np.testing.assert_array_equal(copy(x).numpy(), out)


def test_rgb_hsv_round_trip_and_known_colours():
    from distflow.keras.layers.preprocessing_augment import hsv_to_rgb, rgb_to_hsv

    x = RNG.uniform(0, 1, size=(50, 3)).astype(np.float32)
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-6)
    colours = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0]], np.float32)
    np.testing.assert_allclose(rgb_to_hsv(colours), [[0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1],
                                                     [0, 0, 1], [0, 0, 0]], atol=1e-6)


def test_hue_shifts_are_half_the_factor_with_either_sign():
    layer = keras.layers.RandomHue((0.2, 0.6), seed=3)
    shifts = np.concatenate([layer.draw(np.zeros((500, 1, 1, 3)))["factor"]
                             for _ in range(4)])
    assert np.all((np.abs(shifts) >= 0.1) & (np.abs(shifts) <= 0.3))
    assert 0.4 < np.mean(shifts > 0) < 0.6


def test_mixup_mixes_images_and_labels_with_the_same_beta_weights():
    layer = keras.layers.MixUp(alpha=0.5, seed=2)
    images = RNG.uniform(size=(2000, 2, 2, 1)).astype(np.float32)
    params = layer.draw(images)
    assert sorted(params["permutation_order"]) == list(range(2000))
    weights = params["mix_weight"]
    assert abs(weights.mean() - 0.5) < 0.03 and abs(weights.var() - 0.125) < 0.01  # Beta(.5,.5)
    labels = np.eye(2, dtype=np.float32)[RNG.integers(0, 2, 8)]
    out = layer({"images": images[:8], "labels": labels}, training=True)
    np.testing.assert_allclose(out["labels"].numpy().sum(axis=1), 1, rtol=1e-6)
    same = layer({"images": images[:8], "labels": labels}, training=False)
    np.testing.assert_array_equal(same["labels"].numpy(), labels)


def test_cutmix_pastes_one_box_per_image_and_weights_labels_by_its_area():
    layer = keras.layers.CutMix(seed=6)
    images = RNG.uniform(size=(64, 8, 10, 3)).astype(np.float32)
    params = layer.draw(images)
    masks = params["batch_masks"][..., 0]
    for mask, weight in zip(masks, params["mix_weight"]):
        rows, cols = np.nonzero(mask)
        if rows.size:  # a box: a full rectangle of pixels
            assert mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert 0 <= weight <= 1
    assert 0.3 < 1 - params["mix_weight"].mean() < 0.7  # Beta(a, a): half the area on average
    labels = np.eye(4, dtype=np.float32)[RNG.integers(0, 4, 64)]
    mixed = layer.transform_labels(labels, params)
    np.testing.assert_allclose(mixed.sum(axis=1), 1, rtol=1e-6)


def test_random_erasing_fills_the_box_and_nothing_else():
    layer = keras.layers.RandomErasing(factor=(1.0, 1.0), scale=(0.1, 0.3),
                                       fill_value=[1.0, 2.0, 3.0], seed=2)
    images = RNG.uniform(10, 200, size=(16, 9, 8, 3)).astype(np.float32)
    params = layer.draw(images)
    out = layer.transform(images, params)
    masks = params["batch_masks"]
    np.testing.assert_array_equal(out[~masks], images[~masks])
    np.testing.assert_array_equal(out[masks], np.broadcast_to([1.0, 2.0, 3.0], out.shape)[masks])
    # Keras's default factor 1.0 means a probability drawn in [-1, 1]: a quarter of images
    draws = keras.layers.RandomErasing(seed=3).draw(np.zeros((4000, 2, 2, 1), np.float32))
    assert 0.22 < draws["apply_erasing"].mean() < 0.28


def test_perspective_moves_the_corners_where_it_says():
    from distflow.keras.layers.preprocessing_geometry import homography

    layer = keras.layers.RandomPerspective(factor=(1.0, 1.0), scale=0.4, seed=5)
    params = layer.draw(np.zeros((6, 9, 8, 1), np.float32))
    matrices = homography(params["start_points"], params["end_points"])
    for m, start, end in zip(matrices, params["start_points"], params["end_points"]):
        a0, a1, a2, b0, b1, b2, c0, c1 = m
        k = c0 * end[:, 0] + c1 * end[:, 1] + 1
        mapped = np.stack([(a0 * end[:, 0] + a1 * end[:, 1] + a2) / k,
                           (b0 * end[:, 0] + b1 * end[:, 1] + b2) / k], axis=1)
        np.testing.assert_allclose(mapped, start, atol=1e-3)


@pytest.mark.parametrize("make, match", [
    (lambda: keras.layers.RandomHue(1.5), "factor=1.5"),
    (lambda: keras.layers.RandomErasing(fill_value="red"), "fill_value"),
    (lambda: keras.layers.CutMix(factor=2), "factor=2"),
    (lambda: keras.layers.RandomShear(x_factor=-0.2), "x_factor=-0.2"),
    (lambda: keras.layers.RandomPerspective(scale=1.5), "scale=1.5"),
    (lambda: keras.layers.ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(0, 2)),
     "tile_grid_size"),
    (lambda: keras.layers.RandomSaturation(0.5, value_range=(1, 2, 3)), "value_range"),
    (lambda: keras.layers.RandomGaussianBlur(kernel_size=4), "kernel_size=4"),
])
def test_augmentations_reject_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def _gqa_model():
    query = keras.Input((4, 3))
    return keras.Model(query, keras.layers.GroupQueryAttention(2, 4, 2)(query, query))


@pytest.mark.parametrize("make, shape", [
    (lambda: keras.Sequential([keras.Input((5, 3)), _stacked_rnn(), keras.layers.Dense(1)]),
     (2, 5, 3)),
    (lambda: keras.Sequential([keras.Input((3, 6, 6, 2)), keras.layers.ConvLSTM2D(2, 3),
                               keras.layers.Flatten()]), (2, 3, 6, 6, 2)),
    (lambda: keras.Sequential([keras.Input((4,)), keras.layers.SpectralNormalization(
        keras.layers.Dense(3))]), (2, 4)),
    (_gqa_model, (2, 4, 3)),
])
def test_models_of_the_new_layers_save_and_load(make, shape, tmp_path):
    model = make()
    x = RNG.normal(size=shape).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


def test_spectral_normalization_trains_the_same_compiled_and_eager():
    """Its power iterations and kernel update run at every compiled step (ops reading
    the variables), not once when the step is traced."""
    results, x = [], RNG.normal(size=(32, 5)).astype(np.float32)
    for eager in (True, False):
        df.random.set_seed(4)
        model = keras.Sequential([keras.Input((5,)), keras.layers.SpectralNormalization(
            keras.layers.Dense(4, kernel_initializer=keras.initializers.RandomNormal(
                stddev=3.0)), power_iterations=5)])
        model.compile(optimizer="sgd", loss="mse", run_eagerly=eager)
        loss = model.fit(x, x[:, :4], epochs=3, batch_size=8, shuffle=False,
                         verbose=0).history["loss"]
        results.append((loss, [w.numpy() for w in model.weights]))
    (eager_loss, eager_weights), (compiled_loss, compiled_weights) = results
    np.testing.assert_allclose(compiled_loss, eager_loss, rtol=1e-5)
    for a, b in zip(compiled_weights, eager_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
