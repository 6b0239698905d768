"""Keras models: `Model` (functional and subclassed), `Sequential`, and the training loop.

`compile` resolves the optimizer, loss and metrics once; `fit` draws batches
through index arrays (no copy of the data set per epoch), runs the forward pass
under a `GradientTape`, and hands the gradients to `optimizer.apply_gradients`
(which a distribution strategy may route to parameter servers). How batches are
split between workers, shuffled and who prints is asked of
`training_context.current()` (see that module's docstring).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from distflow import ops, random, strategy_stack
from distflow.data import Dataset, auto_shard
from distflow.keras import metrics as metrics_module
from distflow.keras import training_context
from distflow.keras.functional import GraphNetwork, InputLayer, KerasTensor, Node
from distflow.keras.layers.base import Layer, _call_parameters, _flat, _map, _map_shapes
from distflow.tensor import GradientTape, Tensor

__all__ = ["Functional", "Model", "Sequential", "clone_model", "load_model", "model_from_json",
           "save_model"]


# =========================================================================== data


def _to_array(x: Any) -> np.ndarray:
    """An ndarray for one input; float64 becomes float32 once here, not in every step."""
    arr = x.value if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Model data must be numeric. Received an array of dtype {arr.dtype} "
                        "(convert it with .astype('float32') first).")
    return arr


def _to_arrays(data: Any) -> Any:
    """Arrays in the structure of `data`: an array, a list/tuple of arrays or a dict.

    A list whose items are all arrays is several inputs; any other list (of numbers)
    is one array, as Keras reads them.
    """
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: _to_arrays(v) for k, v in data.items()}
    if isinstance(data, list | tuple) and data and all(
            isinstance(d, np.ndarray | Tensor | dict) for d in data):
        return [_to_arrays(d) for d in data]
    return _to_array(data)


def _num_rows(data: Any) -> list[int]:
    return [a.shape[0] if a.ndim else 1 for a in _flat(data) if a is not None]


def _take(data: Any, index: Any) -> Any:
    """Rows `index` (a slice or an index array) of every array in `data`."""
    if data is None:
        return None
    if isinstance(data, np.ndarray):
        return data[index]
    return _map(lambda a: a[index], data)


def _check_cardinality(x: Any, y: Any, sample_weight: Any) -> int:
    sizes = {"x": _num_rows(x), "y": _num_rows(y), "sample_weight": _num_rows(sample_weight)}
    distinct = {n for v in sizes.values() for n in v}
    if len(distinct) > 1:
        detail = "\n".join(f"'{k}' sizes: {', '.join(map(str, v))}" for k, v in sizes.items()
                           if v)
        raise ValueError("Data cardinality is ambiguous. Make sure all arrays contain the same "
                         f"number of samples.\n{detail}")
    return distinct.pop() if distinct else 0


def _numpy(t: Any) -> Any:
    return t.value if isinstance(t, Tensor) else np.asarray(t)


def _split_validation(x: Any, y: Any, sample_weight: Any, fraction: float
                      ) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
    """Keras's rule: the last `fraction` of the rows (before any shuffling) validates."""
    n = _num_rows(x)[0]
    split_at = int(math.floor(n * (1.0 - fraction)))
    if split_at == 0 or split_at == n:
        raise ValueError(f"Training data contains {n} samples, which is not sufficient to split "
                         f"it into a validation and training set as specified by "
                         f"`validation_split={fraction}`. Either provide more data, or a "
                         "different value for the `validation_split` argument.")
    head, tail = slice(0, split_at), slice(split_at, None)
    return (tuple(_take(d, head) for d in (x, y, sample_weight)),
            tuple(_take(d, tail) for d in (x, y, sample_weight)))


def _unpack(element: Any) -> tuple[Any, Any, Any]:
    """(x, y, sample_weight) from a data set element, as Keras unpacks it."""
    if isinstance(element, list):
        element = tuple(element)
    if not isinstance(element, tuple):
        return element, None, None
    if len(element) == 1:
        return element[0], None, None
    if len(element) == 2:
        return element[0], element[1], None
    if len(element) == 3:
        return element
    raise ValueError("Data set elements must be x, (x,), (x, y) or (x, y, sample_weight). "
                     f"Received a tuple of {len(element)} items.")


