"""The graph IR: operations and symbolic tensors with static shapes, names and scopes,
default graphs, TensorShape, every registry primitive recordable (run through a Session
with unknown batch dimensions), the executor's pruning, folding and CSE, and clear errors
for values that do not exist until the graph runs."""

import numpy as np
import pytest

import distflow as df
from distflow.graph import Graph, Plan, TensorShape, TensorSpec, gradients
from distflow.graph.core import GraphTensor, placeholder


def test_tensor_shape_semantics():
    s = TensorShape([None, 784])
    assert s == (None, 784) and s.rank == 2 and s.as_list() == [None, 784]
    assert not s.is_fully_defined() and s.num_elements() is None
    assert s.is_compatible_with((128, 784)) and not s.is_compatible_with((128, 10))
    assert s.merge_with([32, None]) == (32, 784)
    with pytest.raises(ValueError, match="not compatible"):
        s.merge_with([None, 3])
    unknown = TensorShape(None)
    assert unknown.rank is None and unknown.is_compatible_with([1, 2, 3])
    with pytest.raises(ValueError, match="unknown TensorShape"):
        unknown.as_list()
    assert TensorShape([2, 3])[1:] == (3,) and isinstance(TensorShape([2, 3])[1:], TensorShape)
    assert TensorShape([2, 3]).num_elements() == 6 and str(s) == "(None, 784)"
    assert TensorSpec([None, 3], "float32").is_compatible_with(np.zeros((5, 3), np.float32))
    assert not TensorSpec([None, 3], "float32").is_compatible_with(np.zeros((5, 3)))


def test_operations_tensors_names_and_lookup():
    g = Graph()
    with g.as_default():
        assert df.get_default_graph() is g and not df.executing_eagerly()
        x = placeholder("float32", [None, 3], name="x")
        with g.name_scope("layer"):
            w = df.constant(np.ones((3, 2), np.float32))
            y = df.matmul(x, w)
            z = df.nn.relu(y)
        with g.name_scope("layer"):
            q = df.add(z, 1.0)
    assert df.executing_eagerly()
    assert isinstance(z, GraphTensor) and z.shape == (None, 2) and z.dtype == np.float32
    assert y.op.type == "matmul" and y.op.inputs[0] is x and y.op.inputs[1].op.type == "Const"
    assert y.name == "layer/matmul:0" and q.name.startswith("layer_1/")
    assert g.get_operation_by_name("layer/matmul") is y.op
    assert g.get_tensor_by_name("layer/relu:0") is z
    assert [op.name for op in g.get_operations()][:2] == ["x", "layer/Const"]
    assert z.op in [c for c in y.consumers()]
    with pytest.raises(KeyError, match="'nope' refers to an Operation not in the graph"):
        g.get_operation_by_name("nope")
    with pytest.raises(KeyError, match="'x:3' refers to a Tensor which does not exist"):
        g.get_tensor_by_name("x:3")
    assert "digraph" in g.to_dot() and '"layer/matmul" -> "layer/relu"' in g.to_dot()


def test_default_graph_reset_and_nesting():
    before = df.get_default_graph()
    df.reset_default_graph()
    after = df.get_default_graph()
    assert after is not before and after.get_operations() == []
    with Graph().as_default():
        with pytest.raises(AssertionError, match="nested graphs"):
            df.reset_default_graph()


def test_symbolic_tensors_have_no_python_value():
    with Graph().as_default():
        x = placeholder("float32", [2], name="x")
        with pytest.raises(TypeError, match=r"symbolic tensor \('greater:0'\) as a Python bool"):
            bool(x > 0)
        with pytest.raises(NotImplementedError, match="numpy\\(\\) is only available"):
            x.numpy()
        with pytest.raises(TypeError, match="`fill` has no graph form.*'x:0'"):
            df.fill([2], x)
    with pytest.raises(RuntimeError, match="'x:0' is symbolic"):
        df.exp(x)


def test_tensors_of_another_graph_are_rejected():
    with Graph().as_default():
        x = placeholder("float32", [2])
    with Graph().as_default(), pytest.raises(ValueError, match="same graph"):
        df.exp(x)


def _run(graph, fetches, feeds):
    return Plan(graph, fetches, list(feeds)).run(list(feeds.values()))


