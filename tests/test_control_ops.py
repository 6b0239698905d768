"""Top-level control and checking helpers (`tf.case`, `tf.switch_case`, `tf.Assert`,
`tf.debugging.*`, `tf.ensure_shape`, ...), `tf.bitwise` and the enums: which calls
TensorFlow 2.21 refuses and with which class (tests/goldens/core/errors.json), and
how the helpers behave in graph mode. Forward values are in functional.json
(tests/test_tape_extras_and_random.py)."""

import threading

import numpy as np
import pytest
from golden_nest import load

import distflow as df

ERRORS = load("errors")


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_refuses_what_tensorflow_refuses_with_its_error_class(name):
    case = ERRORS[name]
    if "none" in case:  # a check TF passes: returns None
        assert eval(case["src"], {"tf": df}) is None  # noqa: S307
        return
    if case["error"] is None:
        eval(case["src"], {"tf": df})  # noqa: S307  (TF accepts it: so must we)
        return
    with pytest.raises(Exception) as info:  # noqa: PT011  (the class is the golden)
        eval(case["src"], {"tf": df})  # noqa: S307
    assert type(info.value).__name__ == case["error"], (name, info.value)


def test_tf_errors_is_the_graph_error_module_and_assertions_quote_the_values():
    with pytest.raises(df.errors.InvalidArgumentError, match=r"x=array\(\[1, 2\]"):
        df.debugging.assert_equal(df.constant([1, 2]), df.constant([1, 3]))
    assert issubclass(df.errors.InvalidArgumentError, df.errors.OpError)


def test_case_and_switch_case_choose_when_a_graph_runs():
    g = df.Graph()
    with g.as_default():
        i = df.compat.v1.placeholder("int32", [], name="i")
        x = df.compat.v1.placeholder("float32", [2], name="x")
        y = df.switch_case(i, [lambda: x * 2.0, lambda: x * 3.0, lambda: -x])
        z = df.case([(df.greater(i, 0), lambda: x + 1.0)], default=lambda: x - 1.0)
        assert df.inside_function() and df.is_symbolic_tensor(y)
        assert df.get_static_value(y) is None
    with df.compat.v1.Session(graph=g) as sess:
        for index, scale in [(0, 2.0), (1, 3.0), (2, -1.0), (9, -1.0)]:
            got, shifted = sess.run([y, z], feed_dict={i: index, x: [1.0, 2.0]})
            np.testing.assert_allclose(got, np.array([1.0, 2.0]) * scale)
            np.testing.assert_allclose(shifted, [2.0, 3.0] if index > 0 else [0.0, 1.0])
    assert not df.inside_function() and not df.is_symbolic_tensor(df.constant(1.0))


def test_case_and_switch_case_refuse_empty_branch_lists():
    with pytest.raises(ValueError, match="pred_fn_pairs"):
        df.case([])
    with pytest.raises(ValueError, match="branch_fns"):
        df.switch_case(0, [])


def test_unconnected_gradients_enum_is_accepted_by_the_tape():
    x, z = df.constant([1.0, 2.0]), df.constant([3.0])
    with df.GradientTape(persistent=True) as tape:
        tape.watch([x, z])
        y = df.reduce_sum(x * 2.0)
    assert tape.gradient(y, z, unconnected_gradients=df.UnconnectedGradients.NONE) is None
    np.testing.assert_array_equal(
        tape.gradient(y, z, unconnected_gradients=df.UnconnectedGradients.ZERO).numpy(), [0.0])


def test_enums_carry_tensorflows_names_and_values():
    assert df.VariableAggregation.MEAN.value == 2 and df.VariableSynchronization.ON_READ.value == 3
    assert df.AggregationMethod.DEFAULT == df.AggregationMethod.ADD_N == 0


def test_bitwise_refuses_floats_and_says_how_to_fix():
    with pytest.raises(TypeError, match="dtype float32; cast it first"):
        df.bitwise.bitwise_and(df.constant([1.0]), df.constant([1.0]))


