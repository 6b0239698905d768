"""Keras's compiled steps: `compile(run_eagerly=False)` (the default) traces the steps.

Every test compares the compiled path with the eager one (`run_eagerly=True`) on
the same seeds and data, and checks that the compiled path really ran traced
(no eager fallback), so a value frozen at trace time (a dropout mask, a learning
rate, a metric, BatchNormalization's statistics) makes it fail.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import distflow as df
from distflow import keras
from distflow.graph.function import Function
from distflow.keras import layers

RNG = np.random.default_rng(0)
X = RNG.normal(size=(100, 8)).astype("float32")
Y = RNG.integers(0, 3, 100)
IMAGES = RNG.normal(size=(36, 6, 6, 2)).astype("float32")
SEQUENCES = RNG.normal(size=(36, 5, 3)).astype("float32")


def mlp():
    return keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu"),
                             layers.Dense(3)])


def cnn():
    return keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(4, 3, padding="same"),
                             layers.BatchNormalization(), layers.Activation("relu"),
                             layers.Dropout(0.3), layers.Flatten(), layers.Dense(3)])


def lstm():
    return keras.Sequential([keras.Input((5, 3)), layers.LSTM(6), layers.Dropout(0.2),
                             layers.Dense(3)])


def masked_lstm():
    """Padded sequences: the mask sends the LSTM through its step-by-step path."""
    return keras.Sequential([keras.Input((5, 3)), layers.Masking(0.0),
                             layers.LSTM(6, return_sequences=True), layers.LSTM(4),
                             layers.Dense(3)])


PADDED = SEQUENCES.copy()
PADDED[::3, 3:] = 0.0  # every third sequence ends after 3 steps


def build(make, run_eagerly, optimizer="adam", **compile_kw):
    keras.utils.set_random_seed(1)
    model = make()
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], run_eagerly=run_eagerly, **compile_kw)
    return model


def assert_traced(function, traces=None):
    assert isinstance(function, Function)
    assert function._eager_reason is None
    count = function.experimental_get_tracing_count()
    assert count >= 1 if traces is None else count == traces


def assert_same_weights(a, b, rtol=1e-5, atol=1e-6):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=rtol, atol=atol)


def fit_both(make, x, y, **fit_kw):
    models, histories = [], []
    for eager in (True, False):
        model = build(make, eager)
        keras.utils.set_random_seed(2)  # the same dropout masks and shuffles
        histories.append(model.fit(x, y, verbose=0, **fit_kw).history)
        models.append(model)
    return models, histories


@pytest.mark.parametrize("make,x,y", [(mlp, X, Y), (cnn, IMAGES, Y[:36]),
                                      (lstm, SEQUENCES, Y[:36]),
                                      (masked_lstm, PADDED, Y[:36])],
                         ids=["mlp", "cnn", "lstm", "masked_lstm"])
def test_compiled_fit_gives_the_eager_weights_history_and_evaluation(make, x, y):
    (eager, compiled), (h_eager, h_compiled) = fit_both(
        make, x, y, batch_size=16, epochs=2, validation_split=0.25)
    assert eager.run_eagerly and not compiled.run_eagerly
    assert_traced(compiled.train_function, traces=2)  # full batches and the last partial one
    assert_traced(compiled.test_function)
    assert_same_weights(eager, compiled)
    assert h_eager.keys() == h_compiled.keys()
    for key in h_eager:
        np.testing.assert_allclose(h_eager[key], h_compiled[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(eager.evaluate(x, y, verbose=0), compiled.evaluate(x, y, verbose=0),
                               rtol=1e-5)
    np.testing.assert_allclose(eager.predict(x, verbose=0), compiled.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert_traced(compiled.predict_function)


def dropout_only():
    return keras.Sequential([keras.Input((8,)), layers.Dropout(0.5),
                             layers.Dense(1, kernel_initializer="ones", use_bias=False)])


def test_dropout_draws_a_new_mask_at_every_compiled_step():
    model = dropout_only()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    x, y = np.ones((64, 8), "float32"), np.zeros((64, 1), "float32")
    losses = {model.train_on_batch(x, y) for _ in range(4)}
    assert_traced(model.train_function, traces=1)
    assert len(losses) == 4  # a mask frozen at trace time would give one loss


def test_batch_normalization_moving_statistics_follow_every_compiled_step():
    models = [build(cnn, eager) for eager in (True, False)]
    means = []
    for model in models:
        keras.utils.set_random_seed(3)
        seen = []
        for i in range(3):
            model.train_on_batch(IMAGES[i * 12:(i + 1) * 12] * (i + 1), Y[i * 12:(i + 1) * 12])
            seen.append(model.layers[1].moving_mean.numpy().copy())
        means.append(seen)
    assert_traced(models[1].train_function, traces=1)
    assert not np.allclose(means[1][1], means[1][2])
    np.testing.assert_allclose(means[0], means[1], rtol=1e-5, atol=1e-7)


def test_metrics_accumulate_over_compiled_steps_and_reset():
    eager, compiled = build(mlp, True), build(mlp, False)
    for model in (eager, compiled):
        model.reset_metrics()
        logs = [model.train_on_batch(X[i:i + 10], Y[i:i + 10], reset_metrics=False)
                for i in range(0, 50, 10)]
        model.logs = logs
    np.testing.assert_allclose(eager.logs, compiled.logs, rtol=1e-5)
    assert len({tuple(v) for v in compiled.logs}) == 5  # every step's accumulated value


def test_optimizer_iterations_and_a_schedule_advance_at_every_compiled_step():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)
    models = [build(mlp, eager, optimizer=keras.optimizers.SGD(schedule)) for eager in (1, 0)]
    for model in models:
        model.fit(X, Y, batch_size=20, epochs=1, verbose=0, shuffle=False)
    assert_traced(models[1].train_function, traces=1)
    assert int(models[1].optimizer.iterations.numpy()) == 5
    assert_same_weights(*models)
    frozen = build(mlp, True, optimizer=keras.optimizers.SGD(0.5))
    frozen.fit(X, Y, batch_size=20, epochs=1, verbose=0, shuffle=False)
    assert not np.allclose(frozen.get_weights()[0], models[1].get_weights()[0])


def test_a_callback_changing_the_learning_rate_mid_fit_reaches_the_compiled_step():
    def schedule(epoch, lr):
        return 0.1 if epoch == 0 else 0.0

    models = [build(mlp, eager, optimizer=keras.optimizers.SGD(0.1)) for eager in (1, 0)]
    for model in models:
        model.fit(X, Y, batch_size=25, epochs=1, verbose=0, shuffle=False)
        after_one = model.get_weights()
        model.fit(X, Y, batch_size=25, epochs=3, verbose=0, shuffle=False, initial_epoch=1,
                  callbacks=[keras.callbacks.LearningRateScheduler(schedule)])
        for a, b in zip(after_one, model.get_weights()):  # learning rate 0 from epoch 1 on
            np.testing.assert_array_equal(a, b)
    assert_same_weights(*models)


def test_a_partial_last_batch_is_traced_again_with_its_shape():
    model = build(mlp, False)
    model.fit(X, Y, batch_size=32, epochs=2, verbose=0)  # batches of 32, 32, 32, 4
    assert_traced(model.train_function, traces=2)
    shapes = sorted(c._specs[0].shape[0] for c in model.train_function._concrete.values())
    assert shapes == [4, 32]


def test_run_eagerly_property_and_compile_choose_the_path():
    model = build(mlp, None)
    assert model.run_eagerly is False
    assert isinstance(model.make_train_function(), Function)
    model.run_eagerly = True
    assert model.make_train_function() == model.train_step
    model.compile(optimizer="sgd", loss="mse")
    assert model.run_eagerly is False and model.train_function is None


def test_freezing_a_layer_between_fits_traces_the_step_again():
    model = build(mlp, False)
    model.fit(X, Y, batch_size=50, epochs=1, verbose=0)
    model.layers[0].trainable = False
    frozen = model.layers[0].get_weights()
    model.fit(X, Y, batch_size=50, epochs=1, verbose=0)
    for a, b in zip(frozen, model.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)


class TrackedModel(keras.Model):
    """Customizing fit: its own tracker, loss and update, as Keras's guide writes it."""

    def __init__(self, python_branch=False, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(3)
        self.tracker = keras.metrics.Mean(name="my_loss")
        self.python_branch = python_branch

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, y = data
        with df.GradientTape() as tape:
            loss = keras.losses.mean_squared_error(y, self(x, training=True))
            loss = df.reduce_mean(loss)
        if self.python_branch and float(loss.numpy()) > 1e9:  # data-dependent Python
            loss = loss * 0.0
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.tracker.update_state(loss)
        return {"my_loss": self.tracker.result()}

    @property
    def metrics(self):
        return [self.tracker]


def train_tracked(run_eagerly, python_branch=False):
    keras.utils.set_random_seed(4)
    model = TrackedModel(python_branch)
    model.compile(optimizer="sgd", run_eagerly=run_eagerly)
    history = model.fit(X, np.eye(3, dtype="float32")[Y], batch_size=25, epochs=2, verbose=0)
    return model, history.history


def test_an_overridden_train_step_is_traced_and_matches_eager():
    (eager, h_eager), (compiled, h_compiled) = train_tracked(True), train_tracked(False)
    assert_traced(compiled.train_function, traces=1)
    assert_same_weights(eager, compiled)
    np.testing.assert_allclose(h_eager["my_loss"], h_compiled["my_loss"], rtol=1e-6)


def test_a_step_that_cannot_be_traced_runs_eagerly_with_one_warning_saying_why():
    eager, h_eager = train_tracked(True, python_branch=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled, h_compiled = train_tracked(False, python_branch=True)
    said = [str(w.message) for w in caught if "runs eagerly" in str(w.message)]
    assert len(said) == 1, said
    assert "train_step" in said[0] and "could not be traced" in said[0]
    assert "run_eagerly=True" in said[0]
    assert compiled.train_function._eager_reason is not None
    assert_same_weights(eager, compiled)
    np.testing.assert_allclose(h_eager["my_loss"], h_compiled["my_loss"], rtol=1e-6)


# ------------------------------------------------------------------ seeing the graph


def graph_defs(logdir):
    """The GraphDefs in the event files under `logdir`, read back with the protos."""
    from tensorboardX.proto import event_pb2, graph_pb2
    from test_graph import _tfrecords

    found = []
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        for record in _tfrecords(path):
            event = event_pb2.Event.FromString(record)
            if event.graph_def:
                found.append(graph_pb2.GraphDef.FromString(event.graph_def))
    return found


def tensorboard_loader_nodes(logdir):
    """Node names as TensorBoard's own loader reads them (None without `tensorboard`)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return None
    accumulator = EventAccumulator(str(logdir))
    accumulator.Reload()
    return {n.name for n in accumulator.Graph().node}


def test_tensorboard_write_graph_writes_the_traced_train_step(tmp_path):
    model = build(mlp, False)
    model.fit(X, Y, batch_size=50, epochs=2, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(tmp_path, write_graph=True)])
    (graph_def,) = graph_defs(tmp_path / "train")
    traced = model.train_function.concrete_functions()[0].graph
    names = {n.name for n in graph_def.node}
    assert names == {op.name for op in traced.get_operations()}
    types = {n.op for n in graph_def.node}
    assert {"matmul", "Placeholder", "VariableV2", "apply_gradients", "update_state"} <= types
    assert {"matmul_grad", "relu_grad"} <= types  # the backward pass is in it
    loaded = tensorboard_loader_nodes(tmp_path / "train")
    assert loaded is None or loaded == names


def test_tensorboard_write_graph_of_an_eager_model_writes_none(tmp_path):
    model = build(mlp, True)
    model.fit(X, Y, batch_size=50, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(tmp_path, write_graph=True)])
    assert graph_defs(tmp_path) == []
    assert list((tmp_path / "train").glob("events.out.tfevents.*"))  # the scalars were
    model.fit(X, Y, batch_size=50, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(tmp_path / "off", write_graph=False)])
    assert graph_defs(tmp_path / "off") == []


def test_summary_graph_writes_a_traced_function_graph(tmp_path):
    @df.function
    def step(x):
        return df.nn.relu(df.matmul(x, df.ones((3, 2))))

    concrete = step.get_concrete_function(df.TensorSpec([None, 3], "float32"))
    assert df.summary.graph(concrete.graph) is False  # no default writer: nothing written
    writer = df.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        assert df.summary.graph(concrete) is True
        with pytest.raises(ValueError, match="Received: int"):
            df.summary.graph(3)
    writer.close()
    (graph_def,) = graph_defs(tmp_path)
    assert {n.name for n in graph_def.node} == {op.name for op in concrete.graph.get_operations()}
    loaded = tensorboard_loader_nodes(tmp_path)
    assert loaded is None or loaded == {n.name for n in graph_def.node}


def test_the_traced_sparse_cross_entropy_checks_the_labels_of_every_step():
    model = build(mlp, False)
    model.fit(X, Y, batch_size=50, verbose=0)
    bad = Y.copy()
    bad[60] = 7  # in the second batch: a check frozen at trace time would miss it
    with pytest.raises(ValueError, match=r"\[0, 3\).*7"):
        model.fit(X, bad, batch_size=50, verbose=0, shuffle=False)
    assert_traced(model.train_function, traces=1)


def test_a_weighted_or_other_loss_runs_in_the_trace_as_it_runs_eagerly():
    weights = np.linspace(0.5, 2.0, len(X)).astype("float32")
    models = []
    for eager in (True, False):
        keras.utils.set_random_seed(1)
        model = mlp()
        model.compile(optimizer="adam", run_eagerly=eager,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                      ignore_class=2))
        model.fit(X, Y, sample_weight=weights, batch_size=25, epochs=2, verbose=0,
                  shuffle=False)
        models.append(model)
    assert_traced(models[1].train_function, traces=1)
    assert_same_weights(*models)


def test_config_run_functions_eagerly_makes_the_compiled_step_run_eagerly():
    calls = []

    class Counting(keras.Sequential):
        def train_step(self, data):
            calls.append(1)
            return super().train_step(data)

    keras.utils.set_random_seed(1)
    model = Counting([keras.Input((8,)), layers.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    target = np.eye(3, dtype="float32")[Y]
    df.config.run_functions_eagerly(True)
    try:
        model.fit(X, target, batch_size=50, epochs=1, verbose=0)
    finally:
        df.config.run_functions_eagerly(False)
    assert len(calls) == 2 and model.train_function.experimental_get_tracing_count() == 0
    model.fit(X, target, batch_size=50, epochs=1, verbose=0)
    assert len(calls) == 3  # traced once, then the plan runs
    assert_traced(model.train_function, traces=1)


def test_padding_masks_into_attention_give_the_eager_predictions():
    """MultiHeadAttention reads its padding masks as arrays: under a compiled step that
    has no graph form, so the step runs eagerly (with its warning) instead of tracing the
    masks' example values into the graph."""
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 20, (10, 6))
    ids[::2, 4:] = 0
    outputs = []
    for eager in (True, False):
        keras.utils.set_random_seed(1)
        tokens = keras.Input((6,), dtype="int32")
        x = layers.Embedding(20, 8, mask_zero=True)(tokens)
        x = layers.MultiHeadAttention(2, 4)(x, x)
        model = keras.Model(tokens, layers.Dense(3)(layers.GlobalAveragePooling1D()(x)))
        model.compile(optimizer="sgd", loss="mse", run_eagerly=eager)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outputs.append(model.predict(ids, verbose=0))
        assert eager or any("runs eagerly" in str(w.message) for w in caught)
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-7)


