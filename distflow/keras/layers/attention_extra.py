"""Attention (Luong-style dot or concat scores) and AdditiveAttention (Bahdanau), as Keras 3's.

`layer([query, value])` or `layer([query, value, key])`; masks `[query_mask,
value_mask]`, `use_causal_mask` and `return_attention_scores` behave as in
Keras: masked scores lose 1e9 before the softmax, masked query rows output 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras.layers.attention import MultiHeadAttention
from distflow.keras.layers.base import Layer
from distflow.keras.layers.core import positive_int
from distflow.tensor import Tensor

__all__ = ["Attention", "AdditiveAttention", "GroupQueryAttention"]


class Attention(Layer):
    """Dot-product attention: softmax(query . key^T [* scale]) . value.

    Args:
        use_scale: learn a scalar `scale` multiplying the scores.
        score_mode: "dot" or "concat" (sum(tanh(query + key)) scaled by a learned weight).
        dropout: dropout rate on the attention weights (training only).
        seed: optional int seed of that dropout.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError("Invalid value for argument score_mode. Expected one of "
                             f"{{'dot', 'concat'}}. Received: score_mode={score_mode}")
        self.use_scale, self.score_mode, self.dropout, self.seed = (
            bool(use_scale), score_mode, float(dropout), seed)
        self._rng = None if seed is None else np.random.default_rng(int(seed))
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        self._check_inputs_list(input_shape)
        self.scale = self.add_weight("scale", (), "ones") if self.use_scale else None
        self.concat_score_weight = (self.add_weight("concat_score_weight", (), "ones")
                                    if self.score_mode == "concat" else None)

    def _check_inputs_list(self, inputs: Any) -> None:
        if not isinstance(inputs, list | tuple) or len(inputs) not in (2, 3):
            raise ValueError(f"{type(self).__name__} layer must be called on a list of inputs, "
                             "namely [query, value] or [query, value, key]. Received: "
                             f"inputs={inputs!r}.")

    def _scores(self, query: Tensor, key: Tensor) -> Tensor:
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.swapaxes(key, -2, -1))
            return scores if self.scale is None else ops.multiply(scores, self.scale)
        pairs = ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3))
        if self.scale is not None:
            pairs = ops.multiply(self.scale, pairs)
        return ops.multiply(self.concat_score_weight, ops.sum(ops.tanh(pairs), axis=-1))

    def _score_mask(self, scores: Tensor, v_mask: Any, causal: bool) -> np.ndarray | None:
        mask = None if v_mask is None else np.asarray(getattr(v_mask, "value", v_mask),
                                                      bool)[..., None, :]
        if causal:
            tq, tv = scores.shape[-2:]
            lower = np.tril(np.ones((1, tq, tv), bool))
            mask = lower if mask is None else mask & lower
        return mask

    def call(self, inputs: Any, mask: Any = None, training: bool = False,
             return_attention_scores: bool = False, use_causal_mask: bool = False) -> Any:
        self._check_inputs_list(inputs)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        q_mask, v_mask = (mask[0], mask[1]) if mask else (None, None)
        scores = self._scores(query, key)
        score_mask = self._score_mask(scores, v_mask, use_causal_mask)
        if score_mask is not None:
            big = 65504.0 if scores.dtype == np.float16 else 1.0e9
            scores = ops.where(~score_mask, ops.subtract(scores, big), scores)
        weights = ops.softmax(scores, axis=-1)
        if training and self.dropout > 0:
            weights = nn.dropout(weights, self.dropout, rng=self._rng)
        output = ops.matmul(weights, value)
        if q_mask is not None:
            keep = np.asarray(getattr(q_mask, "value", q_mask), bool)[..., None]
            output = ops.where(keep, output, ops.zeros_like(output))
        return (output, weights) if return_attention_scores else output

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None if not mask or mask[0] is None else mask[0]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        query, value = tuple(input_shape[0]), tuple(input_shape[1])
        return (*query[:-1], value[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive attention: scores = sum(scale * tanh(query + key)) with a learned (dim,) scale.

    Args:
        use_scale: learn the (dim,) `scale` vector (else 1).
        dropout: dropout rate on the attention weights (training only).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs: Any):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape: Any) -> None:
        self._check_inputs_list(input_shape)
        dim = tuple(input_shape[-1])[-1]
        self.scale = self.add_weight("scale", (dim,), "glorot_uniform") if self.use_scale \
            else None
        self.concat_score_weight = None

    def _scores(self, query: Tensor, key: Tensor) -> Tensor:
        pairs = ops.tanh(ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3)))
        if self.scale is not None:
            pairs = ops.multiply(self.scale, pairs)
        return ops.sum(pairs, axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {k: v for k, v in config.items() if k != "score_mode"}


class GroupQueryAttention(MultiHeadAttention):
    """Grouped-query attention: `num_query_heads` query heads share `num_key_value_heads`
    key/value heads (each key/value head serves `num_query_heads / num_key_value_heads`
    consecutive query heads).

    Weights, as Keras's: `query` (dim, query heads, head_dim), `key`, optional `gate`
    (a sigmoid gate on the heads' outputs), `value` (dim, key/value heads, head_dim),
    `attention_output` (query heads, head_dim, dim); each with a bias if `use_bias`.

    Args:
        head_dim: the size of every head.
        num_query_heads: the number of query heads.
        num_key_value_heads: the number of key and value heads (divides num_query_heads).
        dropout: dropout rate on the attention probabilities (training only).
        use_bias: whether the projections have biases.
        sliding_window: None, or attend only to keys less than this many steps away.
        flash_attention: accepted for compatibility (the attention is always computed
            exactly, in one pass).
        use_gate: gate each head's output with sigmoid(query @ gate kernel + bias).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer, seed:
            as MultiHeadAttention's.
        **kwargs: base `Layer` arguments (`kernel_constraint`, `bias_constraint` included).
    """

    def __init__(self, head_dim: int, num_query_heads: int, num_key_value_heads: int,
                 dropout: float = 0.0, use_bias: bool = True, sliding_window: int | None = None,
                 flash_attention: Any = None, use_gate: bool = False, **kwargs: Any):
        super().__init__(num_query_heads, head_dim, dropout=dropout, use_bias=use_bias,
                         **kwargs)
        self.num_key_value_heads = positive_int(num_key_value_heads, "num_key_value_heads")
        if self.num_heads % self.num_key_value_heads:
            raise ValueError("`num_query_heads` must be divisible by `num_key_value_heads`. "
                             f"Received: num_query_heads={num_query_heads}, "
                             f"num_key_value_heads={num_key_value_heads}")
        if sliding_window is not None and (isinstance(sliding_window, bool) or not isinstance(
                sliding_window, int) or sliding_window <= 0):
            raise ValueError("`sliding_window` must be `None` or a positive integer. "
                             f"Received: sliding_window={sliding_window}")
        self.sliding_window, self.use_gate = sliding_window, bool(use_gate)

    @property
    def head_dim(self) -> int:
        """The size of every head."""
        return self.key_dim

    @property
    def num_query_heads(self) -> int:
        """The number of query heads."""
        return self.num_heads

    def build(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> None:
        value_shape = tuple(value_shape or query_shape)
        key_shape = tuple(key_shape or value_shape)
        dim, groups, size = query_shape[-1], self.num_key_value_heads, self.key_dim
        self.query_kernel, self.query_bias = self._projection("query",
                                                              (dim, self.num_heads, size))
        self.key_kernel, self.key_bias = self._projection("key", (key_shape[-1], groups, size))
        if self.use_gate:
            self.gate_kernel, self.gate_bias = self._projection("gate",
                                                                (dim, self.num_heads, size))
        self.value_kernel, self.value_bias = self._projection("value",
                                                              (value_shape[-1], groups, size))
        self.output_kernel = self._weight("attention_output/kernel", (self.num_heads, size, dim),
                                          kernel=True)
        self.output_bias = (self._weight("attention_output/bias", (dim,), kernel=False)
                            if self.use_bias else None)

    def call(self, query: Tensor, value: Tensor, key: Tensor | None = None,
             attention_mask: Any = None, return_attention_scores: bool = False,
             training: bool = False, use_causal_mask: bool = False) -> Any:
        value = ops.convert_to_tensor(value, self.compute_dtype)
        key = value if key is None else ops.convert_to_tensor(key, self.compute_dtype)
        repeats = self.num_heads // self.num_key_value_heads
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._shared_heads(self._project(key, self.key_kernel, self.key_bias), repeats)
        v = self._shared_heads(self._project(value, self.value_kernel, self.value_bias), repeats)
        mask = self._window(self._attention_mask(query, value, attention_mask, use_causal_mask),
                            query.shape[:2], value.shape[1])
        heads, probs = self._attend(q, k, v, mask, return_attention_scores, training)
        if self.use_gate:
            gate = ops.sigmoid(self._project(query, self.gate_kernel, self.gate_bias))
            heads = ops.multiply(heads, ops.transpose(gate, (0, 2, 1, 3)))
        out = self._output(heads)
        return (out, probs) if return_attention_scores else out

    @staticmethod
    def _shared_heads(x: Tensor, repeats: int) -> Tensor:
        """(batch, groups, steps, size) -> (batch, groups * repeats, steps, size), each group
        repeated for its consecutive query heads."""
        if repeats == 1:
            return x
        batch, groups, steps, size = x.shape
        tiled = ops.tile(ops.expand_dims(x, 2), (1, 1, repeats, 1, 1))
        return ops.reshape(tiled, (batch, groups * repeats, steps, size))

    def _window(self, mask: np.ndarray | None, query_shape: tuple, tv: int) -> Any:
        if self.sliding_window is None:
            return mask
        batch, tq = query_shape
        distance = np.abs(np.arange(tq)[:, None] - np.arange(tv)[None, :])
        band = np.broadcast_to(distance < self.sliding_window, (batch, tq, tv))
        return band if mask is None else mask & band

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key in ("num_heads", "key_dim", "value_dim", "output_shape", "attention_axes"):
            config.pop(key)
        return {**config, "head_dim": self.key_dim, "num_query_heads": self.num_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "use_gate": self.use_gate, "sliding_window": self.sliding_window}
