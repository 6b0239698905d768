"""Activation layers with parameters: ReLU, LeakyReLU, ELU, Softmax, PReLU."""

from __future__ import annotations

from typing import Any

from distflow import ops
from distflow.keras import activations, constraints, initializers, regularizers
from distflow.keras.layers.base import Layer
from distflow.tensor import Tensor

__all__ = ["ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU"]


class _Elementwise(Layer):
    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)


class ReLU(_Elementwise):
    """relu with optional `max_value`, `negative_slope` and `threshold` (see activations.relu)."""

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"`max_value` must be >= 0. Received: max_value={max_value}")
        if negative_slope < 0:
            raise ValueError("`negative_slope` must be >= 0. "
                             f"Received: negative_slope={negative_slope}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)

    def call(self, inputs: Tensor) -> Tensor:
        return activations.relu(inputs, self.negative_slope, self.max_value, self.threshold)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """x if x > 0 else negative_slope * x (Keras 3 default slope 0.3; `alpha=` accepted)."""

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any):
        negative_slope = kwargs.pop("alpha", negative_slope)
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, inputs: Tensor) -> Tensor:
        return activations.leaky_relu(inputs, self.negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs: Tensor) -> Tensor:
        return activations.elu(inputs, self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_Elementwise):
    """Softmax along `axis`."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs: Tensor) -> Tensor:
        return activations.softmax(inputs, axis=self.axis)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class PReLU(_Elementwise):
    """Leaky ReLU with a learned slope per element: max(x, 0) + alpha * min(x, 0).

    Args:
        alpha_initializer: initializer of the slopes (default zeros: a plain ReLU).
        alpha_regularizer: optional penalty on the slopes.
        alpha_constraint: optional constraint on the slopes (see `keras.constraints`).
        shared_axes: input axes (1-based, batch excluded) sharing one slope, e.g.
            [1, 2] for one slope per channel of NHWC images.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, alpha_initializer: Any = "zeros", alpha_regularizer: Any = None,
                 alpha_constraint: Any = None, shared_axes: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha_constraint = constraints.get(alpha_constraint)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        shared = [] if shared_axes is None else (
            [shared_axes] if isinstance(shared_axes, int) else list(shared_axes))
        self.shared_axes = [int(a) for a in shared]

    def build(self, input_shape: Any) -> None:
        shape = list(tuple(input_shape)[1:])
        for axis in self.shared_axes:
            shape[axis - 1] = 1
        if any(s is None for s in shape):
            raise ValueError(f'Layer "{self.name}": unknown input dimensions need shared_axes. '
                             f"Received: input_shape={tuple(input_shape)}")
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     self.alpha_regularizer, constraint=self.alpha_constraint)

    def call(self, inputs: Tensor) -> Tensor:
        negative = ops.minimum(inputs, 0.0)
        return ops.add(ops.relu(inputs), ops.multiply(self.alpha, negative))

    def get_config(self) -> dict[str, Any]:
        reg = self.alpha_regularizer
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": None if reg is None else regularizers.serialize(reg),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes or None}
