"""The `Optimizer` base class and the apply-override hook used by strategies.

An optimizer owns hyper-parameters, a step counter (`iterations`) and, when it
updates locally, one slot dict per variable; the arithmetic is a rule from
`distflow.optimizers.rules`. Inside `strategy.scope()` a distribution strategy
installs an override with `apply_override(fn)`: `apply_gradients` then clips
the gradients and hands them to `fn(optimizer, pairs)` (which pushes them to
the parameter servers) instead of updating locally. This package never imports
`distflow.distribute`.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from distflow import strategy_stack
from distflow.optimizers import rules, schedules
from distflow.optimizers.extras import OptimizerExtras
from distflow.tensor import GradientTape, Tensor, Variable, graph_form
from distflow.update_fold import APPLIED, GradientFold

ApplyOverride = Callable[["Optimizer", list], None]
_overrides: list[ApplyOverride] = []
_thread = threading.local()  # .overrides: installed for this thread only


@contextlib.contextmanager
def apply_override(fn: ApplyOverride) -> Iterator[None]:
    """While active, `Optimizer.apply_gradients` calls `fn(optimizer, pairs)` instead."""
    _overrides.append(fn)
    try:
        yield
    finally:
        _overrides.remove(fn)


@contextlib.contextmanager
def thread_apply_override(fn: ApplyOverride) -> Iterator[None]:
    """As `apply_override`, for the calling thread only (it wins there over the others)."""
    local = _thread.__dict__.setdefault("overrides", [])
    local.append(fn)
    try:
        yield
    finally:
        local.pop()


def get_apply_override() -> ApplyOverride | None:
    """The innermost override of this thread, else of the process, or None (local updates)."""
    local = getattr(_thread, "overrides", None)
    if local:
        return local[-1]
    return _overrides[-1] if _overrides else None


_BASE_ARGS = ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "use_ema",
              "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
              "gradient_accumulation_steps")


class Optimizer(OptimizerExtras):
    """Base class of the Keras-style optimizers.

    `learning_rate` is a float32 `Variable` (`.assign()`, `.numpy()`,
    `keras.backend.set_value`) unless it is a schedule; `iterations` is an int64
    `Variable` counting applied steps. Under a distribution strategy a changed
    learning rate reaches the servers with the next push.

    Args:
        learning_rate: a float or a `schedules.LearningRateSchedule`.
        name: display name.
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients jointly to this global L2 norm
            (at most one of the three clipping arguments, as in Keras).
        weight_decay: decoupled weight decay (see `rules`).
        use_ema: keep an exponential moving average of the updated variables
            (Keras's: average = m * average + (1 - m) * variable after each step, m = 0
            at the first); `finalize_variable_values` (which `fit` calls at its end)
            writes the averages into the variables. Local training only.
        ema_momentum: m above, in [0, 1].
        ema_overwrite_frequency: also write the averages into the variables every
            N steps (None: only at the end).
        loss_scale_factor: `scale_loss` multiplies the loss by it and
            `apply_gradients` divides the gradients by it (Keras's loss scaling).
        gradient_accumulation_steps: apply the mean of every N successive
            gradients (clipped after averaging) on every N-th call; `iterations`
            counts every call, as in Keras. Local training only.
        **hyper: the rule's other hyper-parameters; `lr` is tf.keras 2's name of
            `learning_rate` (accepted with a warning), `decay` is ignored with
            Keras 3's warning, anything else raises `ValueError` as in Keras 3.
    """

    rule_name = ""

    def __init__(self, learning_rate: Any, name: str | None = None, **kwargs: Any):
        self.rule = rules.get_rule(self.rule_name)
        learning_rate = _pop_legacy_kwargs(kwargs, learning_rate)
        base = {k: kwargs.pop(k) for k in _BASE_ARGS if k in kwargs}
        unknown = {k: v for k, v in kwargs.items() if k not in self.rule.defaults}
        if unknown:
            raise ValueError(f"Argument(s) not recognized: {unknown}")
        self._init_base(**base)
        self.name = name or type(self).__name__
        self.hyper = dict(kwargs)
        self._iterations = Variable(np.array(0, np.int64), name="iteration", trainable=False)
        self._lr_variable: Variable | None = None
        self.learning_rate = learning_rate
        self._slots: dict[str, dict[str, np.ndarray]] = {}
        # The strategy whose scope() it was created in (None: none), as in TF.
        self._distribute_strategy = strategy_stack.current()
        self._accumulated: dict[str, np.ndarray] = {}
        self._no_decay_ids: set[int] = set()
        self._no_decay_pattern: re.Pattern | None = None

    def _init_base(self, clipnorm: float | None = None, clipvalue: float | None = None,
                   global_clipnorm: float | None = None, weight_decay: float | None = None,
                   use_ema: bool = False, ema_momentum: float = 0.99,
                   ema_overwrite_frequency: int | None = None,
                   loss_scale_factor: float | None = None,
                   gradient_accumulation_steps: int | None = None) -> None:
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             f"set. Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        for key, value in {**clips, "weight_decay": weight_decay}.items():
            _check_optional_nonneg(key, value)
        if use_ema:
            _check_ema(ema_momentum, ema_overwrite_frequency)
        if gradient_accumulation_steps is not None and (
                isinstance(gradient_accumulation_steps, bool)
                or not isinstance(gradient_accumulation_steps, int)
                or gradient_accumulation_steps < 2):
            raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. Received: "
                             f"gradient_accumulation_steps={gradient_accumulation_steps!r}")
        if loss_scale_factor is not None:
            _check_optional_nonneg("loss_scale_factor", loss_scale_factor)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = weight_decay
        self.use_ema, self.ema_momentum = bool(use_ema), ema_momentum
        self._ema: dict[str, np.ndarray] = {}
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps

    # ------------------------------------------------------------ step counter

    @property
    def iterations(self) -> Variable:
        """The number of steps applied so far (an int64 `Variable`)."""
        return self._iterations

    @iterations.setter
    def iterations(self, value: Any) -> None:
        self._iterations.assign(int(np.asarray(value)))

    def _step_count(self) -> int:
        return int(self._iterations.value)

    # ------------------------------------------------------------ learning rate

    @property
    def learning_rate(self) -> Any:
        """The learning rate: a float32 `Variable`, or a schedule's (or a function's) value for
        the next step."""
        if self._learning_rate is not self._lr_variable:
            return Tensor._wrap(np.asarray(self._current_learning_rate(), np.float32))
        return self._lr_variable

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if isinstance(value, Tensor):
            value = float(np.asarray(value.value))
        if isinstance(value, schedules.LearningRateSchedule) or (
                callable(value) and not isinstance(value, type)):
            self._learning_rate = value  # a schedule, or Keras's function of no arguments
            return
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating) \
                or not math.isfinite(value) or value < 0:
            raise ValueError("`learning_rate` must be a non-negative float or a "
                             f"LearningRateSchedule. Received: learning_rate={value!r}")
        if self._lr_variable is None:
            self._lr_variable = Variable(np.array(value, np.float32), name="learning_rate",
                                         trainable=False)
        else:
            self._lr_variable.assign(value)
        self._learning_rate = self._lr_variable
        self._lr_float = float(value)  # the exact value while the variable still holds it

    lr = learning_rate  # the Keras 2 alias

    def _current_learning_rate(self) -> float:
        """The learning rate of the next step as a float (a schedule evaluated)."""
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            return float(self._learning_rate(self._step_count()))
        return float(self._learning_rate_source())

    def _learning_rate_source(self) -> Any:
        """The float (the variable's value, or a function's current value) or the schedule
        (what `get_config` serializes and the servers are told)."""
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            return self._learning_rate
        if self._learning_rate is not self._lr_variable:  # a function of no arguments
            return float(np.asarray(self._learning_rate()))
        held = self._lr_variable.value
        # The float given to the setter, unless the variable was assigned since
        # (`.assign()`, `backend.set_value`): then the variable's value.
        return self._lr_float if np.float32(self._lr_float) == held else float(held)

    def scale_loss(self, loss: Any) -> Any:
        """The loss times `loss_scale_factor` (unchanged when it is None), as in Keras."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    # ------------------------------------------------------------ applying

    # traced: an update operation of the graph, its kernel made once (`_traced_update`)
    @graph_form("effect", specialize=lambda *a, **k: _traced_update(*a, **k))
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> int:
        """Applies one step. Pairs whose gradient is None are skipped, as in Keras.

        Returns:
            The new `iterations` (inside a traced function, the update operation).
        """
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable. Check that the loss "
                             "depends on the variables (a gradient of None means unconnected).")
        for _, v in pairs:
            if not isinstance(v, Variable):
                raise TypeError(f"apply_gradients expects (gradient, Variable) pairs. "
                                f"Received a {type(v).__name__} in place of a Variable")
        if get_apply_override() is None:  # no strategy scope in force here
            owner = self._owner_strategy(pairs)
            if owner is None:
                strategy_stack.check_local_training("`optimizer.apply_gradients`")
            elif owner is not strategy_stack.current():
                with owner.scope():  # the variables' strategy, wherever this is called
                    return self.apply_gradients(pairs)
        grads = [_as_array(g, v) for g, v in pairs]
        if self.loss_scale_factor is not None:
            grads = [g / g.dtype.type(self.loss_scale_factor) for g in grads]
        if self.gradient_accumulation_steps:
            grads = self._accumulate(grads, [v for _, v in pairs])
        if grads is not None:
            pairs = list(zip(self._clip(grads), (v for _, v in pairs)))
            override = get_apply_override()
            if override is not None:
                _refuse_constraints(pairs)
                self._refuse_ema()
                self._refuse_decay_exclusions()
                override(self, pairs)
            else:
                self._apply_locally(pairs)
                _apply_constraints(pairs)
        if self.use_ema:
            self._update_ema([v for _, v in pairs])
        return _count_step(self._iterations)

    def _accumulate(self, grads: list[np.ndarray], variables: list[Variable]
                    ) -> list[np.ndarray] | None:
        """Keras's gradient accumulation: the mean on every N-th step, else None."""
        if get_apply_override() is not None:
            raise NotImplementedError(
                "`gradient_accumulation_steps` is not supported under a distribution strategy "
                "(the servers apply every push). Use a larger global batch instead.")
        steps = self.gradient_accumulation_steps
        sums = [self._accumulated.setdefault(v.name, np.zeros_like(g))
                for g, v in zip(grads, variables)]
        if (self._step_count() + 1) % steps:
            for total, g in zip(sums, grads):
                total += g
            return None
        out = [(g + total) / g.dtype.type(steps) for g, total in zip(grads, sums)]
        for total in sums:
            total.fill(0)
        return out

    def apply(self, grads: Iterable[Any], trainable_variables: Iterable[Variable] | None = None
              ) -> int:
        """Keras 3's `optimizer.apply(grads, trainable_variables)`: `apply_gradients` of the pairs.

        Goes through `apply_gradients`, so a distribution strategy's override routes
        it to the parameter servers in the same way.

        Args:
            grads: one gradient per variable (None skips that variable).
            trainable_variables: the variables; default: those the optimizer was built
                with (`build(var_list)`).
        """
        if trainable_variables is None:
            trainable_variables = getattr(self, "_built_variables", None)
            if trainable_variables is None:
                raise ValueError("`apply(grads)` without `trainable_variables` needs an "
                                 "optimizer built with `optimizer.build(var_list)` first. "
                                 "Pass the variables: apply(grads, trainable_variables).")
        return self.apply_gradients(zip(list(grads), list(trainable_variables)))

    def _owner_strategy(self, pairs: list) -> Any:
        """The strategy this optimizer or else its variables were created under (or None)."""
        if self._distribute_strategy is not None:
            return self._distribute_strategy
        return next((v._distribute_strategy for _, v in pairs
                     if v._distribute_strategy is not None), None)

    def _apply_locally(self, pairs: list[tuple[np.ndarray, Variable]]) -> None:
        hp = self.hyperparameters()
        merged = self.rule.merge(hp)
        no_decay = {**merged, "weight_decay": 0.0} if merged.get("weight_decay") else merged
        step = self._step_count() + 1
        for grad, var in pairs:
            state = self._slots.get(var.name)
            if state is None:
                state = self._slots[var.name] = self.rule.init(var.value, hp)
            rules.update_in_chunks(self.rule, var.value, [_flat(grad, var.value)], state, step,
                                   no_decay if no_decay is merged or
                                   not self._use_weight_decay(var) else merged)

    def hyperparameters(self) -> dict:
        """The plain dict the rule gets (learning rate evaluated for this step)."""
        hp = {**self.hyper, "learning_rate": self._current_learning_rate()}
        if self.weight_decay:
            hp["weight_decay"] = self.weight_decay
        return hp

    def minimize(self, loss: Any, var_list: Any, tape: GradientTape | None = None) -> int:
        """Differentiates `loss` (a Tensor recorded by `tape`, or a callable) and applies it."""
        variables = list(var_list() if callable(var_list) else var_list)
        if tape is None:
            if not callable(loss):
                raise ValueError("`tape` is required when `loss` is a Tensor; pass a callable "
                                 "loss or the GradientTape that recorded it.")
            with GradientTape() as tape:
                loss = loss()
        grads = tape.gradient(loss, variables)
        return self.apply_gradients(zip(grads, variables))

    # ------------------------------------------------------------ config

    def get_config(self) -> dict:
        return {"name": self.name,
                "learning_rate": schedules.serialize(self._learning_rate_source()),
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "weight_decay": self.weight_decay,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps,
                **self.hyper}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Optimizer:
        config = dict(config)
        lr = config.get("learning_rate", None)
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr, custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} learning_rate={self._learning_rate_source()!r}>"


