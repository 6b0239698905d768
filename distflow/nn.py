"""Neural-network ops with the arguments of their `tf.nn` namesakes.

conv2d and pooling are vectorised: windows are a strided view of the padded
input, conv2d is GEMMs over patch matrices built in reused scratch buffers (see
the conv2d section), and backward passes loop over kernel offsets (at most KH*KW
slices), never over pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from distflow import intra_op, ops, random, strategy_stack
from distflow.ops import (  # noqa: F401  (re-exported under df.nn)
    _t,
    defop,
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    selu,
    sigmoid,
    sigmoid_cross_entropy_with_logits,
    softmax,
    softmax_cross_entropy_with_logits,
    softplus,
    sparse_softmax_cross_entropy_with_logits,
    tanh,
)
from distflow.reorder_ops import approx_max_k, approx_min_k  # noqa: F401  (tf.nn's names)
from distflow.space_batch_ops import space_to_batch  # noqa: F401
from distflow.tensor import Tensor, graph_form
from distflow.workspace import claim, holds, scratch

# ------------------------------------------------------------------ geometry


def _pair2(value: Any, name: str) -> tuple[int, int]:
    """Normalises an int, [h, w] or NHWC-style [1, h, w, 1] argument to (h, w)."""
    vals = [int(v) for v in np.atleast_1d(value)]
    if len(vals) == 1:
        vals = vals * 2
    elif len(vals) == 4:
        vals = vals[1:3]
    if len(vals) != 2 or min(vals) < 1:
        raise ValueError(f"`{name}` must be a positive int or a list of 1, 2 or 4 positive "
                         f"ints. Received: {name}={value!r}")
    return vals[0], vals[1]


def _padding(padding: Any) -> str:
    mode = str(padding).upper()
    if mode not in ("SAME", "VALID"):
        raise ValueError(f"`padding` must be 'SAME' or 'VALID' (either case). "
                         f"Received: padding={padding!r}")
    return mode


def _axis_geometry(size: int, k: int, stride: int, dilation: int, mode: str):
    """Output length and (before, after) padding of one spatial axis, as TF computes them."""
    span = (k - 1) * dilation + 1
    if mode == "VALID":
        out = (size - span) // stride + 1
        return out, (0, 0)
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, (total // 2, total - total // 2)


def _geometry(shape, kh, kw, strides, dilations, mode):
    oh, ph = _axis_geometry(shape[1], kh, strides[0], dilations[0], mode)
    ow, pw = _axis_geometry(shape[2], kw, strides[1], dilations[1], mode)
    if oh < 1 or ow < 1:
        raise ValueError(f"The window ({kh}x{kw}, dilation {dilations}) is larger than the "
                         f"input's spatial size {shape[1:3]} with padding {mode!r}.")
    return oh, ow, ph, pw


def _windows(xp: np.ndarray, kh, kw, oh, ow, strides, dilations) -> np.ndarray:
    """A (N, OH, OW, KH, KW, C) strided view of the padded input; no copy."""
    n, _, _, c = xp.shape
    s0, s1, s2, s3 = xp.strides
    return as_strided(
        xp, shape=(n, oh, ow, kh, kw, c),
        strides=(s0, s1 * strides[0], s2 * strides[1], s1 * dilations[0], s2 * dilations[1], s3),
        writeable=False)


def _pad_input(x: np.ndarray, ph, pw, value=0.0) -> np.ndarray:
    if ph == (0, 0) and pw == (0, 0):
        return x
    return np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=value)


def _offset_slice(i, j, oh, ow, strides, dilations):
    """The slice of the padded input that kernel offset (i, j) touches, for every output."""
    r0, c0 = i * dilations[0], j * dilations[1]
    return (slice(None), slice(r0, r0 + strides[0] * (oh - 1) + 1, strides[0]),
            slice(c0, c0 + strides[1] * (ow - 1) + 1, strides[1]), slice(None))


def _offsets(kh: int, kw: int):
    return [(i, j) for i in range(kh) for j in range(kw)]


def _crop(dxp: np.ndarray, shape, ph, pw) -> np.ndarray:
    return dxp[:, ph[0]:ph[0] + shape[1], pw[0]:pw[0] + shape[2], :]


# -------------------------------------------------------------------- conv2d
#
# Every convolution (forward, input gradient, kernel gradient) is a GEMM against a
# patch matrix built batch-slice by batch-slice in per-thread scratch buffers that are
# reused across calls (fresh multi-megabyte arrays cost page faults on every step):
# the slice is padded into one buffer, its windows (a strided view) copied into
# another, and the product written straight into the output. A slice is about 1 MB of
# patches, so the GEMM reads them from L2 right after the copy wrote them (16 MB slices
# ran 20-40 % slower). 1x1 kernels need no
# patch matrix. With stride 1 the input gradient is the correlation of the output
# gradient with the flipped, transposed kernel (the same machinery, no scatter); only
# strided convolutions scatter their patch gradients back, kh*kw slices per batch slice.
# The slices are independent pieces for `intra_op.parallel_for`: with two or more
# intra-op threads they run concurrently (patch copy and GEMM, BLAS at one thread each),
# each writing its own output rows; the kernel gradient keeps one product per slice and
# adds them in slice order, so results do not depend on the thread count.

_SLICE_BYTES = 1 << 20  # patch-matrix bytes per batch slice: a slice the GEMM reads from L2
def _slices(n: int, item_bytes: int, limit: int | None = None):
    """(start, stop) batch slices of at most `limit` (default _SLICE_BYTES) bytes of
    patches each, as few as that allows and of near-equal sizes (pieces that balance
    on the intra-op threads)."""
    step = max(1, (_SLICE_BYTES if limit is None else limit) // max(item_bytes, 1))
    return intra_op.split(n, -(-n // step))


def _padded(x: np.ndarray, pads) -> np.ndarray:
    """x zero-padded on its spatial axes, in a scratch buffer (x itself without pads)."""
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    n, h, w, c = x.shape
    xp = scratch("padded", (n, h + pt + pb, w + pl + pr, c), x.dtype)
    xp[:, :pt] = 0
    xp[:, pt + h:] = 0
    xp[:, pt:pt + h, :pl] = 0
    xp[:, pt:pt + h, pl + w:] = 0
    xp[:, pt:pt + h, pl:pl + w] = x
    return xp


_FEW_CHANNELS = 4  # inputs with at most this many channels build offset-major patches


def _patch_shape(n: int, c: int, kh: int, kw: int, out_hw) -> tuple:
    """The layout of n images' patches: offset-major (kh, kw, c, n, oh, ow) with few
    channels (a row-major copy would move kw*c elements per step, an offset-major one
    ow), else row-major (n, oh, ow, kh, kw, c)."""
    return (kh, kw, c, n, *out_hw) if c <= _FEW_CHANNELS else (n, *out_hw, kh, kw, c)


def _images(cols: np.ndarray, b0: int, b1: int, c: int) -> np.ndarray:
    """Images b0:b1 of a patch array of c-channel images (`_patch_shape`'s layout; a view)."""
    return cols[:, :, :, b0:b1] if c <= _FEW_CHANNELS else cols[b0:b1]


def _matrix(cols: np.ndarray, few: bool) -> np.ndarray:
    """The (n*oh*ow, kh*kw*c) patch matrix of a patch array (a view: the transpose of
    the offset-major one)."""
    if few:
        return cols.reshape(math.prod(cols.shape[:3]), -1).T
    return cols.reshape(-1, math.prod(cols.shape[3:]))


def _fill_patches(cols, x, kh, kw, strides, dilations, pads) -> np.ndarray:
    """Writes x's patches into `cols` (`_patch_shape`'s layout for x) and returns their
    matrix."""
    few = x.shape[3] <= _FEW_CHANNELS
    oh, ow = cols.shape[4:] if few else cols.shape[1:3]
    xp = _padded(x, pads)
    if not few:
        np.copyto(cols, _windows(xp, kh, kw, oh, ow, strides, dilations))
    else:
        for i, j in _offsets(kh, kw):
            np.copyto(cols[i, j], xp[_offset_slice(i, j, oh, ow, strides, dilations)]
                      .transpose(3, 0, 1, 2))
    return _matrix(cols, few)


def _patches(x, kh, kw, out_hw, strides, dilations, pads) -> np.ndarray:
    """The (n*oh*ow, kh*kw*c) patch matrix of a batch slice, in this thread's scratch."""
    shape = _patch_shape(x.shape[0], x.shape[3], kh, kw, out_hw)
    return _fill_patches(scratch("patches", shape, x.dtype), x, kh, kw, strides, dilations,
                         pads)


def _out_hw(shape, kh, kw, strides, dilations, pads) -> tuple[int, int]:
    return tuple((size + sum(p) - (k - 1) * d - 1) // s + 1 for size, k, s, d, p in
                 zip(shape[1:3], (kh, kw), strides, dilations, pads))


def _pointwise(x: np.ndarray, w: np.ndarray, strides, pads) -> np.ndarray | None:
    """A 1x1 unpadded convolution's input rows (strided subsample), or None."""
    if w.shape[:2] != (1, 1) or pads != ((0, 0), (0, 0)):
        return None
    return x[:, ::strides[0], ::strides[1]] if strides != (1, 1) else x


def _correlate(x, w, strides, dilations, pads, kept=None, epilogue=None,
               out=None) -> np.ndarray:
    """Cross-correlation of NHWC x with HWIO w, explicit ((top, bottom), (left, right))
    pads, batch slice by batch slice on the intra-op threads. `kept`: a fresh patch
    array (`_patch_shape`) for the whole batch to fill and keep, else per-thread scratch.
    `epilogue(rows)`: applied in place to each slice's (pixels, cout) output rows right
    after its product (while they are in cache). `out`: a C-contiguous array of the
    result's shape and dtype to write (else a new one)."""
    kh, kw, c, cout = w.shape
    oh, ow = _out_hw(x.shape, kh, kw, strides, dilations, pads)
    if out is None:
        out = np.empty((x.shape[0], oh, ow, cout), np.result_type(x.dtype, w.dtype))
    rows = _pointwise(x, w, strides, pads)
    w2 = w.reshape(-1, cout)
    if rows is not None:
        np.matmul(rows.reshape(-1, c), w2, out=out.reshape(-1, cout))
        if epilogue is not None:
            epilogue(out.reshape(-1, cout))
        return out
    slices = _slices(x.shape[0], oh * ow * w2.shape[0] * x.itemsize)

    def piece(k: int) -> None:
        b0, b1 = slices[k]
        if kept is None:
            cols = _patches(x[b0:b1], kh, kw, (oh, ow), strides, dilations, pads)
        else:
            cols = _fill_patches(_images(kept, b0, b1, c), x[b0:b1], kh, kw, strides,
                                 dilations, pads)
        np.matmul(cols, w2, out=out[b0:b1].reshape(-1, cout))
        if epilogue is not None:
            epilogue(out[b0:b1].reshape(-1, cout))
    intra_op.parallel_for(len(slices), piece)
    return out


def _kernel_grad(x, g, wshape, strides, dilations, pads, kept=None) -> np.ndarray:
    """dL/dw: the patch matrix transposed times the output gradient, one product per
    batch slice on the intra-op threads, added in slice order (the same sum on any
    number of threads). `kept`: the forward's patch array, else patches are rebuilt."""
    kh, kw, c, cout = wshape
    g = np.ascontiguousarray(g)
    rows = _pointwise(x, np.empty((kh, kw, 0, 0)), strides, pads)
    if rows is not None:
        return (rows.reshape(-1, c).T @ g.reshape(-1, cout)).reshape(wshape)
    out_hw = g.shape[1:3]
    slices = _slices(x.shape[0], math.prod(out_hw) * kh * kw * c * x.itemsize)
    parts = scratch("kernel_parts", (len(slices), kh * kw * c, cout), g.dtype)

    def piece(k: int) -> None:
        b0, b1 = slices[k]
        cols = _patches(x[b0:b1], kh, kw, out_hw, strides, dilations, pads) if kept is None \
            else _matrix(_images(kept, b0, b1, c), c <= _FEW_CHANNELS)
        np.matmul(cols.T, g[b0:b1].reshape(-1, cout), out=parts[k])
    intra_op.parallel_for(len(slices), piece)
    return _ordered_sum(parts).reshape(wshape)


def _ordered_sum(parts: np.ndarray) -> np.ndarray:
    """parts[0] + parts[1] + ... added in that order, in a fresh array."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def _input_grad(g, w, xshape, strides, dilations, pads, out=None) -> np.ndarray:
    """dL/dx (into `out` if given, C-contiguous). Stride 1: correlate g, padded to
    'full', with the flipped transposed kernel (a GEMM with few output columns when x
    has few channels: then the scatter is cheaper)."""
    if not _correlates(strides, w):
        dx = _scatter_input_grad(g, w, xshape, strides, dilations, pads)
        if out is None:
            return dx
        np.copyto(out, dx)
        return out
    full = _full_pads(w, dilations, pads, xshape, g.shape)
    return _correlate(g, _flipped(w), (1, 1), dilations, full, out=out)


def _correlates(strides, w: np.ndarray) -> bool:
    """Whether `_input_grad` correlates (stride 1, at least 8 input channels)."""
    return strides == (1, 1) and w.shape[2] >= 8


def _full_pads(w: np.ndarray, dilations, pads, xshape, gshape) -> tuple:
    """The pads of the output gradient that make its correlation with the flipped
    kernel x's size again ('full' padding, trimmed as the forward's pads were)."""
    return tuple(((k - 1) * d - p[0], size - o + p[0])
                 for k, d, p, size, o in zip(w.shape[:2], dilations, pads, xshape[1:3],
                                             gshape[1:3]))


def _flipped(w: np.ndarray) -> np.ndarray:
    """The kernel rotated 180 degrees with its channel axes swapped (HWOI), contiguous."""
    return np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))


def _scatter_input_grad(g, w, xshape, strides, dilations, pads) -> np.ndarray:
    """dL/dx of a strided convolution: patch gradients added back, kh*kw slices per slice."""
    kh, kw, c, cout = w.shape
    _, oh, ow, _ = g.shape
    (pt, pb), (pl, pr) = pads
    dx = np.empty(xshape, g.dtype)
    wt = w.reshape(-1, cout).T
    slices = _slices(xshape[0], oh * ow * kh * kw * c * g.itemsize)

    def piece(k: int) -> None:
        b0, b1 = slices[k]
        dcols = np.matmul(np.ascontiguousarray(g[b0:b1]).reshape(-1, cout), wt,
                          out=scratch("patches", ((b1 - b0) * oh * ow, kh * kw * c), g.dtype))
        dcols = dcols.reshape(b1 - b0, oh, ow, kh, kw, c)
        dxp = scratch("padded", (b1 - b0, xshape[1] + pt + pb, xshape[2] + pl + pr, c),
                       g.dtype)
        dxp.fill(0)
        for i in range(kh):
            for j in range(kw):
                dxp[_offset_slice(i, j, oh, ow, strides, dilations)] += dcols[:, :, :, i, j, :]
        dx[b0:b1] = _crop(dxp, xshape, (pt, pb), (pl, pr))
    intra_op.parallel_for(len(slices), piece)
    return dx


def _grouped(groups: int, fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """fn over matching channel groups of a's and b's last axes, concatenated on the last."""
    if groups == 1:
        return fn(a, b)
    ca, cb = a.shape[-1] // groups, b.shape[-1] // groups
    return np.concatenate([fn(a[..., i * ca:(i + 1) * ca], b[..., i * cb:(i + 1) * cb])
                           for i in range(groups)], axis=-1)


_KEEP_BYTES = 4 << 20  # a patch matrix this small is kept for the kernel gradient


def _kept_patches(x, w, spec) -> np.ndarray | None:
    """A fresh array for the whole batch's patches when they are small (recomputing them
    in the backward pass would cost more than keeping them), else None."""
    kh, kw, c, _ = w.shape
    strides, dilations, pads = spec
    out_hw = _out_hw(x.shape, kh, kw, strides, dilations, pads)
    shape = _patch_shape(x.shape[0], c, kh, kw, out_hw)
    if math.prod(shape) * x.itemsize > _KEEP_BYTES or _pointwise(
            x, w, strides, pads) is not None:
        return None
    return np.empty(shape, x.dtype)


def _conv2d_fwd(x, w, strides, dilations, mode, epilogue=None):
    """conv2d's forward and residuals; `epilogue` as `_correlate`'s (on the whole output
    of a grouped convolution)."""
    kh, kw, cin, cout = w.shape
    _, _, ph, pw = _geometry(x.shape, kh, kw, strides, dilations, mode)
    spec = (strides, dilations, (ph, pw))
    groups = x.shape[3] // cin
    if groups == 1:
        cols = _kept_patches(x, w, spec)
        out = _correlate(x, w, *spec, kept=cols, epilogue=epilogue)
    else:
        cols, out = None, _grouped(groups, lambda xs, ws: _correlate(xs, ws, *spec), x, w)
        if epilogue is not None:
            epilogue(out.reshape(-1, out.shape[-1]))
    return out, (x, w, spec, groups, cols)


def _conv2d_vjp_x(g, r):
    x, w, spec, groups, _ = r
    xshape = (*x.shape[:3], x.shape[3] // groups)
    return _grouped(groups, lambda gs, ws: _input_grad(gs, ws, xshape, *spec), g, w)


def _conv2d_vjp_w(g, r):
    x, w, spec, groups, cols = r
    return _grouped(groups, lambda xs, gs: _kernel_grad(
        xs, gs, w.shape[:3] + gs.shape[-1:], *spec, kept=cols), x, g)


_conv2d = defop("conv2d", _conv2d_fwd, _conv2d_vjp_x, _conv2d_vjp_w, fresh=True)


def _check_conv_args(x: Tensor, w: Tensor, data_format: str) -> None:
    if data_format != "NHWC":
        raise ValueError(f"conv2d supports data_format='NHWC' only. Received: {data_format!r}")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d expects a 4-D NHWC input and 4-D HWIO filters. Received "
                         f"shapes {x.shape} and {w.shape}.")
    if None in (x.shape[3], *w.shape):
        return  # a graph's unknown dimension: checked when the graph runs
    if min(w.shape) < 1 or x.shape[3] % w.shape[2] or w.shape[3] % (x.shape[3] // w.shape[2]):
        raise ValueError(f"conv2d: input has {x.shape[3]} channels, which is not a multiple "
                         f"of the filters' {w.shape[2]} input channels, or the "
                         f"{w.shape[3]} output channels do not split into the "
                         f"{x.shape[3] // max(w.shape[2], 1)} groups this implies "
                         f"(filters shape {w.shape}).")


def conv2d(input: Any, filters: Any, strides: Any = 1, padding: str = "VALID",  # noqa: A002
           data_format: str = "NHWC", dilations: Any = None) -> Tensor:
    """2-D convolution (cross-correlation) of NHWC `input` with HWIO `filters`.

    As in TensorFlow, `filters` of shape [kh, kw, in_channels / groups, out_channels]
    make a grouped convolution: output channel block i sees input channel block i.

    Args:
        input: tensor of shape [batch, height, width, in_channels].
        filters: tensor of shape [kh, kw, in_channels / groups, out_channels].
        strides: int or list of 1, 2 or 4 ints.
        padding: 'SAME' or 'VALID' (either case).
        data_format: only 'NHWC'.
        dilations: int or list; default 1.
    """
    x, w = ops._pair(input, filters)
    _check_conv_args(x, w, data_format)
    return _conv2d(x, w, strides=_pair2(strides, "strides"),
                   dilations=_pair2(1 if dilations is None else dilations, "dilations"),
                   mode=_padding(padding))


def _fused_conv_fwd(x, w, b, strides, dilations, mode, rectify):
    def bias_relu(rows: np.ndarray) -> None:
        rows += b
        if rectify:
            ops.rectify(rows, out=rows)
    out, conv_residuals = _conv2d_fwd(x, w, strides, dilations, mode, epilogue=bias_relu)
    return out, [conv_residuals, out if rectify else None, None]


def _relu_masked(g: np.ndarray, r: list) -> np.ndarray:
    """g through the fused ReLU, computed once per g for the three VJPs (which run one
    after another) into a scratch buffer: valid while this op's residuals `r` hold it."""
    if r[1] is None:
        return g
    if r[2] is None or r[2][0] is not g or not holds("relu_grad", r):
        masked = ops.relu_grad(g, r[1], result=scratch("relu_grad", g.shape, g.dtype))
        r[2] = (g, claim("relu_grad", r, masked))
    return r[2][1]


