"""Writes tests/goldens/core/*.json from real TensorFlow: the fixtures the core tests compare to.

Run by hand with an interpreter that has TensorFlow 2.21 (never a dependency):

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfenv/bin/python tools/make_goldens_core.py

Each op case names a function by its attribute path under `tf` (the same path
exists under `distflow`), its inputs (fixed, seeded arrays stored in the file)
and keyword arguments. The file records the forward values and dtypes, the
gradients of sum(cotangent * outputs) with respect to every float input, and,
for error cases, the exception TensorFlow raised. `api_names.json` lists TF's
public names per namespace for tools/api_coverage.py.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "goldens", "core")
rng = np.random.RandomState(20260)


def A(x, dtype="float32"):
    """An array input, stored with its dtype."""
    return {"a": np.asarray(x).astype(dtype).tolist(), "dtype": dtype}


def R(*shape, lo=-2.0, hi=2.0):
    return A(rng.uniform(lo, hi, shape))


def P(*shape):
    return R(*shape, lo=0.5, hi=2.0)


def U(*shape):  # inside (-1, 1)
    return R(*shape, lo=-0.9, hi=0.9)


def D(*shape):  # distinct values (no ties)
    return A(rng.permutation(int(np.prod(shape))).reshape(shape) * 0.25 - 1.0)


def I(x):  # noqa: E743
    return A(x, "int32")


def B(x):
    return A(x, "bool")


def C(fn, *args, grad=True, **kwargs):
    return {"fn": fn, "args": list(args), "kwargs": kwargs, "grad": grad}


SPD = A(np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]))

CASES = {
    # ------------------------------------------------------------ elementwise
    "sin": C("math.sin", R(3, 4)), "cos": C("math.cos", R(3, 4)), "tan": C("math.tan", U(3, 4)),
    "asin": C("math.asin", U(3, 4)), "acos": C("math.acos", U(3, 4)),
    "atan": C("math.atan", R(3, 4)), "sinh": C("math.sinh", R(3, 4)),
    "cosh": C("math.cosh", R(3, 4)), "asinh": C("math.asinh", R(3, 4)),
    "acosh": C("math.acosh", R(3, 4, lo=1.2, hi=3.0)), "atanh": C("math.atanh", U(3, 4)),
    "atan2": C("math.atan2", R(3, 4), R(3, 4)),
    "atan2_broadcast": C("math.atan2", R(3, 4), P(4)),
    "floor": C("math.floor", R(3, 4)), "ceil": C("math.ceil", R(3, 4)),
    "round_half": C("math.round", A([0.5, 1.5, 2.5, -0.5, -1.5, 0.4]), grad=False),
    "mod": C("math.mod", R(3, 4), P(3, 4)), "floormod": C("math.floormod", R(3, 4), P(4)),
    "floormod_int": C("math.floormod", I([7, -7, 7, -7]), I([3, 3, -3, -3])),
    "floordiv": C("math.floordiv", R(3, 4), P(3, 4), grad=False),
    "floordiv_int": C("math.floordiv", I([7, -7, 7, -7]), I([3, 3, -3, -3])),
    "truncatediv": C("truncatediv", I([7, -7, 7, -7]), I([3, 3, -3, -3])),
    "truncatemod": C("truncatemod", I([7, -7, 7, -7]), I([3, 3, -3, -3])),
    "pow": C("math.pow", P(3, 4), R(3, 4)),
    "reciprocal": C("math.reciprocal", P(3, 4)),
    "erf": C("math.erf", R(3, 4)), "erfc": C("math.erfc", R(3, 4)),
    "lgamma": C("math.lgamma", P(3, 4)), "lgamma_big": C("math.lgamma", R(5, lo=3.0, hi=9.0)),
    "digamma": C("math.digamma", R(6, lo=0.3, hi=8.0), grad=False),
    "log1p": C("math.log1p", P(3, 4)), "expm1": C("math.expm1", R(3, 4)),
    "is_nan": C("math.is_nan", A([1.0, np.nan, np.inf, -np.inf])),
    "is_inf": C("math.is_inf", A([1.0, np.nan, np.inf, -np.inf])),
    "is_finite": C("math.is_finite", A([1.0, np.nan, np.inf, -np.inf])),
    "logical_not": C("math.logical_not", B([True, False])),
    "logical_xor": C("math.logical_xor", B([True, False, True, False]),
                     B([True, True, False, False])),
    "divide_no_nan": C("math.divide_no_nan", R(4), A([2.0, 0.0, -1.0, 0.0])),
    "squared_difference": C("math.squared_difference", R(3, 4), R(4)),
    "softplus": C("math.softplus", R(3, 4)), "softsign": C("math.softsign", R(3, 4)),
    "l2_normalize": C("math.l2_normalize", R(3, 4), axis=1),
    "l2_normalize_all": C("math.l2_normalize", R(3, 4)),
    "xlogy": C("math.xlogy", A([0.0, 1.0, 2.0]), P(3)),
    "sigmoid": C("math.sigmoid", R(3, 4)),
    # ------------------------------------------------------------ reductions
    "reduce_prod": C("math.reduce_prod", R(3, 4), axis=1),
    "reduce_prod_zero": C("math.reduce_prod", A([[1.0, 0.0, 3.0], [0.0, 0.0, 2.0]]), axis=1),
    "reduce_prod_all": C("math.reduce_prod", R(2, 3)),
    "reduce_prod_keep": C("math.reduce_prod", R(2, 3, 2), axis=[0, 2], keepdims=True),
    "reduce_any": C("math.reduce_any", B([[True, False], [False, False]]), axis=1),
    "reduce_all": C("math.reduce_all", B([[True, False], [True, True]]), axis=1),
    "reduce_all_float": C("math.reduce_all", R(2)),
    "reduce_euclidean_norm": C("math.reduce_euclidean_norm", R(3, 4), axis=0),
    "count_nonzero": C("math.count_nonzero", A([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]), axis=1),
    "argmax": C("math.argmax", D(3, 4), axis=1), "argmin": C("math.argmin", D(3, 4)),
    # ------------------------------------------------------------ scans
    "cumsum": C("math.cumsum", R(3, 4), axis=1),
    "cumsum_excl_rev": C("math.cumsum", R(3, 4), axis=0, exclusive=True, reverse=True),
    "cumprod": C("math.cumprod", P(3, 4), axis=1),
    "cumprod_excl_rev": C("math.cumprod", P(2, 4), axis=1, exclusive=True, reverse=True),
    "cumulative_logsumexp": C("math.cumulative_logsumexp", R(5)),
    # ------------------------------------------------------------ segments
    "segment_sum": C("math.segment_sum", R(5, 2), I([0, 0, 1, 3, 3])),
    "segment_mean": C("math.segment_mean", R(5, 2), I([0, 0, 1, 3, 3])),
    "segment_max": C("math.segment_max", D(5, 2), I([0, 0, 1, 3, 3])),
    "segment_min": C("math.segment_min", D(5, 2), I([0, 0, 1, 3, 3])),
    "segment_prod": C("math.segment_prod", R(5, 2), I([0, 0, 1, 3, 3]), grad=False),
    "unsorted_segment_prod": C("math.unsorted_segment_prod", R(5), I([2, 0, 2, -1, 0]), 4,
                               grad=False),
    "segment_sum_unsorted_error": C("math.segment_sum", R(3), I([1, 0, 1])),
    "unsorted_segment_sum": C("math.unsorted_segment_sum", R(5, 2), I([2, 0, 2, -1, 0]), 4),
    "unsorted_segment_max": C("math.unsorted_segment_max", D(5), I([2, 0, 2, 1, 0]), 4),
    "unsorted_segment_min": C("math.unsorted_segment_min", D(5), I([2, 0, 2, 1, 0]), 3),
    "unsorted_segment_mean": C("math.unsorted_segment_mean", R(4, 2), I([1, 0, 1, 1]), 3),
    # ------------------------------------------------------------ counting/ranking
    "bincount": C("math.bincount", I([1, 1, 3, 0, 5])),
    "bincount_weights": C("math.bincount", I([1, 1, 3]), weights=A([0.5, 1.0, 2.0]),
                          minlength=5, grad=False),
    "confusion_matrix": C("math.confusion_matrix", I([0, 1, 2, 1]), I([0, 2, 2, 1])),
    "confusion_matrix_n": C("math.confusion_matrix", I([0, 1]), I([1, 1]), num_classes=4),
    "top_k": C("math.top_k", D(3, 5), k=2), "top_k_unsorted": C("math.top_k", D(2, 4), k=4),
    "top_k_error": C("math.top_k", D(2, 3), k=4),
    "in_top_k": C("math.in_top_k", I([0, 3, 1]), D(3, 4), k=2),
    "sort": C("sort", D(3, 4)), "sort_desc": C("sort", D(3, 4), axis=0, direction="DESCENDING"),
    "argsort": C("argsort", D(3, 4)), "argsort_desc": C("argsort", D(5), direction="DESCENDING"),
    "sort_bad_direction": C("sort", D(3), direction="UP"),
    # ------------------------------------------------------------ top-level array ops
    "einsum_matmul": C("einsum", "ij,jk->ik", R(2, 3), R(3, 4)),
    "einsum_batch": C("einsum", "bij,bjk->bik", R(2, 2, 3), R(2, 3, 2)),
    "einsum_trace_out": C("einsum", "ij->j", R(3, 4)),
    "einsum_ellipsis": C("einsum", "...ij,...jk->...ik", R(2, 2, 3), R(2, 3, 2)),
    "einsum_outer": C("einsum", "i,j->ij", R(3), R(4)),
    "einsum_implicit": C("einsum", "ij,jk", R(2, 3), R(3, 2)),
    "einsum_three": C("einsum", "ij,jk,kl->il", R(2, 3), R(3, 2), R(2, 2)),
    "einsum_sum_all": C("einsum", "ij,ij->", R(2, 3), R(2, 3)),
    "einsum_bad": C("einsum", "ij,jk->ik", R(2, 3), R(4, 2)),
    "tensordot": C("tensordot", R(2, 3, 4), R(4, 3), axes=1),
    "tensordot_lists": C("tensordot", R(2, 3, 4), R(4, 3), axes=[[1, 2], [1, 0]]),
    "boolean_mask": C("boolean_mask", R(4, 2), B([True, False, True, True])),
    "boolean_mask_2d": C("boolean_mask", R(2, 3), B([[True, False, True], [False, True, True]])),
    "boolean_mask_axis": C("boolean_mask", R(2, 3), B([True, False, True]), axis=1),
    "gather_nd": C("gather_nd", R(3, 4), I([[0, 1], [2, 3], [0, 1]])),
    "gather_nd_rows": C("gather_nd", R(3, 4), I([[2], [0]])),
    "gather_nd_batch": C("gather_nd", R(2, 3, 4), I([[[1], [0]], [[2], [2]]]), batch_dims=1),
    "scatter_nd": C("scatter_nd", I([[1], [3], [1]]), R(3, 2), I([5, 2])),
    "tensor_scatter_nd_update": C("tensor_scatter_nd_update", R(4, 3), I([[1], [3]]), R(2, 3)),
    "tensor_scatter_nd_add": C("tensor_scatter_nd_add", R(4, 3), I([[1], [3], [1]]), R(3, 3)),
    "tensor_scatter_nd_sub": C("tensor_scatter_nd_sub", R(4), I([[1], [2]]), R(2)),
    "unstack": C("unstack", R(3, 2)), "unstack_axis": C("unstack", R(2, 3), axis=1),
    "eye": C("eye", 3), "eye_rect": C("eye", 2, num_columns=3, batch_shape=[2]),
    "linspace": C("linspace", 0.0, 1.0, 5), "meshgrid": C("meshgrid", R(3), R(2)),
    "meshgrid_ij": C("meshgrid", R(3), R(2), indexing="ij"),
    "reverse": C("reverse", R(3, 4), axis=[1]), "reverse_both": C("reverse", R(2, 3), [0, 1]),
    "roll": C("roll", R(5), shift=2, axis=0),
    "roll_multi": C("roll", R(3, 4), shift=[1, -1], axis=[0, 1]),
    "repeat": C("repeat", R(3, 2), repeats=2, axis=0),
    "repeat_list": C("repeat", R(3), repeats=[1, 0, 3], axis=0),
    "repeat_flat": C("repeat", R(2, 2), repeats=2),
    "broadcast_to": C("broadcast_to", R(3), [2, 3]),
    "broadcast_to_bad": C("broadcast_to", R(3), [2, 4]),
    "identity": C("identity", R(3, 4)),
    "clip_by_norm": C("clip_by_norm", R(3, 4), 1.5),
    "clip_by_norm_axes": C("clip_by_norm", R(3, 4), 1.0, axes=[1]),
    "clip_by_global_norm": C("clip_by_global_norm", [R(3), R(2, 2)], 1.0),
    "sequence_mask": C("sequence_mask", I([1, 3, 2]), 4),
    "size": C("size", R(3, 4)), "rank": C("rank", R(3, 4)),
    # ------------------------------------------------------------ more top-level / tf.math
    "slice": C("slice", R(3, 4), [1, 0], [2, -1]),
    "strided_slice": C("strided_slice", R(4, 5), [0, 1], [4, 5], [2, 2]),
    "strided_slice_masks": C("strided_slice", R(4, 5), [1, 2], [3, 4], [1, 1], begin_mask=1,
                             shrink_axis_mask=2),
    "unique": C("unique", I([4, 1, 4, 2, 1])),
    "unique_with_counts": C("unique_with_counts", I([4, 1, 4, 2, 1])),
    "searchsorted": C("searchsorted", A([[0.0, 1.0, 2.0], [1.0, 5.0, 9.0]]),
                      A([[1.0, 2.5], [0.0, 9.0]])),
    "searchsorted_right": C("searchsorted", A([0.0, 1.0, 1.0, 2.0]), A([1.0]), side="right"),
    "unravel_index": C("unravel_index", I([1, 5, 7]), I([2, 4])),
    "reverse_sequence": C("reverse_sequence", R(2, 4, 2), I([3, 1]), seq_axis=1, batch_axis=0),
    "histogram_fixed_width": C("histogram_fixed_width", A([-1.0, 0.0, 1.5, 2.0, 5.0, 15.0]),
                               A([0.0, 5.0]), nbins=5),
    "histogram_fixed_width_bins": C("histogram_fixed_width_bins", A([-1.0, 0.0, 1.5, 4.9]),
                                    A([0.0, 5.0]), nbins=5),
    "parallel_stack": C("parallel_stack", [R(2), R(2)], grad=False),
    "tensor_scatter_nd_max": C("tensor_scatter_nd_max", D(4), I([[1], [3]]), A([9.0, -9.0]),
                               grad=False),
    "tensor_scatter_nd_min": C("tensor_scatter_nd_min", D(4), I([[1], [3]]), A([9.0, -9.0]),
                               grad=False),
    "broadcast_dynamic_shape": C("broadcast_dynamic_shape", I([2, 1, 3]), I([4, 3])),
    "accumulate_n": C("math.accumulate_n", [R(2, 2), R(2, 2)]),
    "invert_permutation": C("math.invert_permutation", I([2, 0, 3, 1])),
    "is_non_decreasing": C("math.is_non_decreasing", A([1.0, 1.0, 2.0])),
    "is_strictly_increasing": C("math.is_strictly_increasing", A([1.0, 1.0, 2.0])),
    "reciprocal_no_nan": C("math.reciprocal_no_nan", A([2.0, 0.0, -4.0])),
    "zero_fraction": C("math.zero_fraction", A([0.0, 1.0, 0.0, 3.0])),
    "xdivy": C("math.xdivy", A([0.0, 1.0, 2.0]), P(3)),
    "xlog1py": C("math.xlog1py", A([0.0, 1.0, 2.0]), P(3)),
    "log_sigmoid": C("math.log_sigmoid", R(3, 4)),
    "rint": C("math.rint", A([0.5, 1.5, 2.5, -0.5, 1.2]), grad=False),
    "lbeta": C("math.lbeta", P(2, 3)),
    "erfinv": C("math.erfinv", U(6)),
    "erfcinv": C("math.erfcinv", R(6, lo=0.05, hi=1.95)),
    "ndtri": C("math.ndtri", R(6, lo=0.01, hi=0.99)),
    "unsorted_segment_sqrt_n": C("math.unsorted_segment_sqrt_n", R(5, 2), I([1, 0, 1, 1, 0]), 3),
    "approx_max_k": C("math.approx_max_k", D(2, 5), 2),
    "invert_permutation_bad": C("math.invert_permutation", I([0, 0, 1])),
    # ------------------------------------------------------------ linalg
    "linalg_inv": C("linalg.inv", SPD), "linalg_det": C("linalg.det", SPD),
    "linalg_det_batch": C("linalg.det", R(2, 3, 3)),
    "linalg_slogdet": C("linalg.slogdet", R(3, 3)), "linalg_logdet": C("linalg.logdet", SPD),
    "linalg_solve": C("linalg.solve", SPD, R(3, 2)),
    "linalg_cholesky": C("linalg.cholesky", SPD),
    "linalg_triangular_solve": C("linalg.triangular_solve", SPD, R(3, 2)),
    "linalg_triangular_solve_upper": C("linalg.triangular_solve", SPD, R(3, 1), lower=False),
    "linalg_cholesky_solve": C("linalg.cholesky_solve", A(np.linalg.cholesky(
        np.array(SPD["a"]))), R(3, 2)),
    "linalg_norm": C("linalg.norm", R(3, 4)), "linalg_norm_axis": C("linalg.norm", R(3, 4), axis=1),
    "linalg_norm_1": C("linalg.norm", R(3, 4), ord=1, axis=1),
    "linalg_norm_inf": C("linalg.norm", R(3, 4), ord=np.inf, axis=1),
    "linalg_norm_fro": C("linalg.norm", R(3, 4), ord="fro", axis=[0, 1]),
    "linalg_norm_mat1": C("linalg.norm", R(3, 4), ord=1, axis=[0, 1]),
    "linalg_trace": C("linalg.trace", R(2, 3, 3)), "linalg_diag": C("linalg.diag", R(2, 3)),
    "linalg_diag_part": C("linalg.diag_part", R(3, 4)),
    "linalg_set_diag": C("linalg.set_diag", R(3, 3), R(3)),
    "linalg_band_part": C("linalg.band_part", R(4, 4), 1, 0),
    "linalg_band_part_all": C("linalg.band_part", R(4, 4), -1, 2),
    "linalg_matvec": C("linalg.matvec", R(3, 4), R(4)),
    "linalg_matrix_transpose": C("linalg.matrix_transpose", R(2, 3, 4)),
    "linalg_cross": C("linalg.cross", R(2, 3), R(2, 3)),
    "linalg_eigvalsh": C("linalg.eigvalsh", SPD),
    "linalg_svd_values": C("linalg.svd", R(3, 2), compute_uv=False),
    "linalg_pinv": C("linalg.pinv", R(3, 2), grad=False),
    "linalg_lstsq": C("linalg.lstsq", R(4, 2), R(4, 1)),
    "linalg_global_norm": C("linalg.global_norm", [R(3), R(2, 2)]),
    "linalg_normalize": C("linalg.normalize", R(3, 4), axis=1),
    "linalg_matrix_rank": C("linalg.matrix_rank", A([[1.0, 2.0], [2.0, 4.0]])),
    "linalg_tensor_diag": C("linalg.tensor_diag", R(2, 2)),
    "linalg_tensor_diag_part": C("linalg.tensor_diag_part", R(2, 3, 2, 3)),
    "linalg_tridiagonal_matmul": C("linalg.tridiagonal_matmul", R(3, 4), R(4, 2)),
    "linalg_tridiagonal_solve": C("linalg.tridiagonal_solve",
                                  A([[1.0, 0.5, 0.2, 0.0], [4.0, 5.0, 6.0, 7.0],
                                     [0.0, 0.3, 0.1, 0.4]]), R(4, 2), grad=False),
    "linalg_lu": C("linalg.lu", R(3, 3), grad=False),
    "linalg_lu_batch": C("linalg.lu", R(2, 4, 4), grad=False),
    "linalg_expm": C("linalg.expm", R(3, 3)),
    "linalg_expm_big": C("linalg.expm", A(np.array([[4.0, 2.0], [-3.0, 1.0]]))),
    "linalg_sqrtm": C("linalg.sqrtm", SPD),
    "linalg_sqrtm_nonsym": C("linalg.sqrtm", A([[4.0, 1.0], [0.5, 3.0]])),
    "linalg_inv_singular": C("linalg.inv", A([[1.0, 2.0], [2.0, 4.0]])),
    "linalg_matmul": C("linalg.matmul", R(2, 3), R(3, 2)),
    "linalg_l2_normalize": C("linalg.l2_normalize", R(3, 2), axis=0),
}


# Dataset pipelines: each is Python source evaluated with `tf` bound to the library
# (TensorFlow here, distflow in tests/test_data_tf_api.py); the golden is the list of
# elements, each a nest of arrays.
DATA_CASES = {
    "padded_batch": "tf.data.Dataset.range(1, 6).map(lambda n: tf.fill([n], n))"
                    ".padded_batch(2)",
    "padded_batch_shapes": "tf.data.Dataset.range(1, 4).map(lambda n: tf.fill([n], n))"
                           ".padded_batch(2, padded_shapes=[5], padding_values=tf.constant(-1, "
                           "tf.int64), drop_remainder=True)",
    "padded_batch_tuple": "tf.data.Dataset.range(1, 4).map(lambda n: (tf.fill([n], n), n))"
                          ".padded_batch(3)",
    "window_flat": "tf.data.Dataset.range(7).window(3, shift=2, drop_remainder=True)"
                   ".flat_map(lambda w: w.batch(3))",
    "window_stride": "tf.data.Dataset.range(10).window(3, shift=3, stride=2)"
                     ".flat_map(lambda w: w.batch(3))",
    "window_tuple": "tf.data.Dataset.zip((tf.data.Dataset.range(5), tf.data.Dataset.range(5, 10)))"
                    ".window(2).flat_map(lambda a, b: tf.data.Dataset.zip((a.batch(2), "
                    "b.batch(2))))",
    "interleave": "tf.data.Dataset.range(1, 6).interleave(lambda x: "
                  "tf.data.Dataset.from_tensors(x).repeat(3), cycle_length=2, block_length=2)",
    "interleave_uneven": "tf.data.Dataset.range(1, 5).interleave(lambda x: "
                         "tf.data.Dataset.range(x), cycle_length=3)",
    "flat_map": "tf.data.Dataset.from_tensor_slices([[1, 2], [3, 4]])"
                ".flat_map(tf.data.Dataset.from_tensor_slices)",
    "enumerate": "tf.data.Dataset.from_tensor_slices([7, 8, 9]).enumerate(start=5)",
    "scan": "tf.data.Dataset.range(5).scan(tf.constant(0, tf.int64), "
            "lambda s, x: (s + x, s * 10))",
    "zip_concat": "tf.data.Dataset.zip(tf.data.Dataset.range(3), tf.data.Dataset.range(3, 6))"
                  ".concatenate(tf.data.Dataset.zip((tf.data.Dataset.range(1), "
                  "tf.data.Dataset.range(1))))",
    "unbatch_rebatch": "tf.data.Dataset.range(10).batch(4).rebatch(3)",
    "bucket": "tf.data.Dataset.from_tensor_slices([1, 5, 2, 7, 3, 8, 1]).map(lambda n: "
              "tf.fill([n], n)).bucket_by_sequence_length(lambda x: tf.shape(x)[0], [3, 6], "
              "[2, 2, 1])",
    "bucket_boundary": "tf.data.Dataset.from_tensor_slices([1, 4, 2, 5]).map(lambda n: "
                       "tf.fill([n], n)).bucket_by_sequence_length(lambda x: tf.shape(x)[0], "
                       "[3, 7], [2, 2, 2], pad_to_bucket_boundary=True)",
    "group_by_window": "tf.data.Dataset.range(10).group_by_window(lambda x: x % 3, "
                       "lambda k, ds: ds.batch(2), window_size=2)",
    "take_while": "tf.data.Dataset.range(10).take_while(lambda x: x < 4)",
    "unique": "tf.data.Dataset.from_tensor_slices([1, 2, 1, 3, 2]).unique()",
    "choose": "tf.data.Dataset.choose_from_datasets([tf.data.Dataset.range(3), "
              "tf.data.Dataset.range(10, 13)], tf.data.Dataset.from_tensor_slices("
              "tf.constant([0, 1, 1, 0], tf.int64)))",
    "from_generator_types": "tf.data.Dataset.from_generator(lambda: iter([(1, [1.0, 2.0]), "
                            "(2, [3.0, 4.0])]), output_types=(tf.int64, tf.float32), "
                            "output_shapes=((), (2,)))",
    "counter": "tf.data.Dataset.counter(3, 2).take(3)",
    "map_parallel": "tf.data.Dataset.range(6).map(lambda x: x * x, num_parallel_calls=3)",
    "prefetch": "tf.data.Dataset.range(5).batch(2).prefetch(tf.data.AUTOTUNE)",
    "slices_python_floats": "tf.data.Dataset.from_tensor_slices([[1.5, 2.0], [3.0, 4.0]])",
    "slices_dict": "tf.data.Dataset.from_tensor_slices({'x': [1, 2], 'y': [[0.5], [1.5]]})"
                   ".batch(2)",
    "map_python_scalars": "tf.data.Dataset.range(3).map(lambda x: (x, 2.5, 1))",
    "map_cast": "tf.data.Dataset.range(4).map(lambda x: tf.cast(x, tf.float32) / 2)",
    "filter_batch_drop": "tf.data.Dataset.range(10).filter(lambda x: x % 3 != 0)"
                         ".batch(3, drop_remainder=True)",
    "from_tensors_tuple": "tf.data.Dataset.from_tensors(([1, 2], 3.0)).repeat(2)",
    "range_args": "tf.data.Dataset.range(2, 9, 3)",
    "shard_skip_take": "tf.data.Dataset.range(20).shard(3, 1).skip(1).take(3)",
}
DATA_REDUCE = {
    "reduce_sum": "tf.data.Dataset.range(5).reduce(tf.constant(0, tf.int64), "
                  "lambda s, x: s + x)",
    "reduce_tuple": "tf.data.Dataset.range(1, 4).reduce((tf.constant(0, tf.int64), "
                    "tf.constant(1, tf.int64)), lambda s, x: (s[0] + x, s[1] * x))",
    "cardinality_batch": "tf.data.Dataset.range(10).batch(3).cardinality()",
    "cardinality_repeat": "tf.data.Dataset.range(10).repeat().cardinality()",
    "cardinality_filter": "tf.data.Dataset.range(10).filter(lambda x: x > 2).cardinality()",
    "single_element": "tf.data.Dataset.from_tensors(tf.constant([1, 2])).get_single_element()",
}


# Jacobians: `f` (source, a function of one tensor) at `x`; kind "jacobian" or "batch".
TAPE_CASES = {
    "jacobian_elementwise": ("lambda x: tf.math.sin(x) * tf.reduce_sum(x)", "jacobian", R(3)),
    "jacobian_matrix": ("lambda x: tf.matmul(x, tf.transpose(x))", "jacobian", R(2, 3)),
    "batch_jacobian_tanh": ("lambda x: tf.tanh(tf.matmul(x, tf.constant([[1.0, -2.0], "
                            "[0.5, 0.25], [3.0, 1.0]])))", "batch", R(4, 3)),
    "batch_jacobian_softmax": ("lambda x: tf.nn.softmax(x * 2.0)", "batch", R(2, 3)),
}


# Random draws: only shapes and dtypes are comparable (the generators differ).
RANDOM_CASES = {
    "categorical": "tf.random.categorical(tf.math.log([[0.5, 0.5], [0.1, 0.9]]), 5)",
    "categorical_int32": "tf.random.categorical([[0.0, 1.0]], 3, dtype=tf.int32)",
    "gamma": "tf.random.gamma([7], alpha=[1.0, 2.0], beta=[[1.0], [3.0]])",
    "gamma_f64": "tf.random.gamma([2, 3], 0.5, dtype=tf.float64)",
    "poisson": "tf.random.poisson([4], lam=[1.0, 5.0, 9.0])",
    "poisson_int": "tf.random.poisson([3], 2.0, dtype=tf.int32)",
    "truncated_normal": "tf.random.truncated_normal([2, 5], stddev=3.0)",
    "shuffle": "tf.random.shuffle(tf.constant([[1, 2], [3, 4], [5, 6]]))",
    "stateless_normal": "tf.random.stateless_normal([3, 2], seed=[1, 2])",
    "stateless_uniform_int": "tf.random.stateless_uniform([4], seed=[1, 2], minval=0, "
                             "maxval=10, dtype=tf.int32)",
    "stateless_truncated_normal": "tf.random.stateless_truncated_normal([5], seed=[3, 4])",
    "stateless_categorical": "tf.random.stateless_categorical([[0.0, 1.0, 2.0]], 4, "
                             "seed=[5, 6])",
    "stateless_binomial": "tf.random.stateless_binomial([3], seed=[1, 1], counts=10.0, "
                          "probs=0.5)",
    "stateless_poisson": "tf.random.stateless_poisson([4, 2], seed=[1, 2], lam=[1.0, 3.0])",
    "stateless_gamma": "tf.random.stateless_gamma([5, 2], seed=[1, 2], alpha=[1.0, 2.0])",
    "generator_normal": "tf.random.Generator.from_seed(1).normal([2, 3])",
    "generator_uniform_int": "tf.random.Generator.from_seed(1).uniform([4], minval=1, "
                             "maxval=5, dtype=tf.int64)",
    "generator_make_seeds": "tf.random.Generator.from_seed(1).make_seeds(3)",
}


# Functional and list-valued ops: Python source evaluated with `tf` bound to the library.
FUNCTIONAL_CASES = {
    "map_fn": "tf.map_fn(lambda r: tf.reduce_sum(r * r), tf.constant([[1.0, 2.0], [3.0, 4.0]]))",
    "map_fn_tuple": "tf.map_fn(lambda ab: ab[0] * ab[1], (tf.constant([1.0, 2.0]), "
                    "tf.constant([3.0, 4.0])), fn_output_signature=tf.float32)",
    "foldl": "tf.foldl(lambda a, x: a * 2.0 + x, tf.constant([1.0, 2.0, 3.0]))",
    "foldl_init": "tf.foldl(lambda a, x: a - x, tf.constant([1, 2, 3]), initializer=10)",
    "foldr": "tf.foldr(lambda a, x: a * 2.0 + x, tf.constant([1.0, 2.0, 3.0]))",
    "scan": "tf.scan(lambda a, x: a + x, tf.constant([1, 2, 3, 4]))",
    "scan_init_reverse": "tf.scan(lambda a, x: a * x, tf.constant([1.0, 2.0, 3.0]), "
                         "initializer=tf.constant(1.0), reverse=True)",
    "identity_n": "tf.identity_n([tf.constant([1, 2]), tf.constant(3.0)])",
    "shape_n": "tf.shape_n([tf.zeros([2, 3]), tf.zeros([4])])",
    "realdiv": "tf.realdiv(tf.constant([1.0, 3.0]), tf.constant([2.0, 4.0]))",
    "dynamic_partition": "tf.dynamic_partition(tf.constant([10.0, 20.0, 30.0, 40.0]), "
                         "tf.constant([0, 1, 0, 2]), 3)",
    "dynamic_stitch": "tf.dynamic_stitch([tf.constant([0, 2]), tf.constant([1, 3])], "
                      "[tf.constant([[1.0], [2.0]]), tf.constant([[3.0], [4.0]])])",
    "nextafter": "tf.math.nextafter(tf.constant([1.0, 0.0]), tf.constant([2.0, -1.0]))",
    "bessel_i0": "tf.math.bessel_i0(tf.constant([-1.0, 0.0, 0.5, 3.0]))",
    "bessel_i0e": "tf.math.bessel_i0e(tf.constant([-1.0, 0.0, 0.5, 3.0]))",
    # top-level control and checking helpers, casts, tf.bitwise
    "case": "tf.case([(tf.constant(False), lambda: tf.constant(1.0)), "
            "(tf.constant(True), lambda: tf.constant(2.0))], default=lambda: tf.constant(3.0))",
    "case_default": "tf.case([(tf.constant(False), lambda: tf.constant(1))], "
                    "default=lambda: tf.constant(3))",
    "switch_case": "tf.switch_case(tf.constant(1), [lambda: tf.constant(10), "
                   "lambda: tf.constant(20), lambda: tf.constant(30)])",
    "switch_case_out_of_range": "tf.switch_case(tf.constant(7), [lambda: tf.constant(10), "
                                "lambda: tf.constant(20)])",
    "switch_case_default": "tf.switch_case(tf.constant(5), {0: lambda: tf.constant(1.0)}, "
                           "default=lambda: tf.constant(-1.0))",
    "tuple": "tf.tuple([tf.constant([1.0, 2.0]), tf.constant(3)])",
    "guarantee_const": "tf.guarantee_const(tf.constant([1.0, 2.0]))",
    "ensure_shape": "tf.ensure_shape(tf.constant([[1.0, 2.0]]), [None, 2])",
    "get_static_value": "tf.get_static_value(tf.constant([1, 2, 3]))",
    "saturate_cast_f2i": "tf.saturate_cast(tf.constant([-1e10, -3.7, 3.7, 1e10]), tf.int32)",
    "saturate_cast_i2u8": "tf.saturate_cast(tf.constant([-5, 7, 300]), tf.uint8)",
    "saturate_cast_f2u8": "tf.saturate_cast(tf.constant([-5.5, 7.2, 300.0]), tf.uint8)",
    "saturate_cast_f2h": "tf.saturate_cast(tf.constant([1e6, -1e6, 1.5]), tf.float16)",
    "bitcast_narrow": "tf.bitcast(tf.constant([1.0, -2.0]), tf.int32)",
    "bitcast_split": "tf.bitcast(tf.constant([1, 258], tf.int32), tf.uint8)",
    "bitcast_join": "tf.bitcast(tf.constant([[1, 0, 0, 0], [2, 1, 0, 0]], tf.uint8), tf.int32)",
    "bitwise_and": "tf.bitwise.bitwise_and(tf.constant([12, 10]), tf.constant([10, 6]))",
    "bitwise_or": "tf.bitwise.bitwise_or(tf.constant([12, 10]), tf.constant([10, 6]))",
    "bitwise_xor": "tf.bitwise.bitwise_xor(tf.constant([12, 10]), tf.constant([10, 6]))",
    "bitwise_invert": "tf.bitwise.invert(tf.constant([0, 5, -3]))",
    "bitwise_invert_u8": "tf.bitwise.invert(tf.constant([0, 5], tf.uint8))",
    "left_shift": "tf.bitwise.left_shift(tf.constant([1, 3, -4]), tf.constant([2, 1, 1]))",
    "right_shift": "tf.bitwise.right_shift(tf.constant([16, 7, -8]), tf.constant([2, 1, 1]))",
    "check_numerics": "tf.debugging.check_numerics(tf.constant([1.0, 2.0]), 'x')",
    "space_to_batch": "tf.space_to_batch(tf.reshape(tf.range(2 * 4 * 3 * 2, dtype=tf.float32), "
                      "[2, 4, 3, 2]), [2, 2], [[0, 0], [1, 0]])",
    "space_to_batch_nd_1d": "tf.space_to_batch_nd(tf.reshape(tf.range(6, dtype=tf.int32), "
                            "[1, 6, 1]), [3], [[0, 3]])",
    "batch_to_space": "tf.batch_to_space(tf.reshape(tf.range(8 * 2 * 2, dtype=tf.float32), "
                      "[8, 2, 2, 1]), [2, 2], [[1, 0], [0, 1]])",
    "nn_space_to_batch": "tf.nn.space_to_batch(tf.reshape(tf.range(16, dtype=tf.float32), "
                         "[1, 4, 4, 1]), [2, 2], [[0, 0], [0, 0]])",
    "required_space_to_batch_paddings": "tf.required_space_to_batch_paddings([5, 4], [2, 3], "
                                        "[[1, 0], [0, 2]])",
    "approx_top_k": "tf.approx_top_k(tf.constant([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]]), 2)",
    # (TF's CPU kernel has only the last dimension and max-k; min-k is tested against NumPy)
    "nn_approx_max_k": "tf.nn.approx_max_k(tf.constant([4.0, 9.0, 1.0, 7.0]), 2)",
    "tensor_array_stack": "tf.TensorArray(tf.float32, size=2).write(0, [1.0, 2.0])"
                          ".write(1, [3.0, 4.0]).stack()",
    "tensor_array_gather": "tf.TensorArray(tf.int32, size=3).unstack([[1, 2], [3, 4], [5, 6]])"
                           ".gather([2, 0])",
    "tensor_array_concat": "tf.TensorArray(tf.float32, size=0, dynamic_size=True, "
                           "infer_shape=False).split([1.0, 2.0, 3.0], [1, 2]).concat()",
    "tensor_array_read_size": "[tf.TensorArray(tf.float32, size=0, dynamic_size=True)"
                              ".write(2, 5.0).read(2), tf.TensorArray(tf.float32, size=0, "
                              "dynamic_size=True).write(2, 5.0).size()]",
    "matrix_square_root": "tf.matrix_square_root(tf.constant([[4.0, 1.0], [1.0, 3.0]]))",
}

# Calls TF refuses: the golden is the exception class's name.
ERROR_CASES = {
    "assert_equal": "tf.debugging.assert_equal(tf.constant([1, 2]), tf.constant([1, 3]))",
    "assert_greater": "tf.debugging.assert_greater(tf.constant([1, 2]), tf.constant(1))",
    "assert_less": "tf.debugging.assert_less(tf.constant([1, 2]), tf.constant(2))",
    "assert_rank": "tf.debugging.assert_rank(tf.constant([1, 2]), 2)",
    "Assert": "tf.Assert(tf.constant(False), [tf.constant(1)])",
    "ensure_shape": "tf.ensure_shape(tf.constant([[1.0, 2.0]]), [None, 3])",
    "check_numerics_nan": "tf.debugging.check_numerics(tf.constant([1.0, float('nan')]), 'x')",
    "tensor_array_write_out_of_range": "tf.TensorArray(tf.float32, size=1).write(1, 1.0)",
    "batch_to_space_bad_batch": "tf.batch_to_space(tf.zeros([3, 1, 1, 1]), [2, 2], "
                                "[[0, 0], [0, 0]])",
    "space_to_batch_not_divisible": "tf.space_to_batch(tf.zeros([1, 3, 3, 1]), [2, 2], "
                                    "[[0, 0], [0, 0]])",
    "case_exclusive": "tf.case([(tf.constant(True), lambda: tf.constant(1)), "
                      "(tf.constant(True), lambda: tf.constant(2))], exclusive=True)",
}

# Calls TF accepts and returns nothing for (checks that pass, ops with no output).
NONE_CASES = [
    "tf.debugging.assert_equal(tf.constant([1, 2]), tf.constant([1, 2]))",
    "tf.debugging.assert_greater(tf.constant([2, 3]), tf.constant(1))",
    "tf.debugging.assert_less(tf.constant([1, 2]), tf.constant(3))",
    "tf.debugging.assert_rank(tf.constant([1, 2]), 1)",
    "tf.Assert(tf.constant(True), [tf.constant(1)])",
    "tf.assert_equal(tf.constant(1), 1)",
]


def run_errors():
    out = {}
    for name, src in ERROR_CASES.items():
        try:
            eval(src)  # noqa: S307  (our own fixed case strings)
            out[name] = {"src": src, "error": None}
        except Exception as e:  # noqa: BLE001  (the class TF raised is the golden)
            out[name] = {"src": src, "error": type(e).__name__}
    for src in NONE_CASES:
        result = eval(src)  # noqa: S307
        out[src] = {"src": src, "none": result is None}
    return out


def run_functional():
    return {name: {"src": src, "value": nest_encode(eval(src))}  # noqa: S307
            for name, src in FUNCTIONAL_CASES.items()}


def run_random():
    out = {}
    for name, src in RANDOM_CASES.items():
        t = eval(src)  # noqa: S307  (our own fixed case strings)
        out[name] = {"src": src, "shape": list(t.shape), "dtype": t.dtype.name}
    return out


def run_tape():
    out = {}
    for name, (src, kind, x) in TAPE_CASES.items():
        t = decode(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(t)
            y = eval(src)(t)  # noqa: S307  (our own fixed case strings)
        j = tape.jacobian(y, t) if kind == "jacobian" else tape.batch_jacobian(y, t)
        out[name] = {"src": src, "kind": kind, "x": x, "jacobian": encode(j)}
    return out


def run_data():
    out = {}
    for name, src in DATA_CASES.items():
        ds = eval(src)  # noqa: S307  (our own fixed case strings)
        out[name] = {"src": src, "elements": [nest_encode(e) for e in ds.as_numpy_iterator()]}
    for name, src in DATA_REDUCE.items():
        out[name] = {"src": src, "value": nest_encode(eval(src))}  # noqa: S307
    return out


def nest_encode(x):
    if isinstance(x, (tuple, list)):
        return [nest_encode(v) for v in x]
    if isinstance(x, dict):
        return {k: nest_encode(v) for k, v in x.items()}
    arr = np.asarray(x)
    if arr.dtype.kind in "OSU":
        return text_encode(arr)
    return {"a": arr.tolist(), "dtype": arr.dtype.name}


def text_encode(arr):
    """A string array as JSON: its bytes decoded as UTF-8, dtype "string"."""
    text = np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else str(b),
                        otypes=[object])(arr)
    return {"a": text.tolist(), "dtype": "string", "shape": list(arr.shape), "finite": None}


# ------------------------------------------------------------------- runner


def decode(x):
    if isinstance(x, dict) and x.get("dtype") == "string":
        return tf.constant(x["a"], tf.string)
    if isinstance(x, dict) and "a" in x:
        return tf.constant(np.asarray(x["a"], dtype=x["dtype"]))
    if isinstance(x, list):
        return [decode(v) for v in x]
    return x


def resolve(path):
    obj = tf
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def flatten(out):
    if isinstance(out, (list, tuple)):
        return [leaf for item in out for leaf in flatten(item)]
    return [out]


def encode(t):
    arr = np.asarray(t)
    if arr.dtype.kind in "OSU":
        return text_encode(arr)
    dtype = arr.dtype.name
    if arr.dtype.kind == "f":
        arr = np.where(np.isfinite(arr), arr, 0.0)  # json has no inf/nan: kept in "finite"
    return {"a": arr.tolist(), "dtype": dtype, "shape": list(arr.shape),
            "finite": np.isfinite(np.asarray(t)).tolist() if np.asarray(t).dtype.kind == "f"
            else None}


def cotangent(shape):
    n = int(np.prod(shape))
    return np.cos(np.arange(n, dtype=np.float64) + 1.0).reshape(shape).astype(np.float32)


def S(x):
    """A string array input."""
    return {"a": np.asarray(x, dtype=object).tolist(), "dtype": "string"}


def run(case):
    fn = resolve(case["fn"])
    args = [decode(a) for a in case["args"]]
    kwargs = {k: decode(v) for k, v in case["kwargs"].items()}
    watched = [t for t in flatten(args) + flatten(list(kwargs.values()))
               if isinstance(t, tf.Tensor) and t.dtype.is_floating]
    try:
        with tf.GradientTape() as tape:
            tape.watch(watched)
            out = flatten(fn(*args, **kwargs))
    except Exception as e:  # the error case: record which exception TF raised
        return {"error": type(e).__name__, "message": str(e)[:200]}
    result = {"outputs": [encode(o) for o in out]}
    float_out = [o for o in out if o.dtype.is_floating]
    if case["grad"] and watched and float_out:
        grads = tape.gradient(float_out, watched,
                              output_gradients=[cotangent(o.shape) for o in float_out])
        result["grads"] = [None if g is None else encode(tf.convert_to_tensor(g))
                           for g in grads]
    return result


def api_names():
    spaces = {"tf": tf, "tf.math": tf.math, "tf.nn": tf.nn, "tf.random": tf.random,
              "tf.linalg": tf.linalg, "tf.data.Dataset": tf.data.Dataset,
              "tf.config": tf.config, "tf.train": tf.train, "tf.summary": tf.summary,
              "tf.io": tf.io, "tf.io.gfile": tf.io.gfile}
    return {k: sorted(n for n in dir(v) if not n.startswith("_")) for k, v in spaces.items()}


def main():
    os.makedirs(OUT, exist_ok=True)
    goldens = {}
    for name, case in CASES.items():
        goldens[name] = {**case, **run(case)}
    with open(os.path.join(OUT, "ops.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "cases": goldens}, f, indent=0)
    with open(os.path.join(OUT, "functional.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "cases": run_functional()}, f, indent=0)
    with open(os.path.join(OUT, "errors.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "cases": run_errors()}, f, indent=1)
    with open(os.path.join(OUT, "random.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "cases": run_random()}, f, indent=1)
    with open(os.path.join(OUT, "tape.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "cases": run_tape()}, f, indent=0)
    with open(os.path.join(OUT, "data.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "cases": run_data()}, f, indent=0)
    with open(os.path.join(OUT, "api_names.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "names": api_names()}, f, indent=1)
    errors = sorted(n for n, g in goldens.items() if "error" in g)
    print(f"{len(goldens)} cases ({len(errors)} error cases: {errors}) written to {OUT}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
