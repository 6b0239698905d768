"""Attention (Luong-style dot or concat scores) and AdditiveAttention (Bahdanau), as Keras 3's.

`layer([query, value])` or `layer([query, value, key])`; masks `[query_mask,
value_mask]`, `use_causal_mask` and `return_attention_scores` behave as in
Keras: masked scores lose 1e9 before the softmax, masked query rows output 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras.layers.base import Layer
from distflow.tensor import Tensor

__all__ = ["Attention", "AdditiveAttention"]


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
