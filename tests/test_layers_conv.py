"""conv2d's code paths (1x1 GEMM, patch matrix in one or many batch slices, input
gradient by correlation or by scatter, groups, dilation, strides, 'same'/'valid',
non-contiguous inputs), the fused conv + bias + ReLU and max pooling: against the
previous implementation (kept below as the reference), loops and central differences."""

import threading

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import distflow as df
from distflow import intra_op, nn
from distflow.keras import layers
from distflow.test_util import check_grads

rng = np.random.default_rng(7)


# ------------------------------------------- the previous implementation (reference)


def old_conv2d(x, w, strides, dilations, mode):
    """im2col of the whole batch, one GEMM; input gradient scattered offset by offset."""
    kh, kw, cin, cout = w.shape
    oh, ow, ph, pw = nn._geometry(x.shape, kh, kw, strides, dilations, mode)
    xp = np.pad(x, ((0, 0), ph, pw, (0, 0)))
    s0, s1, s2, s3 = xp.strides
    cols = as_strided(xp, (x.shape[0], oh, ow, kh, kw, cin),
                      (s0, s1 * strides[0], s2 * strides[1], s1 * dilations[0],
                       s2 * dilations[1], s3)).reshape(-1, kh * kw * cin)
    out = (cols @ w.reshape(-1, cout)).reshape(x.shape[0], oh, ow, cout)

    def vjp(g):
        dcols = (g.reshape(-1, cout) @ w.reshape(-1, cout).T).reshape(
            x.shape[0], oh, ow, kh, kw, cin)
        dxp = np.zeros(xp.shape)
        for i in range(kh):
            for j in range(kw):
                dxp[nn._offset_slice(i, j, oh, ow, strides, dilations)] += dcols[:, :, :, i, j]
        dx = dxp[:, ph[0]:ph[0] + x.shape[1], pw[0]:pw[0] + x.shape[2]]
        return dx, (cols.T @ g.reshape(-1, cout)).reshape(w.shape)
    return out, vjp


def old_grouped(x, w, strides, dilations, mode):
    """Groups as separate old convolutions over channel blocks."""
    groups = x.shape[3] // w.shape[2]
    ci, co = w.shape[2], w.shape[3] // groups
    parts = [old_conv2d(x[..., i * ci:(i + 1) * ci], w[..., i * co:(i + 1) * co], strides,
                        dilations, mode) for i in range(groups)]

    def vjp(g):
        grads = [p[1](g[..., i * co:(i + 1) * co]) for i, p in enumerate(parts)]
        return (np.concatenate([d[0] for d in grads], -1),
                np.concatenate([d[1] for d in grads], -1))
    return np.concatenate([p[0] for p in parts], -1), vjp


# ---------------------------------------------------------------------- paths

