"""The whole-sequence LSTM and GRU: one fused primitive each, forward and VJP side by side.

The default LSTM and GRU layers (no mask, default activations) run the whole
sequence in one call of these primitives instead of one step primitive per time
step: the recurrence is a loop over NumPy arrays (the GRU's input projection one
matmul per batch range before it, the LSTM's one product per step with the recurrent
one, see below), and the backward recurrence runs once, in the first VJP asked for (the
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

import math

import numpy as np

from distflow import twin
from distflow.ops import Primitive

__all__ = ["gru_sequence", "lstm_sequence"]


def _half_sigmoid_columns(width: int, gated: int, dtype) -> np.ndarray:
    """Column scale of the pre-activations: 1/2 on the first `gated` (sigmoid) columns."""
    scale = np.ones(width, dtype)
    scale[:gated] = 0.5
    return scale


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


def _block(buffer: np.ndarray, lo: int, hi: int, lead: tuple, tail: tuple) -> np.ndarray:
    """Rows lo:hi of a blocked 1-D buffer (batch * prod(lead) * prod(tail) long) as
    their contiguous (*lead, hi - lo, *tail) block."""
    per = math.prod(lead) * math.prod(tail)
    return buffer[lo * per:hi * per].reshape(*lead, hi - lo, *tail)


def _from_blocks(rows: np.ndarray, blocks: tuple, steps: int) -> np.ndarray:
    """Blocked time-major rows (steps * batch, width) as (batch, steps, width): a view
    for one block, else one copy."""
    views = [rows[steps * lo:steps * hi].reshape(steps, hi - lo, -1).transpose(1, 0, 2)
             for lo, hi in blocks]
    return views[0] if len(views) == 1 else np.concatenate(views)


def _inputs_grad(g: np.ndarray, r: dict, backward) -> np.ndarray:
    """The VJP of x (batch, steps, features): one GEMM from the time-major gradient rows
    of the input projection, formed only when x needs a gradient (a model's input
    does not)."""
    grads = backward(g, r)
    dx = _from_blocks(grads["x rows"] @ grads["x kernel"].T, r["blocks"], r["steps"])
    return dx[:, ::-1] if r["backwards"] else dx


def _previous_outputs_grad(hs: np.ndarray, h0: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """sum_t h_{t-1}^T d_t over time-major rows (h_{-1} = h0): the recurrent kernel's
    gradient as two GEMMs over views, without stacking the shifted outputs."""
    batch, units = h0.shape
    return hs[:-1].reshape(-1, units).T @ flat[batch:] + h0.T @ flat[:batch]


def _twin_upstream(g: np.ndarray, r: dict) -> tuple:
    """The upstream gradient where twins read it as (batch, steps', width), and `live`
    (steps,) in twin memory: for each step, its index into g's steps, or -1 where the
    gradient is zero (for `last_only`, every step but the last). In twin memory rather
    than the kernel's message, whose size is limited."""
    live = twin.array((r["steps"],), np.int64)
    live[:] = -1
    if r["last_only"]:
        live[-1] = 0
        return twin.shared(g[:, None]), live
    nonzero = g.any(axis=(0, 2))
    live[nonzero] = np.flatnonzero(nonzero)
    return twin.shared(g), live


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
# - `s` (steps + 1, batch, inner = features + 1 + units): row block t holds
#   [x_t, 1, h_{t-1}], step t's input to one product with w = [kernel; bias; recurrent]
#   (sigmoid columns halved), which gives the pre-activations with the input projection
#   and the bias added; the step writes h_t into row block t + 1, and the weight
#   gradients are one product of s's rows with the pre-activation gradients. c_t is in
#   `cs` (steps + 1, batch, units).
# - `acts` (steps, 4, batch, units): pre-activations, gate by gate, then in place
#   sigmoid(i, f, o) and tanh(g); `th` (steps, batch, units): tanh(c_t). The product
#   writes the four gates' blocks (one batched call), so every gate's block is
#   contiguous: NumPy's passes over contiguous blocks cost 2-5x less than over the
#   column blocks of a (batch, 4 units) row.
#
# Samples are independent, so the batch is cut into one contiguous row range per
# intra-op thread (`twin.split`: the first range here, the others in twin processes),
# each range running the one-thread recurrence over its rows, forward and backward.
# The buffers live in twin memory, laid out in blocks: the rows of range (lo, hi) are one
# contiguous time-major block (`_block`), so each step of a range is one product over
# contiguous rows and a range's weight-gradient rows are one matrix. With one range, the
# blocks are the plain time-major layout. The backward takes the forward's ranges
# (r["blocks"]) whatever the thread count is by then.


def _lstm_order(units: int) -> np.ndarray:
    """Keras's gate columns (i, f, g, o) in internal order (i, f, o, g); its own inverse."""
    return np.r_[0:2 * units, 3 * units:4 * units, 2 * units:3 * units]


def _lstm_weights(kernel, recurrent, bias, units: int) -> np.ndarray:
    """[kernel; bias; recurrent] in internal gate order, sigmoid columns halved, as
    (4, rows, units) in twin memory: one matrix per gate, written gate by gate (one
    pass per part, no concatenated or permuted temporaries)."""
    features = kernel.shape[0]
    w = twin.array((4, features + 1 + units, units), recurrent.dtype)
    for gate, (keras_gate, scale) in enumerate(((0, 0.5), (1, 0.5), (3, 0.5), (2, 1.0))):
        cols = slice(keras_gate * units, (keras_gate + 1) * units)
        np.multiply(kernel[:, cols], scale, out=w[gate, :features])
        np.multiply(bias[cols], scale, out=w[gate, features])
        np.multiply(recurrent[:, cols], scale, out=w[gate, features + 1:])
    return w


def _lstm_blocks(lo: int, hi: int, dims: tuple, s, acts, th, cs) -> tuple:
    """Rows lo:hi's blocks of the forward's buffers, dims = (steps, inner, units):
    s (steps + 1, n, inner), acts (steps, 4, n, units), th (steps, n, units),
    cs (steps + 1, n, units)."""
    steps, inner, units = dims
    return (_block(s, lo, hi, (steps + 1,), (inner,)),
            _block(acts, lo, hi, (steps, 4), (units,)), _block(th, lo, hi, (steps,), (units,)),
            _block(cs, lo, hi, (steps + 1,), (units,)))


def _lstm_fill(s, cs, x, init, backwards: bool) -> None:
    """A block's inputs: s's rows [x_t, 1] and h0 (x (n, steps, features) reversed in
    time if `backwards`, init (n, 2 units) = [h0, c0]) and cs[0] = c0."""
    features, units = x.shape[2], cs.shape[2]
    s[:-1, :, :features] = (x[:, ::-1] if backwards else x).transpose(1, 0, 2)
    s[:-1, :, features] = 1
    s[0, :, features + 1:] = init[:, :units]
    cs[0] = init[:, units:]


def _lstm_forward_rows(s, w, acts, th, cs) -> None:
    """The recurrence over every step of one block's rows (see `_lstm_blocks`)."""
    units, inner = th.shape[2], w.shape[1]
    ig = np.empty(th.shape[1:], acts.dtype)
    for t in range(acts.shape[0]):
        z, tc, c_new = acts[t], th[t], cs[t + 1]
        np.matmul(s[t], w, out=z)
        np.tanh(z, out=z)
        _sigmoid_in_place(z[:3])
        i, f, o, g = z
        np.multiply(f, cs[t], out=c_new)
        c_new += np.multiply(i, g, out=ig)
        np.tanh(c_new, out=tc)
        np.multiply(o, tc, out=s[t + 1, :, inner - units:])


@twin.kernel
def _lstm_forward_block(part: int, lo: int, hi: int, x, init, w, s, acts, th, cs,
                        backwards: bool) -> None:
    """The forward of batch rows lo:hi (twin.split's range `part`): fills their blocks
    of the buffers from x and init = [h0, c0], then runs the recurrence."""
    units = init.shape[1] // 2
    sb, ab, tb, cb = _lstm_blocks(lo, hi, (x.shape[1], w.shape[1], units), s, acts, th, cs)
    _lstm_fill(sb, cb, x[lo:hi], init[lo:hi], backwards)
    _lstm_forward_rows(sb, w, ab, tb, cb)


def _lstm_outputs(s, cs, blocks: tuple, dims: tuple, last_only: bool) -> np.ndarray:
    """A new (batch, steps, 2 units) array of h_t and c_t side by side (from s and cs),
    or (batch, 2 units) for the final step with `last_only`."""
    steps, inner, units = dims
    batch = blocks[-1][1]
    out = np.empty((batch, 2 * units) if last_only else (batch, steps, 2 * units), s.dtype)
    for lo, hi in blocks:
        sb, cb = (_block(buffer, lo, hi, (steps + 1,), (width,))
                  for buffer, width in ((s, inner), (cs, units)))
        h, c = sb[1:, :, inner - units:], cb[1:]
        if last_only:
            out[lo:hi, :units], out[lo:hi, units:] = h[-1], c[-1]
        else:
            out[lo:hi, :, :units] = h.transpose(1, 0, 2)
            out[lo:hi, :, units:] = c.transpose(1, 0, 2)
    return out


def _lstm_seq_forward(x, kernel, recurrent, bias, h0, c0, last_only=False, backwards=False):
    """x (batch, steps, features) -> (batch, steps, 2 * units): h_t and c_t side by
    side; with `last_only`, (batch, 2 * units) for the final step."""
    (batch, steps, features), units, dtype = x.shape, h0.shape[1], recurrent.dtype
    dims = (steps, features + 1 + units, units)
    w = _lstm_weights(kernel, recurrent, bias, units)
    init = twin.array((batch, 2 * units), dtype)
    np.concatenate([h0, c0], axis=1, out=init)
    s = twin.array(((steps + 1) * batch * dims[1],), dtype)
    acts = twin.array((steps * 4 * batch * units,), dtype)
    th = twin.array((steps * batch * units,), dtype)
    cs = twin.array(((steps + 1) * batch * units,), dtype)
    blocks = tuple(twin.split(batch, _lstm_forward_block, twin.shared(x), init, w, s, acts, th,
                              cs, backwards))
    return _lstm_outputs(s, cs, blocks, dims, last_only), {
        "s": s, "cs": cs, "kernel": kernel, "recurrent": recurrent, "acts": acts, "th": th,
        "dims": dims, "blocks": blocks, "steps": steps, "batch": batch,
        "last_only": last_only, "backwards": backwards, "for": None, "grads": None}


def _lstm_backward_step(dh, dc, a, tc, h, c_prev, d, scratch, rb) -> None:
    """One step back in place: dh, dc (at step t) -> d (pre-activation rows, i f o g)
    and dh, dc at step t - 1; a the step's activations (4, batch, units), tc =
    tanh(c_t), h = h_t; the gate gradients formed gate by gate in scratch."""
    units = dh.shape[1]
    sl, e, tmp = scratch
    i, f, o, g = a
    np.multiply(a, a, out=sl)
    np.subtract(a[:3], sl[:3], out=sl[:3])  # s (1 - s)
    np.subtract(1, sl[3], out=sl[3])  # 1 - tanh^2
    np.multiply(h, tc, out=tmp)  # o (1 - tanh(c)^2) = o - h tanh(c)
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


def _lstm_backward_rows(blocks: tuple, g, live: list, rb, d, dh, dc, dw) -> None:
    """The backward recurrence over one block's rows: blocks = (s, acts, th, cs) as
    `_lstm_blocks`, g (n, steps', 2 units) the upstream gradient at the steps of `live`
    (a list: index into g's steps, or -1); d (steps, n, 4 units) the pre-activation gradients,
    dh, dc the state gradients (from zero, ending at h0 and c0's), dw (inner, 4 units)
    the block's weight gradient: its rows of s against d."""
    s, acts, th, cs = blocks
    (steps, n, units), inner = th.shape, s.shape[2]
    scratch = (np.empty((4, n, units), s.dtype), np.empty((4, n, units), s.dtype),
               np.empty((n, units), s.dtype))
    dh[...], dc[...] = 0, 0
    for t in range(steps - 1, -1, -1):
        if live[t] >= 0:
            dh += g[:, live[t], :units]
            dc += g[:, live[t], units:]
        _lstm_backward_step(dh, dc, acts[t], th[t], s[t + 1, :, inner - units:], cs[t], d[t],
                            scratch, rb)
    np.matmul(s[:steps].reshape(steps * n, inner).T, d.reshape(steps * n, -1), out=dw)


@twin.kernel
def _lstm_backward_blocks(part: int, start: int, stop: int, g, live, rb, s, acts, th, cs,
                          dz, dstate, partial, blocks, dims) -> None:
    """The backward of the forward's blocks start:stop (twin.split's range `part`):
    each block's rows of dz and dstate = (dh0, dc0) and its weight-gradient partial
    partial[block]; `live` as `_twin_upstream`'s."""
    steps, units = dims[0], dims[2]
    live = live.tolist()
    for b in range(start, stop):
        lo, hi = blocks[b]
        _lstm_backward_rows(_lstm_blocks(lo, hi, dims, s, acts, th, cs), g[lo:hi], live, rb,
                            _block(dz, lo, hi, (steps,), (4 * units,)), dstate[0, lo:hi],
                            dstate[1, lo:hi], partial[b])


def _lstm_seq_backward(g, r) -> dict:
    """Runs the recurrence backwards once per upstream gradient; every VJP reads it:
    one `_lstm_backward_blocks` per range of the forward's blocks, then the blocks'
    weight-gradient partials summed in block order."""
    if r["for"] is g:
        return r["grads"]
    s, (steps, inner, units), blocks = r["s"], r["dims"], r["blocks"]
    features, batch, cols = r["kernel"].shape[0], r["batch"], _lstm_order(units)
    rb = twin.copy(r["recurrent"][:, cols].T)
    gs, live = _twin_upstream(g, r)
    dz = twin.array((steps * batch * 4 * units,), s.dtype)
    dstate = twin.array((2, batch, units), s.dtype)
    partial = twin.array((len(blocks), inner, 4 * units), s.dtype)
    twin.split(len(blocks), _lstm_backward_blocks, gs, live, rb, s, r["acts"], r["th"],
               r["cs"], dz, dstate, partial, blocks, r["dims"])
    dw = np.add.reduce(partial)[:, cols]  # in block order
    grads = {"x rows": dz.reshape(-1, 4 * units), "x kernel": r["kernel"][:, cols],
             "kernel": dw[:features], "recurrent": dw[features + 1:], "bias": dw[features],
             "h0": dstate[0], "c0": dstate[1]}
    r["for"], r["grads"] = g, grads
    return grads


lstm_sequence = Primitive("keras_lstm_sequence", _lstm_seq_forward, _seq_vjps(
    _lstm_seq_backward, ("kernel", "recurrent", "bias", "h0", "c0")))


# -------------------------------------------------------- whole-sequence GRU
#
# Each step's row block of `acts` holds the input projection (gates z, r, h; the z and
# r columns with both biases), then in place sigmoid(z), sigmoid(r) and the candidate.
# The backward writes each step's gradients into one (batch, 4 * units) row block:
# [d candidate, d z, d r, d candidate * r]. Its first three blocks are the input
# projection's gradient (gates ordered h, z, r) and its last three the recurrent
# product's (z, r, h: Keras's order), so neither needs a copy. The batch is cut into
# ranges and the buffers laid out in blocks as the LSTM's (see above).


def _gru_input_order(units: int) -> np.ndarray:
    return np.r_[2 * units:3 * units, 0:2 * units]


def _gru_weights(kernel, recurrent, bias, units: int) -> np.ndarray:
    """(features + 1 + units + 1, 3 units) in twin memory: the kernel and the input
    bias (the z and r columns with both biases), the recurrent kernel, sigmoid columns
    halved, then the recurrent bias (its candidate columns are read)."""
    features = kernel.shape[0]
    half = _half_sigmoid_columns(3 * units, 2 * units, recurrent.dtype)
    w = twin.array((features + units + 2, 3 * units), recurrent.dtype)
    np.multiply(kernel, half, out=w[:features])
    np.add(bias[0], bias[1], out=w[features])
    w[features, 2 * units:] = bias[0, 2 * units:]  # z and r add both biases
    w[features] *= half
    np.multiply(recurrent, half, out=w[features + 1:-1])
    w[-1] = bias[1]
    return w


def _gru_blocks(lo: int, hi: int, dims: tuple, xt, acts, rhs, hs) -> tuple:
    """Rows lo:hi's blocks of the forward's buffers, dims = (steps, features, units):
    xt (steps, n, features) the inputs time-major, acts (steps, n, 3 units), rhs and hs
    (steps, n, units)."""
    steps, features, units = dims
    return (_block(xt, lo, hi, (steps,), (features,)),
            _block(acts, lo, hi, (steps,), (3 * units,)),
            _block(rhs, lo, hi, (steps,), (units,)), _block(hs, lo, hi, (steps,), (units,)))


def _gru_forward_rows(w, h, acts, rhs, hs) -> None:
    """The recurrence over every step of one block's rows from h = h0, acts holding the
    input projection (see `_gru_blocks`)."""
    units = hs.shape[2]
    rk, b_rh = w[-units - 1:-1], w[-1, 2 * units:]
    rec, rrh = np.empty((h.shape[0], 3 * units), w.dtype), np.empty(h.shape, w.dtype)
    for t in range(acts.shape[0]):
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


@twin.kernel
def _gru_forward_block(part: int, lo: int, hi: int, x, w, h0, xt, acts, rhs, hs,
                       backwards: bool) -> None:
    """The forward of batch rows lo:hi (twin.split's range `part`): their inputs
    time-major (reversed in time if `backwards`), one product for the input
    projection of every step, then the recurrence."""
    steps, features = x.shape[1:]
    xb, ab, rb, hb = _gru_blocks(lo, hi, (steps, features, h0.shape[1]), xt, acts, rhs, hs)
    xb[...] = (x[lo:hi, ::-1] if backwards else x[lo:hi]).transpose(1, 0, 2)
    flat = ab.reshape(-1, ab.shape[2])
    np.matmul(xb.reshape(-1, features), w[:features], out=flat)
    flat += w[features]
    _gru_forward_rows(w, h0[lo:hi], ab, rb, hb)


def _gru_seq_forward(x, kernel, recurrent, bias, h0, last_only=False, backwards=False):
    """GRU (reset_after, default activations) over the sequence -> (batch, steps, units)
    ((batch, units) with `last_only`); bias is (2, 3 * units): the input bias row, then
    the recurrent bias row."""
    (batch, steps, features), units, dtype = x.shape, h0.shape[1], recurrent.dtype
    w = _gru_weights(kernel, recurrent, bias, units)
    xt = twin.array((steps * batch * features,), dtype)
    acts = twin.array((steps * batch * 3 * units,), dtype)
    rhs, hs = (twin.array((steps * batch * units,), dtype) for _ in range(2))
    h0 = twin.shared(h0)
    blocks = tuple(twin.split(batch, _gru_forward_block, twin.shared(x), w, h0, xt, acts, rhs,
                              hs, backwards))
    if last_only:
        outputs = np.concatenate([_block(hs, lo, hi, (steps,), (units,))[-1]
                                  for lo, hi in blocks])
    else:
        outputs = _from_blocks(hs.reshape(-1, units), blocks, steps)
    return outputs, {
        "xt": xt, "kernel": kernel, "recurrent": recurrent, "h0": h0, "acts": acts,
        "rhs": rhs, "hs": hs, "dims": (steps, features, units), "steps": steps,
        "batch": batch, "blocks": blocks, "last_only": last_only, "backwards": backwards,
        "for": None, "grads": None}


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


def _gru_backward_rows(blocks: tuple, h0, g, live: list, rb, ds, dh, dw) -> None:
    """The backward recurrence over one block's rows: blocks = (xt, acts, rhs, hs) as
    `_gru_blocks`, h0 its initial states, g (n, steps', units) the upstream gradient at
    the steps of `live` (a list: index into g's steps, or -1); ds (steps, n, 4 units) the
    step gradients (see above), dh the state gradient (from zero, ending at h0's), dw
    (features + units + 2, 3 units) the block's weight gradients: kernel, recurrent
    kernel, input bias (gates h, z, r), recurrent bias (z, r, h)."""
    xt, acts, rhs, hs = blocks
    (steps, n, units), features = hs.shape, xt.shape[2]
    sl, tmp = np.empty((n, 3 * units), hs.dtype), np.empty((n, units), hs.dtype)
    dh[...] = 0
    for t in range(steps - 1, -1, -1):
        if live[t] >= 0:
            dh += g[:, live[t]]
        _gru_backward_step(dh, acts[t], rhs[t], hs[t - 1] if t else h0, ds[t], sl, tmp, rb)
    flat = ds.reshape(-1, 4 * units)
    flat_x, flat_r = flat[:, :3 * units], flat[:, units:]
    np.matmul(xt.reshape(-1, features).T, flat_x, out=dw[:features])
    dw[features:features + units] = _previous_outputs_grad(hs, h0, flat_r)
    dw[-2], dw[-1] = _column_sums(flat_x), _column_sums(flat_r)


@twin.kernel
def _gru_backward_blocks(part: int, start: int, stop: int, g, live, recurrent, h0, xt, acts,
                         rhs, hs, ds, dh, partial, blocks, dims) -> None:
    """The backward of the forward's blocks start:stop (twin.split's range `part`):
    each block's rows of ds and dh (h0's gradient) and its weight-gradient partial
    partial[block]; `live` as `_twin_upstream`'s."""
    steps, units = dims[0], dims[2]
    live = live.tolist()
    for b in range(start, stop):
        lo, hi = blocks[b]
        _gru_backward_rows(_gru_blocks(lo, hi, dims, xt, acts, rhs, hs), h0[lo:hi], g[lo:hi],
                           live, recurrent.T, _block(ds, lo, hi, (steps,), (4 * units,)),
                           dh[lo:hi], partial[b])


def _gru_seq_backward(g, r) -> dict:
    """The backward recurrence, once per upstream gradient, for the five VJPs: one
    `_gru_backward_blocks` per range of the forward's blocks, then the blocks'
    weight-gradient partials summed in block order."""
    if r["for"] is g:
        return r["grads"]
    (steps, features, units), batch, blocks = r["dims"], r["batch"], r["blocks"]
    dtype = r["hs"].dtype
    gs, live = _twin_upstream(g, r)
    ds = twin.array((steps * batch * 4 * units,), dtype)
    dh = twin.array((batch, units), dtype)
    partial = twin.array((len(blocks), features + units + 2, 3 * units), dtype)
    twin.split(len(blocks), _gru_backward_blocks, gs, live, twin.shared(r["recurrent"]),
               r["h0"], r["xt"], r["acts"], r["rhs"], r["hs"], ds, dh, partial, blocks,
               r["dims"])
    dw = np.add.reduce(partial)  # in block order
    keras_order = np.argsort(_gru_input_order(units))
    flat = ds.reshape(-1, 4 * units)
    grads = {"x rows": flat[:, :3 * units], "x kernel": r["kernel"][:, _gru_input_order(units)],
             "kernel": dw[:features][:, keras_order], "recurrent": dw[features:-2],
             "bias": np.stack([dw[-2][keras_order], dw[-1]]),
             "h0": dh}
    r["for"], r["grads"] = g, grads
    return grads


gru_sequence = Primitive("keras_gru_sequence", _gru_seq_forward, _seq_vjps(
    _gru_seq_backward, ("kernel", "recurrent", "bias", "h0")))