def test_optimizer_settings_changed_after_tracing_reach_the_compiled_update():
    """The traced step's update takes the rule's short path while the optimizer has no
    clipping, EMA or loss scale; set one later and the next step must apply it."""
    models = [build(mlp, eager, optimizer=keras.optimizers.SGD(0.5)) for eager in (1, 0)]
    for model in models:
        model.fit(X, Y, batch_size=20, epochs=1, verbose=0, shuffle=False)
        model.optimizer.clipvalue = 1e-4  # tiny: each step moves a weight by <= 5e-5
        before = model.get_weights()
        model.fit(X, Y, batch_size=20, epochs=1, verbose=0, shuffle=False)
        for a, b in zip(before, model.get_weights()):
            assert np.abs(a - b).max() <= 5 * 0.5 * 1e-4 + 1e-7
        assert int(model.optimizer.iterations.numpy()) == 10
    assert_traced(models[1].train_function, traces=1)
    assert_same_weights(*models)


def test_a_gradient_of_another_dtype_is_cast_in_the_compiled_update():
    class HalfGradients(keras.Sequential):
        def train_step(self, data):
            x, y = data
            with df.GradientTape() as tape:
                loss = self.compute_loss(x, y, self(x, training=True))
            grads = [df.cast(g, "float64") for g in tape.gradient(loss, self.trainable_variables)]
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss}

    models = []
    for eager in (True, False):
        keras.utils.set_random_seed(1)
        model = HalfGradients([keras.Input((8,)), layers.Dense(3)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      run_eagerly=eager)
        model.fit(X, Y, batch_size=20, epochs=1, verbose=0, shuffle=False)
        models.append(model)
    assert_traced(models[1].train_function, traces=1)
    assert all(w.dtype == np.float32 for w in models[1].get_weights())
    assert_same_weights(*models)


def test_a_layer_computing_from_its_inputs_values_on_the_host_runs_eagerly_not_frozen():
    """CategoryEncoding counts its ids with NumPy: traced, it would have counted the
    trace's example values once and frozen them into the graph."""
    ids = np.array([[0], [2], [1], [3], [2], [0]])
    predictions = []
    for eager in (True, False):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((1,), dtype="int64")
        outputs = layers.Dense(2)(layers.CategoryEncoding(4, output_mode="one_hot")(inputs))
        model = keras.Model(inputs, outputs)
        model.compile("sgd", "mse", run_eagerly=eager)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predictions.append(model.predict(ids, verbose=0))
        said = [str(w.message) for w in caught if "could not be traced" in str(w.message)]
        assert len(said) == (0 if eager else 1)
    np.testing.assert_allclose(predictions[1], predictions[0], rtol=1e-6)
    assert len({tuple(row) for row in predictions[0].round(6)}) == 4  # four distinct ids


def test_user_code_reading_a_symbolic_value_in_a_traced_function_is_an_error():
    @df.function
    def f(x):
        return df.constant(np.asarray(x.value) * 2.0)  # NumPy on the trace's example

    with pytest.raises(TypeError, match="symbolic tensor"):
        f(np.array([1.0, 2.0], np.float32))


def test_mean_metrics_in_a_traced_function_follow_every_call_and_subclasses_keep_theirs():
    """A Mean's update by a scalar and its result run as kernels made at trace time; a
    subclass with its own `update_state` or `result` must still run its own."""
    class Doubled(keras.metrics.Mean):
        def result(self):
            return 2.0 * float(super().result())

    class Squares(keras.metrics.Mean):
        def update_state(self, values, sample_weight=None):
            super().update_state(df.square(values), sample_weight)

    def run(step):
        metrics = [keras.metrics.Mean(), Doubled(), Squares()]
        out = [step(metrics, df.constant(v), w) for v, w in [(1.5, 3), (-2.0, 1), (4.0, 2)]]
        for m in metrics:
            m.reset_state()
        return out + [step(metrics, df.constant(0.5), 1)]

    def step(metrics, value, weight):
        for m in metrics:
            m.update_state(value, sample_weight=weight)
        return [float(m.result()) for m in metrics]

    traced = df.function(lambda metrics, v, w: [m.result() for m in metrics if
                                                m.update_state(v, sample_weight=w) or True])
    eager = run(step)
    assert eager[0] == [1.5 * 3 / 3, 3.0, 1.5 ** 2]
    got = run(lambda metrics, v, w: [float(r) for r in traced(metrics, v, w)])
    np.testing.assert_allclose(got, eager, rtol=1e-12)
    assert_traced(traced)


def test_dropout_in_a_compiled_step_is_a_mask_and_a_multiply_with_its_own_gradient():
    """The mask is drawn by its own stateful operation at every step; the product and
    its gradient are ordinary graph operations (no host call re-run under a tape)."""
    def make():
        return keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu"),
                                 layers.Dropout(0.4), layers.Dense(3)])
    (eager, compiled), histories = fit_both(make, X, Y, batch_size=20, epochs=2)
    (concrete,) = compiled.train_function.concrete_functions()
    kinds = [(op.kind, op.type) for op, _, _ in concrete._plan.steps]
    assert ("call", "_keep_mask") in kinds and ("primitive", "multiply") in kinds
    assert not [k for k in kinds if k[0] == "call_vjp"]
    assert_same_weights(eager, compiled)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-5)


