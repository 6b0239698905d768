"""ConvLSTM1D, ConvLSTM2D and ConvLSTM3D: an LSTM whose matmuls are convolutions.

Inputs are (batch, time, *spatial, channels) (channels_last only). The input
convolution of every time step is one convolution over batch * time images,
before the loop; each step then adds the recurrent convolution of the previous
output ('same' padding, stride 1) and applies the LSTM gates in Keras's order
(input, forget, cell, output). The step loop is `recurrent_stacked.run_cell`'s.
"""

from __future__ import annotations

from typing import Any

from distflow import nn, ops
from distflow.keras.layers.base import InputSpec, Layer, to_snake_case
from distflow.keras.layers.convolutional import (
    check_data_format,
    conv_output_length,
    normalize_padding,
    normalize_tuple,
)
from distflow.keras.layers.convolutional_extra import conv3d
from distflow.keras.layers.core import bias_add
from distflow.keras.layers.recurrent import LSTMCell, _keep_mask
from distflow.keras.layers.recurrent_stacked import cells_in_compute_dtype, run_cell
from distflow.tensor import Tensor, unique_name

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]

_LAYER_KWARGS = ("name", "trainable", "dtype", "input_shape", "batch_input_shape",
                 "batch_size", "activity_regularizer")


def convolve(x: Tensor, kernel: Tensor, strides: tuple, padding: str, dilation: tuple) -> Tensor:
    """Correlation of channels_last `x` with a (*k, in, out) kernel, in 1, 2 or 3 dimensions."""
    rank = len(strides)
    if rank == 3:
        return conv3d(x, kernel, strides, padding, dilation)
    if rank == 2:
        return nn.conv2d(x, kernel, strides=strides, padding=padding, dilations=dilation)
    out = nn.conv2d(ops.expand_dims(x, 1), ops.expand_dims(kernel, 0), strides=(1, *strides),
                    padding=padding, dilations=(1, *dilation))
    return ops.squeeze(out, 1)


