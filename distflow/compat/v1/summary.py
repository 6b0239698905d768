"""TF1's summaries: `FileWriter` (the graph, and scalar summaries), `scalar`, `merge_all`.

    tf.summary.scalar("loss", loss)
    merged = tf.summary.merge_all()
    writer = tf.summary.FileWriter("logs", sess.graph)   # the graph, written now
    summary, _ = sess.run([merged, train], feed_dict=...)
    writer.add_summary(summary, step)

A summary's value when the graph runs is the serialized `Summary` protocol buffer
as a uint8 array (TF1 gives bytes; `add_summary` takes either). Needs tensorboardX.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from distflow.graph import core
from distflow.graph.core import Graph
from distflow.graph.graphdef import write_graph
from distflow.graph.record import record_call
from distflow.tensor import Tensor, as_array

SUMMARIES = "summaries"


def _scalar_proto(name: str, value: Any) -> Tensor:
    from tensorboardX.proto import summary_pb2

    proto = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=name, simple_value=float(np.asarray(as_array(value)).reshape(-1)[0]))])
    return Tensor._wrap(np.frombuffer(proto.SerializeToString(), np.uint8).copy())


def _merge(*summaries: Any) -> Tensor:
    return Tensor._wrap(np.concatenate([as_array(s) for s in summaries]) if summaries
                        else np.zeros(0, np.uint8))  # repeated fields concatenate


def scalar(name: str, tensor: Any, collections: Any = None, family: Any = None) -> Any:
    """A summary of a scalar tensor, added to the "summaries" collection (graph mode)."""
    graph = core.building_graph()
    if graph is None:
        return _scalar_proto(name, tensor)
    out = record_call(_scalar_proto, "stateful", (), False, (name, tensor), {})
    graph.add_to_collection(SUMMARIES, out)
    return out


def merge(inputs: list, collections: Any = None, name: Any = None) -> Any:
    """One summary holding all of `inputs`."""
    graph = core.building_graph()
    if graph is None:
        return _merge(*inputs)
    return record_call(_merge, "stateful", (), False, tuple(inputs), {})


def merge_all(key: str = SUMMARIES, scope: Any = None, name: Any = None) -> Any:
    """All summaries of the default graph in one (None when there are none)."""
    found = core.get_default_graph().get_collection(key)
    return merge(found) if found else None


class FileWriter:
    """Writes event files into `logdir`; `graph` (if given) is written at once.

    Args:
        logdir: the run's directory (created if missing).
        graph: a `Graph` to write (e.g. `sess.graph`).
    """

    def __init__(self, logdir: str | os.PathLike, graph: Graph | None = None, **_kwargs: Any):
        self.logdir = os.fspath(logdir)
        self._writer = None
        os.makedirs(self.logdir, exist_ok=True)
        if graph is not None:
            self.add_graph(graph)

    def add_graph(self, graph: Graph, global_step: int | None = None) -> None:
        """Writes `graph` as a GraphDef event."""
        if not isinstance(graph, Graph):
            raise TypeError(f"add_graph expects a distflow Graph (e.g. sess.graph). "
                            f"Received: {type(graph).__name__}.")
        write_graph(graph, self.logdir)

    def add_summary(self, summary: Any, global_step: int | None = None) -> None:
        """Writes a summary (what running `scalar` / `merge_all` returned) at a step."""
        from tensorboardX.proto import event_pb2, summary_pb2

        data = summary if isinstance(summary, bytes) else np.asarray(summary, np.uint8).tobytes()
        event = event_pb2.Event(wall_time=time.time(), summary=summary_pb2.Summary.FromString(
            data))
        if global_step is not None:
            event.step = int(global_step)
        self._events().add_event(event)

    def _events(self) -> Any:
        if self._writer is None:
            from tensorboardX.event_file_writer import EventFileWriter

            self._writer = EventFileWriter(self.logdir)
        return self._writer

    def get_logdir(self) -> str:
        return self.logdir

    def flush(self) -> None:
        """Writes pending events to disk."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
