"""Convolution layers: Conv2D (NHWC inputs, HWIO kernels), Conv1D, Conv2DTranspose,
DepthwiseConv2D and SeparableConv2D."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras import activations, initializers, regularizers
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.core import bias_add, positive_int, serialize_or_none
from distflow.tensor import Tensor

__all__ = ["Conv1D", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D",
           "Convolution1D", "Convolution2D", "Convolution2DTranspose", "SeparableConvolution2D"]


def normalize_tuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of `n` positive ints -> a tuple of `n` ints (Keras's wording)."""
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} positive integers. "
                         f"Received: {name}={value!r}")
    return tuple(int(v) for v in values)


def normalize_padding(padding: Any, allowed: tuple[str, ...] = ("valid", "same")) -> str:
    """'valid' / 'same' (any case) -> lower case; anything else is a ValueError."""
    mode = str(padding).lower()
    if mode not in allowed:
        raise ValueError(f"The `padding` argument must be one of {allowed}. "
                         f"Received: padding={padding!r}")
    return mode


def check_data_format(data_format: Any) -> str:
    """Only channels_last (NHWC) is supported: say so clearly."""
    if data_format not in (None, "channels_last"):
        raise ValueError("distflow layers support data_format='channels_last' (NHWC) only. "
                         f"Received: data_format={data_format!r}; transpose the data instead.")
    return "channels_last"


def conv_output_length(size: int | None, kernel: int, padding: str, stride: int,
                       dilation: int = 1) -> int | None:
    """Output length along one spatial axis, as Keras computes it."""
    if size is None:
        return None
    span = (kernel - 1) * dilation + 1
    if padding == "same" or padding == "causal":
        return math.ceil(size / stride)
    return max((size - span) // stride + 1, 0)


class Conv2D(Layer):
    """2-D convolution over NHWC inputs with an HWIO kernel.

    Args:
        filters: number of output channels.
        kernel_size: int or (kh, kw).
        strides: int or (sh, sw).
        padding: 'valid' or 'same'.
        data_format: 'channels_last' (the only one supported) or None.
        dilation_rate: int or (dh, dw); strides and dilation cannot both exceed 1.
        groups: split the input channels into this many groups, each convolved with
            `filters / groups` filters (the kernel is (kh, kw, channels / groups, filters)).
        activation: activation name or callable.
        use_bias: whether to add a per-filter bias.
        kernel_initializer, bias_initializer: initializers.
        kernel_regularizer, bias_regularizer, activity_regularizer: optional penalties.
        **kwargs: base `Layer` arguments.
    """

    rank = 2

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1,
                 activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, **kwargs: Any):
        groups = kwargs.pop("groups", 1)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = positive_int(filters, "filters")
        self.groups = positive_int(groups, "groups")
        if self.filters % self.groups:
            raise ValueError("The number of filters must be evenly divisible by the number "
                             f"of groups. Received: groups={groups}, filters={filters}")
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = normalize_tuple(strides, self.rank, "strides")
        self.padding = normalize_padding(padding, self._paddings())
        self.data_format = check_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with "
                             f"`dilation_rate > 1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _paddings(self) -> tuple[str, ...]:
        return ("valid", "same")

    def build(self, input_shape: Any) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f'Layer "{self.name}": the channel dimension of the inputs should '
                             f"be defined. Received: input_shape={tuple(input_shape)}")
        if channels % self.groups:
            raise ValueError(f'Layer "{self.name}": the number of input channels must be '
                             f"evenly divisible by the number of groups. Received: "
                             f"groups={self.groups}, input_shape={tuple(input_shape)}")
        self.kernel = self.add_weight(
            "kernel", (*self.kernel_size, channels // self.groups, self.filters),
            self.kernel_initializer, self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer,
                                     self.bias_regularizer) if self.use_bias else None)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={-1: channels})

    def as_image(self, inputs: Tensor) -> tuple[Tensor, Tensor, dict]:
        """The NHWC input, HWIO kernel and conv2d arguments of this convolution."""
        return inputs, self.kernel, {"strides": self.strides, "padding": self.padding,
                                     "dilations": self.dilation_rate}

    def from_image(self, out: Tensor) -> Tensor:
        """The conv2d output in this layer's rank (identity for 2-D)."""
        return out

    def convolve(self, inputs: Tensor) -> Tensor:
        """The convolution without bias or activation."""
        image, kernel, args = self.as_image(inputs)
        return self.from_image(nn.conv2d(image, kernel, **args))

    def call(self, inputs: Tensor) -> Tensor:
        if self._fusable(inputs):  # conv, bias and ReLU in one op, one pass over the output
            image, kernel, args = self.as_image(inputs)
            return self.from_image(nn.fused_conv2d(
                image, kernel, self.bias,
                activation="relu" if self.activation is activations.relu else None, **args))
        out = self.convolve(inputs)
        if self.bias is not None:
            out = bias_add(out, self.bias)
        return self.activation(out)

    def _fusable(self, inputs: Tensor) -> bool:
        return (type(self).convolve is Conv2D.convolve and self.bias is not None
                and self.activation in (activations.relu, activations.linear)
                and getattr(inputs, "dtype", None) == self.kernel.dtype)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        spatial = tuple(
            conv_output_length(size, k, self.padding, s, d) for size, k, s, d in
            zip(input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate))
        return (input_shape[0], *spatial, self.filters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": serialize_or_none(regularizers, self.kernel_regularizer),
                "bias_regularizer": serialize_or_none(regularizers, self.bias_regularizer)}


