"""The trainer: `compile`, the metrics API and the public per-batch steps.

`Trainer` is the part of `keras.Model` that trains, as in Keras 3 (`Model` is a
`Layer` and a `Trainer`). `train_step`, `test_step` and `predict_step` run one
batch and are what `fit`, `evaluate` and `predict` (`trainers.loops`) call, so a
subclass overriding them customises those loops ("Customizing what happens in
fit()"). The default `train_step` hands its gradients to
`self.optimizer.apply_gradients`, which a distribution strategy routes to the
parameter servers. A model's strategy (the one whose scope it was built in) is
entered around every public training method (`in_strategy_scope`).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable
from typing import Any

from distflow import ops, strategy_stack
from distflow.keras import metrics as metrics_module
from distflow.keras.layers.base import Layer, _call_parameters
from distflow.keras.trainers.compile_utils import Compiled, batch_rows
from distflow.keras.trainers.data_adapters import unpack_x_y_sample_weight
from distflow.keras.trainers.step_functions import StepFunctions
from distflow.tensor import GradientTape, Tensor

__all__ = ["StepCache", "StrategyMixin", "Trainer", "in_strategy_scope"]


def _layer_losses(layers: list[Layer]) -> list[Tensor]:
    """What `Model.losses` returns, from a layer list computed once per `fit` (hot path)."""
    out = []
    for layer in layers:
        for loss in layer._call_losses:
            out.append(loss() if callable(loss) else loss)
        for regularizer, var in layer._regularized:
            out.append(regularizer(var))
    return out


def in_strategy_scope(training: bool) -> Callable:
    """Runs a `Model` method in the model's strategy's scope (`Model._strategy_scope`)."""
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self: Trainer, *args: Any, **kwargs: Any) -> Any:
            with self._strategy_scope(method.__name__, training):
                return method(self, *args, **kwargs)
        return wrapper
    return decorate


class StepCache:
    """The variables and layers of a model, computed once per `fit`/`evaluate` (hot path).

    Installed as `model._step_cache` for the duration of a `with` block; an object
    (not a list) so that `Layer._sublayers` does not take its layers for sublayers.
    """

    def __init__(self, model: Trainer, variables: list | None, layers: list[Layer]):
        self.model, self.variables, self.layers = model, variables, layers
        self._metrics: list[Any] | None = None

    def attribute_metrics(self) -> list[Any]:
        """The metrics held as attributes of the model and its layers (found once)."""
        if self._metrics is None:
            self._metrics = self.model._attribute_metrics(self.layers)
        return self._metrics

    def __enter__(self) -> StepCache:
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


class StrategyMixin:
    """The distribution strategy a model belongs to, and entering its scope.

    TF's `model.distribute_strategy`: the strategy whose `scope()` the model (or,
    once built, its variables) was created in. `in_strategy_scope` enters it around
    `fit`, `evaluate`, `predict` and the `*_on_batch` methods.
    """

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


class Trainer(StrategyMixin, StepFunctions):
    """Training for a `Layer` subclass: `compile`, metrics, losses and the per-batch steps.

    Mixed into `keras.Model` (which is also a `Layer`: the trainer uses its
    `__call__`, `trainable_variables`, `_flatten_layers` and functional graph).
    """

    def __init__(self) -> None:
        self.optimizer: Any = None
        self.loss: Any = None
        self.compiled = False
        self.stop_training = False
        self.history: Any = None
        self._compiled: Compiled | None = None
        self._compile_config: dict | None = None
        self._initial_epoch: int | None = None
        # The strategy whose scope() the model was built in (None: none), as TF records it.
        self._distribute_strategy = strategy_stack.current()

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
            run_eagerly: False (the default, as Keras): `fit`, `evaluate`, `predict`
                and the `*_on_batch` methods run the steps traced into graphs by
                `distflow.function` (`trainers.step_functions`); True: eagerly.
            steps_per_execution / jit_compile: accepted for Keras compatibility;
                steps run one at a time, compiled by distflow's own executor.
            **kwargs: `auto_scale_loss` (default True): under the 'mixed_float16' policy,
                wrap the optimizer in a `LossScaleOptimizer`, as Keras.
        """
        from distflow import optimizers
        from distflow.optimizers.loss_scale import LossScaleOptimizer

        unknown = sorted(set(kwargs) - {"auto_scale_loss", "sample_weight_mode"})
        if unknown:
            raise TypeError(f"Invalid keyword argument(s) in `compile()`: {unknown}")
        self.optimizer = optimizers.get(optimizer)
        if (kwargs.get("auto_scale_loss", True) and self._policy == "mixed_float16"
                and not isinstance(self.optimizer, LossScaleOptimizer)):
            self.optimizer = LossScaleOptimizer(self.optimizer, name="loss_scale_optimizer")
        self.loss = loss
        self._compiled = Compiled(loss, loss_weights, metrics, weighted_metrics)
        self._compiled.build(self._known_output_names())
        self._compile_config = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics,
                                "weighted_metrics": weighted_metrics}
        self.compiled = True
        self.run_eagerly = bool(run_eagerly)  # also drops the traced steps

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
            if layer is not self and not isinstance(layer, Trainer):
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
        self._compiled.loss_tracker.update_state(loss, sample_weight=batch_rows(y_pred))
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
        if self._compiled is not None and self._compiled.has_metrics:
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
        x, y, sample_weight = unpack_x_y_sample_weight(data)
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
        x, y, sample_weight = unpack_x_y_sample_weight(data)
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
        x, _, _ = unpack_x_y_sample_weight(data)
        return self(x, training=False)

    def _track_loss(self, loss: Any, x: Any) -> None:
        if self._compiled is not None:
            self._compiled.loss_tracker.update_state(loss, sample_weight=batch_rows(x))
