"""The fused convolution + bias + ReLU + tiling max pool (distflow.conv_pool), and the
Keras models that run a Conv2D(activation='relu') and the MaxPooling2D reading it as
that one op."""

import numpy as np
import pytest

import distflow as df
import distflow.keras as keras
from distflow import conv_pool, intra_op, nn, twin
from distflow.keras import layers
from distflow.test_util import check_grads

rng = np.random.default_rng(17)

# name: (x shape, w shape, strides, padding, pool)
CASES = {
    "one_channel_same": ((3, 8, 8, 1), (3, 3, 1, 4), (1, 1), "SAME", (2, 2)),
    "channels_same": ((3, 6, 6, 9), (3, 3, 9, 5), (1, 1), "SAME", (2, 2)),
    "odd_size_valid": ((2, 9, 7, 3), (3, 3, 3, 4), (1, 1), "VALID", (2, 2)),
    "strided_pool3": ((2, 13, 13, 10), (3, 3, 10, 4), (2, 2), "SAME", (3, 3)),
    "pool_2x1": ((2, 6, 6, 8), (1, 3, 8, 3), (1, 1), "SAME", (2, 1)),
}


def _composed(x, w, b, strides, padding, pool):
    y = nn.fused_conv2d(x, w, b, strides, padding, activation="relu")
    return nn.max_pool2d(y, pool, pool, "VALID")


def _fused(x, w, b, strides, padding, pool):
    return conv_pool.conv2d_relu_max_pool(x, w, b, strides, padding, pool_size=pool)


def _inputs(name, dtype=np.float64, ties=False):
    xs, ws, *_ = CASES[name]
    x = rng.standard_normal(xs)
    if ties:  # negative bias: many windows all zero after the ReLU; repeated values
        x = np.round(x)
    return (x.astype(dtype), rng.standard_normal(ws).astype(dtype),
            (rng.standard_normal(ws[3]) - (1.5 if ties else 0)).astype(dtype))


def _value_and_grads(fn, args, spec):
    ts = [df.constant(a) for a in args]
    with df.GradientTape() as tape:
        tape.watch(ts)
        out = fn(*ts, *spec)
    g = df.constant(np.cos(np.arange(out.numpy().size)).reshape(out.shape).astype(
        args[0].dtype))
    return [out.numpy()] + [t.numpy() for t in tape.gradient(out, ts, output_gradients=g)]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_conv_relu_pool_equals_the_composed_ops(name, ties, slicing):
    args = _inputs(name, ties=ties)
    spec = CASES[name][2:]
    got = _value_and_grads(_fused, args, spec)
    expect = _value_and_grads(_composed, args, spec)
    for a, e in zip(got, expect):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_conv_relu_pool_gradients_match_central_differences(name, slicing):
    x, w, b = _inputs(name)
    spec = CASES[name][2:]
    check_grads(lambda *a: _fused(*a, *spec), [x[..., ::-1], w, b])


def test_the_weights_gradients_alone_skip_the_input_gradient(monkeypatch):
    """A model's first layer: its input needs no gradient, and none is computed."""
    x, w, b = _inputs("channels_same")
    spec = CASES["channels_same"][2:]
    expect = _value_and_grads(_composed, (x, w, b), spec)
    calls, real = [], nn._input_grad
    monkeypatch.setattr(nn, "_input_grad", lambda *a, **k: calls.append(1) or real(*a, **k))
    xt, wt, bt = (df.constant(a) for a in (x, w, b))
    with df.GradientTape() as tape:
        tape.watch([wt, bt])
        out = _fused(xt, wt, bt, *spec)
    g = df.constant(np.cos(np.arange(out.numpy().size)).reshape(out.shape))
    dw, db = tape.gradient(out, [wt, bt], output_gradients=g)
    assert calls == []
    np.testing.assert_allclose(dw.numpy(), expect[2], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db.numpy(), expect[3], rtol=1e-12, atol=1e-12)


def _first_hit_calls(monkeypatch) -> list:
    """Records every call of the pooling mask's first-hit pass."""
    calls, real = [], nn._first_hits
    monkeypatch.setattr(nn, "_first_hits", lambda *a: calls.append(1) or real(*a))
    return calls


def test_inference_builds_no_pooling_mask(monkeypatch):
    """Outside a tape (predict, evaluate) nothing will differentiate the op: its forward
    builds no mask; under a tape it does."""
    args = [df.constant(a) for a in _inputs("channels_same")]
    calls = _first_hit_calls(monkeypatch)
    inference = _fused(*args, *CASES["channels_same"][2:])
    assert calls == []
    with df.GradientTape() as tape:
        tape.watch(args)
        training = _fused(*args, *CASES["channels_same"][2:])
    assert calls != []
    np.testing.assert_array_equal(inference.numpy(), training.numpy())


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_of_a_forward_run_without_the_mask_recompute_it(name, slicing):
    """A forward run without a tape can still be differentiated (a graph's gradients
    taken afterwards): the VJPs run the forward again for its mask."""
    args = _inputs(name, ties=True)
    params = dict(zip(("strides", "padding", "pool"), CASES[name][2:]))
    spec = {"strides": params["strides"], "dilations": (1, 1),
            "mode": params["padding"], "pool": params["pool"]}
    results = []
    for grad in (True, False):
        out, r = conv_pool._conv_pool.forward(*args, **spec, grad=grad)
        g = np.cos(np.arange(out.size)).reshape(out.shape)
        results.append([out] + [vjp(g, r) for vjp in conv_pool._conv_pool.vjps])
    for a, e in zip(*results):
        np.testing.assert_array_equal(a, e)


