"""Recurrent layers: the generic `RNN(cell)` and SimpleRNN, LSTM and GRU with their cells.

The loop runs in Python over time steps and is vectorised over the batch; the
input projection `x @ kernel + bias` of all time steps is one matmul before
the loop, so each step only adds the recurrent matmul. Inputs are
(batch, timesteps, features); an optional boolean `mask` (batch, timesteps)
makes masked steps carry the previous output and state forward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import nest, ops, random
from distflow.keras import activations, initializers, regularizers
from distflow.keras.layers.base import InputSpec, Layer, to_snake_case
from distflow.keras.layers.core import bias_add, positive_int, serialize_or_none
from distflow.keras.layers.recurrent_sequence import gru_sequence, lstm_sequence
from distflow.keras.layers.recurrent_stacked import (
    cells_in_compute_dtype,
    run_cell,
    state_shapes,
    zero_states,
)
from distflow.ops import Primitive
from distflow.tensor import Tensor, as_array, current_tape, unique_name

_LAYER_KWARGS = ("name", "trainable", "dtype", "input_shape", "input_dim", "batch_input_shape",
                 "batch_size", "activity_regularizer", "weights", "time_major")

__all__ = ["RNN", "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell"]


def _rate(value: Any, name: str) -> float:
    if not 0 <= float(value) < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


def _keep_mask(shape: tuple, rate: float, rng: np.random.Generator) -> Tensor:
    keep = (rng.random(shape, dtype=np.float32) >= rate).astype(np.float32)
    return Tensor._wrap(keep / np.float32(1.0 - rate))


class _Cell(Layer):
    """Shared arguments, weights and config of the three cells.

    Subclasses set `gates` (how many blocks of `units` the kernels hold) and
    implement `step(projected_input_t, states, recurrent_mask) -> (output, states)`.
    """

    gates = 1

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(int(seed))

    @property
    def state_size(self) -> int | list[int]:
        """Size of each state tensor."""
        return self.units

    @property
    def output_size(self) -> int:
        """Size of the output at each step."""
        return self.units

    def rng(self) -> np.random.Generator:
        """The generator of dropout masks (the layer's own when seeded)."""
        return self._rng if self._rng is not None else random.get_global_generator()

    def build(self, input_shape: Any) -> None:
        width = self.gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], width),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer,
                                                self.recurrent_regularizer)
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_init(),
                                     self.bias_regularizer) if self.use_bias else None)

    def _bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def _bias_init(self) -> Any:
        return self.bias_initializer

    def project_inputs(self, inputs: Tensor) -> Tensor:
        """x @ kernel (+ input bias) for all steps at once: (batch, steps, gates * units)."""
        batch, steps, features = inputs.shape
        flat = ops.matmul(ops.reshape(inputs, (-1, features)), self.kernel)
        if self.bias is not None:
            flat = ops.add(flat, self._input_bias())
        return ops.reshape(flat, (batch, steps, -1))

    def _input_bias(self) -> Tensor:
        return self.bias

    def get_initial_state(self, batch_size: int) -> list[Tensor]:
        """Zero states for a batch."""
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [ops.zeros((batch_size, s), dtype=self.compute_dtype) for s in sizes]

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Tensor, list]:
        """One step, as a Keras cell: (batch, features) inputs -> (output, new states)."""
        states = list(states) if isinstance(states, list | tuple) else [states]
        projected = ops.squeeze(self.project_inputs(ops.expand_dims(inputs, 1)), 1)
        return self.step(projected, states, None)

    def step(self, projected: Tensor, states: list[Tensor], recurrent_mask: Tensor | None):
        raise NotImplementedError

    def _fusable(self, *tensors: Tensor) -> bool:
        """Fused steps implement the default activations (tanh, sigmoid) only."""
        dtype = self.recurrent_kernel.dtype
        return (self.activation is activations.tanh and
                getattr(self, "recurrent_activation", None) is activations.sigmoid and
                all(t.dtype == dtype for t in tensors))

    def _recurrent(self, h: Tensor, recurrent_mask: Tensor | None) -> Tensor:
        if recurrent_mask is not None:
            h = ops.multiply(h, recurrent_mask)
        return ops.matmul(h, self.recurrent_kernel)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": serialize_or_none(regularizers, self.kernel_regularizer),
                "recurrent_regularizer": serialize_or_none(regularizers,
                                                           self.recurrent_regularizer),
                "bias_regularizer": serialize_or_none(regularizers, self.bias_regularizer),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed}