# (input shape, kernel shape, strides, dilations, padding): every strategy of nn.py
PATHS = {
    "1x1": ((2, 5, 6, 9), (1, 1, 9, 4), (1, 1), (1, 1), "VALID"),
    "1x1_strided": ((2, 5, 6, 9), (1, 1, 9, 4), (2, 2), (1, 1), "SAME"),
    "1x1_same": ((2, 5, 6, 9), (1, 1, 9, 4), (1, 1), (1, 1), "SAME"),
    "3x3_same_correlate": ((3, 6, 5, 9), (3, 3, 9, 4), (1, 1), (1, 1), "SAME"),
    "3x3_valid_correlate": ((3, 6, 5, 9), (3, 3, 9, 4), (1, 1), (1, 1), "VALID"),
    "2x3_same_even_kernel": ((2, 6, 7, 9), (2, 3, 9, 3), (1, 1), (1, 1), "SAME"),
    "3x3_same_scatter_few_channels": ((3, 6, 5, 2), (3, 3, 2, 4), (1, 1), (1, 1), "SAME"),
    "3x3_strided_same": ((2, 7, 7, 9), (3, 3, 9, 3), (2, 2), (1, 1), "SAME"),
    "3x2_strided_valid": ((2, 8, 7, 9), (3, 2, 9, 3), (2, 3), (1, 1), "VALID"),
    "dilated_same": ((2, 8, 7, 9), (3, 3, 9, 3), (1, 1), (2, 2), "SAME"),
    "dilated_valid": ((2, 8, 7, 9), (3, 2, 9, 3), (1, 1), (2, 1), "VALID"),
    "groups_3": ((2, 5, 6, 9), (3, 3, 3, 6), (1, 1), (1, 1), "SAME"),
    "groups_9_depthwise": ((2, 5, 6, 9), (3, 3, 1, 9), (2, 1), (1, 1), "VALID"),
    "groups_dilated": ((2, 7, 6, 16), (3, 3, 8, 4), (1, 1), (2, 1), "SAME"),
    "one_channel_same": ((3, 6, 5, 1), (3, 3, 1, 4), (1, 1), (1, 1), "SAME"),
    "one_channel_strided_valid": ((2, 9, 8, 1), (3, 2, 1, 4), (2, 3), (1, 1), "VALID"),
    "three_channels_dilated": ((2, 9, 8, 3), (3, 3, 3, 4), (1, 1), (2, 2), "SAME"),
    "four_channels_strided_same": ((2, 7, 7, 4), (2, 3, 4, 3), (2, 2), (1, 1), "SAME"),
}


def _inputs(name, contiguous=True):
    xs, ws, *_ = PATHS[name]
    x = rng.standard_normal(xs[::-1]).T if not contiguous else rng.standard_normal(xs)
    return x, rng.standard_normal(ws)


@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("name", sorted(PATHS))
def test_conv2d_matches_the_previous_implementation(name, contiguous, slicing):
    x, w = _inputs(name, contiguous)
    _, _, strides, dilations, mode = PATHS[name]
    expect, vjp = old_grouped(x, w, strides, dilations, mode)
    xt, wt = df.constant(x), df.constant(w)
    with df.GradientTape() as tape:
        tape.watch([xt, wt])
        out = df.nn.conv2d(xt, wt, strides, mode, dilations=dilations)
    np.testing.assert_allclose(out.numpy(), expect, rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(expect.shape)
    dx, dw = tape.gradient(out, [xt, wt], output_gradients=df.constant(g))
    ex, ew = vjp(g)
    np.testing.assert_allclose(dx.numpy(), ex, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw.numpy(), ew, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PATHS))
def test_conv2d_gradients_match_central_differences(name, slicing):
    x, w = _inputs(name, contiguous=False)
    _, _, strides, dilations, mode = PATHS[name]
    check_grads(lambda a, b: df.nn.conv2d(a, b, strides, mode, dilations=dilations), [x, w])


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("name", ["3x3_same_correlate", "1x1", "groups_3", "3x3_strided_same"])
def test_fused_conv_bias_relu_equals_the_composition(name, relu):
    x, w = _inputs(name)
    _, _, strides, dilations, mode = PATHS[name]
    b = rng.standard_normal(w.shape[3])
    args = [df.constant(a) for a in (x, w, b)]

    def composed(xt, wt, bt):
        out = df.nn.bias_add(df.nn.conv2d(xt, wt, strides, mode, dilations=dilations), bt)
        return df.nn.relu(out) if relu else out

    def fused(xt, wt, bt):
        return df.nn.fused_conv2d(xt, wt, bt, strides, mode, dilations,
                                   activation="relu" if relu else None)
    results = []
    for fn in (composed, fused):
        with df.GradientTape() as tape:
            tape.watch(args)
            out = fn(*args)
        results.append([out.numpy()] + [t.numpy() for t in tape.gradient(
            out, args, output_gradients=df.constant(np.cos(out.numpy() * 3)))])
    for a, e in zip(results[1], results[0]):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)
    check_grads(fused, [x, w, b])


