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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from distflow.optimizers import rules, schedules
from distflow.tensor import GradientTape, Tensor, Variable, graph_form

ApplyOverride = Callable[["Optimizer", list], None]
_overrides: list[ApplyOverride] = []


@contextlib.contextmanager
def apply_override(fn: ApplyOverride) -> Iterator[None]:
    """While active, `Optimizer.apply_gradients` calls `fn(optimizer, pairs)` instead."""
    _overrides.append(fn)
    try:
        yield
    finally:
        _overrides.remove(fn)


def get_apply_override() -> ApplyOverride | None:
    """The innermost installed override, or None (local updates)."""
    return _overrides[-1] if _overrides else None


class Optimizer:
    """Base class of the Keras-style optimizers.

    Args:
        learning_rate: a float or a `schedules.LearningRateSchedule`.
        name: display name.
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients jointly to this global L2 norm.
        weight_decay: decoupled weight decay (see `rules`).
        **hyper: the rule's other hyper-parameters.
    """

    rule_name = ""

    def __init__(self, learning_rate: Any, name: str | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 **hyper: Any):
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("Only one of `clipnorm` and `global_clipnorm` can be set. Received: "
                             f"clipnorm={clipnorm}, global_clipnorm={global_clipnorm}")
        for key in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
            _check_optional_nonneg(key, locals()[key])
        self.name = name or type(self).__name__
        self.rule = rules.get_rule(self.rule_name)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = weight_decay
        self.hyper = dict(hyper)
        self.learning_rate = learning_rate
        self.iterations = 0
        self._slots: dict[str, dict[str, np.ndarray]] = {}

    # ------------------------------------------------------------ learning rate

    @property
    def learning_rate(self) -> float:
        """The learning rate for the next step (a schedule is evaluated at `iterations`)."""
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            return float(self._learning_rate(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if isinstance(value, Tensor):
            value = float(value.value)
        if not isinstance(value, schedules.LearningRateSchedule):
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError("`learning_rate` must be a non-negative float or a "
                                 f"LearningRateSchedule. Received: learning_rate={value!r}")
            value = float(value)
        self._learning_rate = value

    lr = learning_rate  # the Keras 2 alias

    def _learning_rate_source(self) -> Any:
        """The float or schedule as given (what `get_config` serializes)."""
        return self._learning_rate

    # ------------------------------------------------------------ applying

    @graph_form("effect")  # inside a traced function: an update operation of the graph
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
        grads = self._clip([_as_array(g, v) for g, v in pairs])
        pairs = list(zip(grads, (v for _, v in pairs)))
        override = get_apply_override()
        if override is not None:
            override(self, pairs)
        else:
            self._apply_locally(pairs)
        self.iterations += 1
        return self.iterations

    def _apply_locally(self, pairs: list[tuple[np.ndarray, Variable]]) -> None:
        hp = self.hyperparameters()
        step = self.iterations + 1
        for grad, var in pairs:
            state = self._slots.get(var.name)
            if state is None:
                state = self._slots[var.name] = self.rule.init(var.value, hp)
            self.rule.update(var.value, grad, state, step, hp)

    def hyperparameters(self) -> dict:
        """The plain dict the rule gets (learning rate evaluated for this step)."""
        hp = {**self.hyper, "learning_rate": self.learning_rate}
        if self.weight_decay:
            hp["weight_decay"] = self.weight_decay
        return hp

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clipvalue is not None:
            grads = [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            grads = [_scale_to_norm(g, _norm(g), self.clipnorm) for g in grads]
        if self.global_clipnorm is not None:
            total = math.sqrt(sum(_norm(g) ** 2 for g in grads))
            grads = [_scale_to_norm(g, total, self.global_clipnorm) for g in grads]
        return grads

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

    def build(self, var_list: Iterable[Variable]) -> None:
        """Creates the slots of `var_list` now (Keras does it lazily as well)."""
        hp = self.hyperparameters()
        for var in var_list:
            if var.name not in self._slots:
                self._slots[var.name] = self.rule.init(var.value, hp)

    # ------------------------------------------------------------ state and config

    def get_state(self) -> dict[str, np.ndarray]:
        """Step counter and slots as `{"iterations": ..., "<var>/<slot>": array}` (for saving)."""
        state = {"iterations": np.array(self.iterations, np.int64)}
        for var_name, slots in self._slots.items():
            for slot, array in slots.items():
                state[f"{var_name}/{slot}"] = array
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restores what `get_state` returned."""
        self.iterations = int(state.get("iterations", 0))
        self._slots = {}
        for key, array in state.items():
            if key != "iterations":
                var_name, _, slot = key.rpartition("/")
                self._slots.setdefault(var_name, {})[slot] = np.array(array)

    def variables(self) -> list[np.ndarray]:
        """The slot arrays (Keras returns the optimizer's variables)."""
        return [a for slots in self._slots.values() for a in slots.values()]

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": schedules.serialize(self._learning_rate),
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "weight_decay": self.weight_decay,
                **self.hyper}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Optimizer:
        config = dict(config)
        lr = config.get("learning_rate", None)
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr, custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} learning_rate={self._learning_rate!r}>"


def _as_array(grad: Any, var: Variable) -> np.ndarray:
    arr = grad.value if isinstance(grad, Tensor) else np.asarray(grad)
    if arr.shape != var.value.shape:
        raise ValueError(f"Gradient for variable '{var.name}' has shape {arr.shape}, but the "
                         f"variable has shape {var.value.shape}.")
    return arr if arr.dtype == var.value.dtype else arr.astype(var.value.dtype)


def _norm(g: np.ndarray) -> float:
    flat = g.reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


def _scale_to_norm(g: np.ndarray, norm: float, limit: float) -> np.ndarray:
    return g * g.dtype.type(limit / norm) if norm > limit else g


def _check_optional_nonneg(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or value < 0):
        raise ValueError(f"`{name}` must be a non-negative float or None. "
                         f"Received: {name}={value!r}")
