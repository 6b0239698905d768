"""Convolutions built on `nn.conv2d`: its two gradients as ops (TF's
`conv2d_backprop_input_v2` / `conv2d_backprop_filter_v2`, hence `conv2d_transpose`),
1-D convolutions, `tf.conv`, and patch extraction (`extract_volume_patches`,
`tf.image.extract_patches`).

The gradient ops are linear in each argument, so their own VJPs are again a
convolution or one of the two gradients: second and later derivatives are exact.
They reach conv2d only through its public call and the tape, so conv2d's kernels
can change freely underneath.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.primitive import defop
from distflow.tensor import GradientTape, Tensor


def _spec(strides: Any, padding: str, dilations: Any) -> dict:
    return {"strides": nn._pair2(strides, "strides"), "padding": nn._padding(padding),
            "dilations": nn._pair2(1 if dilations is None else dilations, "dilations")}


def _conv(x: Any, w: Any, spec: dict) -> Tensor:
    return nn.conv2d(x, w, spec["strides"], spec["padding"], dilations=spec["dilations"])


def _input_grad(xshape: tuple, w: np.ndarray, dy: np.ndarray, spec: dict) -> np.ndarray:
    """d<conv2d(x, w), dy>/dx (the same for every x: the map is linear)."""
    x = ops.constant(np.zeros(xshape, w.dtype))
    with GradientTape() as tape:
        tape.watch(x)
        y = _conv(x, ops.constant(w), spec)
    return tape.gradient(y, x, output_gradients=ops.constant(dy)).value


def _filter_grad(x: np.ndarray, wshape: tuple, dy: np.ndarray, spec: dict) -> np.ndarray:
    """d<conv2d(x, w), dy>/dw."""
    w = ops.constant(np.zeros(wshape, x.dtype))
    with GradientTape() as tape:
        tape.watch(w)
        y = _conv(ops.constant(x), w, spec)
    return tape.gradient(y, w, output_gradients=ops.constant(dy)).value


def _conv_array(x: np.ndarray, w: np.ndarray, spec: dict) -> np.ndarray:
    return _conv(ops.constant(x), ops.constant(w), spec).value


_backprop_input = defop(
    "conv2d_backprop_input",
    lambda w, dy, xshape, spec: (_input_grad(xshape, w, dy, spec), (w, dy, spec)),
    lambda g, r: _filter_grad(g, r[0].shape, r[1], r[2]),
    lambda g, r: _conv_array(g, r[0], r[2]))

_backprop_filter = defop(
    "conv2d_backprop_filter",
    lambda x, dy, wshape, spec: (_filter_grad(x, wshape, dy, spec), (x, dy, spec)),
    lambda g, r: _input_grad(r[0].shape, g, r[1], r[2]),
    lambda g, r: _conv_array(r[0], g, r[2]))


def _shape_of(value: Any) -> tuple[int, ...]:
    if isinstance(value, Tensor):
        return tuple(int(d) for d in value.shape)
    return tuple(int(d) for d in np.shape(value))


def _nhwc(data_format: str) -> None:
    if data_format not in ("NHWC", "NWC", "CHANNELS_LAST"):
        raise ValueError(f"Only channels-last data is supported (data_format='NHWC'). "
                         f"Received: data_format={data_format!r}")


def _gradient_op(name: str, prim, key: str, doc: str):
    """TF's `Conv2DBackprop{Input,Filter}V2`: `prim` at the shape (`key`) of the argument
    whose gradient it is."""
    def op(input: Any, filter: Any, out_backprop: Any, strides: Any,  # noqa: A002
           padding: str, use_cudnn_on_gpu: bool = True, explicit_paddings: Any = (),
           data_format: str = "NHWC", dilations: Any = (1, 1, 1, 1),
           name: str | None = None) -> Tensor:
        _nhwc(data_format)
        if len(explicit_paddings):
            raise ValueError(f"padding='EXPLICIT' is not supported; use 'SAME' or 'VALID'. "
                             f"Received: explicit_paddings={explicit_paddings!r}")
        operand, shaped = (filter, input) if key == "xshape" else (input, filter)
        a, g = ops._pair(operand, out_backprop)
        return prim(a, g, **{key: _shape_of(shaped)}, spec=_spec(strides, padding, dilations))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


conv2d_backprop_input_v2 = _gradient_op(
    "conv2d_backprop_input_v2", _backprop_input, "xshape",
    """The gradient of `conv2d(input, filter)` with respect to `input`, for `out_backprop`
    (only `input`'s shape is used).""")

conv2d_backprop_filter_v2 = _gradient_op(
    "conv2d_backprop_filter_v2", _backprop_filter, "wshape",
    """The gradient of `conv2d(input, filter)` with respect to `filter`, for `out_backprop`
    (only `filter`'s shape is used).""")


def conv2d_transpose(input: Any, filters: Any, output_shape: Any, strides: Any,  # noqa: A002
                     padding: str = "SAME", data_format: str = "NHWC", dilations: Any = None,
                     name: str | None = None) -> Tensor:
    """The transpose of conv2d: `filters` is `[kh, kw, out_channels, in_channels]` and the
    result has `output_shape` (the shape conv2d would map back to `input`'s)."""
    _nhwc(data_format)
    w, x = ops._pair(filters, input)
    shape = tuple(int(d) for d in np.asarray(output_shape.numpy() if isinstance(
        output_shape, Tensor) else output_shape).reshape(-1))
    return _backprop_input(w, x, xshape=shape, spec=_spec(strides, padding, dilations))


# ------------------------------------------------------------ 1-D and generic


def _stride1(value: Any, name: str) -> int:
    vals = [int(v) for v in np.atleast_1d(value)]
    if len(vals) == 3:
        vals = vals[1:2]
    if len(vals) != 1 or vals[0] < 1:
        raise ValueError(f"`{name}` must be a positive int or a list of 1 or 3 ints. "
                         f"Received: {name}={value!r}")
    return vals[0]


def conv1d(input: Any, filters: Any, stride: Any, padding: str,  # noqa: A002
           data_format: str = "NWC", dilations: Any = None, name: str | None = None) -> Tensor:
    """1-D convolution of `[batch, width, in_channels]` with `[kw, in_channels, out]` filters."""
    _nhwc(data_format)
    x, w = ops._pair(input, filters)
    y = nn.conv2d(ops.expand_dims(x, 1), ops.expand_dims(w, 0), [1, _stride1(stride, "stride")],
                  padding, dilations=[1, _stride1(1 if dilations is None else dilations,
                                                  "dilations")])
    return ops.squeeze(y, [1])


def conv1d_transpose(input: Any, filters: Any, output_shape: Any, strides: Any,  # noqa: A002
                     padding: str = "SAME", data_format: str = "NWC", dilations: Any = None,
                     name: str | None = None) -> Tensor:
    """The transpose of conv1d (`filters`: `[kw, out_channels, in_channels]`)."""
    shape = [int(d) for d in np.asarray(output_shape.numpy() if isinstance(
        output_shape, Tensor) else output_shape).reshape(-1)]
    y = conv2d_transpose(ops.expand_dims(input, 1), ops.expand_dims(filters, 0),
                         [shape[0], 1, *shape[1:]], [1, _stride1(strides, "strides")], padding,
                         dilations=[1, _stride1(1 if dilations is None else dilations,
                                                "dilations")])
    return ops.squeeze(y, [1])


def conv(input: Any, filter: Any, strides: Any, padding: str,  # noqa: A002
         explicit_paddings: Any = (), data_format: str = "CHANNELS_LAST", dilations: Any = (),
         batch_dims: int = 1, groups: int = 1, name: str | None = None) -> Tensor:
    """TF's generic `Conv` op, for 2-D convolutions (rank-4 input; TF takes 2 or 3 spatial
    dimensions, never 1); `strides`/`dilations` list every dimension, batch and channels
    included."""
    _nhwc(data_format)
    x = ops.convert_to_tensor(input)
    dil = dilations if len(dilations) else [1] * x.ndim
    if batch_dims != 1 or x.ndim != 4:
        raise ValueError(f"tf.conv supports one batch dimension and 2 spatial dimensions "
                         f"(rank-4 input). Received: rank {x.ndim}, batch_dims={batch_dims}")
    if groups != 1 and int(x.shape[-1]) != groups * int(np.shape(filter)[2]):
        raise ValueError(f"tf.conv: groups={groups} does not divide the input's "
                         f"{x.shape[-1]} channels into the filter's {np.shape(filter)[2]}.")
    return nn.conv2d(x, filter, list(strides), padding, dilations=list(dil))


# ------------------------------------------------------------ patches


def _patch_index(size: tuple, ksize: tuple, strides: tuple, rates: tuple, padding: str):
    """Per spatial axis: window start positions in the padded input, and the padding."""
    mode = nn._padding(padding)
    axes = []
    for n, k, s, r in zip(size, ksize, strides, rates):
        out, pad = nn._axis_geometry(n, k, s, r, mode)
        if out < 1:
            raise ValueError(f"The patch ({ksize}, rates {rates}) is larger than the input's "
                             f"spatial size {size} with padding {mode!r}.")
        axes.append((np.arange(out)[:, None] * s + np.arange(k)[None, :] * r, pad))
    return axes


def extract_patches_nd(x: Any, ksize: Any, strides: Any, rates: Any, padding: str,
                       pad_value: Any = 0) -> Tensor:
    """Patches of a channels-last `[batch, *spatial, channels]` tensor, flattened into the
    last axis in (window position..., channel) order, as TF's patch ops lay them out;
    SAME padding uses `pad_value`."""
    x = ops.convert_to_tensor(x)
    spatial = tuple(int(d) for d in x.shape[1:-1])
    axes = _patch_index(spatial, ksize, strides, rates, padding)
    padded = ops.pad(x, [[0, 0]] + [list(p) for _, p in axes] + [[0, 0]],
                     constant_values=pad_value)
    for i, (index, _) in enumerate(axes):  # each spatial axis becomes (out, window)
        axis = 1 + 2 * i
        padded = ops.gather(padded, index.reshape(-1), axis=axis)
        padded = ops.reshape(padded, list(padded.shape[:axis]) + list(index.shape) +
                             list(padded.shape[axis + 1:]))
    n = len(axes)
    perm = [0] + [1 + 2 * i for i in range(n)] + [2 + 2 * i for i in range(n)] + [1 + 2 * n]
    padded = ops.transpose(padded, perm)
    return ops.reshape(padded, list(padded.shape[:1 + n]) + [-1])


def middle_dims(value: Any, n: int, name: str) -> tuple[int, ...]:
    vals = [int(v) for v in value]
    if len(vals) != n + 2 or vals[0] != 1 or vals[-1] != 1:
        raise ValueError(f"`{name}` must list {n + 2} ints with 1 for the batch and channel "
                         f"dimensions. Received: {name}={value!r}")
    return tuple(vals[1:-1])


def extract_volume_patches(input: Any, ksizes: Any, strides: Any, padding: str,  # noqa: A002
                           name: str | None = None) -> Tensor:
    """3-D patches of `[batch, depth, height, width, channels]`, each flattened into the
    last axis (`[batch, out_d, out_h, out_w, kd * kh * kw * channels]`)."""
    return extract_patches_nd(input, middle_dims(ksizes, 3, "ksizes"),
                              middle_dims(strides, 3, "strides"), (1, 1, 1), padding)


# ------------------------------------------------------------ tf.nn's conv family


def convolution(input: Any, filters: Any, strides: Any = None, padding: str = "VALID",  # noqa: A002
                data_format: str | None = None, dilations: Any = None,
                name: str | None = None) -> Tensor:
    """N-D convolution dispatched on the input's rank: 1-D (rank 3) or 2-D (rank 4)."""
    x = ops.convert_to_tensor(input)
    _nhwc(data_format or "NHWC")
    if x.ndim == 3:
        return conv1d(x, filters, 1 if strides is None else strides, padding,
                      dilations=dilations)
    if x.ndim == 4:
        return nn.conv2d(x, filters, 1 if strides is None else strides, padding,
                         dilations=dilations)
    raise ValueError(f"tf.nn.convolution supports rank-3 (1-D) and rank-4 (2-D) inputs. "
                     f"Received: rank {x.ndim}")


def conv_transpose(input: Any, filters: Any, output_shape: Any, strides: Any,  # noqa: A002
                   padding: str = "SAME", data_format: str | None = None,
                   dilations: Any = None, name: str | None = None) -> Tensor:
    """The transpose of `convolution`, dispatched on the input's rank (3 or 4)."""
    x = ops.convert_to_tensor(input)
    if x.ndim == 3:
        return conv1d_transpose(x, filters, output_shape, strides, padding, dilations=dilations)
    if x.ndim == 4:
        return conv2d_transpose(x, filters, output_shape, strides, padding,
                                dilations=dilations)
    raise ValueError(f"tf.nn.conv_transpose supports rank-3 and rank-4 inputs. Received: "
                     f"rank {x.ndim}")


def atrous_conv2d(value: Any, filters: Any, rate: int, padding: str,
                  name: str | None = None) -> Tensor:
    """conv2d with the filter dilated by `rate` (stride 1)."""
    return nn.conv2d(value, filters, 1, padding, dilations=rate)


def atrous_conv2d_transpose(value: Any, filters: Any, output_shape: Any, rate: int,
                            padding: str, name: str | None = None) -> Tensor:
    """The transpose of `atrous_conv2d`."""
    return conv2d_transpose(value, filters, output_shape, 1, padding, dilations=rate)


def _grouped_filter(filters: Any) -> Tensor:
    """Depthwise `[kh, kw, C, m]` filters as the grouped conv2d filters `[kh, kw, 1, C*m]`."""
    w = ops.convert_to_tensor(filters)
    kh, kw, c, m = (int(d) for d in w.shape)
    return ops.reshape(w, [kh, kw, 1, c * m])


def depthwise_conv2d(input: Any, filter: Any, strides: Any, padding: str,  # noqa: A002
                     data_format: str | None = None, dilations: Any = None,
                     name: str | None = None) -> Tensor:
    """Each input channel convolved with its own `m` filters (`[kh, kw, C, m]`); output
    channel `c * m + j` is channel c's filter j."""
    _nhwc(data_format or "NHWC")
    return nn.conv2d(input, _grouped_filter(filter), strides, padding, dilations=dilations)


def separable_conv2d(input: Any, depthwise_filter: Any, pointwise_filter: Any,  # noqa: A002
                     strides: Any, padding: str, data_format: str | None = None,
                     dilations: Any = None, name: str | None = None) -> Tensor:
    """A depthwise convolution followed by a 1x1 convolution mixing the channels."""
    deep = depthwise_conv2d(input, depthwise_filter, strides, padding, data_format, dilations)
    return nn.conv2d(deep, pointwise_filter, 1, "VALID")


def depthwise_conv2d_backprop_input(input_sizes: Any, filter: Any, out_backprop: Any,  # noqa: A002
                                    strides: Any, padding: str, data_format: str = "NHWC",
                                    dilations: Any = (1, 1, 1, 1),
                                    name: str | None = None) -> Tensor:
    """The gradient of `depthwise_conv2d` with respect to its input (of `input_sizes`)."""
    _nhwc(data_format)
    w, dy = ops._pair(_grouped_filter(filter), out_backprop)
    shape = tuple(int(d) for d in np.asarray(input_sizes).reshape(-1))
    return _backprop_input(w, dy, xshape=shape, spec=_spec(strides, padding, dilations))


def depthwise_conv2d_backprop_filter(input: Any, filter_sizes: Any,  # noqa: A002
                                     out_backprop: Any, strides: Any, padding: str,
                                     data_format: str = "NHWC", dilations: Any = (1, 1, 1, 1),
                                     name: str | None = None) -> Tensor:
    """The gradient of `depthwise_conv2d` with respect to its `[kh, kw, C, m]` filter."""
    _nhwc(data_format)
    kh, kw, c, m = (int(d) for d in np.asarray(filter_sizes).reshape(-1))
    x, dy = ops._pair(input, out_backprop)
    grad = _backprop_filter(x, dy, wshape=(kh, kw, 1, c * m),
                            spec=_spec(strides, padding, dilations))
    return ops.reshape(grad, [kh, kw, c, m])