def test_scratch_buffers_are_per_thread_and_never_leak_into_results():
    x, w = _inputs("3x3_same_correlate")
    expect = old_conv2d(x, w, (1, 1), (1, 1), "SAME")[0]
    results, errors = {}, []

    def run(i):
        try:
            scale = i + 1.0
            for _ in range(20):
                out = df.nn.conv2d(x * scale, w, 1, "SAME").numpy()
            results[i] = out / scale
        except Exception as e:  # pragma: no cover  (reported below)
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for i in range(3):
        np.testing.assert_allclose(results[i], expect, rtol=1e-10, atol=1e-12)


def test_a_persistent_tape_gives_the_same_gradient_after_other_convolutions_ran():
    x, w = (df.constant(a) for a in _inputs("3x3_strided_same"))
    with df.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        loss = df.reduce_sum(df.square(df.nn.conv2d(x, w, 2, "SAME")))
    first = [g.numpy() for g in tape.gradient(loss, [x, w])]
    df.nn.conv2d(df.constant(rng.standard_normal(x.shape)), w, 2, "SAME")  # reuses scratch
    second = [g.numpy() for g in tape.gradient(loss, [x, w])]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_fused_relu_gradient_in_scratch_is_recomputed_once_another_op_took_the_buffer():
    x, w = _inputs("3x3_same_correlate")
    b = rng.standard_normal(w.shape[3])
    op, kw = nn._fused_conv2d, dict(strides=(1, 1), dilations=(1, 1), mode="SAME",
                                    rectify=True)
    out_a, res_a = op.forward(x, w, b, **kw)
    out_b, res_b = op.forward(-x, w, b, **kw)
    g = rng.standard_normal(out_a.shape)
    alone = [vjp(g, op.forward(x, w, b, **kw)[1]) for vjp in op.vjps]
    interleaved = [op.vjps[0](g, res_a), op.vjps[0](g, res_b)[:0]]  # B takes the buffer
    interleaved = [interleaved[0], op.vjps[1](g, res_a), op.vjps[2](g, res_a)]
    for a, e in zip(interleaved, alone):
        np.testing.assert_array_equal(a, e)


def test_conv2d_rejects_channels_that_do_not_split_into_groups():
    with pytest.raises(ValueError, match="not a multiple"):
        df.nn.conv2d(np.zeros((1, 4, 4, 5)), np.zeros((3, 3, 2, 4)), 1, "SAME")
    with pytest.raises(ValueError, match="groups"):
        df.nn.conv2d(np.zeros((1, 4, 4, 4)), np.zeros((3, 3, 2, 3)), 1, "SAME")


# --------------------------------------------------------------------- Keras layers


def test_conv2d_layer_groups_match_separate_convolutions():
    layer = layers.Conv2D(6, 3, padding="same", groups=3, activation="relu")
    x = rng.standard_normal((2, 5, 5, 9)).astype(np.float32)
    out = layer(x).numpy()
    kernel, bias = (v.numpy() for v in layer.weights)
    assert kernel.shape == (3, 3, 3, 6)
    expect = np.maximum(old_grouped(x.astype(np.float64), kernel.astype(np.float64), (1, 1),
                                    (1, 1), "SAME")[0] + bias, 0)
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)
    assert layer.get_config()["groups"] == 3
    assert layers.Conv2D.from_config(layer.get_config()).groups == 3


def test_conv_layer_group_errors_quote_the_values():
    with pytest.raises(ValueError, match="groups=4, filters=6"):
        layers.Conv2D(6, 3, groups=4)
    with pytest.raises(ValueError, match="groups=2"):
        layers.Conv2D(4, 3, groups=2)(np.zeros((1, 5, 5, 3), np.float32))