def test_the_fused_op_refuses_overlapping_or_padded_pools_and_quotes_them():
    x, w, b = (df.constant(a) for a in _inputs("channels_same"))
    with pytest.raises(ValueError, match=r"pool_size=\(0, 2\)"):
        conv_pool.conv2d_relu_max_pool(x, w, b, 1, "SAME", pool_size=(0, 2))
    with pytest.raises(ValueError, match="groups"):
        conv_pool.conv2d_relu_max_pool(x, df.constant(np.ones((3, 3, 3, 6))), df.constant(
            np.ones(6)), 1, "SAME", pool_size=2)


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keep", [0, 4 << 20])
@pytest.mark.parametrize("name", sorted(CASES))
def test_two_threads_give_the_one_thread_results_bit_for_bit(name, dtype, keep, monkeypatch):
    """Patches kept or rebuilt, one image per slice."""
    monkeypatch.setattr(nn, "_KEEP_BYTES", keep)
    monkeypatch.setattr(nn, "_SLICE_BYTES", 1)
    monkeypatch.setattr(conv_pool, "SLICE_BYTES", 1)
    monkeypatch.setattr(intra_op, "SMALL_PASS", 1)
    x, w, b = _inputs(name, dtype, ties=True)
    x = np.concatenate([x, -x, 2 * x])
    results = [_with_threads(t, _value_and_grads, _fused, (x, w, b), CASES[name][2:])
               for t in (1, 2)]
    for a, e in zip(*results):
        np.testing.assert_array_equal(a, e)


def _with_threads(threads: int, fn, *args):
    """fn(*args) with `threads` intra-op threads configured and their twin processes
    running (the count restored after)."""
    before = intra_op.blas_threads()
    df.config.threading.set_intra_op_parallelism_threads(threads)
    try:
        twin.ensure_started()
        return fn(*args)
    finally:
        intra_op.set_blas_threads(before)


