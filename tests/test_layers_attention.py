"""MultiHeadAttention against a NumPy reference, masks, gradients and a functional block."""

from __future__ import annotations

import json

import numpy as np
import pytest

import distflow as df
from distflow.keras import layers
from distflow.tensor import reset_names
from distflow.test_util import check_grads

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def _fresh_names():
    reset_names()
    yield


def numpy_attention(query, value, weights, heads, mask=None):
    """softmax(q k^T / sqrt(d)) v per head, heads concatenated and projected."""
    wq, bq, wk, bk, wv, bv, wo, bo = weights
    q = np.einsum("btd,dhk->bhtk", query, wq) + bq[None, :, None, :]
    k = np.einsum("btd,dhk->bhtk", value, wk) + bk[None, :, None, :]
    v = np.einsum("btd,dhk->bhtk", value, wv) + bv[None, :, None, :]
    scores = np.einsum("bhqk,bhtk->bhqt", q, k) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask[:, None], scores, -1e9)
    probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    heads_out = np.einsum("bhqt,bhtv->bqhv", probs, v)
    return np.einsum("bqhv,hvo->bqo", heads_out, wo) + bo, probs


def randomize(layer):
    weights = [RNG.standard_normal(w.shape) * 0.3 for w in layer.get_weights()]
    layer.set_weights(weights)
    return [np.asarray(w, np.float64) for w in layer.get_weights()]


def test_matches_numpy_reference_with_cross_attention_and_scores():
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, output_shape=5)
    query, value = RNG.standard_normal((2, 4, 6)), RNG.standard_normal((2, 7, 6))
    out, scores = layer(query, value, return_attention_scores=True)
    assert out.shape == (2, 4, 5) and scores.shape == (2, 2, 4, 7)
    weights = randomize(layer)
    out, scores = layer(query, value, return_attention_scores=True)
    ref_out, ref_probs = numpy_attention(query, value, weights, heads=2)
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores.numpy(), ref_probs, rtol=1e-4, atol=1e-6)
    assert [w.name for w in layer.weights] == [
        "multi_head_attention/query/kernel", "multi_head_attention/query/bias",
        "multi_head_attention/key/kernel", "multi_head_attention/key/bias",
        "multi_head_attention/value/kernel", "multi_head_attention/value/bias",
        "multi_head_attention/attention_output/kernel",
        "multi_head_attention/attention_output/bias"]
    assert layer.compute_output_shape((None, 4, 6), (None, 7, 6)) == (None, 4, 5)


def test_causal_explicit_and_padding_masks():
    layer = layers.MultiHeadAttention(num_heads=1, key_dim=4)
    x = RNG.standard_normal((2, 5, 4)).astype(np.float32)
    layer(x, x)
    weights = randomize(layer)
    causal = np.tril(np.ones((5, 5), bool))[None].repeat(2, axis=0)
    out, probs = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    np.testing.assert_array_equal(probs.numpy()[:, 0] * ~causal, 0.0)
    ref, _ = numpy_attention(x.astype(np.float64), x.astype(np.float64), weights, 1, causal)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)
    explicit = RNG.random((2, 5, 5)) > 0.3
    explicit[:, :, 0] = True  # every query attends to something
    out = layer(x, x, attention_mask=explicit).numpy()
    ref, _ = numpy_attention(x.astype(np.float64), x.astype(np.float64), weights, 1, explicit)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    ids = np.array([[3, 4, 0, 0], [1, 2, 3, 4]])  # padding masks come from Embedding
    embedded = layers.Embedding(6, 4, mask_zero=True)(ids)
    _, probs = layer(embedded, embedded, return_attention_scores=True)
    np.testing.assert_allclose(probs.numpy()[0, 0, :2, 2:], 0.0, atol=1e-7)


