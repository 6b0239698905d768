"""The functional API: `Input`, the graph of layer calls and its (de)serialization.

Calling a layer on `KerasTensor`s computes nothing: `symbolic_call` builds the
layer, infers the output shapes and records a `Node` (this layer applied to
those tensors). `Model(inputs, outputs)` walks the nodes back from its outputs
(`GraphNetwork`) and, when called on data, replays them in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras import saving
from distflow.keras.keras_tensor import KerasTensor, Node, register_operator
from distflow.keras.layers import register_layer
from distflow.keras.layers.base import Layer
from distflow.keras.layers.pooling import conv_then_pool, pools_conv_output
from distflow.keras.tree import flatten, map_structure
from distflow.tensor import unique_name

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
    """The KerasTensor of `left <op> right` (`-left` for 'negative'), as a `TensorOp` call."""
    if op == "negative":
        return TensorOp(op)(left)
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
        self.flat_inputs: list[KerasTensor] = flatten(inputs)
        self.flat_outputs: list[KerasTensor] = flatten(outputs)
        for what, tensors in (("inputs", self.flat_inputs), ("outputs", self.flat_outputs)):
            bad = [t for t in tensors if not isinstance(t, KerasTensor)]
            if bad or not tensors:
                raise ValueError(f"All model {what} must be KerasTensors (from keras.Input or "
                                 f"from calling layers on them). Received: {what}={bad or tensors}")
        self.nodes = self._sort_nodes()
        self.layers = self._layers_in_order()
        self.conv_pools = _conv_pool_pairs(self.nodes, self.flat_outputs)

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
        done: set[int] = set()
        for node in self.nodes:
            if id(node) in done:
                continue
            pool = self.conv_pools.get(id(node))
            fused = None if pool is None else conv_then_pool(
                node.layer, pool.layer, values[id(node.input_tensors[0])])
            if fused is not None:  # the pool's output; the conv's is read by nothing else
                node, outputs = pool, [fused]
                done.add(id(pool))
            else:
                outputs = node.run(values)
            for t, v in zip(node.flat_outputs, outputs):
                values[id(t)] = v
        return map_structure(lambda t: values[id(t)], self.outputs)


def _conv_pool_pairs(nodes: list[Node], outputs: list[KerasTensor]) -> dict[int, Node]:
    """id(conv node) -> the max-pooling node that runs with it as one op: the pool is
    the only reader of the conv's one output, which is not a model output, and the
    layers are a pair `pools_conv_output` accepts (each called on one tensor alone)."""
    readers: dict[int, int] = {}
    for node in nodes:
        for t in node.input_tensors:
            readers[id(t)] = readers.get(id(t), 0) + 1
    ours, exposed = {id(n) for n in nodes}, {id(t) for t in outputs}
    pairs = {}
    for node in nodes:
        conv = _single_input_node(node)
        if conv is not None and id(conv) in ours and _single_input_node(conv) is not None \
                and readers[id(node.input_tensors[0])] == 1 and \
                id(node.input_tensors[0]) not in exposed and len(conv.flat_outputs) == 1 \
                and pools_conv_output(conv.layer, node.layer):
            pairs[id(conv)] = node
    return pairs


def _single_input_node(node: Node) -> Node | None:
    """The node producing `node`'s input when it is called on one tensor and nothing
    else (no further arguments), else None."""
    if node.call_args or node.call_kwargs or not isinstance(node.call_inputs, KerasTensor):
        return None
    return node.call_inputs._node


# --------------------------------------------------------------------------- (de)serialization


def _node_keys(model: Any) -> dict[int, tuple[str, int]]:
    """id(node) -> (layer name, index of the node among this model's calls of that layer)."""
    keys: dict[int, tuple[str, int]] = {}
    counts: dict[str, int] = {}
    sources = [t._node for t in model._graph.flat_inputs]
    for node in sources + model._graph.nodes:
        if id(node) in keys:
            continue
        name = node.layer.name
        keys[id(node)] = (name, counts.get(name, 0))
        counts[name] = counts.get(name, 0) + 1
    return keys


def tensor_specs(model: Any) -> dict[tuple[str, int, int], tuple[list, str]]:
    """`(layer name, node, tensor) -> (shape, dtype)` of every tensor of a functional model,
    keyed as `functional_config` refers to them (Keras 3's config records both)."""
    specs, keys = {}, _node_keys(model)
    for node in [t._node for t in model._graph.flat_inputs] + model._graph.nodes:
        name, index = keys[id(node)]
        for i, tensor in enumerate(node.flat_outputs):
            shape = [None if d is None else int(d) for d in tensor.shape]
            specs[(name, index, i)] = (shape, str(tensor.dtype))
    return specs


def _encode(value: Any, keys: dict[int, tuple[str, int]]) -> Any:
    if isinstance(value, KerasTensor):
        if id(value._node) not in keys:
            raise ValueError(f"Cannot serialize the model: tensor {value} is not produced inside "
                             "it (model inputs must come from keras.Input).")
        name, index = keys[id(value._node)]
        return {"__keras_tensor__": [name, index, value._index]}
    if isinstance(value, dict):
        return {str(k): _encode(v, keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, keys) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Cannot serialize the call argument {value!r} of type "
                    f"{type(value).__name__} into the model config (only tensors, numbers, "
                    "strings and lists of them).")


def functional_config(model: Any) -> dict[str, Any]:
    """A functional model's config: its layers, each with the calls (nodes) that feed it."""
    keys = _node_keys(model)
    layers = []
    for layer in model.layers:
        nodes = [n for n in model._graph.nodes if n.layer is layer]
        layers.append({**saving.serialize_layer(layer), "name": layer.name,
                       "inbound_nodes": [
                           {"args": _encode([n.call_inputs, *n.call_args], keys),
                            "kwargs": _encode(n.call_kwargs, keys)} for n in nodes]})
    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": _encode(model._graph.inputs, keys),
            "output_layers": _encode(model._graph.outputs, keys)}


