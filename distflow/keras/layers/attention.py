"""Multi-head scaled dot-product attention, as `keras.layers.MultiHeadAttention`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras import initializers, regularizers
from distflow.keras.layers.base import Layer, mask_of
from distflow.keras.layers.core import bias_add, positive_int, serialize_or_none
from distflow.tensor import Tensor

__all__ = ["MultiHeadAttention"]

_LARGE_NEGATIVE = -1e9  # added to masked scores before the softmax, as Keras does


def _shape(x: Any) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


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
        attention_axes: only None (attention over the sequence axis) is supported.
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
        if attention_axes is not None:
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
        value = ops.convert_to_tensor(value, self.dtype)
        key = value if key is None else ops.convert_to_tensor(key, self.dtype)
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key, self.key_kernel, self.key_bias)
        v = self._project(value, self.value_kernel, self.value_bias)
        scores = ops.matmul(ops.multiply(q, 1.0 / math.sqrt(self.key_dim)), k,
                            transpose_b=True)  # (batch, heads, Tq, Tv)
        mask = self._attention_mask(query, value, attention_mask, use_causal_mask)
        if mask is not None:
            scores = ops.where(mask[:, None], scores, _LARGE_NEGATIVE)
        probs = ops.softmax(scores, axis=-1)
        if training and self.dropout:
            probs = nn.dropout(probs, self.dropout, rng=self._rng)
        heads = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))  # (batch, Tq, heads, V)
        batch, steps = heads.shape[:2]
        flat = ops.reshape(heads, (batch * steps, -1))
        kernel = self.output_kernel
        out = ops.matmul(flat, ops.reshape(kernel, (-1, kernel.shape[-1])))
        out = ops.reshape(out, (batch, steps, kernel.shape[-1]))
        if self.output_bias is not None:
            out = bias_add(out, self.output_bias)
        return (out, probs) if return_attention_scores else out

    def _attention_mask(self, query: Tensor, value: Tensor, attention_mask: Any,
                        causal: bool) -> np.ndarray | None:
        """Boolean (batch, Tq, Tv): explicit mask AND padding masks AND the causal mask."""
        batch, tq, tv = query.shape[0], query.shape[1], value.shape[1]
        mask = np.ones((batch, tq, tv), dtype=bool)
        used = False
        if attention_mask is not None:
            mask &= np.asarray(ops.convert_to_tensor(attention_mask).value, dtype=bool)
            used = True
        for padding, axis in ((mask_of(query), 2), (mask_of(value), 1)):
            if padding is not None:
                mask &= np.expand_dims(np.asarray(padding.value, dtype=bool), axis)
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