def _positive_int(name: str, value: Any, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative int. Received: {name}={value!r}")
    return int(value)


def _worker_rows(n: int, ctx: training_context.TrainingContext) -> tuple[int, int]:
    """The [begin, end) rows of an n-row global batch that this worker trains on."""
    k, workers = ctx.worker_index, ctx.num_workers
    return k * n // workers, (k + 1) * n // workers


class _ArrayBatches:
    """Batches of in-memory arrays, drawn through index arrays, for one worker.

    With `ctx.batch_size_is_global`, every worker shuffles identically, takes the
    same global batches and keeps its slice of each; otherwise rows are sharded
    (`worker_index::num_workers`) and `batch_size` is per worker.
    """

    def __init__(self, x: Any, y: Any, sample_weight: Any, batch_size: int, shuffle: Any,
                 ctx: training_context.TrainingContext, steps: int | None = None):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.n = _check_cardinality(x, y, sample_weight)
        self.batch_size, self.shuffle, self.ctx = batch_size, shuffle, ctx
        self.split_global = ctx.batch_size_is_global and ctx.num_workers > 1
        sharded = ctx.num_workers > 1 and not ctx.batch_size_is_global
        self.rows = np.arange(ctx.worker_index, self.n, ctx.num_workers) if sharded else None
        m = self.n if self.rows is None else len(self.rows)
        if sharded and ctx.drop_remainder:  # equal step counts on every worker
            m = self.n // ctx.num_workers
        full, rest = divmod(m, batch_size)
        self.steps = full + (1 if rest and not ctx.drop_remainder else 0)
        if steps is not None:
            self.steps = min(self.steps, steps)

    def first_x(self) -> Any:
        return _take(self.x, slice(0, 1))

    def _order(self, epoch: int) -> np.ndarray | None:
        """Row order of this epoch (None: rows in order, taken as slices)."""
        rows = self.rows
        if not self.shuffle or self.shuffle == "batch":
            return rows
        m = self.n if rows is None else len(rows)
        seed = self.ctx.shuffle_seed(epoch)
        # Unseeded: distflow's global generator, so `df.random.set_seed` makes `fit`
        # reproducible (as `tf.random.set_seed` does for Keras).
        perm = random.get_global_generator().permutation(m) if seed is None else \
            np.random.default_rng(seed).permutation(m)
        return perm if rows is None else rows[perm]

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[tuple[Any, Any, Any]]:
        """The batches of `epoch`, from its batch `skip` on."""
        order = self._order(epoch)
        b = self.batch_size
        for step in range(skip, self.steps):
            if order is None:
                index: Any = slice(step * b, min((step + 1) * b, self.n))
            else:
                index = order[step * b:(step + 1) * b]
            if self.split_global:
                size = (index.stop - index.start) if isinstance(index, slice) else len(index)
                begin, end = _worker_rows(size, self.ctx)
                index = slice(index.start + begin, index.start + end) \
                    if isinstance(index, slice) else index[begin:end]
            yield _take(self.x, index), _take(self.y, index), _take(self.sample_weight, index)


class _DatasetBatches:
    """Batches from a `distflow.data.Dataset` (or any re-iterable) yielding (x, y[, sw])."""

    def __init__(self, dataset: Any, ctx: training_context.TrainingContext,
                 steps: int | None, what: str = "x"):
        self.ctx = ctx
        self.split_global = ctx.batch_size_is_global and ctx.num_workers > 1
        if ctx.num_workers > 1 and not ctx.batch_size_is_global and hasattr(dataset, "shard"):
            dataset = auto_shard(dataset, ctx.num_workers, ctx.worker_index) \
                if isinstance(dataset, Dataset) else dataset.shard(ctx.num_workers,
                                                                   ctx.worker_index)
        self.dataset = dataset
        size = _cardinality(dataset)
        if size == -1 and steps is None:
            raise ValueError(f"`{what}` is an infinite data set (it repeats), so the number of "
                             "steps must be given: pass `steps_per_epoch` (or `steps` / "
                             "`validation_steps`).")
        self.steps = steps if steps is not None else (size if size >= 0 else None)
        self._persistent = steps is not None
        self._iterator: Iterator | None = None
        self._first: Any = None

    def first_x(self) -> Any:
        if self._first is None:
            self._first = _unpack(next(iter(self.dataset)))
        x = self._first[0]
        return _map(lambda a: np.asarray(a)[:1], x)

    def _next(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self.dataset)
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = None
            raise

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[tuple[Any, Any, Any]]:
        """The batches of `epoch`; the first `skip` are read and passed over."""
        if not self._persistent:  # one pass over the data set per epoch
            self._iterator = None
        produced = 0
        while self.steps is None or produced < self.steps:
            try:
                element = self._next()
            except StopIteration:
                if self._persistent and produced < self.steps:
                    warnings.warn("Your input ran out of data: the epoch ended after "
                                  f"{produced} of steps_per_epoch={self.steps} steps. Make sure "
                                  "the data set can produce `steps_per_epoch * epochs` batches "
                                  "(e.g. with .repeat()).", stacklevel=4)
                return
            produced += 1
            if produced > skip:
                yield self._split(_unpack(element))

    def _split(self, batch: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        batch = tuple(None if b is None else _to_arrays(b) for b in batch)
        if not self.split_global:
            return batch
        n = _num_rows(batch[0])[0]
        begin, end = _worker_rows(n, self.ctx)
        return tuple(_take(b, slice(begin, end)) for b in batch)


def _cardinality(dataset: Any) -> int:
    """Number of elements, -1 for infinite, -2 for unknown."""
    if hasattr(dataset, "cardinality"):
        return int(dataset.cardinality())
    try:
        return len(dataset)
    except TypeError:
        return -2


def _is_dataset(x: Any) -> bool:
    from distflow.data import Dataset

    if isinstance(x, Iterator):
        raise TypeError(f"A Python iterator or generator ({type(x).__name__}) cannot be passed "
                        "as `x`: it can only be read once. Wrap it in "
                        "distflow.data.Dataset.from_generator(...) (a function returning a new "
                        "generator each epoch) or pass arrays.")
    return isinstance(x, Dataset)


def _class_weights(y: Any, class_weight: dict) -> np.ndarray:
    """Per-sample weights from `class_weight` (labels as ints or one-hot rows)."""
    if not isinstance(class_weight, dict):
        raise ValueError("`class_weight` must be a dict mapping class index to weight. "
                         f"Received: class_weight={class_weight!r}")
    if not isinstance(y, np.ndarray):
        raise ValueError("`class_weight` is only supported for models with a single output.")
    labels = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    lookup = np.vectorize(lambda c: float(class_weight.get(int(c), 1.0)), otypes=[np.float32])
    return lookup(labels.astype(np.int64))


# =========================================================================== losses/metrics


def _to_float(value: Any) -> float:
    if isinstance(value, Tensor):
        value = value.value
    return float(np.asarray(value))


def _log_value(value: Any) -> Any:
    """A log entry as Keras's `pythonify_logs` makes it: a float when it is one number."""
    arr = value.value if isinstance(value, Tensor) else value
    try:
        return float(arr)
    except (TypeError, ValueError):
        return np.asarray(arr) if isinstance(arr, np.ndarray | Tensor) else arr


def _pythonify_logs(logs: Any) -> dict[str, Any]:
    """Flat {name: float} from a step's logs (nested dicts are merged in, as in Keras)."""
    out: dict[str, Any] = {}
    for key, value in (logs or {}).items():
        if isinstance(value, dict):
            out.update(_pythonify_logs(value))
        else:
            out[key] = _log_value(value)
    return out


def _pack(x: Any, y: Any, sample_weight: Any) -> Any:
    """The batch `train_step` gets, as Keras packs it: `x`, `(x,)`, `(x, y)` or `(x, y, sw)`."""
    if y is None and sample_weight is None:
        return (x,) if isinstance(x, list | tuple) else x
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def _as_tensors(structure: Any) -> Any:
    """Arrays of a batch wrapped (without copying) as the tensors Keras's steps receive."""
    if structure is None:
        return None
    return _map(lambda a: Tensor._wrap(a) if isinstance(a, np.ndarray) else a, structure)


def _batch_rows(x: Any) -> int:
    """Rows of the first input (the weight of a batch's loss in the loss tracker)."""
    for t in _flat(x):
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


class _Compiled:
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
        self.container = _CompileMetrics(self)
        self.has_metrics = metrics is not None or weighted_metrics is not None

    def build(self, names: list[str]) -> None:
        from distflow.keras import losses as losses_module

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
        flat = _flat(y_pred)
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
        total = None
        targets = _targets(y, self.names) if y is not None else [None] * len(self.names)
        for i, (fn, w) in enumerate(zip(self.loss_fns, self.weights)):
            if fn is None:
                continue
            if targets[i] is None:
                raise ValueError("Target data is missing. The model was compiled with a loss, "
                                 "so `fit`/`evaluate` need `y` (or a data set yielding (x, y)).")
            value = fn(targets[i], y_pred_flat[i], sample_weight=sample_weight)
            if self.output_losses:
                self.output_losses[i].update_state(_to_float(value),
                                                   sample_weight=_batch_rows(y_pred_flat[i]))
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
        if not self.metrics or y is None:
            return
        targets = _targets(y, self.names)
        for i, metric, weighted in self.metrics:
            if targets[i] is not None:
                metric.update_state(targets[i], _numpy(y_pred_flat[i]),
                                    sample_weight=sample_weight if weighted else None)

    def metric_names(self) -> list[str]:
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


class _CompileMetrics(metrics_module.Metric):
    """The metrics given to `compile` as one tracker, Keras 3's `compile_metrics`.

    `result()` is a dict {name: value} (output-prefixed for several outputs), which
    `get_metrics_result` merges into the logs; `update_state(y, y_pred, sample_weight)`
    is also what tf.keras 2's `self.compiled_metrics.update_state` does.
    """

    def __init__(self, compiled: _Compiled):
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

    def reset_state(self) -> None:
        """Resets every compiled metric."""
        for metric in self.metrics if hasattr(self, "_owner") else []:
            metric.reset_state()


# =========================================================================== Model


def _check_verbose(verbose: Any) -> int:
    if verbose == "auto":
        verbose = 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}")
    return int(verbose)


def _validate_now(epoch: int, validation_freq: Any) -> bool:
    if isinstance(validation_freq, int) and not isinstance(validation_freq, bool):
        if validation_freq <= 0:
            raise ValueError("`validation_freq` must be a positive int or a list of epochs. "
                             f"Received: validation_freq={validation_freq}")
        return (epoch + 1) % validation_freq == 0
    if isinstance(validation_freq, list | tuple | set | range):
        return epoch + 1 in validation_freq
    raise ValueError("`validation_freq` must be a positive int or a list of epochs. "
                     f"Received: validation_freq={validation_freq!r}")


def _concat_outputs(outputs: list[Any]) -> Any:
    first = outputs[0]
    if isinstance(first, dict):
        return {k: np.concatenate([o[k] for o in outputs]) for k in first}
    if isinstance(first, list | tuple):
        return [np.concatenate([o[i] for o in outputs]) for i in range(len(first))]
    return np.concatenate(outputs)


def _layer_losses(layers: list[Layer]) -> list[Tensor]:
    """What `Model.losses` returns, from a layer list computed once per `fit` (hot path)."""
    out = []
    for layer in layers:
        for loss in layer._call_losses:
            out.append(loss() if callable(loss) else loss)
        for regularizer, var in layer._regularized:
            out.append(regularizer(var))
    return out


def _in_strategy_scope(training: bool) -> Callable:
    """Runs a `Model` method in the model's strategy's scope (`Model._strategy_scope`)."""
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self: Model, *args: Any, **kwargs: Any) -> Any:
            with self._strategy_scope(method.__name__, training):
                return method(self, *args, **kwargs)
        return wrapper
    return decorate


class _StepCache:
    """The variables and layers of a model, computed once per `fit`/`evaluate` (hot path).

    Installed as `model._step_cache` for the duration of a `with` block; an object
    (not a list) so that `Layer._sublayers` does not take its layers for sublayers.
    """

    def __init__(self, model: Model, variables: list | None, layers: list[Layer]):
        self.model, self.variables, self.layers = model, variables, layers
        self._metrics: list[Any] | None = None

    def attribute_metrics(self) -> list[Any]:
        if self._metrics is None:
            self._metrics = self.model._attribute_metrics(self.layers)
        return self._metrics

    def __enter__(self) -> _StepCache:
        if self.variables is None:
            self.variables = self.model.trainable_variables
        self.previous = self.model.__dict__.get("_step_cache")
        object.__setattr__(self.model, "_step_cache", self)
        return self

    def __exit__(self, *exc: Any) -> None:
        object.__setattr__(self.model, "_step_cache", self.previous)