class SimpleRNNCell(_Cell):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)."""

    def step(self, projected, states, recurrent_mask):
        h = self.activation(ops.add(projected, self._recurrent(states[0], recurrent_mask)))
        return h, [h]


class LSTMCell(_Cell):
    """Long short-term memory, gates in Keras's order (input, forget, cell, output).

    z = x @ kernel + h @ recurrent_kernel + bias; i, f, g, o = split(z, 4);
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g); h' = sigmoid(o) * tanh(c').
    `unit_forget_bias` initialises the forget-gate bias to 1.
    """

    gates = 4

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", unit_forget_bias: bool = True,
                 **kwargs: Any):
        super().__init__(units, activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self) -> list[int]:
        """Two states: the output h and the cell state c."""
        return [self.units, self.units]

    def _bias_init(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units

        def forget_ones(shape, dtype=None):
            values = np.array(as_array(base((units * 4,), dtype=dtype)), copy=True)
            values[units:2 * units] = 1.0
            return Tensor._wrap(values)
        return forget_ones

    def step(self, projected, states, recurrent_mask):
        h, c = states
        if self._fusable(projected, h, c):
            hm = h if recurrent_mask is None else ops.multiply(h, recurrent_mask)
            hc = _lstm_step(projected, hm, c, self.recurrent_kernel)
            units = self.units
            h, c = hc[:, :units], hc[:, units:]
            return h, [h, c]
        z = ops.add(projected, self._recurrent(h, recurrent_mask))
        zi, zf, zg, zo = ops.split(z, 4, axis=1)
        act, gate = self.activation, self.recurrent_activation
        c = ops.add(ops.multiply(gate(zf), c), ops.multiply(gate(zi), act(zg)))
        h = ops.multiply(gate(zo), act(c))
        return h, [h, c]

    def sequence(self, inputs: Tensor, states: list[Tensor], backwards: bool = False,
                 last_only: bool = False) -> tuple[Tensor | None, list] | None:
        """The whole sequence as one op: (outputs (batch, steps, units), [h, c]), or None
        when the activations are not the defaults. `backwards` reads the steps in
        reverse; with `last_only` the outputs are None (only the final states)."""
        h, c = states
        if not self._fusable(inputs, h, c):
            return None
        bias = self.bias if self.bias is not None else _zeros_bias(4 * self.units, h)
        hc = lstm_sequence(inputs, self.kernel, self.recurrent_kernel, bias, h, c,
                           last_only=last_only, backwards=backwards)
        units = self.units
        if last_only:
            return None, [hc[:, :units], hc[:, units:]]
        return hc[:, :, :units], [hc[:, -1, :units], hc[:, -1, units:]]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}




def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-z)) written with tanh: one ufunc pass, no overflow for large |z|.
    return 0.5 * np.tanh(0.5 * z) + 0.5


def _lstm_step_forward(zx, h, c, kernel):
    """One LSTM step with the default activations; returns [h', c'] side by side."""
    units = h.shape[1]
    z = zx + h @ kernel
    act = np.empty_like(z)  # gates i, f, g, o side by side
    act[:, :2 * units] = _sigmoid(z[:, :2 * units])
    act[:, 2 * units:3 * units] = np.tanh(z[:, 2 * units:3 * units])
    act[:, 3 * units:] = _sigmoid(z[:, 3 * units:])
    i, f, g, o = (act[:, k * units:(k + 1) * units] for k in range(4))
    out = np.empty((h.shape[0], 2 * units), dtype=z.dtype)
    c_new = out[:, units:]
    np.multiply(f, c, out=c_new)
    c_new += i * g
    th = np.tanh(c_new)
    np.multiply(o, th, out=out[:, :units])
    return out, {"h": h, "c": c, "kernel": kernel, "act": act, "th": th,
                 "for": None, "dz": None, "dc": None}


def _lstm_step_grads(grad, r):
    """dz (pre-activation gates) and dc, computed once per upstream gradient and shared
    by the four VJPs."""
    if r["for"] is not grad:
        act, th = r["act"], r["th"]
        units = th.shape[1]
        i, f, g, o = (act[:, k * units:(k + 1) * units] for k in range(4))
        dh = grad[:, :units]
        dc = grad[:, units:] + dh * o * (1 - th * th)
        upstream = np.empty_like(act)
        np.multiply(dc, g, out=upstream[:, :units])
        np.multiply(dc, r["c"], out=upstream[:, units:2 * units])
        np.multiply(dc, i, out=upstream[:, 2 * units:3 * units])
        np.multiply(dh, th, out=upstream[:, 3 * units:])
        slope = act * (1 - act)  # sigmoid' for i, f, o
        slope[:, 2 * units:3 * units] = 1 - g * g  # tanh' for g
        upstream *= slope
        r["for"], r["dz"], r["dc"] = grad, upstream, dc * f
    return r["dz"], r["dc"]


_lstm_step = Primitive(
    "keras_lstm_step", _lstm_step_forward,
    (lambda g, r: _lstm_step_grads(g, r)[0],
     lambda g, r: _lstm_step_grads(g, r)[0] @ r["kernel"].T,
     lambda g, r: _lstm_step_grads(g, r)[1],
     lambda g, r: r["h"].T @ _lstm_step_grads(g, r)[0]))


def _zeros_bias(size: int, like: Tensor) -> Tensor:
    return Tensor._wrap(np.zeros(size, dtype=like.dtype))


def _gru_step_forward(xp, h, hm, kernel, bias):
    """One GRU step (reset_after, default activations): h' = z h + (1 - z) tanh(x_h + r r_h)."""
    units = h.shape[1]
    rec = hm @ kernel + bias
    gates = _sigmoid(xp[:, :2 * units] + rec[:, :2 * units])  # z and r
    z, r = gates[:, :units], gates[:, units:]
    rh = rec[:, 2 * units:]
    cand = np.tanh(xp[:, 2 * units:] + r * rh)
    out = cand + z * (h - cand)
    return out, {"h": h, "hm": hm, "kernel": kernel, "gates": gates, "rh": rh, "cand": cand,
                 "for": None, "dxp": None, "drec": None}


