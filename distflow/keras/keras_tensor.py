"""The symbolic tensor of the functional API (`KerasTensor`) and the call it came from (`Node`).

Below the layers: `Layer.__call__` recognises a `KerasTensor` input and records a
`Node` (`keras/symbolic.py`) instead of computing. Arithmetic on KerasTensors
(`x + y`, `2 * x`, `-x`) records an operator layer; that layer is a `Layer`
(`functional.TensorOp`), so it is plugged in from above by `register_operator`
when `distflow.keras.functional` is imported (every KerasTensor starts at an
`Input` from that module, so it always is by then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras.tree import flatten, map_structure
from distflow.tensor import unique_name

__all__ = ["KerasTensor", "Node", "register_operator"]

_OPERATOR: list[Callable[[str, Any, Any], Any]] = []


def register_operator(apply_op: Callable[[str, Any, Any], Any]) -> None:
    """Installs `apply_op(op, left, right)`, which KerasTensor operators call.

    `op` is 'add', 'subtract', 'multiply', 'divide', 'power', 'matmul' or
    'negative' (then `right` is None); it returns the result's KerasTensor.
    """
    _OPERATOR[:] = [apply_op]


def _apply_op(op: str, left: Any, right: Any) -> KerasTensor:
    if not _OPERATOR:
        raise RuntimeError("KerasTensor arithmetic needs the functional API: import "
                           "distflow.keras.functional (keras.Input) first.")
    return _OPERATOR[0](op, left, right)


class KerasTensor:
    """A symbolic tensor: the shape (batch dimension None) and dtype of a future value.

    Attributes:
        shape: tuple of dims, None where unknown.
        dtype: dtype name ('float32').
        name: a readable name.
    """

    def __init__(self, shape: tuple, dtype: str = "float32", name: str | None = None,
                 node: Node | None = None, index: int = 0):
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = "string" if str(getattr(dtype, "name", dtype)) in ("string", "str") \
            else str(np.dtype(dtype).name)
        self.name = name or unique_name("keras_tensor")
        self._node = node
        self._index = index

    @property
    def ndim(self) -> int:
        """Rank, including the batch dimension."""
        return len(self.shape)

    @property
    def _keras_history(self) -> tuple[Any, int, int]:
        """(layer, node index, tensor index), as Keras names it."""
        node = self._node
        return node.layer, node.layer._inbound_nodes.index(node), self._index

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __len__(self) -> int:
        raise TypeError("A symbolic KerasTensor has no length: its batch size is unknown "
                        "until the model is called on data.")

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self!r} is symbolic and cannot be converted to a NumPy array. "
                        "Build a Model(inputs, outputs) and call it on data instead.")

    # Operators record a `TensorOp` layer, so `x + y` or `2 * x` work in functional code.
    def __add__(self, other: Any) -> KerasTensor:
        return _apply_op("add", self, other)

    def __radd__(self, other: Any) -> KerasTensor:
        return _apply_op("add", other, self)

    def __sub__(self, other: Any) -> KerasTensor:
        return _apply_op("subtract", self, other)

    def __rsub__(self, other: Any) -> KerasTensor:
        return _apply_op("subtract", other, self)

    def __mul__(self, other: Any) -> KerasTensor:
        return _apply_op("multiply", self, other)

    def __rmul__(self, other: Any) -> KerasTensor:
        return _apply_op("multiply", other, self)

    def __truediv__(self, other: Any) -> KerasTensor:
        return _apply_op("divide", self, other)

    def __rtruediv__(self, other: Any) -> KerasTensor:
        return _apply_op("divide", other, self)

    def __pow__(self, other: Any) -> KerasTensor:
        return _apply_op("power", self, other)

    def __matmul__(self, other: Any) -> KerasTensor:
        return _apply_op("matmul", self, other)

    def __neg__(self) -> KerasTensor:
        return _apply_op("negative", self, None)


class Node:
    """One call of `layer` on symbolic inputs.

    Attributes:
        layer: the layer called.
        call_inputs: the first positional argument (a KerasTensor or a structure of them).
        call_args / call_kwargs: the other arguments (KerasTensors allowed inside).
        outputs: the output KerasTensor(s), in the structure the layer returned.
    """

    def __init__(self, layer: Any, call_inputs: Any, call_args: tuple = (),
                 call_kwargs: dict | None = None):
        self.layer = layer
        self.call_inputs = call_inputs
        self.call_args = tuple(call_args)
        self.call_kwargs = dict(call_kwargs or {})
        self.outputs: Any = None
        self.input_tensors = [x for x in flatten([call_inputs, list(self.call_args),
                                                self.call_kwargs])
                              if isinstance(x, KerasTensor)]
        layer.__dict__.setdefault("_inbound_nodes", []).append(self)

    @property
    def flat_outputs(self) -> list[KerasTensor]:
        """The output tensors in order."""
        return flatten(self.outputs)

    @property
    def is_input(self) -> bool:
        """True for the node of an `InputLayer`: the only node with no inputs at all."""
        return self.call_inputs is None and not self.call_args and not self.call_kwargs

    def run(self, values: dict[int, Any]) -> list[Any]:
        """Calls the layer on the values of its input tensors; returns the flat outputs."""
        def resolve(x: Any) -> Any:
            return values[id(x)] if isinstance(x, KerasTensor) else x
        inputs = map_structure(resolve, self.call_inputs)
        args = [map_structure(resolve, a) for a in self.call_args]
        kwargs = {k: map_structure(resolve, v) for k, v in self.call_kwargs.items()}
        return flatten(self.layer(inputs, *args, **kwargs))