def _check_ema(momentum: Any, frequency: Any) -> None:
    if isinstance(momentum, bool) or not isinstance(momentum, int | float) \
            or not 0 <= momentum <= 1:
        raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: "
                         f"ema_momentum={momentum!r}")
    if frequency is not None and (isinstance(frequency, bool) or not isinstance(frequency, int)
                                  or frequency < 1):
        raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. "
                         f"Received: ema_overwrite_frequency={frequency!r}")


def _plain(optimizer: Optimizer) -> bool:
    """Whether an update is the rule alone: no clipping, loss scale, accumulation or EMA."""
    return (optimizer.clipvalue is None and optimizer.clipnorm is None
            and optimizer.global_clipnorm is None and optimizer.loss_scale_factor is None
            and not optimizer.gradient_accumulation_steps and not optimizer.use_ema)


def _traced_update(optimizer: Optimizer, grads_and_vars: Any) -> Callable | None:
    """`apply_gradients`' kernel in a traced step, checked once: symbolic gradients of
    Variables that belong to no strategy, no constraints. Each run takes the rule's path
    (`_apply_locally`) while the optimizer stays plain and no strategy override is in
    force, else the general `apply_gradients`. None: the general path every time.

    The kernel offers the graph executor to fold plain SGD into the products computing
    the gradients (`gradient_fold`, see `distflow.update_fold`): a gradient handed over
    as APPLIED was already subtracted this step."""
    pairs = [(g, v) for g, v in grads_and_vars if g is not None]
    variables = [v for _, v in pairs]
    if not pairs or not all(isinstance(v, Variable) and getattr(g, "_symbolic", False)
                            and getattr(v, "constraint", None) is None for g, v in pairs) \
            or optimizer._owner_strategy(pairs) is not None:
        return None
    cast = [not (g.shape.is_fully_defined() and tuple(g.shape) == v.value.shape
                 and g.dtype == v.value.dtype) for g, v in pairs]
    allowed: list = []  # local training checked at the first local run: a launcher's
    # environment does not change within a process (reading it costs ~15 us a step)
    folds: list[int] = []  # gradients a plan may hand over as APPLIED

    def update(*grads: np.ndarray) -> None:
        applied = [i for i in folds if grads[i] is APPLIED]
        if not applied and (get_apply_override() is not None or not _plain(optimizer)):
            optimizer.apply_gradients(list(zip(grads, variables)))
            return
        _allow_local(allowed)
        for i in applied:  # their (empty) slots, as an unfolded step makes them
            optimizer._slots.setdefault(variables[i].name, {})
        optimizer._apply_locally([(_as_array(g, v) if c else g, v)
                                  for g, v, c in zip(grads, variables, cast)
                                  if g is not APPLIED])
        _count_step(optimizer._iterations)

    def gradient_fold(i: int) -> GradientFold | None:
        if cast[i] or optimizer.rule.linear is None or \
                type(optimizer)._apply_locally is not Optimizer._apply_locally:
            return None
        folds.append(i)
        return GradientFold(variables[i], lambda: _linear_factor(optimizer, variables[i],
                                                              allowed))
    update.gradient_fold = gradient_fold
    return update


