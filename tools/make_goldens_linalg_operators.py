"""Writes tests/goldens/core/linalg_operators.json from real TensorFlow: the
tf.linalg.LinearOperator family and tf.linalg.banded_triangular_solve.

Same runner as tools/make_goldens_core.py:

    /tmp/tfenv/bin/python tools/make_goldens_linalg_operators.py

Every operator in OPERATORS is built from its source expression and each method
of METHODS that applies to it is evaluated; EXTRA holds further expressions and
ERRORS the ones TF refuses (the golden is the exception class's name). Values are
nests of arrays; tests/test_linalg_operators.py evaluates the same strings with
`tf` bound to distflow.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from make_goldens_core import OUT, nest_encode, tf  # noqa: E402

rng = np.random.RandomState(20262)


def lit(*shape, lo=-1.0, hi=1.0):
    """A float32 constant as source text."""
    return f"tf.constant({np.round(rng.uniform(lo, hi, shape), 3).tolist()})"


def spd(n, batch=()):
    a = rng.uniform(-1, 1, batch + (n, n))
    m = a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    return f"tf.constant({np.round(m, 3).tolist()})"


def well(n, batch=()):
    m = rng.uniform(-1, 1, batch + (n, n)) + 3 * np.eye(n)
    return f"tf.constant({np.round(m, 3).tolist()})"


L = "tf.linalg."
FULL3 = f"{L}LinearOperatorFullMatrix({well(3)})"
DIAG3 = f"{L}LinearOperatorDiag({lit(3, lo=0.5, hi=2.0)})"
SPD2 = f"{L}LinearOperatorFullMatrix({spd(2)}, is_self_adjoint=True, is_positive_definite=True)"

# name -> (constructor source, square and invertible)
OPERATORS = {
    "full": (FULL3, True),
    "full_batch": (f"{L}LinearOperatorFullMatrix({well(3, (2,))})", True),
    "full_spd": (SPD2, True),
    "full_rect": (f"{L}LinearOperatorFullMatrix({lit(2, 3)})", False),
    "diag": (DIAG3, True),
    "diag_batch": (f"{L}LinearOperatorDiag({lit(2, 3, lo=0.5, hi=2.0)}, "
                   "is_positive_definite=True)", True),
    "identity": (f"{L}LinearOperatorIdentity(3)", True),
    "identity_batch": (f"{L}LinearOperatorIdentity(3, batch_shape=[2])", True),
    "scaled_identity": (f"{L}LinearOperatorScaledIdentity(3, -1.5)", True),
    "scaled_identity_batch": (f"{L}LinearOperatorScaledIdentity(3, [2.0, 0.5])", True),
    "lower_triangular": (f"{L}LinearOperatorLowerTriangular({well(3)})", True),
    "lower_triangular_batch": (f"{L}LinearOperatorLowerTriangular({well(3, (2,))})", True),
    "composition": (f"{L}LinearOperatorComposition([{FULL3}, {DIAG3}])", True),
    "adjoint": (f"{L}LinearOperatorAdjoint({FULL3})", True),
    "inversion": (f"{L}LinearOperatorInversion({FULL3})", True),
    "block_diag": (f"{L}LinearOperatorBlockDiag([{SPD2}, "
                   f"{L}LinearOperatorFullMatrix({well(1)})])", True),
    "block_diag_rect": (f"{L}LinearOperatorBlockDiag([{L}LinearOperatorFullMatrix("
                        f"{lit(2, 3)}), {DIAG3}], is_square=False)", False),
    "block_lower_triangular": (f"{L}LinearOperatorBlockLowerTriangular([[{SPD2}], "
                               f"[{L}LinearOperatorFullMatrix({lit(1, 2)}), "
                               f"{L}LinearOperatorFullMatrix({well(1)})]])", True),
    "kronecker": (f"{L}LinearOperatorKronecker([{L}LinearOperatorFullMatrix({well(1)}), "
                  f"{SPD2}, {L}LinearOperatorFullMatrix({well(2)})])", True),
    "kronecker_batch": (f"{L}LinearOperatorKronecker([{L}LinearOperatorFullMatrix("
                        f"{well(2, (2,))}), {DIAG3}, {L}LinearOperatorFullMatrix({lit(1, 2)})])",
                        False),
    "kronecker_4": (f"{L}LinearOperatorKronecker([{SPD2}, "
                    f"{L}LinearOperatorFullMatrix({well(2)})])", True),
    "toeplitz": (f"{L}LinearOperatorToeplitz({lit(3, lo=2.0, hi=3.0)}, {lit(3)})", True),
    "tridiag_compact": (f"{L}LinearOperatorTridiag({lit(3, 3, lo=0.2, hi=0.5)} + "
                        "tf.constant([[0.0], [2.0], [0.0]]))", True),
    "tridiag_sequence": (f"{L}LinearOperatorTridiag([{lit(3)}, {lit(3, lo=2.0, hi=3.0)}, "
                         f"{lit(3)}], diagonals_format='sequence')", True),
    "tridiag_matrix": (f"{L}LinearOperatorTridiag({well(3)}, diagonals_format='matrix')",
                       True),
    "circulant": (f"{L}LinearOperatorCirculant({lit(4, lo=1.0, hi=2.0)}, "
                  "input_output_dtype=tf.float32)", True),
    "circulant_batch_float64": (f"{L}LinearOperatorCirculant({lit(2, 3, lo=1.0, hi=2.0)}, "
                                "input_output_dtype=tf.float64)", True),
    "circulant_2d": (f"{L}LinearOperatorCirculant2D({lit(2, 3, lo=1.0, hi=2.0)}, "
                     "input_output_dtype=tf.float32)", True),
    "circulant_3d": (f"{L}LinearOperatorCirculant3D({lit(2, 2, 3, lo=1.0, hi=2.0)}, "
                     "input_output_dtype=tf.float32)", True),
    "zeros": (f"{L}LinearOperatorZeros(3)", False),
    "zeros_rect_batch": (f"{L}LinearOperatorZeros(3, 2, batch_shape=[2], is_square=False, "
                         "is_self_adjoint=False)", False),
    "householder": (f"{L}LinearOperatorHouseholder({lit(3)})", True),
    "permutation": (f"{L}LinearOperatorPermutation([2, 0, 3, 1])", True),
    "permutation_odd": (f"{L}LinearOperatorPermutation([1, 0, 2])", True),
    "low_rank_update": (f"{L}LinearOperatorLowRankUpdate({DIAG3}, {lit(3, 2)})", True),
    "low_rank_update_diag_v": (f"{L}LinearOperatorLowRankUpdate({FULL3}, {lit(3, 1)}, "
                               f"diag_update={lit(1, lo=0.5, hi=1.0)}, v={lit(3, 1)})", True),
}

# name -> (method source with OP for the operator and X/V for operands, needs invertible)
METHODS = {
    "to_dense": ("OP.to_dense()", False),
    "shape": ("list(OP.shape)", False),
    "batch_shape": ("list(OP.batch_shape)", False),
    "dims": ("[int(OP.range_dimension), int(OP.domain_dimension), OP.tensor_rank]", False),
    "shape_tensor": ("OP.shape_tensor()", False),
    "matmul": ("OP.matmul(X)", False),
    "matmul_adjoint": ("OP.matmul(XA, adjoint=True)", False),
    "matmul_adjoint_arg": ("OP.matmul(tf.linalg.matrix_transpose(X), adjoint_arg=True)", False),
    "matmul_operator": ("(OP @ X)", False),
    "matvec": ("OP.matvec(X[..., 0])", False),
    "diag_part": ("OP.diag_part()", False),
    "trace": ("OP.trace()", False),
    "add_to_tensor": ("OP.add_to_tensor(tf.ones_like(OP.to_dense()))", False),
    "adjoint": ("OP.adjoint().to_dense()", False),
    "H": ("OP.H.matmul(XA)", False),
    "solve": ("OP.solve(XA)", True),
    "solve_adjoint": ("OP.solve(X, adjoint=True)", True),
    "solve_adjoint_arg": ("OP.solve(tf.linalg.matrix_transpose(XA), adjoint_arg=True)", True),
    "solvevec": ("OP.solvevec(XA[..., 0])", True),
    "determinant": ("OP.determinant()", True),
    "log_abs_determinant": ("OP.log_abs_determinant()", True),
    "inverse": ("OP.inverse().to_dense()", True),
}


def operands(op):
    """X: rhs of the operator's domain size, XA: of its range size (2 columns)."""
    shape = op.shape.as_list()
    x = np.round(rng.uniform(-1, 1, (shape[-1], 2)), 3).tolist()
    xa = np.round(rng.uniform(-1, 1, (shape[-2], 2)), 3).tolist()
    return f"tf.constant({x})", f"tf.constant({xa})"


