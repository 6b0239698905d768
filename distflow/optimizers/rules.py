"""Optimizer update rules: pure functions over NumPy arrays.

The local optimizer classes (`distflow.optimizers.SGD`, ...) and the parameter
server call these same functions, so one process and a distributed run apply
identical arithmetic. A rule is an object with

    init(param, hp=None) -> dict[str, np.ndarray]     # named slots, zero-filled
    update(param, grad, state, step, hp) -> None      # in place on param and state

`step` counts from 1 (the step being applied). `hp` is a plain dict of numbers
and booleans (msgpack/JSON safe); `hp["learning_rate"]` is already evaluated for
this step by the caller. Missing slots are created by `update`, so a state made
by `init` without `hp` works too. Every rule applies decoupled weight decay
`param -= learning_rate * weight_decay * param` first when `hp["weight_decay"]`
is set (AdamW's rule; Keras 3 allows it on every optimizer).

The formulas are Keras's, so a model trained here and in Keras with the same
hyper-parameters follows the same trajectory up to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

State = dict[str, np.ndarray]


@dataclass(frozen=True)
class Rule:
    """One update rule: its slot names and its in-place step function."""

    name: str
    slots: Callable[[Mapping[str, Any]], tuple[str, ...]]
    step: Callable[[np.ndarray, np.ndarray, State, int, Mapping[str, Any]], None]
    defaults: Mapping[str, Any]

    def init(self, param: np.ndarray, hp: Mapping[str, Any] | None = None) -> State:
        """Zero-filled slots for `param` (Adagrad's accumulator starts at its initial value)."""
        merged = {**self.defaults, **(hp or {})}
        return {slot: _new_slot(slot, param, merged) for slot in self.slots(merged)}

    def update(self, param: np.ndarray, grad: np.ndarray, state: State, step: int,
               hp: Mapping[str, Any]) -> None:
        """Applies one step in place on `param` and `state`."""
        merged = {**self.defaults, **hp}
        for slot in self.slots(merged):
            if slot not in state:
                state[slot] = _new_slot(slot, param, merged)
        decay = merged.get("weight_decay") or 0.0
        if decay:
            param -= param * param.dtype.type(merged["learning_rate"] * decay)
        self.step(param, grad, state, step, merged)


def _new_slot(slot: str, param: np.ndarray, hp: Mapping[str, Any]) -> np.ndarray:
    if slot == "accumulator":
        return np.full_like(param, hp["initial_accumulator_value"])
    return np.zeros_like(param)


def _sgd(param, grad, state, step, hp) -> None:
    """SGD with optional (Nesterov) momentum, Keras's formulation.

    velocity = momentum * velocity - lr * grad
    param += velocity                                  (classic momentum)
    param += momentum * velocity - lr * grad           (Nesterov)
    without momentum: param -= lr * grad
    """
    lr, momentum = param.dtype.type(hp["learning_rate"]), hp["momentum"]
    if not momentum:
        param -= lr * grad
        return
    velocity = state["momentum"]
    velocity *= param.dtype.type(momentum)
    velocity -= lr * grad
    if hp["nesterov"]:
        param += param.dtype.type(momentum) * velocity - lr * grad
    else:
        param += velocity


def _adam(param, grad, state, step, hp) -> None:
    """Adam (Kingma & Ba), Keras's epsilon placement; AMSGrad optional.

    m += (1 - beta_1) * (grad - m);  v += (1 - beta_2) * (grad**2 - v)
    alpha = lr * sqrt(1 - beta_2**step) / (1 - beta_1**step)
    param -= alpha * m / (sqrt(v_hat) + epsilon),  v_hat = max(v_hat, v) with AMSGrad else v
    """
    b1, b2, t = hp["beta_1"], hp["beta_2"], step
    f = param.dtype.type
    m, v = state["m"], state["v"]
    m += (grad - m) * f(1 - b1)
    v += (np.square(grad) - v) * f(1 - b2)
    if hp["amsgrad"]:
        np.maximum(state["v_hat"], v, out=state["v_hat"])
        v = state["v_hat"]
    alpha = f(hp["learning_rate"] * np.sqrt(1 - b2 ** t) / (1 - b1 ** t))
    param -= alpha * m / (np.sqrt(v) + f(hp["epsilon"]))


def _rmsprop(param, grad, state, step, hp) -> None:
    """RMSprop, Keras's formulation (optionally centered, with momentum).

    ms = rho * ms + (1 - rho) * grad**2;  mg = rho * mg + (1 - rho) * grad (centered)
    increment = lr * grad / sqrt(ms - mg**2 + epsilon)
    param -= increment, or with momentum: mom = momentum * mom + increment; param -= mom
    """
    f, rho = param.dtype.type, hp["rho"]
    ms = state["velocity"]
    ms *= f(rho)
    ms += f(1 - rho) * np.square(grad)
    denominator = ms + f(hp["epsilon"])
    if hp["centered"]:
        mg = state["average_gradient"]
        mg *= f(rho)
        mg += f(1 - rho) * grad
        denominator -= np.square(mg)
    increment = f(hp["learning_rate"]) * grad / np.sqrt(denominator)
    if hp["momentum"]:
        mom = state["momentum"]
        mom *= f(hp["momentum"])
        mom += increment
        param -= mom
    else:
        param -= increment


def _adagrad(param, grad, state, step, hp) -> None:
    """Adagrad: acc += grad**2;  param -= lr * grad / sqrt(acc + epsilon)."""
    f = param.dtype.type
    acc = state["accumulator"]
    acc += np.square(grad)
    param -= f(hp["learning_rate"]) * grad / np.sqrt(acc + f(hp["epsilon"]))


_RULES: dict[str, Rule] = {}


def _register(rule: Rule) -> Rule:
    _RULES[rule.name] = rule
    return rule


_register(Rule("sgd", lambda hp: ("momentum",) if hp["momentum"] else (), _sgd,
               {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}))
_ADAM_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                  "amsgrad": False}
_register(Rule("adam", lambda hp: ("m", "v", "v_hat") if hp["amsgrad"] else ("m", "v"),
               _adam, _ADAM_DEFAULTS))
_register(Rule("adamw", lambda hp: ("m", "v", "v_hat") if hp["amsgrad"] else ("m", "v"),
               _adam, {**_ADAM_DEFAULTS, "weight_decay": 0.004}))
_register(Rule("rmsprop", lambda hp: ("velocity",) + (("average_gradient",) if hp["centered"]
                                                      else ()) + (("momentum",) if hp["momentum"]
                                                                   else ()),
               _rmsprop, {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0,
                          "epsilon": 1e-7, "centered": False}))
_register(Rule("adagrad", lambda hp: ("accumulator",), _adagrad,
               {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7}))


def get_rule(name: str) -> Rule:
    """The update rule called `name` ("sgd", "adam", "adamw", "rmsprop", "adagrad").

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = str(name).lower()
    if key not in _RULES:
        raise ValueError(f"Unknown optimizer rule {name!r}. Known rules: {sorted(_RULES)}.")
    return _RULES[key]


def names() -> list[str]:
    """The names of the registered rules."""
    return sorted(_RULES)
