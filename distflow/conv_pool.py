"""Convolution + bias + ReLU + max pooling over tiling windows as one op.

The example CNN's `Conv2D(activation='relu')` followed by `MaxPooling2D()` spends
most of its step outside the matrix products when run as two ops: the full-size ReLU
output is written, read back by the pooling, and in the backward pass the pooling's
one-hot gradient is written full size, read back by the ReLU's mask and again by the
kernel and bias gradients. Here each batch slice (about 1 MB of patches) goes through
the whole chain while it is in cache: products, bias, pooling, a one-hot mask of each
window's first maximum that already carries the ReLU's derivative, then the ReLU on
the pooled quarter (it commutes with max); the conv output never exists full size.
The patches are copied in block order (see `_block_windows`), so the product's rows
come out grouped by pooling-window offset: the window maxima, the mask and, in the
backward pass, the mask times the pooled gradient are passes over contiguous blocks
(not strided 2x2 windows), and conv outputs no window covers are never computed. The
backward pass, per slice: the mask times the pooled gradient, then the slice's kernel
and bias gradients, and per chunk (a few slices) the input gradient.

The chunks are the pieces both ways, and `twin.split` runs them: the first range of
chunks in this process, the others in twin processes (with two threads configured,
half the batch each, free of each other's GIL: a chunk is many short NumPy calls).
So what the pieces read and write is `twin.array` memory: the input and the upstream
gradient (copied there), the weights with the bias as one more row, the kept
patches, the mask, the pooled output and the input gradient (made there: a conv_pool
op reading another's output copies nothing), and the kernel and bias gradients'
partials, one per slice.

The mask is built only when a gradient can be asked for (a tape is recording when
the op runs: training, not `predict`/`evaluate`); if the VJPs are called anyway (a
graph's gradients taken afterwards), they run the forward again for it.

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

import functools
import itertools
import math
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from distflow import intra_op, nn, ops, twin
from distflow.primitive import defop
from distflow.tensor import Tensor, current_tape
from distflow.workspace import scratch

CHUNKS = 4  # pieces per call at least (two per process with a twin)
CHUNK_BYTES = 2 << 20  # conv output bytes per piece at most, where that needs more pieces
# patch bytes per product at most: a slice, the unit of the forward's products and of
# the mask's and the kept patches' layouts, and of the backward's kernel-gradient
# partials (so the same slices both ways, never depending on the thread count)
SLICE_BYTES = 1 << 20


class _Geo(NamedTuple):
    """One call's shapes and how its batch is cut, plain ints and tuples (a kernel
    argument: twins receive it as a plain tuple, which `load` makes a `_Geo` again);
    the ranges themselves (`chunks`, `slices`, `first`) are derived on each side."""

    spec: tuple  # (strides, dilations, pads)
    out_hw: tuple  # the conv's (oh, ow)
    pool: tuple
    pooled_hw: tuple
    rows: int  # the covered conv outputs per image, the only ones computed
    cuts: tuple  # (images, chunks, patch bytes per image, patch bytes per slice at most)

    @classmethod
    def load(cls, fields: tuple) -> _Geo:
        """The `_Geo` whose fields a kernel received as a plain tuple."""
        return cls(*fields)

    @property
    def chunks(self) -> tuple:
        """The pieces' batch ranges."""
        return _ranges(*self.cuts)[0]

    @property
    def slices(self) -> tuple:
        """Per chunk, its slices' batch ranges."""
        return _ranges(*self.cuts)[1]

    @property
    def first(self) -> tuple:
        """Per chunk, its first slice's index; last, the slice count."""
        return _ranges(*self.cuts)[2]


