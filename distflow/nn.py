"""Neural-network ops with the arguments of their `tf.nn` namesakes.

conv2d and pooling are vectorised: windows are a strided view of the padded
input (no copy), conv2d is one matmul over the im2col matrix, and backward
passes loop over kernel offsets (at most KH*KW slices), never over pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from distflow import ops, random, strategy_stack
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
from distflow.tensor import Tensor, graph_form

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


def _crop(dxp: np.ndarray, shape, ph, pw) -> np.ndarray:
    return dxp[:, ph[0]:ph[0] + shape[1], pw[0]:pw[0] + shape[2], :]


# -------------------------------------------------------------------- conv2d


def _conv2d_fwd(x, w, strides, dilations, mode):
    kh, kw, cin, cout = w.shape
    oh, ow, ph, pw = _geometry(x.shape, kh, kw, strides, dilations, mode)
    xp = _pad_input(x, ph, pw)
    cols = _windows(xp, kh, kw, oh, ow, strides, dilations).reshape(-1, kh * kw * cin)
    out = (cols @ w.reshape(-1, cout)).reshape(x.shape[0], oh, ow, cout)
    return out, (cols, w, x.shape, xp.shape, (oh, ow, ph, pw), strides, dilations)


def _conv2d_vjp_x(g, r):
    _, w, shape, padded_shape, (oh, ow, ph, pw), strides, dilations = r
    kh, kw, cin, cout = w.shape
    dcols = (g.reshape(-1, cout) @ w.reshape(-1, cout).T).reshape(
        shape[0], oh, ow, kh, kw, cin)
    dxp = np.zeros(padded_shape, dtype=g.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[_offset_slice(i, j, oh, ow, strides, dilations)] += dcols[:, :, :, i, j, :]
    return _crop(dxp, shape, ph, pw)


def _conv2d_vjp_w(g, r):
    cols, w = r[0], r[1]
    return (cols.T @ g.reshape(-1, w.shape[-1])).reshape(w.shape)


_conv2d = defop("conv2d", _conv2d_fwd, _conv2d_vjp_x, _conv2d_vjp_w)


def conv2d(input: Any, filters: Any, strides: Any = 1, padding: str = "VALID",  # noqa: A002
           data_format: str = "NHWC", dilations: Any = None) -> Tensor:
    """2-D convolution (cross-correlation) of NHWC `input` with HWIO `filters`.

    Args:
        input: tensor of shape [batch, height, width, in_channels].
        filters: tensor of shape [kh, kw, in_channels, out_channels].
        strides: int or list of 1, 2 or 4 ints.
        padding: 'SAME' or 'VALID' (either case).
        data_format: only 'NHWC'.
        dilations: int or list; default 1.
    """
    if data_format != "NHWC":
        raise ValueError(f"conv2d supports data_format='NHWC' only. Received: {data_format!r}")
    x, w = ops._pair(input, filters)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d expects a 4-D NHWC input and 4-D HWIO filters. Received "
                         f"shapes {x.shape} and {w.shape}.")
    if x.shape[3] != w.shape[2]:
        raise ValueError(f"conv2d: input has {x.shape[3]} channels but the filters expect "
                         f"{w.shape[2]} (filters shape {w.shape}).")
    return _conv2d(x, w, strides=_pair2(strides, "strides"),
                   dilations=_pair2(1 if dilations is None else dilations, "dilations"),
                   mode=_padding(padding))


def bias_add(value: Any, bias: Any) -> Tensor:
    """Adds a 1-D bias to the last axis (composite of add)."""
    return ops.add(value, bias)


# ------------------------------------------------------------------- pooling


def _max_pool_fwd(x, ksize, strides, mode):
    kh, kw = ksize
    oh, ow, ph, pw = _geometry(x.shape, kh, kw, strides, (1, 1), mode)
    xp = _pad_input(x, ph, pw, value=-np.inf)
    out = _windows(xp, kh, kw, oh, ow, strides, (1, 1)).max(axis=(3, 4))
    return out, (xp, out, x.shape, ksize, strides, (oh, ow, ph, pw))


def _max_pool_vjp(g, r):
    xp, out, shape, (kh, kw), strides, (oh, ow, ph, pw) = r
    dxp = np.zeros(xp.shape, dtype=g.dtype)
    taken = np.zeros(out.shape, dtype=bool)  # first maximum in the window wins, as in TF
    for i in range(kh):
        for j in range(kw):
            sl = _offset_slice(i, j, oh, ow, strides, (1, 1))
            hit = (xp[sl] == out) & ~taken
            taken |= hit
            dxp[sl] += g * hit
    return _crop(dxp, shape, ph, pw)


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


@graph_form("stateful", ("x",))  # in a graph: a fresh mask every run
def dropout(x: Any, rate: float, noise_shape: Any = None, seed: int | None = None,
            rng: np.random.Generator | None = None) -> Tensor:
    """Zeroes elements with probability `rate` and scales the rest by 1 / (1 - rate).

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
    if rng is None:
        rng = np.random.default_rng(seed) if seed is not None else random.get_global_generator()
    shape = x.shape if noise_shape is None else tuple(noise_shape)
    keep = (rng.random(shape, dtype=np.float32) >= rate).astype(x.dtype)
    keep *= 1.0 / (1.0 - rate)
    return ops.multiply(x, Tensor._wrap(keep))


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
