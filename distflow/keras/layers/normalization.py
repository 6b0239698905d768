"""BatchNormalization and LayerNormalization."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras import initializers, regularizers
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.core import serialize_or_none
from distflow.tensor import Tensor

__all__ = ["BatchNormalization", "LayerNormalization"]


def _axes(axis: Any) -> list[int]:
    values = [axis] if isinstance(axis, int | np.integer) else list(axis)
    if not values or not all(isinstance(a, int | np.integer) for a in values):
        raise TypeError(f"`axis` must be an int or a list of ints. Received: axis={axis!r}")
    return [int(a) for a in values]


def _resolve_axes(axes: list[int], rank: int, layer: str) -> list[int]:
    resolved = sorted({a % rank if -rank <= a < rank else a for a in axes})
    if any(a < 0 or a >= rank for a in resolved):
        raise ValueError(f'Layer "{layer}": invalid axis {axes} for inputs of rank {rank}.')
    return resolved


class _Normalization(Layer):
    """Shared parameters (gamma, beta) and config of both normalizations."""

    def __init__(self, axis: Any, epsilon: float, center: bool, scale: bool,
                 beta_initializer: Any, gamma_initializer: Any, beta_regularizer: Any,
                 gamma_regularizer: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = _axes(axis)
        if epsilon <= 0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon}")
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.supports_masking = True

    def _build_params(self, input_shape: Any) -> None:
        rank = len(input_shape)
        self._axes = _resolve_axes(self.axis, rank, self.name)
        sizes = [input_shape[a] for a in self._axes]
        if any(s is None for s in sizes):
            raise ValueError(f'Layer "{self.name}": axis {self.axis} of the input must have a '
                             f"known size. Received: input_shape={tuple(input_shape)}")
        # Parameters broadcast against the input: size on the normalised axes, 1 elsewhere.
        self._broadcast = tuple(input_shape[i] if i in self._axes else 1 for i in range(rank))
        shape = tuple(sizes)
        self.gamma = (self.add_weight("gamma", shape, self.gamma_initializer,
                                      self.gamma_regularizer) if self.scale else None)
        self.beta = (self.add_weight("beta", shape, self.beta_initializer,
                                     self.beta_regularizer) if self.center else None)
        self.input_spec = InputSpec(ndim=rank, axes={a: input_shape[a] for a in self._axes})

    def _param(self, var: Any) -> Any:
        if var is None or var.ndim == len(self._broadcast):
            return var
        return ops.reshape(var, self._broadcast)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "axis": self.axis[0] if len(self.axis) == 1 else list(self.axis),
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": serialize_or_none(regularizers, self.beta_regularizer),
                "gamma_regularizer": serialize_or_none(regularizers, self.gamma_regularizer)}


class BatchNormalization(_Normalization):
    """Normalises each feature with batch statistics in training, moving statistics otherwise.

    In training the output is `gamma * (x - mean_b) / sqrt(var_b + epsilon) + beta`
    with the batch mean and (biased) variance over every axis but `axis`, and the
    non-trainable `moving_mean` / `moving_variance` are updated in place as
    `moving = moving * momentum + batch * (1 - momentum)` (not recorded by any
    tape). At inference, and whenever the layer is frozen (`trainable=False`), the
    moving statistics are used.

    Args:
        axis: the feature axis (or axes), -1 (channels last) by default.
        momentum: moving-average momentum.
        epsilon: added to the variance.
        center: learn an offset `beta`.
        scale: learn a scale `gamma`.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: initializers.
        beta_regularizer, gamma_regularizer: optional penalties.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, axis: Any = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, **kwargs: Any):
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         beta_regularizer, gamma_regularizer, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be in [0, 1]. Received: momentum={momentum}")
        self.momentum = float(momentum)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape: Any) -> None:
        self._build_params(input_shape)
        shape = tuple(input_shape[a] for a in self._axes)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               self.moving_variance_initializer,
                                               trainable=False)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if training and self.trainable:
            reduce_axes = [i for i in range(inputs.ndim) if i not in self._axes]
            mean, variance = nn.moments(inputs, reduce_axes, keepdims=True)
            self._update_moving(mean, variance)
        else:
            mean, variance = self._param(self.moving_mean), self._param(self.moving_variance)
        return nn.batch_normalization(inputs, mean, variance, self._param(self.beta),
                                      self._param(self.gamma), self.epsilon)

    def _update_moving(self, mean: Tensor, variance: Tensor) -> None:
        shape = self.moving_mean.shape
        decay = 1.0 - self.momentum
        for var, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            # In place on the variable's array, outside any tape: not a differentiable op.
            var.assign_sub((var.value - batch.value.reshape(shape)) * decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum,
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(
                    self.moving_variance_initializer)}


class LayerNormalization(_Normalization):
    """Normalises each example over `axis` (the last by default), then scales and shifts.

    Args:
        axis: axis or axes to normalise over.
        epsilon: added to the variance.
        center: learn an offset `beta`.
        scale: learn a scale `gamma`.
        beta_initializer, gamma_initializer: initializers.
        beta_regularizer, gamma_regularizer: optional penalties.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, axis: Any = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, **kwargs: Any):
        if kwargs.pop("rms_scaling", False):
            raise NotImplementedError("LayerNormalization(rms_scaling=True) is not supported.")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         beta_regularizer, gamma_regularizer, **kwargs)

    def build(self, input_shape: Any) -> None:
        self._build_params(input_shape)

    def call(self, inputs: Tensor) -> Tensor:
        mean, variance = nn.moments(inputs, self._axes, keepdims=True)
        return nn.batch_normalization(inputs, mean, variance, self._param(self.beta),
                                      self._param(self.gamma), self.epsilon)