def _attribute_metrics(obj: Any) -> list[Any]:
    """Metrics held as attributes of `obj` (directly or in lists), as Keras tracks them."""
    found = []
    for key, value in obj.__dict__.items():
        if key.startswith("_"):
            continue
        if isinstance(value, metrics_module.Metric):
            found.append(value)
        elif isinstance(value, list | tuple):
            found += [v for v in value if isinstance(v, metrics_module.Metric)]
    return found


class Model(Layer):
    """A trainable stack of layers: `Model(inputs, outputs)` (functional) or a subclass.

    Functional: `Model(inputs=Input(...), outputs=<tensor from calling layers>)`.
    Subclassed: define layers in `__init__` (as attributes, lists allowed) and the
    forward pass in `call(inputs, training=False)`.

    Args:
        inputs: the functional model's input KerasTensor(s) (list or dict allowed).
        outputs: its output KerasTensor(s).
        name: model name.
        trainable: whether training updates its weights.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        if cls is Model and (len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs):
            return object.__new__(Functional)
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any):
        inputs = kwargs.pop("inputs", args[0] if args else None)
        outputs = kwargs.pop("outputs", args[1] if len(args) > 1 else None)
        if len(args) > 2:
            raise TypeError(f"Model() takes inputs and outputs as positional arguments; "
                            f"received {len(args)} positional arguments.")
        super().__init__(trainable=kwargs.pop("trainable", True), name=kwargs.pop("name", None),
                         dtype=kwargs.pop("dtype", None), **kwargs)
        self.optimizer: Any = None
        self.loss: Any = None
        self.compiled = False
        self.stop_training = False
        self.history: Any = None
        self._compiled: _Compiled | None = None
        self._compile_config: dict | None = None
        self._graph: GraphNetwork | None = None
        self._initial_epoch: int | None = None
        # The strategy whose scope() the model was built in (None: none), as TF records it.
        self._distribute_strategy = strategy_stack.current()
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("A functional Model needs both `inputs` and `outputs`. "
                                 f"Received: inputs={inputs}, outputs={outputs}")
            self._init_graph(inputs, outputs)

    def _init_graph(self, inputs: Any, outputs: Any) -> None:
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(outputs, tuple):
            outputs = list(outputs)
        self._graph = GraphNetwork(inputs, outputs)
        self._tracked_layers = list(self._graph.layers)
        self.built = True
        self._build_input_shape = _map(lambda t: t.shape, inputs)

    # ------------------------------------------------------------ forward

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        """Runs the functional graph (subclasses override this)."""
        if self._graph is None:
            raise NotImplementedError(f"Model '{self.name}' has no `call()`: subclass Model and "
                                      "implement call(self, inputs, training=False), or build "
                                      "a functional Model(inputs, outputs).")
        return self._graph.run(self._flat_model_inputs(inputs))

    def _flat_model_inputs(self, inputs: Any) -> list[Any]:
        g = self._graph
        if isinstance(inputs, dict):
            keys = list(g.inputs) if isinstance(g.inputs, dict) else [t.name for t in
                                                                       g.flat_inputs]
            missing = [k for k in keys if k not in inputs]
            if missing:
                raise ValueError(f"Model '{self.name}' expects inputs named {keys}; missing "
                                 f"{missing} in the data's keys {sorted(inputs)}.")
            flat = [inputs[k] for k in keys]
        else:
            flat = _flat(inputs) if isinstance(inputs, list | tuple) else [inputs]
        if len(flat) != len(g.flat_inputs):
            raise ValueError(f'Layer "{self.name}" expects {len(g.flat_inputs)} input(s), but '
                             f"it received {len(flat)} input tensors.")
        for i, (t, v) in enumerate(zip(g.flat_inputs, flat)):
            shape = tuple(v.shape)
            if len(shape) != len(t.shape) or any(
                    a is not None and a != b for a, b in zip(t.shape, shape)):
                raise ValueError(f'Input {i} of layer "{self.name}" is incompatible with the '
                                 f"layer: expected shape={t.shape}, found shape={shape}")
        return flat

    def _build_model(self, input_shape: Any = None) -> None:
        """Builds a subclassed model by running `call` once on zeros of `input_shape`."""
        if self._graph is not None or self.built:
            return
        if input_shape is None:
            raise ValueError(f"Model '{self.name}' cannot be built without an input shape. "
                             "Call model.build(input_shape) or call the model on data.")

        def zeros(shape: tuple) -> Tensor:
            return Tensor._wrap(np.zeros([1 if s is None else s for s in shape], self.dtype))
        dummy = _map_shapes(zeros, input_shape)
        params, var_kw = _call_parameters(type(self).call)
        kwargs = {"training": False} if "training" in params or var_kw else {}
        self.call(dummy, **kwargs)
        self._build_input_shape = input_shape
        self.built = True

    def _ensure_built(self, batches: Any) -> None:
        # A model without `call` (Keras's VAE guide) is trained by its own train_step
        # through its sublayers: nothing to build, as in Keras.
        if not self.built and (self._graph is not None or type(self).call is not Model.call):
            self(batches.first_x(), training=False)

    # ------------------------------------------------------------ structure

    @property
    def layers(self) -> list[Layer]:
        """The model's layers (functional: in graph order, InputLayers included)."""
        if self._graph is not None:
            return list(self._tracked_layers)
        return self._sublayers()

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name (or by index in `layers`)."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[layer.name for layer in self.layers]}.")

    @property
    def inputs(self) -> list[KerasTensor] | None:
        """The functional model's input tensors (a list), or None for a subclassed model."""
        return None if self._graph is None else list(self._graph.flat_inputs)

    @property
    def outputs(self) -> list[KerasTensor] | None:
        """The functional model's output tensors (a list), or None for a subclassed model."""
        return None if self._graph is None else list(self._graph.flat_outputs)

    @property
    def input(self) -> Any:
        """The input tensor(s) in the structure given to `Model`."""
        self._require_graph("input")
        return self._graph.inputs

    @property
    def output(self) -> Any:
        """The output tensor(s) in the structure given to `Model`."""
        self._require_graph("output")
        return self._graph.outputs

    @property
    def input_shape(self) -> Any:
        """Input shape (batch dimension None); a list for several inputs."""
        if self._graph is not None:
            shapes = [t.shape for t in self._graph.flat_inputs]
            return shapes[0] if len(shapes) == 1 else shapes
        if self._build_input_shape is None:
            raise AttributeError(f"Model '{self.name}' has no input shape yet: it has not been "
                                 "built (call it on data or call build(input_shape)).")
        return _map_shapes(lambda s: (None, *s[1:]), self._build_input_shape)

    @property
    def output_shape(self) -> Any:
        """Output shape (batch dimension None); a list for several outputs."""
        if self._graph is not None:
            shapes = [t.shape for t in self._graph.flat_outputs]
            return shapes[0] if len(shapes) == 1 else shapes
        if self._build_input_shape is None:
            raise AttributeError(f"Model '{self.name}' has no output shape yet: it has not "
                                 "been built.")
        return self.compute_output_shape(self.input_shape)

    def _require_graph(self, what: str) -> None:
        if self._graph is None:
            raise AttributeError(f"Model '{self.name}' has no `{what}`: only functional and "
                                 "built Sequential models have symbolic inputs and outputs.")

    def count_params(self) -> int:
        """Number of scalars in all weights (each shared weight counted once)."""
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on model '{self.name}', but the "
                             "model isn't built. Build it via `model.build(input_shape)` or by "
                             "calling it on data.")
        return int(sum(math.prod(v.shape) for v in self.weights))

    # ------------------------------------------------------------ compile

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Any = None, weighted_metrics: Any = None, run_eagerly: bool | None = None,
                steps_per_execution: int = 1, jit_compile: Any = None, **kwargs: Any) -> None:
        """Configures training: optimizer, loss and metrics (objects or Keras string names).

        Args:
            optimizer: an optimizer or its name ('rmsprop', 'adam', 'sgd', ...).
            loss: a loss (name, function or `Loss`); a list or dict for several outputs.
            loss_weights: per-output weights of the losses (list or dict).
            metrics: metric names or objects ('accuracy' is resolved from the loss);
                a dict or a list of lists for per-output metrics.
            weighted_metrics: metrics that also receive `sample_weight`.
            run_eagerly / steps_per_execution / jit_compile: accepted for Keras
                compatibility; distflow always runs eagerly, one step at a time.
            **kwargs: `auto_scale_loss` is accepted and ignored.
        """
        from distflow import optimizers

        unknown = sorted(set(kwargs) - {"auto_scale_loss", "sample_weight_mode"})
        if unknown:
            raise TypeError(f"Invalid keyword argument(s) in `compile()`: {unknown}")
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self._compiled = _Compiled(loss, loss_weights, metrics, weighted_metrics)
        self._compiled.build(self._known_output_names())
        self._compile_config = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics,
                                "weighted_metrics": weighted_metrics}
        self.compiled = True

    def _known_output_names(self) -> list[str]:
        if self._graph is not None:
            if isinstance(self._graph.outputs, dict):
                return list(self._graph.outputs)
            names = [t._node.layer.name for t in self._graph.flat_outputs]
            if len(names) > 1 and len(set(names)) == len(names):
                return names
            return ["output"] if len(names) == 1 else [f"output_{i + 1}"
                                                        for i in range(len(names))]
        return ["output"]

    def _assert_compiled(self, method: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before using `{method}()` on model "
                               f"'{self.name}', e.g. model.compile(optimizer='adam', "
                               "loss='sparse_categorical_crossentropy').")

    # ------------------------------------------------------------ metrics

    @property
    def metrics(self) -> list[Any]:
        """The metric trackers, in Keras 3's order.

        The loss tracker ('loss'), the compiled metrics as one `compile_metrics`
        tracker (when `compile` got metrics; its result is a dict), the per-output
        loss trackers, then metrics held as attributes of the model and of its
        (non-model) layers. `fit` and `evaluate` reset all of them (`reset_metrics`)
        at the start of each epoch or evaluation; a subclass may override this
        property to list its own trackers (as Keras's GAN and VAE guides do).
        """
        out = [] if self._compiled is None else self._compiled.trackers()
        cache = self.__dict__.get("_step_cache")
        layers = cache.layers if cache is not None else list(self._flatten_layers())
        out += cache.attribute_metrics() if cache is not None else \
            self._attribute_metrics(layers)
        for layer in layers:  # tf.keras 2's add_metric trackers, created during calls
            added = layer.__dict__.get("_added_metrics")
            if added:
                out += added.values()
        return out

    def _attribute_metrics(self, layers: list[Layer]) -> list[Any]:
        out = _attribute_metrics(self)
        for layer in layers:
            if layer is not self and not isinstance(layer, Model):
                out += _attribute_metrics(layer)
        return out

    @property
    def metrics_names(self) -> list[str]:
        """'loss' then the metric names, in the order `evaluate` returns their values."""
        return [] if self._compiled is None else self._compiled.metric_names()

    def reset_metrics(self) -> None:
        """Resets every tracker in `metrics` (what `fit` does at each epoch's start)."""
        for metric in self.metrics:
            metric.reset_state()

    def get_metrics_result(self) -> dict[str, Any]:
        """{name: value} of every tracker in `metrics`; dict results are merged in."""
        logs: dict[str, Any] = {}
        for metric in self.metrics:
            result = metric.result()
            if isinstance(result, dict):
                logs.update(result)
            else:
                logs[metric.name] = result
        return logs

    @property
    def compiled_metrics(self) -> Any:
        """tf.keras 2's `self.compiled_metrics`: `.update_state(y, y_pred, sample_weight)`.

        Updates the metrics given to `compile` (not the loss tracker), as tf.keras 2
        did. Keras 3 keeps it as a deprecated shim that also feeds the predictions to
        the loss tracker (so its 'loss' becomes the mean prediction): not copied.
        New code calls `compute_metrics`.
        """
        self._assert_compiled("compiled_metrics")
        return self._compiled.container

    def compiled_loss(self, y: Any, y_pred: Any, sample_weight: Any = None,
                      regularization_losses: Any = None) -> Tensor:
        """tf.keras 2's `self.compiled_loss(y, y_pred)`: the compiled loss plus `self.losses`.

        As in tf.keras 2 it also updates the 'loss' tracker (batch-size weighted), so
        a step returning `{m.name: m.result() for m in self.metrics}` reports the loss.
        `regularization_losses` is ignored: `self.losses` is always added, once.
        Deprecated in Keras 3 in favour of `compute_loss` (a warning says so).
        """
        warnings.warn("`model.compiled_loss()` is deprecated. Instead, use "
                      "`model.compute_loss(x, y, y_pred, sample_weight, training)`.",
                      stacklevel=2)
        self._assert_compiled("compiled_loss")
        loss = self.compute_loss(None, y, y_pred, sample_weight)
        self._compiled.loss_tracker.update_state(loss, sample_weight=_batch_rows(y_pred))
        return loss

    # ------------------------------------------------------------ steps

    def _step_state(self) -> tuple[list, list[Layer]]:
        """(trainable variables, layers), computed once per `fit` (the per-step hot path)."""
        cache = self.__dict__.get("_step_cache")
        if cache is not None:
            return cache.variables, cache.layers
        return self.trainable_variables, list(self._flatten_layers())

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                     sample_weight: Any = None, training: bool = True) -> Tensor:
        """The total loss of a batch: the compiled loss(es) plus `self.losses`.

        Override it to change the loss while keeping the default `train_step`.

        Args:
            x: the inputs (unused by the default).
            y: the targets (None when the model has only `add_loss` losses).
            y_pred: the model's outputs for `x`.
            sample_weight: per-sample weights of the compiled losses.
            training: whether this is a training step (unused by the default).

        Returns:
            A scalar tensor (differentiable with respect to the weights).

        Raises:
            ValueError: when there is no loss at all (no `loss` in `compile` and no
                `add_loss` or regularization loss).
        """
        extras = _layer_losses(self._step_state()[1])
        if self._compiled is None:
            if not extras:
                raise ValueError("No loss to compute. Provide a `loss` argument in "
                                 "`compile()`.")
            return ops.add_n(extras) if len(extras) > 1 else extras[0]
        flat = self._compiled.flat_outputs(y_pred)
        return self._compiled.compute_loss(y, flat, sample_weight, extras)

    def _compute_loss(self, x: Any, y: Any, y_pred: Any, sample_weight: Any,
                      training: bool) -> Tensor:
        """`compute_loss`, also for overrides written without the `training` argument."""
        params, var_kw = _call_parameters(type(self).compute_loss)
        if "training" in params or var_kw:
            return self.compute_loss(x, y, y_pred, sample_weight, training=training)
        return self.compute_loss(x, y, y_pred, sample_weight)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any,
                        sample_weight: Any = None) -> dict[str, Any]:
        """Updates the compiled metrics with a batch and returns `get_metrics_result()`.

        Args:
            x: the inputs (unused by the default).
            y: the targets (the metrics are not updated when None).
            y_pred: the model's outputs.
            sample_weight: weights passed to the `weighted_metrics`.
        """
        if self._compiled is not None:
            self._compiled.container.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    def train_step(self, data: Any) -> dict[str, Any]:
        """One training step; `fit` (and `train_on_batch`) call it for every batch.

        Override it to customise training as in Keras 3's guide "Customizing what
        happens in fit()". The default: forward pass under a `GradientTape`,
        `compute_loss`, the 'loss' tracker, `self.optimizer.apply_gradients` (which a
        distribution strategy routes to the parameter servers), `compute_metrics`.

        Args:
            data: the batch as Keras packs it: `x`, `(x, y)` or `(x, y, sample_weight)`
                (tensors; `x` and `y` may be lists or dicts for several inputs/outputs).

        Returns:
            {name: value} logs for the callbacks and History (dict values are merged in).
        """
        x, y, sample_weight = _unpack(data)
        variables = self._step_state()[0]
        with GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self._compute_loss(x, y, y_pred, sample_weight, training=True)
            scale = getattr(self.optimizer, "scale_loss", None)  # Keras's loss scaling
            scaled = loss if scale is None else scale(loss)
        self._track_loss(loss, x)
        if variables:
            grads = tape.gradient(scaled, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
        else:
            warnings.warn("The model does not have any trainable weights.", stacklevel=2)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data: Any) -> dict[str, Any]:
        """One evaluation step (inference mode); `evaluate` and validation call it.

        Args:
            data: as for `train_step`.

        Returns:
            {name: value} logs.
        """
        x, y, sample_weight = _unpack(data)
        y_pred = self(x, training=False)
        loss = self._compute_loss(x, y, y_pred, sample_weight, training=False)
        self._track_loss(loss, x)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def predict_step(self, data: Any) -> Any:
        """One prediction step; `predict` calls it and concatenates the results.

        Args:
            data: the batch of inputs (`x`, or a tuple whose first item is `x`).

        Returns:
            The model's outputs for the batch (tensors or arrays, in any structure).
        """
        x, _, _ = _unpack(data)
        return self(x, training=False)

    def _track_loss(self, loss: Any, x: Any) -> None:
        if self._compiled is not None:
            self._compiled.loss_tracker.update_state(loss, sample_weight=_batch_rows(x))

    def _callbacks(self, callbacks: Any, verbose: Any, epochs: int, steps: int | None,
                   add_history: bool) -> Any:
        from distflow.keras.callbacks import CallbackList

        verbose = _check_verbose(verbose)
        if not training_context.current().is_chief:
            verbose = 0  # only the chief prints
        if isinstance(callbacks, CallbackList):
            return callbacks
        return CallbackList(callbacks, add_history=add_history, add_progbar=verbose != 0,
                            model=self, verbose=verbose, epochs=epochs, steps=steps)

    # ------------------------------------------------------------ strategy

    @property
    def distribute_strategy(self) -> Any:
        """The strategy the model was built under (its variables'), else the default one."""
        return self._owner_strategy() or strategy_stack.default()

    def _owner_strategy(self) -> Any:
        """The recorded strategy, else (once built; looked up once) its variables'."""
        owner = getattr(self, "_distribute_strategy", None)
        if owner is not None or not self.built or self.__dict__.get("_owner_scanned"):
            return owner
        owner = next((v._distribute_strategy for v in self.weights
                      if v._distribute_strategy is not None), None)
        object.__setattr__(self, "_owner_scanned", True)  # not a tracked attribute
        object.__setattr__(self, "_distribute_strategy", owner)
        return owner

    def _strategy_scope(self, method: str, training: bool) -> Any:
        """The model's strategy's scope for `method`, entered wherever it is called.

        A model built outside every scope uses the scope in force (or none); under
        the launcher, training it with none is refused (`check_local_training`).
        """
        owner, active = self._owner_strategy(), strategy_stack.current()
        if owner is None or owner is active:
            if owner is None and active is None and training:
                strategy_stack.check_local_training(f"`model.{method}`")
            return contextlib.nullcontext()
        if active is not None:
            raise ValueError(
                f"`model.{method}` was called inside the scope of {active!r}, but the model "
                f"was built under {owner!r}: mixing different distribution strategies is "
                f"not supported. Call it outside that scope or inside the model's own.")
        return owner.scope()

    # ------------------------------------------------------------ fit

    @_in_strategy_scope(training=True)
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: Any = "auto", callbacks: Any = None, validation_split: float = 0.0,
            validation_data: Any = None, shuffle: Any = True, class_weight: dict | None = None,
            sample_weight: Any = None, initial_epoch: int = 0,
            steps_per_epoch: int | None = None, validation_steps: int | None = None,
            validation_batch_size: int | None = None, validation_freq: Any = 1,
            **kwargs: Any) -> Any:
        """Trains the model for `epochs` epochs; returns the `History` callback.

        Args:
            x: input data: an array, a list of arrays (several inputs), a dict keyed by
                input name, or a `distflow.data.Dataset` yielding (x, y[, sample_weight]).
            y: targets (arrays in the structure of the outputs); None with a data set.
            batch_size: rows per step (default 32); the global batch under a mirrored
                strategy, per worker under an asynchronous one. Not with a data set.
            epochs: index of the last epoch (training runs epochs initial_epoch..epochs-1).
            verbose: 'auto' (= 1), 0 (silent), 1 (progress bar), 2 (one line per epoch).
            callbacks: a list of `keras.callbacks.Callback`.
            validation_split: fraction of the arrays, taken from the end before
                shuffling, held out for validation.
            validation_data: (x_val, y_val[, sample_weight]) or a data set; overrides
                `validation_split`.
            shuffle: reshuffle the rows every epoch (arrays only); 'batch' keeps order.
            class_weight: {class index: weight} multiplying the loss of each sample.
            sample_weight: per-sample loss weights (arrays only).
            initial_epoch: epoch to start at (to resume a run).
            steps_per_epoch: steps per epoch; required for an infinite data set, whose
                iterator then continues across epochs.
            validation_steps: limit of validation steps (data sets).
            validation_batch_size: batch size of validation (default `batch_size`).
            validation_freq: validate every N epochs, or at the listed (1-based) epochs.
            **kwargs: `max_queue_size`, `workers`, `use_multiprocessing` are ignored.

        Returns:
            The `History` callback, whose `history` dict maps metric names to per-epoch
            values.
        """
        self._assert_compiled("fit")
        unknown = sorted(set(kwargs) - {"max_queue_size", "workers", "use_multiprocessing"})
        if unknown:
            raise TypeError(f"Invalid keyword argument(s) in `fit()`: {unknown}")
        epochs = _non_negative_int("epochs", epochs)
        initial_epoch = _non_negative_int("initial_epoch", initial_epoch)
        ctx = training_context.current()
        coordinated = getattr(ctx, "coordinated_fit", None)
        if coordinated is not None:  # a strategy that schedules fit's steps on its workers
            return coordinated(self, x, epochs, verbose, callbacks, steps_per_epoch,
                               initial_epoch, y=y, batch_size=batch_size,
                               validation_split=validation_split or None,
                               validation_data=validation_data, sample_weight=sample_weight,
                               class_weight=class_weight)
        train, val = self._fit_batches(ctx, x, y, sample_weight, class_weight, batch_size,
                                       shuffle, steps_per_epoch, validation_split,
                                       validation_data, validation_batch_size, validation_steps)
        self._ensure_built(train)
        cbs = self._callbacks(callbacks, verbose, epochs, train.steps, add_history=True)
        _validate_now(0, validation_freq)  # checks the argument before training starts
        return self._fit_loop(ctx, train, val, cbs, initial_epoch, epochs, validation_freq)

    def _fit_loop(self, ctx: training_context.TrainingContext, train: Any, val: Any, cbs: Any,
                  initial_epoch: int, epochs: int, validation_freq: Any) -> Any:
        self.stop_training = False
        self._initial_epoch = None
        variables = self.trainable_variables
        layers = list(self._flatten_layers())
        logs: dict[str, float] = {}
        cbs.on_train_begin()
        try:
            ctx.on_train_begin(self)
            # BackupAndRestore's epoch wins; else the context's (the servers' recorded
            # epoch when a distributed run resumes or a worker rejoins).
            start, skip = (self._initial_epoch, 0) if self._initial_epoch is not None \
                else ctx.resume_point(self, ctx.initial_epoch(self, initial_epoch), train.steps)
            if epochs <= start and start > initial_epoch:
                print(f"Training already finished: the run is at epoch {start} and fit's "
                      f"epochs={epochs}, so there is nothing to train. Pass a larger `epochs` "
                      f"to continue.", flush=True)
            for epoch in range(start, epochs):
                self.reset_metrics()
                ctx.on_epoch_begin(self, epoch)
                cbs.on_epoch_begin(epoch)
                try:
                    logs = self._train_epoch(train, epoch, cbs, variables, layers, skip)
                except training_context.StopTraining as stop:
                    print(str(stop), flush=True)
                    break
                skip = 0
                if val is not None and ctx.is_chief and _validate_now(epoch, validation_freq):
                    val_logs = self._run_test(val, cbs, layers)
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                cbs.on_epoch_end(epoch, logs)
                ctx.on_epoch_end(self, epoch, logs)  # may share or override stop_training
                if self.stop_training:
                    break
            if epochs > start:
                self.optimizer.finalize_variable_values(variables)  # Keras's EMA, if any
                ctx.on_training_done(self, epoch)
            cbs.on_train_end(logs)
        finally:
            self._initial_epoch = None
            ctx.on_train_end(self)
        return self.history

    def _train_epoch(self, train: Any, epoch: int, cbs: Any, variables: list,
                     layers: list[Layer], skip: int = 0) -> dict[str, float]:
        logs: dict[str, float] = {}
        step = -1
        with _StepCache(self, variables, layers):
            for step, (x, y, sample_weight) in enumerate(train.epoch(epoch, skip), start=skip):
                cbs.on_train_batch_begin(step)
                logs = _pythonify_logs(self.train_step(
                    _pack(*(_as_tensors(d) for d in (x, y, sample_weight)))))
                cbs.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
        if step < 0:
            raise ValueError(f"`fit` got no batch to train on in epoch {epoch}: the training "
                             "data is empty (or smaller than one batch on this worker with "
                             "drop_remainder). Pass more data or a smaller batch_size.")
        return dict(logs)

    def _run_test(self, batches: Any, cbs: Any, layers: list[Layer]) -> dict[str, float]:
        self.reset_metrics()
        cbs.on_test_begin()
        logs: dict[str, float] = {}
        with _StepCache(self, None, layers):
            for step, (x, y, sample_weight) in enumerate(batches.epoch(0)):
                cbs.on_test_batch_begin(step)
                logs = _pythonify_logs(self.test_step(
                    _pack(*(_as_tensors(d) for d in (x, y, sample_weight)))))
                cbs.on_test_batch_end(step, logs)
        cbs.on_test_end(logs)
        if not logs:
            raise ValueError("Evaluation got no data: the validation/test data is empty.")
        return dict(logs)

    # ------------------------------------------------------------ data preparation

    def _fit_batches(self, ctx: training_context.TrainingContext, x: Any, y: Any,
                     sample_weight: Any, class_weight: Any, batch_size: Any, shuffle: Any,
                     steps_per_epoch: Any, validation_split: Any, validation_data: Any,
                     validation_batch_size: Any, validation_steps: Any) -> tuple[Any, Any]:
        batch_size = _positive_int("batch_size", batch_size)
        steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
        if isinstance(validation_split, bool) or not isinstance(
                validation_split, int | float) or not 0 <= validation_split < 1:
            raise ValueError("`validation_split` must be a float in [0, 1). Received: "
                             f"validation_split={validation_split!r}")
        val_arrays = None
        if x is None:
            raise ValueError("`fit` needs training data: pass `x` (and `y`).")
        if _is_dataset(x):
            self._check_dataset_args(y, batch_size, sample_weight, class_weight,
                                     validation_split)
            train: Any = _DatasetBatches(x, ctx, steps_per_epoch)
        else:
            x, y, sample_weight = self._prepare_arrays(x, y, sample_weight, class_weight, "fit")
            if validation_split and validation_data is None:
                (x, y, sample_weight), val_arrays = _split_validation(
                    x, y, sample_weight, validation_split)
            train = _ArrayBatches(x, y, sample_weight, batch_size or 32, shuffle, ctx,
                                  steps_per_epoch)
        val = self._validation_batches(validation_data, val_arrays,
                                       validation_batch_size or batch_size, validation_steps)
        return train, val

    def _check_dataset_args(self, y: Any, batch_size: Any, sample_weight: Any,
                            class_weight: Any, validation_split: Any) -> None:
        given = {"y": y, "batch_size": batch_size, "sample_weight": sample_weight,
                 "class_weight": class_weight, "validation_split": validation_split or None}
        bad = [k for k, v in given.items() if v is not None]
        if bad:
            raise ValueError(f"When `x` is a data set, {bad} must not be given: the data set "
                             "yields (x, y[, sample_weight]) batches already. Use arrays for "
                             "validation_split, or pass validation_data.")

    def _prepare_arrays(self, x: Any, y: Any, sample_weight: Any, class_weight: Any,
                        method: str) -> tuple[Any, Any, Any]:
        x, y = _to_arrays(x), _to_arrays(y)
        if isinstance(x, list) and len(x) == 1:  # [x] for a single-input model, as Keras
            x = x[0]
        x = self._expand_rank(x)
        sample_weight = None if sample_weight is None else _to_array(sample_weight)
        if y is None and self.loss is not None and method != "predict":
            raise ValueError(f"Target data is missing. Your model was compiled with "
                             f"loss={self.loss!r}, and therefore expects target data to be "
                             f"provided in `{method}()`.")
        _check_cardinality(x, y, sample_weight)
        if class_weight is not None:
            weights = _class_weights(y, class_weight)
            sample_weight = weights if sample_weight is None else sample_weight * weights
        return x, y, sample_weight

    def _expand_rank(self, x: Any) -> Any:
        """Keras's rule: an input one rank short of a model input whose last dimension is 1
        gets that axis ((N,) data for `Input(shape=(1,))` becomes (N, 1))."""
        if self._graph is None:
            return x
        shapes = [t.shape for t in self._graph.flat_inputs]

        def expand(arr: Any, shape: tuple) -> Any:
            short = isinstance(arr, np.ndarray) and arr.ndim == len(shape) - 1
            return arr[..., None] if short and shape[-1] == 1 else arr
        if isinstance(x, np.ndarray) and len(shapes) == 1:
            return expand(x, shapes[0])
        if isinstance(x, list) and len(x) == len(shapes):
            return [expand(a, shape) for a, shape in zip(x, shapes)]
        return x

    def _validation_batches(self, validation_data: Any, val_arrays: Any, batch_size: Any,
                            steps: Any) -> Any:
        local = training_context.TrainingContext()  # the chief validates on all the data
        steps = _positive_int("validation_steps", steps)
        if validation_data is None and val_arrays is None:
            return None
        if validation_data is not None and _is_dataset(validation_data):
            return _DatasetBatches(validation_data, local, steps, what="validation_data")
        if validation_data is not None:
            if not isinstance(validation_data, list | tuple) or len(validation_data) not in (2, 3):
                raise ValueError("`validation_data` must be a tuple (x_val, y_val) or (x_val, "
                                 "y_val, val_sample_weight), or a data set. Received: "
                                 f"{type(validation_data).__name__}")
            x_val, y_val, sw_val = _unpack(tuple(validation_data))
            val_arrays = self._prepare_arrays(x_val, y_val, sw_val, None, "fit")
        return _ArrayBatches(*val_arrays, batch_size or 32, False, local, steps)

    def _eval_batches(self, x: Any, y: Any, sample_weight: Any, batch_size: Any, steps: Any,
                      method: str) -> Any:
        local = training_context.TrainingContext()  # all the data, in order, here
        batch_size = _positive_int("batch_size", batch_size)
        steps = _positive_int("steps", steps)
        if x is None:
            raise ValueError(f"`{method}` needs data: pass `x`.")
        if _is_dataset(x):
            self._check_dataset_args(y, batch_size, sample_weight, None, None)
            return _DatasetBatches(x, local, steps)
        x, y, sample_weight = self._prepare_arrays(x, y, sample_weight, None, method)
        return _ArrayBatches(x, y, sample_weight, batch_size or 32, False, local, steps)

    # ------------------------------------------------------------ evaluate / predict

    @_in_strategy_scope(training=False)
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: Any = "auto", sample_weight: Any = None, steps: int | None = None,
                 callbacks: Any = None, return_dict: bool = False, **kwargs: Any) -> Any:
        """Loss and metrics of the model on the given data (inference mode).

        Args:
            x, y, sample_weight: as for `fit` (a data set yields (x, y)).
            batch_size: rows per step (default 32).
            verbose: 'auto', 0, 1 or 2.
            steps: limit of steps.
            callbacks: callbacks receiving the `on_test_*` hooks.
            return_dict: return {name: value} instead of a list.

        Returns:
            The loss (a float) when there are no metrics, else [loss, *metrics] in the
            order of `metrics_names`; or a dict with `return_dict=True`.
        """
        self._assert_compiled("evaluate")
        batches = self._eval_batches(x, y, sample_weight, batch_size, steps, "evaluate")
        self._ensure_built(batches)
        cbs = self._callbacks(callbacks, verbose, 1, batches.steps, add_history=False)
        logs = self._run_test(batches, cbs, list(self._flatten_layers()))
        return self._format_logs(logs, return_dict)

    def _format_logs(self, logs: dict[str, float], return_dict: bool) -> Any:
        if return_dict:
            return logs
        known = self._compiled.metric_names()
        values = [logs[name] for name in known if name in logs]
        values += [logs[name] for name in sorted(set(logs) - set(known))]
        return values[0] if len(values) == 1 else values

    @_in_strategy_scope(training=False)
    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto",
                steps: int | None = None, callbacks: Any = None, **kwargs: Any) -> Any:
        """Model outputs for `x`, computed in batches in inference mode, as NumPy arrays.

        Args:
            x: arrays (as for `fit`) or a data set (its x part is used).
            batch_size: rows per step (default 32).
            verbose: 'auto', 0, 1 or 2.
            steps: limit of steps.
            callbacks: callbacks receiving the `on_predict_*` hooks.

        Returns:
            An array (or a list/dict of arrays for several outputs).
        """
        batches = self._eval_batches(x, None, None, batch_size, steps, "predict")
        self._ensure_built(batches)
        cbs = self._callbacks(callbacks, verbose, 1, batches.steps, add_history=False)
        cbs.on_predict_begin()
        outputs = []
        for step, (xb, _, _) in enumerate(batches.epoch(0)):
            cbs.on_predict_batch_begin(step)
            out = _map(_numpy, self.predict_step(_pack(_as_tensors(xb), None, None)))
            outputs.append(out)
            cbs.on_predict_batch_end(step, {"outputs": out})
        cbs.on_predict_end()
        if not outputs:
            raise ValueError("`predict` got no data: the input is empty.")
        return _concat_outputs(outputs)

    @_in_strategy_scope(training=True)
    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: dict | None = None, reset_metrics: bool = True,
                       return_dict: bool = False) -> Any:
        """One training step on one batch; returns the loss (and metrics) of that batch.

        With `reset_metrics=False` the metrics accumulate over successive calls.
        """
        self._assert_compiled("train_on_batch")
        x, y, sample_weight = self._prepare_arrays(x, y, sample_weight, class_weight,
                                                   "train_on_batch")
        if not self.built:
            self(_take(x, slice(0, 1)), training=False)
        if reset_metrics:
            self.reset_metrics()
        logs = self.train_step(_pack(*(_as_tensors(d) for d in (x, y, sample_weight))))
        return self._format_logs(_pythonify_logs(logs), return_dict)

    @_in_strategy_scope(training=False)
    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      reset_metrics: bool = True, return_dict: bool = False) -> Any:
        """Loss (and metrics) of one batch in inference mode."""
        self._assert_compiled("test_on_batch")
        x, y, sample_weight = self._prepare_arrays(x, y, sample_weight, None, "test_on_batch")
        if reset_metrics:
            self.reset_metrics()
        logs = self.test_step(_pack(*(_as_tensors(d) for d in (x, y, sample_weight))))
        return self._format_logs(_pythonify_logs(logs), return_dict)

    @_in_strategy_scope(training=False)
    def predict_on_batch(self, x: Any) -> Any:
        """`predict_step`'s outputs for one batch, as NumPy arrays."""
        batch = _as_tensors(self._expand_rank(_to_arrays(x)))
        return _map(_numpy, self.predict_step(_pack(batch, None, None)))

    # ------------------------------------------------------------ summary

    def summary(self, line_length: int | None = None, positions: list[float] | None = None,
                print_fn: Callable[..., Any] | None = None, expand_nested: bool = False,
                show_trainable: bool = False, layer_range: Any = None) -> None:
        """Prints the layer table: name (type), output shape, parameter count, totals.

        Args:
            line_length: total width (default 65, or 98 with a "Connected to" column).
            positions: relative (or absolute) right edges of the columns.
            print_fn: called with each line (default `print`).
            expand_nested / show_trainable / layer_range: accepted for compatibility.
        """
        if not self.built:
            raise ValueError(f"Model '{self.name}' has not yet been built. Build the model "
                             "first by calling `build()` or by calling the model on a batch "
                             "of data (or give the first layer an `input_shape`).")
        print_fn = print_fn or print
        for line in _summary_lines(self, line_length, positions):
            print_fn(line)

    # ------------------------------------------------------------ config and saving

    def get_config(self) -> dict[str, Any]:
        """Functional models: their layers and connections; subclassed: `__init__` args."""
        if self._graph is not None:
            return _functional_config(self)
        return super().get_config()

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Model:
        """Rebuilds a model from `get_config()`'s dict."""
        if "layers" in config and "input_layers" in config:
            target = Functional if cls is Model else cls
            return _functional_from_config(target, config, custom_objects)
        try:
            return cls(**config)
        except TypeError as exc:
            raise TypeError(f"Unable to revive model {cls.__name__} from its config {config}: "
                            f"{exc}. A subclassed model must implement `get_config()` "
                            "returning its constructor arguments (and `from_config` if they "
                            "need deserializing).") from exc

    def get_build_config(self) -> dict[str, Any] | None:
        """The input shape the model was built with (for saving)."""
        if not self.built or self._build_input_shape is None:
            return None
        shape = self._build_input_shape
        return {"input_shape": _map_shapes(lambda s: [None, *list(s)[1:]], shape)}

    def build_from_config(self, config: dict[str, Any] | None) -> None:
        """Builds the model from `get_build_config()`'s dict."""
        if config and config.get("input_shape") is not None and not self.built:
            shape = config["input_shape"]
            self.build(_map_shapes(tuple, shape))
            self.built = True

    def get_compile_config(self) -> dict[str, Any] | None:
        """The `compile()` arguments, JSON-safe (None when not compiled)."""
        from distflow.keras import saving

        return saving.serialize_compile_config(self) if self.compiled else None

    def compile_from_config(self, config: dict[str, Any],
                            custom_objects: dict | None = None) -> None:
        """Compiles the model from `get_compile_config()`'s dict."""
        from distflow.keras import saving

        saving.compile_from_config(self, config, custom_objects)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string (`models.model_from_json` reads it)."""
        from distflow.keras import saving

        return json.dumps(saving.serialize_model(self), default=saving._json_default, **kwargs)

    def save(self, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
        """Saves architecture, weights, compile and optimizer state to a `.keras` file."""
        from distflow.keras import saving

        saving.save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Saves the weights to a `*.weights.safetensors` file."""
        from distflow.keras import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any, skip_mismatch: bool = False, **kwargs: Any) -> None:
        """Loads weights saved by `save_weights` (or from a `.keras` file)."""
        from distflow.keras import saving

        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)


