"""Preprocessing layers: RandomFlip (training-time augmentation) and CategoryEncoding."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops, random
from distflow.keras.layers.base import Layer
from distflow.keras.layers.core import positive_int
from distflow.tensor import Tensor

__all__ = ["RandomFlip", "CategoryEncoding"]

_FLIP_MODES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}


class RandomFlip(Layer):
    """Flips each NHWC image left-right and/or up-down with probability 1/2, in training only.

    Args:
        mode: 'horizontal', 'vertical' or 'horizontal_and_vertical' (each axis decided
            independently).
        seed: optional int seed (the layer then has its own generator).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if mode not in _FLIP_MODES:
            raise ValueError(f"RandomFlip layer {self.name} received an unknown mode "
                             f"argument {mode!r}; use one of {sorted(_FLIP_MODES)}.")
        self.mode, self.seed = mode, seed
        self._rng = None if seed is None else np.random.default_rng(int(seed))

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training:
            return inputs
        rng = self._rng if self._rng is not None else random.get_global_generator()
        out = inputs
        for axis in _FLIP_MODES[self.mode]:
            flip = rng.random(inputs.shape[0]) < 0.5
            index = [slice(None)] * inputs.ndim
            index[axis] = slice(None, None, -1)
            cond = flip.reshape((-1,) + (1,) * (inputs.ndim - 1))
            out = ops.where(cond, ops.getitem(out, tuple(index)), out)
        return out

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode, "seed": self.seed}


class CategoryEncoding(Layer):
    """Integer ids in [0, num_tokens) to one-hot, multi-hot or count vectors.

    Args:
        num_tokens: number of categories.
        output_mode: 'one_hot' (ids of shape (batch,) or (batch, 1)), 'multi_hot' or
            'count' (ids of shape (batch, k)).
        **kwargs: base `Layer` arguments.
    """

    _autocast_inputs = False

    def __init__(self, num_tokens: int, output_mode: str = "multi_hot", **kwargs: Any):
        kwargs.pop("sparse", None)
        super().__init__(**kwargs)
        self.num_tokens = positive_int(num_tokens, "num_tokens")
        if output_mode not in ("one_hot", "multi_hot", "count"):
            raise ValueError("`output_mode` must be 'one_hot', 'multi_hot' or 'count'. "
                             f"Received: output_mode={output_mode!r}")
        self.output_mode = output_mode

    def call(self, inputs: Tensor) -> Tensor:
        ids = np.asarray(inputs.value)
        if ids.dtype.kind == "f" and np.any(np.mod(ids, 1) != 0):
            raise ValueError(f'Layer "{self.name}" expects integer ids. Received dtype '
                             f"{ids.dtype} with fractional values.")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_tokens):
            raise ValueError(f'Layer "{self.name}": ids must be in [0, {self.num_tokens}) '
                             f"(num_tokens). Received values in [{ids.min()}, {ids.max()}].")
        if self.output_mode == "one_hot" and ids.ndim == 2 and ids.shape[1] == 1:
            ids = ids[:, 0]
        if ids.ndim == 1:
            ids = ids[:, None]
        counts = np.zeros((ids.shape[0], self.num_tokens), dtype=self.dtype)
        np.add.at(counts, (np.arange(ids.shape[0])[:, None], ids), 1)
        if self.output_mode != "count":
            counts = np.minimum(counts, 1)
        return Tensor._wrap(counts)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (tuple(input_shape)[0], self.num_tokens)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_tokens": self.num_tokens,
                "output_mode": self.output_mode}
