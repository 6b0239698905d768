"""The functional API: `Input`, symbolic `KerasTensor`s and the graph of layer calls.

Calling a layer on `KerasTensor`s computes nothing: `symbolic_call` builds the
layer, infers the output shapes and records a `Node` (this layer applied to
those tensors). `Model(inputs, outputs)` walks the nodes back from its outputs
(`GraphNetwork`) and, when called on data, replays them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras.layers.base import Layer, _flat, _map
from distflow.tensor import Tensor, unique_name

_PASSTHROUGH_KWARGS = frozenset({"training", "mask"})


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
        self.dtype = str(np.dtype(dtype).name)
        self.name = name or unique_name("keras_tensor")
        self._node = node
        self._index = index

    @property
    def ndim(self) -> int:
        """Rank, including the batch dimension."""
        return len(self.shape)

    @property
    def _keras_history(self) -> tuple[Layer, int, int]:
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
        return TensorOp("negative")(self)


class Node:
    """One call of `layer` on symbolic inputs.

    Attributes:
        layer: the layer called.
        call_inputs: the first positional argument (a KerasTensor or a structure of them).
        call_args / call_kwargs: the other arguments (KerasTensors allowed inside).
        outputs: the output KerasTensor(s), in the structure the layer returned.
    """

    def __init__(self, layer: Layer, call_inputs: Any, call_args: tuple = (),
                 call_kwargs: dict | None = None):
        self.layer = layer
        self.call_inputs = call_inputs
        self.call_args = tuple(call_args)
        self.call_kwargs = dict(call_kwargs or {})
        self.outputs: Any = None
        self.input_tensors = [x for x in _flat([call_inputs, list(self.call_args),
                                                self.call_kwargs])
                              if isinstance(x, KerasTensor)]
        layer.__dict__.setdefault("_inbound_nodes", []).append(self)

    @property
    def flat_outputs(self) -> list[KerasTensor]:
        """The output tensors in order."""
        return _flat(self.outputs)

    @property
    def is_input(self) -> bool:
        """True for the node of an `InputLayer` (it has no inputs)."""
        return isinstance(self.layer, InputLayer)

    def run(self, values: dict[int, Any]) -> list[Any]:
        """Calls the layer on the values of its input tensors; returns the flat outputs."""
        def resolve(x: Any) -> Any:
            return values[id(x)] if isinstance(x, KerasTensor) else x
        inputs = _map(resolve, self.call_inputs)
        args = [_map(resolve, a) for a in self.call_args]
        kwargs = {k: _map(resolve, v) for k, v in self.call_kwargs.items()}
        return _flat(self.layer(inputs, *args, **kwargs))


# --------------------------------------------------------------------------- operators


_BINARY_OPS = ("add", "subtract", "multiply", "divide", "power", "matmul")


class TensorOp(Layer):
    """An arithmetic operator applied to KerasTensors (`x + y`, `2 * x`, `-x`, `x @ y`).

    Args:
        op: one of 'add', 'subtract', 'multiply', 'divide', 'power', 'matmul', 'negative'.
        constant: the other operand when it is a number (or a list of numbers).
        reverse: the constant is the left operand (`2 - x`).
    """

    def __init__(self, op: str, constant: Any = None, reverse: bool = False, **kwargs: Any):
        if op not in (*_BINARY_OPS, "negative"):
            raise ValueError(f"Unknown operator {op!r}. Supported: {[*_BINARY_OPS, 'negative']}")
        super().__init__(**kwargs)
        self.op, self.reverse = op, bool(reverse)
        self.constant = constant.tolist() if isinstance(constant, np.ndarray) else constant

    def call(self, inputs: Any) -> Any:
        from distflow import ops

        fn = getattr(ops, self.op)
        if self.op == "negative":
            return fn(inputs)
        if self.constant is None:
            left, right = inputs
        else:
            left, right = inputs, ops.convert_to_tensor(np.asarray(self.constant, self.dtype))
        return fn(right, left) if self.reverse else fn(left, right)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "op": self.op, "constant": self.constant,
                "reverse": self.reverse}


def _apply_op(op: str, left: Any, right: Any) -> KerasTensor:
    if isinstance(left, KerasTensor) and isinstance(right, KerasTensor):
        return TensorOp(op)([left, right])
    if isinstance(left, KerasTensor):
        return TensorOp(op, constant=_constant(right))(left)
    return TensorOp(op, constant=_constant(left), reverse=True)(right)


def _constant(value: Any) -> Any:
    if isinstance(value, int | float | np.generic):
        return float(value)
    if isinstance(value, np.ndarray | list | tuple):
        return np.asarray(value, dtype=np.float64).tolist()
    raise TypeError(f"Unsupported operand of type {type(value).__name__} for a KerasTensor: "
                    "use numbers, arrays or other KerasTensors.")


# --------------------------------------------------------------------------- Input


class InputLayer(Layer):
    """The entry point of a model: holds the input's shape and dtype.

    Args:
        shape: input shape without the batch dimension (`input_shape` is an alias).
        batch_size: optional fixed batch size.
        dtype: input dtype (default 'float32').
        name: layer name (default 'input_layer', made unique).
        batch_shape: full shape with the batch dimension (instead of shape/batch_size).
        sparse / ragged: only False is supported.
    """

    def __init__(self, shape: Any = None, batch_size: int | None = None, dtype: Any = None,
                 name: str | None = None, batch_shape: Any = None, sparse: bool | None = None,
                 ragged: bool | None = None, input_shape: Any = None,
                 batch_input_shape: Any = None, input_tensor: Any = None, **kwargs: Any):
        if sparse or ragged:
            raise ValueError("Sparse and ragged inputs are not supported. "
                             f"Received: sparse={sparse}, ragged={ragged}")
        if input_tensor is not None:
            raise ValueError("`input_tensor` is not supported; call the layers on the "
                             "Input's tensor instead.")
        batch_shape = batch_shape if batch_shape is not None else batch_input_shape
        shape = shape if shape is not None else input_shape
        super().__init__(name=name or unique_name("input_layer"), dtype=dtype, **kwargs)
        self.batch_shape = _batch_shape(shape, batch_size, batch_shape)
        self.built = True
        self._build_input_shape = self.batch_shape
        node = Node(self, None)
        node.outputs = KerasTensor(self.batch_shape, self.dtype, name=self.name, node=node)
        self.output = node.outputs

    @property
    def input_shape(self) -> tuple:
        """The full input shape, batch dimension first."""
        return self.batch_shape

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "name": self.name,
                "sparse": False, "ragged": False}


def _batch_shape(shape: Any, batch_size: int | None, batch_shape: Any) -> tuple:
    if batch_shape is not None:
        return tuple(None if s is None else int(s) for s in batch_shape)
    if shape is None:
        raise ValueError("An Input needs a `shape` (without the batch dimension), e.g. "
                         "Input(shape=(784,)). Received: shape=None")
    if isinstance(shape, int | np.integer):
        shape = (int(shape),)
    dims = tuple(None if s is None else int(s) for s in shape)
    if any(s is not None and s < 0 for s in dims):
        raise ValueError(f"`shape` dimensions must be non-negative. Received: shape={shape}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
        raise ValueError(f"`batch_size` must be a positive int. Received: "
                         f"batch_size={batch_size!r}")
    return (batch_size, *dims)


def Input(shape: Any = None, batch_size: int | None = None, dtype: Any = None,
          name: str | None = None, batch_shape: Any = None, sparse: bool | None = None,
          ragged: bool | None = None, tensor: Any = None, **kwargs: Any) -> KerasTensor:
    """A symbolic model input: `x = Input(shape=(784,))`, then `y = Dense(10)(x)`.

    Args:
        shape: input shape without the batch dimension.
        batch_size: optional fixed batch size.
        dtype: input dtype (default 'float32'; 'int32' for token ids).
        name: name of the input (also the key of this input in dict data).
        batch_shape: full shape including the batch dimension.
        sparse / ragged / tensor: accepted for compatibility; only the defaults work.
        **kwargs: `batch_input_shape` (Keras 2 alias of `batch_shape`).

    Returns:
        The `KerasTensor` to call layers on.
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                       batch_shape=batch_shape if batch_shape is not None
                       else kwargs.pop("batch_input_shape", None),
                       sparse=sparse, ragged=ragged, input_tensor=tensor, **kwargs)
    return layer.output


