"""GradientTape semantics, as TensorFlow 2 defines them."""

import gc
import weakref

import numpy as np
import pytest

import distflow as df


def test_gradient_accumulates_when_a_tensor_is_reused():
    x = df.Variable(3.0)
    with df.GradientTape() as tape:
        y = x * x + x  # x used three times
    assert tape.gradient(y, x).numpy() == pytest.approx(7.0)


def test_reused_intermediate_accumulates():
    x = df.constant([1.0, 2.0])
    with df.GradientTape() as tape:
        tape.watch(x)
        h = df.exp(x)
        y = df.reduce_sum(h * h + h)
    expect = 2 * np.exp(2 * x.numpy()) + np.exp(x.numpy())
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), expect, rtol=1e-6)


def test_unconnected_source_gives_none_or_zero_and_keeps_structure():
    a, b = df.Variable([1.0, 2.0]), df.Variable(5.0)
    with df.GradientTape(persistent=True) as tape:
        y = df.reduce_sum(a * 2.0)
    grads = tape.gradient(y, {"a": a, "b": [b]})
    assert set(grads) == {"a", "b"} and grads["b"] == [None]
    np.testing.assert_array_equal(grads["a"].numpy(), [2.0, 2.0])
    zero = tape.gradient(y, (a, b), unconnected_gradients="zero")
    assert isinstance(zero, tuple) and zero[1].numpy() == 0.0


def test_non_persistent_tape_frees_graph_and_refuses_second_call():
    x = df.Variable(np.ones((100, 100), np.float32))
    with df.GradientTape() as tape:
        h = df.exp(x)  # saves its output for backward
        y = df.reduce_sum(h)
    saved = weakref.ref(h._node.residuals)
    del h
    tape.gradient(y, x)
    gc.collect()
    assert saved() is None, "the residual buffer outlived gradient()"
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, x)


def test_persistent_tape_allows_several_gradients():
    x = df.Variable(2.0)
    with df.GradientTape(persistent=True) as tape:
        y = x * x
        z = y * x
    assert tape.gradient(y, x).numpy() == pytest.approx(4.0)
    assert tape.gradient(z, x).numpy() == pytest.approx(12.0)


def test_add_keeps_no_input_buffers():
    x = df.Variable(np.ones((50, 50), np.float32))
    c = df.constant(np.ones((50, 50), np.float32))
    with df.GradientTape():
        y = x + c
    assert all(not isinstance(r, np.ndarray) for r in y._node.residuals)


def test_stop_gradient_blocks_flow():
    x = df.Variable(3.0)
    with df.GradientTape() as tape:
        y = x * df.stop_gradient(x)
    assert tape.gradient(y, x).numpy() == pytest.approx(3.0)


def test_non_scalar_target_is_summed_and_output_gradients_weight_it():
    x = df.Variable([1.0, 2.0, 3.0])
    with df.GradientTape(persistent=True) as tape:
        y = x * x
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [2, 4, 6])
    np.testing.assert_allclose(tape.gradient(y, x, output_gradients=[1.0, 0.0, 2.0]).numpy(),
                               [2, 0, 12])


def test_float64_stays_float64_and_default_is_float32():
    assert df.constant(1.5).dtype == np.float32
    assert df.constant([1, 2]).dtype == np.int32
    x = df.Variable(np.array([1.0, 2.0]))  # NumPy float64 keeps its dtype
    with df.GradientTape() as tape:
        y = df.reduce_sum(df.exp(x) * 2.0)
    assert y.dtype == np.float64
    assert tape.gradient(y, x).dtype == np.float64


def test_integer_and_bool_tensors_carry_no_gradient():
    i = df.Variable([1, 2, 3])
    x = df.Variable([1.0, 2.0, 3.0])
    with df.GradientTape() as tape:
        tape.watch(df.constant([True]))
        y = df.reduce_sum(x * df.cast(i, "float32"))
    gx, gi = tape.gradient(y, [x, i])
    np.testing.assert_allclose(gx.numpy(), [1, 2, 3])
    assert gi is None


def test_unsupported_dtype_is_a_clear_error():
    with pytest.raises(TypeError, match="Received: dtype=complex128"):
        df.constant(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="dtype"):
        df.constant(np.array([object()]))
    with pytest.raises(TypeError, match="dtype"):  # text stays on the host: no string tensors
        df.Tensor(np.array(["a"]))


def test_op_without_gradient_raises_clearly():
    x = df.Variable([1.4, 2.6])
    with df.GradientTape() as tape:
        y = df.reduce_sum(df.round(x) * x)
    with pytest.raises(LookupError, match="No gradient is defined for input 0 of op 'round'"):
        tape.gradient(y, x)


def test_watch_constant_and_untracked_variable():
    c = df.constant(2.0)
    v = df.Variable(3.0, trainable=False)
    with df.GradientTape() as tape:
        tape.watch(c)
        y = c * v
    gc_, gv = tape.gradient(y, [c, v])
    assert gc_.numpy() == pytest.approx(3.0) and gv is None


