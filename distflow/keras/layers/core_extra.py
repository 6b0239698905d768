"""ReversibleEmbedding and the Wrapper base class, as Keras 3's."""

from __future__ import annotations

from typing import Any

from distflow import ops
from distflow.keras.layers.base import Layer
from distflow.keras.layers.core import Embedding
from distflow.tensor import Tensor

__all__ = ["ReversibleEmbedding", "Wrapper"]


class ReversibleEmbedding(Embedding):
    """An Embedding that also maps vectors back to logits over the vocabulary.

    `layer(ids)` embeds; `layer(vectors, reverse=True)` returns
    `vectors @ embeddings^T` (or `@ reverse_embeddings` when `tie_weights=False`),
    optionally soft-capped: `tanh(logits / cap) * cap`.

    Args:
        input_dim, output_dim, embeddings_initializer, embeddings_regularizer, mask_zero:
            as `Embedding`.
        tie_weights: reuse the embeddings for the reverse projection.
        reverse_dtype: dtype of the reverse projection (None: the layer's).
        logit_soft_cap: soft cap of the reverse logits (None: none).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, input_dim: int, output_dim: int, tie_weights: bool = True,
                 embeddings_initializer: Any = "uniform", embeddings_regularizer: Any = None,
                 mask_zero: bool = False, reverse_dtype: Any = None,
                 logit_soft_cap: float | None = None, **kwargs: Any):
        super().__init__(input_dim, output_dim, embeddings_initializer, embeddings_regularizer,
                         mask_zero, **kwargs)
        self.tie_weights, self.reverse_dtype = bool(tie_weights), reverse_dtype
        self.logit_soft_cap = logit_soft_cap

    def build(self, input_shape: Any = None) -> None:
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                "reverse_embeddings", (self.output_dim, self.input_dim),
                self.embeddings_initializer)

    def call(self, inputs: Tensor, reverse: bool = False) -> Tensor:
        self._reversed = reverse  # reverse calls produce logits: no padding mask
        if not reverse:
            return super().call(inputs)
        kernel = (ops.transpose(self.embeddings) if self.tie_weights
                  else self.reverse_embeddings)
        if self.reverse_dtype is not None:
            inputs, kernel = ops.cast(inputs, self.reverse_dtype), ops.cast(kernel,
                                                                            self.reverse_dtype)
        logits = ops.matmul(inputs, kernel)
        if self.logit_soft_cap is not None:
            cap = self.logit_soft_cap
            logits = ops.multiply(ops.tanh(ops.divide(logits, cap)), cap)
        return logits

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if self.__dict__.get("_reversed"):
            return None
        return super().compute_mask(inputs, mask)

    def compute_output_shape(self, input_shape: Any, reverse: bool = False) -> tuple:
        if reverse:
            return (*tuple(input_shape)[:-1], self.input_dim)
        return super().compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "tie_weights": self.tie_weights,
                "reverse_dtype": self.reverse_dtype, "logit_soft_cap": self.logit_soft_cap}


class Wrapper(Layer):
    """Base class of layers that wrap another layer (as TimeDistributed and Bidirectional).

    Subclasses implement `call`; `build` builds the wrapped layer, and the config holds it.

    Args:
        layer: the wrapped `Layer`.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, layer: Layer, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError(f"Layer {layer} supplied to Wrapper isn't a supported layer type. "
                             "Please ensure wrapped layer is a valid Keras layer.")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape: Any = None) -> None:
        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True

    def get_config(self) -> dict[str, Any]:
        from distflow.keras.layers import serialize
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Wrapper:
        from distflow.keras.layers import deserialize
        config = dict(config)
        layer = deserialize(config.pop("layer"), custom_objects)
        return cls(layer, **config)
