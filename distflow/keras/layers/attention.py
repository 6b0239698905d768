"""Multi-head scaled dot-product attention, as `keras.layers.MultiHeadAttention`."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from distflow import intra_op, nn, ops, workspace
from distflow.keras import initializers, regularizers
from distflow.keras.layers.base import Layer, mask_of
from distflow.keras.layers.core import bias_add, positive_int, serialize_or_none
from distflow.ops import Primitive
from distflow.tensor import Tensor, as_array

__all__ = ["MultiHeadAttention"]

_LARGE_NEGATIVE = -1e9  # added to masked scores before the softmax, as Keras does


def _shape(x: Any) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _row_sum(a: np.ndarray) -> np.ndarray:
    """Sum over the last axis, kept: a matrix-vector product (NumPy's reduction over a
    short last axis is several times slower)."""
    return (a @ np.ones(a.shape[-1], a.dtype))[..., None]


def _row_max(a: np.ndarray) -> np.ndarray:
    """Maximum over the last axis, kept: halving passes of np.maximum (faster than
    NumPy's reduction over a short last axis)."""
    while a.shape[-1] > 1:
        half = a.shape[-1] // 2
        top = np.maximum(a[..., :half], a[..., half:2 * half])
        if a.shape[-1] % 2:
            top[..., :1] = np.maximum(top[..., :1], a[..., -1:])
        a = top
    return a


_EXP_SAFE = 60.0  # |scores| below this: exp neither overflows nor underflows in float32


def _softmax_scores(q, k, scale, mask, out=None) -> np.ndarray:
    """softmax(scale * q k^T, masked) over (batch, heads, steps, size) stacks, computed
    in place on the scores (scale None: already in q; `out` the scores' buffer, else a
    new one). Stable: the row maximum is subtracted unless every score is so small in
    magnitude that exp is exact without the shift (two whole-array reductions instead
    of the row-wise maximum)."""
    p = np.matmul(q, k.swapaxes(-1, -2), out=out)
    if scale is not None:
        p *= scale
    if mask is not None:
        np.copyto(p, _LARGE_NEGATIVE, where=~mask[:, None])
    if mask is not None or p.dtype.itemsize < 4 or not (
            -_EXP_SAFE < p.min() and p.max() < _EXP_SAFE):
        p -= _row_max(p)
    np.exp(p, out=p)
    p /= _row_sum(p)
    return p


def _scores_grad(g, out, p, v, scale, mask, buffer=None) -> np.ndarray:
    """d loss / d (q k^T) (including the scale) from the upstream gradient g of
    out = p v: (g v^T - rowsum(g * out)) * p, where rowsum(g v^T * p) = rowsum(g * out)
    is taken over the value axis (shorter than the key axis); into `buffer` if given."""
    ds = np.matmul(g, v.swapaxes(-1, -2), out=buffer)  # d loss / d p
    ds -= _row_sum(g * out)
    ds *= p
    if scale is not None:
        ds *= scale
    if mask is not None:  # masked scores are constants (a fully masked row too)
        np.copyto(ds, 0, where=~mask[:, None])
    return ds


def _attention_forward(q, k, v, scale, mask):
    """softmax(scale * q k^T, masked) v over (batch, heads, steps, size) stacks."""
    p = _softmax_scores(q, k, scale, mask)
    out = p @ v
    return out, {"q": q, "k": k, "v": v, "p": p, "out": out, "scale": scale, "mask": mask,
                 "for": None, "ds": None}


def _score_grad(g, r) -> np.ndarray:
    """d loss / d (q k^T) including the scale, once per upstream gradient."""
    if r["for"] is not g:
        r["for"], r["ds"] = g, _scores_grad(g, r["out"], r["p"], r["v"], r["scale"],
                                            r["mask"])
    return r["ds"]


def _split_heads_forward(x, kernel, bias):
    """(batch, steps, dim) @ (dim, heads, size) + bias -> (batch, heads, steps, size) view."""
    batch, steps, dim = x.shape
    _, heads, size = kernel.shape
    rows = x.reshape(-1, dim)
    out = rows @ kernel.reshape(dim, -1)
    out += bias.reshape(-1)
    return out.reshape(batch, steps, heads, size).transpose(0, 2, 1, 3), [
        rows, kernel, x.shape, None]


def _head_rows(g: np.ndarray, r: list) -> np.ndarray:
    """(batch, heads, steps, size) -> (batch * steps, heads * size) rows, once per g."""
    if r[3] is None or r[3][0] is not g:
        batch, heads, steps, size = g.shape
        r[3] = (g, g.transpose(0, 2, 1, 3).reshape(batch * steps, heads * size))
    return r[3][1]


_split_heads = Primitive("keras_split_heads", _split_heads_forward, (
    lambda g, r: (_head_rows(g, r) @ r[1].reshape(r[2][2], -1).T).reshape(r[2]),
    lambda g, r: (r[0].T @ _head_rows(g, r)).reshape(r[1].shape),
    lambda g, r: (np.ones(r[0].shape[0], g.dtype) @ _head_rows(g, r)).reshape(
        r[1].shape[1:])))


# One op for the attention core: the scores, softmax and weighted sum share their
# buffers, and the backward forms the score gradient once for q and k.
_attention = Primitive("keras_attention", _attention_forward, (
    lambda g, r: _score_grad(g, r) @ r["k"],
    lambda g, r: _score_grad(g, r).swapaxes(-1, -2) @ r["q"],
    lambda g, r: r["p"].swapaxes(-1, -2) @ g))


# Self-attention (query, key and value one tensor) as one op, output projection and
# bias included: the three head projections are one GEMM into (batch * steps, q | k | v)
# rows whose column blocks, viewed as (batch, heads, steps, size), feed the attention
# core without copies; the softmax scale is folded into the query columns, the
# weighted sum is written straight into (batch, steps, heads, value_dim) rows for the
# output projection, and the backward writes dq, dk, dv into one buffer of the
# projection's layout. With several intra-op threads every step of it runs as one
# batch piece per thread (BLAS at one thread in each: the samples are independent),
# the weight gradients as per-piece partial products summed in piece order; BLAS's
# own threads are never woken, so none spins on the cores the pieces need.


def _self_attention_forward(x, wq, bq, wk, bk, wv, bv, wo, bo, scale, mask):
    """x (batch, steps, dim) -> (batch, steps, out); kernels (dim, heads, size), biases
    (heads, size), the output kernel (heads, value_dim, out) and bias (out,)."""
    batch, steps, dim = x.shape
    heads, key_dim, value_dim = wq.shape[1], wq.shape[2], wv.shape[2]
    cols = np.ones(heads * (2 * key_dim + value_dim), wq.dtype)
    cols[:heads * key_dim] = scale
    kernel = np.concatenate([w.reshape(dim, -1) for w in (wq, wk, wv)], axis=1) * cols
    bias = np.concatenate([bq.ravel(), bk.ravel(), bv.ravel()]) * cols
    r = {"rows": x.reshape(-1, dim), "kernel": kernel, "cols": cols, "mask": mask,
         "wo": wo.reshape(-1, wo.shape[-1]), "bo": bo, "shape": (batch, heads, key_dim, value_dim),
         "for": None, "grads": None}
    dtype = np.result_type(x, kernel)
    r["qkv"] = workspace.reusable((batch * steps, kernel.shape[1]), dtype)
    r["p"] = workspace.reusable((batch, heads, steps, steps), dtype)
    r["heads"] = workspace.reusable((batch * steps, heads * value_dim), dtype)
    y = workspace.reusable((batch * steps, r["wo"].shape[1]), np.result_type(dtype, wo, bo))
    parts = _pieces(batch)
    intra_op.parallel_for(len(parts), lambda i: _self_attention_samples(r, bias, y, *parts[i]))
    return y.reshape(batch, steps, -1), r


def _pieces(batch: int) -> list[tuple[int, int]]:
    """The op's batch pieces: one per intra-op thread, or the whole batch while BLAS's
    own threads may still spin from an earlier product (a Dense layer's): the pieces
    would share a core with them, and the whole batch's large products run on them."""
    return [(0, batch)] if intra_op.blas_spinning() else intra_op.split(
        batch, intra_op.threads())


def _self_attention_samples(r: dict, bias: np.ndarray, y: np.ndarray, lo: int,
                            hi: int) -> None:
    """The forward of samples lo:hi: their projections, attention and output rows."""
    rows = _sample_rows(r, lo, hi)
    np.matmul(r["rows"][rows], r["kernel"], out=r["qkv"][rows])
    r["qkv"][rows] += bias
    q, k, v = _qkv_heads(r, r["qkv"], lo, hi)
    mask = r["mask"]
    p = _softmax_scores(q, k, None, None if mask is None else mask[lo:hi],
                        out=r["p"][lo:hi])
    np.matmul(p, v, out=_heads_view(r, lo, hi))
    np.matmul(r["heads"][rows], r["wo"], out=y[rows])
    y[rows] += r["bo"]


def _sample_rows(r: dict, lo: int, hi: int) -> slice:
    """The (batch * steps) rows of samples lo:hi."""
    steps = r["p"].shape[2]
    return slice(lo * steps, hi * steps)


def _heads_view(r: dict, lo: int, hi: int) -> np.ndarray:
    """The weighted sums of samples lo:hi as a (samples, heads, steps, value_dim) view
    of their (batch * steps, heads * value_dim) rows."""
    batch, heads, _, value_dim = r["shape"]
    rows = r["heads"][_sample_rows(r, lo, hi)]
    return rows.reshape(hi - lo, -1, heads, value_dim).transpose(0, 2, 1, 3)


def _qkv_heads(r: dict, qkv: np.ndarray, lo: int, hi: int) -> list:
    """The q, k, v column blocks of samples lo:hi's rows of a (batch * steps, width)
    array as (samples, heads, steps, size) views."""
    _, heads, key_dim, value_dim = r["shape"]
    edges = (0, heads * key_dim, 2 * heads * key_dim, qkv.shape[1])
    rows = qkv[_sample_rows(r, lo, hi)]
    return [rows[:, a:b].reshape(hi - lo, -1, heads, size).transpose(0, 2, 1, 3)
            for a, b, size in zip(edges, edges[1:], (key_dim, key_dim, value_dim))]


def _self_attention_backward(g, r) -> dict:
    """dq, dk, dv into one buffer, the weight and bias gradients, once per g."""
    if r["for"] is g:
        return r["grads"]
    batch, heads, key_dim, value_dim = r["shape"]
    dqkv = workspace.reusable(r["qkv"].shape, r["qkv"].dtype)
    parts = _pieces(batch)
    sums = [None] * len(parts)

    def piece(i: int) -> None:
        sums[i] = _self_attention_samples_grad(g.reshape(-1, r["wo"].shape[1]), r, dqkv,
                                               *parts[i])
    intra_op.parallel_for(len(parts), piece)
    dw, db, dwo, dbo = (functools.reduce(np.add, terms) for terms in zip(*sums))
    dw *= r["cols"]
    db *= r["cols"]
    edges = np.cumsum([0, heads * key_dim, heads * key_dim, heads * value_dim])
    grads = {"dqkv": dqkv, 7: dwo.reshape(heads, value_dim, -1), 8: dbo}
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        grads[2 * i + 1] = dw[:, a:b].reshape(r["rows"].shape[1], heads, -1)
        grads[2 * i + 2] = db[a:b].reshape(heads, -1)
    r["for"], r["grads"] = g, grads
    return grads


def _self_attention_samples_grad(g, r: dict, dqkv: np.ndarray, lo: int, hi: int) -> tuple:
    """dq, dk, dv of samples lo:hi into their rows of dqkv; returns their terms of the
    projection kernel's (unscaled), its bias's, the output kernel's and its bias's
    gradients."""
    rows = _sample_rows(r, lo, hi)
    p, mask = r["p"][lo:hi], r["mask"]
    q, k, v = _qkv_heads(r, r["qkv"], lo, hi)
    dq, dk, dv = _qkv_heads(r, dqkv, lo, hi)
    dheads = workspace.scratch("attention_dheads", r["heads"][rows].shape, g.dtype)
    np.matmul(g[rows], r["wo"].T, out=dheads)
    _, heads, _, value_dim = r["shape"]
    gh = dheads.reshape(hi - lo, -1, heads, value_dim).transpose(0, 2, 1, 3)
    np.matmul(p.swapaxes(-1, -2), gh, out=dv)
    ds = _scores_grad(gh, _heads_view(r, lo, hi), p, v, None,
                      None if mask is None else mask[lo:hi],
                      buffer=workspace.scratch("attention_ds", p.shape, p.dtype))
    np.matmul(ds, k, out=dq)
    np.matmul(ds.swapaxes(-1, -2), q, out=dk)
    return (r["rows"][rows].T @ dqkv[rows], ops.channel_sum(dqkv[rows]),
            r["heads"][rows].T @ g[rows], ops.channel_sum(g[rows]))


def _self_attention_input_grad(g, r) -> np.ndarray:
    """x's gradient, only when x needs one (a model's input does not): one product, by
    row ranges unless BLAS's threads may be spinning (`_pieces`)."""
    dqkv = _self_attention_backward(g, r)["dqkv"]
    product = intra_op.matmul if intra_op.blas_spinning() else intra_op.rows_matmul
    return product(dqkv, r["kernel"].T).reshape(*g.shape[:2], -1)


_self_attention = Primitive("keras_self_attention", _self_attention_forward, (
    _self_attention_input_grad,
    *((lambda g, r, i=i: _self_attention_backward(g, r)[i]) for i in range(1, 9))))


class MultiHeadAttention(Layer):
    """Attention of `query` (batch, Tq, dim) over `value` (batch, Tv, dim) with `num_heads` heads.

    Each head projects query and key to `key_dim` and value to `value_dim`,
    computes softmax(q k^T / sqrt(key_dim)) v, and the heads are projected back
    to `output_shape` (default: the query's last dimension). Weights are named as
    in Keras: `<name>/query/kernel` (dim, heads, key_dim), `<name>/query/bias`,
    then key, value and `<name>/attention_output/kernel` (heads, value_dim, out).

    Args:
        num_heads: number of heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (default key_dim).
        dropout: dropout rate on the attention probabilities (training only).
        use_bias: whether the projections have biases.
        output_shape: last dimension of the output (default: the query's).
        attention_axes: None, or `(1,)` (the same: axis 1 of rank-3 inputs, which Keras
            3 records in saved configs); other axes are not supported.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer.
        seed: seed of the dropout masks.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 dropout: float = 0.0, use_bias: bool = True, output_shape: Any = None,
                 attention_axes: Any = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 bias_regularizer: Any = None, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if attention_axes is not None and list(np.atleast_1d(attention_axes)) != [1]:
            raise NotImplementedError("MultiHeadAttention supports attention_axes=None "
                                      "(attention over axis 1 of rank-3 inputs) only.")
        self.num_heads = positive_int(num_heads, "num_heads")
        self.key_dim = positive_int(key_dim, "key_dim")
        self.value_dim = positive_int(value_dim if value_dim is not None else key_dim,
                                      "value_dim")
        if not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.dropout, self.use_bias, self.seed = float(dropout), bool(use_bias), seed
        self.output_shape_arg = output_shape
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._rng = None if seed is None else np.random.default_rng(int(seed))
        self.supports_masking = True

    def __call__(self, query: Any, value: Any = None, key: Any = None, **kwargs: Any) -> Any:
        if value is None:
            raise ValueError(f'Layer "{self.name}" needs `value`: call it as '
                             "layer(query, value) (self-attention: layer(x, x)).")
        if not self.built:
            self.build(_shape(query), _shape(value), None if key is None else _shape(key))
        return super().__call__(query, value, key, **kwargs)

    def build(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> None:
        value_shape = tuple(value_shape or query_shape)
        key_shape = tuple(key_shape or value_shape)
        for shape in (tuple(query_shape), value_shape, key_shape):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(f'Layer "{self.name}" expects rank-3 inputs (batch, steps, '
                                 f"features) with known features. Received shape {shape}")
        heads, out_dim = self.num_heads, self._output_dim(query_shape)
        self.query_kernel, self.query_bias = self._projection(
            "query", (query_shape[-1], heads, self.key_dim))
        self.key_kernel, self.key_bias = self._projection(
            "key", (key_shape[-1], heads, self.key_dim))
        self.value_kernel, self.value_bias = self._projection(
            "value", (value_shape[-1], heads, self.value_dim))
        self.output_kernel = self._weight("attention_output/kernel",
                                          (heads, self.value_dim, out_dim), kernel=True)
        self.output_bias = (self._weight("attention_output/bias", (out_dim,), kernel=False)
                            if self.use_bias else None)

    def _keras_weight_groups(self) -> dict[str, list]:
        """Where Keras 3's weights file keeps these weights: in its sublayers' groups."""
        pairs = {"query_dense": (self.query_kernel, self.query_bias),
                 "key_dense": (self.key_kernel, self.key_bias),
                 "value_dense": (self.value_kernel, self.value_bias),
                 "output_dense": (self.output_kernel, self.output_bias)}
        groups = {key: [v for v in pair if v is not None] for key, pair in pairs.items()}
        return {**groups, "_dropout_layer": [], "_softmax": []}

    def _output_dim(self, query_shape: Any) -> int:
        if self.output_shape_arg is None:
            return int(query_shape[-1])
        dims = np.atleast_1d(self.output_shape_arg)
        if dims.size != 1:
            raise ValueError("`output_shape` must be an int (or a 1-tuple). "
                             f"Received: output_shape={self.output_shape_arg!r}")
        return int(dims[0])

    def _weight(self, name: str, shape: tuple, kernel: bool) -> Any:
        return self.add_weight(
            name, shape, self.kernel_initializer if kernel else self.bias_initializer,
            self.kernel_regularizer if kernel else self.bias_regularizer)

    def _projection(self, name: str, shape: tuple) -> tuple[Any, Any]:
        kernel = self._weight(f"{name}/kernel", shape, kernel=True)
        bias = self._weight(f"{name}/bias", shape[1:], kernel=False) if self.use_bias else None
        return kernel, bias

    def _project(self, x: Tensor, kernel: Any, bias: Any) -> Tensor:
        """(batch, steps, dim) -> (batch, heads, steps, head_dim)."""
        if bias is not None and x.dtype == kernel.dtype == bias.dtype:
            return _split_heads(x, kernel, bias)  # one op: GEMM, bias, head split
        batch, steps, dim = x.shape
        _, heads, size = kernel.shape
        out = ops.matmul(ops.reshape(x, (-1, dim)), ops.reshape(kernel, (dim, heads * size)))
        out = ops.reshape(out, (batch, steps, heads, size))
        if bias is not None:
            out = ops.add(out, bias)
        return ops.transpose(out, (0, 2, 1, 3))

    def call(self, query: Tensor, value: Tensor, key: Tensor | None = None,
             attention_mask: Any = None, return_attention_scores: bool = False,
             training: bool = False, use_causal_mask: bool = False) -> Any:
        core = not return_attention_scores and not (training and self.dropout)
        if core and self._fused_self_attention(query, value, key):
            mask = self._attention_mask(query, query, attention_mask, use_causal_mask)
            return _self_attention(query, self.query_kernel, self.query_bias, self.key_kernel,
                                   self.key_bias, self.value_kernel, self.value_bias,
                                   self.output_kernel, self.output_bias,
                                   scale=query.dtype.type(1.0 / math.sqrt(self.key_dim)),
                                   mask=mask)
        value = ops.convert_to_tensor(value, self.compute_dtype)
        key = value if key is None else ops.convert_to_tensor(key, self.compute_dtype)
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key, self.key_kernel, self.key_bias)
        v = self._project(value, self.value_kernel, self.value_bias)
        mask = self._attention_mask(query, value, attention_mask, use_causal_mask)
        heads, probs = self._attend(q, k, v, mask, return_attention_scores, training)
        out = self._output(heads)
        return (out, probs) if return_attention_scores else out

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: np.ndarray | None,
                with_scores: bool, training: bool) -> tuple[Tensor, Tensor | None]:
        """softmax(q k^T / sqrt(key_dim)) v per head: ((batch, Tq, heads, V), the scores
        (batch, heads, Tq, Tv) when asked for or needed, else None)."""
        if not with_scores and not (training and self.dropout) and (
                q.dtype == k.dtype == v.dtype):
            heads = _attention(q, k, v, scale=q.dtype.type(1.0 / math.sqrt(self.key_dim)),
                               mask=mask)
            return ops.transpose(heads, (0, 2, 1, 3)), None
        scores = ops.matmul(ops.multiply(q, 1.0 / math.sqrt(self.key_dim)), k,
                            transpose_b=True)  # (batch, heads, Tq, Tv)
        if mask is not None:
            scores = ops.where(mask[:, None], scores, _LARGE_NEGATIVE)
        probs = ops.softmax(scores, axis=-1)
        dropped = nn.dropout(probs, self.dropout, rng=self._rng) if (
            training and self.dropout) else probs
        return ops.transpose(ops.matmul(dropped, v), (0, 2, 1, 3)), probs

    def _fused_self_attention(self, query: Any, value: Any, key: Any) -> bool:
        """Self-attention with biases (the output's too) and one dtype: the one-op path."""
        return (query is value and (key is None or key is value) and self.use_bias and
                isinstance(query, Tensor) and query.dtype == self.query_kernel.dtype ==
                self.value_kernel.dtype == self.output_kernel.dtype ==
                self.output_bias.dtype)

    def _output(self, heads: Tensor) -> Tensor:
        """(batch, Tq, heads, value_dim) or (batch, Tq, heads * value_dim) -> the output
        projection (batch, Tq, out)."""
        batch, steps = heads.shape[:2]
        flat = ops.reshape(heads, (batch * steps, -1))
        kernel = self.output_kernel
        out = ops.matmul(flat, ops.reshape(kernel, (-1, kernel.shape[-1])))
        out = ops.reshape(out, (batch, steps, kernel.shape[-1]))
        if self.output_bias is not None:
            out = bias_add(out, self.output_bias)
        return out

    def _attention_mask(self, query: Tensor, value: Tensor, attention_mask: Any,
                        causal: bool) -> np.ndarray | None:
        """Boolean (batch, Tq, Tv): explicit mask AND padding masks AND the causal mask."""
        batch, tq, tv = query.shape[0], query.shape[1], value.shape[1]
        mask = np.ones((batch, tq, tv), dtype=bool)
        used = False
        if attention_mask is not None:
            mask &= np.asarray(as_array(attention_mask), dtype=bool)  # no graph form: eager
            used = True
        for padding, axis in ((mask_of(query), 2), (mask_of(value), 1)):
            if padding is not None:
                mask &= np.expand_dims(np.asarray(as_array(padding), dtype=bool), axis)
                used = True
        if causal:
            mask &= np.tril(np.ones((tq, tv), dtype=bool))
            used = True
        return mask if used else None

    def compute_output_shape(self, query_shape: Any, value_shape: Any = None,
                             key_shape: Any = None) -> tuple:
        query_shape = tuple(query_shape)
        return (*query_shape[:-1], self._output_dim(query_shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout,
                "use_bias": self.use_bias, "output_shape": self.output_shape_arg,
                "attention_axes": None,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": serialize_or_none(regularizers, self.kernel_regularizer),
                "bias_regularizer": serialize_or_none(regularizers, self.bias_regularizer),
                "seed": self.seed}