def _gru_step_grads(grad, r):
    """Gradients of the input projection and of the recurrent product, once per step."""
    if r["for"] is not grad:
        gates, cand, rh = r["gates"], r["cand"], r["rh"]
        units = cand.shape[1]
        z, rg = gates[:, :units], gates[:, units:]
        da_h = grad * (1 - z) * (1 - cand * cand)
        dxp = np.empty((grad.shape[0], 3 * units), dtype=grad.dtype)
        np.multiply(grad * (r["h"] - cand), z * (1 - z), out=dxp[:, :units])
        np.multiply(da_h * rh, rg * (1 - rg), out=dxp[:, units:2 * units])
        dxp[:, 2 * units:] = da_h
        drec = dxp.copy()
        drec[:, 2 * units:] *= rg
        r["for"], r["dxp"], r["drec"] = grad, dxp, drec
    return r["dxp"], r["drec"]


_gru_step = Primitive(
    "keras_gru_step", _gru_step_forward,
    (lambda g, r: _gru_step_grads(g, r)[0],
     lambda g, r: g * r["gates"][:, :g.shape[1]],
     lambda g, r: _gru_step_grads(g, r)[1] @ r["kernel"].T,
     lambda g, r: r["hm"].T @ _gru_step_grads(g, r)[1],
     lambda g, r: _gru_step_grads(g, r)[1].sum(axis=0)))