_fused_conv2d = defop(
    "conv2d_bias_relu", _fused_conv_fwd,
    lambda g, r: _conv2d_vjp_x(_relu_masked(g, r), r[0]),
    lambda g, r: _conv2d_vjp_w(_relu_masked(g, r), r[0]),
    lambda g, r: ops.channel_sum(np.ascontiguousarray(_relu_masked(g, r))))


def fused_conv2d(input: Any, filters: Any, bias: Any, strides: Any = 1,  # noqa: A002
                 padding: str = "VALID", dilations: Any = None,
                 activation: str | None = None) -> Tensor:
    """conv2d(input, filters) + bias, then `activation` ('relu' or None), in one pass
    over the output.

    The same values and gradients as the three ops composed, without their temporaries.

    Args:
        input, filters, strides, padding, dilations: as `conv2d` (NHWC, HWIO).
        bias: 1-D tensor of out_channels values, of the filters' dtype.
        activation: 'relu' for max(., 0), or None.
    """
    if activation not in (None, "relu"):
        raise ValueError("fused_conv2d supports activation='relu' or None. "
                         f"Received: activation={activation!r}")
    x, w = ops._pair(input, filters)
    _check_conv_args(x, w, "NHWC")
    return _fused_conv2d(x, w, _t(bias), strides=_pair2(strides, "strides"),
                         dilations=_pair2(1 if dilations is None else dilations, "dilations"),
                         mode=_padding(padding), rectify=activation == "relu")


