"""`distflow.function`: tracing once per input signature, input_signature and
reduce_retracing, concrete functions, variables captured by reference, updates and
GradientTape inside, optimizer steps inside, and traced == eager over the op registry."""

import warnings

import numpy as np
import pytest

import distflow as df
from distflow.graph import ConcreteFunction, TensorSpec


def test_traces_once_per_signature_and_side_effects_happen_at_trace_time():
    traced = []

    @df.function
    def f(x, scale):
        traced.append(x.shape)  # a Python side effect: runs while tracing only
        return x * scale

    a = df.constant([1.0, 2.0])
    np.testing.assert_allclose(f(a, 2.0).numpy(), [2.0, 4.0])
    np.testing.assert_allclose(f(df.constant([3.0, 4.0]), 2.0).numpy(), [6.0, 8.0])
    assert f.experimental_get_tracing_count() == 1 and len(traced) == 1
    f(df.constant([1.0, 2.0, 3.0]), 2.0)  # a new shape: retrace
    f(a, 3.0)  # a new Python value: retrace
    f(a.numpy().astype(np.float64), 3.0)  # a new dtype: retrace
    assert f.experimental_get_tracing_count() == 4 and traced[1] == (3,)
    np.testing.assert_allclose(f(a, 3.0).numpy(), [3.0, 6.0])
    assert f.experimental_get_tracing_count() == 4


def test_input_signature_prevents_retracing_and_checks_inputs():
    @df.function(input_signature=[TensorSpec([None, 2], "float32")])
    def f(x):
        return df.reduce_sum(x, axis=1)

    for n in (1, 5, 7):
        assert f(np.ones((n, 2), np.float32)).shape == (n,)
    assert f.experimental_get_tracing_count() == 1
    with pytest.raises(ValueError, match=r"incompatible with input_signature.*received shape "
                                         r"\(3, 3\)"):
        f(np.ones((3, 3), np.float32))
    concrete = f.get_concrete_function()
    assert isinstance(concrete, ConcreteFunction)
    assert concrete.structured_outputs.shape.as_list() == [None]
    assert any(op.type == "sum" for op in concrete.graph.get_operations())


def test_reduce_retracing_generalises_the_changing_dimension():
    @df.function(reduce_retracing=True)
    def f(x):
        return x + 1.0

    for n in (2, 3, 4, 5, 6):
        assert f(np.zeros((n, 3), np.float32)).shape == (n, 3)
    assert f.experimental_get_tracing_count() == 2
    relaxed = f.get_concrete_function(TensorSpec([7, 3], "float32"))
    assert relaxed.inputs[0].shape.as_list() == [None, 3]


def test_excessive_retracing_warns():
    @df.function
    def f(x):
        return x * 2

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(7):
            f(np.zeros(n + 1, np.float32))
    assert any("traces of the function 'f'" in str(w.message) for w in caught)


