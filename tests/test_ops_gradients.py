"""Every registered primitive: gradient check against central differences, and forward
values against plain NumPy, over several shapes incl. broadcasting and non-contiguous inputs."""

import numpy as np
import pytest

import distflow as df
from distflow import conv_pool
from distflow.test_util import check_grads

rng = np.random.default_rng(1234)


def r(*shape):
    return rng.standard_normal(shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


def nc(*shape):
    """A non-contiguous array of the given shape (a transposed view)."""
    return rng.standard_normal(shape[::-1]).T


def away_from_zero(*shape):
    x = r(*shape)
    return np.where(np.abs(x) < 0.2, 0.5, x)


def distinct(*shape):
    return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.1 + 0.05


LABELS = rng.integers(0, 5, size=(4,))

# op name -> list of (function of tensors, inputs); every registered op must appear.
CASES = {
    "add": [(df.add, [r(3, 4), r(3, 4)]), (df.add, [r(3, 4), r(4)]), (df.add, [nc(3, 1), r(1, 5)])],
    "subtract": [(df.subtract, [r(2, 3), r(3)]), (df.subtract, [r(1), nc(2, 3)])],
    "multiply": [(df.multiply, [r(3, 4), r(3, 4)]), (df.multiply, [r(2, 1, 4), r(3, 1)])],
    "divide": [(df.divide, [r(3, 4), pos(3, 4)]), (df.divide, [r(2, 3), pos(3)])],
    "power": [(df.power, [pos(3, 4), r(3, 4)]), (df.power, [pos(2, 3), r(1)])],
    "maximum": [(df.maximum, [r(3, 4), r(3, 4)]), (df.maximum, [r(2, 3), r(3)])],
    "minimum": [(df.minimum, [r(3, 4), r(3, 4)]), (df.minimum, [r(2, 3), r(1)])],
    "matmul": [(df.matmul, [r(3, 4), r(4, 5)]), (df.matmul, [r(2, 3, 4), r(4, 2)]),
               (df.matmul, [r(4), r(4, 3)]), (df.matmul, [r(2, 3, 4), r(4)]),
               (df.matmul, [r(4), r(4)]), (df.matmul, [nc(3, 4), nc(4, 2)]),
               (df.matmul, [r(2, 1, 3, 4), r(5, 4, 2)])],
    "negative": [(df.negative, [r(3, 2)])],
    "exp": [(df.exp, [r(3, 4)])],
    "log": [(df.log, [pos(3, 4)])],
    "sqrt": [(df.sqrt, [pos(3, 4)])],
    "rsqrt": [(df.rsqrt, [pos(3, 4)])],
    "square": [(df.square, [nc(3, 4)])],
    "abs": [(df.abs, [away_from_zero(3, 4)])],
    "sign": [(df.sign, [away_from_zero(3, 4)])],
    "tanh": [(df.tanh, [r(3, 4)])],
    "sigmoid": [(df.sigmoid, [r(3, 4) * 5])],
    "relu": [(df.nn.relu, [away_from_zero(3, 4)])],
    "softplus": [(df.nn.softplus, [r(3, 4) * 5])],
    "leaky_relu": [(lambda x: df.nn.leaky_relu(x, 0.1), [away_from_zero(3, 4)])],
    "elu": [(df.nn.elu, [away_from_zero(3, 4)]), (df.nn.selu, [away_from_zero(2, 3)])],
    "gelu": [(df.nn.gelu, [r(3, 4)]), (lambda x: df.nn.gelu(x, approximate=True), [r(3, 4)])],
    "clip": [(lambda x: df.clip_by_value(x, -0.35, 0.35), [away_from_zero(4, 5)])],
    # float32 round trip: finite differences need a coarse step and tolerance
    "cast": [(lambda x: df.cast(df.cast(x, "float32"), "float64"), [r(3)],
              dict(eps=1e-2, rtol=1e-4, atol=1e-4))],
    "where": [(lambda x, y: df.where(np.array([True, False, True]), x, y), [r(2, 3), r(3)])],
    "sum": [(df.reduce_sum, [r(3, 4)]), (lambda x: df.sum(x, axis=0), [nc(3, 4)]),
            (lambda x: df.sum(x, axis=(0, 2), keepdims=True), [r(2, 3, 4)])],
    "mean": [(df.reduce_mean, [r(3, 4)]), (lambda x: df.mean(x, axis=-1), [r(3, 4)]),
             (df.var, [r(3, 4)]), (lambda x: df.std(x, axis=1), [r(3, 4)])],
    "max": [(lambda x: df.reduce_max(x, axis=1), [distinct(3, 4)]), (df.max, [distinct(3, 4)]),
            (lambda x: df.max(x, axis=0, keepdims=True), [distinct(3, 4)])],
    "min": [(lambda x: df.reduce_min(x, axis=0), [distinct(3, 4)])],
    "logsumexp": [(lambda x: df.logsumexp(x, axis=-1), [r(3, 4)]), (df.logsumexp, [r(3, 4)])],
    "reshape": [(lambda x: df.reshape(x, (4, 3)), [nc(3, 4)]),
                (lambda x: df.expand_dims(x, 1), [r(3, 4)]),
                (lambda x: df.squeeze(x, 1), [r(3, 1, 4)])],
    "transpose": [(df.transpose, [r(3, 4)]), (lambda x: df.transpose(x, (1, 2, 0)), [r(2, 3, 4)])],
    "concat": [(lambda a, b: df.concat([a, b], axis=1), [r(2, 3), r(2, 4)]),
               (lambda a, b: df.stack([a, b], axis=0), [r(2, 3), nc(2, 3)])],
    "tile": [(lambda x: df.tile(x, [2, 3]), [r(2, 3)])],
    "pad": [(lambda x: df.pad(x, [[1, 0], [2, 1]]), [r(2, 3)])],
    "getitem": [(lambda x: x[1:, ::2], [r(4, 5)]), (lambda x: x[np.array([0, 2, 0])], [r(3, 4)]),
                (lambda x: x[np.array([[True, False], [False, True]])], [r(2, 2)]),
                (lambda x: df.split(x, [1, 2], axis=1)[1], [r(3, 3)]),
                (lambda x: x[..., 1], [r(2, 3)])],
    "gather": [(lambda x: df.gather(x, np.array([[0, 2], [2, 2]])), [r(3, 4)]),
               (lambda x: df.gather(x, np.array([1, 0, 1]), axis=1), [r(3, 2)])],
    "softmax": [(df.nn.softmax, [r(3, 5)]), (lambda x: df.nn.softmax(x, axis=0), [r(3, 5)])],
    "log_softmax": [(df.nn.log_softmax, [r(3, 5)])],
    "softmax_cross_entropy_with_logits": [
        (lambda y, x: df.nn.softmax_cross_entropy_with_logits(y, x),
         [np.abs(r(4, 5)) / 3, r(4, 5)])],
    "sparse_softmax_cross_entropy_with_logits": [
        (lambda x: df.nn.sparse_softmax_cross_entropy_with_logits(LABELS, x), [r(4, 5)])],
    "sigmoid_cross_entropy_with_logits": [
        (df.nn.sigmoid_cross_entropy_with_logits, [rng.uniform(0, 1, (3, 4)), r(3, 4) * 3])],
    "conv2d": [
        (lambda x, w: df.nn.conv2d(x, w, 1, "VALID"), [r(2, 6, 5, 3), r(3, 2, 3, 4)]),
        (lambda x, w: df.nn.conv2d(x, w, 2, "same"), [r(2, 7, 7, 2), r(3, 3, 2, 3)]),
        (lambda x, w: df.nn.conv2d(x, w, 1, "SAME", dilations=2), [r(1, 7, 6, 2), r(3, 3, 2, 2)]),
        (lambda x, w: df.nn.conv2d(x, w, [1, 2, 1, 1], "valid"), [nc(2, 6, 6, 2), r(2, 2, 2, 3)]),
        (lambda x, w: df.nn.conv2d(x, w, 1, "VALID"), [nc(2, 4, 5, 3), r(1, 1, 3, 4)]),  # 1x1
        (lambda x, w: df.nn.conv2d(x, w, 2, "SAME"), [r(2, 5, 6, 3), r(1, 1, 3, 2)]),
        (lambda x, w: df.nn.conv2d(x, w, 1, "same"), [r(2, 5, 5, 4), r(3, 3, 2, 6)]),  # groups 2
        (lambda x, w: df.nn.conv2d(x, w, 1, "valid", dilations=[2, 1]),
         [r(2, 7, 6, 2), r(2, 3, 2, 3)])],
    "conv2d_backprop_input": [
        (lambda w, dy: df.conv2d_backprop_input_v2(np.zeros((2, 5, 6, 3)), w, dy, 2, "SAME"),
         [r(3, 3, 3, 4), r(2, 3, 3, 4)]),
        (lambda w, x: df.nn.conv2d_transpose(x, w, [1, 6, 5, 2], 1, "VALID", dilations=[1, 2]),
         [r(2, 2, 2, 3), r(1, 5, 3, 3)])],
    "conv2d_backprop_filter": [
        (lambda x, dy: df.conv2d_backprop_filter_v2(x, np.zeros((3, 3, 3, 4)), dy, 2, "SAME"),
         [r(2, 5, 6, 3), r(2, 3, 3, 4)]),
        (lambda x, dy: df.conv2d_backprop_filter_v2(x, np.zeros((2, 2, 2, 2)), dy, 1, "valid",
                                                    dilations=2), [nc(1, 7, 6, 2), r(1, 5, 4, 2)])],
    "conv2d_bias_relu": [
        (lambda x, w, b: df.nn.fused_conv2d(x, w, b, 1, "SAME", activation="relu"),
         [r(2, 5, 4, 3), r(3, 3, 3, 4), r(4)]),
        (lambda x, w, b: df.nn.fused_conv2d(x, w, b, 2, "valid"),
         [nc(2, 6, 5, 2), r(2, 2, 2, 3), r(3)])],
    "conv2d_bias_relu_max_pool": [
        (lambda x, w, b: conv_pool.conv2d_relu_max_pool(x, w, b, 1, "SAME", pool_size=2),
         [r(2, 5, 4, 3), r(3, 3, 3, 4), r(4)]),
        (lambda x, w, b: conv_pool.conv2d_relu_max_pool(x, w, b, 1, "valid", pool_size=(2, 1)),
         [nc(2, 6, 5, 9), r(2, 2, 9, 3), r(3)])],
    "max_pool2d": [(lambda x: df.nn.max_pool2d(x, 2, 2, "VALID"), [distinct(2, 4, 6, 3)]),
                   (lambda x: df.nn.max_pool2d(x, 3, 2, "SAME"), [distinct(2, 7, 7, 2)])],
    "avg_pool2d": [(lambda x: df.nn.avg_pool2d(x, 2, 2, "VALID"), [r(2, 4, 6, 3)]),
                   (lambda x: df.nn.avg_pool2d(x, 3, 2, "SAME"), [r(2, 7, 5, 2)])],
}


def unit(*shape):
    return rng.uniform(-0.8, 0.8, shape)


SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
IDS = np.array([2, 0, 2, -1, 0])

# tf.math, tf.linalg and top-level array ops (distflow/math_ops.py, array_ops.py, linalg.py)
CASES.update({
    "sin": [(df.math.sin, [r(3, 4)])], "cos": [(df.math.cos, [nc(3, 4)])],
    "tan": [(df.math.tan, [unit(3, 4)])], "asin": [(df.math.asin, [unit(3, 4)])],
    "acos": [(df.math.acos, [unit(3, 4)])], "atan": [(df.math.atan, [r(3, 4)])],
    "sinh": [(df.math.sinh, [r(3, 4)])], "cosh": [(df.math.cosh, [r(3, 4)])],
    "asinh": [(df.math.asinh, [r(3, 4)])], "acosh": [(df.math.acosh, [pos(3, 4) + 1])],
    "atanh": [(df.math.atanh, [unit(3, 4)])], "log1p": [(df.math.log1p, [pos(3, 4)])],
    "expm1": [(df.math.expm1, [r(3, 4)])], "reciprocal": [(df.math.reciprocal, [pos(3, 4)])],
    "erf": [(df.math.erf, [r(3, 4)])], "erfc": [(df.math.erfc, [r(3, 4)])],
    "lgamma": [(df.math.lgamma, [pos(3, 4)]), (df.math.lgamma, [pos(3) + 7])],
    "erfinv": [(df.math.erfinv, [unit(3, 4)])],
    "erfcinv": [(df.math.erfcinv, [unit(3, 4) + 1])],
    "ndtri": [(df.math.ndtri, [rng.uniform(0.1, 0.9, (3, 4))])],
    "floor": [(df.math.floor, [r(3, 4) + 0.5])], "ceil": [(df.math.ceil, [r(3, 4) + 0.5])],
    "softsign": [(df.math.softsign, [away_from_zero(3, 4)])],
    "atan2": [(df.math.atan2, [r(3, 4), r(4)])],
    "floormod": [(df.math.floormod, [pos(3, 4) * 3, pos(4)])],
    "divide_no_nan": [(lambda x, y: df.math.divide_no_nan(x, y * np.array([1, 0, 1])),
                       [r(2, 3), pos(3)])],
    "cumsum": [(lambda x: df.math.cumsum(x, axis=1), [r(3, 4)]),
               (lambda x: df.math.cumsum(x, 0, exclusive=True, reverse=True), [r(3, 4)])],
    "cumprod": [(lambda x: df.math.cumprod(x, axis=1), [pos(3, 4)]),
                (lambda x: df.math.cumprod(x, 1, exclusive=True, reverse=True), [pos(3, 4)])],
    "reduce_prod": [(lambda x: df.math.reduce_prod(x, axis=1), [r(3, 4)]),
                    (lambda x: df.math.reduce_prod(x, axis=[0, 2], keepdims=True), [r(2, 3, 2)]),
                    (df.math.reduce_prod, [np.array([1.5, 0.0, 2.0])])],
    "unsorted_segment_sum": [(lambda x: df.math.unsorted_segment_sum(x, IDS, 3), [r(5, 2)]),
                             (lambda x: df.math.segment_mean(x, np.array([0, 0, 2])),
                              [r(3, 2)])],
    "unsorted_segment_max": [(lambda x: df.math.unsorted_segment_max(x, IDS % 2, 2),
                              [distinct(5, 2)])],
    "unsorted_segment_min": [(lambda x: df.math.segment_min(x, np.array([0, 0, 1, 1, 1])),
                              [distinct(5)])],
    "take_along_axis": [(lambda x: df.math.top_k(x, 2).values, [distinct(3, 4)]),
                        (lambda x: df.sort(x, axis=0, direction="DESCENDING"), [distinct(3, 2)])],
    "einsum": [(lambda a, b: df.einsum("ij,jk->ik", a, b), [r(2, 3), r(3, 4)]),
               (lambda a, b: df.einsum("...ij,...jk", a, b), [r(2, 2, 3), r(3, 2)]),
               (lambda a, b, c: df.einsum("ij,jk,kl->il", a, b, c), [r(2, 3), r(3, 2), r(2, 2)]),
               (lambda a, b: df.einsum("i,j->", a, b), [r(3), r(2)])],
    "gather_nd": [(lambda x: df.gather_nd(x, np.array([[0, 1], [2, 3], [0, 1]])), [r(3, 4)]),
                  (lambda x: df.gather_nd(x, np.array([[[1], [0]], [[2], [2]]]), batch_dims=1),
                   [r(2, 3, 4)])],
    "scatter_nd": [(lambda u: df.scatter_nd(np.array([[1], [3], [1]]), u, [5, 2]), [r(3, 2)])],
    "tensor_scatter_nd_update": [(lambda t, u: df.tensor_scatter_nd_update(
        t, np.array([[1], [3]]), u), [r(4, 3), r(2, 3)])],
    "tensor_scatter_nd_add": [(lambda t, u: df.tensor_scatter_nd_add(
        t, np.array([[1], [3], [1]]), u), [r(4, 3), r(3, 3)])],
    "roll": [(lambda x: df.roll(x, [1, -2], [0, 1]), [r(3, 4)])],
    "broadcast_to": [(lambda x: df.broadcast_to(x, [2, 3, 4]), [r(3, 1)]),
                     (lambda a, b: df.meshgrid(a, b)[1], [r(3), r(2)])],
    "matrix_inverse": [(df.linalg.inv, [SPD + 0.1 * r(3, 3)])],
    "matrix_determinant": [(df.linalg.det, [r(2, 3, 3)])],
    "log_abs_determinant": [(lambda x: df.linalg.slogdet(x)[1], [SPD + 0.1 * r(3, 3)])],
    "matrix_solve": [(df.linalg.solve, [SPD + 0.1 * r(3, 3), r(3, 2)])],
    "cholesky": [(lambda x: df.linalg.cholesky((x + df.transpose(x)) / 2), [SPD + 0.1 * r(3, 3)])],
    "self_adjoint_eigvals": [(lambda x: df.linalg.eigvalsh((x + df.transpose(x)) / 2),
                              [SPD + 0.1 * r(3, 3)]),
                             (lambda x: df.linalg.eigh((x + df.transpose(x)) / 2)[0],
                              [SPD + 0.1 * r(3, 3)])],
    "svd_values": [(lambda x: df.linalg.svd(x, compute_uv=False), [r(4, 3)]),
                   (lambda x: df.linalg.svd(x)[0], [r(2, 3, 2)])],
    "matrix_triangular_solve": [
        (df.linalg.triangular_solve, [SPD + 0.1 * r(3, 3), r(3, 2)]),
        (lambda a, b: df.linalg.triangular_solve(a, b, adjoint=True), [SPD, r(3, 1)])],
})



def _sparsemax(axis: int):
    from distflow.keras.activations import sparsemax

    return lambda x: sparsemax(x, axis=axis)


# Keras's activations that are primitives of their own (distflow/keras/activations_extra.py).
CASES.update({
    "keras_sparsemax": [(_sparsemax(-1), [distinct(3, 4) * 3]),
                        (_sparsemax(0), [distinct(4, 2) * 3])],
    # composites of the top-level control helpers: gradients flow through the chosen branch
    "case": [(lambda x, y: df.case([(False, lambda: x * y), (True, lambda: df.sin(x) + y)],
                                   default=lambda: x), [r(3), r(3)])],
    "switch_case": [(lambda x: df.switch_case(1, [lambda: x, lambda: df.exp(x) * x]), [r(2, 3)])],
    "guarantee_const": [(lambda x: df.guarantee_const(x) * x, [r(3)])],
    "ensure_shape": [(lambda x: df.ensure_shape(x, [None, 3]) ** 2, [r(2, 3)])],
    "custom_gradient": [(df.custom_gradient(lambda x: (df.sin(x), lambda dy: dy * df.cos(x))),
                         [r(2, 3)])],
    "space_to_batch": [(lambda x: df.space_to_batch(x, [2, 2], [[1, 1], [0, 1]]), [r(2, 2, 3, 2)])],
    "batch_to_space": [(lambda x: df.batch_to_space(x, [2, 2], [[1, 0], [0, 1]]), [r(8, 2, 2, 1)])],
    "approx_top_k": [(lambda x: df.approx_top_k(x, 2)[0], [distinct(3, 4)]),
                     (lambda x: df.approx_top_k(x, 2, 0, is_max_k=False)[0], [distinct(3, 4)])],
    "tensor_array": [(lambda x: df.TensorArray(df.float64, size=0, dynamic_size=True)
                      .write(0, x).write(1, x * x).stack(), [r(3)])],
})

# ops whose VJP is intentionally undefined: backprop through them must raise.
NO_GRADIENT = {"round", "digamma", "bessel_i0", "bessel_i0e", "unsorted_segment_prod",
               "linalg_decomposition"}


def test_every_registered_op_has_a_gradient_test():
    missing = set(df.REGISTRY) - set(CASES) - NO_GRADIENT
    assert not missing, f"ops registered without a gradient test: {sorted(missing)}"


@pytest.mark.parametrize("name,index", [(n, i) for n, cs in CASES.items() for i in range(len(cs))])
def test_gradient_matches_central_differences(name, index):
    fn, args, *options = CASES[name][index]
    check_grads(fn, args, **(options[0] if options else {}))


def test_gradient_checker_detects_a_wrong_vjp():
    wrong = df.ops.Primitive("wrong", lambda x: (x * x, x), (lambda g, x: g * x,))  # 2x missing
    with pytest.raises(AssertionError, match="Gradient check failed"):
        check_grads(lambda t: wrong(t), [r(3)])


NUMPY_FORWARD = [
    (lambda a, b: df.add(a, b), lambda a, b: a + b, [r(3, 4), r(4)]),
    (lambda a, b: df.matmul(a, b), np.matmul, [r(2, 3, 4), r(4, 5)]),
    (lambda a: df.nn.softmax(a), lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True), [r(3, 4)]),
    (lambda a: df.logsumexp(a, axis=1), lambda a: np.log(np.exp(a).sum(1)), [r(3, 4)]),
    (lambda a: df.var(a, axis=0), lambda a: a.var(0), [r(5, 3)]),
    (lambda a: df.std(a), lambda a: a.std(), [r(5, 3)]),
    (lambda a: df.tile(a, [2, 1]), lambda a: np.tile(a, (2, 1)), [r(2, 3)]),
    (lambda a: df.nn.gelu(a), lambda a: a * 0.5 * (1 + np.vectorize(__import__("math").erf)(
        a / np.sqrt(2))), [r(4, 4)]),
    (lambda a: df.nn.elu(a), lambda a: np.where(a > 0, a, np.expm1(a)), [r(4, 4)]),
    (lambda a: df.nn.softplus(a), lambda a: np.log1p(np.exp(a)), [r(4, 4)]),
    (lambda a: df.nn.sigmoid(a), lambda a: 1 / (1 + np.exp(-a)), [r(4, 4) * 10]),
    (lambda a: df.pad(a, [[1, 2], [0, 1]]), lambda a: np.pad(a, ((1, 2), (0, 1))), [r(2, 2)]),
    (lambda a: df.nn.sparse_softmax_cross_entropy_with_logits(LABELS, a),
     lambda a: -(a - np.log(np.exp(a).sum(-1, keepdims=True)))[np.arange(4), LABELS], [r(4, 5)]),
    (lambda a, b: df.nn.sigmoid_cross_entropy_with_logits(a, b),
     lambda z, x: -(z * np.log(1 / (1 + np.exp(-x))) + (1 - z) * np.log(1 - 1 / (1 + np.exp(-x)))),
     [rng.uniform(0, 1, (3, 4)), r(3, 4)]),
]