class Functional(Model):
    """A model defined by `Model(inputs, outputs)` (the class Keras names 'Functional')."""


# =========================================================================== Sequential


class Sequential(Model):
    """A linear stack of layers, each feeding the next.

    The model is built as soon as the input shape is known: from an `Input` /
    `InputLayer` given first, from the first layer's `input_shape=` /
    `input_dim=`, or from the first data it sees.

    Args:
        layers: optional list of layers (an `Input` tensor may come first).
        name: model name.
        trainable: whether training updates its weights.
    """

    def __init__(self, layers: list[Any] | None = None, name: str | None = None,
                 trainable: bool = True, **kwargs: Any):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._input_tensor: KerasTensor | None = None
        self._output_tensor: Any = None
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        """The layers in order (without the InputLayer)."""
        return list(self._tracked_layers)

    def add(self, layer: Any, rebuild: bool = True) -> None:
        """Appends a layer (or sets the input, for an `Input` tensor / `InputLayer`)."""
        if isinstance(layer, KerasTensor):
            if layer._node is None or not layer._node.is_input:
                raise ValueError("Only an `Input` tensor can be added to a Sequential model; "
                                 f"received {layer}.")
            layer = layer._node.layer
        if isinstance(layer, InputLayer):
            if self._tracked_layers or self._input_tensor is not None:
                raise ValueError("An InputLayer (or Input) can only be the first layer of a "
                                 f"Sequential model. Received it after {self.layers}.")
            self._input_tensor = layer.output
            return
        if not isinstance(layer, Layer):
            raise TypeError("The added layer must be an instance of class Layer. Received: "
                            f"layer={layer!r} of type {type(layer)}.")
        if any(existing.name == layer.name for existing in self._tracked_layers):
            raise ValueError("All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in this "
                             "model. Update the `name` argument to pass a unique name.")
        self._tracked_layers.append(layer)
        first_shape = getattr(layer, "_input_shape_arg", None)
        if self._input_tensor is None and len(self._tracked_layers) == 1 and \
                first_shape is not None:
            self._input_tensor = InputLayer(batch_shape=(layer._batch_size_arg, *first_shape),
                                            ).output
        if self._input_tensor is not None and rebuild:
            self._extend_graph(layer)

    def pop(self, rebuild: bool = True) -> Layer:
        """Removes and returns the last layer."""
        if not self._tracked_layers:
            raise TypeError("There are no layers in the model.")
        layer = self._tracked_layers.pop()
        self._output_tensor, self._graph = None, None
        if self._input_tensor is not None and self._tracked_layers and rebuild:
            self._rebuild()
        return layer

    def _extend_graph(self, layer: Layer) -> None:
        if self._output_tensor is None:
            self._rebuild()
            return
        self._set_output(layer(self._output_tensor))

    def _rebuild(self) -> None:
        x = self._input_tensor
        for layer in self._tracked_layers:
            x = layer(x)
        self._set_output(x)

    def _set_output(self, output: Any) -> None:
        if len(_flat(output)) != 1:
            raise ValueError("All layers in a Sequential model should have a single output "
                             f"tensor. For multi-output layers, use the functional API. Got "
                             f"{output}")
        self._output_tensor = output
        self._graph = GraphNetwork(self._input_tensor, output)
        self.built = True
        self._build_input_shape = self._input_tensor.shape

    def _build_sequential(self, input_shape: Any = None) -> None:
        """Builds the model for inputs of `input_shape` (batch dimension first)."""
        if self._input_tensor is None:
            if input_shape is None:
                raise ValueError("You must provide an `input_shape` argument.")
            shape = tuple(input_shape)
            self._input_tensor = InputLayer(batch_shape=(None, *shape[1:])).output
        if not self._tracked_layers:
            raise ValueError(f"Sequential model '{self.name}' has no layers: add some before "
                             "building or calling it.")
        self._rebuild()

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        x = inputs
        for layer in self._tracked_layers:
            x = layer(x)
        return x

    @property
    def input_shape(self) -> Any:
        if self._input_tensor is None:
            raise AttributeError(f"Sequential model '{self.name}' has no input shape yet: give "
                                 "the first layer an `input_shape` or call it on data.")
        return self._input_tensor.shape

    def get_config(self) -> dict[str, Any]:
        from distflow.keras import saving

        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": self.dtype,
                                  "layers": [saving.serialize_layer(layer)
                                             for layer in self._tracked_layers]}
        if self._input_tensor is not None:
            config["build_input_shape"] = list(self._input_tensor.shape)
            config["input_dtype"] = self._input_tensor.dtype
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None
                    ) -> Sequential:
        from distflow.keras import saving

        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        if config.get("build_input_shape") is not None:
            model.add(InputLayer(batch_shape=config["build_input_shape"],
                                 dtype=config.get("input_dtype")))
        for layer_config in config.get("layers", []):
            model.add(saving.deserialize_layer(layer_config, custom_objects))
        return model

    def get_build_config(self) -> dict[str, Any] | None:
        if self._input_tensor is None:
            return None
        return {"input_shape": list(self._input_tensor.shape)}