def test_gradients_and_dropout():
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=2, dtype="float64")
    x = RNG.standard_normal((1, 3, 4))
    layer(x, x)
    check_grads(lambda t: layer(t, t), [x], rtol=1e-4)
    with df.GradientTape() as tape:
        loss = df.reduce_sum(df.square(layer(x, x)))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None for g in grads)
    noisy = layers.MultiHeadAttention(num_heads=1, key_dim=2, dropout=0.5, seed=1)
    y = RNG.standard_normal((2, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(noisy(y, y).numpy(), noisy(y, y).numpy())
    assert not np.allclose(noisy(y, y, training=True).numpy(), noisy(y, y).numpy())


def test_config_round_trip_and_errors():
    layer = layers.MultiHeadAttention(3, 2, value_dim=5, output_shape=7, use_bias=False)
    x = RNG.standard_normal((2, 4, 6)).astype(np.float32)
    out = layer(x, x).numpy()
    config = json.loads(json.dumps(layer.get_config()))
    clone = layers.MultiHeadAttention.from_config(config)
    clone(x, x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x, x).numpy(), out, rtol=1e-6)
    with pytest.raises(ValueError, match="needs `value`"):
        layer(x)
    with pytest.raises(ValueError, match="rank-3"):
        layers.MultiHeadAttention(1, 2)(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="num_heads=0"):
        layers.MultiHeadAttention(0, 2)


def test_transformer_block_in_a_functional_model():
    from distflow import keras

    inputs = keras.Input(shape=(6,), dtype="int32")
    x = layers.Embedding(20, 8)(inputs)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    x = layers.LayerNormalization()(layers.Add()([x, attended]))
    outputs = layers.Dense(3)(layers.GlobalAveragePooling1D()(x))
    model = keras.Model(inputs, outputs)
    ids = RNG.integers(0, 20, (4, 6))
    assert model.predict(ids, verbose=0).shape == (4, 3)
    assert model.count_params() == 20 * 8 + (3 * (8 * 2 * 4 + 2 * 4) + 2 * 4 * 8 + 8) + 16 + 27


@pytest.mark.parametrize("masked", [False, True])
def test_fused_attention_equals_the_composite_ops(masked):
    """The one-op core (scores, stable softmax, weighted sum) against the op-by-op path
    (taken when the scores are returned): outputs and every gradient."""
    rng = np.random.default_rng(5)
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, dtype="float64")
    q = df.constant(rng.standard_normal((2, 4, 5)))
    v = df.constant(rng.standard_normal((2, 6, 5)))
    mask = rng.random((2, 4, 6)) > 0.3 if masked else None
    layer(q, v)
    results = []
    for scores in (False, True):
        with df.GradientTape() as tape:
            tape.watch([q, v])
            out = layer(q, v, attention_mask=mask, return_attention_scores=scores)
            out = out[0] if scores else out
            loss = df.reduce_sum(out * out)
        results.append([out, *tape.gradient(loss, [q, v, *layer.trainable_variables])])
    for a, b in zip(*results):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def test_fused_attention_gradients_match_central_differences():
    from distflow.keras.layers.attention import _attention

    rng = np.random.default_rng(6)
    mask = rng.random((2, 3, 4)) > 0.3
    mask[:, :, 0] = True
    check_grads(lambda q, k, v: _attention(q, k, v, scale=0.7, mask=mask),
                [rng.standard_normal((2, 2, 3, 5)), rng.standard_normal((2, 2, 4, 5)),
                 rng.standard_normal((2, 2, 4, 3))])