def test_compiled_metrics_made_at_trace_time_log_what_eager_metrics_log():
    """The compiled metrics' update and result run as kernels made at trace time when
    every metric has one: the logs must match eager ones name by name (names that sort
    in another order than compiled; a metric function returning one value per timestep;
    sample weights, which take the general path)."""
    def per_step(y_true, y_pred):  # (batch, 2): Mean averages each sample's values
        hit = np.argmax(df.convert_to_tensor(y_pred).numpy(), -1) == np.ravel(y_true)
        return np.stack([hit, ~hit], axis=1).astype("float64")

    def metrics():
        return ["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="a_top2"),
                keras.metrics.MeanMetricWrapper(per_step, name="half")]

    weights = np.linspace(0.5, 1.5, len(X)).astype("float32")
    for fit_kw in ({}, {"sample_weight": weights}):
        histories = []
        for eager in (True, False):
            model = build(mlp, eager)
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=metrics(), weighted_metrics=["accuracy"] if fit_kw else None,
                          run_eagerly=eager)
            histories.append(model.fit(X, Y, batch_size=20, epochs=2, verbose=0,
                                       shuffle=False, **fit_kw).history)
            if not eager:
                assert_traced(model.train_function, traces=1)
        assert set(histories[0]) == set(histories[1])
        for key in histories[0]:
            np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-6)
        assert histories[0]["half"] == [0.5, 0.5]