# --------------------------------------------------------------------------- symbolic calls


def symbolic_call(layer: Layer, inputs: Any, *args: Any, **kwargs: Any) -> Any:
    """Applies `layer` to KerasTensors: builds it, infers output shapes, records the node.

    Called by `Layer.__call__` when any input is a `KerasTensor`.

    Returns:
        New KerasTensor(s), in the structure the layer's `call` returns.
    """
    layer._maybe_build(inputs)
    layer._check_inputs(inputs)
    specs = _output_specs(layer, inputs, args, kwargs)
    node = Node(layer, inputs, args, kwargs)
    made: list[KerasTensor] = []

    def make(spec: tuple[tuple, str]) -> KerasTensor:
        shape, dtype = spec
        made.append(KerasTensor(shape, dtype, name=unique_name(layer.name + "_output"),
                                node=node, index=len(made)))
        return made[-1]
    node.outputs = _map_specs(make, specs)
    return node.outputs


def _map_specs(fn: Callable, specs: Any) -> Any:
    if isinstance(specs, _Spec):
        return fn(specs)
    if isinstance(specs, dict):
        return {k: _map_specs(fn, v) for k, v in specs.items()}
    return type(specs)(_map_specs(fn, s) for s in specs)


class _Spec(tuple):
    """(shape, dtype) of one output: a tuple subclass so structures can tell it apart."""