def test_row_reductions_of_the_fused_softmax():
    from distflow.keras.layers.attention import _row_max, _row_sum

    for n in (1, 2, 3, 7, 64, 65):
        a = RNG.standard_normal((2, 3, n))
        np.testing.assert_array_equal(_row_max(a), a.max(axis=-1, keepdims=True))
        np.testing.assert_allclose(_row_sum(a), a.sum(axis=-1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("mask", [None, "explicit", "causal", "padding"])
def test_fused_self_attention_equals_the_previous_paths(mask):
    """Self-attention as one op (projections, core, heads layout) against the same layer
    on a copy of the input (the per-projection ops and core op used before) and the
    op-by-op path (scores returned): outputs and every gradient."""
    rng = np.random.default_rng(8)
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, dtype="float64")
    raw = rng.standard_normal((2, 5, 6))
    if mask == "padding":  # a padding mask on the input, as Embedding(mask_zero=True) sets
        raw[0, 3:] = 0.0
        masking = layers.Masking(mask_value=0.0, dtype="float64")
        x, twin = masking(df.constant(raw)), masking(df.constant(raw))  # two tensors, one mask
    else:
        x, twin = df.constant(raw), df.constant(raw)
    options = {"explicit": {"attention_mask": rng.random((2, 5, 5)) > 0.3},
               "causal": {"use_causal_mask": True}}.get(mask, {})
    layer(x, x)
    randomize(layer)
    assert layer._fused_self_attention(x, x, None)
    assert not layer._fused_self_attention(x, twin, None)
    results = []
    for path in ("fused", "copy", "scores"):
        with df.GradientTape(persistent=True) as tape:
            tape.watch([x, twin])
            out = layer(x, twin if path == "copy" else x,
                        return_attention_scores=path == "scores", **options)
            out = out[0] if path == "scores" else out
            loss = df.reduce_sum(out * out)
        dx = [d if d is not None else 0 * x for d in tape.gradient(loss, [x, twin])]
        results.append([out, dx[0] + dx[1], *tape.gradient(loss, layer.trainable_variables)])
    for fused, copy, scores in zip(*results):
        np.testing.assert_allclose(fused.numpy(), copy.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fused.numpy(), scores.numpy(), rtol=1e-10, atol=1e-12)


def test_fused_self_attention_gradients_match_central_differences():
    from distflow.keras.layers.attention import _self_attention

    rng = np.random.default_rng(9)
    mask = rng.random((2, 4, 4)) > 0.3
    mask[:, :, 0] = True
    weights = [rng.standard_normal(s) * 0.5 for s in ((5, 2, 3), (2, 3), (5, 2, 3), (2, 3),
                                                       (5, 2, 4), (2, 4), (2, 4, 3), (3,))]
    for m in (None, mask, np.tril(np.ones((2, 4, 4), bool))):
        check_grads(lambda *a, m=m: _self_attention(*a, scale=0.6, mask=m),
                    [rng.standard_normal((2, 4, 5)), *weights])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("magnitude", [0.1, 10.0, 59.0, 61.0, 1000.0])
def test_fused_softmax_is_exact_at_every_score_magnitude(magnitude, dtype):
    """Unshifted below the exp-safe bound, row maximum subtracted above it (and for
    float16): equal to the shifted softmax either way, never inf or NaN."""
    from distflow.keras.layers.attention import _softmax_scores

    rng = np.random.default_rng(10)
    q, k = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 6, 4))
    scores = q @ k.swapaxes(-1, -2)
    q *= magnitude / np.abs(scores).max()  # the largest |score| is `magnitude`
    scores = q.astype(dtype).astype(np.float64) @ k.astype(dtype).astype(
        np.float64).swapaxes(-1, -2)
    want = np.exp(scores - scores.max(axis=-1, keepdims=True))
    want /= want.sum(axis=-1, keepdims=True)
    got = _softmax_scores(q.astype(dtype), k.astype(dtype), None, None)
    assert got.dtype == dtype and np.isfinite(got).all()
    tol = {"float16": 2e-2, "float32": 1e-4, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 1e-3)


def _self_attention_on_threads(threads, args, g, mask):
    """Output and every gradient of the self-attention op on `threads` intra-op threads."""
    from distflow.keras.layers.attention import _self_attention

    df.config.threading.set_intra_op_parallelism_threads(threads)
    ts = [df.constant(a) for a in args]
    with df.GradientTape() as tape:
        tape.watch(ts)
        out = _self_attention(*ts, scale=0.6, mask=mask)
    return [out.numpy()] + [d.numpy() for d in tape.gradient(
        out, ts, output_gradients=df.constant(g))]


def _self_attention_args(rng, batch, steps=5):
    """x (batch, steps, 6), the q/k/v kernels and biases (2 heads, key 3, value 4), the
    output kernel (2, 4, 7) and bias."""
    return [rng.standard_normal((batch, steps, 6))] + [
        rng.standard_normal(s) * 0.5 for s in ((6, 2, 3), (2, 3), (6, 2, 3), (2, 3),
                                               (6, 2, 4), (2, 4), (2, 4, 7), (7,))]


needs_blas = pytest.mark.skipif(
    __import__("distflow.intra_op").intra_op.blas_threads() is None,
    reason="no settable OpenBLAS")