def test_comparisons_argmax_and_shape_composites_record_as_calls():
    g = Graph()
    with g.as_default():
        x = placeholder("float32", [None, 3], name="x")
        hits = df.equal(df.argmax(x, axis=1), 2)
        rows = df.expand_dims(df.reduce_sum(x, axis=1), 1)
        parts = df.split(x, 3, axis=1)
        picked = df.where(x > 0.5, x, df.zeros_like(x))
    assert hits.op.kind == "call" and hits.dtype == bool and hits.shape == (None,)
    assert rows.shape == (None, 1) and [p.shape for p in parts] == [(None, 1)] * 3
    data = np.array([[0.1, 0.2, 0.9], [0.8, 0.1, 0.3]], np.float32)
    out = _run(g, [hits, rows, parts[2], picked], {x: data})
    np.testing.assert_array_equal(out[0], [True, False])
    np.testing.assert_allclose(out[1], data.sum(1, keepdims=True))
    np.testing.assert_array_equal(out[2], data[:, 2:])
    np.testing.assert_array_equal(out[3], np.where(data > 0.5, data, 0))


def test_gradient_through_a_call_operation():
    g = Graph()
    with g.as_default():
        x = placeholder("float64", [None, 3])
        y = df.reduce_sum(df.square(df.expand_dims(x, 1)))  # expand_dims: a call (unknown dim)
        (gx,) = gradients(y, [x])
    data = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(_run(g, [gx], {x: data})[0], 2 * data)


def test_executor_prunes_folds_and_merges():
    g = Graph()
    with g.as_default():
        x = placeholder("float32", [4], name="x")
        c = df.exp(df.constant([0.0, 1.0, 2.0, 3.0]))  # constants only: folded
        a = df.multiply(x, c)
        b = df.multiply(x, c)  # the same expression: merged
        unused = df.tanh(x)  # not fetched: pruned
        out = df.add(a, b)
    plan = Plan(g, [out], [x])
    assert plan.num_steps == 2  # one multiply, one add
    assert unused.op not in [op for op, _, _ in plan.steps]
    np.testing.assert_allclose(plan.run([np.ones(4, np.float32)])[0],
                               2 * np.exp([0.0, 1.0, 2.0, 3.0]), rtol=1e-6)


def test_runtime_errors_name_the_operation():
    g = Graph()
    with g.as_default():
        x = placeholder("float32", [None, 4])
        y = df.reshape(x, (-1, 2, 2))
    with pytest.raises(ValueError) as info:
        _run(g, [y], {x: np.zeros((3, 5), np.float32)})
    assert "while running operation 'reshape' of type reshape" in "".join(info.value.__notes__)


# ------------------------------------------- every registry primitive through a graph


def _cases():
    import test_ops_gradients as t

    return t.CASES


def _registry_params():
    return [(name, i) for name, cases in _cases().items() for i in range(len(cases))]


def _build(fn, arrays, unknown_batch):
    g = Graph()
    with g.as_default():
        xs = [placeholder("float64", (None,) + a.shape[1:] if unknown_batch else a.shape,
                          name=f"x{i}") for i, a in enumerate(arrays)]
        out = fn(*xs)
        w = placeholder("float64", out.shape, name="w")
        grads = gradients(df.reduce_sum(out * w), xs)
    return g, xs, w, out, grads


