"""More of `tf.nn`, composed from the core ops and `nn` (so the tape differentiates them):
activations, losses, moment helpers, depth/space rearrangements, local response
normalisation and 1-D / generic pooling. `distflow.nn` loads this module on first
use of one of its names.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.math_ops import in_top_k, log1p, softsign, top_k, zero_fraction  # noqa: F401
from distflow.shape_ops import embedding_lookup as _embedding_lookup
from distflow.tensor import Tensor

# ------------------------------------------------------------ activations


def relu6(features: Any, name: str | None = None) -> Tensor:
    """min(max(x, 0), 6)."""
    x = ops.convert_to_tensor(features)
    return ops.minimum(ops.maximum(x, ops.cast(0, x.dtype)), ops.cast(6, x.dtype))


def silu(features: Any, beta: float = 1.0) -> Tensor:
    """x * sigmoid(beta * x) (swish)."""
    x = ops.convert_to_tensor(features)
    return x * ops.sigmoid(x * ops.cast(beta, x.dtype))


swish = silu


def crelu(features: Any, name: str | None = None, axis: int = -1) -> Tensor:
    """relu(x) and relu(-x) concatenated along `axis`."""
    x = ops.convert_to_tensor(features)
    return ops.concat([ops.relu(x), ops.relu(-x)], axis)


def embedding_lookup(params: Any, ids: Any, max_norm: float | None = None,
                     name: str | None = None) -> Tensor:
    """Rows of `params` at `ids`; with `max_norm`, rows longer than it are scaled down."""
    rows = _embedding_lookup(params, ids)
    if max_norm is None:
        return rows
    norm = ops.sqrt(ops.reduce_sum(ops.square(rows), axis=-1, keepdims=True))
    return rows * ops.minimum(ops.cast(1.0, rows.dtype),
                              ops.cast(max_norm, rows.dtype) / ops.maximum(norm, 1e-30))


# ------------------------------------------------------------ losses


def l2_loss(t: Any, name: str | None = None) -> Tensor:
    """sum(t ** 2) / 2."""
    return ops.reduce_sum(ops.square(ops.convert_to_tensor(t))) * 0.5


def log_poisson_loss(targets: Any, log_input: Any, compute_full_loss: bool = False,
                     name: str | None = None) -> Tensor:
    """exp(log_input) - log_input * targets, plus Stirling's approximation of
    log(targets!) for targets > 1 when `compute_full_loss`."""
    z, c = ops._pair(targets, log_input)
    loss = ops.exp(c) - c * z
    if not compute_full_loss:
        return loss
    # TF's formula as written: the approximation is computed everywhere and masked, so
    # (as in TF) a zero target's gradient is NaN
    stirling = z * ops.log(z) - z + 0.5 * ops.log(2 * math.pi * z)
    return loss + ops.where(z > 1, stirling, ops.zeros_like(z))


def weighted_cross_entropy_with_logits(labels: Any, logits: Any, pos_weight: Any,
                                       name: str | None = None) -> Tensor:
    """Sigmoid cross-entropy with the positive term weighted by `pos_weight`."""
    z, x = ops._pair(labels, logits)
    log_weight = 1 + (ops.cast(pos_weight, x.dtype) - 1) * z
    return (1 - z) * x + log_weight * (log1p(ops.exp(-ops.abs(x))) + ops.relu(-x))


# ------------------------------------------------------------ moments


def sufficient_statistics(x: Any, axes: Any, shift: Any = None, keepdims: bool = False,
                          name: str | None = None) -> tuple[Tensor, Tensor, Tensor, Any]:
    """`(count, sum(x - shift), sum((x - shift)^2), shift)` over `axes`."""
    x = ops.convert_to_tensor(x)
    axes = [int(a) for a in np.atleast_1d(axes)]
    count = ops.cast(math.prod(int(x.shape[a]) for a in axes), x.dtype)
    shift = None if shift is None else ops.cast(shift, x.dtype)
    centred = x if shift is None else x - shift
    return (count, ops.reduce_sum(centred, axis=axes, keepdims=keepdims),
            ops.reduce_sum(ops.square(centred), axis=axes, keepdims=keepdims), shift)


def normalize_moments(counts: Any, mean_ss: Any, variance_ss: Any, shift: Any,
                      name: str | None = None) -> tuple[Tensor, Tensor]:
    """Mean and variance from `sufficient_statistics`."""
    counts = ops.convert_to_tensor(counts)
    shifted_mean = ops.convert_to_tensor(mean_ss) / counts
    variance = ops.convert_to_tensor(variance_ss) / counts - ops.square(shifted_mean)
    mean = shifted_mean if shift is None else shifted_mean + ops.cast(shift, counts.dtype)
    return mean, variance


def weighted_moments(x: Any, axes: Any, frequency_weights: Any, keepdims: bool = False,
                     name: str | None = None) -> tuple[Tensor, Tensor]:
    """Mean and variance over `axes` with each element counted `frequency_weights` times."""
    x = ops.convert_to_tensor(x)
    w = ops.cast(frequency_weights, x.dtype) + ops.zeros_like(x)
    axes = [int(a) for a in np.atleast_1d(axes)]
    total = ops.reduce_sum(w, axis=axes, keepdims=True)
    mean = ops.reduce_sum(w * x, axis=axes, keepdims=True) / total
    var = ops.reduce_sum(w * ops.square(x - mean), axis=axes, keepdims=True) / total
    if not keepdims:
        mean, var = ops.squeeze(mean, axes), ops.squeeze(var, axes)
    return mean, var


def batch_norm_with_global_normalization(t: Any, m: Any, v: Any, beta: Any, gamma: Any,
                                         variance_epsilon: float,
                                         scale_after_normalization: bool,
                                         name: str | None = None) -> Tensor:
    """`batch_normalization` with TF1's argument order; `gamma` only if scaling."""
    return nn.batch_normalization(t, m, v, beta, gamma if scale_after_normalization else None,
                                  variance_epsilon)


