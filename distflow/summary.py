"""`tf.summary`: event files TensorBoard reads (scalars, histograms, text, images).

    writer = df.summary.create_file_writer("logs/run1")
    with writer.as_default(step=0):
        df.summary.scalar("loss", 0.5, step=1)

Files are written with tensorboardX (the optional extra `distflow[tensorboard]`)
in TensorBoard's event-file format; images are PNG-encoded here (zlib only).
Without a default writer the summary functions return False and write
nothing, as in TF; without a step they raise the same error as TF.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from distflow.png import encode_png

_state = threading.local()
_global = {"writer": None, "step": None}


def _import_writer() -> Any:
    try:
        from tensorboardX import SummaryWriter as TbxWriter
    except ImportError as error:
        raise ImportError("tf.summary needs the tensorboardX package (a dependency of "
                          "distflow). Install it with: pip install tensorboardX") from error
    return TbxWriter


class _Writer:
    """What every writer shares: the default-writer context and no-op hooks."""

    @contextlib.contextmanager
    def as_default(self, step: Any = None) -> Iterator[Any]:
        """Makes this the default writer (and `step` the default step) inside the block."""
        stack = _writer_stack()
        stack.append((self, step))
        try:
            yield self
        finally:
            stack.pop()
            self.flush()

    def set_as_default(self, step: Any = None) -> None:
        """Makes this the default writer from now on (outside any `as_default` block)."""
        _global["writer"] = self
        if step is not None:
            _global["step"] = step

    def init(self) -> None:
        """Nothing to do: the event file is open from construction."""

    def flush(self) -> None:
        """Writes buffered events to disk."""

    def close(self) -> None:
        """Flushes and closes the event file."""


class SummaryWriter(_Writer):
    """A writer of one log directory (`create_file_writer` returns one)."""

    def __init__(self, logdir: str, max_queue: int | None = None,
                 flush_millis: int | None = None, filename_suffix: str | None = None):
        tbx = _import_writer()
        self.logdir = os.fspath(logdir)
        self._writer = tbx(logdir=self.logdir, max_queue=int(max_queue or 10),
                           flush_secs=max(1, int((flush_millis or 120000) / 1000)),
                           filename_suffix=filename_suffix or "")
        self._closed = False

    def flush(self) -> None:
        """Writes buffered events to disk."""
        if not self._closed:
            self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        if not self._closed:
            self._writer.close()
            self._closed = True

    def _add(self, summary: Any, step: int) -> None:
        """Writes the event in this thread (tensorboardX's queue would let `flush()` return
        before the event reached the file; its events writer is lock-protected)."""
        if self._closed:
            raise RuntimeError(f"The summary writer for {self.logdir!r} is closed.")
        from tensorboardX.proto.event_pb2 import Event

        event = Event(wall_time=time.time(), step=int(step), summary=summary)
        self._writer._get_file_writer().event_writer._ev_writer.write_event(event)


    def _add_graph(self, graph_def: bytes) -> None:
        """Writes a serialized `GraphDef` (TensorBoard's "Graphs" tab)."""
        if self._closed:
            raise RuntimeError(f"The summary writer for {self.logdir!r} is closed.")
        from tensorboardX.proto.event_pb2 import Event

        event = Event(wall_time=time.time(), graph_def=graph_def)
        self._writer._get_file_writer().event_writer._ev_writer.write_event(event)


class _NoopWriter(_Writer):
    """Records nothing (`create_noop_writer`)."""


def create_file_writer(logdir: str, max_queue: int | None = None,
                       flush_millis: int | None = None, filename_suffix: str | None = None,
                       name: str | None = None, experimental_trackable: bool = False,
                       experimental_mesh: Any = None) -> SummaryWriter:
    """A writer of event files in `logdir` (created if needed)."""
    return SummaryWriter(logdir, max_queue, flush_millis, filename_suffix)


def create_noop_writer() -> _NoopWriter:
    """A writer that records nothing."""
    return _NoopWriter()


def _writer_stack() -> list:
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


def _default() -> tuple[Any, Any]:
    stack = _writer_stack()
    if stack:
        return stack[-1]
    return _global["writer"], None


def _resolve_step(step: Any, scoped: Any) -> int:
    for candidate in (step, scoped, _global["step"]):
        if candidate is not None:
            return int(np.asarray(getattr(candidate, "value", candidate)))
    raise ValueError("No step set. Please specify one either through the `step` argument or "
                     "through tf.summary.experimental.set_step()")


def _target(step: Any) -> tuple[Any, int] | None:
    writer, scoped = _default()
    if writer is None or isinstance(writer, _NoopWriter) or not _recording():
        return None
    return writer, _resolve_step(step, scoped)


def _value(data: Any) -> np.ndarray:
    return np.asarray(getattr(data, "value", data))


# ----------------------------------------------------------------- summaries


def scalar(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Writes a scalar; returns False when there is no default writer."""
    target = _target(step)
    if target is None:
        return False
    arr = _value(data)
    if arr.size != 1:
        raise ValueError(f"tf.summary.scalar needs a scalar. Received shape {arr.shape}.")
    from tensorboardX.summary import scalar as make

    target[0]._add(make(name, float(arr.reshape(())), display_name=description or ""), target[1])
    return True


def graph(graph_data: Any) -> bool:
    """Writes a graph for TensorBoard's "Graphs" tab, as TF 2's `tf.summary.graph`.

    Args:
        graph_data: a `Graph`, a traced function's `ConcreteFunction` (its graph is
            written), or a `GraphDef` protocol buffer.

    Returns:
        False when there is no default writer (nothing is written), else True.

    Raises:
        ValueError: when `graph_data` is none of those.
    """
    writer, _ = _default()
    if writer is None or isinstance(writer, _NoopWriter) or not _recording():
        return False
    data = getattr(graph_data, "graph", graph_data)  # a ConcreteFunction's graph
    if hasattr(data, "as_graph_def"):
        data = data.as_graph_def()
    if not hasattr(data, "SerializeToString") or not hasattr(data, "node"):
        raise ValueError("tf.summary.graph needs a Graph, a ConcreteFunction or a GraphDef. "
                         f"Received: {type(graph_data).__name__}")
    writer._add_graph(data.SerializeToString())
    return True


def histogram(name: str, data: Any, step: Any = None, buckets: int | None = None,
              description: str | None = None) -> bool:
    """Writes a histogram of `data`'s values (30 buckets by default, as TF)."""
    target = _target(step)
    if target is None:
        return False
    from tensorboardX.summary import histogram as make

    values = _value(data).astype(np.float64).reshape(-1)
    bins = int(buckets or 30) if values.size and values.min() != values.max() else 1
    target[0]._add(make(name, values, bins), target[1])
    return True


def text(name: str, data: Any, step: Any = None, description: str | None = None) -> bool:
    """Writes a string (or an array of strings, one per line) as text."""
    target = _target(step)
    if target is None:
        return False
    from tensorboardX.summary import text as make

    arr = np.asarray(data)
    content = str(arr.item()) if arr.ndim == 0 else "\n".join(str(s) for s in arr.reshape(-1))
    summary = make(name, content)
    summary.value[0].tag = name  # TF 2 tags text with the name itself
    target[0]._add(summary, target[1])
    return True


def image(name: str, data: Any, step: Any = None, max_outputs: int = 3,
          description: str | None = None) -> bool:
    """Writes up to `max_outputs` images from [k, h, w, c] data (float in [0, 1] or uint8).

    As TF's, `c` is 1 (grayscale), 3 (RGB) or 4 (RGBA); the images appear
    under `name/image/0`, `name/image/1`, ....
    """
    target = _target(step)
    if target is None:
        return False
    arr = _value(data)
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"tf.summary.image needs [k, h, w, c] with c in (1, 3, 4). "
                         f"Received shape {arr.shape}.")
    pixels = arr if arr.dtype == np.uint8 else np.clip(
        np.round(arr.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    from tensorboardX.proto.summary_pb2 import Summary

    values = [Summary.Value(tag=f"{name}/image/{i}", image=Summary.Image(
        height=img.shape[0], width=img.shape[1], colorspace=img.shape[2],
        encoded_image_string=encode_png(img))) for i, img in enumerate(pixels[:max_outputs])]
    target[0]._add(Summary(value=values), target[1])
    return True


def flush(writer: Any = None, name: str | None = None) -> None:
    """Flushes `writer`, or the default writer."""
    writer = writer if writer is not None else _default()[0]
    if writer is not None:
        writer.flush()


# --------------------------------------------------------------- recording


def _recording() -> bool:
    flag = getattr(_state, "record", True)
    return bool(flag() if callable(flag) else flag)


@contextlib.contextmanager
def record_if(condition: Any) -> Iterator[None]:
    """Records summaries only while `condition` (a bool or a callable) is true."""
    previous = getattr(_state, "record", True)
    _state.record = condition
    try:
        yield
    finally:
        _state.record = previous


def should_record_summaries() -> bool:
    """Whether a default writer exists and recording is on."""
    writer, _ = _default()
    return writer is not None and not isinstance(writer, _NoopWriter) and _recording()


def _set_step(step: Any) -> None:
    _global["step"] = step


def _get_step() -> Any:
    scoped = _default()[1]
    return scoped if scoped is not None else _global["step"]


class experimental:  # noqa: N801  (TF's namespace `tf.summary.experimental`)
    """`tf.summary.experimental.set_step` / `get_step`."""

    set_step = staticmethod(_set_step)
    get_step = staticmethod(_get_step)


# ------------------------------------------------------------------ reading


def _masked_crc(data: bytes) -> int:
    from tensorboardX.crc32c import crc32c

    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def summary_iterator(path: str) -> Iterator[Any]:
    """The `Event` protos of one event file, checking every record's CRCs.

    As `tf.compat.v1.train.summary_iterator`; handy to read back what a writer wrote.

    Raises:
        ValueError: on a corrupt or truncated record.
    """
    from tensorboardX.proto import event_pb2

    with open(os.fspath(path), "rb") as f:
        while header := f.read(12):
            length = struct.unpack("<Q", header[:8])[0]
            body = f.read(length + 4)
            if len(header) < 12 or len(body) < length + 4 or \
                    struct.unpack("<I", header[8:])[0] != _masked_crc(header[:8]) or \
                    struct.unpack("<I", body[length:])[0] != _masked_crc(body[:length]):
                raise ValueError(f"Corrupt or truncated record in event file {path!r}.")
            yield event_pb2.Event.FromString(body[:length])
