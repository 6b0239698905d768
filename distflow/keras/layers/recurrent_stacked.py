"""StackedRNNCells and the step loop `RNN` runs for cells other than its own three.

The loop calls `cell.call(x_t, states, training=...)` once per time step; states
may be nested (a stack's states are one entry per cell), and a masked step
carries every state forward as `RNN`'s own loop does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from distflow import array_ops, nest, ops
from distflow.keras.layers.base import Layer
from distflow.tensor import Tensor, as_array

__all__ = ["StackedRNNCells"]


def _listed(states: Any) -> list:
    return list(states) if isinstance(states, list | tuple) else [states]


def _output_size(cell: Any) -> int:
    """A cell's output width: `output_size`, else its first state's size."""
    size = getattr(cell, "output_size", None)
    if size is not None:
        return size
    return cell.state_size[0] if isinstance(cell.state_size, list | tuple) else cell.state_size


def zero_states(cell: Any, batch: int, dtype: Any) -> list:
    """A cell's initial (zero) states as a list: its own `get_initial_state`, else zeros of
    `state_size`."""
    states = _zero_states(cell, batch, dtype)
    return states if isinstance(states, list) else [states]


def state_shapes(cell: Any, batch: Any) -> list:
    """The shapes of a cell's states, nested as the states (one entry per state)."""
    sizes = cell.state_size if isinstance(cell.state_size, list | tuple) else [cell.state_size]
    return [nest.map_structure(lambda size: (batch, size), s) for s in sizes]


def _zero_states(cell: Any, batch: int, dtype: Any) -> Any:
    initial = getattr(cell, "get_initial_state", None)
    if initial is not None:
        return initial(batch)
    if isinstance(cell.state_size, int):
        return ops.zeros((batch, cell.state_size), dtype=dtype)
    return [ops.zeros((batch, size), dtype=dtype) for size in cell.state_size]


class StackedRNNCells(Layer):
    """Several RNN cells run as one: each step feeds a cell's output to the next cell.

    Args:
        cells: the cells (LSTMCell, GRUCell, SimpleRNNCell, another stack or any layer
            with `call(inputs, states)` and `state_size`), bottom first.
        **kwargs: base `Layer` arguments.

    The states are one entry per cell (a list for cells with several states).
    """

    def __init__(self, cells: list, **kwargs: Any):
        super().__init__(**kwargs)
        for cell in cells:
            if "call" not in dir(cell):
                raise ValueError("All cells must have a `call` method. Received cell without "
                                 f"a `call` method: {cell}")
            if "state_size" not in dir(cell):
                raise ValueError("All cells must have a `state_size` attribute. Received cell "
                                 f"without a `state_size`: {cell}")
        self.cells = list(cells)

    @property
    def state_size(self) -> list:
        """Each cell's `state_size`, bottom first."""
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self) -> int:
        """The top cell's output width."""
        return _output_size(self.cells[-1])

    def build(self, input_shape: Any) -> None:
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell.build(tuple(input_shape))
                cell.built = True
            input_shape = (input_shape[0], _output_size(cell))

    def get_initial_state(self, batch_size: int) -> list:
        """Each cell's zero states."""
        return [_zero_states(cell, batch_size, self.compute_dtype) for cell in self.cells]

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Tensor, Any]:
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            nested = isinstance(cell_states, list | tuple)
            inputs, cell_states = cell.call(inputs, _listed(cell_states), training=training)
            if len(cell_states) == 1 and not nested:
                cell_states = cell_states[0]
            new_states.append(cell_states)
        return inputs, new_states[0] if len(new_states) == 1 else new_states

    def _variables_in_compute_dtype(self) -> Any:
        return cells_in_compute_dtype(self, self.cells)

    def get_config(self) -> dict[str, Any]:
        from distflow.keras import layers

        return {**super().get_config(), "cells": [layers.serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> StackedRNNCells:
        from distflow.keras import layers

        config = dict(config)
        cells = [layers.deserialize(c, custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)


@contextlib.contextmanager
def cells_in_compute_dtype(layer: Layer, cells: list) -> Iterator[None]:
    """A layer's and its cells' variables in the compute dtype for the time of a call
    (under a mixed policy), as `Layer._variables_in_compute_dtype`: cells' steps are
    `call`s, not layer calls, so the layer running them casts their variables."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(Layer._variables_in_compute_dtype(layer))
        for cell in cells:
            if isinstance(cell, Layer):
                stack.enter_context(cell._variables_in_compute_dtype())
        yield


def _masked(keep: Tensor, new: Any, old: Any) -> Any:
    return nest.map_structure(lambda n, o: ops.where(keep, n, o), new, old)


def run_cell(cell: Any, inputs: Tensor, states: Any, mask: Any, *, go_backwards: bool,
             return_sequences: bool, training: bool) -> tuple[Tensor, Any]:
    """Runs `cell` over axis 1 of `inputs`: (the last output or all of them, final states).

    A masked step (mask False) keeps the previous output and states; its sequence output
    is zero, as Keras's.
    """
    steps = inputs.shape[1]
    mask = None if mask is None else np.asarray(as_array(mask), bool)  # no graph form: eager
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outputs, output = [], None
    for t, x_t in zip(order, _steps(inputs, order)):
        new_output, new_states = cell.call(x_t, states, training=training)
        if mask is None:
            output, states = new_output, new_states
        else:
            keep = Tensor._wrap(mask[:, t].reshape((-1,) + (1,) * (new_output.ndim - 1)))
            old = ops.zeros_like(new_output) if output is None else output
            output, states = ops.where(keep, new_output, old), _masked(keep, new_states,
                                                                        states)
            new_output = ops.where(keep, new_output, ops.zeros_like(new_output))
        outputs.append(new_output if mask is not None else output)
    result = ops.stack(outputs, axis=1) if return_sequences else output
    return result, states


def _steps(inputs: Tensor, order: range) -> list[Tensor]:
    """The time steps in `order`, unstacked once (linear-cost backward pass)."""
    columns = array_ops.unstack(inputs, axis=1)
    return [columns[t] for t in order]
