"""The Keras optimizers: thin classes that name a rule and its hyper-parameters."""

from __future__ import annotations

from typing import Any

from distflow.optimizers.base import Optimizer


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"`{name}` must be a float in [{low}, {high}]. Received: {name}={value!r}")


class SGD(Optimizer):
    """Gradient descent with optional momentum and Nesterov momentum (see `rules._sgd`)."""

    rule_name = "sgd"

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 name: str = "SGD", **kwargs: Any):
        _check_range("momentum", momentum, 0.0, 1.0)
        super().__init__(learning_rate, name=name, momentum=float(momentum),
                         nesterov=bool(nesterov), **kwargs)


class Adam(Optimizer):
    """Adam with optional AMSGrad (see `rules._adam`)."""

    rule_name = "adam"

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, name: str = "Adam",
                 **kwargs: Any):
        _check_range("beta_1", beta_1, 0.0, 1.0)
        _check_range("beta_2", beta_2, 0.0, 1.0)
        super().__init__(learning_rate, name=name, beta_1=float(beta_1), beta_2=float(beta_2),
                         epsilon=float(epsilon), amsgrad=bool(amsgrad), **kwargs)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), default decay 0.004 as Keras."""

    rule_name = "adamw"

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.004,
                 name: str = "AdamW", **kwargs: Any):
        super().__init__(learning_rate, name=name, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum (see `rules._rmsprop`)."""

    rule_name = "rmsprop"

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, name: str = "RMSprop",
                 **kwargs: Any):
        _check_range("rho", rho, 0.0, 1.0)
        _check_range("momentum", momentum, 0.0, 1.0)
        super().__init__(learning_rate, name=name, rho=float(rho), momentum=float(momentum),
                         epsilon=float(epsilon), centered=bool(centered), **kwargs)


class Adagrad(Optimizer):
    """Adagrad (see `rules._adagrad`)."""

    rule_name = "adagrad"

    def __init__(self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, name: str = "Adagrad", **kwargs: Any):
        super().__init__(learning_rate, name=name,
                         initial_accumulator_value=float(initial_accumulator_value),
                         epsilon=float(epsilon), **kwargs)