class Conv1D(Conv2D):
    """1-D convolution over (batch, steps, channels) inputs; padding may be 'causal'
    (left padding only, so output t never sees inputs after t)."""

    rank = 1

    def _paddings(self) -> tuple[str, ...]:
        return ("valid", "same", "causal")

    def as_image(self, inputs: Tensor) -> tuple[Tensor, Tensor, dict]:
        """The 1-D convolution as a 2-D one over a height-1 image."""
        padding = self.padding
        if padding == "causal":
            left = (self.kernel_size[0] - 1) * self.dilation_rate[0]
            inputs = ops.pad(inputs, [[0, 0], [left, 0], [0, 0]])
            padding = "valid"
        as_image = ops.expand_dims(inputs, 1)  # (batch, 1, steps, channels)
        kernel = ops.expand_dims(self.kernel, 0)  # (1, k, in, out)
        return as_image, kernel, {"strides": (1, self.strides[0]), "padding": padding,
                                  "dilations": (1, self.dilation_rate[0])}

    def from_image(self, out: Tensor) -> Tensor:
        return ops.squeeze(out, 1)


def deconv_output_length(size: int | None, kernel: int, padding: str, stride: int,
                         dilation: int = 1) -> int | None:
    """Output length of a transposed convolution along one axis, as Keras computes it."""
    if size is None:
        return None
    span = (kernel - 1) * dilation + 1
    if padding == "same":
        return size * stride
    return size * stride + max(span - stride, 0)


