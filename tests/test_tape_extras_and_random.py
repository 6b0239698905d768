"""GradientTape.jacobian / batch_jacobian / stop_recording / reset, the functional helpers
(map_fn, py_function, numpy_function, print) and the tf.random additions."""

import json
import pathlib

import numpy as np
import pytest
from golden_nest import assert_same, decode, load

import distflow as df

rng = np.random.default_rng(7)


def test_jacobian_of_elementwise_and_matmul_matches_closed_form():
    x = df.constant(rng.standard_normal(3))
    w = df.Variable(rng.standard_normal((3, 2)))
    with df.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = df.matmul(df.reshape(x * x, [1, 3]), w)  # [1, 2]
    jx, jw = tape.jacobian(y, [x, w])
    assert jx.shape == (1, 2, 3) and jw.shape == (1, 2, 3, 2)
    np.testing.assert_allclose(jx.numpy()[0], (2 * x.numpy()[:, None] * w.numpy()).T, rtol=1e-6)
    expect_w = np.zeros((2, 3, 2))
    for j in range(2):
        expect_w[j, :, j] = x.numpy() ** 2
    np.testing.assert_allclose(jw.numpy()[0], expect_w, rtol=1e-6)


def test_jacobian_unconnected_source_is_none_or_zero():
    x, z = df.constant([1.0, 2.0]), df.constant([3.0])
    with df.GradientTape(persistent=True) as tape:
        tape.watch([x, z])
        y = x * 2.0
    assert tape.jacobian(y, z) is None
    np.testing.assert_array_equal(tape.jacobian(y, z, unconnected_gradients="zero").numpy(),
                                  np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match="unconnected_gradients"):
        tape.jacobian(y, z, unconnected_gradients="nan")


def test_non_persistent_tape_gives_one_jacobian_then_refuses():
    x = df.constant([1.0, 2.0])
    with df.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    np.testing.assert_allclose(tape.jacobian(y, x).numpy(), np.diag([2.0, 4.0]))
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, x)


def test_batch_jacobian_equals_the_diagonal_blocks_of_the_full_jacobian():
    x = df.constant(rng.standard_normal((4, 3)))
    w = df.constant(rng.standard_normal((3, 2)))
    with df.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = df.tanh(df.matmul(x, w))  # [4, 2]
    bj = tape.batch_jacobian(y, x)
    full = tape.jacobian(y, x).numpy()  # [4, 2, 4, 3]
    assert bj.shape == (4, 2, 3)
    for b in range(4):
        np.testing.assert_allclose(bj.numpy()[b], full[b, :, b, :], rtol=1e-6)
    with pytest.raises(ValueError, match="batch"):
        tape.batch_jacobian(y, df.constant(np.ones((3, 3))))


def test_stop_recording_and_reset():
    x = df.Variable(3.0)
    with df.GradientTape() as tape:
        with tape.stop_recording():
            ignored = x * x
        y = x * 2.0 + ignored
        assert tape.gradient(y, x).numpy() == pytest.approx(2.0)
    with df.GradientTape() as tape:
        y = x * x
        tape.reset()
        y = x * 5.0
    assert tape.gradient(y, x).numpy() == pytest.approx(5.0)
    tape2 = df.GradientTape()
    with pytest.raises(ValueError, match="recording"):
        with tape2.stop_recording():
            pass


def test_map_fn_and_vectorized_map_with_structures_and_gradients():
    x = df.constant(rng.standard_normal((4, 3)))
    with df.GradientTape() as tape:
        tape.watch(x)
        out = df.map_fn(lambda row: df.reduce_sum(row * row), x)
    np.testing.assert_allclose(out.numpy(), (x.numpy() ** 2).sum(1), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(out, x).numpy(), 2 * x.numpy(), rtol=1e-6)
    a, b = df.map_fn(lambda ab: (ab[0] + ab[1], ab[0] * ab[1]), (x, x))
    np.testing.assert_allclose(b.numpy(), x.numpy() ** 2, rtol=1e-6)
    v = df.vectorized_map(lambda row: row * 2.0, x)
    np.testing.assert_allclose(v.numpy(), 2 * x.numpy())


def test_py_function_numpy_function_and_print(capsys):
    got = df.py_function(lambda a: a.numpy() + 1, [df.constant([1, 2])], Tout=np.float32)
    assert got.dtype == np.float32 and got.numpy().tolist() == [2.0, 3.0]
    seen = []
    out = df.numpy_function(lambda a: (seen.append(type(a)), a * 2)[1], [df.constant([1.0])],
                            np.float32)
    assert seen == [np.ndarray] and out.numpy().tolist() == [2.0]
    df.print("loss:", df.constant([1.5, 2.0]))
    assert capsys.readouterr().err == "loss: [1.5 2]\n"  # as tf.print
    df.print(df.constant(3), output_stream="stdout")
    assert capsys.readouterr().out == "3\n"


def test_random_distributions_shapes_dtypes_and_moments():
    df.random.set_seed(3)
    c = df.random.categorical(np.log([[0.1, 0.9], [0.9, 0.1]]), 2000)
    assert c.shape == (2, 2000) and c.dtype == np.int64
    assert abs(c.numpy()[0].mean() - 0.9) < 0.05 and abs(c.numpy()[1].mean() - 0.1) < 0.05
    g = df.random.gamma([5000], alpha=[2.0, 5.0], beta=2.0)
    assert g.shape == (5000, 2) and g.dtype == np.float32
    np.testing.assert_allclose(g.numpy().mean(0), [1.0, 2.5], rtol=0.08)
    p = df.random.poisson([4000], lam=3.0)
    assert p.shape == (4000,) and abs(p.numpy().mean() - 3.0) < 0.15
    t = df.random.truncated_normal([1000], stddev=2.0)
    assert np.abs(t.numpy()).max() <= 4.0
    with pytest.raises(ValueError, match="logits"):
        df.random.categorical([0.1, 0.2], 3)


