"""Models: Sequential, functional and subclassed; compile/fit/evaluate/predict; summary; errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import distflow as df
from distflow import keras
from distflow.data import Dataset
from distflow.keras import layers
from distflow.keras.functional import Input, KerasTensor
from distflow.keras.models import Model, Sequential


def _separable(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 1.0]) + 0.3 > 0).astype(np.float32)[:, None]
    return x, y


class Recorder(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.train_rows: list[np.ndarray] = []
        self.infer_rows: list[np.ndarray] = []

    def call(self, inputs, training=False):
        (self.train_rows if training else self.infer_rows).append(np.array(inputs.value))
        return inputs


class MLP(Model):
    def __init__(self, hidden=8, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.blocks = [layers.Dense(hidden, activation="tanh")]
        self.head = layers.Dense(1, activation="sigmoid")

    def call(self, inputs, training=False):
        h = inputs
        for block in self.blocks:
            h = block(h)
        return self.head(h)

    def get_config(self):
        return {"hidden": self.hidden, "name": self.name}


# ----------------------------------------------------------------------------- training


def test_linearly_separable_problem_is_learned():
    x, y = _separable()
    model = Sequential([layers.Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=15, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.95
    assert history.history["loss"][-1] < history.history["loss"][0] / 2
    assert history.history["accuracy"][-1] > 0.9


def _three_models():
    seq = Sequential([Input(shape=(3,)), layers.Dense(8, activation="tanh"),
                      layers.Dense(1, activation="sigmoid")])
    inp = Input(shape=(3,))
    func = Model(inp, layers.Dense(1, activation="sigmoid")(
        layers.Dense(8, activation="tanh")(inp)))
    sub = MLP()
    sub.build((None, 3))
    for m in (func, sub):
        m.set_weights(seq.get_weights())
    return seq, func, sub


def test_sequential_functional_and_subclassed_train_identically():
    x, y = _separable(200)
    results = []
    for model in _three_models():
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss="binary_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        results.append((model.get_weights(), history.history, model.predict(x, verbose=0)))
    (w0, h0, p0) = results[0]
    for weights, history, pred in results[1:]:
        for a, b in zip(w0, weights):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(h0["loss"], history["loss"], rtol=1e-6)
        np.testing.assert_allclose(p0, pred, rtol=1e-6, atol=1e-7)
    assert not np.allclose(w0[0], _three_models()[0].get_weights()[0])  # it did train


def test_fit_equals_manual_gradient_tape_loop():
    x, y = _separable(64)
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    reference = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    kernel, bias = reference
    for start in range(0, 64, 16):  # the same steps with NumPy: d mean((xw+b-y)^2)
        xb, yb = x[start:start + 16], y[start:start + 16]
        err = xb @ kernel + bias - yb
        kernel = kernel - 0.05 * (2 * xb.T @ err / len(xb))
        bias = bias - 0.05 * (2 * err.mean(axis=0))
    np.testing.assert_allclose(model.get_weights()[0], kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_weights()[1], bias, rtol=1e-5, atol=1e-6)


def test_regularization_losses_are_added_to_the_loss():
    x, y = _separable(32)
    model = Sequential([Input(shape=(3,)),
                        layers.Dense(1, kernel_regularizer=keras.regularizers.l2(0.1))])
    model.compile(optimizer="sgd", loss="mse")
    kernel, bias = model.get_weights()
    expected = np.mean((x @ kernel + bias - y) ** 2) + 0.1 * np.sum(kernel ** 2)
    assert model.evaluate(x, y, batch_size=32, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_validation_split_holds_out_the_last_rows():
    n = 40
    x = np.arange(n, dtype=np.float32)[:, None]
    y = np.zeros((n, 1), np.float32)
    recorder = Recorder()
    model = Sequential([Input(shape=(1,)), recorder, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)  # the recorder reads rows
    recorder.infer_rows.clear()  # building probed the layer on zeros
    history = model.fit(x, y, batch_size=10, epochs=1, validation_split=0.25, verbose=0)
    trained = sorted(int(v) for b in recorder.train_rows for v in b[:, 0])
    validated = sorted(int(v) for b in recorder.infer_rows for v in b[:, 0])
    assert trained == list(range(30))
    assert validated == list(range(30, 40))
    assert set(history.history) == {"loss", "val_loss"}


def test_validation_data_and_validation_freq():
    x, y = _separable(60)
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=4, validation_data=(x[:20], y[:20]), validation_freq=2,
                        verbose=0)
    assert len(history.history["loss"]) == 4
    assert len(history.history["val_loss"]) == 2
    assert history.history["val_mae"][-1] == pytest.approx(
        model.evaluate(x[:20], y[:20], verbose=0)[1], rel=1e-6)


def test_initial_epoch_runs_the_remaining_epochs():
    x, y = _separable(64)
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4]
    assert model.optimizer.iterations == 2 * 4


def test_steps_per_epoch_with_a_repeating_dataset_continues_across_epochs():
    n = 40
    x = np.arange(n, dtype=np.float32)[:, None]
    y = np.zeros((n, 1), np.float32)
    ds = Dataset.from_tensor_slices((x, y)).batch(10).repeat()
    recorder = Recorder()
    model = Sequential([Input(shape=(1,)), recorder, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)  # the recorder reads rows
    history = model.fit(ds, epochs=3, steps_per_epoch=3, verbose=0)
    assert model.optimizer.iterations == 9
    firsts = [int(b[0, 0]) for b in recorder.train_rows]
    assert firsts == [(10 * i) % n for i in range(9)]
    assert len(history.history["loss"]) == 3
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(ds, epochs=1, verbose=0)


def test_dataset_with_sample_weights_and_dict_inputs():
    x, y = _separable(48)
    a = Input(shape=(2,), name="left")
    b = Input(shape=(1,), name="right")
    out = layers.Dense(1)(layers.Concatenate()([a, b]))
    model = Model([a, b], out)
    model.compile(optimizer="sgd", loss="mse")
    data = {"left": x[:, :2], "right": x[:, 2:]}
    weights = np.zeros(48, np.float32)
    before = model.get_weights()
    model.fit(data, y, sample_weight=weights, epochs=1, verbose=0)
    for w0, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)  # zero sample weights: no update
    ds = Dataset.from_tensor_slices((data, y)).batch(16)
    assert model.fit(ds, epochs=1, verbose=0).history["loss"][0] > 0


def test_class_weight_zero_for_every_class_freezes_the_model():
    x, y = _separable(32)
    model = Sequential([Input(shape=(3,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    before = model.get_weights()
    model.train_on_batch(x, y, class_weight={0: 0.0, 1: 0.0})
    for w0, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    model.train_on_batch(x, y, class_weight={0: 1.0, 1: 2.0})
    assert not np.array_equal(before[0], model.get_weights()[0])


def test_evaluate_predict_and_batch_methods():
    x, y = _separable(50)
    model = Sequential([Input(shape=(3,)), layers.Dense(2), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae", "mse"])
    assert model.metrics_names == ["loss", "mae", "mse"]
    pred = model.predict(x, batch_size=7, verbose=0)
    assert pred.shape == (50, 1)
    np.testing.assert_allclose(pred, model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    kernel0, b0, kernel1, b1 = model.get_weights()
    np.testing.assert_allclose(pred, (x @ kernel0 + b0) @ kernel1 + b1, rtol=1e-5, atol=1e-6)
    results = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    assert results["mse"] == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-5)
    assert results["loss"] == pytest.approx(results["mse"], rel=1e-5)
    assert results["mae"] == pytest.approx(float(np.mean(np.abs(pred - y))), rel=1e-5)
    loss, mae, mse = model.test_on_batch(x, y)
    assert loss == pytest.approx(results["loss"], rel=1e-5)
    loss_before = model.train_on_batch(x, y)[0]
    assert loss_before == pytest.approx(loss, rel=1e-5)
    assert model.optimizer.iterations == 1


def test_multi_output_losses_weights_and_metric_names():
    x, y = _separable(64)
    inp = Input(shape=(3,))
    hidden = layers.Dense(4, activation="relu")(inp)
    cls = layers.Dense(1, activation="sigmoid", name="cls")(hidden)
    reg = layers.Dense(1, name="reg")(hidden)
    model = Model(inp, [cls, reg])
    model.compile(optimizer="adam", loss={"cls": "binary_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 1.0, "reg": 0.5}, metrics={"cls": ["accuracy"]})
    logs = model.evaluate(x, [y, x[:, :1]], batch_size=64, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "cls_loss", "reg_loss", "cls_accuracy"}
    assert logs["loss"] == pytest.approx(logs["cls_loss"] + 0.5 * logs["reg_loss"], rel=1e-5)
    p_cls, p_reg = model.predict(x, verbose=0)
    assert logs["reg_loss"] == pytest.approx(float(np.mean((p_reg - x[:, :1]) ** 2)), rel=1e-5)
    history = model.fit(x, {"cls": y, "reg": x[:, :1]}, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]


# ----------------------------------------------------------------------------- structure


def test_shared_layer_and_graph_structure():
    df.keras.backend.clear_session()  # automatic names ("add") count per session, as in Keras
    a, b = Input(shape=(4,), name="a"), Input(shape=(4,), name="b")
    shared = layers.Dense(3, name="shared")
    merged = layers.Add()([shared(a), shared(b)])
    model = Model(inputs=[a, b], outputs=merged)
    assert [layer.name for layer in model.layers] == ["a", "b", "shared", "add"]
    assert len(model.weights) == 2 and model.count_params() == 4 * 3 + 3
    xa = np.ones((2, 4), np.float32)
    xb = np.full((2, 4), 2.0, np.float32)
    kernel, bias = shared.get_weights()
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0),
                               xa @ kernel + bias + xb @ kernel + bias, rtol=1e-5)
    assert model.get_layer("shared") is shared
    assert model.input_shape == [(None, 4), (None, 4)] and model.output_shape == (None, 3)


def test_keras_tensors_are_symbolic_with_inferred_shapes():
    inp = Input(shape=(6, 6, 2))
    conv = layers.Conv2D(4, 3, padding="valid")(inp)
    flat = layers.Flatten()(conv)
    assert isinstance(conv, KerasTensor)
    assert conv.shape == (None, 4, 4, 4) and flat.shape == (None, 64)
    seq_in = Input(shape=(None, 3))  # unknown sequence length stays unknown
    assert layers.SimpleRNN(5, return_sequences=True)(seq_in).shape == (None, None, 5)
    assert Input(shape=(2,), dtype="int32").dtype == "int32"


def test_operators_on_keras_tensors_build_layers(tmp_path):
    a, b = Input(shape=(3,)), Input(shape=(3,))
    out = -((a + b) * 2.0 - 1.0 / (1.0 + b ** 2)) @ np.eye(3, 2, dtype=np.float32)
    model = Model([a, b], out)
    assert out.shape == (None, 2)
    xa = np.arange(6, dtype=np.float32).reshape(2, 3)
    xb = np.full((2, 3), 0.5, np.float32)
    expected = -((xa + xb) * 2.0 - 1.0 / (1.0 + xb ** 2)) @ np.eye(3, 2)
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), expected, rtol=1e-6)
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "ops.keras")
    restored = keras.models.load_model(tmp_path / "ops.keras")
    np.testing.assert_allclose(restored.predict([xa, xb], verbose=0), expected, rtol=1e-6)


def test_graph_disconnected_error_names_the_layer():
    a, b = Input(shape=(2,)), Input(shape=(2,))
    out = layers.Dense(1, name="head")(layers.Concatenate(name="join")([a, b]))
    with pytest.raises(ValueError, match="Graph disconnected.*join"):
        Model(a, out)


def test_sequential_build_paths_add_and_pop():
    lazy = Sequential([layers.Dense(4), layers.Dense(2)])
    assert not lazy.built
    out = lazy(np.ones((3, 5), np.float32))
    assert out.shape == (3, 2) and lazy.built and lazy.input_shape == (None, 5)
    eager = Sequential()
    eager.add(layers.Dense(4, input_dim=5))
    assert eager.built and eager.output_shape == (None, 4)
    eager.add(layers.Dense(3))
    assert eager.output_shape == (None, 3)
    popped = eager.pop()
    assert isinstance(popped, layers.Dense) and eager.output_shape == (None, 4)
    with pytest.raises(ValueError, match="unique names"):
        eager.add(layers.Dense(1, name=eager.layers[0].name))
    with pytest.raises(TypeError, match="instance of class Layer"):
        eager.add("dense")


def test_clone_model_has_the_architecture_and_new_weights():
    inp = Input(shape=(4,))
    model = Model(inp, layers.Dense(2)(layers.Dense(3)(inp)))
    clone = keras.models.clone_model(model)
    assert [type(x) for x in clone.layers] == [type(x) for x in model.layers]
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    assert all(a is not b for a, b in zip(clone.weights, model.weights))
    assert not np.allclose(clone.get_weights()[0], model.get_weights()[0])


def test_subclassed_model_tracks_layers_in_lists():
    model = MLP(hidden=5)
    model(np.zeros((2, 3), np.float32))
    assert len(model.trainable_variables) == 4
    assert model.count_params() == 3 * 5 + 5 + 5 + 1
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
    assert model.input_shape == (None, 3) and model.output_shape == (None, 1)


# ----------------------------------------------------------------------------- summary


def test_summary_lists_layers_shapes_and_param_counts():
    model = Sequential([Input(shape=(10,)), layers.Dense(7, name="d1"),
                        layers.BatchNormalization(name="bn"), layers.Dense(3, name="d2")])
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    d1, bn, d2 = 10 * 7 + 7, 4 * 7, 7 * 3 + 3  # BatchNormalization: gamma, beta, mean, var
    rows = {line.split()[0]: line for line in lines if line.startswith(" d") or
            line.startswith(" bn")}
    assert "(None, 7)" in rows["d1"] and rows["d1"].split()[-1] == f"{d1:,}"
    assert rows["bn"].split()[-1] == f"{bn:,}"
    assert "(None, 3)" in rows["d2"] and rows["d2"].split()[-1] == f"{d2:,}"
    assert f"Total params: {d1 + bn + d2:,}" in text
    assert f"Trainable params: {d1 + d2 + 2 * 7:,}" in text
    assert f"Non-trainable params: {2 * 7:,}" in text
    assert lines[0] == f'Model: "{model.name}"'


SUMMARIES = json.loads((Path(__file__).parent / "goldens" / "summaries.json").read_text())


class _TwoDense(Model):
    def __init__(self):
        super().__init__()
        self.first, self.second = layers.Dense(4), layers.Dense(2)

    def call(self, x):
        return self.second(self.first(x))


def _summary_models():
    called = _TwoDense()
    called(np.zeros((2, 3), np.float32))
    return {"subclassed_unbuilt": _TwoDense(), "subclassed_called": called,
            "sequential_unbuilt": Sequential([layers.Dense(3)]),
            "sequential": Sequential([Input((3,)), layers.Dense(4), layers.Dense(2)])}


@pytest.mark.parametrize("name", sorted(SUMMARIES["cases"]))
def test_summary_rows_and_totals_match_keras_built_or_not(name):
    from distflow.keras.utils.summary_utils import summary_rows

    model, want = _summary_models()[name], SUMMARIES["cases"][name]
    rows = [[row[0][row[0].index("("):], *row[1:]] for row in summary_rows(model)]
    assert rows == want["rows"]
    lines: list[str] = []
    model.summary(print_fn=lines.append)  # unbuilt models print too, as in Keras 3
    assert [line for line in lines if "params:" in line] == want["totals"]


# ----------------------------------------------------------------------------- errors


def test_fit_before_compile_is_a_clear_error():
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    with pytest.raises(RuntimeError, match=r"compile\(\)"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 1)), verbose=0)


def test_x_y_length_mismatch_names_both_sizes():
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"(?s)'x' sizes: 100.*'y' sizes: 90"):
        model.fit(np.zeros((100, 3)), np.zeros((90, 1)), verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "batch_size=0"),
    (dict(batch_size=-3), "batch_size=-3"),
    (dict(epochs=-1), "epochs=-1"),
    (dict(validation_split=1.5), "validation_split=1.5"),
    (dict(verbose=3), "verbose=3"),
    (dict(steps_per_epoch=0), "steps_per_epoch=0"),
])
def test_bad_fit_arguments(kwargs, match):
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=match):
        model.fit(np.zeros((8, 3)), np.zeros((8, 1)), **kwargs)


def test_missing_targets_wrong_input_shape_and_unknown_names():
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="Target data is missing"):
        model.fit(np.zeros((8, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"incompatible.*\(8, 4\)"):
        model.predict(np.zeros((8, 4)), verbose=0)
    inp = Input(shape=(3,))
    functional = Model(inp, layers.Dense(1)(inp))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(8, 4\)"):
        functional.predict(np.zeros((8, 4)), verbose=0)
    with pytest.raises(ValueError, match="not sufficient to split"):
        model.fit(np.zeros((1, 3)), np.zeros((1, 1)), validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match="nope"):
        model.compile(optimizer="sgd", loss="nope")
    with pytest.raises(ValueError, match="adamm"):
        model.compile(optimizer="adamm", loss="mse")


def test_generators_are_refused_with_a_pointer_to_datasets():
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    batches = ((np.zeros((2, 3)), np.zeros((2, 1))) for _ in range(3))
    with pytest.raises(TypeError, match="from_generator"):
        model.fit(batches, verbose=0)


def test_stop_training_from_a_callback_ends_fit():
    x, y = _separable(64)

    class StopAfterTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=10, callbacks=[StopAfterTwo()], verbose=0)
    assert history.epoch == [0, 1]


def test_backend_clear_session_resets_names():
    keras.backend.clear_session()
    first = layers.Dense(1).name
    keras.backend.clear_session()
    assert layers.Dense(1).name == first == "dense"
    assert keras.backend.floatx() == "float32" and keras.backend.epsilon() == 1e-7


def test_gradient_tape_custom_loop_on_a_model():
    x, y = _separable(32)
    model = Sequential([Input(shape=(3,)), layers.Dense(1)])
    optimizer = keras.optimizers.SGD(0.1)
    loss_fn = keras.losses.MeanSquaredError()
    first = None
    for _ in range(20):
        with df.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        first = float(loss) if first is None else first
    assert float(loss) < first


def test_input_argument_errors():
    with pytest.raises(ValueError, match="needs a `shape`"):
        Input()
    with pytest.raises(ValueError, match="non-negative"):
        Input(shape=(-2,))
    with pytest.raises(ValueError, match="batch_size=0"):
        Input(shape=(2,), batch_size=0)
    assert Input(shape=5).shape == (None, 5)
    assert Input(batch_shape=(4, 2)).shape == (4, 2)


def test_build_without_arguments_when_the_input_is_known():
    model = Sequential([Input(shape=(3,)), layers.Dense(2)])
    model.build()
    assert model.built and model.count_params() == 8
    lazy = Sequential([layers.Dense(2)])
    lazy.build((None, 5))
    assert lazy.input_shape == (None, 5) and lazy.count_params() == 12
    with pytest.raises(ValueError, match="input_shape"):
        Sequential([layers.Dense(2)]).build()


def test_the_global_seed_makes_a_shuffled_fit_with_dropout_reproducible():
    import distflow as df
    from distflow.keras import layers

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = rng.integers(0, 3, size=64)

    def run(seed):
        df.random.set_seed(seed)
        model = df.keras.Sequential([df.keras.Input(shape=(5,)), layers.Dense(8, "relu"),
                                     layers.Dropout(0.3), layers.Dense(3)])
        model.compile(optimizer="adam", loss=df.keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        model.fit(x, y, batch_size=8, epochs=2, shuffle=True, verbose=0)
        return model.get_weights()

    first, again, other = run(1), run(1), run(2)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_a_dict_input_model_matches_data_by_key_whatever_the_insertion_order():
    b, a = keras.Input((1,), name="b"), keras.Input((1,), name="a")
    model = keras.Model({"b": b, "a": a}, {"a_out": a * 1.0, "b_out": b * 1.0})
    for data in ({"a": np.array([[1.0]]), "b": np.array([[2.0]])},
                 {"b": np.array([[2.0]]), "a": np.array([[1.0]])}):
        out = model(data)
        assert float(np.asarray(out["a_out"])[0, 0]) == 1.0
        assert float(np.asarray(out["b_out"])[0, 0]) == 2.0
        np.testing.assert_array_equal(model.predict(data, verbose=0)["a_out"], [[1.0]])