@pytest.mark.parametrize("name,index", _registry_params())
def test_every_primitive_runs_in_a_session_like_eagerly(name, index):
    """Forward and gradient of each gradient-check case through a graph, against eager
    execution and the eager tape; with an unknown first dimension where the case allows
    one (a case mixing a batch with fixed-size constants needs known shapes)."""
    fn, args, *_ = _cases()[name][index]
    arrays = [np.asarray(a, np.float64) for a in args]
    tensors = [df.constant(a) for a in arrays]
    with df.GradientTape() as tape:
        tape.watch(tensors)
        expect = fn(*tensors)
        weights = np.random.default_rng(0).standard_normal(expect.shape)
        scalar = df.reduce_sum(expect * weights)
    expect_grads = tape.gradient(scalar, tensors)
    try:
        g, xs, w, out, grads = _build(fn, arrays, unknown_batch=True)
    except (ValueError, IndexError):  # e.g. fixed-size labels against a batch of logits
        g, xs, w, out, grads = _build(fn, arrays, unknown_batch=False)
        assert out.shape == expect.shape
    assert out.shape.is_compatible_with(expect.shape)
    results = _run(g, [out] + [gr for gr in grads if gr is not None],
                   {**dict(zip(xs, arrays)), w: weights})
    np.testing.assert_allclose(results[0], expect.numpy(), rtol=1e-12, atol=1e-12)
    got = iter(results[1:])
    for gr, want in zip(grads, expect_grads):
        assert (gr is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(next(got), want.numpy(), rtol=1e-10, atol=1e-12)


def test_every_registered_primitive_is_covered():
    import test_ops_gradients as t

    assert set(df.REGISTRY) - set(_cases()) <= t.NO_GRADIENT


def test_bias_add_relu_and_its_gradient_reuse_dead_buffers_without_changing_results():
    g = Graph()
    with g.as_default():
        x = placeholder("float32", [None, 3])
        w = df.Variable(np.array([[1.0, -1.0], [2.0, 0.5], [-1.0, 1.0]], np.float32))
        hidden = df.nn.relu(df.matmul(x, w) + 0.5)
        loss = df.reduce_sum(df.matmul(hidden, df.constant([[1.0], [-2.0]])))
        grads = gradients(loss, [w, x])
    plan = Plan(g, [loss, *grads], [x])
    # the bias add after the matmul, relu after it, relu's VJP after a matmul VJP
    assert plan.in_place_steps == 3
    data = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]], np.float32)
    tensors = [df.constant(data)]
    with df.GradientTape() as tape:
        tape.watch(tensors)
        h = df.nn.relu(df.matmul(tensors[0], w) + 0.5)
        expect = df.reduce_sum(df.matmul(h, df.constant([[1.0], [-2.0]])))
    expect_grads = tape.gradient(expect, [w, tensors[0]])
    got = plan.run([data])
    np.testing.assert_allclose(got[0], expect.numpy())
    for a, b in zip(got[1:], expect_grads):
        np.testing.assert_allclose(a, b.numpy())


def _tfrecords(path):
    """The records of a TFRecord file (length, its CRC, data, its CRC)."""
    import struct

    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        yield data[pos + 12:pos + 12 + length]
        pos += 12 + length + 4


def test_graph_def_written_for_tensorboard_reads_back(tmp_path):
    from tensorboardX.proto import event_pb2, graph_pb2

    import distflow.compat.v1 as tf
    from distflow.graph.graphdef import write_graph

    g = Graph()
    with g.as_default():
        x = placeholder("float32", [None, 3], name="x")
        with g.name_scope("dense"):
            w = tf.Variable(np.ones((3, 2), np.float32), name="w")
            y = df.nn.relu(df.matmul(x, w))
        tf.train.GradientDescentOptimizer(0.1).minimize(df.reduce_mean(y))
    write_graph(g, tmp_path)
    (path,) = tmp_path.iterdir()
    events = [event_pb2.Event.FromString(r) for r in _tfrecords(path)]
    graph_def = graph_pb2.GraphDef.FromString(next(e.graph_def for e in events if e.graph_def))
    nodes = {n.name: n for n in graph_def.node}
    assert set(nodes) == {op.name for op in g.get_operations()}
    assert nodes["dense/matmul"].op == "matmul"
    assert list(nodes["dense/matmul"].input) == ["x", "dense/w"]
    assert [d.size for d in nodes["dense/relu"].attr["_output_shapes"].list.shape[0].dim] == [-1, 2]
    try:  # TensorBoard's own loader, when the tensorboard package is installed
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return
    accumulator = EventAccumulator(str(tmp_path))
    accumulator.Reload()
    assert {n.name for n in accumulator.Graph().node} == set(nodes)


def test_stop_gradient_in_a_graph_and_fetched_variables_are_copies():
    import distflow.compat.v1 as tf

    g = Graph()
    with g.as_default():
        x = placeholder("float32", [2])
        y = df.reduce_sum(x * df.stop_gradient(x * 3.0))
        gx, = gradients(y, [x])
        v = tf.Variable([1.0, 2.0])
    with tf.Session(graph=g) as sess:
        np.testing.assert_allclose(sess.run(gx, {x: [1.0, 2.0]}), [3.0, 6.0])
        sess.run(v.initializer)
        fetched = sess.run(v)
        fetched[0] = 99.0
        np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])