# Assigned after the class bodies on purpose: `Layer.__init_subclass__` wraps a `build`
# defined in a class body with a wrapper that requires `input_shape`, while Keras lets a
# model with a known input be built with `model.build()`. These set `built` themselves.
Model.build = Model._build_model  # type: ignore[method-assign]
Sequential.build = Sequential._build_sequential  # type: ignore[method-assign]


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True,
               safe_mode: bool = True) -> Model:
    """Loads a model saved with `model.save(path)` (a `.keras` file).

    Args:
        filepath: the `.keras` file.
        custom_objects: {name: class or function} for custom layers, losses, metrics.
        compile: restore the compile configuration and optimizer state.
        safe_mode: accepted for compatibility (nothing is ever unpickled).
    """
    from distflow.keras import saving

    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile)


def save_model(model: Model, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
    """Same as `model.save(filepath)`: a `.keras` archive."""
    model.save(filepath, overwrite=overwrite, **kwargs)


def clone_model(model: Model, custom_objects: dict | None = None) -> Model:
    """A new model with the same architecture (and layer names) and fresh weights.

    Args:
        model: a functional, Sequential or (config-serializable) subclassed model.
        custom_objects: classes of custom layers, by name.
    """
    from distflow.keras import saving

    config = {**saving.serialize_layer(model), "build_config": model.get_build_config()}
    return saving.deserialize_model(config, custom_objects)


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    """The (unbuilt-weights) model described by `model.to_json()`."""
    from distflow.keras import saving

    return saving.deserialize_model(json.loads(json_string), custom_objects)


# =========================================================================== summary


def _shape_text(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(v)}" for k, v in shape.items()) + "}"
    if isinstance(shape, tuple):
        return "(" + ", ".join("None" if s is None else str(s) for s in shape) + \
            ("," if len(shape) == 1 else "") + ")"
    return str(shape)


