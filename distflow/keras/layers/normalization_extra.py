"""GroupNormalization, UnitNormalization, RMSNormalization and AlphaDropout, as Keras 3's.

All are composed from differentiable core ops in Keras's own order of
operations (e.g. GroupNormalization's `x * inv + (beta - mean * inv)`), so
values agree with Keras to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops, random
from distflow.keras import initializers, regularizers
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.core import Dropout, serialize_or_none
from distflow.tensor import Tensor

__all__ = ["GroupNormalization", "UnitNormalization", "RMSNormalization", "AlphaDropout"]


def _axes(axis: Any, ndim: int) -> list[int]:
    axes = [axis] if isinstance(axis, int) else list(axis)
    return sorted(a % ndim for a in axes)


class GroupNormalization(Layer):
    """Normalizes groups of channels: mean and variance over each group and the other axes.

    Under 'mixed_float16' it computes in float32 and returns float16, as Keras.

    Args:
        groups: number of groups (-1: one per channel); must divide the channels.
        axis: the channel axis.
        epsilon: added to the variance.
        center, scale: learn `beta` / `gamma` of shape (channels,).
        beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer: for those
            weights (`beta_constraint` / `gamma_constraint` go with the base arguments).
        **kwargs: base `Layer` arguments.
    """

    _autocast_variables = False

    def __init__(self, groups: int = 32, axis: int = -1, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(groups, int) or (groups <= 0 and groups != -1):
            raise ValueError("Received an invalid value for argument `groups`, expected a "
                             f"positive integer value or -1. Received: groups={groups}")
        self.groups, self.axis, self.epsilon = groups, axis, epsilon
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def build(self, input_shape: Any) -> None:
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(f"Axis {self.axis} of input tensor should have a defined dimension "
                             f"but the layer received an input with shape {input_shape}.")
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"Number of groups ({self.groups}) cannot be more than the number "
                             f"of channels ({dim}).")
        if dim % self.groups:
            raise ValueError(f"Number of groups ({self.groups}) must be a multiple of the number "
                             f"of channels ({dim}).")
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: dim})
        self.gamma = self.add_weight("gamma", (dim,), self.gamma_initializer,
                                     self.gamma_regularizer) if self.scale else None
        self.beta = self.add_weight("beta", (dim,), self.beta_initializer,
                                    self.beta_regularizer) if self.center else None

    def call(self, inputs: Tensor) -> Tensor:
        ndim = inputs.ndim
        axis = self.axis % ndim
        group_shape = list(inputs.shape)
        group_shape[axis] //= self.groups
        group_shape.insert(axis, self.groups)
        grouped = ops.reshape(inputs, group_shape)
        reduce = tuple(a for a in range(1, ndim + 1) if a != axis)
        mean = ops.mean(grouped, axis=reduce, keepdims=True)
        variance = ops.mean(ops.square(ops.subtract(grouped, mean)), axis=reduce, keepdims=True)
        inv = ops.rsqrt(ops.add(variance, self.epsilon))
        broadcast = [1] * (ndim + 1)
        broadcast[axis], broadcast[axis + 1] = self.groups, group_shape[axis + 1]
        if self.gamma is not None:
            inv = ops.multiply(inv, ops.reshape(self.gamma, broadcast))
        res = ops.multiply(ops.negative(mean), inv)
        if self.beta is not None:
            res = ops.add(res, ops.reshape(self.beta, broadcast))
        return ops.reshape(ops.add(ops.multiply(grouped, inv), res), inputs.shape)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": serialize_or_none(regularizers, self.beta_regularizer),
                "gamma_regularizer": serialize_or_none(regularizers, self.gamma_regularizer)}


class UnitNormalization(Layer):
    """Scales each input to unit L2 norm along `axis`: x * min(rsqrt(sum(x^2)), 1e12)."""

    def __init__(self, axis: Any = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = list(axis) if isinstance(axis, list | tuple) else axis

    def call(self, inputs: Tensor) -> Tensor:
        axes = tuple(_axes(self.axis, inputs.ndim))
        square_sum = ops.sum(ops.square(inputs), axis=axes, keepdims=True)
        return ops.multiply(inputs, ops.minimum(ops.rsqrt(square_sum), 1.0 / 1e-12))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class RMSNormalization(Layer):
    """x * rsqrt(mean(x^2) + epsilon) * scale along `axis`, with a learned `scale`."""

    def __init__(self, axis: Any = -1, epsilon: float = 1e-6, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis, self.epsilon = axis, epsilon

    def build(self, input_shape: Any) -> None:
        self._axes = _axes(self.axis, len(input_shape))
        self.scale = self.add_weight("scale", tuple(input_shape[a] for a in self._axes), "ones")

    def call(self, inputs: Tensor) -> Tensor:
        axes = tuple(self._axes)
        mean_square = ops.mean(ops.square(inputs), axis=axes, keepdims=True)
        shape = [inputs.shape[a] if a in axes else 1 for a in range(inputs.ndim)]
        normalized = ops.multiply(inputs, ops.rsqrt(ops.add(mean_square, self.epsilon)))
        return ops.multiply(normalized, ops.reshape(self.scale, shape))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


class AlphaDropout(Dropout):
    """Dropout for SELU networks: dropped units take SELU's negative saturation value and
    an affine correction keeps the mean and variance (training only)."""

    _ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate <= 0:
            return inputs
        shape = tuple(inputs.shape if self.noise_shape is None else
                      (s if n is None else n for n, s in zip(self.noise_shape, inputs.shape)))
        rng = self._rng if self._rng is not None else random.get_global_generator()
        kept = (rng.random(shape) >= self.rate).astype(inputs.dtype)
        a = ((1 - self.rate) * (1 + self.rate * self._ALPHA_P ** 2)) ** -0.5
        b = -a * self._ALPHA_P * self.rate
        dropped = Tensor._wrap(((1 - kept) * self._ALPHA_P).astype(inputs.dtype))
        x = ops.add(ops.multiply(inputs, Tensor._wrap(kept)), dropped)
        return ops.add(ops.multiply(x, np.float32(a)), np.float32(b))