def test_conv_bias_relu_in_place_matches_eager():
    rng = np.random.default_rng(6)
    images = rng.standard_normal((2, 6, 6, 1)).astype(np.float32)
    kernel = df.Variable(rng.standard_normal((3, 3, 1, 4)).astype(np.float32))
    bias = df.Variable(rng.standard_normal(4).astype(np.float32))

    def loss_and_grads(x):
        with df.GradientTape() as tape:
            h = df.nn.relu(df.nn.conv2d(x, kernel, 1, "SAME") + bias)
            loss = df.reduce_sum(df.nn.max_pool2d(h, 2, 2, "VALID"))
        return loss, tape.gradient(loss, [kernel, bias])

    traced = df.function(loss_and_grads)
    got, expect = traced(images), loss_and_grads(df.constant(images))
    plan = traced.get_concrete_function(images)._plan
    assert plan.in_place_steps == 2  # the bias add into the conv output, relu into it
    np.testing.assert_allclose(got[0].numpy(), expect[0].numpy(), rtol=1e-5)
    for a, b in zip(got[1], expect[1]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


class _Pairs(list):
    """A list subclass among a recorded call's arguments."""


def test_recorded_call_arguments_are_rebuilt_with_their_types_and_constants():
    from distflow.graph.record import _fill, _filler, _Slot

    marker = object()
    template = (([(_Slot(1), marker), (_Slot(0), "v")], _Pairs([_Slot(2), 3])),
                {"key": _Slot(0), 7: [None, {"deep": _Slot(2)}], (1, 2): ()})
    values = [np.zeros(2), "one", [4, 5]]
    rebuilt = _filler(template)(values)
    assert rebuilt == _fill(template, values)
    (pairs, sub), kwargs = rebuilt
    assert type(pairs) is list and type(pairs[0]) is tuple and type(sub) is _Pairs
    assert pairs[0][1] is marker and pairs[1][0] is values[0] and sub[0] is values[2]
    assert kwargs[7][1]["deep"] is values[2] and kwargs[(1, 2)] == ()


def test_keras_dense_bias_and_relu_run_in_place_in_a_compiled_step():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 12)).astype(np.float32)
    y = rng.integers(0, 3, 16)

    def model(run_eagerly):
        m = df.keras.Sequential([df.keras.Input((12,)),
                                 df.keras.layers.Dense(8, activation="relu"),
                                 df.keras.layers.Dense(3)])
        m.compile("sgd", df.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=run_eagerly)
        return m

    compiled, eager = model(False), model(True)
    eager.set_weights(compiled.get_weights())
    for _ in range(3):
        compiled.train_on_batch(x, y)
        eager.train_on_batch(x, y)
    plan = compiled.train_function.concrete_functions()[0]._plan
    # the first Dense's bias add into its matmul's output, its relu into that, and the
    # relu gradient into the upstream gradient; the second's bias add into its matmul's
    assert plan.in_place_steps == 4
    for a, b in zip(compiled.get_weights(), eager.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_compiled_classifier_step_checks_its_labels_inside_the_plan():
    m = df.keras.Sequential([df.keras.Input((4,)), df.keras.layers.Dense(3)])
    m.compile("sgd", df.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.ones((5, 4), np.float32)
    m.train_on_batch(x, np.array([0, 1, 2, 1, 0]))
    plan = m.train_function.concrete_functions()[0]._plan
    host_calls = sorted(op.type for op, _, _ in plan.steps if op.kind == "call")
    # host code only for the optimizer's update and the loss tracker (update, result)
    assert host_calls == ["_result_tensors", "apply_gradients", "update_state"]
    # the loss: one fused forward (labels checked, cross-entropy, mean) and its gradient
    losses = [op.type for op, _, _ in plan.steps if "cross_entropy" in op.type]
    assert losses == ["sparse_softmax_cross_entropy_mean",
                      "sparse_softmax_cross_entropy_mean_grad"]
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 3\)"):
        m.train_on_batch(x, np.array([0, 1, 3, 1, 0]))
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 3\)"):
        m.train_on_batch(x, np.array([0, -1, 2, 1, 0]))


def test_the_mean_sparse_cross_entropy_is_one_fused_op_equal_to_its_parts():
    from distflow.softmax_ops import sparse_softmax_cross_entropy_mean

    rng = np.random.default_rng(3)
    logits = df.Variable(rng.standard_normal((6, 5)).astype(np.float32))
    labels = rng.integers(0, 5, 6)

    def fused():
        with df.GradientTape() as tape:
            loss = sparse_softmax_cross_entropy_mean(labels, logits)
        return loss, tape.gradient(loss, logits)

    def parts():
        with df.GradientTape() as tape:
            loss = df.reduce_mean(df.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return loss, tape.gradient(loss, logits)

    for (a, ga), (b, gb) in ((fused(), parts()), (df.function(fused)(), parts())):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(ga.numpy(), gb.numpy())
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 5\)"):
        sparse_softmax_cross_entropy_mean(np.array([0, 5, 1, 1, 1, 1]), logits)
    with pytest.raises(TypeError, match="Sparse labels must be integer class ids"):
        sparse_softmax_cross_entropy_mean(np.full(6, 0.5), logits)
