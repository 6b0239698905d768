"""The whole-sequence LSTM and GRU: one fused primitive each, forward and VJP side by side.

The default LSTM and GRU layers (no mask, default activations) run the whole
sequence in one call of these primitives instead of one step primitive per time
step: the input projection is one matmul, the recurrence a loop over NumPy arrays,
and the backward recurrence runs once, in the first VJP asked for (the others read
its results from the residuals).

The loops are written for few NumPy calls per step on buffers allocated once per
sequence. Sigmoid gates use sigmoid(z) = 0.5 * tanh(z / 2) + 0.5 with the 1/2 folded
into the weights' columns, so one tanh pass covers every gate, and each gate's
derivative is (1 - tanh^2) up to a constant per column, which is folded into the
weights the backward GEMMs use. Parameters: `last_only` returns the final step
only (no per-step output buffer or gradient), `backwards` reads the inputs from the
last step to the first (Keras's `go_backwards`).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

import numpy as np

from distflow.ops import Primitive

__all__ = ["gru_sequence", "lstm_sequence"]


_POOL: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()  # (shape, dtype) -> arrays
_POOL_SHAPES, _POOL_DEPTH = 8, 3
_POOL_LOCK = threading.Lock()


def _buffer(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array of a sequence's size, reused across calls once nothing else
    references it (no residual, output or view of it is alive): a fresh multi-megabyte
    array costs a page fault per 4 KB on first touch, every training step."""
    key = (shape, np.dtype(dtype).str)
    with _POOL_LOCK:
        arrays = _POOL.setdefault(key, [])
        _POOL.move_to_end(key)
        for array in arrays:
            if sys.getrefcount(array) == 3:  # the list, `array`, getrefcount's argument
                return array
        array = np.empty(shape, dtype)
        if len(arrays) < _POOL_DEPTH:
            arrays.append(array)
        while len(_POOL) > _POOL_SHAPES:
            _POOL.popitem(last=False)
        return array


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
    out = _buffer((steps, batch, width), kernel.dtype)
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
# sigmoid gates are one contiguous block; the order is its own inverse. Each step's
# row block of `acts` holds the pre-activations, then in place the activations
# sigmoid(i, f, o), tanh(g), and tanh(c_t) in a fifth block.


def _lstm_order(units: int) -> np.ndarray:
    return np.r_[0:2 * units, 3 * units:4 * units, 2 * units:3 * units]


def _lstm_seq_forward(x, kernel, recurrent, bias, h0, c0, last_only=False, backwards=False):
    """x (batch, steps, features) -> (batch, steps, 2 * units): h_t and c_t side by
    side; with `last_only`, (batch, 2 * units) for the final step."""
    units, dtype = h0.shape[1], recurrent.dtype
    cols, half = _lstm_order(units), _half_sigmoid_columns(4 * units, 3 * units, dtype)
    xt, acts = _project_time_major(x, kernel[:, cols] * half, bias[cols] * half, backwards,
                                   5 * units)
    rk = recurrent[:, cols] * half
    steps, batch = acts.shape[:2]
    hc = _buffer((steps, batch, 2 * units), dtype)  # h_t, c_t
    rec, ig = np.empty((batch, 4 * units), dtype), np.empty((batch, units), dtype)
    h, c = h0, c0
    for t in range(steps):
        a, out = acts[t], hc[t]
        z, th, c_new = a[:, :4 * units], a[:, 4 * units:], out[:, units:]
        z += np.matmul(h, rk, out=rec)
        np.tanh(z, out=z)
        _sigmoid_in_place(z[:, :3 * units])
        np.multiply(z[:, units:2 * units], c, out=c_new)
        c_new += np.multiply(z[:, :units], z[:, 3 * units:], out=ig)
        np.tanh(c_new, out=th)
        np.multiply(z[:, 2 * units:3 * units], th, out=out[:, :units])
        h, c = out[:, :units], c_new
    result = hc[-1].copy() if last_only else hc.transpose(1, 0, 2)
    return result, {"xt": xt, "kernel": kernel, "recurrent": recurrent, "h0": h0, "c0": c0,
                    "acts": acts, "hc": hc, "steps": steps, "batch": batch,
                    "last_only": last_only, "backwards": backwards, "for": None, "grads": None}


def _lstm_backward_step(dh, dc, a, c_prev, d, sl, tmp, rb) -> None:
    """One step back in place: dh, dc (at step t) -> d (pre-activation, i f o g) and
    dh, dc at step t - 1."""
    units = dh.shape[1]
    _slopes(a, sl, 3 * units)
    dc += np.multiply(np.multiply(a[:, 2 * units:3 * units], sl[:, 4 * units:], out=tmp),
                      dh, out=tmp)  # through h = o tanh(c)
    np.multiply(dc, a[:, 3 * units:4 * units], out=d[:, :units])  # i: dc * g
    np.multiply(dc, c_prev, out=d[:, units:2 * units])  # f: dc * c_{t-1}
    np.multiply(dh, a[:, 4 * units:], out=d[:, 2 * units:3 * units])  # o: dh * tanh(c_t)
    np.multiply(dc, a[:, :units], out=d[:, 3 * units:])  # g: dc * i
    d *= sl[:, :4 * units]
    np.matmul(d, rb, out=dh)
    dc *= a[:, units:2 * units]


def _lstm_seq_backward(g, r) -> dict:
    """Runs the recurrence backwards once per upstream gradient; every VJP reads it."""
    if r["for"] is g:
        return r["grads"]
    acts, hc, steps, batch = r["acts"], r["hc"], r["steps"], r["batch"]
    units, dtype = hc.shape[2] // 2, acts.dtype
    cols = _lstm_order(units)
    rb = r["recurrent"][:, cols].T
    gt, live = _upstream(g, r)
    dz = _buffer((steps, batch, 4 * units), dtype)
    sl, tmp = np.empty((batch, 5 * units), dtype), np.empty((batch, units), dtype)
    dh, dc = np.zeros((batch, units), dtype), np.zeros((batch, units), dtype)
    for t in range(steps - 1, -1, -1):
        if t in live:
            dh += gt[live[t], :, :units]
            dc += gt[live[t], :, units:]
        c_prev = hc[t - 1, :, units:] if t else r["c0"]
        _lstm_backward_step(dh, dc, acts[t], c_prev, dz[t], sl, tmp, rb)
    flat = dz.reshape(-1, 4 * units)
    drec = _previous_outputs_grad(hc[:, :, :units], r["h0"], flat)
    grads = {"x rows": flat, "x kernel": r["kernel"][:, cols],
             "kernel": (r["xt"].T @ flat)[:, cols], "recurrent": drec[:, cols],
             "bias": _column_sums(flat)[cols], "h0": dh, "c0": dc}
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
    rhs, hs = _buffer((steps, batch, units), dtype), _buffer((steps, batch, units), dtype)
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
    ds = _buffer((steps, batch, 4 * units), dtype)
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