def bias_add(value: Any, bias: Any) -> Tensor:
    """Adds a 1-D bias to the last axis (composite of add)."""
    return ops.add(value, bias)


# ------------------------------------------------------------------- pooling


def _max_pool_fwd(x, ksize, strides, mode):
    kh, kw = ksize
    oh, ow, ph, pw = _geometry(x.shape, kh, kw, strides, (1, 1), mode)
    xp = _pad_input(x, ph, pw, value=-np.inf)
    windows = _windows(xp, kh, kw, oh, ow, strides, (1, 1))
    out = np.empty(windows.shape[:3] + windows.shape[5:], x.dtype)

    def piece(b0: int, b1: int) -> None:  # kh*kw - 1 passes over the output, no reduction
        np.copyto(out[b0:b1], windows[b0:b1, :, :, 0, 0])
        for i, j in _offsets(kh, kw)[1:]:
            np.maximum(out[b0:b1], windows[b0:b1, :, :, i, j], out=out[b0:b1])
    intra_op.over_rows(x.shape[0], x.size, piece)
    return out, (xp, out, x.shape, ksize, strides, (oh, ow, ph, pw))


def _max_pool_vjp(g, r):
    """Each window's gradient goes to its first maximum, as in TF: `pending` holds what no
    earlier offset has taken. Windows that tile the input take the one-pass route."""
    xp, out, shape, (kh, kw), strides, (oh, ow, ph, pw) = r
    if (kh, kw) == strides:
        return _crop(_tiled_max_grad(g, xp, out, kh, kw), shape, ph, pw)
    dxp = np.zeros(xp.shape, g.dtype)
    pending = g.copy()
    for k, (i, j) in enumerate(_offsets(kh, kw)):
        sl = _offset_slice(i, j, oh, ow, strides, (1, 1))
        hit = xp[sl] == out
        dxp[sl] += pending * hit
        if k < kh * kw - 1:  # (a multiply by the complement: masked writes are slower)
            np.multiply(pending, np.logical_not(hit, out=hit), out=pending)
    return _crop(dxp, shape, ph, pw)


