"""tf.sparse, tf.sets, tf.edit_distance and the other expression goldens of
tests/goldens/core/more.json (written by tools/make_goldens_core_more.py with real
TensorFlow 2.21), plus the behaviour goldens cannot hold: gradients through sparse
products, random flips, specs."""

import json

import numpy as np
import pytest
from golden_nest import GOLDENS, assert_same, decode

import distflow as tf
from distflow import test_util

SRC = json.loads((GOLDENS / "more.json").read_text())["src"]
VALUES = sorted(n for n, c in SRC.items() if "value" in c)
ERRORS = sorted(n for n, c in SRC.items() if "error" in c)


@pytest.mark.parametrize("name", VALUES)
def test_expression_matches_tensorflow(name):
    case = SRC[name]
    actual = eval(case["src"], {"tf": tf})  # noqa: S307  (our own fixed case strings)
    assert_same(actual, decode(case["value"]), name, rtol=1e-5)


@pytest.mark.parametrize("name", ERRORS)
def test_refuses_what_tensorflow_refuses(name):
    case = SRC[name]
    with pytest.raises(Exception) as info:  # noqa: PT011  (the class is the golden)
        eval(case["src"], {"tf": tf})  # noqa: S307
    assert type(info.value).__name__ == case["error"], (name, info.value)


def test_sparse_dense_matmul_differentiates_values_and_the_dense_operand():
    idx = [[0, 1], [1, 0], [2, 3]]

    def f(values, dense):
        return tf.sparse.sparse_dense_matmul(tf.sparse.SparseTensor(idx, values, [3, 4]), dense)

    rng = np.random.default_rng(0)
    test_util.check_grads(f, [rng.normal(size=3), rng.normal(size=(4, 2))])


def test_sparse_structure_ops_keep_value_gradients():
    def f(values):
        st = tf.sparse.SparseTensor([[2, 0], [0, 3], [0, 1]], values, [3, 4])
        moved = tf.sparse.transpose(tf.sparse.reorder(st))
        return tf.sparse.to_dense(moved) * np.arange(12.0).reshape(4, 3)

    test_util.check_grads(f, [np.array([1.0, -2.0, 0.5])])


def test_sparse_tensor_spec_describes_a_sparse_tensor():
    st = tf.SparseTensor([[0, 1]], [1.5], [2, 3])
    spec = tf.SparseTensorSpec.from_value(st)
    assert spec == tf.SparseTensorSpec([2, 3], tf.float32)
    assert spec.is_compatible_with(st)
    assert tf.SparseTensorSpec([None, 3], tf.float32).is_compatible_with(spec)
    assert not spec.is_compatible_with(tf.constant([[1.0, 2.0, 3.0]]))
    assert spec.value_type is tf.SparseTensor


def test_a_sparse_tensor_rejects_values_that_do_not_match_the_indices():
    with pytest.raises(ValueError, match="one value per index row"):
        tf.SparseTensor([[0, 0], [1, 1]], [1.0], [2, 2])


@pytest.mark.parametrize("flip,axis", [(tf.image.random_flip_left_right, 2),
                                       (tf.image.random_flip_up_down, 1)])
def test_random_flips_flip_whole_images_about_half_the_time(flip, axis):
    images = np.random.default_rng(1).uniform(size=(64, 3, 4, 2)).astype("float32")
    out = flip(images, seed=7).numpy()
    flipped = [np.array_equal(o, np.flip(i, axis - 1)) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image is one or the other
    assert 16 < sum(flipped) < 48
    np.testing.assert_array_equal(flip(images, seed=7).numpy(), out)  # the seed fixes it