@pytest.mark.parametrize("activation", ["relu", None, "tanh"])
def test_conv1d_and_conv2d_layers_train_the_same_through_the_fused_path(activation):
    """The layer's fused path (relu / linear) and the composed one (tanh) give the
    gradients of the plain ops."""
    for layer, shape in ((layers.Conv2D(3, 3, padding="same", activation=activation), (2, 5, 4, 2)),
                         (layers.Conv1D(3, 3, padding="causal", activation=activation),
                          (2, 7, 2))):
        x = df.constant(rng.standard_normal(shape).astype(np.float32))
        layer(x)
        with df.GradientTape() as tape:
            out = layer(x)
            loss = df.reduce_sum(out * out)
        grads = tape.gradient(loss, layer.trainable_weights)
        with df.GradientTape() as tape:
            image, kernel, args = layer.as_image(x)
            ref = layer.from_image(df.nn.bias_add(df.nn.conv2d(image, kernel, **args),
                                                  layer.bias))
            ref = layer.activation(ref)
            loss = df.reduce_sum(ref * ref)
        expect = tape.gradient(loss, layer.trainable_weights)
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
        for a, e in zip(grads, expect):
            np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- max pool


def old_max_pool_grad(x, g, k, s, mode):
    """The previous rule: a boolean 'taken' mask, the first maximum of a window wins."""
    oh, ow, ph, pw = nn._geometry(x.shape, k, k, (s, s), (1, 1), mode)
    xp = np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=-np.inf)
    out = nn._windows(xp, k, k, oh, ow, (s, s), (1, 1)).max(axis=(3, 4))
    dxp, taken = np.zeros(xp.shape), np.zeros(out.shape, bool)
    for i in range(k):
        for j in range(k):
            sl = nn._offset_slice(i, j, oh, ow, (s, s), (1, 1))
            hit = (xp[sl] == out) & ~taken
            taken |= hit
            dxp[sl] += g * hit
    return out, dxp[:, ph[0]:ph[0] + x.shape[1], pw[0]:pw[0] + x.shape[2]]


@pytest.mark.parametrize("k,s,mode,shape", [(2, 2, "VALID", (2, 6, 8, 3)),
                                            (2, 2, "VALID", (2, 7, 9, 3)),
                                            (3, 2, "SAME", (2, 7, 6, 2)),
                                            (2, 1, "VALID", (1, 5, 5, 2)),
                                            (3, 3, "SAME", (2, 7, 8, 2)),
                                            (3, 3, "VALID", (2, 8, 7, 2)),
                                            (1, 1, "VALID", (2, 3, 4, 2))])
@pytest.mark.parametrize("contiguous", [True, False])
def test_max_pool_matches_the_previous_rule_with_ties(k, s, mode, shape, contiguous):
    x = np.maximum(np.round(rng.standard_normal(shape), 1), 0)  # many tied zeros
    x[0, :2, :2] = 0.5  # a window of equal non-zero values
    x = x if contiguous else np.asfortranarray(x)
    expect, dx = old_max_pool_grad(x, g := rng.standard_normal(
        old_max_pool_grad(x, 0, k, s, mode)[0].shape), k, s, mode)
    xt = df.constant(x)
    with df.GradientTape() as tape:
        tape.watch(xt)
        out = df.nn.max_pool2d(xt, k, s, mode)
    np.testing.assert_array_equal(out.numpy(), expect)
    np.testing.assert_allclose(tape.gradient(out, xt, output_gradients=df.constant(g)).numpy(),
                               dx, rtol=1e-12)



def test_max_pool_with_unequal_tiling_windows_matches_central_differences():
    x = rng.standard_normal((2, 7, 9, 3))  # 2x3 windows, stride 2x3: a fringe row is left
    check_grads(lambda a: df.nn.max_pool2d(a, (2, 3), (2, 3), "VALID"), [x])
    check_grads(lambda a: df.nn.max_pool2d(a, (2, 3), (2, 3), "SAME"), [x])


@pytest.mark.parametrize("shape,dtype", [((3, 8192 * 2 + 5), np.float32), ((64, 300), np.float64),
                                         ((7,), np.float32), ((), np.float32),
                                         ((50, 400), np.int32)])