def _layer_nodes(model: Model, layer: Layer) -> list[Node]:
    nodes = [] if model._graph is None else [n for n in model._graph.nodes if n.layer is layer]
    if not nodes and isinstance(layer, InputLayer):
        nodes = [layer._inbound_nodes[0]]
    return nodes


def _output_shape_text(model: Model, layer: Layer) -> str:
    nodes = _layer_nodes(model, layer)
    if len(nodes) > 1:
        return "multiple"
    if nodes:
        return _shape_text(_map(lambda t: t.shape, nodes[0].outputs))
    if layer.built and layer._build_input_shape is not None:
        try:  # a subclassed model's layer: the shape of its last build
            shape = layer.compute_output_shape(layer._build_input_shape)
            return _shape_text(_map_shapes(lambda s: (None, *s[1:]), shape))
        except Exception:  # noqa: BLE001 - the summary must print whatever the layer does
            pass
    return "?"


def _connections(model: Model, layer: Layer) -> list[str]:
    names = []
    for node in _layer_nodes(model, layer):
        for t in node.input_tensors:
            parent = t._node.layer
            names.append(f"{parent.name}[{parent._inbound_nodes.index(t._node)}][{t._index}]")
    return names or ["-"]


def _is_branched(model: Model) -> bool:
    if model._graph is None or isinstance(model, Sequential):
        return False
    g = model._graph
    return len(g.flat_inputs) > 1 or len(g.flat_outputs) > 1 or any(
        len(n.input_tensors) != 1 for n in g.nodes) or len(g.nodes) != len(
        {id(n.layer) for n in g.nodes})


