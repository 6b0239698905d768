"""The loops: `fit`, `evaluate`, `predict` and the `*_on_batch` methods.

`fit` asks `training_context.current()` how batches are split between workers,
who prints and which epoch to start at (that module's docstring), gets its
batches from `data_adapters`, and drives the callbacks around one public
`train_step` per batch (`test_step` for validation). `evaluate` and `predict`
run `test_step` / `predict_step` over all the data on this process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras import training_context
from distflow.keras.callbacks.callback_list import CallbackList
from distflow.keras.layers.base import Layer
from distflow.keras.trainers import data_adapters
from distflow.keras.trainers.data_adapters import (
    non_negative_int,
    step_data,
    to_numpy,
)
from distflow.keras.trainers.trainer import StepCache, Trainer, in_strategy_scope
from distflow.keras.tree import map_structure
from distflow.tensor import Tensor

__all__ = ["Loops"]


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



class Loops(Trainer):
    """`fit`, `evaluate`, `predict` and the `*_on_batch` methods of `keras.Model`."""

    @in_strategy_scope(training=True)
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
        epochs = non_negative_int("epochs", epochs)
        initial_epoch = non_negative_int("initial_epoch", initial_epoch)
        ctx = training_context.current()
        coordinated = getattr(ctx, "coordinated_fit", None)
        if coordinated is not None:  # a strategy that schedules fit's steps on its workers
            return coordinated(self, x, epochs, verbose, callbacks, steps_per_epoch,
                               initial_epoch, y=y, batch_size=batch_size,
                               validation_split=validation_split or None,
                               validation_data=validation_data, sample_weight=sample_weight,
                               class_weight=class_weight)
        train, val = data_adapters.fit_batches(
            ctx, x, y, sample_weight, class_weight, batch_size, shuffle, steps_per_epoch,
            validation_split, validation_data, validation_batch_size, validation_steps,
            **self._data_spec())
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
        cache = StepCache(self, variables, layers).__enter__()  # the metrics' layers, once
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
            cache.__exit__()
            self._initial_epoch = None
            ctx.on_train_end(self)
        return self.history

    def _train_epoch(self, train: Any, epoch: int, cbs: Any, variables: list,
                     layers: list[Layer], skip: int = 0) -> dict[str, float]:
        logs: dict[str, float] = {}
        step = -1
        with StepCache(self, variables, layers):
            train_function = self._train_function_for(variables)
            for step, (x, y, sample_weight) in enumerate(train.epoch(epoch, skip), start=skip):
                cbs.on_train_batch_begin(step)
                logs = _pythonify_logs(train_function(step_data(x, y, sample_weight)))
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
        with StepCache(self, None, layers):
            test_function = self.make_test_function()
            for step, (x, y, sample_weight) in enumerate(batches.epoch(0)):
                cbs.on_test_batch_begin(step)
                logs = _pythonify_logs(test_function(step_data(x, y, sample_weight)))
                cbs.on_test_batch_end(step, logs)
        cbs.on_test_end(logs)
        if not logs:
            raise ValueError("Evaluation got no data: the validation/test data is empty.")
        return dict(logs)


    def _callbacks(self, callbacks: Any, verbose: Any, epochs: int, steps: int | None,
                   add_history: bool) -> Any:
        verbose = _check_verbose(verbose)
        if not training_context.current().is_chief:
            verbose = 0  # only the chief prints
        if isinstance(callbacks, CallbackList):
            return callbacks
        return CallbackList(callbacks, add_history=add_history, add_progbar=verbose != 0,
                            model=self, verbose=verbose, epochs=epochs, steps=steps)

    # ------------------------------------------------------------ strategy

    @in_strategy_scope(training=False)
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
        batches = data_adapters.eval_batches(x, y, sample_weight, batch_size, steps,
                                             "evaluate", **self._data_spec())
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

    @in_strategy_scope(training=False)
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
        batches = data_adapters.eval_batches(x, None, None, batch_size, steps, "predict",
                                             **self._data_spec())
        self._ensure_built(batches)
        cbs = self._callbacks(callbacks, verbose, 1, batches.steps, add_history=False)
        cbs.on_predict_begin()
        outputs = []
        predict_function = self.make_predict_function()
        for step, (xb, _, _) in enumerate(batches.epoch(0)):
            cbs.on_predict_batch_begin(step)
            out = map_structure(to_numpy, predict_function(step_data(xb)))
            outputs.append(out)
            cbs.on_predict_batch_end(step, {"outputs": out})
        cbs.on_predict_end()
        if not outputs:
            raise ValueError("`predict` got no data: the input is empty.")
        return _concat_outputs(outputs)

    @in_strategy_scope(training=True)
    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: dict | None = None, reset_metrics: bool = True,
                       return_dict: bool = False) -> Any:
        """One training step on one batch; returns the loss (and metrics) of that batch.

        With `reset_metrics=False` the metrics accumulate over successive calls.
        """
        self._assert_compiled("train_on_batch")
        x, y, sample_weight = data_adapters.prepare_arrays(
            x, y, sample_weight, class_weight, "train_on_batch", **self._data_spec())
        if not self.built:
            self(data_adapters.take(x, slice(0, 1)), training=False)
        if reset_metrics:
            self.reset_metrics()
        logs = self._train_function_for(self.trainable_variables)(
            step_data(x, y, sample_weight))
        return self._format_logs(_pythonify_logs(logs), return_dict)

    @in_strategy_scope(training=False)
    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      reset_metrics: bool = True, return_dict: bool = False) -> Any:
        """Loss (and metrics) of one batch in inference mode."""
        self._assert_compiled("test_on_batch")
        x, y, sample_weight = data_adapters.prepare_arrays(
            x, y, sample_weight, None, "test_on_batch", **self._data_spec())
        if reset_metrics:
            self.reset_metrics()
        logs = self.make_test_function()(step_data(x, y, sample_weight))
        return self._format_logs(_pythonify_logs(logs), return_dict)

    @in_strategy_scope(training=False)
    def predict_on_batch(self, x: Any) -> Any:
        """`predict_step`'s outputs for one batch, as NumPy arrays."""
        x = data_adapters.expand_rank(data_adapters.to_arrays(x), self._data_spec()["input_shapes"])
        return map_structure(to_numpy, self.make_predict_function()(step_data(x)))

    def _data_spec(self) -> dict[str, Any]:
        """What the data adapters need of the model: its loss and its inputs' shapes."""
        graph = self.__dict__.get("_graph")
        shapes = None if graph is None else [t.shape for t in graph.flat_inputs]
        return {"loss": self.loss, "input_shapes": shapes}