def test_ops_outside_a_tape_record_nothing():
    x = df.Variable(1.0)
    y = x * 2.0
    assert y._node is None


def test_variable_names_are_unique_and_stable():
    a = df.Variable(0.0, name="unique_test/kernel")
    b = df.Variable(0.0, name="unique_test/kernel")
    assert a.name == "unique_test/kernel" and b.name == "unique_test/kernel_1"


def test_variable_assignments_are_in_place_and_checked():
    v = df.Variable([1.0, 2.0])
    buf = v.value
    v.assign([3.0, 4.0]).assign_add([1.0, 1.0]).assign_sub([0.5, 0.5])
    assert v.value is buf
    np.testing.assert_allclose(v.numpy(), [3.5, 4.5])
    with pytest.raises(ValueError, match=r"shape \(2,\) with a value of shape \(3,\)"):
        v.assign([1.0, 2.0, 3.0])


def test_mixed_dtypes_follow_tensorflow_rules():
    """TF never promotes between tensors; Python and NumPy operands take the tensor's
    dtype (NumPy values are cast, a Python float is refused by an int tensor); true
    division of ints gives float64 (float32 for 8- and 16-bit ints). Values from TF 2.21."""
    ints, floats = df.constant([1, 2]), df.constant([1.0, 2.0])
    for fn in (lambda: ints + floats, lambda: df.add(ints, floats),
               lambda: floats + df.constant([1.0], dtype=df.float64)):
        with pytest.raises(df.errors.InvalidArgumentError, match="int32|float64") as caught:
            fn()
        assert "tf.cast" in str(caught.value)
    with pytest.raises(TypeError, match="Cannot convert 2.0 to EagerTensor of dtype int32"):
        ints * 2.0
    cases = [(ints * np.float64(2.5), np.int32, [2, 4]),
             (ints + np.array([1.5, 2.5]), np.int32, [2, 4]),
             (floats + np.array([1, 2]), np.float32, [2.0, 4.0]),
             (floats + 1, np.float32, [2.0, 3.0]),
             (ints / 2, np.float64, [0.5, 1.0]),
             (df.constant([1], dtype=df.int64) / 2, np.float64, [0.5]),
             (df.constant([1], dtype=df.int8) / df.constant([2], dtype=df.int8), np.float32,
              [0.5]),
             (ints // 2, np.int32, [0, 1])]
    for result, dtype, values in cases:
        assert result.dtype == dtype
        np.testing.assert_array_equal(result.numpy(), values)


def test_a_float_weight_times_an_int_tensor_needs_a_cast():
    x = df.constant([1, 2, 3])
    w = df.Variable(2.0)
    with df.GradientTape() as tape:
        y = df.reduce_sum(w * df.cast(x, "float32"))
    assert y.dtype == np.float32
    assert tape.gradient(y, w).numpy() == pytest.approx(6.0)
    with pytest.raises(df.errors.InvalidArgumentError):
        w * x


def test_random_is_reproducible_with_seed():
    df.random.set_seed(7)
    a = df.random.normal([3]).numpy()
    df.random.set_seed(7)
    np.testing.assert_array_equal(a, df.random.normal([3]).numpy())
    np.testing.assert_array_equal(df.random.uniform([2], seed=1).numpy(),
                                  df.random.uniform([2], seed=1).numpy())


def test_dropout_with_explicit_rng_is_reproducible_and_scaled():
    x = np.ones((1000,), np.float32)
    a = df.nn.dropout(x, 0.5, rng=np.random.default_rng(3)).numpy()
    b = df.nn.dropout(x, 0.5, rng=np.random.default_rng(3)).numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 2.0}
    assert 400 < (a == 0).sum() < 600


def test_getitem_gradient_accumulates_repeated_indices():
    x = df.Variable([1.0, 2.0, 3.0])
    with df.GradientTape() as tape:
        y = df.reduce_sum(x[np.array([0, 0, 2])])
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [2, 0, 1])


def test_sparse_cross_entropy_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 3\)"):
        df.nn.sparse_softmax_cross_entropy_with_logits([0, 3], np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
@pytest.mark.parametrize("bad", [-1, 3, 127])
def test_sparse_cross_entropy_label_range_check_in_every_integer_dtype(dtype, bad):
    logits = np.zeros((3, 3), np.float32)
    labels = np.array([0, 2, 1], dtype)
    assert df.nn.sparse_softmax_cross_entropy_with_logits(labels, logits).shape == (3,)
    if bad < 0 and np.dtype(dtype).kind == "u":
        return  # no negative value in an unsigned dtype
    labels[2] = bad  # then read strided, as a column of a larger array can be
    expected = rf"Labels must be in \[0, 3\) for 3 classes\. Received values in \[{min(bad, 0)}, "
    with pytest.raises(ValueError, match=expected + rf"{max(bad, 0)}\]"):
        df.nn.sparse_softmax_cross_entropy_with_logits(labels[::2], logits[:2])


def test_function_decorator_runs_eagerly():
    @df.function
    def f(x):
        return x * 2.0

    assert f(df.constant(2.0)).numpy() == pytest.approx(4.0)
