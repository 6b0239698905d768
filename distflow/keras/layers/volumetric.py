"""Layers over 3-D volumes (NDHWC): pooling, global pooling, padding, cropping,
upsampling and spatial dropout, as Keras's *3D layers.

Windowed pooling is separable: the 2-D pool over (height, width) of every depth
slice, then a pool along depth; both max and average ('same' averages count
only real inputs, as TF) come out exactly as a 3-D window would give them.
"""

from __future__ import annotations

from typing import Any

from distflow import nn, ops
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.convolutional import (
    check_data_format,
    normalize_tuple,
)
from distflow.keras.layers.core import Dropout
from distflow.keras.layers.pooling import _GlobalPooling, _Pooling
from distflow.tensor import Tensor

__all__ = ["MaxPooling3D", "AveragePooling3D", "GlobalAveragePooling3D", "GlobalMaxPooling3D",
           "UpSampling3D", "ZeroPadding3D", "Cropping3D", "SpatialDropout3D", "MaxPool3D",
           "AvgPool3D", "GlobalAvgPool3D", "GlobalMaxPool3D"]


class _Pooling3D(_Pooling):
    rank = 3

    def call(self, inputs: Tensor) -> Tensor:
        n, depth, height, width, channels = inputs.shape
        (pd, ph, pw), (sd, sh, sw) = self.pool_size, self.strides
        planes = self._op(ops.reshape(inputs, (n * depth, height, width, channels)),
                          (ph, pw), (sh, sw), self.padding)
        _, h2, w2, _ = planes.shape
        columns = ops.reshape(planes, (n, depth, h2 * w2, channels))
        out = self._op(columns, (pd, 1), (sd, 1), self.padding)
        return ops.reshape(out, (n, out.shape[1], h2, w2, channels))


class MaxPooling3D(_Pooling3D):
    """Maximum over `pool_size` windows of NDHWC volumes (strides default to the pool size)."""

    _op = staticmethod(nn.max_pool2d)


class AveragePooling3D(_Pooling3D):
    """Average over `pool_size` windows ('same' padding averages the real inputs only)."""

    _op = staticmethod(nn.avg_pool2d)


class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over depth, height and width: (batch, d, h, w, c) -> (batch, c)."""

    rank = 3


class GlobalMaxPooling3D(_GlobalPooling):
    """Maximum over depth, height and width: (batch, d, h, w, c) -> (batch, c)."""

    rank = 3
    _reduce = staticmethod(ops.max)


def _triple_pairs(value: Any, name: str) -> tuple[tuple[int, int], ...]:
    """int -> 3 x (p, p); 3 ints -> (a, a), (b, b), (c, c); 3 pairs as given."""
    if isinstance(value, int):
        value = (value,) * 3
    value = tuple(value)
    if len(value) == 3 and all(isinstance(v, int) for v in value):
        value = tuple((v, v) for v in value)
    try:
        pairs = tuple((int(a), int(b)) for a, b in value)
    except (TypeError, ValueError):
        pairs = ()
    if len(pairs) != 3 or min(min(p) for p in pairs) < 0:
        raise ValueError(f"`{name}` must be an int, a tuple of 3 ints or a tuple of 3 tuples "
                         f"of 2 non-negative ints. Received: {name}={value!r}")
    return pairs


class ZeroPadding3D(Layer):
    """Pads the depth, height and width of NDHWC volumes with zeros."""

    def __init__(self, padding: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.padding = _triple_pairs(padding, "padding")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=5)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.pad(inputs, [[0, 0], *map(list, self.padding), [0, 0]])

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, *spatial, c = tuple(input_shape)
        return (b, *(None if n is None else n + sum(p) for n, p in zip(spatial, self.padding)),
                c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": [list(p) for p in self.padding],
                "data_format": self.data_format}


class Cropping3D(Layer):
    """Removes slices at the borders of NDHWC volumes along depth, height and width."""

    def __init__(self, cropping: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.cropping = _triple_pairs(cropping, "cropping")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=5)

    def call(self, inputs: Tensor) -> Tensor:
        sizes = inputs.shape[1:4]
        if any(a + b >= n for (a, b), n in zip(self.cropping, sizes)):
            raise ValueError(f'Layer "{self.name}": cropping {self.cropping} leaves nothing of '
                             f"inputs of shape {inputs.shape}.")
        index = tuple(slice(a, n - b) for (a, b), n in zip(self.cropping, sizes))
        return ops.getitem(inputs, (slice(None), *index, slice(None)))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, *spatial, c = tuple(input_shape)
        return (b, *(None if n is None else n - sum(p) for n, p in zip(spatial, self.cropping)),
                c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping],
                "data_format": self.data_format}


class UpSampling3D(Layer):
    """Repeats slices, rows and columns `size` times (nearest-neighbour upsampling)."""

    def __init__(self, size: Any = (2, 2, 2), data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, 3, "size")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=5)

    def call(self, inputs: Tensor) -> Tensor:
        b, d, h, w, c = inputs.shape
        sd, sh, sw = self.size
        grid = ops.reshape(inputs, (b, d, 1, h, 1, w, 1, c))
        grid = ops.tile(grid, (1, 1, sd, 1, sh, 1, sw, 1))
        return ops.reshape(grid, (b, d * sd, h * sh, w * sw, c))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, *spatial, c = tuple(input_shape)
        return (b, *(None if n is None else n * s for n, s in zip(spatial, self.size)), c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": list(self.size),
                "data_format": self.data_format}


class SpatialDropout3D(Dropout):
    """Drops whole feature volumes of NDHWC inputs (one mask per example and channel)."""

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=5)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        self.noise_shape = (None, 1, 1, 1, None)
        return super().call(inputs, training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("noise_shape")
        return {**config, "data_format": self.data_format}


MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D
GlobalAvgPool3D, GlobalMaxPool3D = GlobalAveragePooling3D, GlobalMaxPooling3D