def cases():
    out = {}
    for name, (src, invertible) in OPERATORS.items():
        x, xa = operands(eval(src))  # noqa: S307  (our own fixed case strings)
        for method, (pattern, needs_inverse) in METHODS.items():
            if needs_inverse and not invertible:
                continue
            expr = pattern.replace("XA", xa).replace("X", x).replace("OP", f"({src})")
            out[f"{name}.{method}"] = expr
    return out


BANDS = lit(2, 4, lo=1.0, hi=2.0)
EXTRA = {
    "composition_of_operators": f"({FULL3} @ {DIAG3}).to_dense()",
    "cholesky_full": f"{SPD2}.cholesky().to_dense()",
    "cholesky_diag": f"{L}LinearOperatorDiag([4.0, 9.0], is_self_adjoint=True, "
                     "is_positive_definite=True).cholesky().to_dense()",
    "zeros_determinant": f"{L}LinearOperatorZeros(3, batch_shape=[2]).determinant()",
    "zeros_log_abs_determinant": f"{L}LinearOperatorZeros(2).log_abs_determinant()",
    "identity_log_abs_determinant": f"{L}LinearOperatorIdentity(2, batch_shape=[3])"
                                    ".log_abs_determinant()",
    "matmul_batch_rhs": f"{FULL3}.matmul({lit(2, 3, 2)})",
    "diag_float64": f"{L}LinearOperatorDiag(tf.constant([1.0, 2.0], tf.float64))"
                    ".solvevec(tf.constant([3.0, 4.0], tf.float64))",
    "identity_float64": f"{L}LinearOperatorIdentity(2, dtype=tf.float64).to_dense()",
    "kronecker_batch_solve": f"{L}LinearOperatorKronecker([{L}LinearOperatorFullMatrix("
                             f"{well(2, (2,))}), {DIAG3}]).solve({lit(2, 6, 2)}, adjoint=True)",
    "block_lower_triangular_solve": f"{L}LinearOperatorBlockLowerTriangular([[{SPD2}], "
                                    f"[{L}LinearOperatorFullMatrix({lit(3, 2)}), {DIAG3}]])"
                                    f".solvevec({lit(5)})",
    "cond": f"{FULL3}.cond()",
    "asserts_pass": f"[{SPD2}.assert_non_singular(), {SPD2}.assert_self_adjoint(), "
                    f"{SPD2}.assert_positive_definite()] == [None, None, None]",
    "circulant_float64_solvevec": f"{L}LinearOperatorCirculant(tf.constant([2.0, 1.5, 3.0], "
                                  "tf.float64), input_output_dtype=tf.float64).solvevec("
                                  "tf.constant([1.0, -2.0, 0.5], tf.float64))",
    "circulant_float32_spectrum_float64_io": f"{L}LinearOperatorCirculant2D({lit(2, 2)} + 2.0,"
                                             " input_output_dtype=tf.float64).to_dense()",
    "eigvals_spd": f"{SPD2}.eigvals()",
    "hints_identity": f"[{L}LinearOperatorIdentity(2).is_positive_definite, "
                      f"{L}LinearOperatorIdentity(2).is_self_adjoint]",
    "hints_pd_implies_non_singular": f"{SPD2}.is_non_singular",
    "hints_square_from_shape": f"[{L}LinearOperatorFullMatrix({lit(2, 3)}).is_square, "
                               f"{FULL3}.is_square]",
    "banded_lower": f"tf.linalg.banded_triangular_solve({BANDS}, {lit(4, 2)})",
    "banded_upper": f"tf.linalg.banded_triangular_solve({BANDS}, {lit(4, 2)}, lower=False)",
    "banded_lower_adjoint": f"tf.linalg.banded_triangular_solve({BANDS}, {lit(4, 2)}, "
                            "adjoint=True)",
    "banded_batch_three": f"tf.linalg.banded_triangular_solve({lit(2, 3, 4, lo=1.0, hi=2.0)}, "
                          f"{lit(2, 4, 1)})",
    "banded_upper_three": f"tf.linalg.banded_triangular_solve({lit(3, 4, lo=1.0, hi=2.0)}, "
                          f"{lit(4, 3)}, lower=False, adjoint=True)",
    "banded_one_band": f"tf.linalg.banded_triangular_solve({lit(1, 3, lo=1.0, hi=2.0)}, "
                       f"{lit(3, 2)})",
}