@pytest.mark.parametrize("contiguous", [True, False])
def test_rectify_equals_maximum_with_zero(shape, dtype, contiguous):
    x = np.asarray(rng.standard_normal(shape) * 5).astype(dtype)
    x = x if contiguous else x.T
    if x.size > 1:
        x.reshape(-1)[0] = np.nan if dtype != np.int32 else 0
    expect = np.maximum(x, 0)
    got = df.ops.rectify(x)
    assert got.dtype == expect.dtype and got.shape == expect.shape
    np.testing.assert_array_equal(got, expect)
    df.ops.rectify(x, out=x)  # in place
    np.testing.assert_array_equal(x, expect)


# ------------------------------------------------------ intra-op threads (distflow.intra_op)


@pytest.fixture
def pieces_threads(intra_op_regions, monkeypatch):
    """conftest's `intra_op_regions` (pieces, threads available) of each parallel region
    the conv ops open (that pieces really run concurrently is tests/test_intra_op.py's),
    with elementwise passes of any size split."""
    monkeypatch.setattr(intra_op, "SMALL_PASS", 1)
    return intra_op_regions


def _split_on_two(regions) -> bool:
    """Whether some region cut its work into pieces with two threads available."""
    return any(pieces > 1 and threads == 2 for pieces, threads in regions)


def _conv_and_grads(x, w, strides, dilations, mode, threads):
    df.config.threading.set_intra_op_parallelism_threads(threads)
    xt, wt = df.constant(x), df.constant(w)
    with df.GradientTape() as tape:
        tape.watch([xt, wt])
        out = df.nn.conv2d(xt, wt, strides, mode, dilations=dilations)
    g = df.constant(np.cos(np.arange(out.numpy().size).reshape(out.shape)).astype(x.dtype))
    return [out.numpy()] + [t.numpy() for t in tape.gradient(out, [xt, wt],
                                                              output_gradients=g)]


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("name", sorted(PATHS))
def test_two_threads_give_the_one_thread_results_bit_for_bit(name, contiguous, dtype,
                                                             pieces_threads, monkeypatch):
    """Every path, one image per slice: slices on two threads write disjoint rows, and
    the kernel gradient's per-slice products are added in slice order either way."""
    monkeypatch.setattr(nn, "_KEEP_BYTES", 0)
    monkeypatch.setattr(nn, "_SLICE_BYTES", 1)
    x, w = (a.astype(dtype) for a in _inputs(name, contiguous))
    x = np.concatenate([x, -x, 2 * x]) if contiguous else np.asfortranarray(
        np.concatenate([x, -x, 2 * x]))
    spec = PATHS[name][2:]
    one = _conv_and_grads(x, w, *spec, threads=1)
    pieces_threads.clear()
    two = _conv_and_grads(x, w, *spec, threads=2)
    for a, b in zip(two, one):
        np.testing.assert_array_equal(a, b)
    if not name.startswith("1x1"):  # 1x1 kernels: plain GEMMs, no slices
        assert _split_on_two(pieces_threads), name


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
def test_the_example_cnn_conv_on_two_threads_matches_one_thread_and_the_reference(
        pieces_threads):
    """The CNN's second convolution at float32 with the default 1 MB slices."""
    x = rng.standard_normal((9, 14, 14, 32)).astype(np.float32)[:, :, ::-1]
    w = rng.standard_normal((3, 3, 32, 64)).astype(np.float32)
    one = _conv_and_grads(x, w, (1, 1), (1, 1), "SAME", threads=1)
    two = _conv_and_grads(x, w, (1, 1), (1, 1), "SAME", threads=2)
    for a, b in zip(two, one):
        np.testing.assert_array_equal(a, b)
    assert _split_on_two(pieces_threads)
    expect, vjp = old_conv2d(x.astype(np.float64), w.astype(np.float64), (1, 1), (1, 1),
                             "SAME")
    g = np.cos(np.arange(expect.size).reshape(expect.shape)).astype(np.float32)
    for a, e in zip(two, [expect, *vjp(g.astype(np.float64))]):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-4 * np.abs(e).max())


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
@pytest.mark.parametrize("name", ["3x3_same_correlate", "3x3_strided_same", "dilated_valid",
                                  "groups_3", "one_channel_same"])
