"""The whole-sequence LSTM and GRU: one fused primitive each, forward and VJP side by side.

The default LSTM and GRU layers (no mask, default activations) run the whole
sequence in one call of these primitives instead of one step primitive per time
step: the recurrence is a loop over NumPy arrays (the GRU's input projection one
matmul before it, the LSTM's one product per step with the recurrent one, see
below), and the backward recurrence runs once, in the first VJP asked for (the
others read its results from the residuals).

The loops are written for few NumPy calls per step on buffers allocated once per
sequence. Sigmoid gates use sigmoid(z) = 0.5 * tanh(z / 2) + 0.5 with the 1/2 folded
into the weights' columns, so one tanh pass covers every gate, and each gate's
derivative is (1 - tanh^2) up to a constant per column, which is folded into the
weights the backward GEMMs use. Parameters: `last_only` returns the final step
only (no per-step output buffer or gradient), `backwards` reads the inputs from the
last step to the first (Keras's `go_backwards`).
"""

from __future__ import annotations

import numpy as np

from distflow import intra_op, workspace
from distflow.ops import Primitive

__all__ = ["gru_sequence", "lstm_sequence"]


def _half_sigmoid_columns(width: int, gated: int, dtype) -> np.ndarray:
    """Column scale of the pre-activations: 1/2 on the first `gated` (sigmoid) columns."""
    scale = np.ones(width, dtype)
    scale[:gated] = 0.5
    return scale


def _project_time_major(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray,
                        backwards: bool, width: int):
    """x (batch, steps, features) as time-major rows (reversed in time if `backwards`),
    and rows @ kernel + bias in the first columns of a (steps, batch, width) buffer:
    one GEMM for every step."""
    batch, steps, features = x.shape
    if backwards:
        x = x[:, ::-1]
    xt = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(-1, features)
    out = workspace.reusable((steps, batch, width), kernel.dtype)
    proj = out.reshape(-1, width)[:, :kernel.shape[1]]
    np.matmul(xt, kernel, out=proj)
    proj += bias
    return xt, out


def _sigmoid_in_place(t: np.ndarray) -> None:
    """tanh(z / 2) -> sigmoid(z) = 0.5 * tanh(z / 2) + 0.5, in place."""
    t *= 0.5
    t += 0.5


def _slopes(a: np.ndarray, sl: np.ndarray, gated: int) -> None:
    """Derivatives of the activations a into sl: s (1 - s) on the first `gated`
    (sigmoid) columns, 1 - t^2 on the others (tanh)."""
    np.multiply(a, a, out=sl)
    np.subtract(a[:, :gated], sl[:, :gated], out=sl[:, :gated])
    np.subtract(1, sl[:, gated:], out=sl[:, gated:])


def _inputs_grad(g: np.ndarray, r: dict, backward) -> np.ndarray:
    """The VJP of x (batch, steps, features): one GEMM from the time-major gradient rows
    of the input projection, formed only when x needs a gradient (a model's input
    does not)."""
    grads = backward(g, r)
    flat, kernel = grads["x rows"], grads["x kernel"]
    dx = (flat @ kernel.T).reshape(r["steps"], r["batch"], -1).transpose(1, 0, 2)
    return dx[:, ::-1] if r["backwards"] else dx