ERRORS = {
    "cholesky_not_hinted": f"{FULL3}.cholesky()",
    "inverse_of_singular_hint": f"{L}LinearOperatorFullMatrix({well(2)}, "
                                "is_non_singular=False).inverse()",
    "identity_hint_false": f"{L}LinearOperatorIdentity(2, is_self_adjoint=False)",
    "diag_not_square": f"{L}LinearOperatorDiag([1.0, 2.0], is_square=False)",
    "pd_but_singular": f"{L}LinearOperatorFullMatrix({well(2)}, is_non_singular=False, "
                       "is_positive_definite=True)",
    "matmul_wrong_size": f"{FULL3}.matmul({lit(2, 2)})",
    "zeros_square_hint_mismatch": f"{L}LinearOperatorZeros(3, 2)",
    "zeros_self_adjoint_not_square": f"{L}LinearOperatorZeros(3, 2, is_square=False)",
    "assert_non_singular": f"{L}LinearOperatorFullMatrix([[1.0, 2.0], [2.0, 4.0]])"
                           ".assert_non_singular()",
    "assert_positive_definite_unhinted": f"{FULL3}.assert_positive_definite()",
    "assert_positive_definite": f"{L}LinearOperatorFullMatrix([[1.0, 2.0], [2.0, 1.0]], "
                                "is_self_adjoint=True).assert_positive_definite()",
    "assert_self_adjoint": f"{FULL3}.assert_self_adjoint()",
    "block_lower_triangular_mismatch": f"{L}LinearOperatorBlockLowerTriangular([[{SPD2}], "
                                       f"[{L}LinearOperatorFullMatrix({lit(1, 2)}), {DIAG3}]])",
    "circulant_hint_not_self_adjoint": f"{L}LinearOperatorCirculant([1.0, 2.0], "
                                       "input_output_dtype=tf.float32, is_self_adjoint=False)",
    "tridiag_bad_format": f"{L}LinearOperatorTridiag({well(3)}, diagonals_format='banded')",
}


def error_class(src):
    try:
        eval(src)  # noqa: S307  (our own fixed case strings)
    except Exception as e:  # noqa: BLE001  (the class TF raised is the golden)
        return type(e).__name__
    return None


def golden(src):
    """The expression's value, or the class of the exception TF raises."""
    try:
        return {"src": src, "value": nest_encode(eval(src))}  # noqa: S307
    except Exception as e:  # noqa: BLE001  (the class TF raised is the golden)
        return {"src": src, "error": type(e).__name__}


def main():
    src = {name: golden(s) for name, s in {**cases(), **EXTRA}.items()}
    src.update({name: {"src": s, "error": error_class(s)} for name, s in ERRORS.items()})
    with open(os.path.join(OUT, "linalg_operators.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "src": src}, f, indent=0)
    print(f"{len(src)} expressions; errors: "
          f"{ {n: g['error'] for n, g in src.items() if 'error' in g} }", file=sys.stderr)


if __name__ == "__main__":
    main()