def _readable_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def _param_totals(variables: list) -> tuple[int, int]:
    count = sum(math.prod(v.shape) for v in variables)
    size = sum(math.prod(v.shape) * v.value.dtype.itemsize for v in variables)
    return int(count), int(size)


def _summary_lines(model: Model, line_length: int | None, positions: Any) -> list[str]:
    branched = _is_branched(model)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if branched else [])
    rows = []
    for layer in model.layers:
        params, _ = _param_totals(layer.weights)
        links = _connections(model, layer) if branched else []
        rows.append([f"{layer.name} ({type(layer).__name__})", _output_shape_text(model, layer),
                     f"{params:,}"] + links[:1])
        rows.extend(["", "", ""] + [link] for link in links[1:])
    widths = _column_widths(headers, rows, line_length or (98 if branched else 65), positions)
    total = sum(widths)

    def fmt(cells: list[str]) -> str:
        return "".join(f" {c}".ljust(w) for c, w in zip(cells, widths)).rstrip()
    all_count, all_size = _param_totals(model.weights)
    train_count, train_size = _param_totals(model.trainable_weights)
    lines = [f'Model: "{model.name}"', "_" * total, fmt(headers), "=" * total]
    lines += [fmt(r) for r in rows]
    lines += ["=" * total,
              f"Total params: {all_count:,} ({_readable_bytes(all_size)})",
              f"Trainable params: {train_count:,} ({_readable_bytes(train_size)})",
              f"Non-trainable params: {all_count - train_count:,} "
              f"({_readable_bytes(all_size - train_size)})",
              "_" * total]
    return lines