@pytest.mark.parametrize("index", range(len(NUMPY_FORWARD)))
def test_forward_matches_numpy(index):
    op, ref, args = NUMPY_FORWARD[index]
    np.testing.assert_allclose(op(*[df.constant(a) for a in args]).numpy(), ref(*args),
                               rtol=1e-6, atol=1e-7)


def _naive_conv(x, w, stride, pads):
    x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    kh, kw, _, co = w.shape
    oh = (x.shape[1] - kh) // stride + 1
    ow = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


def test_conv2d_matches_naive_loops():
    x, w = r(2, 7, 7, 3), r(3, 3, 3, 4)
    np.testing.assert_allclose(df.nn.conv2d(x, w, 1, "VALID").numpy(),
                               _naive_conv(x, w, 1, ((0, 0), (0, 0))), rtol=1e-10)
    # TF SAME with stride 2 on size 7: output 4, total pad 2 -> (1, 1)
    np.testing.assert_allclose(df.nn.conv2d(x, w, 2, "SAME").numpy(),
                               _naive_conv(x, w, 2, ((1, 1), (1, 1))), rtol=1e-10)


def test_pooling_matches_naive():
    x = r(2, 4, 6, 3)
    expect = x.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4))
    np.testing.assert_allclose(df.nn.max_pool2d(x, 2, 2, "VALID").numpy(), expect)
    expect = x.reshape(2, 2, 2, 3, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(df.nn.avg_pool2d(x, 2, 2, "valid").numpy(), expect)
    # SAME average excludes padding: a 3x3 window at a 1x1 corner of a 2x2 input averages 4 values
    ones = np.ones((1, 2, 2, 1))
    np.testing.assert_allclose(df.nn.avg_pool2d(ones, 3, 1, "SAME").numpy(), ones)
