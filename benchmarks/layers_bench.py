"""One training step (forward, loss, backward, SGD) of conv, recurrent and attention
models, side by side: distflow's Keras `train_on_batch`, a hand-written NumPy floor,
PyTorch eager, and TensorFlow 2.21 / Keras 3 (a separate process right after), with
the float32 GEMM peak measured in the same run.

Cases (sparse softmax cross-entropy over 10 classes, SGD lr 0.01):
  cnn64, cnn256  the example CNN's convolutional part (examples/fashion_mnist_cnn.py):
                 Conv 3x3x32 same ReLU, MaxPool 2, Conv 3x3x64 same ReLU, MaxPool 2,
                 Flatten, Dense 10 on 28x28x1 inputs, batch 64 and 256
  resnet         a ResNet basic block on 32x32x64, batch 32: conv3x3-BN-ReLU-conv3x3-BN,
                 + input, ReLU, then global average pooling and Dense 10
  lstm           LSTM(128) over 50 steps of 32 features, batch 64, then Dense 10
  gru            GRU(128) (reset_after, as PyTorch's) on the same inputs, then Dense 10
  mha            MultiHeadAttention(4 heads, key_dim 32) self-attention over 64 tokens
                 of width 128, batch 32, then global average pooling and Dense 10
  conv1d         text model: Embedding(10000, 64) over 200 tokens, Conv1D(128, 5) ReLU,
                 GlobalMaxPooling1D, Dense 10, batch 64

Every side runs in its own long-lived process with 2 BLAS threads, then 1 (env
variables set before NumPy loads). In each of `--rounds` rounds the sides measure a
case one after the other (seconds apart: the machine may be shared; each starts 0.25 s
after the previous one ended, once the other processes' BLAS threads have stopped
spinning), `--steps` steps after 3 warm-up steps; the table shows the median over
rounds of each side's median step, and a ratio is the median of the per-round ratios;
the JSON line adds each side's fastest step (`fastest_ms`) and its median process CPU time per step
(`cpu_ms`; with 1 thread the least disturbed by other jobs, since time spent
descheduled is not counted). The PyTorch side needs
`pip install torch==2.13.0` in the interpreter given by `--torch-python`
(default: this one if it imports torch, else /tmp/torchenv/bin/python); the
TensorFlow side runs with `--tf-python` (default /tmp/tfenv/bin/python) when present.

    python benchmarks/layers_bench.py --rounds 3 --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CASES = ("cnn64", "cnn256", "resnet", "lstm", "gru", "mha", "conv1d")
GEMM_N = 1024


# ----------------------------------------------------------------- shapes, FLOPs


def case_data(case: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The case's input batch and integer labels (the same in every process)."""
    rng = np.random.default_rng(seed)
    shape, batch = {"cnn64": ((28, 28, 1), 64), "cnn256": ((28, 28, 1), 256),
                    "resnet": ((32, 32, 64), 32), "lstm": ((50, 32), 64),
                    "gru": ((50, 32), 64), "mha": ((64, 128), 32), "conv1d": ((200,), 64)}[case]
    if case == "conv1d":
        x = rng.integers(0, 10000, size=(batch, *shape)).astype(np.int64)
    else:
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
    return x, rng.integers(0, 10, size=batch).astype(np.int64)


def step_flops(case: str) -> float:
    """Matrix-product FLOPs of one training step (forward x 3: forward, two gradients)."""
    mm = {  # forward multiply-adds x 2
        "cnn64": 64 * (28 * 28 * 9 * 1 * 32 + 14 * 14 * 9 * 32 * 64 + 7 * 7 * 64 * 10),
        "cnn256": 256 * (28 * 28 * 9 * 1 * 32 + 14 * 14 * 9 * 32 * 64 + 7 * 7 * 64 * 10),
        "resnet": 32 * (2 * 32 * 32 * 9 * 64 * 64 + 64 * 10),
        "lstm": 64 * 50 * (32 + 128) * 4 * 128 + 64 * 128 * 10,
        "gru": 64 * 50 * (32 + 128) * 3 * 128 + 64 * 128 * 10,
        "mha": 32 * (64 * 128 * 128 * 4 + 2 * 4 * 64 * 64 * 32 + 128 * 10),
        "conv1d": 64 * (196 * 5 * 64 * 128 + 128 * 10),
    }[case]
    return 2.0 * mm * 3