class ConvLSTMCell(LSTMCell):
    """One ConvLSTM step; the weights of a ConvLSTM layer (kernel, recurrent_kernel, bias).

    Arguments as LSTMCell's, with `filters` for `units` and the convolution's
    `rank`, `kernel_size`, `strides`, `padding` and `dilation_rate`.
    """

    sequence = None  # no whole-sequence op: steps only

    def __init__(self, rank: int, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", dilation_rate: Any = 1, **kwargs: Any):
        super().__init__(filters, **kwargs)
        self.rank = rank
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.padding = normalize_padding(padding)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")

    @property
    def filters(self) -> int:
        """The number of output channels."""
        return self.units

    def build(self, input_shape: Any) -> None:
        """`input_shape` is one step's: (batch, *spatial, channels)."""
        channels, width = input_shape[-1], 4 * self.filters
        self.kernel = self.add_weight("kernel", (*self.kernel_size, channels, width),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", (*self.kernel_size, self.filters, width),
            self.recurrent_initializer, self.recurrent_regularizer)
        self.bias = (self.add_weight("bias", (width,), self._bias_init(), self.bias_regularizer)
                     if self.use_bias else None)

    def output_spatial(self, spatial: tuple) -> tuple:
        """The spatial shape of the states for inputs of spatial shape `spatial`."""
        return tuple(conv_output_length(size, k, self.padding, s, d) for size, k, s, d in
                     zip(spatial, self.kernel_size, self.strides, self.dilation_rate))

    def input_conv(self, inputs: Tensor) -> Tensor:
        """The four gates' input convolutions (plus bias) of (n, *spatial, channels) inputs."""
        out = convolve(inputs, self.kernel, self.strides, self.padding, self.dilation_rate)
        return out if self.bias is None else bias_add(out, self.bias)

    def step(self, projected: Tensor, states: list, recurrent_mask: Tensor | None = None):
        """One step from the input convolution `projected`: (h, [h, c])."""
        h, c = states
        if recurrent_mask is not None:
            h = ops.multiply(h, recurrent_mask)
        ones = (1,) * self.rank
        z = ops.add(projected, convolve(h, self.recurrent_kernel, ones, "same", ones))
        zi, zf, zg, zo = ops.split(z, 4, axis=-1)
        act, gate = self.activation, self.recurrent_activation
        c = ops.add(ops.multiply(gate(zf), c), ops.multiply(gate(zi), act(zg)))
        h = ops.multiply(gate(zo), act(c))
        return h, [h, c]

    def call(self, inputs: Tensor, states: Any, training: bool = False) -> tuple[Tensor, list]:
        """One step from (batch, *spatial, channels) inputs: (h, [h, c])."""
        return self.step(self.input_conv(inputs), list(states))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("units")
        return {**config, "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": "channels_last", "dilation_rate": list(self.dilation_rate)}


class _Stepper:
    """`run_cell`'s view of a cell whose input convolutions are already computed."""

    def __init__(self, cell: ConvLSTMCell, recurrent_mask: Tensor | None):
        self.cell, self.recurrent_mask = cell, recurrent_mask

    def call(self, projected: Tensor, states: list, training: bool = False):
        return self.cell.step(projected, states, self.recurrent_mask)


class _ConvLSTM(Layer):
    """The ConvLSTM layers' shared body; `rank` is the number of spatial axes."""

    rank = 2
    cell_class: type = ConvLSTMCell  # the cell's arguments are the layer's too

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: str = "valid", data_format: str | None = None,
                 dilation_rate: Any = 1, *, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, **kwargs: Any):
        kwargs.pop("zero_output_for_mask", None)
        layer_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _LAYER_KWARGS}
        name = layer_kwargs.pop("name", None) or unique_name(to_snake_case(type(self).__name__))
        super().__init__(name=name, **layer_kwargs)
        if stateful:
            raise NotImplementedError("Stateful RNNs are not supported: pass stateful=False "
                                      "and carry the state with `initial_state`.")
        check_data_format(data_format)
        self.cell = ConvLSTMCell(self.rank, filters, kernel_size, strides, padding,
                                 dilation_rate, name=f"{name}/conv_lstm_cell",
                                 dtype=layer_kwargs.get("dtype"), **kwargs)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.unroll = bool(go_backwards), bool(unroll)
        self.input_spec = InputSpec(ndim=self.rank + 3)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], tuple):
            input_shape = input_shape[0]
        input_shape = tuple(input_shape)
        if None in input_shape[2:]:
            raise ValueError("ConvLSTM layers only support static input shapes for the "
                             f"spatial dimension. Received invalid input shape: "
                             f"input_shape={input_shape}")
        if not self.cell.built:
            self.cell.build((input_shape[0], *input_shape[2:]))
        self.input_spec = InputSpec(ndim=self.rank + 3, axes={-1: input_shape[-1]})

    def call(self, inputs: Tensor, mask: Any = None, training: bool = False,
             initial_state: Any = None) -> Any:
        batch, steps, *image = inputs.shape
        cell = self.cell
        if training and cell.dropout:
            keep = _keep_mask((batch, 1, *image), cell.dropout, cell.rng())
            inputs = ops.multiply(inputs, keep)
        projected = cell.input_conv(ops.reshape(inputs, (batch * steps, *image)))
        projected = ops.reshape(projected, (batch, steps, *projected.shape[1:]))
        states = self._initial_states(initial_state, projected)
        rec_mask = (_keep_mask(tuple(states[0].shape), cell.recurrent_dropout, cell.rng())
                    if training and cell.recurrent_dropout else None)
        result, states = run_cell(_Stepper(cell, rec_mask), projected, states, mask,
                                  go_backwards=self.go_backwards,
                                  return_sequences=self.return_sequences, training=training)
        return [result, *states] if self.return_state else result

    def _initial_states(self, initial_state: Any, projected: Tensor) -> list[Tensor]:
        if initial_state is None:
            zeros = ops.zeros((*projected.shape[:1], *projected.shape[2:-1], self.cell.filters),
                              dtype=projected.dtype)
            return [zeros, zeros]
        states = list(initial_state) if isinstance(initial_state, list | tuple) else []
        if len(states) != 2:
            raise ValueError(f'Layer "{self.name}" expects 2 initial state tensors (h, c). '
                             f"Received: initial_state={initial_state!r}")
        return [ops.cast(ops.convert_to_tensor(s), self.compute_dtype) for s in states]

    def _variables_in_compute_dtype(self) -> Any:
        return cells_in_compute_dtype(self, [self.cell])

    def compute_output_shape(self, input_shape: Any) -> Any:
        batch, steps, *image = tuple(input_shape)
        state = (batch, *self.cell.output_spatial(tuple(image[:-1])), self.cell.filters)
        out = (batch, steps, *state[1:]) if self.return_sequences else state
        return [out, state, state] if self.return_state else out

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask if self.return_sequences else None

    def get_config(self) -> dict[str, Any]:
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        return {**super().get_config(), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "stateful": False, "unroll": self.unroll, **cell_config}


class ConvLSTM1D(_ConvLSTM):
    """1-D convolutional LSTM over (batch, time, steps, channels) inputs.

    Args:
        filters: the number of output channels (per gate).
        kernel_size, strides, dilation_rate: an int or a 1-tuple each.
        padding: 'valid' or 'same' (of the input convolution; the recurrent one is 'same').
        data_format: 'channels_last' (the only one supported) or None.
        activation, recurrent_activation, use_bias, *_initializer, unit_forget_bias,
            *_regularizer, *_constraint, dropout, recurrent_dropout, seed: as `LSTM`'s.
        return_sequences, return_state, go_backwards: as `RNN`'s (stateful must be False).
        **kwargs: base `Layer` arguments.
    """

    rank = 1


class ConvLSTM2D(_ConvLSTM):
    """2-D convolutional LSTM over (batch, time, rows, cols, channels); args as ConvLSTM1D's
    with 2-tuples."""

    rank = 2


class ConvLSTM3D(_ConvLSTM):
    """3-D convolutional LSTM over (batch, time, depth, rows, cols, channels); args as
    ConvLSTM1D's with 3-tuples."""

    rank = 3
