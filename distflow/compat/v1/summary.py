"""TF1's `tf.compat.v1.summary.FileWriter`, for the graph (TensorBoard's "Graphs" tab).

    writer = tf.summary.FileWriter("logs", sess.graph)   # the graph, written now
    writer.close()

Scalar summaries are written with `distflow.keras.callbacks.TensorBoard` or
tensorboardX directly; TF1's summary ops (`summary.scalar`, `merge_all`) are not
provided.
"""

from __future__ import annotations

import os
from typing import Any

from distflow.graph.core import Graph
from distflow.graph.graphdef import write_graph


class FileWriter:
    """Writes event files into `logdir`; `graph` (if given) is written at once.

    Args:
        logdir: the run's directory (created if missing).
        graph: a `Graph` to write (e.g. `sess.graph`).
    """

    def __init__(self, logdir: str | os.PathLike, graph: Graph | None = None, **_kwargs: Any):
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        if graph is not None:
            self.add_graph(graph)

    def add_graph(self, graph: Graph, global_step: int | None = None) -> None:
        """Writes `graph` as a GraphDef event."""
        if not isinstance(graph, Graph):
            raise TypeError(f"add_graph expects a distflow Graph (e.g. sess.graph). "
                            f"Received: {type(graph).__name__}.")
        write_graph(graph, self.logdir)

    def get_logdir(self) -> str:
        return self.logdir

    def flush(self) -> None:
        """Events are written when added."""

    def close(self) -> None:
        """Events are written when added."""