# ---------------------------------------------------------------- Keras builders


def build_keras(keras, case: str):
    """The case's model through a Keras-compatible module (distflow.keras or keras)."""
    L = keras.layers
    if case.startswith("cnn"):
        inp = keras.Input((28, 28, 1))
        h = L.Conv2D(32, 3, padding="same", activation="relu")(inp)
        h = L.MaxPooling2D()(h)
        h = L.Conv2D(64, 3, padding="same", activation="relu")(h)
        h = L.Flatten()(L.MaxPooling2D()(h))
    elif case == "resnet":
        inp = keras.Input((32, 32, 64))
        h = L.Conv2D(64, 3, padding="same", use_bias=False)(inp)
        h = L.Activation("relu")(L.BatchNormalization()(h))
        h = L.BatchNormalization()(L.Conv2D(64, 3, padding="same", use_bias=False)(h))
        h = L.GlobalAveragePooling2D()(L.Activation("relu")(L.Add()([h, inp])))
    elif case in ("lstm", "gru"):
        inp = keras.Input((50, 32))
        h = (L.LSTM if case == "lstm" else L.GRU)(128)(inp)
    elif case == "mha":
        inp = keras.Input((64, 128))
        h = L.MultiHeadAttention(num_heads=4, key_dim=32)(inp, inp)
        h = L.GlobalAveragePooling1D()(h)
    else:
        inp = keras.Input((200,), dtype="int32")
        h = L.Embedding(10000, 64)(inp)
        h = L.GlobalMaxPooling1D()(L.Conv1D(128, 5, activation="relu")(h))
    model = keras.Model(inp, L.Dense(10)(h))
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def keras_stepper(keras, case: str, rows: int | None = None):
    """One train_on_batch of the case's model (built once), on the case's batch or its
    first `rows` samples."""
    x, y = case_data(case)
    x, y = x[:rows], y[:rows]
    if case == "conv1d":
        x = x.astype(np.int32)
    model = build_keras(keras, case)
    return lambda: model.train_on_batch(x, y)


def timed(step, steps: int, warmup: int = 3, clock=time.perf_counter) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = clock()
        step()
        times.append(clock() - start)
    return times


# ----------------------------------------------------------------- PyTorch side


def torch_model(case: str):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
            self.b1 = nn.BatchNorm2d(64, eps=1e-3, momentum=0.01)
            self.c2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
            self.b2 = nn.BatchNorm2d(64, eps=1e-3, momentum=0.01)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            h = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
            return self.fc(torch.relu(h + x).mean(dim=(2, 3)))

    class Recur(nn.Module):
        def __init__(self, cell=nn.LSTM):
            super().__init__()
            self.rnn, self.fc = cell(32, 128, batch_first=True), nn.Linear(128, 10)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][:, -1])

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(128, 4, batch_first=True)
            self.fc = nn.Linear(128, 10)

        def forward(self, x):
            return self.fc(self.mha(x, x, x, need_weights=False)[0].mean(dim=1))

    class Text(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.conv = nn.Embedding(10000, 64), nn.Conv1d(64, 128, 5)
            self.fc = nn.Linear(128, 10)

        def forward(self, x):
            h = torch.relu(self.conv(self.emb(x).transpose(1, 2)))
            return self.fc(h.amax(dim=2))

    if case.startswith("cnn"):
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(64 * 7 * 7, 10))
    if case == "gru":
        return Recur(nn.GRU)
    return {"resnet": Block, "lstm": Recur, "mha": Attn, "conv1d": Text}[case]()


def torch_stepper(case: str):
    import torch

    x, y = case_data(case)
    if x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # torch convolves NCHW
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = torch_model(case)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()
    return step


# ------------------------------------------------------------------- NumPy floor


_BUFFERS: dict = {}


def _buffer(tag: str, shape: tuple) -> np.ndarray:
    """A float32 buffer allocated once per (tag, shape): a hand-written loop reuses its
    memory from step to step (fresh large arrays cost page faults every time)."""
    key = (tag, shape)
    if key not in _BUFFERS:
        _BUFFERS[key] = np.zeros(shape, np.float32)
    return _BUFFERS[key]


