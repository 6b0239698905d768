"""Recurrent layers against hand-written NumPy recurrences, plus a gradient check."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from recurrent_reference import (
    _gru_seq_backward,
    _gru_seq_forward,
    _lstm_seq_backward,
    _lstm_seq_forward,
)

import distflow as df
from distflow.keras import layers
from distflow.tensor import reset_names
from distflow.test_util import check_grads

RNG = np.random.default_rng(1)


@pytest.fixture(autouse=True)
def _fresh_names():
    reset_names()
    yield


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm(x, kernel, recurrent, bias, h=None, c=None):
    """Keras LSTM: gates (i, f, g, o) in blocks of `units` columns."""
    batch, steps, _ = x.shape
    units = recurrent.shape[0]
    h = np.zeros((batch, units)) if h is None else h
    c = np.zeros((batch, units)) if c is None else c
    outputs = []
    for t in range(steps):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f = sigmoid(z[:, :units]), sigmoid(z[:, units:2 * units])
        g, o = np.tanh(z[:, 2 * units:3 * units]), sigmoid(z[:, 3 * units:])
        c = f * c + i * g
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def numpy_gru(x, kernel, recurrent, bias):
    """Keras GRU with reset_after=True: bias rows are (input, recurrent); gates (z, r, h)."""
    batch, steps, _ = x.shape
    units = recurrent.shape[0]
    h = np.zeros((batch, units))
    for t in range(steps):
        xp = x[:, t] @ kernel + bias[0]
        hp = h @ recurrent + bias[1]
        z = sigmoid(xp[:, :units] + hp[:, :units])
        r = sigmoid(xp[:, units:2 * units] + hp[:, units:2 * units])
        cand = np.tanh(xp[:, 2 * units:] + r * hp[:, 2 * units:])
        h = z * h + (1 - z) * cand
    return h


def randomize(layer):
    layer.set_weights([RNG.standard_normal(w.shape).astype(np.float32) * 0.5
                       for w in layer.get_weights()])
    return layer.get_weights()


def test_lstm_matches_numpy_with_sequences_and_states():
    x = RNG.standard_normal((3, 5, 4)).astype(np.float32)
    layer = layers.LSTM(6, return_sequences=True, return_state=True)
    layer(x)
    kernel, recurrent, bias = randomize(layer)
    seq, h, c = layer(x)
    ref_seq, ref_h, ref_c = numpy_lstm(x.astype(np.float64), kernel, recurrent, bias)
    np.testing.assert_allclose(seq.numpy(), ref_seq, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h.numpy(), ref_h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c.numpy(), ref_c, rtol=1e-4, atol=1e-5)
    assert [w.name for w in layer.weights] == [
        "lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "lstm/lstm_cell/bias"]
    assert kernel.shape == (4, 24) and recurrent.shape == (6, 24) and bias.shape == (24,)


def test_lstm_forget_bias_initialised_to_one_and_initial_state():
    layer = layers.LSTM(3)
    x = RNG.standard_normal((2, 4, 2)).astype(np.float32)
    layer(x)
    np.testing.assert_array_equal(layer.get_weights()[2], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    kernel, recurrent, bias = layer.get_weights()
    h0, c0 = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    out = layer(x, initial_state=[h0.astype(np.float32), c0.astype(np.float32)]).numpy()
    _, ref_h, _ = numpy_lstm(x.astype(np.float64), kernel, recurrent, bias, h0, c0)
    np.testing.assert_allclose(out, ref_h, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="expects 2 initial state"):
        layer(x, initial_state=[h0])


def test_gru_and_simple_rnn_match_numpy():
    x = RNG.standard_normal((2, 6, 3)).astype(np.float32)
    gru = layers.GRU(4)
    gru(x)
    kernel, recurrent, bias = randomize(gru)
    assert bias.shape == (2, 12)
    np.testing.assert_allclose(gru(x).numpy(), numpy_gru(x.astype(np.float64), kernel,
                                                         recurrent, bias), rtol=1e-4, atol=1e-5)
    rnn = layers.SimpleRNN(4, activation="relu", go_backwards=True)
    rnn(x)
    kernel, recurrent, bias = randomize(rnn)
    h = np.zeros((2, 4))
    for t in reversed(range(6)):
        h = np.maximum(x[:, t] @ kernel + h @ recurrent + bias, 0)
    np.testing.assert_allclose(rnn(x).numpy(), h, rtol=1e-4, atol=1e-5)


def test_mask_carries_state_over_padded_steps():
    layer = layers.SimpleRNN(3)
    x = RNG.standard_normal((2, 5, 2)).astype(np.float32)
    layer(x)
    mask = np.array([[True] * 5, [True, True, True, False, False]])
    out = layer(x, mask=mask).numpy()
    np.testing.assert_allclose(out[0], layer(x[:1]).numpy()[0], rtol=1e-5)
    np.testing.assert_allclose(out[1], layer(x[1:, :3]).numpy()[0], rtol=1e-5)


def test_recurrent_dropout_only_in_training():
    layer = layers.LSTM(4, dropout=0.5, recurrent_dropout=0.5, seed=3)
    x = RNG.standard_normal((4, 5, 3)).astype(np.float32)
    a, b = layer(x).numpy(), layer(x).numpy()
    np.testing.assert_array_equal(a, b)
    trained = layer(x, training=True).numpy()
    assert not np.allclose(trained, a)


@pytest.mark.parametrize("make", [
    lambda: layers.LSTM(3, return_sequences=True, dtype="float64"),
    lambda: layers.GRU(3, return_sequences=True, dtype="float64"),
    lambda: layers.GRU(2, reset_after=False, dtype="float64"),
    lambda: layers.SimpleRNN(3, dtype="float64"),
], ids=["lstm", "gru", "gru_reset_before", "simple_rnn"])
def test_recurrent_gradient_check(make):
    layer = make()
    x = RNG.standard_normal((2, 4, 2))
    layer(x)
    cell = layer.cell
    names = ["kernel", "recurrent_kernel", "bias"]

    def f(inputs, kernel, recurrent, bias):
        saved = [cell.__dict__[n] for n in names]
        for n, w in zip(names, (kernel, recurrent, bias)):
            object.__setattr__(cell, n, w)
        try:
            return layer(inputs)
        finally:
            for n, w in zip(names, saved):
                object.__setattr__(cell, n, w)

    weights = [w.numpy() + 0.1 * RNG.standard_normal(w.shape) for w in layer.weights]
    check_grads(f, [x, *weights], rtol=1e-4)


def test_trainable_variables_get_gradients_from_a_loss():
    layer = layers.GRU(2)
    x = RNG.standard_normal((3, 4, 2)).astype(np.float32)
    with df.GradientTape() as tape:
        loss = df.reduce_mean(df.square(layer(x)))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert len(grads) == 3 and all(g is not None and np.any(g.numpy()) for g in grads)


def test_recurrent_errors():
    with pytest.raises(ValueError, match="units=0"):
        layers.LSTM(0)
    with pytest.raises(NotImplementedError, match="Stateful"):
        layers.SimpleRNN(2, stateful=True)
    with pytest.raises(ValueError, match="expected ndim=3"):
        layers.LSTM(2)(np.zeros((2, 3)))


def test_embedding_mask_zero_reaches_the_lstm_automatically():
    emb = layers.Embedding(10, 4, mask_zero=True)
    lstm = layers.LSTM(3)
    padded = np.array([[5, 2, 7, 0, 0], [1, 3, 4, 8, 9]])
    out = lstm(emb(padded)).numpy()
    short = lstm(emb(padded[:1, :3])).numpy()
    np.testing.assert_allclose(out[0], short[0], rtol=1e-5, atol=1e-6)
    unmasked = lstm(df.constant(emb(padded).numpy())).numpy()  # a fresh tensor has no mask
    assert not np.allclose(unmasked[0], short[0])
    # Dense passes the mask on (supports_masking); an explicit mask= wins.
    dense = layers.Dense(4)
    out_dense = lstm(dense(emb(padded))).numpy()
    np.testing.assert_allclose(out_dense[0], lstm(dense(emb(padded[:1, :3]))).numpy()[0],
                               rtol=1e-5, atol=1e-6)


def test_masking_layer_skips_all_padding_steps():
    x = RNG.standard_normal((2, 4, 3)).astype(np.float32)
    x[0, 2:] = 0.0
    rnn = layers.SimpleRNN(2)
    masked = rnn(layers.Masking(0.0)(x)).numpy()
    np.testing.assert_allclose(masked[0], rnn(x[:1, :2]).numpy()[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(masked[1], rnn(x[1:]).numpy()[0], rtol=1e-5, atol=1e-6)


def test_mask_table_forgets_dead_tensors():
    from distflow.keras.layers import base

    emb = layers.Embedding(5, 2, mask_zero=True)
    before = len(base._MASKS)
    out = emb(np.array([[1, 0]]))
    assert len(base._MASKS) == before + 1 and base.mask_of(out) is not None
    del out
    assert len(base._MASKS) == before


@pytest.mark.parametrize("zero_output", [False, True])
def test_masked_steps_carry_the_state_and_the_output_or_give_zeros(zero_output):
    """Keras 3: a masked step repeats the previous output unless zero_output_for_mask
    (which Bidirectional sets when returning sequences) makes it zeros."""
    layer = layers.GRU(3, return_sequences=True, return_state=True,
                       zero_output_for_mask=zero_output)
    x = RNG.standard_normal((2, 4, 2)).astype(np.float32)
    mask = np.array([[True, False, True, True], [True, True, True, True]])
    seq, state = layer(x, mask=mask)
    seq = seq.numpy()
    np.testing.assert_array_equal(seq[0, 1], np.zeros(3) if zero_output else seq[0, 0])
    kept = layer(x[:1, [0, 2, 3]])[0].numpy()  # the same run without the masked step
    np.testing.assert_allclose(seq[0, [0, 2, 3]], kept[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.numpy()[0], kept[0, -1], rtol=1e-5, atol=1e-6)
    assert layer.get_config()["zero_output_for_mask"] is zero_output
    wrapped = layers.Bidirectional(layers.GRU(3, return_sequences=True))
    assert wrapped.forward_layer.zero_output_for_mask
    assert wrapped.backward_layer.zero_output_for_mask


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU])
def test_fused_step_equals_the_generic_one(cls):
    from distflow.keras import activations

    x = RNG.standard_normal((3, 6, 2)).astype(np.float32)
    options = dict(return_sequences=True, recurrent_dropout=0.3, seed=11)
    fused = cls(4, **options)
    generic = cls(4, activation=lambda t: activations.tanh(t), **options)  # not the built-in
    fused(x)
    generic(x)
    generic.set_weights(randomize(fused))
    # The comparison means something only if one layer takes the fused path and one not.
    assert fused.cell._fusable(fused.cell.recurrent_kernel)
    assert not generic.cell._fusable(generic.cell.recurrent_kernel)
    with df.GradientTape(persistent=True) as tape:
        a, b = fused(x, training=True), generic(x, training=True)  # same dropout masks
        loss_a, loss_b = df.reduce_sum(df.square(a)), df.reduce_sum(df.square(b))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    for ga, gb in zip(tape.gradient(loss_a, fused.trainable_variables),
                      tape.gradient(loss_b, generic.trainable_variables)):
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU])
def test_whole_sequence_equals_the_step_loop(cls, go_backwards):
    """The one-op sequence (default activations, no mask) against the per-step loop:
    outputs, final states and the gradients of the weights, inputs and initial states."""
    from distflow.keras import activations

    x = df.constant(RNG.standard_normal((3, 5, 2)))
    states = [df.constant(RNG.standard_normal((3, 4))) for _ in range(
        2 if cls is layers.LSTM else 1)]
    options = dict(return_sequences=True, return_state=True, go_backwards=go_backwards,
                   dtype="float64")
    whole = cls(4, **options)
    loop = cls(4, activation=lambda t: activations.tanh(t), **options)
    whole(x)
    loop(x)
    loop.set_weights(randomize(whole))
    results = []
    for layer in (whole, loop):
        with df.GradientTape() as tape:
            tape.watch([x, *states])
            seq, *final = layer(x, initial_state=states)
            loss = df.reduce_sum(seq * seq) + sum(df.reduce_sum(s * s * (i + 2))
                                                  for i, s in enumerate(final))
        sources = [x, *states, *layer.trainable_variables]
        results.append([seq, *final, *tape.gradient(loss, sources)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def test_whole_sequence_gradients_match_central_differences():
    from distflow.keras.layers.recurrent_sequence import gru_sequence, lstm_sequence

    units, features = 3, 2
    x, h0, c0 = (RNG.standard_normal(s) for s in ((2, 4, features), (2, units), (2, units)))
    check_grads(lambda *a: lstm_sequence(*a), [
        x, RNG.standard_normal((features, 4 * units)),
        RNG.standard_normal((units, 4 * units)) * 0.5, RNG.standard_normal(4 * units), h0, c0],
        rtol=1e-5)
    check_grads(lambda *a: gru_sequence(*a), [
        x, RNG.standard_normal((features, 3 * units)),
        RNG.standard_normal((units, 3 * units)) * 0.5, RNG.standard_normal((2, 3 * units)), h0],
        rtol=1e-5)


def _sequence_inputs(gates, two_bias=False, steps=4, batch=3, units=5, features=2):
    weights = (RNG.standard_normal((batch, steps, features)),
               RNG.standard_normal((features, gates * units)),
               RNG.standard_normal((units, gates * units)) * 0.5,
               RNG.standard_normal((2, gates * units) if two_bias else gates * units))
    return weights, RNG.standard_normal((batch, units)), RNG.standard_normal((batch, units))


def _primitive_grads(primitive, args, g, **params):
    tensors = [df.constant(a) for a in args]
    with df.GradientTape() as tape:
        tape.watch(tensors)
        out = primitive(*tensors, **params)
        loss = df.reduce_sum(out * df.constant(g))
    return out.numpy(), [d.numpy() for d in tape.gradient(loss, tensors)]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_whole_sequence_equals_the_previous_implementation(cell):
    """The lean loops against the previous implementation (tests/recurrent_reference.py):
    outputs and all gradients, the upstream gradient on every step."""
    from distflow.keras.layers.recurrent_sequence import gru_sequence, lstm_sequence

    (x, k, r, b), h0, c0 = _sequence_inputs(4 if cell == "lstm" else 3, cell == "gru")
    args = (x, k, r, b, h0, c0) if cell == "lstm" else (x, k, r, b, h0)
    forward, backward = ((_lstm_seq_forward, _lstm_seq_backward) if cell == "lstm" else
                         (_gru_seq_forward, _gru_seq_backward))
    want, res = forward(*args)
    g = RNG.standard_normal(want.shape)
    want_grads = backward(g, res)
    got, grads = _primitive_grads(lstm_sequence if cell == "lstm" else gru_sequence, args, g)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for name, grad in zip(("x", "kernel", "recurrent", "bias", "h0", "c0"), grads):
        np.testing.assert_allclose(grad, want_grads[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backwards", [False, True])
@pytest.mark.parametrize("last_only", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_whole_sequence_options_equal_the_previous_implementation(cell, last_only, backwards):
    """`last_only` (the final step only) and `backwards` (steps read in reverse) against
    the previous implementation run on reversed inputs and sliced afterwards."""
    from distflow.keras.layers.recurrent_sequence import gru_sequence, lstm_sequence

    (x, k, r, b), h0, c0 = _sequence_inputs(4 if cell == "lstm" else 3, cell == "gru")
    args = (x, k, r, b, h0, c0) if cell == "lstm" else (x, k, r, b, h0)
    forward, backward = ((_lstm_seq_forward, _lstm_seq_backward) if cell == "lstm" else
                         (_gru_seq_forward, _gru_seq_backward))
    want, res = forward(x[:, ::-1].copy() if backwards else x, *args[1:])
    g = RNG.standard_normal(want.shape)
    if last_only:
        g[:, :-1] = 0
    want_grads = backward(g, res)
    got, grads = _primitive_grads(lstm_sequence if cell == "lstm" else gru_sequence, args,
                                  g[:, -1] if last_only else g, last_only=last_only,
                                  backwards=backwards)
    np.testing.assert_allclose(got, want[:, -1] if last_only else want, rtol=1e-12)
    want_dx = want_grads["x"][:, ::-1] if backwards else want_grads["x"]
    np.testing.assert_allclose(grads[0], want_dx, rtol=1e-10, atol=1e-12)
    for name, grad in zip(("kernel", "recurrent", "bias", "h0", "c0"), grads[1:]):
        np.testing.assert_allclose(grad, want_grads[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("params", [{}, {"last_only": True}, {"backwards": True},
                                    {"last_only": True, "backwards": True}])
def test_whole_sequence_options_match_central_differences(params):
    from distflow.keras.layers.recurrent_sequence import gru_sequence, lstm_sequence

    (x, k, r, b), h0, c0 = _sequence_inputs(4)
    check_grads(lambda *a: lstm_sequence(*a, **params), [x, k, r, b, h0, c0], rtol=1e-5)
    (x, k, r, b), h0, _ = _sequence_inputs(3, two_bias=True)
    check_grads(lambda *a: gru_sequence(*a, **params), [x, k, r, b, h0], rtol=1e-5)


def test_sequence_buffers_are_reused_only_once_released(monkeypatch):
    """Two forwards before either backward (two layers of one shape, or one layer called
    twice) keep their own buffers; once a result and its tape are gone, the next call
    of the same shape reuses the memory (the `s` buffer's, recorded from `twin.array`)."""
    from distflow import twin
    from distflow.keras.layers import recurrent_sequence

    taken, real = [], twin.array

    def recording(shape, dtype):
        array = real(shape, dtype)
        taken.append((tuple(shape), array.__array_interface__["data"][0]))
        return array
    monkeypatch.setattr(twin, "array", recording)
    (x, k, r, b), h0, c0 = _sequence_inputs(4, steps=6, batch=4, units=3)
    x2 = RNG.standard_normal(x.shape)
    tensors = [df.constant(a) for a in (x, x2, k, r, b, h0, c0)]
    with df.GradientTape(persistent=True) as tape:
        tape.watch(tensors)
        first = recurrent_sequence.lstm_sequence(tensors[0], *tensors[2:])
        second = recurrent_sequence.lstm_sequence(tensors[1], *tensors[2:])
        loss1, loss2 = df.reduce_sum(first * first), df.reduce_sum(second * second)
    assert not np.shares_memory(first.value, second.value)
    for loss, xi in ((loss1, x), (loss2, x2)):
        want, res = _lstm_seq_forward(xi, k, r, b, h0, c0)
        want_grads = _lstm_seq_backward(2 * want, res)
        got = tape.gradient(loss, tensors[2:])
        for name, grad in zip(("kernel", "recurrent", "bias", "h0", "c0"), got):
            np.testing.assert_allclose(grad.numpy(), want_grads[name], rtol=1e-10)
    s_buffers = [address for shape, address in taken if shape == (7 * 4 * (2 + 1 + 3),)]
    assert len(s_buffers) == 2 and s_buffers[0] != s_buffers[1]
    del tape, first, second, loss1, loss2, loss
    gc.collect()  # a persistent tape's records form cycles: now nothing holds the buffers
    recurrent_sequence.lstm_sequence(*tensors[:1], *tensors[2:])
    assert [address for shape, address in taken if shape == (7 * 4 * 6,)][2] == s_buffers[0]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("params", [{}, {"last_only": True}])
def test_sequence_outputs_and_gradients_outlive_the_buffers(cell, params):
    """Results of calls whose residuals are gone (no tape) stay intact through the
    next calls of the same shape, which reuse the buffers; so do state gradients."""
    primitive, args, g, want, _ = _cell_case(cell, params)
    others = (args[0][::-1].copy(), *args[1:])
    first = primitive(*(df.constant(a) for a in args), **params).numpy()
    primitive(*(df.constant(a) for a in others), **params)
    np.testing.assert_allclose(first, want, rtol=1e-12)
    states = _primitive_grads(primitive, args, g, **params)[1][4:]
    kept = [s.copy() for s in states]
    _primitive_grads(primitive, others, g, **params)
    for state, copy in zip(states, kept):
        np.testing.assert_array_equal(state, copy)


@pytest.fixture
def twin_runs(monkeypatch, twin_splits):
    """`twin_splits`, with every call that could use the twins recorded as (kernel
    name, whether the twins ran its ranges)."""
    from distflow import twin

    runs, real = [], twin._run_on_twins

    def recording(twins, fn, parts, args):
        ran = real(twins, fn, parts, args)
        runs.append((fn.__name__, ran))
        return ran
    monkeypatch.setattr(twin, "_run_on_twins", recording)
    return runs


@pytest.fixture
def twin_splits(monkeypatch, intra_op_regions):
    """`intra_op_regions`, with every `twin.split` recorded as (kernel name, count,
    ranges) (the real split runs)."""
    from distflow import twin

    calls, real = [], twin.split

    def recording(count, fn, *args):
        parts = real(count, fn, *args)
        calls.append((fn.__name__, count, parts))
        return parts
    monkeypatch.setattr(twin, "split", recording)
    return calls


def _split_parts(calls, kernel):
    """How many ranges each recorded `twin.split` of `kernel` ran."""
    return [len(parts) for name, _, parts in calls if name == kernel]


def _on_threads(threads, primitive, args, g, **params):
    df.config.threading.set_intra_op_parallelism_threads(threads)
    return _primitive_grads(primitive, args, g, **params)


def _cell_case(cell, params, steps=5, batch=5):
    """(primitive, args, upstream gradient, expected output, expected gradients by
    name) for `cell` with `params`, from the previous implementation run on reversed
    inputs for `backwards` (the upstream gradient on every step, or the last)."""
    from distflow.keras.layers.recurrent_sequence import gru_sequence, lstm_sequence

    lstm = cell == "lstm"
    (x, k, r, b), h0, c0 = _sequence_inputs(4 if lstm else 3, not lstm, steps, batch)
    args = (x, k, r, b, h0, c0) if lstm else (x, k, r, b, h0)
    forward, backward = ((_lstm_seq_forward, _lstm_seq_backward) if lstm else
                         (_gru_seq_forward, _gru_seq_backward))
    last_only, backwards = params.get("last_only", False), params.get("backwards", False)
    want, res = forward(x[:, ::-1].copy() if backwards else x, *args[1:])
    g = RNG.standard_normal(want.shape)
    if last_only:
        g[:, :-1] = 0
    want_grads = backward(g, res)
    want_grads["x"] = want_grads["x"][:, ::-1] if backwards else want_grads["x"]
    return (lstm_sequence if lstm else gru_sequence, args, g[:, -1] if last_only else g,
            want[:, -1] if last_only else want, want_grads)


GRAD_NAMES = ("x", "kernel", "recurrent", "bias", "h0", "c0")
needs_settable_blas = pytest.mark.skipif(
    __import__("distflow.intra_op").intra_op.blas_threads() is None,
    reason="no settable OpenBLAS")


@needs_settable_blas
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("batch", [4, 5])
@pytest.mark.parametrize("params", [{}, {"last_only": True}, {"backwards": True},
                                    {"last_only": True, "backwards": True}])
def test_sequence_splits_the_batch_on_two_threads(cell, params, batch, twin_splits):
    """On two threads the forward and the backward recurrence each run as two batch
    ranges (`twin.split`, uneven for an odd batch); outputs equal the one-thread run's
    bit for bit (ranges of at least two rows: a one-row product is a matrix-vector
    product in NumPy, rounded otherwise), and they and every gradient equal the previous
    implementation's, with the upstream gradient on every step."""
    primitive, args, g, want, want_grads = _cell_case(cell, params, batch=batch)
    one = _on_threads(1, primitive, args, g, **params)
    assert [len(parts) for *_, parts in twin_splits] == [1, 1]
    two = _on_threads(2, primitive, args, g, **params)
    assert _split_parts(twin_splits, f"_{cell}_forward_block") == [1, 2]
    assert _split_parts(twin_splits, f"_{cell}_backward_blocks") == [1, 2]
    assert twin_splits[2][2] == [(0, batch // 2), (batch // 2, batch)]
    np.testing.assert_array_equal(two[0], one[0])
    for got in (one, two):
        np.testing.assert_allclose(got[0], want, rtol=1e-12)
        for name, grad in zip(GRAD_NAMES, got[1]):
            np.testing.assert_allclose(grad, want_grads[name], rtol=1e-10, atol=1e-12)


@needs_settable_blas
def test_lstm_sequence_gradients_on_two_threads_match_central_differences(twin_splits):
    from distflow.keras.layers.recurrent_sequence import lstm_sequence

    df.config.threading.set_intra_op_parallelism_threads(2)
    (x, k, r, b), h0, c0 = _sequence_inputs(4, batch=4)
    for params in ({}, {"last_only": True, "backwards": True}):
        check_grads(lambda *a, p=params: lstm_sequence(*a, **p), [x, k, r, b, h0, c0],
                    rtol=1e-5)
    assert 2 in _split_parts(twin_splits, "_lstm_backward_blocks")


@needs_settable_blas
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("options", [
    dict(return_sequences=True, return_state=True),
    dict(return_sequences=False, go_backwards=True),
    dict(return_sequences=True, go_backwards=True, use_bias=False)])
def test_recurrent_layer_trains_alike_on_one_and_two_threads(cell, options, twin_splits):
    """A float32 LSTM or GRU layer (initial states given): outputs, states and the
    gradients of the input, the states and the weights agree on 1 and 2 threads to
    float32 rounding."""
    layer = getattr(layers, cell)(16, **options)
    x = RNG.standard_normal((6, 7, 3)).astype(np.float32)
    states = [RNG.standard_normal((6, 16)).astype(np.float32)
              for _ in range(2 if cell == "LSTM" else 1)]
    layer(x, initial_state=states)
    randomize(layer)
    results = []
    for threads in (1, 2):
        df.config.threading.set_intra_op_parallelism_threads(threads)
        xt, st = df.constant(x), [df.constant(s) for s in states]
        with df.GradientTape() as tape:
            tape.watch([xt, *st])
            out = layer(xt, initial_state=st)
            outs = out if isinstance(out, list) else [out]
            loss = sum(df.reduce_sum(o * df.cos(o)) for o in outs)
        results.append([o.numpy() for o in outs] + [t.numpy() for t in tape.gradient(
            loss, [xt, *st, *layer.trainable_weights])])
    assert _split_parts(twin_splits, f"_{cell.lower()}_backward_blocks") == [1, 2]
    for a, e in zip(*results):
        np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-6)


@needs_settable_blas
@pytest.mark.parametrize("threads", [1, 2])
def test_lstm_sequence_backward_twice_with_other_upstream_gradients(threads, twin_splits):
    """Two gradients of one forward (a persistent tape, two losses): the second backward
    reuses what the first formed from the forward's residuals and still equals the
    previous implementation's, on one and two threads."""
    from distflow.keras.layers.recurrent_sequence import lstm_sequence

    df.config.threading.set_intra_op_parallelism_threads(threads)
    (x, k, r, b), h0, c0 = _sequence_inputs(4, steps=6, batch=4)
    want, res = _lstm_seq_forward(x, k, r, b, h0, c0)
    tensors = [df.constant(a) for a in (x, k, r, b, h0, c0)]
    upstream = [RNG.standard_normal(want.shape) for _ in range(2)]
    with df.GradientTape(persistent=True) as tape:
        tape.watch(tensors)
        out = lstm_sequence(*tensors)
        losses = [df.reduce_sum(out * df.constant(g)) for g in upstream]
    for loss, g in zip(losses, upstream):
        want_grads = _lstm_seq_backward(g, res)
        got = tape.gradient(loss, tensors)
        for name, grad in zip(("x", "kernel", "recurrent", "bias", "h0", "c0"), got):
            np.testing.assert_allclose(grad.numpy(), want_grads[name], rtol=1e-10,
                                       atol=1e-12)


@needs_settable_blas
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("threads", [(2, 1), (1, 2)])
@pytest.mark.parametrize("params", [{}, {"last_only": True, "backwards": True}])
def test_sequence_backward_on_another_thread_count_than_its_forward(
        cell, threads, params, twin_splits):
    """The backward takes the forward's batch ranges whatever the thread count is by
    then: two ranges on one thread, one range with two threads configured."""
    primitive, args, g, _, want_grads = _cell_case(cell, params)
    tensors = [df.constant(a) for a in args]
    df.config.threading.set_intra_op_parallelism_threads(threads[0])
    with df.GradientTape() as tape:
        tape.watch(tensors)
        loss = df.reduce_sum(primitive(*tensors, **params) * df.constant(g))
    df.config.threading.set_intra_op_parallelism_threads(threads[1])
    got = tape.gradient(loss, tensors)
    assert _split_parts(twin_splits, f"_{cell}_backward_blocks") == [min(threads)]
    assert len(twin_splits[0][2]) == threads[0]  # the forward's ranges
    for name, grad in zip(GRAD_NAMES, got):
        np.testing.assert_allclose(grad.numpy(), want_grads[name], rtol=1e-10, atol=1e-12)


@needs_settable_blas
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("params", [{}, {"last_only": True, "backwards": True}])
def test_sequence_ranges_run_in_a_twin_process(cell, params, twin_runs):
    """With twins running, the forward's and the backward's second ranges run in a twin
    process (every array argument in twin memory, else the ranges would fall back to
    threads), with the previous implementation's results."""
    from distflow import twin

    primitive, args, g, want, want_grads = _cell_case(cell, params, batch=6)
    df.config.threading.set_intra_op_parallelism_threads(2)
    if not twin.ensure_started():
        pytest.skip("twin processes cannot run here")
    got, grads = _primitive_grads(primitive, args, g, **params)
    assert twin_runs == [(f"_{cell}_forward_block", True), (f"_{cell}_backward_blocks", True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for name, grad in zip(GRAD_NAMES, grads):
        np.testing.assert_allclose(grad, want_grads[name], rtol=1e-10, atol=1e-12)


@needs_settable_blas
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_recurrent_model_fits_alike_with_twins_and_on_one_thread(cell, twin_runs):
    """`fit` of a model with a whole-sequence LSTM or GRU (return_sequences, then a
    second one over its outputs) on two threads, the ranges in a twin process, ends
    with the one-thread run's weights and losses to float32 rounding."""
    from distflow import keras, twin

    rng = np.random.default_rng(5)
    x = rng.standard_normal((24, 6, 3)).astype(np.float32)
    y = rng.integers(0, 4, 24)
    results = []
    for threads in (1, 2):
        df.config.threading.set_intra_op_parallelism_threads(threads)
        if threads == 2 and not twin.ensure_started():
            pytest.skip("twin processes cannot run here")
        keras.utils.set_random_seed(3)
        rnn = getattr(layers, cell)
        model = keras.Sequential([keras.Input((6, 3)), rnn(8, return_sequences=True),
                                  rnn(8), layers.Dense(4)])
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        history = model.fit(x, y, batch_size=12, epochs=3, shuffle=False, verbose=0)
        results.append((history.history["loss"], model.get_weights()))
    assert (f"_{cell.lower()}_backward_blocks", True) in twin_runs
    assert all(ran for _, ran in twin_runs)
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    for got, want in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@needs_settable_blas
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_long_sequence_with_gradients_on_every_step_runs_on_the_twins(cell, twin_runs):
    """Which steps have an upstream gradient travels in twin memory, not in the
    kernel's message (limited in size): 6000 steps, the gradient on every step."""
    from distflow import twin

    df.config.threading.set_intra_op_parallelism_threads(2)
    if not twin.ensure_started():
        pytest.skip("twin processes cannot run here")
    primitive, args, g, want, want_grads = _cell_case(cell, {}, steps=6000, batch=4)
    got, grads = _primitive_grads(primitive, args, g)
    assert twin_runs == [(f"_{cell}_forward_block", True), (f"_{cell}_backward_blocks", True)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for name, grad in zip(GRAD_NAMES, grads):
        np.testing.assert_allclose(grad, want_grads[name], rtol=1e-8, atol=1e-10)
