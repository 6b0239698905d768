"""More convolutions, built on conv2d so gradients come from the autodiff core:
Conv3D, Conv3DTranspose, Conv1DTranspose, DepthwiseConv1D and SeparableConv1D.

Conv3D sums, over the kernel's depth taps, conv2d of the matching depth slices
(each batch of slices folded into the conv2d batch); the transposed convolutions
zero-insert by the strides, pad, and correlate with the flipped kernel, as
Conv2DTranspose does. The 1-D layers run their 2-D counterparts on a height-1
image. Shapes, padding and kernel layouts are Keras's (channels_last).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from distflow import nn, ops
from distflow.keras.layers.base import InputSpec
from distflow.keras.layers.convolutional import (
    Conv2D,
    Conv2DTranspose,
    DepthwiseConv2D,
    SeparableConv2D,
    conv_output_length,
    deconv_output_length,
    depthwise_conv2d,
)
from distflow.tensor import Tensor

__all__ = ["Conv3D", "Conv3DTranspose", "Conv1DTranspose", "DepthwiseConv1D",
           "SeparableConv1D", "Convolution3D", "Convolution3DTranspose",
           "Convolution1DTranspose", "SeparableConvolution1D"]


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> list[int]:
    """TF's 'same' padding along one axis: (before, after), the extra one after."""
    span = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    return [total // 2, total - total // 2]


def conv3d(inputs: Tensor, kernel: Tensor, strides: Sequence[int], padding: str,
           dilations: Sequence[int]) -> Tensor:
    """3-D correlation of NDHWC `inputs` with a DHWIO `kernel` ('valid' or 'same')."""
    (kd, *_), (sd, sh, sw), (dd, dh, dw) = kernel.shape, strides, dilations
    if padding == "same":
        pad = _same_padding(inputs.shape[1], kd, sd, dd)
        inputs = ops.pad(inputs, [[0, 0], pad, [0, 0], [0, 0], [0, 0]])
    n, depth, height, width, channels = inputs.shape
    out_depth = conv_output_length(depth, kd, "valid", sd, dd)
    total = None
    for tap in range(kd):
        start = tap * dd
        planes = inputs[:, start:start + (out_depth - 1) * sd + 1:sd]
        folded = ops.reshape(planes, (n * out_depth, height, width, channels))
        out = nn.conv2d(folded, kernel[tap], strides=(sh, sw), padding=padding.upper(),
                        dilations=(dh, dw))
        total = out if total is None else ops.add(total, out)
    return ops.reshape(total, (n, out_depth, *total.shape[1:]))


def _spread(inputs: Tensor, strides: Sequence[int]) -> Tensor:
    """Inserts `stride - 1` zeros between neighbours along each spatial axis."""
    for axis, stride in enumerate(strides, start=1):
        if stride == 1:
            continue
        size = inputs.shape[axis]
        grid = ops.expand_dims(inputs, axis + 1)
        pads = [[0, 0]] * grid.ndim
        pads[axis + 1] = [0, stride - 1]
        grid = ops.pad(grid, pads)
        merged = (*inputs.shape[:axis], size * stride, *inputs.shape[axis + 1:])
        index = [slice(None)] * inputs.ndim
        index[axis] = slice(0, (size - 1) * stride + 1)
        inputs = ops.getitem(ops.reshape(grid, merged), tuple(index))
    return inputs


def transposed_padding(size: int, kernel: int, stride: int, dilation: int,
                       padding: str) -> list[int]:
    """(before, after) padding of the zero-inserted input along one axis."""
    span = (kernel - 1) * dilation + 1
    out = deconv_output_length(size, kernel, padding, stride, dilation)
    crop = max(span - stride, 0) // 2 if padding == "same" else 0
    before = span - 1 - crop
    return [before, out + span - 1 - ((size - 1) * stride + 1) - before]


def conv_transpose(inputs: Tensor, kernel: Tensor, strides: Sequence[int], padding: str,
                   dilations: Sequence[int], correlate: Callable[..., Tensor]) -> Tensor:
    """Transposed convolution of channels-last `inputs` with a (*k, out, in) kernel.

    `correlate(x, kernel, dilations)` is the stride-1 'valid' correlation of the rank.
    """
    rank = len(strides)
    pads = [transposed_padding(n, k, s, d, padding) for n, k, s, d in
            zip(inputs.shape[1:-1], kernel.shape[:rank], strides, dilations)]
    padded = ops.pad(_spread(inputs, strides), [[0, 0], *pads, [0, 0]])
    flipped = ops.getitem(kernel, (slice(None, None, -1),) * rank)
    flipped = ops.transpose(flipped, (*range(rank), rank + 1, rank))
    return correlate(padded, flipped, dilations)


def _correlate2d(x: Tensor, kernel: Tensor, dilations: Sequence[int]) -> Tensor:
    return nn.conv2d(x, kernel, strides=1, padding="valid", dilations=tuple(dilations))


def _correlate3d(x: Tensor, kernel: Tensor, dilations: Sequence[int]) -> Tensor:
    return conv3d(x, kernel, (1, 1, 1), "valid", dilations)


class Conv3D(Conv2D):
    """3-D convolution over NDHWC inputs with a DHWIO kernel (groups=1 only).

    Args as `Conv2D`, with 3-tuples for `kernel_size`, `strides` and `dilation_rate`.
    """

    rank = 3

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 **kwargs: Any):
        if kwargs.get("groups", 1) != 1:
            raise ValueError("distflow's Conv3D supports groups=1 only. Received: "
                             f"groups={kwargs['groups']}")
        super().__init__(filters, kernel_size, strides, padding, **kwargs)

    def convolve(self, inputs: Tensor) -> Tensor:
        return conv3d(inputs, self.kernel, self.strides, self.padding, self.dilation_rate)