def _linear_factor(optimizer: Optimizer, variable: Variable, allowed: list) -> float | None:
    """The factor of this step's update of `variable` when the rule's step is
    `variable += factor * grad` (`Rule.linear`: plain SGD), else None."""
    if get_apply_override() is not None or not _plain(optimizer):
        return None
    factor = optimizer.rule.linear(optimizer.rule.merge(optimizer.hyperparameters()),
                                   variable.value.dtype)
    if factor is not None:
        _allow_local(allowed)
    return factor


def _allow_local(allowed: list) -> None:
    """`check_local_training` once per traced update (`allowed` remembers it passed)."""
    if not allowed:
        strategy_stack.check_local_training("`optimizer.apply_gradients`")
        allowed.append(True)


def _flat(grad: np.ndarray, param: np.ndarray) -> np.ndarray:
    """The gradient as the one flat piece `rules.update_in_chunks` takes; one that cannot
    be flattened without a copy goes as it is (one call)."""
    return grad.reshape(-1) if grad.shape == param.shape and grad.flags.c_contiguous \
        else grad


def _count_step(iterations: Variable) -> int:
    """`iterations += 1` in place (the optimizer's own int64 counter); the new count."""
    count = iterations.value
    np.add(count, 1, out=count)
    return int(count)


def _apply_constraints(pairs: list[tuple[np.ndarray, Variable]]) -> None:
    """Keras's projection after an update: `variable.assign(variable.constraint(variable))`."""
    for _, var in pairs:
        constraint = getattr(var, "constraint", None)
        if constraint is not None:
            var.assign(constraint(var))