def test_get_concrete_function_from_specs_and_calling_it():
    @df.function
    def f(x, y):
        return {"sum": x + y, "prod": x * y}

    concrete = f.get_concrete_function(TensorSpec([3]), TensorSpec([3]))
    assert set(concrete.structured_outputs) == {"sum", "prod"}
    out = concrete(df.constant([1.0, 2.0, 3.0]), df.constant([2.0, 2.0, 2.0]))
    np.testing.assert_allclose(out["prod"].numpy(), [2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="needs arguments"):
        f.get_concrete_function()


def test_variables_are_captured_by_reference_and_updated_inside():
    v = df.Variable([1.0, 2.0])
    counter = df.Variable(0, dtype="int64")

    @df.function
    def step(x):
        counter.assign_add(1)
        v.assign(v * x)
        return v + 0.0

    np.testing.assert_allclose(step(df.constant(2.0)).numpy(), [2.0, 4.0])
    np.testing.assert_allclose(step(df.constant(2.0)).numpy(), [4.0, 8.0])
    v.assign([1.0, 1.0])  # changed outside: the trace reads the current value
    np.testing.assert_allclose(step(df.constant(3.0)).numpy(), [3.0, 3.0])
    assert int(counter.numpy()) == 3 and step.experimental_get_tracing_count() == 1


def _mlp_vars(seed=0):
    rng = np.random.default_rng(seed)
    return [df.Variable(rng.standard_normal((4, 8)).astype(np.float32) * 0.5),
            df.Variable(np.zeros(8, np.float32)),
            df.Variable(rng.standard_normal((8, 3)).astype(np.float32) * 0.5),
            df.Variable(np.zeros(3, np.float32))]


def _train_step(variables, optimizer):
    def step(x, y):
        w1, b1, w2, b2 = variables
        with df.GradientTape() as tape:
            h = df.nn.relu(df.matmul(x, w1) + b1)
            logits = df.matmul(h, w2) + b2
            loss = df.reduce_mean(df.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss
    return step


def test_tape_and_optimizer_inside_a_traced_step_match_eager_training():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    eager_vars, traced_vars = _mlp_vars(), _mlp_vars()
    eager = _train_step(eager_vars, df.optimizers.Adam(0.05))
    traced = df.function(_train_step(traced_vars, df.optimizers.Adam(0.05)))
    losses = []
    for _ in range(20):
        losses.append((float(eager(x, y).numpy()), float(traced(x, y).numpy())))
    assert traced.experimental_get_tracing_count() == 1
    np.testing.assert_allclose([t for _, t in losses], [e for e, _ in losses], rtol=1e-5)
    for a, b in zip(eager_vars, traced_vars):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    assert losses[-1][1] < losses[0][1] * 0.5


def test_tape_gradient_of_an_unwatched_input_is_none_and_watch_works():
    @df.function
    def grads(x):
        with df.GradientTape(persistent=True) as tape:
            y = df.reduce_sum(x * x)
        unwatched = tape.gradient(y, x)
        with df.GradientTape() as tape:
            tape.watch(x)
            y = df.reduce_sum(x * x)
        return unwatched, tape.gradient(y, x)

    none, g = grads(df.constant([1.0, 3.0]))
    assert none is None
    np.testing.assert_allclose(g.numpy(), [2.0, 6.0])


def test_traced_step_runs_fewer_kernels_than_recorded_operations():
    w = df.Variable(np.ones((3, 3), np.float32))

    @df.function
    def f(x):
        unused = df.exp(x)  # noqa: F841  (pruned)
        scale = df.sqrt(df.constant(4.0))  # folded
        return df.matmul(x, w) * scale + df.matmul(x, w) * scale  # merged

    concrete = f.get_concrete_function(TensorSpec([2, 3]))
    np.testing.assert_allclose(concrete(np.ones((2, 3), np.float32)).numpy(), np.full((2, 3), 12.0))
    recorded = [op for op in concrete.graph.get_operations() if op.kind == "primitive"]
    assert concrete.num_kernel_calls < len(recorded)


# ------------------------------------------------------------ traced == eager, every op


def _cases():
    import test_ops_gradients as t

    return t.CASES


@pytest.mark.parametrize("name,index", [(n, i) for n, cs in _cases().items()
                                        for i in range(len(cs))])
def test_traced_equals_eager_over_the_op_registry(name, index):
    fn, args, *_ = _cases()[name][index]
    tensors = [df.constant(np.asarray(a, np.float64)) for a in args]

    def value_and_grads(*xs):
        with df.GradientTape() as tape:
            tape.watch(list(xs))
            out = fn(*xs)
            loss = df.reduce_sum(out * out)
        return out, tape.gradient(loss, list(xs))

    eager_out, eager_grads = value_and_grads(*tensors)
    traced = df.function(value_and_grads)
    traced_out, traced_grads = traced(*tensors)
    np.testing.assert_allclose(traced_out.numpy(), eager_out.numpy(), rtol=1e-12, atol=1e-12)
    for t, e in zip(traced_grads, eager_grads):
        assert (t is None) == (e is None)
        if e is not None:
            np.testing.assert_allclose(t.numpy(), e.numpy(), rtol=1e-10, atol=1e-12)


def test_dropout_draws_a_new_mask_each_call_and_its_gradient_uses_that_mask():
    @df.function
    def f(x):
        with df.GradientTape() as tape:
            tape.watch(x)
            y = df.nn.dropout(x, 0.5)
            loss = df.reduce_sum(y)
        return y, tape.gradient(loss, x)

    x = df.constant(np.ones(1000, np.float32))
    (y1, g1), (y2, _) = f(x), f(x)
    assert f.experimental_get_tracing_count() == 1
    assert not np.array_equal(y1.numpy(), y2.numpy())  # not a mask frozen at trace time
    np.testing.assert_array_equal(g1.numpy(), y1.numpy())  # d(sum(x * mask))/dx = mask
    assert set(np.unique(y1.numpy())) == {0.0, 2.0}


def test_random_draws_while_tracing_warn_that_they_are_constants():
    @df.function
    def noisy(x):
        return x + df.random.normal([3])

    with pytest.warns(UserWarning, match="drew random numbers from distflow.random while "
                                         "tracing"):
        first = noisy(df.constant(np.zeros(3, np.float32)))
    np.testing.assert_array_equal(noisy(df.constant(np.zeros(3, np.float32))).numpy(),
                                  first.numpy())


def test_tf1_random_ops_draw_anew_at_every_run():
    import distflow.compat.v1 as tf

    g = df.Graph()
    with g.as_default():
        noise = tf.random_normal([4])
        w = tf.Variable(tf.random_uniform([2], -1.0, 1.0))
    with tf.Session(graph=g) as sess:
        assert not np.array_equal(sess.run(noise), sess.run(noise))
        sess.run(w.initializer)
        first = sess.run(w)
        sess.run(w.initializer)
        assert not np.array_equal(first, sess.run(w)) and np.all(np.abs(first) <= 1)


def test_a_tape_outside_differentiates_through_a_traced_call_without_rerunning_python():
    w = df.Variable([[1.0, 2.0], [3.0, 4.0]])
    traced_runs = []

    @df.function
    def f(x):
        traced_runs.append(1)
        return df.reduce_sum(df.nn.tanh(df.matmul(x, w))), df.shape(x)

    x = df.constant([[0.1, -0.2], [0.3, 0.05]])
    for _ in range(2):
        with df.GradientTape() as tape:
            tape.watch(x)
            y, _ = f(x)
        gx, gw = tape.gradient(y, [x, w])
    with df.GradientTape() as tape:
        tape.watch(x)
        expect = df.reduce_sum(df.nn.tanh(df.matmul(x, w)))
    ex, ew = tape.gradient(expect, [x, w])
    assert len(traced_runs) == 1
    np.testing.assert_allclose(y.numpy(), expect.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gx.numpy(), ex.numpy(), rtol=1e-5)
    np.testing.assert_allclose(gw.numpy(), ew.numpy(), rtol=1e-5)


def test_a_traced_call_with_dropout_under_a_tape_runs_eagerly_for_a_consistent_mask():
    @df.function
    def f(x):
        return df.nn.dropout(x, 0.5)

    x = df.constant(np.ones(100, np.float32))
    with df.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
        loss = df.reduce_sum(y)
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), y.numpy())