def _column_widths(headers: list[str], rows: list[list[str]], line_length: int,
                   positions: Any) -> list[int]:
    if positions is None:
        positions = [.45, .84, 1.] if len(headers) == 3 else [.3, .6, .7, 1.]
    edges = [int(line_length * p) if p <= 1 else int(p) for p in positions][:len(headers)]
    widths = [b - a for a, b in zip([0, *edges[:-1]], edges)]
    for i in range(len(headers)):
        needed = max(len(r[i]) for r in [headers, *rows] if len(r) > i) + 2
        widths[i] = max(widths[i], needed)
    return widths


# =========================================================================== functional config


def _node_keys(model: Model) -> dict[int, tuple[str, int]]:
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


def _functional_config(model: Model) -> dict[str, Any]:
    from distflow.keras import saving

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


def _functional_from_config(cls: type, config: dict[str, Any],
                            custom_objects: dict | None) -> Model:
    from distflow.keras import saving

    created: dict[str, Layer] = {}
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
            produced[(name, index)] = _flat(outputs)
        if len(waiting) == len(pending):
            raise ValueError("Cannot rebuild the functional model from its config: the inputs "
                             f"of layer(s) {sorted({w[0] for w in waiting})} are never produced "
                             "(the config is corrupt or incomplete).")
        pending = waiting
    return cls(inputs=_decode(config["input_layers"], produced),
               outputs=_decode(config["output_layers"], produced),
               name=config.get("name"), trainable=config.get("trainable", True))
