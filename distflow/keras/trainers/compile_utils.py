"""The compile container: the losses and metrics given to `compile`, per output.

`Compiled` resolves the loss functions, loss weights and metric objects once the
output names are known (from a functional graph at `compile`, or from the first
batch's outputs of a subclassed model), computes the weighted total loss and
updates the metrics; `CompileMetrics` presents the compiled metrics as one tracker,
Keras 3's `compile_metrics`, whose result is a dict of their values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import ops, softmax_ops
from distflow.graph.core import GraphTensor
from distflow.keras import losses as losses_module
from distflow.keras import metrics as metrics_module
from distflow.keras.trainers.data_adapters import to_numpy
from distflow.keras.tree import flatten
from distflow.tensor import Tensor, graph_form

__all__ = ["CompileMetrics", "Compiled", "batch_rows"]


def batch_rows(x: Any) -> int:
    """Rows of the first input (the weight of a batch's loss in the loss tracker)."""
    for t in flatten(x):
        if t is not None and getattr(t, "ndim", 0):
            return int(t.shape[0])
    return 1


def _per_output(spec: Any, names: list[str], what: str) -> list[Any]:
    """One entry per output from a single value, a list or a dict keyed by output name."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise ValueError(f"Unknown output name(s) {unknown} in `{what}`. The model's outputs "
                             f"are {names}.")
        return [spec.get(n) for n in names]
    if isinstance(spec, list | tuple):
        if len(spec) != len(names):
            raise ValueError(f"`{what}` has {len(spec)} entries but the model has {len(names)} "
                             f"outputs ({names}). Pass one per output or a dict.")
        return list(spec)
    return [spec] * len(names)


def _targets(y: Any, names: list[str]) -> list[Any]:
    if len(names) == 1:
        return [y[0] if isinstance(y, list | tuple) and len(y) == 1 else y]
    if isinstance(y, dict):
        return [y.get(n) for n in names]
    if isinstance(y, list | tuple) and len(y) == len(names):
        return list(y)
    raise ValueError(f"The model has {len(names)} outputs ({names}); pass `y` as a list of "
                     "that many arrays or a dict keyed by output name.")


def loss_value(fn: Any, y_true: Any, y_pred: Any, sample_weight: Any) -> Tensor:
    """`fn(y_true, y_pred, sample_weight=...)`, the loss of one output.

    Keras losses compute with NumPy where they check labels, so a traced step records
    one operation running the loss as it runs eagerly (gradient included); the sparse
    cross-entropy from logits, a classifier's usual loss, is traced as one fused op
    instead (labels checked, cross-entropy, mean: `sparse_softmax_cross_entropy_mean`).
    """
    if isinstance(y_pred, GraphTensor) and _traceable_sparse_ce(fn, y_true, y_pred,
                                                                sample_weight):
        # Keras's sum over the batch size: the mean, fused with the op and its label check
        return softmax_ops.sparse_softmax_cross_entropy_mean(y_true, y_pred)
    return _recorded_loss(fn, y_true, y_pred, sample_weight)


def _traceable_sparse_ce(fn: Any, y_true: Any, y_pred: GraphTensor, sample_weight: Any) -> bool:
    """Whether `fn` is a plain `SparseCategoricalCrossentropy(from_logits=True)` of
    integer labels shaped like `y_pred` without its class axis, unweighted."""
    return (type(fn) is losses_module.SparseCategoricalCrossentropy and fn.from_logits
            and fn.ignore_class is None and fn.dtype is None and sample_weight is None
            and fn.reduction in ("sum_over_batch_size", "mean")
            and isinstance(y_true, GraphTensor) and y_true.dtype.kind in "iu"
            and y_pred.dtype == np.float32 and y_true.shape.rank == y_pred.shape.rank - 1
            and y_true.shape.is_fully_defined() and y_pred.shape.is_fully_defined()
            and tuple(y_true.shape) == tuple(y_pred.shape)[:-1])


@graph_form()  # in a traced step: one operation running the loss on the step's arrays
def _recorded_loss(fn: Any, y_true: Any, y_pred: Any, sample_weight: Any) -> Tensor:
    return fn(y_true, y_pred, sample_weight=sample_weight)


class Compiled:
    """The resolved loss functions, loss weights and metric objects (built on first use)."""

    def __init__(self, loss: Any, loss_weights: Any, metrics: Any, weighted_metrics: Any):
        self.loss, self.loss_weights = loss, loss_weights
        self.metrics_spec, self.weighted_spec = metrics, weighted_metrics
        self.names: list[str] | None = None
        self.log_names: list[str] = []
        self.loss_fns: list[Any] = []
        self.weights: list[float] = []
        self.metrics: list[tuple[int, Any, bool]] = []  # (output index, metric, weighted)
        self.loss_tracker = metrics_module.Mean(name="loss")
        self.output_losses: list[metrics_module.Mean] = []
        self.container = CompileMetrics(self)
        self.has_metrics = metrics is not None or weighted_metrics is not None

    def build(self, names: list[str]) -> None:
        """Resolves the losses, loss weights and metrics for outputs called `names`."""
        self.names = names
        self.loss_fns = [None if spec is None else losses_module.get(spec)
                         for spec in _per_output(self.loss, names, "loss")]
        weights = _per_output(self.loss_weights, names, "loss_weights") \
            if self.loss_weights is not None else [1.0] * len(names)
        self.weights = [1.0 if w is None else float(w) for w in weights]
        self.output_losses = [metrics_module.Mean(name=f"{n}_loss") for n in names] \
            if len(names) > 1 else []
        self.metrics = self._resolve_metrics(self.metrics_spec, False) + \
            self._resolve_metrics(self.weighted_spec, True)
        self.log_names = _log_names(self.metrics)  # Keras's names in the logs

    def _resolve_metrics(self, spec: Any, weighted: bool) -> list[tuple[int, Any, bool]]:
        if spec is None:
            return []
        names = self.names or []
        if isinstance(spec, dict):
            per_output = _per_output(spec, names, "metrics")
        elif isinstance(spec, list | tuple) and len(names) > 1 and any(
                isinstance(s, list | tuple) for s in spec):
            per_output = _per_output(list(spec), names, "metrics")
        else:
            per_output = [spec] * len(names)
        out = []
        for i, entries in enumerate(per_output):
            entries = [] if entries is None else entries
            entries = entries if isinstance(entries, list | tuple) else [entries]
            for entry in entries:
                if i > 0 and not isinstance(entry, str | dict) and hasattr(entry, "get_config"):
                    entry = type(entry).from_config(entry.get_config())  # one object per output
                metric = metrics_module.resolve(entry, self.loss_fns[i])
                if len(names) > 1:
                    metric._output_prefix = f"{names[i]}_"
                out.append((i, metric, weighted))
        return out

    # ------------------------------------------------------------ per step

    def flat_outputs(self, y_pred: Any) -> list[Any]:
        """Flat outputs; re-resolves the losses once if a subclassed model has several."""
        flat = flatten(y_pred)
        if len(flat) != len(self.names):
            names = list(y_pred) if isinstance(y_pred, dict) else [
                f"output_{i + 1}" for i in range(len(flat))]
            self.build(names)
        return flat

    def trackers(self) -> list[Any]:
        """Keras 3's order: the loss tracker, the compiled metrics, the per-output losses."""
        return [self.loss_tracker] + ([self.container] if self.has_metrics else []) + \
            self.output_losses

    def compute_loss(self, y: Any, y_pred_flat: list[Tensor], sample_weight: Any,
                     extra_losses: list[Tensor]) -> Tensor:
        """The weighted sum of the per-output losses plus `extra_losses`.

        Also updates the per-output loss trackers (several outputs).
        """
        total = None
        targets = _targets(y, self.names) if y is not None else [None] * len(self.names)
        for i, (fn, w) in enumerate(zip(self.loss_fns, self.weights)):
            if fn is None:
                continue
            if targets[i] is None:
                raise ValueError("Target data is missing. The model was compiled with a loss, "
                                 "so `fit`/`evaluate` need `y` (or a data set yielding (x, y)).")
            value = loss_value(fn, targets[i], y_pred_flat[i], sample_weight)
            if self.output_losses:
                self.output_losses[i].update_state(value, sample_weight=batch_rows(y_pred_flat[i]))
            value = value if w == 1.0 else ops.multiply(value, w)
            total = value if total is None else ops.add(total, value)
        for extra in extra_losses:
            extra = ops.sum(extra) if getattr(extra, "ndim", 0) else extra
            total = extra if total is None else ops.add(total, extra)
        if total is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()` (or "
                             "add losses in the model with `add_loss`).")
        return total

    def update_metrics(self, y: Any, y_pred_flat: list[Tensor], sample_weight: Any) -> None:
        """Updates every compiled metric with its output (`sample_weight` for the weighted ones)."""
        if not self.metrics or y is None:
            return
        targets = _targets(y, self.names)
        for i, metric, weighted in self.metrics:
            if targets[i] is not None:
                metric.update_state(targets[i], to_numpy(y_pred_flat[i]),
                                    sample_weight=sample_weight if weighted else None)

    def metric_names(self) -> list[str]:
        """"loss", the per-output losses, then the compiled metrics' log names."""
        names = ["loss"] + [f"{n}_loss" for n in (self.names or [])
                            if self.output_losses]
        return names + list(self.log_names)


def _log_names(metrics: list[tuple[int, Any, bool]]) -> list[str]:
    """Keras 3's log names of the compiled metrics (CompileMetrics.result's rule).

    Output-prefixed names; a repeated name gets `_1`, `_2`, ... (two AUCs: auc, auc_1);
    a weighted metric whose name is taken becomes `weighted_<name>` first.
    """
    counts: dict[str, int] = {}
    names = []
    for weighted in (False, True):
        for _, metric, is_weighted in metrics:
            if is_weighted != weighted:
                continue
            prefix = getattr(metric, "_output_prefix", "")
            name = prefix + metric.name
            if weighted and name in counts:
                name = f"{prefix}weighted_{metric.name}"
            if name in counts:
                counts[name] += 1
                name = f"{name}_{counts[name] - 1}"
            else:
                counts[name] = 1
            names.append(name)
    return names


class CompileMetrics(metrics_module.Metric):
    """The metrics given to `compile` as one tracker, Keras 3's `compile_metrics`.

    `result()` is a dict {name: value} (output-prefixed for several outputs), which
    `get_metrics_result` merges into the logs; `update_state(y, y_pred, sample_weight)`
    is also what tf.keras 2's `self.compiled_metrics.update_state` does.
    """

    def __init__(self, compiled: Compiled):
        self._owner = compiled
        super().__init__(name="compile_metrics")

    @property
    def metrics(self) -> list[Any]:
        """The compiled metric objects."""
        return [m for _, m, _ in self._owner.metrics]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Updates every compiled metric (`sample_weight` reaches the weighted ones)."""
        self._owner.update_metrics(y_true, self._owner.flat_outputs(y_pred), sample_weight)

    def result(self) -> dict[str, Any]:
        """{name: value} of every compiled metric."""
        return {name: m.result() for name, (_, m, _) in zip(self._owner.log_names,
                                                             self._owner.metrics)}

    def _update_kernel(self, fn: Callable, y_true: Any = None, y_pred: Any = None,
                       sample_weight: Any = None, *rest: Any, **kwargs: Any
                       ) -> Callable | None:
        """In a traced step with one output and no sample weights: every compiled
        metric's own kernel on the label and prediction arrays, when each has one."""
        if fn is not _CONTAINER_UPDATE or rest or kwargs or sample_weight is not None or \
                len(self._owner.names or ()) != 1 or not self._owner.metrics:
            return None
        kernels = [m._update_kernel(_own(type(m), "update_state"), y_true, y_pred)
                   for m in self.metrics]
        if any(k is None for k in kernels):
            return None

        def update(labels: np.ndarray, predictions: np.ndarray) -> None:
            for kernel in kernels:
                kernel(labels, predictions)
        return update

    def _result_kernel(self, fn: Callable) -> Callable | None:
        """`result()`'s dict as the arrays of the metrics' own result kernels, in the
        order of its flattening (sorted names), when each has one."""
        if fn is not _CONTAINER_RESULT:
            return None
        named = sorted(zip(self._owner.log_names, self.metrics), key=lambda p: p[0])
        kernels = [m._result_kernel(_own(type(m), "result")) for _, m in named]
        if any(k is None for k in kernels):
            return None
        return lambda: tuple(value for kernel in kernels for value in kernel())

    def reset_state(self) -> None:
        """Resets every compiled metric."""
        for metric in self.metrics if hasattr(self, "_owner") else []:
            metric.reset_state()


# =========================================================================== Model


def _own(cls: type, method: str) -> Callable | None:
    """The function a metric class runs for `method` (under its recording wrapper)."""
    bound = getattr(cls, method, None)
    return getattr(bound, "__wrapped__", bound)


_CONTAINER_UPDATE = _own(CompileMetrics, "update_state")
_CONTAINER_RESULT = _own(CompileMetrics, "result")