def test_a_method_traces_once_per_instance():
    class Scaler:
        def __init__(self, k):
            self.k = k

        @df.function
        def __call__(self, x):
            return x * self.k

    a, b = Scaler(2.0), Scaler(3.0)
    x = df.constant([1.0])
    assert float(a(x).numpy()[0]) == 2.0 and float(b(x).numpy()[0]) == 3.0
    assert float(a(x).numpy()[0]) == 2.0
    assert Scaler.__call__.__get__(a).experimental_get_tracing_count() == 1


def test_cond_and_while_loop_decide_when_the_graph_runs():
    @df.function
    def f(x):
        y = df.cond(df.reduce_sum(x) > 0, lambda: x * 2.0, lambda: -x)
        n, total = df.while_loop(lambda i, t: i < 5, lambda i, t: (i + 1, t + df.reduce_sum(y)),
                                 [df.constant(0), df.constant(0.0)])
        return y, n, total

    y, n, total = f(df.constant([1.0, 2.0]))
    np.testing.assert_allclose(y.numpy(), [2.0, 4.0])
    assert int(n.numpy()) == 5 and float(total.numpy()) == pytest.approx(30.0)
    y, _, total = f(df.constant([-1.0, -2.0]))
    np.testing.assert_allclose(y.numpy(), [1.0, 2.0])
    assert float(total.numpy()) == pytest.approx(15.0)
    assert f.experimental_get_tracing_count() == 1
    # eagerly they are plain Python
    assert float(df.cond(True, lambda: df.constant(1.0), lambda: df.constant(2.0)).numpy()) == 1.0
    assert df.while_loop(lambda i: i < 3, lambda i: i + 1, 0) == 3