@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
@pytest.mark.parametrize("batch", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("name", ["one_channel_same", "channels_same", "strided_pool3"])
def test_uneven_ranges_give_the_one_thread_and_the_composed_results(name, batch, slicing):
    """Batches whose chunks, and so the two ranges, differ in size (one image: one
    range): bit for bit the one-thread results, and the composed ops' values."""
    x, w, b = _inputs(name, ties=True)
    x = np.resize(x, (batch, *x.shape[1:])) * np.arange(1, batch + 1)[:, None, None, None]
    spec = CASES[name][2:]
    one, two = (_with_threads(t, _value_and_grads, _fused, (x, w, b), spec) for t in (1, 2))
    for a, e in zip(two, one):
        np.testing.assert_array_equal(a, e)
    for a, e in zip(two, _value_and_grads(_composed, (x, w, b), spec)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def _chunks_run_here(monkeypatch) -> dict:
    """Records the chunks whose forward and gradients this process computes."""
    here = {"forward": [], "grads": []}
    forward, grads = conv_pool._forward_chunk, conv_pool._chunk_grads
    monkeypatch.setattr(conv_pool, "_forward_chunk",
                        lambda chunk, *a: here["forward"].append(chunk) or forward(chunk, *a))
    monkeypatch.setattr(conv_pool, "_chunk_grads",
                        lambda g, r, k, *a: here["grads"].append(k) or grads(g, r, k, *a))
    return here


@pytest.mark.skipif(not hasattr(__import__("os"), "memfd_create"), reason="no memfd")
@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
def test_with_two_threads_the_twin_process_computes_the_second_half(monkeypatch):
    """The first half of the chunks runs here, the second in the twin (which does not
    see this process's records); the results are the one-thread ones bit for bit."""
    x, w, b = _inputs("channels_same", np.float32, ties=True)
    x = np.resize(x, (8, *x.shape[1:]))
    spec = CASES["channels_same"][2:]
    one = _with_threads(1, _value_and_grads, _fused, (x, w, b), spec)
    here = _chunks_run_here(monkeypatch)
    two = _with_threads(2, _value_and_grads, _fused, (x, w, b), spec)
    assert here == {"forward": [(0, 2), (2, 4)], "grads": [0, 1]}
    for a, e in zip(two, one):
        np.testing.assert_array_equal(a, e)


@pytest.mark.skipif(not hasattr(__import__("os"), "memfd_create"), reason="no memfd")
@pytest.mark.skipif(intra_op.blas_threads() is None, reason="no settable OpenBLAS")
def test_an_output_feeding_the_next_op_is_shared_as_it_is():
    """conv1's pooled output is conv2's input: already in twin memory, not copied."""
    x, w, b = _inputs("channels_same", np.float32)

    def outputs():
        out, r = conv_pool._conv_pool.forward(x, w, b, strides=(1, 1), dilations=(1, 1),
                                              mode="SAME", pool=(2, 2))
        return out, twin.shared(out), twin.shared(x)
    out, shared_out, shared_x = _with_threads(2, outputs)
    assert shared_out is out
    assert twin.holds(out) and twin.holds(shared_x)
    np.testing.assert_array_equal(shared_x, x)


# ------------------------------------------------------------------ Keras models


def _cnn(sequential=False, expose_conv=False):
    """The example CNN's layers (small); seeded alike whatever the wiring."""
    keras.utils.set_random_seed(3)
    conv1 = layers.Conv2D(4, 3, padding="same", activation="relu")
    conv2 = layers.Conv2D(6, 3, padding="same", activation="relu")
    stack = [conv1, layers.MaxPooling2D(), conv2, layers.MaxPooling2D(), layers.Flatten(),
             layers.Dense(3)]
    if sequential:
        return keras.Sequential([keras.Input((10, 10, 1)), *stack]), conv1
    inp = keras.Input((10, 10, 1))
    h = inp
    for layer in stack:
        h = layer(h)
    outputs = [h, conv1.output] if expose_conv else h
    return keras.Model(inp, outputs), conv1


def _ops_run(model, x):
    """The primitive ops one forward pass of `model` runs, by name."""
    names = []
    real = df.primitive.Primitive.__call__

    def spy(self, *a, **k):
        names.append(self.name)
        return real(self, *a, **k)
    df.primitive.Primitive.__call__ = spy
    try:
        model(x)
    finally:
        df.primitive.Primitive.__call__ = real
    return names


@pytest.mark.parametrize("sequential", [False, True])
def test_a_conv_relu_then_max_pool_runs_as_one_op_in_a_model(sequential):
    model, _ = _cnn(sequential)
    names = _ops_run(model, rng.standard_normal((2, 10, 10, 1)).astype(np.float32))
    assert names.count("conv2d_bias_relu_max_pool") == 2
    assert "max_pool2d" not in names


def test_a_conv_output_the_model_also_returns_is_not_fused():
    model, _ = _cnn(expose_conv=True)
    names = _ops_run(model, rng.standard_normal((2, 10, 10, 1)).astype(np.float32))
    assert names.count("conv2d_bias_relu_max_pool") == 1
    assert names.count("max_pool2d") == 1


def test_a_fused_model_trains_as_the_layers_called_one_by_one():
    x = rng.standard_normal((5, 10, 10, 1)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    model, _ = _cnn()
    reference, _ = _cnn()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with df.GradientTape() as tape:
        loss = loss_fn(y, model(x))
    grads = tape.gradient(loss, model.trainable_weights)
    with df.GradientTape() as tape:
        h = df.constant(x)
        for layer in reference.layers[1:]:
            h = layer(h)
        ref_loss = loss_fn(y, h)
    ref_grads = tape.gradient(ref_loss, reference.trainable_weights)
    np.testing.assert_allclose(loss.numpy(), ref_loss.numpy(), rtol=1e-6)
    for a, e in zip(grads, ref_grads):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-5, atol=1e-6)


def test_predict_builds_no_pooling_mask_and_training_still_learns(monkeypatch):
    model, _ = _cnn(sequential=True)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    x = rng.standard_normal((4, 10, 10, 1)).astype(np.float32)
    y = rng.integers(0, 3, 4)
    calls = _first_hit_calls(monkeypatch)
    predicted = model.predict(x, verbose=0)
    assert calls == []
    h = df.constant(x)
    for layer in model.layers:
        h = layer(h)
    np.testing.assert_allclose(predicted, h.numpy(), rtol=1e-5, atol=1e-6)
    losses = [float(model.train_on_batch(x, y)) for _ in range(20)]
    assert calls != []
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("keep", [0, 4 << 20])
def test_chunks_of_several_multi_image_slices_equal_the_composed_ops(keep, monkeypatch):
    """Batch chunks of several slices of several images each (the mask's and the kept
    patches' layouts per slice): values and all gradients as the composed ops'."""
    monkeypatch.setattr(nn, "_KEEP_BYTES", keep)
    monkeypatch.setattr(conv_pool, "CHUNKS", 2)
    x = rng.standard_normal((12, 8, 8, 3))
    w, b = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
    per_image = 8 * 8 * 27 * 8  # patch bytes of one image
    monkeypatch.setattr(conv_pool, "SLICE_BYTES", 2 * per_image)
    spec = ((1, 1), "SAME", (2, 2))
    got = _value_and_grads(_fused, (x, w, b), spec)
    expect = _value_and_grads(_composed, (x, w, b), spec)
    for a, e in zip(got, expect):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