class Conv2DTranspose(Conv2D):
    """Transposed 2-D convolution (the gradient of Conv2D with respect to its input).

    Upsamples NHWC inputs: with padding 'same' the output is `strides` times larger.
    The kernel has shape (kh, kw, filters, in_channels), as in Keras.

    Args:
        filters, kernel_size, strides, padding, dilation_rate, activation, use_bias,
        initializers, regularizers: as Conv2D.
        output_padding: only None is supported.
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", output_padding: Any = None, **kwargs: Any):
        if output_padding is not None:
            raise NotImplementedError("Conv2DTranspose(output_padding=...) is not supported; "
                                      "pad or crop the output instead.")
        super().__init__(filters, kernel_size, strides=strides, padding=padding, **kwargs)

    def build(self, input_shape: Any) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f'Layer "{self.name}": the channel dimension of the inputs should '
                             f"be defined. Received: input_shape={tuple(input_shape)}")
        self.kernel = self.add_weight("kernel", (*self.kernel_size, self.filters, channels),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer,
                                     self.bias_regularizer) if self.use_bias else None)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={-1: channels})

    def convolve(self, inputs: Tensor) -> Tensor:
        """Zero-insert by the strides, pad, then correlate with the flipped kernel."""
        batch, height, width, channels = inputs.shape
        (sh, sw), (dh, dw) = self.strides, self.dilation_rate
        grid = ops.reshape(inputs, (batch, height, 1, width, 1, channels))
        grid = ops.pad(grid, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]])
        spread = ops.reshape(grid, (batch, height * sh, width * sw, channels))
        spread = spread[:, :(height - 1) * sh + 1, :(width - 1) * sw + 1, :]
        pads = [self._axis_padding(n, k, s, d) for n, k, s, d in
                zip((height, width), self.kernel_size, self.strides, self.dilation_rate)]
        padded = ops.pad(spread, [[0, 0], pads[0], pads[1], [0, 0]])
        flipped = ops.transpose(self.kernel[::-1, ::-1], (0, 1, 3, 2))
        return nn.conv2d(padded, flipped, strides=1, padding="valid", dilations=(dh, dw))

    def _axis_padding(self, size: int, kernel: int, stride: int, dilation: int) -> list[int]:
        """(before, after) padding of the zero-inserted input along one axis."""
        span = (kernel - 1) * dilation + 1
        out = deconv_output_length(size, kernel, self.padding, stride, dilation)
        # The forward convolution would have padded `crop` rows before the input.
        crop = max(span - stride, 0) // 2 if self.padding == "same" else 0
        before = span - 1 - crop
        after = out + span - 1 - ((size - 1) * stride + 1) - before
        return [before, after]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        spatial = tuple(
            deconv_output_length(size, k, self.padding, s, d) for size, k, s, d in
            zip(input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate))
        return (input_shape[0], *spatial, self.filters)

    def get_config(self) -> dict[str, Any]:
        config = {k: v for k, v in super().get_config().items() if k != "groups"}
        return {**config, "output_padding": None}


def depthwise_conv2d(inputs: Tensor, depthwise_kernel: Tensor, strides: Any, padding: str,
                     dilations: Any) -> Tensor:
    """Each input channel convolved with its own (kh, kw, in, mult) filters, as one conv2d
    with a block-diagonal kernel."""
    kh, kw, channels, mult = depthwise_kernel.shape
    eye = Tensor._wrap(np.eye(channels, dtype=depthwise_kernel.dtype)[None, None, :, :, None])
    blocks = ops.multiply(ops.reshape(depthwise_kernel, (kh, kw, channels, 1, mult)),
                          eye)  # (kh, kw, in, in, mult), zero off the diagonal
    kernel = ops.reshape(blocks, (kh, kw, channels, channels * mult))
    return nn.conv2d(inputs, kernel, strides=strides, padding=padding, dilations=dilations)


class DepthwiseConv2D(Conv2D):
    """Convolves each input channel with its own `depth_multiplier` filters (no mixing).

    Output channel `c * depth_multiplier + j` is channel c convolved with
    `depthwise_kernel[:, :, c, j]`; the kernel has shape (kh, kw, in, depth_multiplier).
    Computed as one conv2d with a block-diagonal kernel, so strides, padding and
    dilation behave exactly as in Conv2D.
    """

    def __init__(self, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 depth_multiplier: int = 1, data_format: str | None = None,
                 dilation_rate: Any = 1, activation: Any = None, use_bias: bool = True,
                 depthwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, bias_regularizer: Any = None,
                 **kwargs: Any):
        super().__init__(1, kernel_size, strides, padding, data_format, dilation_rate,
                         activation, use_bias, depthwise_initializer, bias_initializer,
                         depthwise_regularizer, bias_regularizer, **kwargs)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier")

    def build(self, input_shape: Any) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f'Layer "{self.name}": the channel dimension of the inputs should '
                             f"be defined. Received: input_shape={tuple(input_shape)}")
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", (*self.kernel_size, channels, self.depth_multiplier),
            self.kernel_initializer, self.kernel_regularizer)
        out_channels = self._build_pointwise(channels * self.depth_multiplier)
        self.bias = (self.add_weight("bias", (out_channels,), self.bias_initializer,
                                     self.bias_regularizer) if self.use_bias else None)
        self.input_spec = InputSpec(ndim=4, axes={-1: channels})

    def _build_pointwise(self, depth: int) -> int:
        """Creates any weights between the depthwise kernel and the bias; returns the
        number of output channels."""
        return depth

    def depthwise(self, inputs: Tensor) -> Tensor:
        """The depthwise convolution (no bias)."""
        return depthwise_conv2d(inputs, self.depthwise_kernel, self.strides, self.padding,
                                self.dilation_rate)

    def convolve(self, inputs: Tensor) -> Tensor:
        """See `depthwise`."""
        return self.depthwise(inputs)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = Conv2D.compute_output_shape(self, input_shape)
        channels = tuple(input_shape)[-1]
        return (*shape[:-1], None if channels is None else channels * self.depth_multiplier)

    def get_config(self) -> dict[str, Any]:
        config = {k: v for k, v in super().get_config().items() if k not in (
            "filters", "kernel_initializer", "kernel_regularizer", "groups")}
        return {**config, "depth_multiplier": self.depth_multiplier,
                "depthwise_initializer": initializers.serialize(self.kernel_initializer),
                "depthwise_regularizer": serialize_or_none(regularizers,
                                                           self.kernel_regularizer)}


class SeparableConv2D(DepthwiseConv2D):
    """A depthwise convolution followed by a 1x1 (pointwise) convolution to `filters` channels.

    Weights: `depthwise_kernel` (kh, kw, in, depth_multiplier), `pointwise_kernel`
    (1, 1, in * depth_multiplier, filters) and `bias` (filters,).
    """

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = 1, depth_multiplier: int = 1, activation: Any = None,
                 use_bias: bool = True, depthwise_initializer: Any = "glorot_uniform",
                 pointwise_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 depthwise_regularizer: Any = None, pointwise_regularizer: Any = None,
                 bias_regularizer: Any = None, **kwargs: Any):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format,
                         dilation_rate, activation, use_bias, depthwise_initializer,
                         bias_initializer, depthwise_regularizer, bias_regularizer, **kwargs)
        self.filters = positive_int(filters, "filters")
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)

    def _build_pointwise(self, depth: int) -> int:
        self.pointwise_kernel = self.add_weight("pointwise_kernel", (1, 1, depth, self.filters),
                                                self.pointwise_initializer,
                                                self.pointwise_regularizer)
        return self.filters

    def convolve(self, inputs: Tensor) -> Tensor:
        """Depthwise, then pointwise."""
        return nn.conv2d(self.depthwise(inputs), self.pointwise_kernel, strides=1,
                         padding="valid")

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (*DepthwiseConv2D.compute_output_shape(self, input_shape)[:-1], self.filters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters,
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "pointwise_regularizer": serialize_or_none(regularizers,
                                                           self.pointwise_regularizer)}


Convolution1D, Convolution2D, Convolution2DTranspose = Conv1D, Conv2D, Conv2DTranspose
SeparableConvolution2D = SeparableConv2D
