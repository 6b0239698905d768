"""`TensorBoard`: scalar (and weight histogram) logs TensorBoard can display.

Event files are written with tensorboardX, one of distflow's dependencies
(installed with distflow itself). The layout follows Keras: training
values go to `<log_dir>/train`, validation values to `<log_dir>/validation`,
tagged `epoch_<metric>` (the `val_` prefix dropped) with the epoch as step;
with `update_freq` set to "batch" or N, `batch_<metric>` every N training
batches with the global batch count as step; after each validation in `fit`,
`evaluation_<metric>_vs_iterations` with the optimizer's step count as step.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np

from distflow.keras.callbacks.base import Callback, scalar_or_none

# Never recommend installing by the bare name `distflow`: on the public index that is an
# unrelated project (this one is `distflow-ps`, installed from its source).
INSTALL_HINT = ("pip install tensorboardX (a dependency of distflow; installing distflow "
                "from its source with `pip install .` brings it)")


def _import_writer() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError as error:
        raise ImportError("The TensorBoard callback needs the tensorboardX package. "
                          f"Install it with: {INSTALL_HINT}") from error
    return SummaryWriter


class TensorBoard(Callback):
    """Writes training curves for TensorBoard (`tensorboard --logdir <log_dir>`).

    Args:
        log_dir: the directory of the run.
        histogram_freq: every this many epochs, write a histogram of each weight
            (0 for never).
        write_graph: after the first training batch, write the traced train step's
            graph (a `GraphDef` under `<log_dir>/train`, TensorBoard's "Graphs" tab);
            a model whose step runs eagerly has none: nothing is written, as in Keras.
        write_images: not supported (a warning when True).
        write_steps_per_second: also log `epoch_steps_per_second`.
        update_freq: "epoch", "batch", or an int N: write `batch_*` values every
            N training batches as well.
        profile_batch: accepted for compatibility; profiling is not supported.
        embeddings_freq: not supported (a warning when set).
        embeddings_metadata: not supported.

    Raises:
        ImportError: when tensorboardX is missing (`pip install tensorboardX`).
    """

    _chief_only = True

    def __init__(self, log_dir: str | os.PathLike = "logs", histogram_freq: int = 0,
                 write_graph: bool = True, write_images: bool = False,
                 write_steps_per_second: bool = False, update_freq: str | int = "epoch",
                 profile_batch: int = 0, embeddings_freq: int = 0,
                 embeddings_metadata: Any = None):
        super().__init__()
        self._summary_writer_class = _import_writer()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = _check_freq("histogram_freq", histogram_freq)
        self.write_graph = write_graph
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = _resolve_update_freq(update_freq)
        self.profile_batch = profile_batch
        if write_images or embeddings_freq or embeddings_metadata is not None:
            warnings.warn("TensorBoard: write_images and embeddings are not supported by "
                          "distflow and are ignored.", stacklevel=2)
        self._writers: dict[str, Any] = {}
        self._global_batch = 0
        self._in_fit = False
        self._epoch_start = 0.0
        self._epoch_batches = 0

    # ------------------------------------------------------------ writers

    def _writer(self, name: str) -> Any:
        if name not in self._writers:
            path = os.path.join(self.log_dir, name)
            self._writers[name] = self._summary_writer_class(logdir=path, flush_secs=30)
        return self._writers[name]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _write_scalars(self, name: str, values: dict[str, Any], step: int) -> None:
        writer = self._writer(name)
        for tag, value in values.items():
            number = scalar_or_none(value)
            if number is not None:
                writer.add_scalar(tag, number, global_step=step)

    # ------------------------------------------------------------ hooks

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._in_fit = True
        self._global_batch = 0
        self._writer("train")

    def on_train_end(self, logs: dict | None = None) -> None:
        self._in_fit = False
        self._close_writers()

    def _write_train_graph(self) -> None:
        """The graph of the first trace of the model's train step, as Keras writes it."""
        function = getattr(self.model, "train_function", None)
        traces = function.concrete_functions() if hasattr(function, "concrete_functions") \
            else []
        if not traces:  # the step runs eagerly: no graph, nothing written (as Keras)
            return
        from distflow.graph.graphdef import add_graph_event

        add_graph_event(self._writer("train"), traces[0].graph)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.monotonic()
        self._epoch_batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.write_graph and self._global_batch == 0:
            self._write_train_graph()
        self._global_batch += 1
        self._epoch_batches += 1
        if self.update_freq != "epoch" and self._global_batch % self.update_freq == 0:
            values = {f"batch_{key}": value for key, value in (logs or {}).items()}
            self._write_scalars("train", values, self._global_batch)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        train = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        validation = {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")}
        if "epoch_learning_rate" not in train:
            rate = _learning_rate(self.model)
            if rate is not None:
                train["epoch_learning_rate"] = rate
        if self.write_steps_per_second:
            seconds = max(time.monotonic() - self._epoch_start, 1e-9)
            train["epoch_steps_per_second"] = self._epoch_batches / seconds
        self._write_scalars("train", train, epoch)
        if validation:
            self._write_scalars("validation", validation, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_histograms(epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_test_end(self, logs: dict | None = None) -> None:
        if not self._in_fit or not logs:
            return
        step = _optimizer_iterations(self.model, default=self._global_batch)
        values = {f"evaluation_{key}_vs_iterations": v for key, v in logs.items()}
        self._write_scalars("validation", values, step)

    def _write_histograms(self, epoch: int) -> None:
        writer = self._writer("train")
        for name, array in _named_weights(self.model):
            writer.add_histogram(name, np.asarray(array, dtype=np.float64), global_step=epoch)


def _check_freq(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative int. Received: {name}={value!r}")
    return int(value)


def _resolve_update_freq(update_freq: Any) -> str | int:
    if update_freq == "epoch":
        return "epoch"
    if update_freq == "batch":
        return 1
    if isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq <= 0:
        raise ValueError("`update_freq` must be 'epoch', 'batch' or a positive int. "
                         f"Received: update_freq={update_freq!r}")
    return update_freq


def _learning_rate(model: Any) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    return scalar_or_none(getattr(optimizer, "learning_rate", None)) if optimizer else None


def _optimizer_iterations(model: Any, default: int) -> int:
    iterations = scalar_or_none(getattr(getattr(model, "optimizer", None), "iterations", None))
    return default if iterations is None else int(iterations)


def _named_weights(model: Any) -> list[tuple[str, Any]]:
    """(name, array) pairs: the variables' names when the model lists `weights`."""
    variables = getattr(model, "weights", None)
    if variables and all(hasattr(v, "name") for v in variables):
        return [(v.name.replace(":", "_"), v.numpy()) for v in variables]
    return [(f"weight_{i}", w) for i, w in enumerate(model.get_weights())]