def _blocks(a: np.ndarray, kh: int, kw: int, out_hw) -> np.ndarray:
    """The (KH, KW, N, OH, OW, C) view of a's non-overlapping kh x kw windows (offset
    first: each offset's slice is one contiguous block of a mask laid out like it)."""
    s0, s1, s2, s3 = a.strides
    return as_strided(a, shape=(kh, kw, a.shape[0], *out_hw, a.shape[3]),
                      strides=(s1, s2, s0, s1 * kh, s2 * kw, s3))


def _first_hits(hit: np.ndarray) -> None:
    """Keeps, per window (column of the (K, windows) `hit`), only its first True, in place."""
    seen = hit[0].copy()
    for k in range(1, hit.shape[0]):
        np.greater(hit[k], seen, out=hit[k])  # hit and not seen before
        if k < hit.shape[0] - 1:
            np.logical_or(seen, hit[k], out=seen)


def _tiled_max_grad(g, xp, out, kh, kw) -> np.ndarray:
    """dL/dxp for windows that tile xp (stride = window): a one-hot mask of each window's
    first maximum, built offset-major in one comparison, times g in one broadcast pass."""
    out_hw = out.shape[1:3]
    covered = (out_hw[0] * kh, out_hw[1] * kw)
    dxp = (np.empty if xp.shape[1:3] == covered else np.zeros)(xp.shape, g.dtype)

    def piece(b0: int, b1: int) -> None:
        hit = np.equal(_blocks(xp[b0:b1], kh, kw, out_hw), out[b0:b1],
                       out=scratch("pool_hits", (kh, kw, b1 - b0, *out.shape[1:]), bool))
        _first_hits(hit.reshape(kh * kw, -1))
        np.multiply(hit, g[b0:b1], out=_blocks(dxp[b0:b1], kh, kw, out_hw))
    intra_op.over_rows(out.shape[0], xp.size, piece)
    return dxp