class GRUCell(_Cell):
    """Gated recurrent unit with Keras's defaults (gates z, r, h; `reset_after=True`).

    With reset_after the bias has shape (2, 3 * units): an input bias and a
    recurrent bias, and the reset gate multiplies `h @ U_h + b_rh`.
    """

    gates = 3

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", reset_after: bool = True,
                 **kwargs: Any):
        super().__init__(units, activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self) -> tuple:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self) -> Tensor:
        return self.bias[0] if self.reset_after else self.bias

    def step(self, projected, states, recurrent_mask):
        h = states[0]
        hm = h if recurrent_mask is None else ops.multiply(h, recurrent_mask)
        if self.reset_after and self._fusable(projected, h):
            bias = self.bias[1] if self.bias is not None else _zeros_bias(3 * self.units, h)
            h = _gru_step(projected, h, hm, self.recurrent_kernel, bias)
            return h, [h]
        xz, xr, xh = ops.split(projected, 3, axis=1)
        u = self.recurrent_kernel
        gate = self.recurrent_activation
        if self.reset_after:
            rec = ops.matmul(hm, u)
            if self.bias is not None:
                rec = ops.add(rec, self.bias[1])
            rz, rr, rh = ops.split(rec, 3, axis=1)
            z, r = gate(ops.add(xz, rz)), gate(ops.add(xr, rr))
            candidate = self.activation(ops.add(xh, ops.multiply(r, rh)))
        else:
            rzr = ops.matmul(hm, u[:, :2 * self.units])
            rz, rr = ops.split(rzr, 2, axis=1)
            z, r = gate(ops.add(xz, rz)), gate(ops.add(xr, rr))
            candidate = self.activation(ops.add(xh, ops.matmul(ops.multiply(r, hm),
                                                              u[:, 2 * self.units:])))
        h = ops.add(ops.multiply(z, h), ops.multiply(ops.subtract(1.0, z), candidate))
        return h, [h]

    def sequence(self, inputs: Tensor, states: list[Tensor], backwards: bool = False,
                 last_only: bool = False) -> tuple[Tensor | None, list] | None:
        """The whole sequence as one op (reset_after, default activations), else None;
        arguments and result as `LSTMCell.sequence`."""
        h = states[0]
        if not (self.reset_after and self._fusable(inputs, h)):
            return None
        bias = (self.bias if self.bias is not None else
                Tensor._wrap(np.zeros((2, 3 * self.units), dtype=h.dtype)))
        hs = gru_sequence(inputs, self.kernel, self.recurrent_kernel, bias, h,
                          last_only=last_only, backwards=backwards)
        return (None, [hs]) if last_only else (hs, [hs[:, -1]])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after}



class _StepInputs:
    """Per-step input projections x_t @ kernel + bias.

    Computed step by step rather than sliced out of one (batch, steps, units)
    product: slicing a recorded tensor costs a full-size gradient buffer per step
    in the backward pass (quadratic in the number of steps); per-step products
    keep the backward pass linear.
    """

    def __init__(self, cell: _Cell, inputs: Tensor):
        self.cell = cell
        self.bias = cell._input_bias() if cell.bias is not None else None
        # Slicing a tensor no tape tracks is free: take the steps from its array (a
        # symbolic tensor, while a step is traced, has none: it is sliced as a tensor).
        tape = current_tape()
        tracked = tape is not None and tape.node_for(inputs) is not None
        self.inputs = inputs if tracked or inputs._symbolic else inputs.value

    def at(self, t: int) -> Tensor:
        x_t = self.inputs[:, t]
        out = ops.matmul(x_t, self.cell.kernel)
        return out if self.bias is None else bias_add(out, self.bias)


