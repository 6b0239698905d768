"""tf.linalg's LinearOperator family and banded_triangular_solve against the goldens of
tests/goldens/core/linalg_operators.json (written by tools/make_goldens_linalg_operators.py
with real TensorFlow 2.21), plus gradients through operators against finite differences."""

import json

import numpy as np
import pytest
from golden_nest import GOLDENS, decode

import distflow as tf
from distflow import test_util

SRC = json.loads((GOLDENS / "linalg_operators.json").read_text())["src"]
VALUES = sorted(n for n, c in SRC.items() if "value" in c)
ERRORS = sorted(n for n, c in SRC.items() if "error" in c)


def assert_close(actual, want, what):
    """A nest of tensors equals the golden nest: dtypes exactly, values to float32 accuracy."""
    if isinstance(want, list):
        assert isinstance(actual, list | tuple) and len(actual) == len(want), what
        for a, w in zip(actual, want):
            assert_close(a, w, what)
        return
    actual = np.asarray(actual)
    assert actual.dtype == want.dtype, f"{what}: dtype {actual.dtype}, TF gives {want.dtype}"
    np.testing.assert_allclose(actual, want, rtol=2e-4, atol=2e-5, err_msg=what)


@pytest.mark.parametrize("name", VALUES)
def test_operator_matches_tensorflow(name):
    case = SRC[name]
    actual = eval(case["src"], {"tf": tf})  # noqa: S307  (our own fixed case strings)
    assert_close(actual, decode(case["value"]), name)


@pytest.mark.parametrize("name", ERRORS)
def test_operator_refuses_what_tensorflow_refuses(name):
    case = SRC[name]
    with pytest.raises(Exception) as info:  # noqa: PT011  (the class is the golden)
        eval(case["src"], {"tf": tf})  # noqa: S307
    # TF's class or a subclass of it (distflow's DTypeMismatchError is a TypeError)
    assert case["error"] in [c.__name__ for c in type(info.value).__mro__], (name, info.value)


RNG = np.random.default_rng(16)
WELL = RNG.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)
RHS = RNG.uniform(-1, 1, (3, 2))
L = tf.linalg


def test_diag_operator_differentiates_through_matmul_solve_and_log_determinant():
    def f(d, x):
        op = L.LinearOperatorDiag(d)
        return op.matmul(x) + op.solve(x, adjoint=True) + op.log_abs_determinant()
    test_util.check_grads(f, [np.array([1.5, -2.0, 0.7]), RHS])


def test_lower_triangular_solve_differentiates_in_the_matrix_and_the_rhs():
    def f(m, x):
        return L.LinearOperatorLowerTriangular(m).solve(x) * 1.0
    test_util.check_grads(f, [WELL, RHS])


def test_kronecker_and_block_diag_differentiate_through_to_dense_and_determinant():
    def f(a, b):
        ka, kb = L.LinearOperatorFullMatrix(a), L.LinearOperatorFullMatrix(b)
        kron = L.LinearOperatorKronecker([ka, kb])
        block = L.LinearOperatorBlockDiag([ka, kb])
        factorwise = kron.matmul(np.ones((4, 1))) + kron.solve(np.ones((4, 1)), adjoint=True)
        return (tf.reduce_sum(kron.to_dense()) + block.determinant() + kron.determinant()
                + factorwise)
    test_util.check_grads(f, [WELL[:2, :2], WELL[1:, 1:]])


def test_toeplitz_and_low_rank_update_differentiate_through_matmul_and_solve():
    def f(col, row, u):
        toeplitz = L.LinearOperatorToeplitz(col, row)
        update = L.LinearOperatorLowRankUpdate(toeplitz, u)
        return toeplitz.matmul(RHS) + update.solve(RHS)
    test_util.check_grads(f, [np.array([3.0, 0.5, -0.2]), np.array([9.0, 0.3, 0.4]),
                              RNG.uniform(-0.5, 0.5, (3, 1))])


def test_banded_triangular_solve_differentiates_in_bands_and_rhs():
    def f(bands, rhs):
        return L.banded_triangular_solve(bands, rhs, lower=False, adjoint=True)
    test_util.check_grads(f, [RNG.uniform(1.0, 2.0, (2, 3)), RHS])


def test_householder_is_its_own_inverse_and_an_operator_product_composes():
    reflect = L.LinearOperatorHouseholder([1.0, -2.0, 0.5])
    np.testing.assert_allclose((reflect @ reflect).to_dense(), np.eye(3), atol=1e-6)
    assert isinstance(reflect @ reflect, L.LinearOperatorComposition)
    assert reflect.adjoint() is reflect and reflect.H is reflect


def test_an_operator_subclass_defining_only_matmul_gets_the_rest():
    class Doubling(L.LinearOperator):
        def __init__(self):
            super().__init__(dtype=np.float32, is_square=True, name="doubling")

        def _shape(self):
            return tf.TensorShape([2, 2])

        def _matmul(self, x, adjoint=False, adjoint_arg=False):
            return (tf.linalg.matrix_transpose(x) if adjoint_arg else x) * 2.0

    op = Doubling()
    np.testing.assert_allclose(op.to_dense(), 2 * np.eye(2))
    np.testing.assert_allclose(op.solvevec([2.0, 4.0]), [1.0, 2.0])
    assert float(op.determinant()) == pytest.approx(4.0)
    assert op.shape == (2, 2) and op.batch_shape.as_list() == [] and op.domain_dimension == 2
    assert op.dtype == tf.float32 and op.dtype.is_floating  # a DType, as tensors have


def test_circulant_differentiates_in_its_spectrum_through_matmul_and_solve():
    def f(spectrum):
        op = L.LinearOperatorCirculant2D(spectrum, input_output_dtype=np.float64)
        x = np.arange(6.0).reshape(6, 1)
        return op.matmul(x) + op.solve(x) + op.log_abs_determinant()
    test_util.check_grads(f, [RNG.uniform(1.0, 2.0, (2, 3))])


def test_circulant_with_tensorflows_default_complex_dtype_says_how_to_get_a_real_one():
    with pytest.raises(TypeError, match="input_output_dtype=tf.float32"):
        L.LinearOperatorCirculant([1.0, 2.0, 3.0])