def _output_specs(layer: Layer, inputs: Any, args: tuple, kwargs: dict) -> Any:
    custom = type(layer).compute_output_shape is not Layer.compute_output_shape
    if custom and not args and set(kwargs) <= _PASSTHROUGH_KWARGS:
        try:
            shapes = layer.compute_output_shape(_map(lambda t: t.shape, inputs))
            dtype = _guess_dtype(layer, inputs)
            return _shapes_to_specs(shapes, dtype)
        except (NotImplementedError, TypeError, ValueError, IndexError, KeyError):
            pass  # fall back to running the layer
    return _probe_specs(layer, inputs, args, kwargs)


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple | list) and all(
        s is None or isinstance(s, int | np.integer) for s in x)


def _shapes_to_specs(shapes: Any, dtype: str) -> Any:
    if _is_shape(shapes):
        return _Spec((tuple(None if s is None else int(s) for s in shapes), dtype))
    if isinstance(shapes, dict):
        return {k: _shapes_to_specs(v, dtype) for k, v in shapes.items()}
    return [_shapes_to_specs(s, dtype) for s in shapes]


def _guess_dtype(layer: Layer, inputs: Any) -> str:
    """Float inputs (or a layer with weights, e.g. Embedding) give the layer's dtype."""
    first = _flat(inputs)[0]
    if np.dtype(first.dtype).kind == "f" or layer.weights:
        return layer.dtype
    return first.dtype


def _probe_specs(layer: Layer, inputs: Any, args: tuple, kwargs: dict) -> Any:
    """Runs the layer on zeros; dims that change when unknown dims change are unknown."""
    flat_in = [t for t in _flat([inputs, list(args), kwargs]) if isinstance(t, KerasTensor)]
    has_unknown = any(s is None for t in flat_in for s in t.shape)
    first = _run_on_zeros(layer, inputs, args, kwargs, fill=1)
    second = _run_on_zeros(layer, inputs, args, kwargs, fill=2) if has_unknown else first
    flat_a, flat_b = _flat(first), _flat(second)
    specs = [_Spec((tuple(a if a == b else None for a, b in zip(x.shape, y.shape)),
                    x.dtype.name)) if x.ndim == y.ndim else _Spec(((None,) * x.ndim, x.dtype.name))
             for x, y in zip(flat_a, flat_b)]
    it = iter(specs)
    return _map(lambda _: next(it), first)


