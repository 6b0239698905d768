"""The whole-sequence LSTM and GRU as they were before the leaner loops (kept verbatim
as the reference the new forward and backward passes are compared with)."""

from __future__ import annotations

import numpy as np


def _gates_forward(z: np.ndarray, units: int) -> None:
    """In place: sigmoid on the i, f, o blocks of z, tanh on the g block."""
    sig = (slice(None, 2 * units), slice(3 * units, None))
    for s in sig:
        z[:, s] *= 0.5
    np.tanh(z, out=z)
    for s in sig:  # sigmoid(x) = 0.5 * tanh(x / 2) + 0.5
        z[:, s] *= 0.5
        z[:, s] += 0.5


def _project_time_major(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray):
    """x (batch, steps, features) as time-major rows, and rows @ kernel + bias as
    (steps, batch, width): one GEMM for every step."""
    batch, steps, features = x.shape
    xt = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(-1, features)
    proj = (xt @ kernel).reshape(steps, batch, -1)
    proj += bias
    return xt, proj


def _input_grads(flat: np.ndarray, r: dict, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of x (batch, steps, features) and of the kernel from the time-major
    gradient rows of the input projection."""
    dx = (flat @ r["kernel"].T).reshape(shape[1], shape[0], shape[2]).transpose(1, 0, 2)
    return dx, r["xt"].T @ flat


def _previous_outputs_grad(hs: np.ndarray, h0: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """sum_t h_{t-1}^T d_t over time-major rows (h_{-1} = h0): the recurrent kernel's
    gradient as two GEMMs, without stacking the shifted outputs."""
    batch, units = h0.shape
    return hs[:-1].reshape(-1, units).T @ flat[batch:] + h0.T @ flat[:batch]


def _lstm_seq_forward(x, kernel, recurrent, bias, h0, c0):
    """x (batch, steps, features) -> (batch, steps, 2 * units): h_t and c_t side by side."""
    units = h0.shape[1]
    xt, act = _project_time_major(x, kernel, bias)
    steps, batch = act.shape[:2]
    cs = np.empty((steps, batch, units), act.dtype)
    hs, ths = np.empty_like(cs), np.empty_like(cs)
    h, c = h0, c0
    rec = np.empty((batch, 4 * units), act.dtype)
    for t in range(steps):
        z = act[t]
        z += np.matmul(h, recurrent, out=rec)
        _gates_forward(z, units)
        np.multiply(z[:, units:2 * units], c, out=cs[t])
        cs[t] += z[:, :units] * z[:, 2 * units:3 * units]
        np.tanh(cs[t], out=ths[t])
        np.multiply(z[:, 3 * units:], ths[t], out=hs[t])
        h, c = hs[t], cs[t]
    out = np.concatenate([hs, cs], axis=2).transpose(1, 0, 2)
    return out, {"xt": xt, "kernel": kernel, "recurrent": recurrent, "h0": h0, "c0": c0,
                 "act": act, "cs": cs, "hs": hs, "ths": ths, "for": None, "grads": None}


def _lstm_seq_backward(g, r) -> dict:
    """Runs the recurrence backwards once per upstream gradient; every VJP reads it."""
    if r["for"] is g:
        return r["grads"]
    act, cs, ths, recurrent = r["act"], r["cs"], r["ths"], r["recurrent"]
    steps, batch, units = cs.shape
    gt = g.transpose(1, 0, 2)  # (steps, batch, 2 * units) view
    dz = np.empty_like(act)
    dh = np.zeros((batch, units), act.dtype)
    dc = np.zeros_like(dh)
    for t in range(steps - 1, -1, -1):
        z, d = act[t], dz[t]
        i, f, gg, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        dh += gt[t, :, :units]
        dc += gt[t, :, units:]
        th = ths[t]
        tmp = 1 - th * th
        tmp *= o
        tmp *= dh
        dc += tmp
        np.multiply(dh, th, out=d[:, 3 * units:])  # o block: dh * tanh(c)
        np.multiply(dc, gg, out=d[:, :units])  # i block
        np.multiply(dc, cs[t - 1] if t else r["c0"], out=d[:, units:2 * units])  # f block
        np.multiply(dc, i, out=d[:, 2 * units:3 * units])  # g block
        slope = 1 - z  # sigmoid' = s (1 - s); tanh' = 1 - g^2 on the g block
        slope *= z
        slope[:, 2 * units:3 * units] = 1 - gg * gg
        d *= slope
        np.matmul(d, recurrent.T, out=dh)
        dc *= f
    flat = dz.reshape(-1, 4 * units)
    dx, dk = _input_grads(flat, r, (batch, steps, r["xt"].shape[1]))
    grads = {"x": dx, "kernel": dk, "recurrent": _previous_outputs_grad(r["hs"], r["h0"], flat),
             "bias": np.ones(flat.shape[0], flat.dtype) @ flat, "h0": dh, "c0": dc}
    r["for"], r["grads"] = g, grads
    return grads




# -------------------------------------------------------- whole-sequence GRU


def _gru_seq_forward(x, kernel, recurrent, bias, h0):
    """GRU (reset_after, default activations) over the sequence -> (batch, steps, units);
    bias is (2, 3 * units): the input bias row, then the recurrent bias row."""
    units = h0.shape[1]
    xt, xp = _project_time_major(x, kernel, bias[0])
    steps, batch = xp.shape[:2]
    gates = np.empty((steps, batch, 2 * units), xp.dtype)  # z, r
    cands, rhs, hs = (np.empty((steps, batch, units), xp.dtype) for _ in range(3))
    rec = np.empty((batch, 3 * units), xp.dtype)
    h = h0
    for t in range(steps):
        np.matmul(h, recurrent, out=rec)
        rec += bias[1]
        zr = gates[t]
        np.add(xp[t, :, :2 * units], rec[:, :2 * units], out=zr)
        zr *= 0.5  # sigmoid(x) = 0.5 * tanh(x / 2) + 0.5
        np.tanh(zr, out=zr)
        zr *= 0.5
        zr += 0.5
        rhs[t] = rec[:, 2 * units:]
        cand = cands[t]
        np.multiply(zr[:, units:], rhs[t], out=cand)
        cand += xp[t, :, 2 * units:]
        np.tanh(cand, out=cand)
        np.subtract(h, cand, out=hs[t])  # h' = cand + z (h - cand)
        hs[t] *= zr[:, :units]
        hs[t] += cand
        h = hs[t]
    return hs.transpose(1, 0, 2), {"xt": xt, "kernel": kernel, "recurrent": recurrent,
                                   "h0": h0, "gates": gates, "cands": cands, "rhs": rhs,
                                   "hs": hs, "for": None, "grads": None}


def _gru_seq_backward(g, r) -> dict:
    """The backward recurrence, once per upstream gradient, for the five VJPs."""
    if r["for"] is g:
        return r["grads"]
    gates, cands, rhs, hs, recurrent = r["gates"], r["cands"], r["rhs"], r["hs"], r["recurrent"]
    steps, batch, units = hs.shape
    gt = g.transpose(1, 0, 2)
    dxp = np.empty((steps, batch, 3 * units), g.dtype)
    drec = np.empty_like(dxp)
    dh = np.zeros((batch, units), g.dtype)
    for t in range(steps - 1, -1, -1):
        z, rg, cand = gates[t, :, :units], gates[t, :, units:], cands[t]
        dh += gt[t]
        h_prev = hs[t - 1] if t else r["h0"]
        d, e = dxp[t], drec[t]
        np.multiply(dh, 1 - z, out=d[:, 2 * units:])  # d cand
        d[:, 2 * units:] *= 1 - cand * cand  # d (pre-tanh candidate)
        np.multiply(dh, h_prev - cand, out=d[:, :units])
        d[:, :units] *= z * (1 - z)  # d z (pre-sigmoid)
        np.multiply(d[:, 2 * units:], rhs[t], out=d[:, units:2 * units])
        d[:, units:2 * units] *= rg * (1 - rg)  # d r (pre-sigmoid)
        e[:, :2 * units] = d[:, :2 * units]
        np.multiply(d[:, 2 * units:], rg, out=e[:, 2 * units:])
        dh *= z
        dh += e @ recurrent.T
    flat_x, flat_r = dxp.reshape(-1, 3 * units), drec.reshape(-1, 3 * units)
    dx, dk = _input_grads(flat_x, r, (batch, steps, r["xt"].shape[1]))
    ones = np.ones(flat_x.shape[0], g.dtype)
    grads = {"x": dx, "kernel": dk,
             "recurrent": _previous_outputs_grad(hs, r["h0"], flat_r),
             "bias": np.stack([ones @ flat_x, ones @ flat_r]), "h0": dh}
    r["for"], r["grads"] = g, grads
    return grads