# ------------------------------------------------------------ rearrangements


def _blocks(x: Tensor, block_size: int, what: str) -> tuple[int, int, int, int]:
    if x.ndim != 4 or block_size < 2:
        raise ValueError(f"{what} takes a 4-D NHWC input and block_size >= 2. Received: "
                         f"shape={tuple(x.shape)}, block_size={block_size}")
    return tuple(int(d) for d in x.shape)


def depth_to_space(input: Any, block_size: int, data_format: str = "NHWC",  # noqa: A002
                   name: str | None = None) -> Tensor:
    """Moves channel blocks into `block_size x block_size` spatial tiles."""
    x = ops.convert_to_tensor(input)
    b, h, w, c = _blocks(x, block_size, "depth_to_space")
    if c % (block_size * block_size):
        raise ValueError(f"depth_to_space: {c} channels are not divisible by block_size^2 "
                         f"({block_size * block_size}).")
    out_c = c // (block_size * block_size)
    tiles = ops.reshape(x, [b, h, w, block_size, block_size, out_c])
    return ops.reshape(ops.transpose(tiles, [0, 1, 3, 2, 4, 5]),
                       [b, h * block_size, w * block_size, out_c])


def space_to_depth(input: Any, block_size: int, data_format: str = "NHWC",  # noqa: A002
                   name: str | None = None) -> Tensor:
    """Moves `block_size x block_size` spatial tiles into the channels."""
    x = ops.convert_to_tensor(input)
    b, h, w, c = _blocks(x, block_size, "space_to_depth")
    if h % block_size or w % block_size:
        raise ValueError(f"space_to_depth: height {h} and width {w} must be divisible by "
                         f"block_size {block_size}.")
    tiles = ops.reshape(x, [b, h // block_size, block_size, w // block_size, block_size, c])
    return ops.reshape(ops.transpose(tiles, [0, 1, 3, 2, 4, 5]),
                       [b, h // block_size, w // block_size, block_size * block_size * c])


def local_response_normalization(input: Any, depth_radius: int = 5,  # noqa: A002
                                 bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5,
                                 name: str | None = None) -> Tensor:
    """x / (bias + alpha * sum of x^2 over the `depth_radius` neighbouring channels)^beta."""
    x = ops.convert_to_tensor(input)
    c = int(x.shape[-1])
    sq = ops.pad(ops.square(x), [[0, 0]] * (x.ndim - 1) + [[depth_radius, depth_radius]])
    total = ops.add_n([sq[..., i:i + c] for i in range(2 * depth_radius + 1)])
    return x / ops.power(ops.cast(bias, x.dtype) + ops.cast(alpha, x.dtype) * total,
                         ops.cast(beta, x.dtype))


lrn = local_response_normalization


# ------------------------------------------------------------ pooling


def _pool1d(pool, input: Any, ksize: Any, strides: Any, padding: str,  # noqa: A002
            data_format: str) -> Tensor:
    if data_format not in ("NWC", "NHWC"):
        raise ValueError(f"Only data_format='NWC' is supported. Received: {data_format!r}")
    k, s = (int(np.atleast_1d(v)[1 if np.size(v) == 3 else 0]) for v in (ksize, strides))
    y = pool(ops.expand_dims(ops.convert_to_tensor(input), 1), [1, k], [1, s], padding)
    return ops.squeeze(y, [1])


def max_pool1d(input: Any, ksize: Any, strides: Any, padding: str,  # noqa: A002
               data_format: str = "NWC", name: str | None = None) -> Tensor:
    """Max pooling over the width of `[batch, width, channels]`."""
    return _pool1d(nn.max_pool2d, input, ksize, strides, padding, data_format)


def avg_pool1d(input: Any, ksize: Any, strides: Any, padding: str,  # noqa: A002
               data_format: str = "NWC", name: str | None = None) -> Tensor:
    """Average pooling over the width of `[batch, width, channels]`."""
    return _pool1d(nn.avg_pool2d, input, ksize, strides, padding, data_format)


def pool(input: Any, window_shape: Any, pooling_type: str, strides: Any = None,  # noqa: A002
         padding: str = "VALID", data_format: str | None = None, dilations: Any = None,
         name: str | None = None) -> Tensor:
    """`"MAX"` or `"AVG"` pooling of a rank-3 (1-D) or rank-4 (2-D) input (no dilation)."""
    if pooling_type not in ("MAX", "AVG"):
        raise ValueError(f"pooling_type must be 'MAX' or 'AVG'. Received: {pooling_type!r}")
    if dilations is not None and any(int(d) != 1 for d in np.atleast_1d(dilations)):
        raise ValueError(f"Dilated pooling is not supported. Received: dilations={dilations}")
    x = ops.convert_to_tensor(input)
    strides = [1] * len(window_shape) if strides is None else strides
    if x.ndim == 3:
        pool1 = max_pool1d if pooling_type == "MAX" else avg_pool1d
        return pool1(x, window_shape, strides, padding)
    pool2 = nn.max_pool2d if pooling_type == "MAX" else nn.avg_pool2d
    return pool2(x, list(window_shape), list(strides), padding)