def _decode(value: Any, produced: dict[tuple[str, int], list]) -> Any:
    if isinstance(value, dict) and "__keras_tensor__" in value:
        name, index, tensor_index = value["__keras_tensor__"]
        return produced[(name, index)][tensor_index]
    if isinstance(value, dict):
        return {k: _decode(v, produced) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, produced) for v in value]
    return value


def _refs(value: Any) -> list[tuple[str, int]]:
    if isinstance(value, dict) and "__keras_tensor__" in value:
        return [tuple(value["__keras_tensor__"][:2])]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def functional_from_config(cls: type, config: dict[str, Any],
                           custom_objects: dict | None) -> Any:
    """A new `cls` (a functional model class) rebuilt from `functional_config`'s dict."""
    created: dict[str, Any] = {}
    produced: dict[tuple[str, int], list] = {}
    pending = []
    for layer_config in config["layers"]:
        layer = saving.deserialize_layer(layer_config, custom_objects)
        name = layer_config.get("name", layer.name)
        created[name] = layer
        if isinstance(layer, InputLayer):
            produced[(name, 0)] = [layer.output]
        pending += [(name, i, node) for i, node in enumerate(layer_config.get("inbound_nodes",
                                                                                []))]
    while pending:
        waiting = []
        for name, index, node in pending:
            ready = (name, index - 1) in produced or index == 0
            if not ready or any(ref not in produced for ref in _refs(node)):
                waiting.append((name, index, node))
                continue
            args = _decode(node["args"], produced)
            outputs = created[name](*args, **_decode(node.get("kwargs", {}), produced))
            produced[(name, index)] = flatten(outputs)
        if len(waiting) == len(pending):
            raise ValueError("Cannot rebuild the functional model from its config: the inputs "
                             f"of layer(s) {sorted({w[0] for w in waiting})} are never produced "
                             "(the config is corrupt or incomplete).")
        pending = waiting
    return cls(inputs=_decode(config["input_layers"], produced),
               outputs=_decode(config["output_layers"], produced),
               name=config.get("name"), trainable=config.get("trainable", True))


register_operator(_apply_op)
register_layer(InputLayer)
register_layer(TensorOp)