def test_conv2d_gradients_on_two_threads_match_central_differences(name, pieces_threads,
                                                                   monkeypatch):
    monkeypatch.setattr(nn, "_KEEP_BYTES", 0)
    monkeypatch.setattr(nn, "_SLICE_BYTES", 1)
    df.config.threading.set_intra_op_parallelism_threads(2)
    x, w = _inputs(name, contiguous=False)
    _, _, strides, dilations, mode = PATHS[name]
    check_grads(lambda a, b: df.nn.conv2d(a, b, strides, mode, dilations=dilations), [x, w])
    assert _split_on_two(pieces_threads)


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
def test_conv1d_layer_trains_the_same_on_one_and_two_threads(pieces_threads, monkeypatch):
    monkeypatch.setattr(nn, "_KEEP_BYTES", 0)
    monkeypatch.setattr(nn, "_SLICE_BYTES", 1)
    x = rng.standard_normal((4, 30, 8)).astype(np.float32)
    layer = layers.Conv1D(6, 5, strides=2, padding="same", activation="relu")
    layer(x)
    _layer_equal_on_one_and_two_threads(layer, x, {})


def _layer_equal_on_one_and_two_threads(layer, x, call_kwargs):
    """The layer's output and gradients (input and weights) are the same on 1 and 2 threads."""
    results = []
    for threads in (1, 2):
        df.config.threading.set_intra_op_parallelism_threads(threads)
        xt = df.constant(x)
        with df.GradientTape() as tape:
            tape.watch(xt)
            out = layer(xt, **call_kwargs)
            loss = df.reduce_sum(out * df.cos(out))
        results.append([out.numpy()] + [t.numpy() for t in tape.gradient(
            loss, [xt, *layer.trainable_weights])])
    for a, e in zip(*results):
        np.testing.assert_array_equal(a, e)


def _on_threads(threads, fn, args, g_of):
    """fn(*args) and its gradients for the cotangent g_of(out), on `threads` threads."""
    df.config.threading.set_intra_op_parallelism_threads(threads)
    ts = [df.constant(a) for a in args]
    with df.GradientTape() as tape:
        tape.watch(ts)
        out = fn(*ts)
    grads = tape.gradient(out, ts, output_gradients=df.constant(g_of(out.numpy())))
    return [out.numpy()] + [t.numpy() for t in grads]


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("name", ["3x3_same_correlate", "1x1", "groups_3", "3x3_strided_same",
                                  "one_channel_same"])
def test_fused_conv_bias_relu_on_two_threads_matches_one_thread(name, relu, pieces_threads,
                                                                monkeypatch):
    monkeypatch.setattr(nn, "_SLICE_BYTES", 1)
    x, w = (a.astype(np.float32) for a in _inputs(name, contiguous=False))
    x = np.concatenate([x, -x, x[::-1]])
    b = rng.standard_normal(w.shape[3]).astype(np.float32)
    _, _, strides, dilations, mode = PATHS[name]

    def fused(xt, wt, bt):
        return df.nn.fused_conv2d(xt, wt, bt, strides, mode, dilations,
                                   activation="relu" if relu else None)
    one, two = (_on_threads(t, fused, [x, w, b], lambda o: np.cos(3 * o)) for t in (1, 2))
    for a, e in zip(two, one):
        np.testing.assert_array_equal(a, e)
    assert _split_on_two(pieces_threads) or (name, relu) == ("1x1", False)  # plain GEMMs


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
@pytest.mark.parametrize("k,s,mode,shape", [(2, 2, "VALID", (5, 6, 8, 3)),
                                            (2, 2, "SAME", (5, 7, 9, 3)),
                                            (3, 2, "SAME", (4, 7, 6, 2)),
                                            (3, 3, "VALID", (3, 8, 7, 2))])