def test_bitcast_refuses_a_wrong_last_dimension():
    with pytest.raises(ValueError, match="last dimension of 4"):
        df.bitcast(df.constant([1, 2, 3], df.uint8), df.int32)


def test_helpers_of_eager_code():
    assert df.no_op() is None and df.group(df.constant(1.0)) is None
    with df.init_scope():
        assert not df.inside_function()
    f = df.recompute_grad(lambda v: v * v)
    x = df.constant([3.0])
    with df.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [6.0])
    spec = df.type_spec_from_value(np.zeros((2, 3), np.int32))
    assert spec.shape.as_list() == [2, 3] and spec.dtype == df.int32


def test_losses_and_metrics_are_the_keras_packages():
    assert df.losses.MeanSquaredError is df.keras.losses.MeanSquaredError
    assert df.metrics.Mean is df.keras.metrics.Mean


def test_ensure_shape_and_assert_rank_quote_the_received_shape():
    with pytest.raises(df.errors.InvalidArgumentError, match=r"\(1, 2\) is not compatible"):
        df.ensure_shape(df.constant([[1.0, 2.0]]), [None, 3])
    with pytest.raises(ValueError, match=r"rank 1 \(shape \(2,\)\)"):
        df.assert_rank(df.constant([1, 2]), 2)


def test_custom_gradient_replaces_the_vjp_of_its_function():
    @df.custom_gradient
    def scaled(x, y):
        return x * y, lambda dy: (dy * 10.0, None)

    x, y = df.constant([1.0, 2.0]), df.constant([3.0, 4.0])
    with df.GradientTape() as tape:
        tape.watch([x, y])
        z = df.reduce_sum(scaled(x, y) * df.constant([2.0, 3.0]))
    gx, gy = tape.gradient(z, [x, y])
    np.testing.assert_allclose(gx.numpy(), [20.0, 30.0])
    assert gy is None
    np.testing.assert_allclose(z.numpy(), 2.0 * 3.0 + 3.0 * 8.0)


def test_custom_gradient_is_used_by_a_graphs_gradients():
    square = df.custom_gradient(lambda x: (x * x, lambda dy: dy * 10.0))
    g = df.Graph()
    with g.as_default():
        x = df.compat.v1.placeholder("float32", [2])
        y = square(x)
        (grad,) = df.gradients(df.reduce_sum(y), [x])
    with df.compat.v1.Session(graph=g) as sess:
        out, got = sess.run([y, grad], feed_dict={x: [1.0, 3.0]})
    np.testing.assert_allclose(out, [1.0, 9.0])
    np.testing.assert_allclose(got, [10.0, 10.0])


def test_grad_pass_through_is_the_identity_backward():
    x = df.constant([1.0, 2.0])
    rounded = df.grad_pass_through(df.round)
    with df.GradientTape() as tape:
        tape.watch(x)
        z = df.reduce_sum(rounded(x * 1.3) * x)
    # d/dx [round(1.3x) x] with round's gradient passed through: round(1.3x) + 1.3x
    np.testing.assert_allclose(tape.gradient(z, x).numpy(), [1.0 + 1.3, 3.0 + 2.6], rtol=1e-6)


def test_approx_top_k_is_exact_on_any_dimension_and_for_min_k():
    x = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]], np.float32)
    values, indices = df.approx_top_k(x, 1, reduction_dimension=0, is_max_k=False)
    np.testing.assert_array_equal(values.numpy(), np.sort(x, axis=0)[:1])
    np.testing.assert_array_equal(indices.numpy(), np.argsort(x, axis=0)[:1])
    values, indices = df.nn.approx_min_k(x, 2)
    np.testing.assert_array_equal(values.numpy(), np.sort(x, axis=1)[:, :2])
    assert indices.dtype == df.int32


