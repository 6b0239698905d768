"""Adaptive pooling (output size fixed, windows adapted to the input), as Keras 3's.

Output cell i along an axis of length L pools the inputs
[floor(i * L / n), ceil((i + 1) * L / n)), one axis after the other (max and
average are both separable over box windows), built from differentiable
slices and reductions.
"""

from __future__ import annotations

import math
from typing import Any

from distflow import ops
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.convolutional import check_data_format, normalize_tuple
from distflow.tensor import Tensor

__all__ = ["AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
           "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D"]


def adaptive_pool_axis(x: Tensor, axis: int, size: int, reduce: Any) -> Tensor:
    """Pools `axis` of `x` down (or up) to `size` cells with Keras's adaptive windows."""
    length = x.shape[axis]
    cells = []
    for i in range(size):
        start = min(math.floor(i * length / size), length - 1)
        end = min(math.ceil((i + 1) * length / size), length)
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, end)
        cells.append(reduce(ops.getitem(x, tuple(index)), axis=axis, keepdims=True))
    return ops.concat(cells, axis=axis)


class _AdaptivePooling(Layer):
    rank = 2
    _reduce = staticmethod(ops.mean)

    def __init__(self, output_size: Any, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.output_size = normalize_tuple(output_size, self.rank, "output_size")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def call(self, inputs: Tensor) -> Tensor:
        for axis, size in enumerate(self.output_size, start=1):
            inputs = adaptive_pool_axis(inputs, axis, size, self._reduce)
        return inputs

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_size": list(self.output_size),
                "data_format": self.data_format}


class AdaptiveAveragePooling1D(_AdaptivePooling):
    """Average over adaptive windows: (batch, steps, c) -> (batch, output_size, c)."""

    rank = 1


class AdaptiveAveragePooling2D(_AdaptivePooling):
    """Average over adaptive windows: (batch, h, w, c) -> (batch, *output_size, c)."""


class AdaptiveAveragePooling3D(_AdaptivePooling):
    """Average over adaptive windows: (batch, d, h, w, c) -> (batch, *output_size, c)."""

    rank = 3


class AdaptiveMaxPooling1D(_AdaptivePooling):
    """Maximum over adaptive windows: (batch, steps, c) -> (batch, output_size, c)."""

    rank = 1
    _reduce = staticmethod(ops.max)


class AdaptiveMaxPooling2D(_AdaptivePooling):
    """Maximum over adaptive windows: (batch, h, w, c) -> (batch, *output_size, c)."""

    _reduce = staticmethod(ops.max)


class AdaptiveMaxPooling3D(_AdaptivePooling):
    """Maximum over adaptive windows: (batch, d, h, w, c) -> (batch, *output_size, c)."""

    rank = 3
    _reduce = staticmethod(ops.max)
