"""Convolution + bias + ReLU + max pooling over tiling windows as one op.

The example CNN's `Conv2D(activation='relu')` followed by `MaxPooling2D()` spends
most of its step outside the matrix products when run as two ops: the full-size ReLU
output is written, read back by the pooling, and in the backward pass the pooling's
one-hot gradient is written full size, read back by the ReLU's mask and again by the
kernel and bias gradients. Here each batch chunk (about 1 MB of conv output) goes
through the whole chain while it is in cache: products, bias, pooling, a one-hot mask
of each window's first maximum that already carries the ReLU's derivative, then the
ReLU on the pooled quarter (it commutes with max); the conv output never exists full
size. The backward pass, per chunk: the mask times the pooled gradient, then the
chunk's kernel, bias and input gradients, in one region on the intra-op threads.

The values are those of `nn.fused_conv2d(..., activation='relu')` then
`nn.max_pool2d(..., pool, pool, 'VALID')`, and so are the gradients (the ReLU folds
exactly into the pooling's mask because its output is not a tensor here: a window's
gradient goes to its first maximum, and through the ReLU only if that maximum is
positive). Kernel and bias gradients are per-slice products added in slice order,
the same on any number of threads. The gradients of all three inputs are computed
together by the first VJP the tape asks for (the kernel's and the bias's alone when
the input needs none, as a model's first layer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import intra_op, nn, ops
from distflow.primitive import defop
from distflow.tensor import Tensor
from distflow.workspace import scratch

CHUNKS = 4  # pieces per call at least, whatever the thread count (two per thread with two)
CHUNK_BYTES = 1 << 20  # conv output bytes per piece at most, where that needs more pieces


def _chunks(n: int, image_bytes: int) -> list[tuple[int, int]]:
    """The batch ranges one call's pieces cover: at least CHUNKS, enough that each
    holds at most CHUNK_BYTES of conv output (while in cache), an even count (two
    threads get equal shares), never depending on the thread count (sums over pieces
    keep one order). Few on purpose: a piece made of many short NumPy calls takes
    turns with the other thread on the GIL instead of running beside it."""
    count = max(CHUNKS, -(-n * image_bytes // CHUNK_BYTES))
    return intra_op.split(n, count + count % 2)


def _geometry(x: np.ndarray, w: np.ndarray, strides, dilations, mode, pool) -> dict:
    """Shapes and batch ranges of one call: the conv's (oh, ow), pads, the pooled
    (ph, pw); `chunks`, the pieces, and per chunk its `slices` (about 1 MB of patches
    each, for the products; `first_slice`: each chunk's first slice's index)."""
    kh, kw, cin, cout = w.shape
    oh, ow, pad_h, pad_w = nn._geometry(x.shape, kh, kw, strides, dilations, mode)
    chunks = _chunks(x.shape[0], oh * ow * cout * x.itemsize)
    patch_bytes = oh * ow * kh * kw * cin * x.itemsize
    slices = [[(c0 + s0, c0 + s1) for s0, s1 in nn._slices(c1 - c0, patch_bytes)]
              for c0, c1 in chunks]
    return {"spec": (strides, dilations, (pad_h, pad_w)), "out_hw": (oh, ow),
            "pool": pool, "pooled_hw": (oh // pool[0], ow // pool[1]), "chunks": chunks,
            "slices": slices, "first_slice": np.cumsum([0] + [len(s) for s in slices])}


def _slice_patches(x, w, geo, kept, b0: int, b1: int) -> np.ndarray:
    """The patch matrix of images b0:b1 (filled into `kept`, or this thread's scratch)."""
    kh, kw, c, _ = w.shape
    if kept is None:
        return nn._patches(x[b0:b1], kh, kw, geo["out_hw"], *geo["spec"])
    return nn._fill_patches(nn._images(kept, b0, b1, c), x[b0:b1], kh, kw, *geo["spec"])


def _covered(y: np.ndarray, geo: dict) -> np.ndarray:
    """The part of a conv output slice the tiling windows cover (VALID pooling)."""
    (ph, pw), (kh, kw) = geo["pooled_hw"], geo["pool"]
    return y[:, :ph * kh, :pw * kw]


def _mask_of(masks: np.ndarray, geo: dict, b0: int, b1: int, c: int) -> np.ndarray:
    """Images b0:b1's one-hot mask, (KH, KW, b, PH, PW, C), contiguous."""
    k = math.prod(geo["pool"])
    per_image = k * math.prod(geo["pooled_hw"]) * c
    return masks[b0 * per_image:b1 * per_image].reshape(
        *geo["pool"], b1 - b0, *geo["pooled_hw"], c)


def _pool_slice(y: np.ndarray, pooled: np.ndarray, mask: np.ndarray, geo: dict) -> None:
    """pooled = ReLU of the max over the tiling windows of y (the conv + bias: ReLU
    commutes with max, so it runs on the pooled quarter); mask = each window's first
    maximum, where that maximum is positive (the ReLU's derivative folded in: among
    positive values ReLU is the identity, so its first maximum is y's)."""
    _window_max(_covered(y, geo), pooled, geo)
    blocks = nn._blocks(_covered(y, geo), *geo["pool"], geo["pooled_hw"])
    np.equal(blocks, pooled, out=mask)
    nn._first_hits(mask.reshape(math.prod(geo["pool"]), -1))
    positive = np.greater(pooled, 0, out=scratch("pool_positive", pooled.shape, bool))
    np.logical_and(mask, positive, out=mask)
    ops.rectify(pooled, out=pooled)


def _window_max(y: np.ndarray, pooled: np.ndarray, geo: dict) -> None:
    """pooled = max over y's tiling windows, kh*kw - 1 passes (no reduction)."""
    blocks = nn._blocks(y, *geo["pool"], geo["pooled_hw"])
    np.copyto(pooled, blocks[0, 0])
    for i, j in nn._offsets(*geo["pool"])[1:]:
        np.maximum(pooled, blocks[i, j], out=pooled)


def _forward(x, w, b, strides, dilations, mode, pool):
    n, cout = x.shape[0], w.shape[3]
    geo = _geometry(x, w, strides, dilations, mode, pool)
    kept = nn._kept_patches(x, w, geo["spec"])
    out = np.empty((n, *geo["pooled_hw"], cout), np.result_type(x.dtype, w.dtype))
    masks = np.empty(out.size * math.prod(pool), bool)
    w2 = w.reshape(-1, cout)
    bias_row = np.tile(b, geo["out_hw"][1])  # one image row's biases: long inner loops

    def piece(k: int) -> None:
        c0, c1 = geo["chunks"][k]
        y = scratch("conv_pool_out", (c1 - c0, *geo["out_hw"], cout), out.dtype)
        for b0, b1 in geo["slices"][k]:
            np.matmul(_slice_patches(x, w, geo, kept, b0, b1), w2,
                      out=y[b0 - c0:b1 - c0].reshape(-1, cout))
        image_rows = y.reshape(-1, bias_row.size)
        np.add(image_rows, bias_row, out=image_rows)
        _pool_slice(y, out[c0:c1], _mask_of(masks, geo, c0, c1, cout), geo)
    intra_op.parallel_for(len(geo["chunks"]), piece)
    return out, [x, w, geo, kept, masks, None]


def _chunk_grads(g, r, k: int, parts: tuple, dx) -> None:
    """Chunk k's pre-activation gradient (mask times g, in scratch), its slices' kernel
    products (into parts[0], at the slices' indices), its bias sum (into parts[1][k])
    and its input gradient (into dx, unless None)."""
    x, w, geo, kept, masks, _ = r
    c0, c1 = geo["chunks"][k]
    cout = w.shape[3]
    dy = scratch("conv_pool_grad", (c1 - c0, *geo["out_hw"], cout), g.dtype)
    if _covered(dy, geo).shape != dy.shape:
        dy.fill(0)
    np.multiply(_mask_of(masks, geo, c0, c1, cout), g[c0:c1],
                out=nn._blocks(_covered(dy, geo), *geo["pool"], geo["pooled_hw"]))
    for i, (b0, b1) in enumerate(geo["slices"][k], start=geo["first_slice"][k]):
        np.matmul(_slice_patches(x, w, geo, kept, b0, b1).T,
                  dy[b0 - c0:b1 - c0].reshape(-1, cout), out=parts[0][i])
    rows = dy.reshape(-1, cout)
    np.matmul(np.ones(rows.shape[0], rows.dtype), rows, out=parts[1][k])
    if dx is not None:
        nn._input_grad(dy, w, (c1 - c0, *x.shape[1:]), *geo["spec"], out=dx[c0:c1])


def _grads(g: np.ndarray, r: list, with_input: bool) -> dict:
    """{'x', 'w', 'b'} gradients for g (without 'x' unless `with_input`), kept in the
    residuals for the other VJPs of the same g."""
    cached = r[5]
    if cached is not None and cached["g"] is g and (not with_input or "x" in cached):
        return cached
    x, w, geo = r[0], r[1], r[2]
    count = len(geo["chunks"])
    parts = (np.empty((geo["first_slice"][-1], math.prod(w.shape[:3]), w.shape[3]),
                      g.dtype), np.empty((count, w.shape[3]), g.dtype))
    dx = np.empty(x.shape, g.dtype) if with_input else None
    intra_op.parallel_for(count, lambda k: _chunk_grads(g, r, k, parts, dx))
    grads = {"g": g, "w": nn._ordered_sum(parts[0]).reshape(w.shape),
             "b": nn._ordered_sum(parts[1])}
    if with_input:
        grads["x"] = dx
    r[5] = grads
    return grads


_conv_pool = defop(
    "conv2d_bias_relu_max_pool", _forward,
    lambda g, r: _grads(g, r, True)["x"],
    lambda g, r: _grads(g, r, False)["w"],
    lambda g, r: _grads(g, r, False)["b"])


def conv2d_relu_max_pool(input: Any, filters: Any, bias: Any, strides: Any = 1,  # noqa: A002
                         padding: str = "VALID", dilations: Any = None,
                         pool_size: Any = 2) -> Tensor:
    """max_pool2d(relu(conv2d(input, filters) + bias), pool_size, pool_size, 'VALID')
    as one op (see the module docstring): NHWC input, HWIO filters (no groups), pooling
    windows that tile the conv output (stride = window, remainder rows dropped)."""
    x, w = ops._pair(input, filters)
    nn._check_conv_args(x, w, "NHWC")
    pool = nn._pair2(pool_size, "pool_size")
    if x.shape[3] is not None and x.shape[3] != w.shape[2]:
        raise ValueError(f"conv2d_relu_max_pool does not take grouped filters (groups "
                         f"{x.shape[3] // w.shape[2]}): input channels {x.shape[3]}, "
                         f"filters {tuple(w.shape)}.")
    return _conv_pool(x, w, ops._t(bias), strides=nn._pair2(strides, "strides"),
                      dilations=nn._pair2(1 if dilations is None else dilations,
                                          "dilations"),
                      mode=nn._padding(padding), pool=pool)