def np_conv(x, w, tag):
    """'same' k x k (odd k) stride-1 conv as one GEMM over an im2col matrix kept in a
    per-layer buffer (the kernel gradient reads it again)."""
    n, h, wd, c = x.shape
    k, p = w.shape[0], w.shape[0] // 2
    xp = _buffer(tag + "pad", (n, h + 2 * p, wd + 2 * p, c))  # borders stay zero
    xp[:, p:p + h, p:p + wd] = x
    s = xp.strides
    cols = _buffer(tag + "cols", (n, h, wd, k, k, c))
    np.copyto(cols, np.lib.stride_tricks.as_strided(
        xp, (n, h, wd, k, k, c), (*s[:3], s[1], s[2], s[3])))
    cols = cols.reshape(-1, k * k * c)
    return (cols @ w.reshape(-1, w.shape[-1])).reshape(n, h, wd, -1), cols


def np_conv_back(g, cols, w, tag, need_dx=True):
    """Kernel gradient as one GEMM; input gradient as the 'same' conv of g with the
    flipped, transposed kernel (one more im2col GEMM, no scatter)."""
    dw = (cols.T @ g.reshape(-1, g.shape[-1])).reshape(w.shape)
    if not need_dx:
        return None, dw
    flipped = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))
    return np_conv(g, flipped, tag + "dx")[0], dw


