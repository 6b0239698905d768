"""`tf.nn` ops computed over extracted windows (`conv_ops.extract_patches_nd`): 3-D
convolution and pooling, morphological dilation and erosion, max pooling with its
argmax, and sparse embedding lookups. Gathers, sums and maxima of the core ops, so
the tape differentiates them (the argmax indices excepted).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.array_ops import reverse
from distflow.conv_ops import extract_patches_nd
from distflow.nn_more import embedding_lookup
from distflow.segment_ops import unsorted_segment_sum
from distflow.sparse import SparseTensor
from distflow.tensor import Tensor


def _spatial(value: Any, n: int, name: str) -> tuple[int, ...]:
    """An int, `n` ints, or `n + 2` ints (batch and channel 1) as `n` ints."""
    vals = [int(v) for v in np.atleast_1d(value)]
    if len(vals) == 1:
        vals *= n
    elif len(vals) == n + 2:
        vals = vals[1:-1]
    if len(vals) != n or min(vals) < 1:
        raise ValueError(f"`{name}` must be a positive int or a list of {n} or {n + 2} ints. "
                         f"Received: {name}={value!r}")
    return tuple(vals)


def _windows(x: Tensor, ksize: tuple, strides: Any, rates: Any, padding: str,
             pad_value: float) -> Tensor:
    """`[batch, *out, *ksize, channels]` windows of a channels-last input."""
    n = len(ksize)
    patches = extract_patches_nd(x, ksize, _spatial(strides, n, "strides"),
                                 _spatial(1 if rates is None else rates, n, "dilations"),
                                 padding, pad_value)
    return ops.reshape(patches, list(patches.shape[:1 + n]) + list(ksize) + [int(x.shape[-1])])


def _window_axes(n: int) -> list[int]:
    return list(range(1 + n, 1 + 2 * n))


# ------------------------------------------------------------ 3-D


def conv3d(input: Any, filters: Any, strides: Any, padding: str,  # noqa: A002
           data_format: str = "NDHWC", dilations: Any = None, name: str | None = None) -> Tensor:
    """3-D convolution of `[batch, depth, height, width, in]` with `[kd, kh, kw, in, out]`."""
    x, w = ops._pair(input, filters)
    _channels_last(data_format, x, 5)
    kd, kh, kw, cin, cout = (int(d) for d in w.shape)
    patches = extract_patches_nd(x, (kd, kh, kw), _spatial(strides, 3, "strides"),
                                 _spatial(1 if dilations is None else dilations, 3, "dilations"),
                                 padding)
    return ops.matmul(patches, ops.reshape(w, [kd * kh * kw * cin, cout]))


def max_pool3d(input: Any, ksize: Any, strides: Any, padding: str,  # noqa: A002
               data_format: str = "NDHWC", name: str | None = None) -> Tensor:
    """Max pooling over `[batch, depth, height, width, channels]` windows."""
    x = ops.convert_to_tensor(input)
    _channels_last(data_format, x, 5)
    windows = _windows(x, _spatial(ksize, 3, "ksize"), strides, None, padding, -np.inf)
    return ops.reduce_max(windows, axis=_window_axes(3))


def avg_pool3d(input: Any, ksize: Any, strides: Any, padding: str,  # noqa: A002
               data_format: str = "NDHWC", name: str | None = None) -> Tensor:
    """Average pooling over 3-D windows (SAME padding averages the real inputs only)."""
    x = ops.convert_to_tensor(input)
    _channels_last(data_format, x, 5)
    k = _spatial(ksize, 3, "ksize")
    total = ops.reduce_sum(_windows(x, k, strides, None, padding, 0.0), axis=_window_axes(3))
    ones = ops.ones_like(x[..., :1])
    count = ops.reduce_sum(_windows(ones, k, strides, None, padding, 0.0), axis=_window_axes(3))
    return total / count


def _channels_last(data_format: str, x: Tensor, rank: int) -> None:
    if data_format not in ("NDHWC", "NHWC"):
        raise ValueError(f"Only channels-last data is supported. Received: {data_format!r}")
    if x.ndim != rank:
        raise ValueError(f"Expected a rank-{rank} input. Received: shape={tuple(x.shape)}")


# ------------------------------------------------------------ morphology


def dilation2d(input: Any, filters: Any, strides: Any, padding: str,  # noqa: A002
               data_format: str = "NHWC", dilations: Any = None,
               name: str | None = None) -> Tensor:
    """Grayscale dilation: the max over each window of input + `filters` (`[fh, fw, C]`)."""
    x, w = ops._pair(input, filters)
    _channels_last(data_format, x, 4)
    windows = _windows(x, tuple(int(d) for d in w.shape[:2]), strides, dilations, padding,
                       -np.inf)
    return ops.reduce_max(windows + w, axis=[3, 4])


def erosion2d(value: Any, filters: Any, strides: Any, padding: str,
              data_format: str = "NHWC", dilations: Any = None,
              name: str | None = None) -> Tensor:
    """Grayscale erosion: minus the dilation of -value by the spatially reversed filters."""
    return -dilation2d(-ops.convert_to_tensor(value), reverse(filters, [0, 1]), strides,
                       padding, data_format, dilations)


def max_pool_with_argmax(input: Any, ksize: Any, strides: Any, padding: str,  # noqa: A002
                         data_format: str = "NHWC", output_dtype: Any = np.int64,
                         include_batch_in_index: bool = False,
                         name: str | None = None) -> tuple[Tensor, Tensor]:
    """Max pooling and, per output, the flat index of the maximum in the input:
    `(y * width + x) * channels + c` (plus `batch * height * width * channels` when
    `include_batch_in_index`); ties go to the first window position."""
    x = ops.convert_to_tensor(input)
    _channels_last(data_format, x, 4)
    k = _spatial(ksize, 2, "ksize")
    b, h, w, c = (int(d) for d in x.shape)
    windows = _windows(x, k, strides, None, padding, -np.inf).numpy()
    flat = np.arange(b * h * w * c, dtype=np.float64).reshape(b, h, w, c)
    if not include_batch_in_index:
        flat -= (np.arange(b) * h * w * c)[:, None, None, None]
    where = _windows(ops.constant(flat), k, strides, None, padding, -1.0).numpy()
    oh, ow = windows.shape[1:3]
    pos = windows.reshape(b, oh, ow, -1, c).argmax(axis=3)[:, :, :, None, :]
    index = np.take_along_axis(where.reshape(b, oh, ow, -1, c), pos, axis=3)[:, :, :, 0, :]
    dtype = np.dtype(getattr(output_dtype, "as_numpy_dtype", output_dtype))
    return nn.max_pool2d(x, list(k), strides, padding), ops.constant(index.astype(dtype))


# ------------------------------------------------------------ sparse embeddings


def _combine(rows: Tensor, weights: Tensor, segments: np.ndarray, n: int,
             combiner: str) -> Tensor:
    if combiner not in ("sum", "mean", "sqrtn"):
        raise ValueError(f"combiner must be 'sum', 'mean' or 'sqrtn'. Received: {combiner!r}")
    shape = [-1] + [1] * (rows.ndim - 1)
    total = unsorted_segment_sum(rows * ops.reshape(weights, shape), segments, n)
    if combiner == "sum":
        return total
    scale = weights if combiner == "mean" else ops.square(weights)
    norm = unsorted_segment_sum(scale, segments, n)
    norm = norm if combiner == "mean" else ops.sqrt(norm)
    safe = ops.where(norm > 0, norm, ops.ones_like(norm))
    return total / ops.reshape(safe, shape)


def embedding_lookup_sparse(params: Any, sp_ids: SparseTensor, sp_weights: Any,
                            combiner: str = "mean", max_norm: float | None = None,
                            name: str | None = None,
                            allow_fast_lookup: bool = False) -> Tensor:
    """Per row of `sp_ids`, the `combiner` ('sum', 'mean', 'sqrtn') of the embeddings of
    its ids weighted by `sp_weights` (1 when None); rows after the last non-empty one are
    not in the result, as TF."""
    ids = sp_ids.values
    weights = ops.ones_like(ops.cast(ids, np.float32)) if sp_weights is None else \
        sp_weights.values
    rows = embedding_lookup(params, ids, max_norm=max_norm)
    segments = sp_ids.indices.numpy()[:, 0]
    n = int(segments.max()) + 1 if len(segments) else 0
    return _combine(rows, ops.cast(weights, rows.dtype), segments, n, combiner)


def safe_embedding_lookup_sparse(embedding_weights: Any, sparse_ids: SparseTensor,
                                 sparse_weights: Any = None, combiner: str = "mean",
                                 default_id: int | None = None, name: str | None = None,
                                 partition_strategy: str = "div",
                                 max_norm: float | None = None,
                                 allow_fast_lookup: bool = False) -> Tensor:
    """`embedding_lookup_sparse` that drops negative ids (and non-positive weights) and
    gives every row of `sparse_ids`' dense shape a result: `default_id`'s embedding, or
    zeros, for rows left empty."""
    ids = sparse_ids.values.numpy()
    keep = ids >= 0
    if sparse_weights is not None:
        keep &= sparse_weights.values.numpy() > 0
    kept = np.flatnonzero(keep)
    shape = [int(d) for d in sparse_ids.dense_shape.numpy()]
    n = int(np.prod(shape[:-1]))
    segments = np.ravel_multi_index(sparse_ids.indices.numpy()[kept, :-1].T, shape[:-1]) if \
        len(shape) > 1 else np.zeros(len(kept), int)
    rows = embedding_lookup(embedding_weights, ids[kept], max_norm=max_norm)
    weights = ops.ones_like(ops.cast(ids[kept], np.float32)) if sparse_weights is None else \
        ops.gather(sparse_weights.values, kept)
    out = _combine(rows, ops.cast(weights, rows.dtype), segments, n, combiner)
    if default_id is not None:
        empty = np.bincount(segments, minlength=n) == 0
        fill = embedding_lookup(embedding_weights, np.full(n, default_id), max_norm=max_norm)
        out = ops.where(empty[:, None], fill, out)
    return ops.reshape(out, shape[:-1] + [int(out.shape[-1])])