def test_stateless_ops_depend_only_on_the_seed_pair():
    a = df.random.stateless_normal([3, 2], seed=[1, 2])
    b = df.random.stateless_normal([3, 2], seed=[1, 2])
    c = df.random.stateless_normal([3, 2], seed=[2, 1])
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    u = df.random.stateless_uniform([5], seed=[4, 4], minval=0, maxval=10, dtype=np.int32)
    assert u.dtype == np.int32 and u.numpy().min() >= 0 and u.numpy().max() < 10
    tn = df.random.stateless_truncated_normal([500], seed=[0, 0])
    assert np.abs(tn.numpy()).max() <= 2.0
    cat = df.random.stateless_categorical(np.zeros((2, 3)), 4, seed=[5, 6])
    assert cat.shape == (2, 4)
    with pytest.raises(ValueError, match="seed"):
        df.random.stateless_normal([2], seed=7)


def test_generator_from_seed_is_reproducible_and_advances():
    g1, g2 = df.random.Generator.from_seed(11), df.random.Generator.from_seed(11)
    first = g1.normal([3]).numpy()
    np.testing.assert_array_equal(first, g2.normal([3]).numpy())
    assert not np.array_equal(first, g1.normal([3]).numpy())
    assert g1.uniform([2], maxval=5, minval=1, dtype=np.int64).dtype == np.int64
    assert g1.make_seeds(3).shape == (2, 3) and len(g1.split(2)) == 2


def test_print_layout_matches_tf_print(capsys):
    # tf.print('loss:', tf.constant([1.5, 2.0]), tf.constant(3), tf.constant([[1, 2], [3, 4]]),
    #          tf.range(10), tf.constant(0.1)) in TensorFlow 2.21 prints exactly this:
    df.print("loss:", df.constant([1.5, 2.0]), df.constant(3), df.constant([[1, 2], [3, 4]]),
             df.range(10), df.constant(0.1))
    assert capsys.readouterr().err == "loss: [1.5 2] 3 [[1 2]\n [3 4]] [0 1 2 ... 7 8 9] 0.1\n"


@pytest.mark.parametrize("namespace", [df.math, df.linalg, df.array_ops])
def test_every_op_takes_tf_name_keyword(namespace):
    import inspect

    for key in dir(namespace):
        fn = getattr(namespace, key)
        if key.startswith("_") or not inspect.isfunction(fn):
            continue
        params = inspect.signature(fn).parameters
        assert "name" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()), key
    assert float(df.math.sin(0.0, name="s")) == 0.0
    np.testing.assert_array_equal(df.reverse([1, 2], [0], name="r").numpy(), [2, 1])


TAPE = json.loads((pathlib.Path(__file__).parent / "goldens" / "core" / "tape.json")
                  .read_text())["cases"]


@pytest.mark.parametrize("name", sorted(TAPE))
def test_jacobians_match_tensorflow(name):
    case = TAPE[name]
    x = df.constant(np.asarray(case["x"]["a"], dtype=case["x"]["dtype"]))
    with df.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = eval(case["src"], {"tf": df})(x)  # noqa: S307  (fixed case strings say `tf.`)
    j = tape.jacobian(y, x) if case["kind"] == "jacobian" else tape.batch_jacobian(y, x)
    want = np.asarray(case["jacobian"]["a"], dtype=case["jacobian"]["dtype"])
    assert j.shape == want.shape
    np.testing.assert_allclose(j.numpy(), want, rtol=1e-4, atol=1e-6)


RANDOM = json.loads((pathlib.Path(__file__).parent / "goldens" / "core" / "random.json")
                    .read_text())["cases"]


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_shapes_and_dtypes_match_tensorflow(name):
    case = RANDOM[name]
    t = eval(case["src"], {"tf": df})  # noqa: S307  (fixed case strings say `tf.`)
    assert (list(t.shape), t.dtype.name) == (case["shape"], case["dtype"]), case["src"]


def test_star_import_keeps_pythons_print_slice_and_pow():
    namespace = {}
    exec("from distflow import *", namespace)  # noqa: S102
    assert "print" not in namespace and "slice" not in namespace and "pow" not in namespace
    assert "einsum" in namespace and "GradientTape" in namespace


FUNCTIONAL = load("functional")


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional_and_list_ops_match_tensorflow(name):
    case = FUNCTIONAL[name]
    assert_same(eval(case["src"], {"tf": df}), decode(case["value"]), name,  # noqa: S307
                rtol=1e-6)


@pytest.mark.parametrize("op", [
    df.math.digamma, df.math.bessel_i0, lambda x: df.math.segment_prod(x, np.array([0, 0, 1])),
    lambda x: df.linalg.eigh(df.linalg.diag(x))[1], lambda x: df.linalg.qr(df.linalg.diag(x)).q,
    lambda x: df.linalg.pinv(df.linalg.diag(x)), lambda x: df.linalg.lu(df.linalg.diag(x)).lu])
def test_ops_without_a_gradient_raise_when_differentiated(op):
    x = df.constant([0.5, 1.5, 2.5])
    with df.GradientTape() as tape:
        tape.watch(x)
        y = df.reduce_sum(op(x))
    with pytest.raises(LookupError, match="No gradient is defined"):
        tape.gradient(y, x)


def test_py_function_is_differentiable_like_tfs_eager_one():
    x = df.constant([1.0, 2.0])
    with df.GradientTape() as tape:
        tape.watch(x)
        y = df.py_function(lambda a: a * a, [x], Tout=np.float32)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [2.0, 4.0])