@pytest.mark.parametrize("contiguous", [True, False])
def test_max_pool_on_two_threads_matches_one_thread_with_ties(k, s, mode, shape, contiguous,
                                                              pieces_threads):
    x = np.maximum(np.round(rng.standard_normal(shape), 1), 0).astype(np.float32)
    x = x if contiguous else np.asfortranarray(x)

    def pool(xt):
        return df.nn.max_pool2d(xt, k, s, mode)
    one, two = (_on_threads(t, pool, [x], lambda o: np.cos(np.arange(o.size).reshape(
        o.shape)).astype(np.float32)) for t in (1, 2))
    for a, e in zip(two, one):
        np.testing.assert_array_equal(a, e)
    assert _split_on_two(pieces_threads)


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
@pytest.mark.parametrize("shape", [(40, 8192 + 3), (9, 300, 200), (1 << 18,)])
@pytest.mark.parametrize("contiguous", [True, False])
def test_relu_and_its_gradient_on_two_threads_equal_the_one_pass_rule(shape, contiguous,
                                                                      pieces_threads):
    df.config.threading.set_intra_op_parallelism_threads(2)
    x = rng.standard_normal(shape).astype(np.float32)
    x = x if contiguous else np.asfortranarray(x)
    x.reshape(-1, order="A")[:5] = [np.nan, 0.0, -0.0, np.inf, -np.inf]
    g = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(df.ops.rectify(x), np.maximum(x, 0))
    out = np.maximum(x, 0)
    expect = np.multiply(g, out > 0)
    np.testing.assert_array_equal(df.ops.relu_grad(g, out), expect)
    np.testing.assert_array_equal(df.ops.relu_grad(g, out, result=g), expect)  # in place
    inplace = x.copy(order="K")
    df.ops.rectify(inplace, out=inplace)
    np.testing.assert_array_equal(inplace, out)
    assert _split_on_two(pieces_threads)


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
@pytest.mark.parametrize("axis,shape", [(-1, (6, 5, 4, 3)), (1, (5, 3, 4)), (0, (4, 6))])
def test_batch_normalization_training_on_two_threads_matches_one_thread(axis, shape,
                                                                        pieces_threads):
    """Its elementwise passes split along the batch axis (the parameters too, when the
    normalised axis is the first); the reductions stay whole, so results are equal."""
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    layer = layers.BatchNormalization(axis=axis, gamma_initializer="random_normal",
                                      beta_initializer="random_normal")
    layer.build(x.shape)
    _layer_equal_on_one_and_two_threads(layer, x, {"training": True})
    assert _split_on_two(pieces_threads)


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
def test_dense_layer_on_two_threads_matches_one_thread(pieces_threads):
    """The example CNN's classifier: its products and its bias sum with BLAS at one
    thread (too small to split)."""
    layer = layers.Dense(10)
    x = rng.standard_normal((64, 3136)).astype(np.float32)
    layer.build(x.shape)
    _layer_equal_on_one_and_two_threads(layer, x, {})


@pytest.mark.parametrize("name", ["3x3_same_correlate", "one_channel_same", "3x3_strided_same"])
def test_an_empty_batch_convolves_to_empty_outputs_and_zero_kernel_gradients(name,
                                                                             monkeypatch):
    monkeypatch.setattr(nn, "_KEEP_BYTES", 0)
    x, w = _inputs(name)
    _, _, strides, dilations, mode = PATHS[name]
    xt, wt = df.constant(x[:0]), df.constant(w)
    with df.GradientTape() as tape:
        tape.watch([xt, wt])
        out = df.nn.conv2d(xt, wt, strides, mode, dilations=dilations)
    dx, dw = tape.gradient(out, [xt, wt], output_gradients=df.constant(np.ones(out.shape)))
    assert out.shape[0] == 0 and dx.shape == x[:0].shape
    np.testing.assert_array_equal(dw.numpy(), np.zeros(w.shape))