def test_space_to_batch_round_trips_and_pads_what_its_helper_says():
    x = np.arange(2 * 5 * 4 * 3, dtype=np.float32).reshape(2, 5, 4, 3)
    paddings, crops = df.required_space_to_batch_paddings([5, 4], [2, 3])
    y = df.space_to_batch_nd(x, [2, 3], paddings)
    assert y.shape == (12, 3, 2, 3)
    np.testing.assert_array_equal(df.batch_to_space(y, [2, 3], crops).numpy(), x)


def test_space_to_batch_refuses_bad_paddings_with_their_shape():
    with pytest.raises(ValueError, match=r"shape \[2, 2\].*shape \(2,\)"):
        df.space_to_batch(np.zeros((1, 4, 4, 1)), [2, 2], [0, 0])


def test_tensor_array_checks_shapes_and_reads_unwritten_slots_as_zeros():
    ta = df.TensorArray(df.float32, size=2, element_shape=[2])
    with pytest.raises(ValueError, match=r"shape \(2,\). Received: a value of shape \(3,\)"):
        ta.write(0, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ta.write(1, [1.0, 2.0]).stack().numpy(), [[0, 0], [1, 2]])
    with pytest.raises(df.errors.OutOfRangeError, match="dynamic_size=True"):
        ta.write(2, [1.0, 2.0])
    with pytest.raises(ValueError, match="known element_shape"):
        df.TensorArray(df.float32, size=1).read(0)
    assert isinstance(df.TensorSpec([2], df.float32), df.TypeSpec)


def test_device_spec_parses_and_prints_tensorflows_names():
    spec = df.DeviceSpec.from_string("/job:worker/replica:0/task:1/device:cpu:0")
    assert (spec.job, spec.replica, spec.task, spec.device_type, spec.device_index) == (
        "worker", 0, 1, "CPU", 0)
    assert spec.to_string() == "/job:worker/replica:0/task:1/device:CPU:0"
    merged = df.DeviceSpec(job="ps", task=0).make_merged_spec(df.DeviceSpec.from_string("CPU:1"))
    assert str(merged) == "/job:ps/task:0/device:CPU:1"
    assert spec.replace(task=3) == df.DeviceSpec.from_string("/job:worker/replica:0/task:3/CPU:0")
    with df.device(df.DeviceSpec(device_type="CPU", device_index=0)):
        pass
    with pytest.raises(RuntimeError, match="CPU only"):
        with df.device(df.DeviceSpec(device_type="GPU", device_index=0)):
            pass
    with pytest.raises(ValueError, match="'x' is not an integer id"):
        df.DeviceSpec.from_string("/task:x")