class RNN(Layer):
    """Runs a cell over the time axis of (batch, timesteps, features) inputs.

    Args:
        cell: a SimpleRNNCell, LSTMCell or GRUCell (or a compatible cell).
        return_sequences: return every step's output (batch, timesteps, units)
            instead of the last one (batch, units).
        return_state: also return the final states: `[output, *states]`.
        go_backwards: process the sequence in reverse.
        stateful: not supported (must be False).
        unroll: accepted for compatibility (the loop is always a Python loop).
        zero_output_for_mask: with a mask, masked steps' sequence outputs are zeros
            instead of the last unmasked step's output (Bidirectional sets it when
            returning sequences, as Keras). Either way masked steps carry the state.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, cell: Layer, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, **kwargs: Any):
        kwargs.pop("time_major", None)
        super().__init__(**kwargs)
        if stateful:
            raise NotImplementedError("Stateful RNNs are not supported: pass stateful=False "
                                      "and carry the state with `initial_state`.")
        if not isinstance(cell, Layer) or "state_size" not in dir(cell):
            raise ValueError("`cell` must be a Layer with a `call(inputs, states)` method and a "
                             f"`state_size` attribute. Received: cell={cell!r}")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful, self.unroll = False, bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.input_spec = InputSpec(ndim=3)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], tuple):
            input_shape = input_shape[0]
        if input_shape[-1] is None:
            raise ValueError(f'Layer "{self.name}": the feature dimension of the inputs should '
                             f"be defined. Received: input_shape={tuple(input_shape)}")
        if not self.cell.built:
            self.cell.build((input_shape[0], input_shape[-1]))
        self.input_spec = InputSpec(ndim=3, axes={-1: input_shape[-1]})

    def call(self, inputs: Tensor, mask: Any = None, training: bool = False,
             initial_state: Any = None) -> Any:
        batch, steps, _ = inputs.shape
        cell = self.cell
        states = self._initial_states(initial_state, batch)
        if not isinstance(cell, _Cell):
            result, states = run_cell(cell, inputs, states, mask, go_backwards=self.go_backwards,
                                      return_sequences=self.return_sequences,
                                      training=training)
            return [result, *states] if self.return_state else result
        if training and cell.dropout:
            keep = _keep_mask((batch, 1, inputs.shape[-1]), cell.dropout, cell.rng())
            inputs = ops.multiply(inputs, keep)
        rec_mask = (_keep_mask((batch, cell.units), cell.recurrent_dropout, cell.rng())
                    if training and cell.recurrent_dropout else None)
        if mask is None and rec_mask is None:
            whole = self._whole_sequence(inputs, states)
            if whole is not None:
                return whole
        projected = _StepInputs(cell, inputs)
        mask = None if mask is None else ops.cast(ops.convert_to_tensor(mask), "bool")
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        outputs, output = [], None
        for t in order:
            new_output, new_states = cell.step(projected.at(t), states, rec_mask)
            if mask is None:
                output, states = new_output, new_states
            else:  # masked steps carry the state and (unless zero_output_for_mask) output
                keep = ops.expand_dims(mask[:, t], -1)
                output, states = self._apply_mask(keep, new_output, output, new_states, states)
                if self.zero_output_for_mask:
                    new_output = ops.where(keep, new_output, ops.zeros_like(new_output))
            if self.return_sequences:
                zeroed = mask is not None and self.zero_output_for_mask
                outputs.append(new_output if zeroed else output)
        result = ops.stack(outputs, axis=1) if self.return_sequences else output
        return [result, *states] if self.return_state else result

    def _whole_sequence(self, inputs: Tensor, states: list[Tensor]) -> Any:
        """The cell's one-op sequence (reversed inputs for go_backwards), if it has one."""
        sequence = getattr(self.cell, "sequence", None)
        if sequence is None:
            return None
        whole = sequence(inputs, states, backwards=self.go_backwards,
                         last_only=not self.return_sequences)
        if whole is None:
            return None
        outputs, states = whole
        result = outputs if self.return_sequences else states[0]
        return [result, *states] if self.return_state else result

    def _initial_states(self, initial_state: Any, batch: int) -> list[Tensor]:
        if initial_state is None:
            return zero_states(self.cell, batch, self.compute_dtype)
        states = list(initial_state) if isinstance(initial_state, list | tuple) else [
            initial_state]
        expected = len(zero_states(self.cell, 1, self.compute_dtype))
        if len(states) != expected:
            raise ValueError(f'Layer "{self.name}" expects {expected} initial state tensor(s). '
                             f"Received: {len(states)}")
        return [nest.map_structure(
            lambda t: ops.cast(ops.convert_to_tensor(t), self.compute_dtype), s)
                for s in states]

    @staticmethod
    def _apply_mask(keep, new_output, old_output, new_states, old_states):
        if old_output is None:
            old_output = ops.zeros_like(new_output)
        output = ops.where(keep, new_output, old_output)
        states = [ops.where(keep, n, o) for n, o in zip(new_states, old_states)]
        return output, states

    def _variables_in_compute_dtype(self) -> Any:
        """The layer's and its cell's variables (the cell's steps are not layer calls)."""
        return cells_in_compute_dtype(self, [self.cell])

    def compute_output_shape(self, input_shape: Any) -> Any:
        batch, steps = tuple(input_shape)[:2]
        units = self.cell.output_size
        out = (batch, steps, units) if self.return_sequences else (batch, units)
        if not self.return_state:
            return out
        return [out, *state_shapes(self.cell, batch)]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask if self.return_sequences else None

    @property
    def units(self) -> int:
        """The cell's number of units."""
        return self.cell.units

    def _rnn_config(self) -> dict[str, Any]:
        return {"return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll, "zero_output_for_mask": self.zero_output_for_mask}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._rnn_config(),
                "cell": {"class_name": type(self.cell).__name__,
                         "config": self.cell.get_config()}}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> RNN:
        from distflow.keras import layers

        config = dict(config)
        cell = layers.deserialize(config.pop("cell"), custom_objects)
        return super().from_config({**config, "cell": cell})