class Conv3DTranspose(Conv2DTranspose):
    """Transposed 3-D convolution; the kernel is (kd, kh, kw, filters, in_channels)."""

    rank = 3

    def convolve(self, inputs: Tensor) -> Tensor:
        return conv_transpose(inputs, self.kernel, self.strides, self.padding,
                              self.dilation_rate, _correlate3d)


class Conv1DTranspose(Conv2DTranspose):
    """Transposed 1-D convolution over (batch, steps, channels); kernel (k, filters, in)."""

    rank = 1

    def convolve(self, inputs: Tensor) -> Tensor:
        image = ops.expand_dims(inputs, 1)
        kernel = ops.expand_dims(self.kernel, 0)
        out = conv_transpose(image, kernel, (1, *self.strides), self.padding,
                             (1, *self.dilation_rate), _correlate2d)
        return ops.squeeze(out, 1)


class DepthwiseConv1D(DepthwiseConv2D):
    """Depthwise 1-D convolution; the kernel is (k, in_channels, depth_multiplier)."""

    rank = 1

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.input_spec = InputSpec(ndim=3, axes={-1: input_shape[-1]})

    def depthwise(self, inputs: Tensor) -> Tensor:
        out = depthwise_conv2d(ops.expand_dims(inputs, 1),
                               ops.expand_dims(self.depthwise_kernel, 0), (1, *self.strides),
                               self.padding, (1, *self.dilation_rate))
        return ops.squeeze(out, 1)


class SeparableConv1D(SeparableConv2D):
    """Depthwise 1-D convolution then a pointwise one; kernels (k, in, mult), (1, in*mult, f)."""

    rank = 1

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.input_spec = InputSpec(ndim=3, axes={-1: input_shape[-1]})

    def _build_pointwise(self, depth: int) -> int:
        self.pointwise_kernel = self.add_weight("pointwise_kernel", (1, depth, self.filters),
                                                self.pointwise_initializer,
                                                self.pointwise_regularizer)
        return self.filters

    def depthwise(self, inputs: Tensor) -> Tensor:
        return DepthwiseConv1D.depthwise(self, inputs)

    def convolve(self, inputs: Tensor) -> Tensor:
        pointwise = ops.expand_dims(self.pointwise_kernel, 0)
        out = nn.conv2d(ops.expand_dims(self.depthwise(inputs), 1), pointwise, strides=1,
                        padding="valid")
        return ops.squeeze(out, 1)


Convolution3D, Convolution3DTranspose = Conv3D, Conv3DTranspose
Convolution1DTranspose, SeparableConvolution1D = Conv1DTranspose, SeparableConv1D