def _avg_pool_fwd(x, ksize, strides, mode):
    kh, kw = ksize
    oh, ow, ph, pw = _geometry(x.shape, kh, kw, strides, (1, 1), mode)
    xp = _pad_input(x, ph, pw)
    total = _windows(xp, kh, kw, oh, ow, strides, (1, 1)).sum(axis=(3, 4))
    count = _window_counts(x.shape, ksize, strides, oh, ow, ph, pw)
    return (total / count).astype(x.dtype, copy=False), (
        xp.shape, count, x.shape, ksize, strides, (oh, ow, ph, pw))


def _window_counts(shape, ksize, strides, oh, ow, ph, pw) -> np.ndarray:
    """How many real (unpadded) inputs each window covers: TF's SAME average excludes pads."""
    def per_axis(size, k, s, out, pad):
        starts = np.arange(out) * s - pad[0]
        return np.minimum(starts + k, size) - np.maximum(starts, 0)
    rows = per_axis(shape[1], ksize[0], strides[0], oh, ph)
    cols = per_axis(shape[2], ksize[1], strides[1], ow, pw)
    return (rows[:, None] * cols[None, :])[None, :, :, None].astype(np.float64)


def _avg_pool_vjp(g, r):
    padded_shape, count, shape, (kh, kw), strides, (oh, ow, ph, pw) = r
    share = (g / count).astype(g.dtype, copy=False)
    dxp = np.zeros(padded_shape, dtype=g.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[_offset_slice(i, j, oh, ow, strides, (1, 1))] += share
    return _crop(dxp, shape, ph, pw)


_max_pool2d = defop("max_pool2d", _max_pool_fwd, _max_pool_vjp)
_avg_pool2d = defop("avg_pool2d", _avg_pool_fwd, _avg_pool_vjp)


def _pool(prim, input, ksize, strides, padding) -> Tensor:  # noqa: A002
    x = _t(input)
    if x.ndim != 4:
        raise ValueError(f"Pooling expects a 4-D NHWC input. Received shape {x.shape}.")
    if x.dtype.kind != "f":
        x = ops.cast(x, np.float32)
    return prim(x, ksize=_pair2(ksize, "ksize"), strides=_pair2(strides, "strides"),
                mode=_padding(padding))


def max_pool2d(input: Any, ksize: Any, strides: Any, padding: str,  # noqa: A002
               data_format: str = "NHWC") -> Tensor:
    """Max pooling over NHWC windows."""
    return _pool(_max_pool2d, input, ksize, strides, padding)


def avg_pool2d(input: Any, ksize: Any, strides: Any, padding: str,  # noqa: A002
               data_format: str = "NHWC") -> Tensor:
    """Average pooling over NHWC windows (SAME padding averages real inputs only)."""
    return _pool(_avg_pool2d, input, ksize, strides, padding)


max_pool = max_pool2d
avg_pool = avg_pool2d


# ----------------------------------------------------- dropout, normalisation


def dropout(x: Any, rate: float, noise_shape: Any = None, seed: int | None = None,
            rng: np.random.Generator | None = None) -> Tensor:
    """Zeroes elements with probability `rate` and scales the rest by 1 / (1 - rate).

    In a graph the mask is drawn afresh at every run; without `noise_shape` it is its
    own operation and the product an ordinary `multiply` (its gradient `g * mask`).

    Args:
        x: input tensor.
        rate: drop probability in [0, 1).
        noise_shape: shape of the keep mask, broadcast against x.
        seed: op-level seed (ignored when `rng` is given).
        rng: explicit NumPy Generator; defaults to distflow's global generator.
    """
    x = _t(x)
    if not 0 <= float(rate) < 1:
        raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
    if rate == 0:
        return x
    if noise_shape is None:
        return ops.multiply(x, _keep_mask(x, float(rate), seed, rng))
    return _dropout_broadcast(x, float(rate), tuple(noise_shape), seed, rng)


@graph_form("stateful", ("x",), differentiable=False)  # a fresh mask every run, x's shape
def _keep_mask(x: Tensor, rate: float, seed: int | None, rng: Any) -> Tensor:
    """`dropout`'s scaled keep mask for `x`: 1 / (1 - rate) where kept, 0 where dropped."""
    return Tensor._wrap(_mask(_t(x).shape, x.dtype, rate, seed, rng))


@graph_form("stateful", ("x",))  # in a graph: a fresh mask every run
def _dropout_broadcast(x: Any, rate: float, noise_shape: tuple, seed: int | None,
                       rng: Any) -> Tensor:
    """`dropout` with a mask of `noise_shape` broadcast against `x`."""
    return ops.multiply(x, Tensor._wrap(_mask(noise_shape, _t(x).dtype, rate, seed, rng)))


def _mask(shape: tuple, dtype: Any, rate: float, seed: int | None, rng: Any) -> np.ndarray:
    if rng is None:
        rng = np.random.default_rng(seed) if seed is not None else random.get_global_generator()
    keep = (rng.random(shape, dtype=np.float32) >= rate).astype(dtype)
    keep *= 1.0 / (1.0 - rate)
    return keep


def moments(x: Any, axes: Any, keepdims: bool = False) -> tuple[Tensor, Tensor]:
    """Mean and (population) variance over `axes` (composite)."""
    axes = tuple(axes) if isinstance(axes, list | tuple) else axes
    mean = ops.mean(x, axis=axes, keepdims=True)
    variance = ops.mean(ops.square(ops.subtract(x, mean)),
                        axis=axes, keepdims=True)
    if not keepdims:
        mean, variance = ops.squeeze(mean, axes), ops.squeeze(variance, axes)
    return mean, variance


def batch_normalization(x: Any, mean: Any, variance: Any, offset: Any, scale: Any,
                        variance_epsilon: float) -> Tensor:
    """(x - mean) / sqrt(variance + eps) * scale + offset (composite)."""
    inv = ops.rsqrt(ops.add(variance, variance_epsilon))
    if scale is not None:
        inv = ops.multiply(inv, scale)
    shift = ops.negative(ops.multiply(mean, inv))
    if offset is not None:
        shift = ops.add(shift, offset)
    return ops.add(ops.multiply(x, inv), shift)


def layer_normalization(x: Any, gamma: Any = None, beta: Any = None, axis: Any = -1,
                        epsilon: float = 1e-3) -> Tensor:
    """Normalises over `axis` per example, then scales and shifts (composite)."""
    mean, variance = moments(x, axes=axis, keepdims=True)
    return batch_normalization(x, mean, variance, beta, gamma, epsilon)


def l2_normalize(x: Any, axis: Any = -1, epsilon: float = 1e-12) -> Tensor:
    """x / sqrt(max(sum(x**2), epsilon)) along `axis` (composite)."""
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.multiply(x, ops.rsqrt(ops.maximum(sq, epsilon)))


def compute_average_loss(per_example_loss: Any, sample_weight: Any = None,
                         global_batch_size: int | None = None) -> Tensor:
    """The per-example losses summed and divided by the global batch size (TF's contract).

    Inside `strategy.run` the replicas' gradients are summed, so dividing by the
    global batch (not the local one) gives the mean over the global batch.

    Args:
        per_example_loss: losses of this replica's examples, shape (batch, ...).
        sample_weight: optional weights broadcast against the losses.
        global_batch_size: default: this replica's batch x the replicas in sync.
    """
    loss = ops.convert_to_tensor(per_example_loss)
    if sample_weight is not None:
        loss = loss * ops.convert_to_tensor(sample_weight, dtype=loss.dtype)
    if global_batch_size is None:
        rows = loss.shape[0] if loss.ndim else 1
        global_batch_size = rows * strategy_stack.replicas_in_sync()
    if isinstance(global_batch_size, bool) or not isinstance(global_batch_size, int) or \
            global_batch_size < 0:
        raise ValueError("`global_batch_size` must be a non-negative int. Received: "
                         f"global_batch_size={global_batch_size!r}")
    total = ops.reduce_sum(loss)
    return total / float(global_batch_size) if global_batch_size else total * 0.0


def scale_regularization_loss(regularization_loss: Any) -> Tensor:
    """The regularization loss(es) summed and divided by the replicas in sync (TF's contract)."""
    losses = regularization_loss if isinstance(regularization_loss, list | tuple) else \
        [regularization_loss]
    return ops.add_n([ops.convert_to_tensor(x) for x in losses]) / float(
        strategy_stack.replicas_in_sync())


# tf.nn names defined in modules that build on this one (convolution gradients and
# transposes in `conv_ops`, the rest in `nn_more`): loaded on first use.
_MORE = {name: "conv_ops" for name in (
    "atrous_conv2d", "atrous_conv2d_transpose", "conv1d", "conv1d_transpose",
    "conv2d_transpose", "conv_transpose", "convolution", "depthwise_conv2d",
    "depthwise_conv2d_backprop_filter", "depthwise_conv2d_backprop_input", "separable_conv2d")}
_MORE.update({name: "nn_more" for name in (
    "avg_pool1d", "batch_norm_with_global_normalization", "crelu", "depth_to_space",
    "embedding_lookup", "in_top_k", "l2_loss", "local_response_normalization",
    "log_poisson_loss", "lrn", "max_pool1d", "normalize_moments", "pool", "relu6", "silu",
    "softsign", "space_to_depth", "sufficient_statistics", "swish", "top_k",
    "weighted_cross_entropy_with_logits", "weighted_moments", "zero_fraction")})
_MORE.update({name: "nn_patches" for name in (
    "avg_pool3d", "conv3d", "dilation2d", "embedding_lookup_sparse", "erosion2d",
    "max_pool3d", "max_pool_with_argmax", "safe_embedding_lookup_sparse")})
_MORE.update({name: "nn_sampled" for name in (
    "collapse_repeated", "compute_accidental_hits", "ctc_unique_labels", "isotonic_regression",
    "nce_loss", "sampled_softmax_loss")})
_MORE.update(all_candidate_sampler="candidate_sampling",
             fixed_unigram_candidate_sampler="candidate_sampling")


def __getattr__(name: str) -> Any:
    module = _MORE.get(name)
    if module is None:
        raise AttributeError(f"module 'distflow.nn' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"distflow.{module}"), name)