def test_cond_gradient_follows_the_branch_taken():
    @df.function
    def grad(x):
        with df.GradientTape() as tape:
            tape.watch(x)
            y = df.cond(x > 0, lambda: x * x, lambda: x * 3.0)
        return tape.gradient(y, x)

    assert float(grad(df.constant(2.0)).numpy()) == pytest.approx(4.0)
    assert float(grad(df.constant(-2.0)).numpy()) == pytest.approx(3.0)


def test_cond_branches_must_agree_and_while_loop_keeps_shapes():
    @df.function
    def bad_cond(x):
        return df.cond(x > 0, lambda: x, lambda: df.cast(x, "int32"))

    with pytest.raises(TypeError, match="same number, type, and overall structure"):
        bad_cond(df.constant(1.0))

    @df.function
    def bad_loop(x):
        return df.while_loop(lambda v: df.reduce_sum(v) < 10.0,
                             lambda v: df.concat([v, v], axis=0), x)

    with pytest.raises(ValueError, match="loop variables keep their shape and dtype"):
        bad_loop(df.constant([1.0]))


def test_while_loop_gradient_replays_the_iterations():
    w = df.Variable(1.5)

    @df.function
    def f(x):
        with df.GradientTape() as tape:
            tape.watch(x)
            _, y = df.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * x * w),
                                 [df.constant(0), df.constant(1.0)])
        return y, tape.gradient(y, [x, w])

    y, (gx, gw) = f(df.constant(2.0))
    assert float(y.numpy()) == pytest.approx((2.0 * 1.5) ** 3)
    assert float(gx.numpy()) == pytest.approx(3 * 2.0 ** 2 * 1.5 ** 3)
    assert float(gw.numpy()) == pytest.approx(3 * 1.5 ** 2 * 2.0 ** 3)


def test_code_reading_a_symbolic_value_with_numpy_is_an_error_naming_it():
    def numpy_relu(x):  # reads the value: no graph form
        return x + np.maximum(x.value, 0)

    traced = df.function(numpy_relu)
    with pytest.raises(TypeError, match=r"test_graph_function.py:\d+ in numpy_relu reads "
                                        r"the value of the symbolic tensor"):
        traced(df.constant([1.0, -1.0]))
    v = df.Variable([0.0, 0.0])

    @df.function
    def update(x):
        v.assign(np.tanh(x.value))

    with pytest.raises(TypeError, match="in update reads the value of the symbolic tensor"):
        update(df.constant([1.0, 2.0]))


def test_the_call_key_shortcut_matches_the_general_signature():
    from distflow.graph.function import _call_key, _signature

    args = (np.zeros((2, 3), np.float32), df.constant([1.0]), np.arange(4))
    assert _call_key(args, {}, []) == _signature((args, {}), [])