def test_critical_section_runs_one_function_at_a_time():
    section, inside, most = df.CriticalSection(), [0], [0]

    def work():
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        threading.Event().wait(0.001)
        inside[0] -= 1
        return 7

    threads = [threading.Thread(target=section.execute, args=(work,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and section.execute(work) == 7


def test_tf_test_compute_gradient_gives_both_jacobians():
    theoretical, numerical = df.test.compute_gradient(
        lambda x, y: x * y + df.sin(x), [np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    np.testing.assert_allclose(theoretical[0], np.diag([3.0 + np.cos(1.0), 4.0 + np.cos(2.0)]))
    np.testing.assert_allclose(theoretical[1], np.diag([1.0, 2.0]))
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, atol=1e-6)
    assert not df.test.is_gpu_available() and df.test.gpu_device_name() == ""


class _Case(df.test.TestCase):
    def runTest(self):  # noqa: N802
        pass


def test_tf_test_testcase_assertions_pass_and_fail():
    case = _Case()
    case.assertAllClose(df.constant([1.0, 2.0]), [1.0, 2.0 + 1e-8])
    case.assertAllEqual(df.constant([[1, 2]]), np.array([[1, 2]]))
    case.assertAllGreater(df.constant([2, 3]), 1)
    case.assertDTypeEqual(df.constant([1.0]), df.float32)
    with pytest.raises(AssertionError):
        case.assertAllClose([1.0], [1.1])
    with pytest.raises(AssertionError):
        case.assertAllEqual([1, 2], [[1, 2]])
    assert case.evaluate({"a": df.constant(3)})["a"] == 3


def test_forward_accumulator_gives_jacobian_vector_products():
    x, w = df.constant([1.0, 2.0]), df.constant([[1.0, 2.0], [3.0, 4.0]])
    tangent = np.array([1.0, 0.5], np.float32)
    with df.autodiff.ForwardAccumulator(x, tangent) as acc:
        y = df.sin(x) * 2.0
        z = df.linalg.matvec(w, x * x)
        unrelated = w * 3.0
    np.testing.assert_allclose(acc.jvp(y).numpy(), 2 * np.cos([1.0, 2.0]) * tangent, rtol=1e-6)
    np.testing.assert_allclose(acc.jvp(z).numpy(), w.numpy() @ (2 * x.numpy() * tangent))
    assert acc.jvp(unrelated) is None
    np.testing.assert_array_equal(acc.jvp(unrelated, unconnected_gradients="zero").numpy(),
                                  np.zeros((2, 2)))
    assert df.autodiff.GradientTape is df.GradientTape
    with pytest.raises(ValueError, match=r"primal shape \(2,\), tangent shape \(3,\)"):
        df.autodiff.ForwardAccumulator(x, np.zeros(3))


def test_numpy_scalar_types_are_accepted_as_dtypes():
    assert df.saturate_cast(df.constant([300.0]), np.uint8).numpy().tolist() == [255]
    assert df.bitcast(df.constant([1.0]), np.int32).numpy().tolist() == [1065353216]
    assert df.TensorArray(np.int64, 1).write(0, 3).stack().dtype == df.int64


def test_fifo_queue_orders_blocks_and_drains_after_close():
    q = df.queue.FIFOQueue(2, [df.float32, df.int32], shapes=[[], []])
    q.enqueue([1.0, 10])
    q.enqueue([2.0, 20])
    done = []
    producer = threading.Thread(target=lambda: (q.enqueue([3.0, 30]), done.append(1)))
    producer.start()
    producer.join(0.05)
    assert not done and int(q.size()) == 2  # full: the third enqueue waits
    value, label = q.dequeue()
    producer.join()
    assert (float(value), int(label)) == (1.0, 10) and done
    values, labels = q.dequeue_many(2)
    np.testing.assert_array_equal(labels.numpy(), [20, 30])
    q.enqueue_many([[4.0], [40]])
    q.close()
    with pytest.raises(df.errors.CancelledError):
        q.enqueue([5.0, 50])
    assert q.dequeue_up_to(5)[1].numpy().tolist() == [40]
    with pytest.raises(df.errors.OutOfRangeError, match="closed"):
        q.dequeue()
    with pytest.raises(ValueError, match=r"component shape is \(\). Received: \(2,\)"):
        df.queue.FIFOQueue(2, [df.float32], shapes=[[]]).enqueue([[1.0, 2.0]])


def test_priority_and_random_shuffle_queues_choose_what_leaves():
    p = df.queue.PriorityQueue(5, [df.float32], shapes=[[]])
    for priority, value in [(3, 30.0), (1, 10.0), (2, 20.0)]:
        p.enqueue([priority, value])
    np.testing.assert_array_equal(p.dequeue_many(3)[1].numpy(), [10.0, 20.0, 30.0])
    orders = []
    for _ in range(2):
        r = df.queue.RandomShuffleQueue(10, 0, df.int32, seed=1)
        r.enqueue_many([list(range(8))])
        orders.append(r.dequeue_many(8).numpy().tolist())
    assert orders[0] == orders[1] and sorted(orders[0]) == list(range(8))
    assert orders[0] != list(range(8))