def _previous_outputs_grad(hs: np.ndarray, h0: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """sum_t h_{t-1}^T d_t over time-major rows (h_{-1} = h0): the recurrent kernel's
    gradient as two GEMMs over views, without stacking the shifted outputs."""
    batch, units = h0.shape
    return hs[:-1].reshape(-1, units).T @ flat[batch:] + h0.T @ flat[:batch]


def _upstream(g: np.ndarray, r: dict):
    """The upstream gradient as time-major steps and the steps where it is nonzero
    (for `last_only`, the final step alone)."""
    steps = r["steps"]
    if r["last_only"]:
        return g[None], {steps - 1: 0}
    live = np.flatnonzero(g.any(axis=(0, 2)))
    return g.transpose(1, 0, 2), {int(t): int(t) for t in live}


def _column_sums(flat: np.ndarray) -> np.ndarray:
    return np.ones(flat.shape[0], flat.dtype) @ flat


def _seq_vjps(backward, names: tuple) -> tuple:
    """The VJPs of (x, *names): x's from `_inputs_grad`, the others read from the
    shared backward pass."""
    return ((lambda g, r: _inputs_grad(g, r, backward)),
            *((lambda g, r, n=n: backward(g, r)[n]) for n in names))


# ------------------------------------------------------- whole-sequence LSTM
#
# Internally the gates are ordered i, f, o, g (Keras: i, f, g, o) so that the three
# sigmoid gates are one contiguous block; the order is its own inverse. Buffers:
#
# - `s` (steps + 1, batch, features + 1 + 2 units): row block t holds
#   [x_t, 1, h_{t-1}, c_{t-1}]. Its first `features + 1 + units` columns are step t's
#   input to one product with w = [kernel; bias; recurrent] (sigmoid columns halved),
#   which gives the pre-activations with the input projection and the bias added; the
#   step writes h_t into row block t + 1, and the weight gradients are one product of
#   s's rows with the pre-activation gradients. The recurrence keeps c_t in its own
#   contiguous `cs` (steps + 1, batch, units), copied into s's last columns once at the
#   end when the outputs are a sequence (then a view of s).
# - `acts` (steps, 4, batch, units): pre-activations, gate by gate, then in place
#   sigmoid(i, f, o) and tanh(g); `th` (steps, batch, units): tanh(c_t). The product
#   writes the four gates' blocks (one batched call), so every gate's block is
#   contiguous: NumPy's passes over contiguous blocks cost 2-5x less than over the
#   column blocks of a (batch, 4 units) row.
#
# Samples are independent, so the batch is cut into one contiguous row range per
# intra-op thread, each range's recurrence running on its own thread (BLAS held at one
# thread); with one thread, one range.


def _lstm_order(units: int) -> np.ndarray:
    """Keras's gate columns (i, f, g, o) in internal order (i, f, o, g); its own inverse."""
    return np.r_[0:2 * units, 3 * units:4 * units, 2 * units:3 * units]


def _lstm_weights(kernel, recurrent, bias, units: int) -> np.ndarray:
    """[kernel; bias; recurrent] in internal gate order, sigmoid columns halved, as
    (4, rows, units): one matrix per gate, written gate by gate (one pass per part, no
    concatenated or permuted temporaries)."""
    features = kernel.shape[0]
    w = np.empty((4, features + 1 + units, units), recurrent.dtype)
    for gate, (keras_gate, scale) in enumerate(((0, 0.5), (1, 0.5), (3, 0.5), (2, 1.0))):
        cols = slice(keras_gate * units, (keras_gate + 1) * units)
        np.multiply(kernel[:, cols], scale, out=w[gate, :features])
        np.multiply(bias[cols], scale, out=w[gate, features])
        np.multiply(recurrent[:, cols], scale, out=w[gate, features + 1:])
    return w


def _lstm_rows_buffer(x, h0, c0, backwards: bool, dtype) -> np.ndarray:
    """The `s` buffer with x (reversed in time if `backwards`), the ones column and the
    initial states filled in."""
    batch, steps, features = x.shape
    units = h0.shape[1]
    s = workspace.reusable((steps + 1, batch, features + 1 + 2 * units), dtype)
    s[:steps, :, :features] = (x[:, ::-1] if backwards else x).transpose(1, 0, 2)
    s[:steps, :, features] = 1
    s[0, :, features + 1:] = np.concatenate([h0, c0], axis=1)
    return s


def _lstm_forward_rows(lo: int, hi: int, s, w, acts, th, cs) -> None:
    """The recurrence over every step for batch rows lo:hi."""
    units, inner = th.shape[2], w.shape[1]
    ig = np.empty((hi - lo, units), acts.dtype)
    for t in range(acts.shape[0]):
        z, tc, c_new = acts[t, :, lo:hi], th[t, lo:hi], cs[t + 1, lo:hi]
        np.matmul(s[t, lo:hi, :inner], w, out=z)
        np.tanh(z, out=z)
        _sigmoid_in_place(z[:3])
        i, f, o, g = z
        np.multiply(f, cs[t, lo:hi], out=c_new)
        c_new += np.multiply(i, g, out=ig)
        np.tanh(c_new, out=tc)
        np.multiply(o, tc, out=s[t + 1, lo:hi, inner - units:inner])


def _lstm_seq_forward(x, kernel, recurrent, bias, h0, c0, last_only=False, backwards=False):
    """x (batch, steps, features) -> (batch, steps, 2 * units): h_t and c_t side by
    side; with `last_only`, (batch, 2 * units) for the final step."""
    (batch, steps, _), units, dtype = x.shape, h0.shape[1], recurrent.dtype
    w = _lstm_weights(kernel, recurrent, bias, units)
    s = _lstm_rows_buffer(x, h0, c0, backwards, dtype)
    acts = workspace.reusable((steps, 4, batch, units), dtype)
    th = workspace.reusable((steps, batch, units), dtype)
    cs = workspace.reusable((steps + 1, batch, units), dtype)
    cs[0] = c0
    intra_op.per_thread(batch, lambda lo, hi: _lstm_forward_rows(lo, hi, s, w, acts, th, cs))
    inner = w.shape[1]
    if last_only:
        result = np.concatenate([s[-1, :, inner - units:inner], cs[-1]], axis=1)
    else:
        s[1:, :, inner:] = cs[1:]
        result = s[1:, :, inner - units:].transpose(1, 0, 2)
    return result, {"s": s, "cs": cs, "kernel": kernel, "recurrent": recurrent, "acts": acts,
                    "th": th, "steps": steps, "batch": batch, "last_only": last_only,
                    "backwards": backwards, "for": None, "grads": None}


def _lstm_backward_step(dh, dc, a, tc, hc, c_prev, d, scratch, rb) -> None:
    """One step back in place: dh, dc (at step t) -> d (pre-activation rows, i f o g)
    and dh, dc at step t - 1; a the step's activations (4, batch, units), tc =
    tanh(c_t), h_t in hc's first `units` columns; the gate gradients formed gate by
    gate in scratch."""
    units = dh.shape[1]
    sl, e, tmp = scratch
    i, f, o, g = a
    np.multiply(a, a, out=sl)
    np.subtract(a[:3], sl[:3], out=sl[:3])  # s (1 - s)
    np.subtract(1, sl[3], out=sl[3])  # 1 - tanh^2
    np.multiply(hc[:, :units], tc, out=tmp)  # o (1 - tanh(c)^2) = o - h tanh(c)
    np.subtract(o, tmp, out=tmp)
    dc += np.multiply(tmp, dh, out=tmp)  # through h = o tanh(c)
    np.multiply(dc, g, out=e[0])  # i: dc * g
    np.multiply(dc, c_prev, out=e[1])  # f: dc * c_{t-1}
    np.multiply(dh, tc, out=e[2])  # o: dh * tanh(c_t)
    np.multiply(dc, i, out=e[3])  # g: dc * i
    e *= sl
    np.copyto(d.reshape(-1, 4, units), e.transpose(1, 0, 2))
    np.matmul(d, rb, out=dh)
    dc *= f


def _lstm_factors(lo: int, hi: int, r: dict, fac: np.ndarray, p: np.ndarray) -> None:
    """The backward's factors for steps lo:hi, formed from the forward's activations in
    a few passes over blocks of many steps (no upstream gradient needed): fac[t]
    (4, batch, units), gates i f o g, [g i (1 - i), c_{t-1} f (1 - f), tanh(c_t) o (1 - o),
    i (1 - g^2)], the factors by which dc (dh for the o gate) gives each gate's
    pre-activation gradient; and p[t] = o (1 - tanh(c_t)^2) = o - h_t tanh(c_t), by
    which dh reaches dc."""
    s, units = r["s"], r["th"].shape[2]
    inner = s.shape[2] - units
    a, tc, fac, p = r["acts"][lo:hi], r["th"][lo:hi], fac[lo:hi], p[lo:hi]
    i, o, g = a[:, 0], a[:, 2], a[:, 3]
    sig = fac[:, :3]
    np.multiply(a[:, :3], a[:, :3], out=sig)
    np.subtract(a[:, :3], sig, out=sig)  # s (1 - s) for i, f, o
    fac[:, 0] *= g
    fac[:, 1] *= r["cs"][lo:hi]
    fac[:, 2] *= tc
    np.multiply(g, g, out=fac[:, 3])
    np.subtract(1, fac[:, 3], out=fac[:, 3])
    fac[:, 3] *= i
    np.multiply(s[lo + 1:hi + 1, :, inner - units:inner], tc, out=p)
    np.subtract(o, p, out=p)


def _lstm_factored_step(dh, dc, fac, p, f, d, tmp, rb) -> None:
    """`_lstm_backward_step` from the step's factors (`_lstm_factors`) and forget gate f:
    seven NumPy calls instead of fifteen."""
    units = dh.shape[1]
    gates = d.reshape(-1, 4, units).transpose(1, 0, 2)
    dc += np.multiply(p, dh, out=tmp)  # through h = o tanh(c)
    np.multiply(dc, fac[:2], out=gates[:2])  # i, f
    np.multiply(dh, fac[2], out=gates[2])  # o
    np.multiply(dc, fac[3], out=gates[3])  # g
    np.matmul(d, rb, out=dh)
    dc *= f


def _lstm_backward_steps(start: int, stop: int, r: dict, gt, live: dict, rb, dz,
                         state: tuple, factors: tuple | None) -> None:
    """The backward recurrence over steps stop - 1 down to start: dz's blocks, and
    state = (dh, dc, scratch arrays) carried from step to step; from the factors
    (fac, p) if given, else forming the slopes step by step."""
    acts, th, s, cs = r["acts"], r["th"], r["s"], r["cs"]
    units = th.shape[2]
    inner = s.shape[2] - units
    dh, dc, scratch = state
    for t in range(stop - 1, start - 1, -1):
        if t in live:
            dh += gt[live[t], :, :units]
            dc += gt[live[t], :, units:]
        if factors is not None:
            _lstm_factored_step(dh, dc, factors[0][t], factors[1][t], acts[t, 1], dz[t],
                                scratch[2], rb)
        else:
            _lstm_backward_step(dh, dc, acts[t], th[t], s[t + 1, :, inner - units:], cs[t],
                                dz[t], scratch, rb)


_CHUNK_ROWS = 512  # rows of one weight-gradient product taken while the recurrence goes on


def _backward_chunks(steps: int, batch: int) -> list[tuple[int, int]]:
    """The backward's chunks of steps (start, stop), in the order it takes them (from
    the last step): one with one thread; else about _CHUNK_ROWS rows each, the first
    half that (its loop forms its own slopes while the other thread forms the next
    chunks' factors: the sooner the recurrence reaches them the better), the last
    two a half and a quarter (the product left when the recurrence ends is small)."""
    if intra_op.threads() <= 1:
        return [(0, steps)]
    per = max(1, round(_CHUNK_ROWS / batch))
    sizes, left = [], steps
    for size in (max(1, per // 2), *[per] * steps):
        take = min(size, left)
        sizes.append(take)
        left -= take
        if left <= per:
            break
    sizes += [size for size in (left - left // 2, left // 2 - left // 4, left // 4) if size]
    bounds = np.cumsum([0, *sizes]).tolist()
    return [(steps - hi, steps - lo) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _lstm_seq_backward(g, r) -> dict:
    """Runs the recurrence backwards once per upstream gradient; every VJP reads it.

    One thread: one loop, forming the slopes step by step, then the weight gradients as
    one product of `s`'s rows against dz's. Several threads (`intra_op.pipeline`, the
    chunks of `_backward_chunks`): the steps' factors (`_lstm_factors`) formed ahead of
    the recurrence on the second thread, once per forward (a second backward reuses
    them); the recurrence on the calling thread from the factors; the weight gradients
    as one product per finished chunk, on whichever thread is free, summed in chunk
    order."""
    if r["for"] is g:
        return r["grads"]
    s, steps, batch = r["s"], r["steps"], r["batch"]
    units, features = r["th"].shape[2], r["kernel"].shape[0]
    cols = _lstm_order(units)
    rb = np.ascontiguousarray(r["recurrent"][:, cols].T)
    gt, live = _upstream(g, r)
    dz = workspace.reusable((steps, batch, 4 * units), s.dtype)
    dstate = np.zeros((2, batch, units), s.dtype)
    state = (dstate[0], dstate[1], (np.empty((4, batch, units), s.dtype),
                                    np.empty((4, batch, units), s.dtype),
                                    np.empty((batch, units), s.dtype)))
    chunks = _backward_chunks(steps, batch)
    flat = dz.reshape(-1, 4 * units)
    rows = s[:steps].reshape(steps * batch, -1)[:, :features + 1 + units]
    partial = workspace.scratch("lstm weight-gradient chunks",
                                (len(chunks), rows.shape[1], flat.shape[1]), s.dtype)
    factors, prepare = _factors_ahead(r, chunks)

    def produce(i: int) -> None:
        _lstm_backward_steps(*chunks[i], r, gt, live, rb, dz, state, factors if i else None)

    def consume(i: int) -> None:
        span = slice(chunks[i][0] * batch, chunks[i][1] * batch)
        np.matmul(rows[span].T, flat[span], out=partial[i])
    intra_op.pipeline(len(chunks), produce, consume, prepare)
    r["factors"] = factors
    dw = np.add.reduce(partial)[:, cols]  # in chunk order
    grads = {"x rows": flat, "x kernel": r["kernel"][:, cols], "kernel": dw[:features],
             "recurrent": dw[features + 1:], "bias": dw[features], "h0": dstate[0],
             "c0": dstate[1]}
    r["for"], r["grads"] = g, grads
    return grads


def _factors_ahead(r: dict, chunks: list) -> tuple:
    """(factors, prepare): the (fac, p) buffers the recurrence reads and the pipeline's
    `prepare` that forms them for a chunk (all but the first, whose loop forms its
    slopes). (None, None) with one chunk (one thread); no `prepare` once an earlier
    backward of this forward has formed them (r["factors"])."""
    if len(chunks) == 1:
        return None, None
    if r.get("factors") is not None:
        return r["factors"], None
    factors = (workspace.reusable(r["acts"].shape, r["acts"].dtype),
               workspace.reusable(r["th"].shape, r["th"].dtype))
    return factors, lambda i: _lstm_factors(*chunks[i], r, *factors)


lstm_sequence = Primitive("keras_lstm_sequence", _lstm_seq_forward, _seq_vjps(
    _lstm_seq_backward, ("kernel", "recurrent", "bias", "h0", "c0")))


# -------------------------------------------------------- whole-sequence GRU
#
# Each step's row block of `acts` holds the input projection (gates z, r, h; the z and
# r columns with both biases), then in place sigmoid(z), sigmoid(r) and the candidate.
# The backward writes each step's gradients into one (batch, 4 * units) row block:
# [d candidate, d z, d r, d candidate * r]. Its first three blocks are the input
# projection's gradient (gates ordered h, z, r) and its last three the recurrent
# product's (z, r, h: Keras's order), so neither needs a copy.


def _gru_input_order(units: int) -> np.ndarray:
    return np.r_[2 * units:3 * units, 0:2 * units]


def _gru_seq_forward(x, kernel, recurrent, bias, h0, last_only=False, backwards=False):
    """GRU (reset_after, default activations) over the sequence -> (batch, steps, units)
    ((batch, units) with `last_only`); bias is (2, 3 * units): the input bias row, then
    the recurrent bias row."""
    units, dtype = h0.shape[1], recurrent.dtype
    half = _half_sigmoid_columns(3 * units, 2 * units, dtype)
    in_bias = bias[0].copy()
    in_bias[:2 * units] += bias[1, :2 * units]  # z and r add both biases
    xt, acts = _project_time_major(x, kernel * half, in_bias * half, backwards, 3 * units)
    rk, b_rh = recurrent * half, bias[1, 2 * units:]
    steps, batch = acts.shape[:2]
    rhs, hs = (workspace.reusable((steps, batch, units), dtype) for _ in range(2))
    rec, rrh, h = np.empty((batch, 3 * units), dtype), np.empty((batch, units), dtype), h0
    for t in range(steps):
        zr, cand, out = acts[t, :, :2 * units], acts[t, :, 2 * units:], hs[t]
        np.matmul(h, rk, out=rec)
        zr += rec[:, :2 * units]
        np.tanh(zr, out=zr)
        _sigmoid_in_place(zr)
        np.add(rec[:, 2 * units:], b_rh, out=rhs[t])
        cand += np.multiply(zr[:, units:], rhs[t], out=rrh)
        np.tanh(cand, out=cand)
        np.subtract(h, cand, out=out)  # h' = cand + z (h - cand)
        out *= zr[:, :units]
        out += cand
        h = out
    result = hs[-1].copy() if last_only else hs.transpose(1, 0, 2)
    return result, {"xt": xt, "kernel": kernel, "recurrent": recurrent, "h0": h0,
                    "acts": acts, "rhs": rhs, "hs": hs, "steps": steps, "batch": batch,
                    "last_only": last_only, "backwards": backwards, "for": None, "grads": None}


def _gru_backward_step(dh, a, rh, h_prev, d, sl, tmp, rb) -> None:
    """One step back in place: dh (at step t) -> d (see above) and dh at step t - 1."""
    units = dh.shape[1]
    _slopes(a, sl, 2 * units)
    dcand = d[:, :units]
    np.multiply(dh, a[:, :units], out=tmp)
    np.subtract(dh, tmp, out=dcand)  # dh (1 - z)
    dcand *= sl[:, 2 * units:]
    np.multiply(dcand, rh, out=d[:, 2 * units:3 * units])  # r
    np.subtract(h_prev, a[:, 2 * units:], out=d[:, units:2 * units])  # z: dh (h - cand)
    d[:, units:2 * units] *= dh
    d[:, units:3 * units] *= sl[:, :2 * units]
    np.multiply(dcand, a[:, units:2 * units], out=d[:, 3 * units:])
    np.matmul(d[:, units:], rb, out=dh)
    dh += tmp


def _gru_seq_backward(g, r) -> dict:
    """The backward recurrence, once per upstream gradient, for the five VJPs."""
    if r["for"] is g:
        return r["grads"]
    acts, rhs, hs, steps, batch = (r[k] for k in ("acts", "rhs", "hs", "steps", "batch"))
    units, dtype = hs.shape[2], hs.dtype
    rb = r["recurrent"].T
    gt, live = _upstream(g, r)
    ds = workspace.reusable((steps, batch, 4 * units), dtype)
    sl, tmp = np.empty((batch, 3 * units), dtype), np.empty((batch, units), dtype)
    dh = np.zeros((batch, units), dtype)
    for t in range(steps - 1, -1, -1):
        if t in live:
            dh += gt[live[t]]
        _gru_backward_step(dh, acts[t], rhs[t], hs[t - 1] if t else r["h0"], ds[t], sl, tmp,
                           rb)
    flat = ds.reshape(-1, 4 * units)
    flat_x, flat_r = flat[:, :3 * units], flat[:, units:]
    order = _gru_input_order(units)
    keras_order = np.argsort(order)
    grads = {"x rows": flat_x, "x kernel": r["kernel"][:, order],
             "kernel": (r["xt"].T @ flat_x)[:, keras_order],
             "recurrent": _previous_outputs_grad(hs, r["h0"], flat_r),
             "bias": np.stack([_column_sums(flat_x)[keras_order], _column_sums(flat_r)]),
             "h0": dh}
    r["for"], r["grads"] = g, grads
    return grads


gru_sequence = Primitive("keras_gru_sequence", _gru_seq_forward, _seq_vjps(
    _gru_seq_backward, ("kernel", "recurrent", "bias", "h0")))