def test_threads_calling_a_new_function_trace_it_once():
    import threading

    traced = []

    @df.function
    def f(x):
        traced.append(1)
        return x * 2.0

    x = df.constant([1.0, 2.0])
    out = []
    threads = [threading.Thread(target=lambda: out.append(f(x).numpy())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(traced) == 1 and len(out) == 4
    assert all(np.array_equal(o, [2.0, 4.0]) for o in out)


def test_a_step_that_cannot_be_traced_runs_eagerly_every_call_and_says_so():
    from distflow.keras import layers

    # A name of its own: variable names are unique per process (other tests expect dense/).
    model = df.keras.Sequential([layers.Dense(2, input_shape=(3,), name="eager_fallback")])
    optimizer = df.keras.optimizers.SGD(0.1)
    loss_fn = df.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = df.keras.metrics.SparseCategoricalAccuracy()

    @df.function
    def train_step(x, y):  # the Keras guide's loop: this loss reads its labels' values
        with df.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        accuracy.update_state(y, model(x))
        return loss

    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match="runs eagerly"):
        for _ in range(4):
            train_step(rng.normal(size=(8, 3)).astype("float32"), rng.integers(0, 2, 8))
    assert int(optimizer.iterations.numpy()) == 4  # every call trained, none twice
    assert 0.0 <= float(accuracy.result()) <= 1.0 and float(np.asarray(accuracy.count)) == 32


def test_an_iterator_argument_gives_a_fresh_batch_every_call():
    seen = []

    @df.function
    def step(iterator):
        batch = next(iterator)
        seen.append(int(np.asarray(batch)))
        return batch

    iterator = iter([df.constant(1.0), df.constant(2.0), df.constant(3.0)])
    with pytest.warns(UserWarning, match="iterator"):
        results = [float(step(iterator)) for _ in range(3)]
    assert results == [1.0, 2.0, 3.0] and seen == [1, 2, 3]


def test_a_traced_function_reads_variables_passed_to_host_ops_at_every_call():
    """argmax and stop_gradient of a Variable are recorded reading it (not its value at
    trace time): the second call sees the assigned value."""
    v = df.Variable([1.0, 3.0, 2.0])

    @df.function
    def f():
        return df.argmax(v), df.stop_gradient(v) * 2.0

    f()
    v.assign([5.0, 0.0, 1.0])
    index, doubled = f()
    assert int(index) == 0
    np.testing.assert_allclose(np.asarray(doubled), [10.0, 0.0, 2.0])
    assert f.experimental_get_tracing_count() == 1


def test_stop_gradient_inside_a_traced_function_blocks_the_gradient():
    x = df.Variable([2.0, 3.0])

    @df.function
    def f():
        with df.GradientTape() as tape:
            y = df.reduce_sum(x * df.stop_gradient(x))
        return tape.gradient(y, x)

    np.testing.assert_allclose(np.asarray(f()), [2.0, 3.0])


def test_outputs_are_packed_as_the_traced_structure_with_python_values_kept():
    marker = object()

    @df.function
    def f(x):
        return {"z": x * 2.0, "a": [x + 1.0, (x, 3)], "m": marker, "k": {"b": x, "a": x * 3.0}}

    out = f(np.array([1.0, 2.0], np.float32))
    assert list(out) == ["z", "a", "m", "k"] and list(out["k"]) == ["b", "a"]
    np.testing.assert_allclose(out["z"].numpy(), [2.0, 4.0])
    np.testing.assert_allclose(out["a"][0].numpy(), [2.0, 3.0])
    assert type(out["a"]) is list and type(out["a"][1]) is tuple and out["a"][1][1] == 3
    np.testing.assert_allclose(out["a"][1][0].numpy(), [1.0, 2.0])
    np.testing.assert_allclose(out["k"]["a"].numpy(), [3.0, 6.0])
    assert out["m"] is marker
    again = f(np.array([5.0, 6.0], np.float32))  # the packed second call, no retrace
    np.testing.assert_allclose(again["k"]["b"].numpy(), [5.0, 6.0])
    assert f.experimental_get_tracing_count() == 1


def test_apply_gradients_with_keyword_arguments_inside_a_traced_step():
    v = df.Variable([1.0, 2.0])
    opt = df.keras.optimizers.SGD(0.5)

    @df.function
    def step():
        with df.GradientTape() as tape:
            loss = df.reduce_sum(v * v)
        opt.apply_gradients(grads_and_vars=zip(tape.gradient(loss, [v]), [v]))

    step()
    step()
    np.testing.assert_allclose(v.numpy(), [0.0, 0.0])  # 1 - 0.5 * 2 * 1 = 0, twice
    assert int(opt.iterations.numpy()) == 2 and step.experimental_get_tracing_count() == 1