class _CellLayer(RNN):
    """A recurrent layer that builds its own cell from the constructor's arguments."""

    cell_class: type = SimpleRNNCell

    def __init__(self, units: int, *, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, **kwargs: Any):
        layer_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _LAYER_KWARGS}
        name = layer_kwargs.pop("name", None) or unique_name(to_snake_case(type(self).__name__))
        # The cell's weights are then named e.g. "lstm/lstm_cell/kernel".
        cell = self.cell_class(units, name=f"{name}/{to_snake_case(self.cell_class.__name__)}",
                               dtype=layer_kwargs.get("dtype"), **kwargs)
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, name=name, **layer_kwargs)

    def get_config(self) -> dict[str, Any]:
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        return {**Layer.get_config(self), **self._rnn_config(), **cell_config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RNN:
        return Layer.from_config.__func__(cls, config)


class SimpleRNN(_CellLayer):
    """Fully connected RNN: h_t = tanh(x_t W + h_{t-1} U + b); see `SimpleRNNCell` and `RNN`."""

    cell_class = SimpleRNNCell

    def __init__(self, units: int, activation: Any = "tanh", **kwargs: Any):
        super().__init__(units, activation=activation, **kwargs)


class LSTM(_CellLayer):
    """Long short-term memory layer; see `LSTMCell` (arguments) and `RNN` (return modes)."""

    cell_class = LSTMCell

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", **kwargs: Any):
        kwargs.pop("implementation", None)
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, **kwargs)


class GRU(_CellLayer):
    """Gated recurrent unit layer; see `GRUCell` (arguments) and `RNN` (return modes)."""

    cell_class = GRUCell

    def __init__(self, units: int, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", **kwargs: Any):
        kwargs.pop("implementation", None)
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, **kwargs)