def _run_on_zeros(layer: Layer, inputs: Any, args: tuple, kwargs: dict, fill: int) -> Any:
    def zeros(x: Any) -> Any:
        if not isinstance(x, KerasTensor):
            return x
        return Tensor._wrap(np.zeros([fill if s is None else s for s in x.shape], x.dtype))
    kwargs = {k: _map(zeros, v) for k, v in kwargs.items()}
    kwargs.setdefault("training", False)
    try:
        with np.errstate(all="ignore"):  # zeros may divide by zero; only shapes matter
            return layer(_map(zeros, inputs), *[_map(zeros, a) for a in args], **kwargs)
    except Exception as exc:
        shapes = _map(lambda t: t.shape if isinstance(t, KerasTensor) else t, inputs)
        raise type(exc)(f"Exception encountered when calling layer '{layer.name}' "
                        f"({type(layer).__name__}) on symbolic inputs of shape {shapes}: "
                        f"{exc}") from exc


# --------------------------------------------------------------------------- graphs


class GraphNetwork:
    """The nodes between some input KerasTensors and some outputs, in execution order.

    Args:
        inputs: KerasTensor, list or dict of them.
        outputs: KerasTensor, list or dict of them.

    Raises:
        ValueError: an output depends on a tensor that is not derived from `inputs`
            ("Graph disconnected"), or inputs are not KerasTensors.
    """

    def __init__(self, inputs: Any, outputs: Any):
        self.inputs, self.outputs = inputs, outputs
        self.flat_inputs: list[KerasTensor] = _flat(inputs)
        self.flat_outputs: list[KerasTensor] = _flat(outputs)
        for what, tensors in (("inputs", self.flat_inputs), ("outputs", self.flat_outputs)):
            bad = [t for t in tensors if not isinstance(t, KerasTensor)]
            if bad or not tensors:
                raise ValueError(f"All model {what} must be KerasTensors (from keras.Input or "
                                 f"from calling layers on them). Received: {what}={bad or tensors}")
        self.nodes = self._sort_nodes()
        self.layers = self._layers_in_order()

    def _sort_nodes(self) -> list[Node]:
        input_ids = {id(t) for t in self.flat_inputs}
        order: list[Node] = []
        done: set[int] = set()
        reached: list[str] = []

        def visit(t: KerasTensor, path: tuple) -> None:
            if id(t) in input_ids:
                return
            node = t._node
            if node is None or node.is_input:
                raise ValueError(
                    f"Graph disconnected: cannot obtain value for tensor {t} at layer "
                    f'"{path[-1] if path else "?"}". The following previous layers were '
                    f"accessed without issue: {reached}. Pass this tensor's Input to the "
                    "Model's `inputs`.")
            if id(node) in done:
                return
            for parent in node.input_tensors:
                visit(parent, (*path, node.layer.name))
            done.add(id(node))
            order.append(node)
            reached.append(node.layer.name)

        for t in self.flat_outputs:
            visit(t, ())
        return order

    def _layers_in_order(self) -> list[Layer]:
        layers: list[Layer] = []
        seen: set[int] = set()
        sources = [t._node.layer for t in self.flat_inputs if t._node is not None
                   and t._node.is_input]
        for layer in sources + [n.layer for n in self.nodes]:
            if id(layer) not in seen:
                seen.add(id(layer))
                layers.append(layer)
        names = [layer.name for layer in layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"The name {duplicates[0]!r} is used {names.count(duplicates[0])} "
                             f"times in the model. All layer names should be unique.")
        return layers

    def run(self, flat_values: list[Any]) -> Any:
        """Replays the graph on values given in the order of `flat_inputs`."""
        values = {id(t): v for t, v in zip(self.flat_inputs, flat_values)}
        for node in self.nodes:
            for t, v in zip(node.flat_outputs, node.run(values)):
                values[id(t)] = v
        return _map(lambda t: values[id(t)], self.outputs)