def np_pool(x):
    n, h, w, c = x.shape
    v = x.reshape(n, h // 2, 2, w // 2, 2, c)
    out = v.max(axis=(2, 4))
    return out, v


def np_pool_back(g, v, out):
    """Routes g to every maximum of its window (a floor: tied maxima all receive it)."""
    mask = v == out[:, :, None, :, None, :]
    return (mask * g[:, :, None, :, None, :]).reshape(v.shape[0], v.shape[1] * 2,
                                                      v.shape[3] * 2, -1)


def np_xent(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return p / len(y)


def _glorot(rng, *shape):
    return (rng.standard_normal(shape) * 0.05).astype(np.float32)


def np_cnn_step(params, x, y, lr=0.01):
    w1, b1, w2, b2, w3, b3 = params
    a1, c1 = np_conv(x, w1, "c1")
    a1 = np.maximum(a1 + b1, 0)
    p1, v1 = np_pool(a1)
    a2, c2 = np_conv(p1, w2, "c2")
    a2 = np.maximum(a2 + b2, 0)
    p2, v2 = np_pool(a2)
    flat = p2.reshape(len(x), -1)
    g = np_xent(flat @ w3 + b3, y)
    grads = [None] * 6
    grads[4], grads[5] = flat.T @ g, g.sum(0)
    g = np_pool_back((g @ w3.T).reshape(p2.shape), v2, p2) * (a2 > 0)
    grads[3] = g.sum(axis=(0, 1, 2))
    g, grads[2] = np_conv_back(g, c2, w2, "c2")
    g = np_pool_back(g, v1, p1) * (a1 > 0)
    grads[1] = g.sum(axis=(0, 1, 2))
    grads[0] = np_conv_back(g, c1, w1, "c1", need_dx=False)[1]
    for p, gp in zip(params, grads):
        p -= lr * gp


def np_bn(h, gamma, eps=1e-3):
    mean = h.mean(axis=(0, 1, 2))
    inv = 1.0 / np.sqrt(h.var(axis=(0, 1, 2)) + eps)
    xhat = (h - mean) * inv
    return xhat * gamma, (xhat, inv)


def np_bn_back(g, gamma, cache):
    xhat, inv = cache
    m = g.shape[0] * g.shape[1] * g.shape[2]
    dgamma, dbeta = (g * xhat).sum(axis=(0, 1, 2)), g.sum(axis=(0, 1, 2))
    dx = (gamma * inv / m) * (m * g - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def np_resnet_step(params, x, y, lr=0.01):
    w1, g1, be1, w2, g2, be2, wf, bf = params
    h1, c1 = np_conv(x, w1, "r1")
    n1, k1 = np_bn(h1, g1)
    r1 = np.maximum(n1 + be1, 0)
    h2, c2 = np_conv(r1, w2, "r2")
    n2, k2 = np_bn(h2, g2)
    out = np.maximum(n2 + be2 + x, 0)
    pooled = out.mean(axis=(1, 2))
    g = np_xent(pooled @ wf + bf, y)
    dwf, dbf = pooled.T @ g, g.sum(0)
    g = np.broadcast_to((g @ wf.T)[:, None, None, :] / (32 * 32), out.shape) * (out > 0)
    g, dg2, db2 = np_bn_back(g, g2, k2)
    g, dw2 = np_conv_back(g, c2, w2, "r2")
    g, dg1, db1 = np_bn_back(g * (r1 > 0), g1, k1)
    dw1 = np_conv_back(g, c1, w1, "r1", need_dx=False)[1]
    for p, gp in zip(params, (dw1, dg1, db1, dw2, dg2, db2, dwf, dbf)):
        p -= lr * gp


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_lstm_step(params, x, y, lr=0.01):
    wx, wh, b, wf, bf = params
    n, steps, _ = x.shape
    u = wh.shape[0]
    proj = (x.reshape(n * steps, -1) @ wx + b).reshape(n, steps, 4 * u)
    h, c = np.zeros((n, u), np.float32), np.zeros((n, u), np.float32)
    cache = []
    for t in range(steps):
        z = proj[:, t] + h @ wh
        i, f, o = _sigmoid(z[:, :u]), _sigmoid(z[:, u:2 * u]), _sigmoid(z[:, 3 * u:])
        gg = np.tanh(z[:, 2 * u:3 * u])
        c_prev, h_prev = c, h
        c = f * c + i * gg
        tc = np.tanh(c)
        h = o * tc
        cache.append((i, f, gg, o, c_prev, tc, h_prev))
    g = np_xent(h @ wf + bf, y)
    dwf, dbf = h.T @ g, g.sum(0)
    dh, dc = g @ wf.T, np.zeros_like(c)
    dz = np.empty((n, steps, 4 * u), np.float32)
    hs = np.empty((n, steps, u), np.float32)
    for t in reversed(range(steps)):
        i, f, gg, o, c_prev, tc, h_prev = cache[t]
        dc = dc + dh * o * (1 - tc * tc)
        z = dz[:, t]
        z[:, :u], z[:, u:2 * u] = dc * gg * i * (1 - i), dc * c_prev * f * (1 - f)
        z[:, 2 * u:3 * u], z[:, 3 * u:] = dc * i * (1 - gg * gg), dh * tc * o * (1 - o)
        hs[:, t] = h_prev
        dh, dc = z @ wh.T, dc * f
    dz2 = dz.reshape(n * steps, -1)
    grads = (x.reshape(n * steps, -1).T @ dz2, hs.reshape(n * steps, -1).T @ dz2,
             dz2.sum(0), dwf, dbf)
    for p, gp in zip(params, grads):
        p -= lr * gp


def np_gru_step(params, x, y, lr=0.01):
    wx, wh, b, wf, bf = params  # b: (2, 3u) input and recurrent bias rows, gates z, r, h
    n, steps, _ = x.shape
    u = wh.shape[0]
    xp = (x.reshape(n * steps, -1) @ wx + b[0]).reshape(n, steps, 3 * u)
    h = np.zeros((n, u), np.float32)
    cache = []
    for t in range(steps):
        hp = h @ wh + b[1]
        z = _sigmoid(xp[:, t, :u] + hp[:, :u])
        r = _sigmoid(xp[:, t, u:2 * u] + hp[:, u:2 * u])
        cand = np.tanh(xp[:, t, 2 * u:] + r * hp[:, 2 * u:])
        cache.append((z, r, cand, hp[:, 2 * u:], h))
        h = cand + z * (h - cand)
    g = np_xent(h @ wf + bf, y)
    dwf, dbf = h.T @ g, g.sum(0)
    dh = g @ wf.T
    dx = np.empty((n, steps, 3 * u), np.float32)
    dr = np.empty_like(dx)
    hs = np.empty((n, steps, u), np.float32)
    for t in reversed(range(steps)):
        z, r, cand, rh, h_prev = cache[t]
        da = dh * (1 - z) * (1 - cand * cand)
        dx[:, t, :u] = dh * (h_prev - cand) * z * (1 - z)
        dx[:, t, u:2 * u] = da * rh * r * (1 - r)
        dx[:, t, 2 * u:] = da
        dr[:, t, :2 * u], dr[:, t, 2 * u:] = dx[:, t, :2 * u], da * r
        hs[:, t] = h_prev
        dh = dh * z + dr[:, t] @ wh.T
    dx2, dr2 = dx.reshape(n * steps, -1), dr.reshape(n * steps, -1)
    grads = (x.reshape(n * steps, -1).T @ dx2, hs.reshape(n * steps, -1).T @ dr2,
             np.stack([dx2.sum(0), dr2.sum(0)]), dwf, dbf)
    for p, gp in zip(params, grads):
        p -= lr * gp


def np_mha_step(params, x, y, lr=0.01, heads=4):
    wqkv, wo, wf, bf = params
    n, t, d = x.shape
    k = d // heads
    qkv = (x.reshape(n * t, d) @ wqkv).reshape(n, t, 3, heads, k).transpose(2, 0, 3, 1, 4)
    q, kk, v = qkv[0] * (1.0 / np.sqrt(k)), qkv[1], qkv[2]
    s = q @ kk.transpose(0, 1, 3, 2)
    s -= s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    ctx = (p @ v).transpose(0, 2, 1, 3).reshape(n * t, d)
    out = ctx @ wo
    pooled = out.reshape(n, t, d).mean(axis=1)
    g = np_xent(pooled @ wf + bf, y)
    dwf, dbf = pooled.T @ g, g.sum(0)
    gout = np.repeat((g @ wf.T) / t, t, axis=0)
    dwo, gctx = ctx.T @ gout, (gout @ wo.T).reshape(n, t, heads, k).transpose(0, 2, 1, 3)
    dp, dv = gctx @ v.transpose(0, 1, 3, 2), p.transpose(0, 1, 3, 2) @ gctx
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq, dk = (ds @ kk) * (1.0 / np.sqrt(k)), ds.transpose(0, 1, 3, 2) @ q
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(n * t, 3 * d)
    for p_, gp in zip(params, (x.reshape(n * t, d).T @ dqkv, dwo, dwf, dbf)):
        p_ -= lr * gp


def np_conv1d_step(params, x, y, lr=0.01):
    emb, w, b, wf, bf = params
    e = emb[x]  # (n, 200, 64)
    n, t, c = e.shape
    kw = w.shape[0]
    s = e.strides
    cols = np.lib.stride_tricks.as_strided(e, (n, t - kw + 1, kw, c), (s[0], s[1], s[1], s[2]))
    cols = cols.reshape(-1, kw * c)
    h = np.maximum((cols @ w.reshape(-1, w.shape[-1])).reshape(n, t - kw + 1, -1) + b, 0)
    arg = h.argmax(axis=1)
    pooled = np.take_along_axis(h, arg[:, None, :], axis=1)[:, 0]
    g = np_xent(pooled @ wf + bf, y)
    dwf, dbf = pooled.T @ g, g.sum(0)
    gp = g @ wf.T
    gh = np.zeros_like(h)
    np.put_along_axis(gh, arg[:, None, :], gp[:, None, :], axis=1)
    gh *= h > 0
    gh2 = gh.reshape(-1, gh.shape[-1])
    dw, db = (cols.T @ gh2).reshape(w.shape), gh2.sum(0)
    dcols = (gh2 @ w.reshape(-1, w.shape[-1]).T).reshape(n, t - kw + 1, kw, c)
    de = np.zeros_like(e)
    for j in range(kw):
        de[:, j:j + t - kw + 1] += dcols[:, :, j]
    np.add.at(emb, x.reshape(-1), -lr * de.reshape(-1, c))
    for p, gp_ in zip((w, b, wf, bf), (dw, db, dwf, dbf)):
        p -= lr * gp_


def numpy_stepper(case: str):
    rng = np.random.default_rng(1)
    x, y = case_data(case)
    z = np.zeros
    if case.startswith("cnn"):
        params = [_glorot(rng, 3, 3, 1, 32), z(32, np.float32), _glorot(rng, 3, 3, 32, 64),
                  z(64, np.float32), _glorot(rng, 7 * 7 * 64, 10), z(10, np.float32)]
        fn = np_cnn_step
    elif case == "resnet":
        one = np.ones(64, np.float32)
        params = [_glorot(rng, 3, 3, 64, 64), one.copy(), z(64, np.float32),
                  _glorot(rng, 3, 3, 64, 64), one.copy(), z(64, np.float32),
                  _glorot(rng, 64, 10), z(10, np.float32)]
        fn = np_resnet_step
    elif case == "lstm":
        params = [_glorot(rng, 32, 512), _glorot(rng, 128, 512), z(512, np.float32),
                  _glorot(rng, 128, 10), z(10, np.float32)]
        fn = np_lstm_step
    elif case == "gru":
        params = [_glorot(rng, 32, 384), _glorot(rng, 128, 384), z((2, 384), np.float32),
                  _glorot(rng, 128, 10), z(10, np.float32)]
        fn = np_gru_step
    elif case == "mha":
        params = [_glorot(rng, 128, 384), _glorot(rng, 128, 128), _glorot(rng, 128, 10),
                  z(10, np.float32)]
        fn = np_mha_step
    else:
        params = [_glorot(rng, 10000, 64), _glorot(rng, 5, 64, 128), z(128, np.float32),
                  _glorot(rng, 128, 10), z(10, np.float32)]
        fn = np_conv1d_step
    return lambda: fn(params, x, y)


# ---------------------------------------------------------------- worker, driver


def gemm_peak(repeats: int = 7) -> float:
    """Median float32 GFLOP/s of a 1024^3 matrix product in this process."""
    a = np.random.default_rng(0).standard_normal((GEMM_N, GEMM_N)).astype(np.float32)
    times = timed(lambda: a @ a, repeats, warmup=2)
    return 2.0 * GEMM_N ** 3 / statistics.median(times) / 1e9


def stepper_factory(side: str, threads: int):
    """case -> a function running one training step, for this process's side."""
    if side == "torch":
        import torch
        torch.set_num_threads(threads)
        return torch_stepper
    if side in ("distflow", "baseline"):
        import distflow.keras as dk
        return lambda case: keras_stepper(dk, case)
    if side == "tf":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        import keras
        return lambda case: keras_stepper(keras, case)
    return numpy_stepper


def worker(side: str, steps: int, threads: int) -> None:
    """Serves requests from stdin, one per line: a case name (answers the median step in
    ms) or 'gemm' (answers the GEMM rate); models are built on first use."""
    make, steppers = stepper_factory(side, threads), {}
    for line in sys.stdin:
        case = line.strip()
        if case == "gemm":
            answer = gemm_peak()
        else:
            if case not in steppers:
                steppers[case] = make(case)
            times = timed(steppers[case], steps)
            cpu = timed(steppers[case], steps, warmup=0, clock=time.process_time)
            answer = [1000 * statistics.median(times), 1000 * min(times),
                      1000 * statistics.median(cpu)]
        print(json.dumps({"value": answer}), flush=True)


def _env(threads: int, source: str | None = None) -> dict:
    n = str(threads)
    return dict(os.environ, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n,
                TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONPATH=source or str(Path(__file__).resolve().parents[1]))


class Worker:
    """A side's long-lived process: asked for one case at a time, so that the sides
    measure the same case seconds apart (the machine's load drifts between cases)."""

    def __init__(self, python: str, side: str, steps: int, threads: int,
                 source: str | None = None):
        self.side = side
        self.proc = subprocess.Popen(
            [python, __file__, "--worker", side, "--threads", str(threads), "--steps",
             str(steps)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env=_env(threads, source))

    def ask(self, request: str, timeout: float = 900.0) -> float:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"the {self.side} worker gave no answer for {request!r} "
                               f"within {timeout:.0f} s (exit code {self.proc.poll()})")
        return json.loads(line)["value"]

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def torch_python(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    try:
        import torch  # noqa: F401
        return sys.executable
    except ImportError:
        fallback = "/tmp/torchenv/bin/python"
        return fallback if os.path.exists(fallback) else None


# Seconds between two sides' measurements: OpenBLAS's threads spin for about 0.1 s after
# their last threaded product (the GEMM rate, the NumPy floor's steps), and a side
# measured while another process's threads still spin shares a core with them.
SETTLE = 0.25


def rounds_of(workers: list[Worker], cases: list[str], rounds: int) -> dict:
    """side -> case -> the per-round medians; each round asks every side for a case in
    turn, then moves to the next case; the GEMM rate is measured in every round, by
    every side (the first side's is reported): its 4 MB arrays raise glibc's mmap
    threshold, after which freed megabytes stay in the process, so a side that skipped
    it would pay page faults on every step that the others do not. Each measurement
    starts SETTLE seconds after the previous one ended."""
    runs = {w.side: {c: [] for c in ["gemm", *cases]} for w in workers}
    best = {w.side: {c: [] for c in cases} for w in workers}
    cpu = {w.side: {c: [] for c in cases} for w in workers}
    for _ in range(rounds):
        rates = [w.ask("gemm") for w in workers]
        runs[workers[0].side]["gemm"].append(rates[0])
        for case in cases:
            for w in workers:
                time.sleep(SETTLE)
                median, fastest, cpu_median = w.ask(case)
                runs[w.side][case].append(median)
                best[w.side][case].append(fastest)
                cpu[w.side][case].append(cpu_median)
    for w in workers:
        runs[w.side]["best"], runs[w.side]["cpu"] = best[w.side], cpu[w.side]
    return runs


def measure(args, threads: int) -> dict:
    """Runs the side-by-side rounds, then TensorFlow's (a separate process after)."""
    sides = [("distflow", sys.executable)]
    if "numpy" in args.peers:
        sides.append(("numpy", sys.executable))
    tp = torch_python(args.torch_python) if "torch" in args.peers else None
    if tp:
        sides.append(("torch", tp))
    workers = [Worker(python, side, args.steps, threads,
                      args.source if side == "distflow" else None) for side, python in sides]
    if args.baseline:  # the same benchmark on another checkout of distflow (before/after)
        workers.append(Worker(sys.executable, "baseline", args.steps, threads, args.baseline))
    try:
        runs = rounds_of(workers, args.cases, args.rounds)
    finally:
        for w in workers:
            w.close()
    if args.tf_python and os.path.exists(args.tf_python):
        tf = Worker(args.tf_python, "tf", args.steps, threads)
        try:
            runs["tf"] = rounds_of([tf], args.cases, args.rounds)["tf"]
        finally:
            tf.close()
    return runs


def table(threads: int, runs: dict) -> list[dict]:
    """Medians over rounds; a ratio to a side run in the same rounds is the median of the
    per-round ratios (TF's, from its own rounds, is the ratio of medians)."""
    med = {side: {c: statistics.median(v) for c, v in r.items()
                  if v and c not in ("best", "cpu")} for side, r in runs.items()}
    peak = med["distflow"]["gemm"]
    rows = []
    for case in [c for c in CASES if c in med["distflow"]]:
        row = {"threads": threads, "case": case,
               **{f"{s}_ms": round(med[s][case], 2) for s in ("distflow", "baseline", "numpy",
                                                              "torch", "tf") if s in med}}
        for peer in ("baseline", "numpy", "torch"):
            if peer in runs:
                row[f"x_{peer}"] = round(statistics.median(
                    a / b for a, b in zip(runs["distflow"][case], runs[peer][case])), 2)
        if "tf" in med:
            row["x_tf"] = round(med["distflow"][case] / med["tf"][case], 2)
        row["peak_frac"] = round(step_flops(case) / (med["distflow"][case] / 1000)
                                 / (peak * 1e9), 3)
        row["fastest_ms"] = {s: round(min(runs[s]["best"][case]), 2) for s in runs}
        row["cpu_ms"] = {s: round(statistics.median(runs[s]["cpu"][case]), 2) for s in runs}
        rows.append(row)
    print(f"\nthreads={threads}  GEMM peak {peak:.0f} GFLOP/s (float32 {GEMM_N}^3, median "
          "of the rounds)")
    keys = [k for k in rows[0] if k not in ("threads", "fastest_ms", "cpu_ms")]
    print("  ".join(f"{k:>11}" for k in keys))
    for row in rows:
        print("  ".join(f"{row.get(k, ''):>11}" for k in keys))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--torch-python", default=None)
    parser.add_argument("--peers", nargs="*", default=["numpy", "torch"],
                        choices=["numpy", "torch"], help="the peers run side by side")
    parser.add_argument("--tf-python", default="/tmp/tfenv/bin/python")
    parser.add_argument("--source", default=None, metavar="DIR",
                        help="run the distflow side from DIR instead of this checkout")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="also run distflow from DIR (e.g. `git archive` of an older "
                             "commit) in the same rounds: the x_baseline column")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps, args.threads[0])
        return
    rows, peaks = [], {}
    for threads in args.threads:
        runs = measure(args, threads)
        peaks[threads] = round(statistics.median(runs["distflow"]["gemm"]), 1)
        rows += table(threads, runs)
    print(json.dumps({"benchmark": "layers", "rounds": args.rounds, "steps": args.steps,
                      "gemm_gflops": peaks, "rows": rows}))


if __name__ == "__main__":
    main()