def _pieces(n: int, image_bytes: int) -> int:
    """How many chunks (pieces) a call's batch is cut into: at least CHUNKS, enough
    that each holds at most CHUNK_BYTES of conv output (while in cache), an even count
    (two processes get equal shares), never depending on the thread count (sums over
    pieces keep one order)."""
    count = max(CHUNKS, -(-n * image_bytes // CHUNK_BYTES))
    return count + count % 2


def _geometry(x: np.ndarray, w: np.ndarray, strides, dilations, mode, pool) -> _Geo:
    """The call's `_Geo`."""
    kh, kw, cin, cout = w.shape
    oh, ow, pad_h, pad_w = nn._geometry(x.shape, kh, kw, strides, dilations, mode)
    pooled_hw = (oh // pool[0], ow // pool[1])
    rows = math.prod(pooled_hw) * math.prod(pool)
    pieces = _pieces(x.shape[0], oh * ow * cout * x.itemsize)
    patch_bytes = rows * kh * kw * cin * x.itemsize
    return _Geo((strides, dilations, (pad_h, pad_w)), (oh, ow), pool, pooled_hw, rows,
                (x.shape[0], pieces, patch_bytes, SLICE_BYTES))


@functools.lru_cache(maxsize=64)
def _ranges(n: int, pieces: int, patch_bytes: int, limit: int) -> tuple[tuple, tuple, tuple]:
    """(chunks, slices, first) of n images: `pieces` near-equal chunks; per chunk its
    slices (batch ranges of at most `limit` bytes of patches, as few as that allows);
    each chunk's first slice's index, then the slice count."""
    chunks = tuple(intra_op.split(n, pieces))
    slices = tuple(tuple((c0 + s0, c0 + s1) for s0, s1 in nn._slices(c1 - c0, patch_bytes,
                                                                      limit))
                   for c0, c1 in chunks)
    return chunks, slices, tuple(itertools.accumulate((len(s) for s in slices), initial=0))


# Block order: a slice's conv outputs as rows (qi, qj, b, pi, pj) for the pooling
# window offset (qi, qj) and the pooled position (pi, pj) of image b, i.e. the
# (KH, KW, b, PH, PW, C) layout of the pooling's windows but contiguous: the window
# maxima, the mask and the mask times the gradient are passes over whole blocks.


def _block_windows(xp: np.ndarray, kshape: tuple, geo: _Geo) -> np.ndarray:
    """The covered windows of the padded images xp as a strided view (no copy):
    (KH, KW, b, PH, PW, kh, kw, c), or (kh, kw, c, KH, KW, b, PH, PW) for few channels
    (`nn._patch_shape`'s two layouts, in block order)."""
    kh, kw = kshape[:2]
    (st_h, st_w), (d_h, d_w), _ = geo.spec
    (qh, qw), (ph, pw) = geo.pool, geo.pooled_hw
    s0, s1, s2, s3 = xp.strides
    c = xp.shape[3]
    block = ((qh, qw, xp.shape[0], ph, pw),
             (s1 * st_h, s2 * st_w, s0, s1 * st_h * qh, s2 * st_w * qw))
    patch = ((kh, kw, c), (s1 * d_h, s2 * d_w, s3))
    first, second = (patch, block) if c <= nn._FEW_CHANNELS else (block, patch)
    return as_strided(xp, first[0] + second[0], first[1] + second[1], writeable=False)


def _block_patches(xp, kshape: tuple, geo: _Geo, kept, b0: int, b1: int) -> np.ndarray:
    """Images b0:b1's (rows, kh*kw*c + 1) patch matrix in block order (for a kernel of
    shape `kshape`), its last column ones (the bias's: the product adds it, and the
    kernel gradient's product sums the bias gradient), copied from xp (those images,
    padded) into their part of `kept` (a flat array for the whole batch, `_kept`) or
    this thread's scratch."""
    view = _block_windows(xp, kshape, geo)
    k, rows = math.prod(kshape[:3]), (b1 - b0) * geo.rows
    few = kshape[2] <= nn._FEW_CHANNELS
    cols = _kept_part(kept, kshape, geo, b0, b1) if kept is not None else \
        scratch("patches", (k + 1, rows) if few else (rows, k + 1), xp.dtype)
    patches, ones = (cols[:k], cols[k]) if few else (cols[:, :k], cols[:, k])
    target = patches.view()
    target.shape = view.shape  # a view of the patch columns (raises if it cannot be)
    np.copyto(target, view)
    ones.fill(1)
    return cols.T if few else cols


def _kept_part(kept: np.ndarray, kshape: tuple, geo: _Geo, b0: int, b1: int) -> np.ndarray:
    """Images b0:b1's part of the flat kept patches, shaped (kh*kw*c + 1, rows) for few
    channels, else (rows, kh*kw*c + 1)."""
    k = math.prod(kshape[:3]) + 1
    part = kept[b0 * geo.rows * k:b1 * geo.rows * k]
    return part.reshape(k, -1) if kshape[2] <= nn._FEW_CHANNELS else part.reshape(-1, k)


def _weight_patches(r: dict, xp, b0: int, b1: int) -> np.ndarray:
    """Images b0:b1's block-order patch matrix (`_block_patches`) for the kernel and
    bias gradients: the kept one, else rebuilt from xp (those images, padded) in this
    thread's scratch."""
    kshape = r["w"].shape
    if r["kept"] is None:
        return _block_patches(xp, kshape, r["geo"], None, b0, b1)
    part = _kept_part(r["kept"], kshape, r["geo"], b0, b1)
    return part.T if kshape[2] <= nn._FEW_CHANNELS else part


def _kept(x: np.ndarray, w: np.ndarray, geo: _Geo) -> np.ndarray | None:
    """A flat array for the whole batch's block-order patches when they are small
    (recomputing them in the backward pass would cost more than keeping them)."""
    size = x.shape[0] * geo.rows * (math.prod(w.shape[:3]) + 1)
    return twin.array((size,), x.dtype) if size * x.itemsize <= nn._KEEP_BYTES else None


def _covered(y: np.ndarray, geo: _Geo) -> np.ndarray:
    """The part of a (spatial) conv output slice the tiling windows cover."""
    (ph, pw), (kh, kw) = geo.pooled_hw, geo.pool
    return y[:, :ph * kh, :pw * kw]


def _mask_of(masks: np.ndarray, geo: _Geo, b0: int, b1: int, c: int) -> np.ndarray:
    """Images b0:b1's one-hot mask, (KH*KW, b*PH*PW*C), contiguous."""
    per_image = geo.rows * c
    return masks[b0 * per_image:b1 * per_image].reshape(math.prod(geo.pool), -1)


def _pool_slice(y: np.ndarray, pooled: np.ndarray, mask: np.ndarray | None) -> None:
    """pooled = ReLU of the max over the windows of y (the conv + bias in block order,
    (KH*KW, b*PH*PW*C); the ReLU commutes with max, so it runs on the pooled quarter);
    mask (unless None) = each window's first maximum, where that maximum is positive
    (the ReLU's derivative folded in: among positive values ReLU is the identity, so
    its first maximum is y's)."""
    np.max(y, axis=0, out=pooled)
    if mask is not None:
        np.equal(y, pooled, out=mask)
        nn._first_hits(mask)
        positive = np.greater(pooled, 0, out=scratch("pool_positive", pooled.shape, bool))
        np.logical_and(mask, positive, out=mask)
    ops.rectify(pooled, out=pooled)


def _forward(x, w, b, strides, dilations, mode, pool, grad=True):
    """The pooled output; with `grad`, the residuals include the pooling's mask (else
    the VJPs recompute the forward first: nothing was expected to differentiate it)."""
    n, cout = x.shape[0], w.shape[3]
    geo = _geometry(x, w, strides, dilations, mode, pool)
    dtype = np.result_type(x.dtype, w.dtype)
    x_shared = twin.shared(x)
    kept = _kept(x, w, geo) if grad else None
    out = twin.array((n, *geo.pooled_hw, cout), dtype)
    masks = twin.array((out.size * math.prod(pool),), bool) if grad else None
    w_and_b = twin.array((math.prod(w.shape[:3]) + 1, cout), dtype)
    np.concatenate([w.reshape(-1, cout), b.reshape(1, cout)], out=w_and_b, casting="unsafe")
    twin.split(len(geo.chunks), _forward_part, x_shared, w_and_b, kept, masks, out,
               w.shape, geo)
    params = {"strides": strides, "dilations": dilations, "mode": mode, "pool": pool}
    return out, {"x": x_shared, "w": w, "b": b, "w_and_b": w_and_b, "params": params,
                 "geo": geo, "kept": kept, "masks": masks, "grads": None}


@twin.kernel
def _forward_part(part: int, start: int, stop: int, x, w_and_b, kept, masks, out, kshape,
                  geo) -> None:
    """Chunks start:stop of `_forward` (`part` unused: the chunks index everything)."""
    geo = _Geo.load(geo)
    for k in range(start, stop):
        _forward_chunk(geo.chunks[k], geo.slices[k], x, w_and_b, kept, masks, out, kshape,
                       geo)


def _forward_chunk(chunk, slices, x, w_and_b, kept, masks, out, kshape, geo: _Geo) -> None:
    """The pooled output (and mask) of the chunk's images, slice by slice."""
    c0, c1 = chunk
    xp = nn._padded(x[c0:c1], geo.spec[2])
    for b0, b1 in slices:
        y = scratch("conv_pool_out", ((b1 - b0) * geo.rows, kshape[3]), out.dtype)
        np.matmul(_block_patches(xp[b0 - c0:b1 - c0], kshape, geo, kept, b0, b1), w_and_b,
                  out=y)
        _pool_slice(y.reshape(math.prod(geo.pool), -1), out[b0:b1].reshape(-1),
                    None if masks is None else _mask_of(masks, geo, b0, b1, kshape[3]))


def _masked_grad(g, r, b0: int, b1: int, out: np.ndarray) -> np.ndarray:
    """out = images b0:b1's pre-activation gradient where the windows cover, the mask
    times g, in block order (KH*KW, b, PH, PW, C)."""
    geo, cout = r["geo"], r["w"].shape[3]
    mask = _mask_of(r["masks"], geo, b0, b1, cout).reshape(out.shape)
    return np.multiply(mask, g[b0:b1], out=out)


@twin.kernel
def _backward_part(part: int, start: int, stop: int, g, x, w_and_b, kept, masks, parts,
                   dx, kshape, geo) -> None:
    """Chunks start:stop of `_grads`: their slices' kernel and bias gradients into
    parts[slice], their input gradient into dx (unless None)."""
    r = {"x": x, "w": w_and_b[:-1].reshape(kshape), "geo": _Geo.load(geo),
         "kept": kept, "masks": masks}
    for k in range(start, stop):
        _chunk_grads(g, r, k, parts, dx)


def _chunk_grads(g, r, k: int, parts: np.ndarray, dx: np.ndarray | None) -> None:
    """Chunk k's slices' kernel and bias gradients (parts[i]: the kernel's rows, then
    the bias's), all in block order: the mask times g as one contiguous pass, times
    the kept patches or rebuilt ones; and unless `dx` is None, the chunk's input
    gradient (into dx) from that pre-activation gradient copied into the spatial,
    padded layout the input gradient's correlation reads."""
    geo, w = r["geo"], r["w"]
    cout, windows = w.shape[3], math.prod(geo.pool)
    c0, c1 = geo.chunks[k]
    spatial = None if dx is None else _spatial_grad(r, c1 - c0, g.dtype)
    xp = None if r["kept"] is not None else nn._padded(r["x"][c0:c1], geo.spec[2])
    for i, (b0, b1) in enumerate(geo.slices[k], start=geo.first[k]):
        dy = scratch("conv_pool_grad", (windows, b1 - b0, *geo.pooled_hw, cout), g.dtype)
        _masked_grad(g, r, b0, b1, dy)
        cols = _weight_patches(r, None if xp is None else xp[b0 - c0:b1 - c0], b0, b1)
        np.matmul(cols.T, dy.reshape(-1, cout), out=parts[i])
        if spatial is not None:
            part = _covered(spatial[1][b0 - c0:b1 - c0], geo)
            np.copyto(nn._blocks(part, *geo.pool, geo.pooled_hw),
                      dy.reshape(*geo.pool, *dy.shape[1:]))
    if dx is not None:
        _chunk_input_grad(r, spatial[0], dx[c0:c1])


def _spatial_grad(r: dict, n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(padded, conv output) arrays of n images' pre-activation gradient in this
    thread's scratch, the second a view into the first: zeros wherever the windows do
    not cover (the pads the input gradient needs around it included); the covered
    part is for the caller to fill."""
    x, w, geo = r["x"], r["w"], r["geo"]
    (oh, ow), cout = geo.out_hw, w.shape[3]
    strides, dilations, pads = geo.spec
    full = nn._full_pads(w, dilations, pads, x.shape, (n, oh, ow)) \
        if nn._correlates(strides, w) else ((0, 0), (0, 0))
    (top, bottom), (left, right) = full
    padded = scratch("conv_pool_dy", (n, oh + top + bottom, ow + left + right, cout), dtype)
    inner = padded[:, top:top + oh, left:left + ow]
    ch, cw = (p * q for p, q in zip(geo.pooled_hw, geo.pool))
    padded[:, :top] = 0
    padded[:, top + ch:] = 0
    padded[:, top:top + ch, :left] = 0
    padded[:, top:top + ch, left + cw:] = 0
    return padded, inner


def _chunk_input_grad(r: dict, padded: np.ndarray, out: np.ndarray) -> None:
    """out = the input gradient of the chunk whose padded pre-activation gradient
    `padded` is (`_spatial_grad`)."""
    w, (strides, dilations, pads) = r["w"], r["geo"].spec
    if nn._correlates(strides, w):
        nn._correlate(padded, nn._flipped(w), (1, 1), dilations, ((0, 0), (0, 0)), out=out)
    else:
        nn._input_grad(padded, w, out.shape, strides, dilations, pads, out=out)


def _with_masks(r: dict) -> dict:
    """The residuals, the forward run again for its mask if it was run without."""
    if r["masks"] is None:
        again = _forward(r["x"], r["w"], r["b"], **r["params"])[1]
        r.update(kept=again["kept"], masks=again["masks"])
    return r


def _grads(g: np.ndarray, r: dict, with_input: bool) -> dict:
    """{'x', 'w', 'b'} gradients for g (without 'x' unless `with_input`), kept in the
    residuals for the other VJPs of the same g."""
    cached = r["grads"]
    if cached is not None and cached["g"] is g and (not with_input or "x" in cached):
        return cached
    x, w, geo = r["x"], r["w"], r["geo"]
    _with_masks(r)
    parts = twin.array((geo.first[-1], math.prod(w.shape[:3]) + 1, w.shape[3]), g.dtype)
    dx = twin.array(x.shape, g.dtype) if with_input else None
    twin.split(len(geo.chunks), _backward_part, twin.shared(g), x, r["w_and_b"], r["kept"],
               r["masks"], parts, dx, w.shape, geo)
    total = nn._ordered_sum(parts)
    grads = {"g": g, "w": total[:-1].reshape(w.shape), "b": total[-1]}
    if with_input:
        grads["x"] = dx
    r["grads"] = grads
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
                      mode=nn._padding(padding), pool=pool, grad=current_tape() is not None)
