"""A graph as TensorFlow's `GraphDef` protocol buffer, for TensorBoard's graph tab.

Built with tensorboardX's copies of TensorFlow's protos (install
`distflow[tensorboard]`); `write_graph(graph, logdir)` writes it as an event file
that `tensorboard --logdir logdir` shows under "Graphs". Each operation becomes a
`NodeDef`: its name (scopes become TensorBoard's collapsible groups), its type as
the op, its inputs ("name" for output 0, "name:i" otherwise, "^name" for control
inputs), and `dtype` / `_output_shapes` attributes.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

_DTYPES = {"float16": 19, "float32": 1, "float64": 2, "int8": 6, "int16": 5, "int32": 3,
           "int64": 9, "uint8": 4, "uint16": 17, "uint32": 22, "uint64": 23, "bool": 10}
_GRAPH_DEF_VERSION = 1286  # the producer version TF 2.21 writes


def _protos() -> Any:
    try:
        from tensorboardX.proto import (
            attr_value_pb2,
            graph_pb2,
            node_def_pb2,
            tensor_shape_pb2,
            versions_pb2,
        )
    except ImportError as e:  # pragma: no cover - exercised without tensorboardX only
        raise ImportError("Writing a GraphDef needs tensorboardX (a dependency of "
                          "distflow): pip install tensorboardX") from e
    return attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2, versions_pb2


def _input_name(t: Any) -> str:
    return t.op.name if t.value_index == 0 else f"{t.op.name}:{t.value_index}"


def _shape_proto(tensor_shape_pb2: Any, t: Any) -> Any:
    if t.shape.rank is None:
        return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    return tensor_shape_pb2.TensorShapeProto(dim=[
        tensor_shape_pb2.TensorShapeProto.Dim(size=-1 if d is None else d) for d in t.shape])


def as_graph_def(graph: Any) -> Any:
    """`graph` (a `graph.core.Graph`) as a `GraphDef` (tensorboardX's generated class of
    TF's proto). This module does not import `core`, which calls it."""
    attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2, versions_pb2 = _protos()
    nodes = []
    for op in graph.get_operations():
        attrs = {"_output_shapes": attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(
            shape=[_shape_proto(tensor_shape_pb2, t) for t in op.outputs]))}
        if op.outputs:
            attrs["dtype"] = attr_value_pb2.AttrValue(
                type=_DTYPES.get(np.dtype(op.outputs[0].dtype).name, 0))
        inputs = [_input_name(t) for t in op.inputs if hasattr(t, "value_index")]
        inputs += [f"^{c.name}" for c in op.control_inputs]
        nodes.append(node_def_pb2.NodeDef(name=op.name, op=op.type, input=inputs,
                                          device="/device:CPU:0", attr=attrs))
    return graph_pb2.GraphDef(node=nodes,
                              versions=versions_pb2.VersionDef(producer=_GRAPH_DEF_VERSION))


def add_graph_event(writer: Any, graph: Any) -> None:
    """Adds `graph` as a GraphDef event to a tensorboardX `SummaryWriter`'s file."""
    from tensorboardX.proto import event_pb2

    writer._get_file_writer().add_event(event_pb2.Event(
        wall_time=time.time(), graph_def=as_graph_def(graph).SerializeToString()))


def write_graph(graph: Any, logdir: str | os.PathLike) -> None:
    """Writes `graph` as an event file in `logdir` (TensorBoard's "Graphs" tab)."""
    from tensorboardX.event_file_writer import EventFileWriter
    from tensorboardX.proto import event_pb2

    writer = EventFileWriter(os.fspath(logdir))
    writer.add_event(event_pb2.Event(wall_time=time.time(),
                                     graph_def=as_graph_def(graph).SerializeToString()))
    writer.close()