def _refuse_constraints(pairs: list[tuple[np.ndarray, Variable]]) -> None:
    constrained = [v.name for _, v in pairs if getattr(v, "constraint", None) is not None]
    if constrained:
        raise NotImplementedError(
            f"Weight constraints (on {constrained}) are not supported under a distribution "
            "strategy: the parameter servers apply the updates and do not run constraints. "
            "Remove the *_constraint arguments or train in one process.")


def _pop_legacy_kwargs(kwargs: dict[str, Any], learning_rate: Any) -> Any:
    """tf.keras 2's `lr` (with a warning; it wins, as it did there) and Keras 3's `decay`."""
    if "lr" in kwargs:
        warnings.warn("The `lr` argument is deprecated, use `learning_rate` instead.",
                      DeprecationWarning, stacklevel=4)
        learning_rate = kwargs.pop("lr")
    if kwargs.pop("decay", None) is not None:
        warnings.warn("Argument `decay` is no longer supported and will be ignored.",
                      stacklevel=4)
    return learning_rate


def _as_array(grad: Any, var: Variable) -> np.ndarray:
    arr = grad.value if isinstance(grad, Tensor) else np.asarray(grad)
    if arr.shape != var.value.shape:
        raise ValueError(f"Gradient for variable '{var.name}' has shape {arr.shape}, but the "
                         f"variable has shape {var.value.shape}.")
    return arr if arr.dtype == var.value.dtype else arr.astype(var.value.dtype)






def _check_optional_nonneg(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or value < 0):
        raise ValueError(f"`{name}` must be a non-negative float or None. "
                         f"Received: {name}={value!r}")


def serialize(optimizer: Optimizer) -> dict:
    """`{"class_name": "Adam", "config": {...}}`, JSON-safe."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize_from(classes: dict[str, type], config: dict,
                     custom_objects: dict | None = None) -> Optimizer:
    """The optimizer `config` (`serialize`'s output) describes, its class looked up by
    lower-case name in `classes` or `custom_objects`."""
    known = {**classes, **{k.lower(): v for k, v in (custom_objects or {}).items()}}
    name = str(config.get("class_name", "")).lower()
    if name not in known:
        raise ValueError(f"Unknown optimizer {config.get('class_name')!r}. "
                         f"Known: {sorted(c.__name__ for c in classes.values())}")
    return known[name].from_config(config.get("config", {}), custom_objects)
