"""`EinsumDense`: a dense layer written as an einsum between the inputs and a kernel.

`EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")` computes
`einsum(equation, inputs, kernel) + bias`; the kernel's shape comes from the
equation (an index of the input takes the input's size, any other the size
`output_shape` gives it), as in Keras. Equations may elide leading or trailing
input axes with "...". The einsum is a private primitive of this module: its VJP
for each operand is the einsum of the output gradient with the other operand.
"""

from __future__ import annotations

import re
import string
from typing import Any

import numpy as np

from distflow.keras import activations, initializers, regularizers
from distflow.keras.layers.base import Layer
from distflow.keras.layers.core import bias_add, serialize_or_none
from distflow.ops import Primitive
from distflow.tensor import Tensor

_PLAIN = re.compile(r"^([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$")
_LEFT = re.compile(r"^\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)$")
_RIGHT = re.compile(r"^([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]{2,})\.\.\.$")


def _grad_for(g: np.ndarray, other: np.ndarray, specs: tuple[str, str, str],
              shape: tuple) -> np.ndarray:
    """d(einsum)/d(target) applied to g; specs = (target, other, output) subscripts."""
    target, other_spec, out = specs
    kept = "".join(c for c in target if c in out or c in other_spec)
    grad = np.einsum(f"{out},{other_spec}->{kept}", g, other)
    if kept != target:  # indices summed out of the target alone: broadcast back
        grad = grad.reshape([shape[i] if c in kept else 1 for i, c in enumerate(target)])
        grad = np.broadcast_to(grad, shape)
    return grad


def _forward(a: np.ndarray, b: np.ndarray, specs: tuple[str, str, str]) -> tuple:
    sa, sb, so = specs
    return np.einsum(f"{sa},{sb}->{so}", a, b), (a, b, specs)


_einsum = Primitive(
    "keras_einsum_dense",
    _forward,
    (lambda g, r: _grad_for(g, r[1], (r[2][0], r[2][1], r[2][2]), r[0].shape),
     lambda g, r: _grad_for(g, r[0], (r[2][1], r[2][0], r[2][2]), r[1].shape)))


def _explicit(equation: str, ndim: int) -> tuple[str, str, str]:
    """The equation's subscripts with "..." replaced by unused letters for `ndim` inputs."""
    lhs, out = equation.split("->")
    a, b = lhs.split(",")
    if "..." not in equation:
        return a, b, out
    free = [c for c in string.ascii_letters if c not in equation]
    fill = "".join(free[:ndim - (len(a) - 3)])
    return a.replace("...", fill), b.replace("...", fill), out.replace("...", fill)


def _split(equation: str) -> tuple[tuple[str, str, str], bool]:
    """(input, kernel, output) subscripts and whether leading axes are elided."""
    for pattern, left in ((_PLAIN, False), (_LEFT, True), (_RIGHT, False)):
        match = pattern.match(equation)
        if match:
            return match.groups(), left
    raise ValueError(f"Invalid einsum equation '{equation}'. Equations must be in the form "
                     "[X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]....")


def _full_output_shape(input_shape: tuple, output_shape: list, elided: int,
                       left: bool) -> list:
    full = [input_shape[0], *output_shape]
    if elided > 0 and left:
        for i in range(1, elided):
            full.insert(1, input_shape[i])
    elif elided > 0:
        full += list(input_shape[len(input_shape) - elided:])
    return full


def analyze(equation: str, bias_axes: str | None, input_shape: tuple,
            output_shape: Any) -> tuple[list, list | None, list]:
    """(kernel shape, bias shape or None, full output shape), by Keras's rules."""
    (spec_in, spec_w, spec_out), left = _split(equation)
    elided = len(input_shape) - len(spec_in)
    shape = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    full = _full_output_shape(tuple(input_shape), shape, elided, left)
    if left:
        in_map = {c: i + elided - len(input_shape) for i, c in enumerate(spec_in)}
        out_map = {c: i + elided for i, c in enumerate(spec_out)}
    else:
        in_map = {c: i for i, c in enumerate(spec_in)}
        out_map = {c: i for i, c in enumerate(spec_out)}
    for c in spec_out:
        if c not in spec_in and c not in spec_w:
            raise ValueError(f"Dimension '{c}' was specified in the output '{spec_out}' but "
                             f"has no corresponding dimension in the input spec '{spec_in}' "
                             f"or weight spec '{spec_w}'")
    kernel = []
    for c in spec_w:
        if c in out_map:
            kernel.append(full[out_map[c]])
        elif c in in_map:
            kernel.append(input_shape[in_map[c]])
        else:
            raise ValueError(f"Weight dimension '{c}' did not have a match in either the "
                             f"input spec '{spec_in}' or the output spec '{spec_out}'.")
    return kernel, _bias_shape(bias_axes, spec_out, full, elided, left), full


def _bias_shape(bias_axes: str | None, spec_out: str, full: list, elided: int,
                left: bool) -> list | None:
    if bias_axes is None:
        return None
    for c in bias_axes:
        if c not in spec_out:
            raise ValueError(f"Bias dimension '{c}' was requested, but is not part of the "
                             f"output spec '{spec_out}'")
    offset = elided if left else 0
    sizes = {c: full[i + offset] for i, c in enumerate(spec_out)}
    first = min(spec_out.find(c) for c in bias_axes)
    shape = [sizes[c] if c in bias_axes else 1 for c in spec_out[first:]]
    return shape + ([1] * elided if not left and elided > 0 else [])


class EinsumDense(Layer):
    """A dense layer as an einsum (see the module docstring).

    Args:
        equation: "ab,bc->ac" style (with optional "..." on the input and output).
        output_shape: the output's shape without the batch axis and the elided axes
            (an int for one axis; None entries take the input's size).
        activation: activation name or callable.
        bias_axes: output letters the bias varies along (None: no bias).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer:
            as for Dense; `kernel_constraint`/`bias_constraint` too (base `Layer`).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, equation: str, output_shape: Any, activation: Any = None,
                 bias_axes: str | None = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 bias_regularizer: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        _split(equation)  # validates now, as Keras does at build
        self.equation = equation
        self.partial_output_shape = [output_shape] if isinstance(output_shape, int) else \
            list(output_shape)
        self.activation = activations.get(activation)
        self.bias_axes = bias_axes
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape: Any) -> None:
        kernel, bias, full = analyze(self.equation, self.bias_axes, tuple(input_shape),
                                     self.partial_output_shape)
        self.full_output_shape = tuple(full)
        self.kernel = self.add_weight("kernel", tuple(kernel), self.kernel_initializer,
                                      self.kernel_regularizer)
        self.bias = None if bias is None else self.add_weight(
            "bias", tuple(bias), self.bias_initializer, self.bias_regularizer)

    def call(self, inputs: Tensor) -> Tensor:
        out = _einsum(inputs, self.kernel, specs=_explicit(self.equation, inputs.ndim))
        if self.bias is not None:
            out = bias_add(out, self.bias) if self.bias.ndim == 1 else out + self.bias
        return self.activation(out)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(analyze(self.equation, self.bias_axes, tuple(input_shape),
                             self.partial_output_shape)[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "equation": self.equation,
                "output_shape": self.partial_output_shape, "bias_axes": self.bias_axes,
                "activation": activations.serialize(self.activation),
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": serialize_or_none(regularizers, self.kernel_regularizer),
                "bias_regularizer": serialize_or_none(regularizers, self.bias_regularizer)}


__all__ = ["EinsumDense"]
