"""Pooling layers over NHWC images and (batch, steps, channels) sequences."""

from __future__ import annotations

from typing import Any

from distflow import conv_pool, nn, ops
from distflow.keras import activations
from distflow.keras.layers.base import InputSpec, Layer, mask_of
from distflow.keras.layers.convolutional import (
    Conv2D,
    check_data_format,
    conv_output_length,
    normalize_padding,
    normalize_tuple,
)
from distflow.tensor import Tensor

__all__ = ["MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D",
           "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
           "GlobalMaxPooling1D", "MaxPool2D", "AvgPool2D", "MaxPool1D", "AvgPool1D",
           "GlobalAvgPool2D", "GlobalMaxPool2D", "GlobalAvgPool1D", "GlobalMaxPool1D"]


class _Pooling(Layer):
    """Shared code of windowed pooling; `rank` spatial axes, `_op` the df.nn pool."""

    rank = 2
    _op = staticmethod(nn.max_pool2d)

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size")
        self.strides = (self.pool_size if strides is None
                        else normalize_tuple(strides, self.rank, "strides"))
        self.padding = normalize_padding(padding)
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def call(self, inputs: Tensor) -> Tensor:
        if self.rank == 2:
            return self._op(inputs, self.pool_size, self.strides, self.padding)
        out = self._op(ops.expand_dims(inputs, 1), (1, self.pool_size[0]),
                       (1, self.strides[0]), self.padding)
        return ops.squeeze(out, 1)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        spatial = tuple(conv_output_length(size, k, self.padding, s) for size, k, s in
                        zip(input_shape[1:-1], self.pool_size, self.strides))
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format}


class MaxPooling2D(_Pooling):
    """Maximum over `pool_size` windows (strides default to the pool size)."""

    _op = staticmethod(nn.max_pool2d)


class AveragePooling2D(_Pooling):
    """Average over `pool_size` windows ('same' padding averages the real inputs only)."""

    _op = staticmethod(nn.avg_pool2d)


class MaxPooling1D(_Pooling):
    """Maximum over windows of `pool_size` steps."""

    rank = 1
    _op = staticmethod(nn.max_pool2d)


class AveragePooling1D(_Pooling):
    """Average over windows of `pool_size` steps."""

    rank = 1
    _op = staticmethod(nn.avg_pool2d)


class _GlobalPooling(Layer):
    rank = 2
    _reduce = staticmethod(ops.mean)

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def call(self, inputs: Tensor) -> Tensor:
        axes = tuple(range(1, self.rank + 1))
        return self._reduce(inputs, axis=axes, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        if self.keepdims:
            return (input_shape[0], *(1,) * self.rank, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over the spatial axes: (batch, h, w, c) -> (batch, c)."""


class GlobalMaxPooling2D(_GlobalPooling):
    """Maximum over the spatial axes: (batch, h, w, c) -> (batch, c)."""

    _reduce = staticmethod(ops.max)


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps: (batch, steps, c) -> (batch, c)."""

    rank = 1


class GlobalMaxPooling1D(_GlobalPooling):
    """Maximum over the steps: (batch, steps, c) -> (batch, c)."""

    rank = 1
    _reduce = staticmethod(ops.max)


def pools_conv_output(conv: Layer, pool: Layer) -> bool:
    """Whether `pool` applied to `conv`'s output can run with it as one
    `conv_pool.conv2d_relu_max_pool` (a ReLU Conv2D with bias and no groups, then a
    MaxPooling2D over tiling 'valid' windows, both channels-last, neither overridden)."""
    return (type(conv) is Conv2D and type(pool) is MaxPooling2D and conv.groups == 1
            and conv.use_bias and conv.activation is activations.relu
            and conv.data_format == pool.data_format == "channels_last"
            and pool.padding == "valid" and pool.strides == pool.pool_size
            and conv.activity_regularizer is None and pool.activity_regularizer is None)


def conv_then_pool(conv: Conv2D, pool: MaxPooling2D, inputs: Any) -> Tensor | None:
    """pool(conv(inputs)) as one op for a pair `pools_conv_output` accepts, or None when
    this call must go through the two layers (not built yet, symbolic or masked inputs,
    or a dtype the layer would cast)."""
    if not (isinstance(inputs, Tensor) and conv.built and pool.built) or \
            mask_of(inputs) is not None:
        return None
    inputs = conv._convert_one(inputs)
    if not conv._fusable(inputs):
        return None
    conv._check_inputs(inputs)
    return conv_pool.conv2d_relu_max_pool(inputs, conv.kernel, conv.bias, conv.strides,
                                          conv.padding, conv.dilation_rate, pool.pool_size)


MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D = (MaxPooling2D, AveragePooling2D, MaxPooling1D,
                                              AveragePooling1D)
GlobalAvgPool2D, GlobalMaxPool2D = GlobalAveragePooling2D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalMaxPool1D = GlobalAveragePooling1D, GlobalMaxPooling1D