@needs_blas
@pytest.mark.parametrize("mask", [None, "explicit", "causal"])
@pytest.mark.parametrize("batch", [3, 4])
def test_fused_self_attention_splits_the_batch_on_two_threads(mask, batch,
                                                             intra_op_regions):
    """On two threads the self-attention op (projections, core and output projection)
    runs as batch pieces (uneven for an odd batch): output and every gradient, the
    input's too, equal the one-thread run to float rounding."""
    rng = np.random.default_rng(11)
    m = {None: None, "explicit": rng.random((batch, 5, 5)) > 0.3,
         "causal": np.tril(np.ones((batch, 5, 5), bool))}[mask]
    args, g = _self_attention_args(rng, batch), rng.standard_normal((batch, 5, 7))
    one = _self_attention_on_threads(1, args, g, m)
    assert {threads for _, threads in intra_op_regions} == {1}
    two = _self_attention_on_threads(2, args, g, m)
    assert (2, 2) in intra_op_regions
    for a, e in zip(two, one):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@needs_blas
def test_fused_self_attention_runs_whole_while_blas_threads_spin(intra_op_regions,
                                                                 monkeypatch):
    """Right after a product on BLAS's own threads (which then spin on a core for a
    while) the op runs as one piece here, its large products on BLAS's threads: the
    same results to rounding."""
    from distflow import intra_op

    rng = np.random.default_rng(14)
    args, g = _self_attention_args(rng, 4), rng.standard_normal((4, 5, 7))
    split = _self_attention_on_threads(2, args, g, None)
    assert (2, 2) in intra_op_regions
    intra_op_regions.clear()
    monkeypatch.setattr(intra_op, "blas_spinning", lambda: True)
    whole = _self_attention_on_threads(2, args, g, None)
    assert {pieces for pieces, _ in intra_op_regions} == {1}
    for a, e in zip(whole, split):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@needs_blas
@pytest.mark.parametrize("mask", [None, "explicit", "causal"])
def test_fused_self_attention_on_two_threads_matches_central_differences(
        mask, intra_op_regions):
    from distflow.keras.layers.attention import _self_attention

    rng = np.random.default_rng(13)
    m = {None: None, "explicit": rng.random((3, 4, 4)) > 0.3,
         "causal": np.tril(np.ones((3, 4, 4), bool))}[mask]
    if m is not None:
        m[:, :, 0] = True
    df.config.threading.set_intra_op_parallelism_threads(2)
    check_grads(lambda *a: _self_attention(*a, scale=0.6, mask=m),
                _self_attention_args(rng, 3, steps=4))
    assert (2, 2) in intra_op_regions


def test_fused_self_attention_reuses_buffers_only_once_released():
    """Two self-attention calls alive at once keep their own buffers (outputs and
    gradients right for both); once a result and its tape are gone, the next call of
    the same shape reuses the memory of its output."""
    import gc

    from distflow.keras.layers.attention import _self_attention

    rng = np.random.default_rng(12)
    weights = [df.constant(rng.standard_normal(s) * 0.5) for s in (
        (6, 2, 3), (2, 3), (6, 2, 3), (2, 3), (6, 2, 4), (2, 4), (2, 4, 7), (7,))]
    xs = [df.constant(rng.standard_normal((3, 5, 6))) for _ in range(2)]
    with df.GradientTape(persistent=True) as tape:
        tape.watch(xs + weights)
        outs = [_self_attention(x, *weights, scale=0.6, mask=None) for x in xs]
        losses = [df.reduce_sum(o * o) for o in outs]
    assert not np.shares_memory(outs[0].numpy(), outs[1].numpy())
    for x, out, loss in zip(xs, outs, losses):
        with df.GradientTape() as fresh:
            fresh.watch([x, *weights])
            again = _self_attention(x, *weights, scale=0.6, mask=None)
            fresh_loss = df.reduce_sum(again * again)
        np.testing.assert_allclose(out.numpy(), again.numpy(), rtol=1e-12)
        for a, b in zip(tape.gradient(loss, [x, *weights]), fresh.gradient(fresh_loss,
                                                                          [x, *weights])):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    address = outs[0].numpy().__array_interface__["data"][0]
    del tape, outs, losses, loss, out, again, fresh, fresh_loss
    gc.collect()
    reused = _self_attention(xs[0], *weights, scale=0.6, mask=None)
    assert reused.numpy().__array_interface__["data"][0] == address
