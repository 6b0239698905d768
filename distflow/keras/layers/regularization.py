"""Noise layers active only in training (SpatialDropout1D/2D, GaussianNoise, GaussianDropout)
and ActivityRegularization."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import ops, random
from distflow.keras import regularizers
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.core import Dropout
from distflow.tensor import Tensor

__all__ = ["SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
           "ActivityRegularization"]


class SpatialDropout1D(Dropout):
    """Drops whole channels of (batch, steps, channels) inputs (one mask per example)."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(rate, seed=seed, **kwargs)
        self.input_spec = InputSpec(ndim=3)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        self.noise_shape = (None, 1, None)
        return super().call(inputs, training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("noise_shape")
        return config


class SpatialDropout2D(SpatialDropout1D):
    """Drops whole feature maps of NHWC inputs (one mask per example and channel)."""

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any):
        from distflow.keras.layers.convolutional import check_data_format

        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        self.noise_shape = (None, 1, 1, None)
        return Dropout.call(self, inputs, training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class _Noise(Layer):
    def __init__(self, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(int(seed))
        self.supports_masking = True

    def _normal(self, shape: tuple, stddev: float, dtype: Any) -> Tensor:
        rng = self._rng if self._rng is not None else random.get_global_generator()
        return Tensor._wrap((rng.standard_normal(shape) * stddev).astype(dtype))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)


class GaussianNoise(_Noise):
    """Adds N(0, stddev**2) noise in training; the identity at inference."""

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any):
        super().__init__(seed, **kwargs)
        if stddev < 0:
            raise ValueError(f"`stddev` must be >= 0. Received: stddev={stddev}")
        self.stddev = float(stddev)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.stddev == 0:
            return inputs
        return ops.add(inputs, self._normal(inputs.shape, self.stddev, inputs.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiplies by N(1, rate / (1 - rate)) noise in training; the identity at inference."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(seed, **kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
        self.rate = float(rate)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = ops.add(self._normal(inputs.shape, stddev, inputs.dtype), 1.0)
        return ops.multiply(inputs, noise)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class ActivityRegularization(Layer):
    """The identity, adding `l1 * sum|x| + l2 * sum x**2` (divided by the batch size) to
    the layer's `losses`, as tf.keras does."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = float(l1), float(l2)
        self.supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}
