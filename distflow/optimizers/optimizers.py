"""The Keras optimizers: thin classes that name a rule and its hyper-parameters."""

from __future__ import annotations

from typing import Any

from distflow.optimizers.base import Optimizer, get_apply_override


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


class _Betas(Optimizer):
    """The constructor Nadam and Adamax share: beta_1, beta_2, epsilon."""

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, name: str | None = None, **kwargs: Any):
        _check_range("beta_1", beta_1, 0.0, 1.0)
        _check_range("beta_2", beta_2, 0.0, 1.0)
        super().__init__(learning_rate, name=name or type(self).__name__, beta_1=float(beta_1),
                         beta_2=float(beta_2), epsilon=float(epsilon), **kwargs)


class Nadam(_Betas):
    """Adam with Nesterov momentum (see `rules._nadam`); arguments as Adam's (no amsgrad)."""

    rule_name = "nadam"


class Adamax(_Betas):
    """Adam with the infinity norm (see `rules._adamax`); arguments as Adam's (no amsgrad)."""

    rule_name = "adamax"


class Adadelta(Optimizer):
    """Adadelta (see `rules._adadelta`)."""

    rule_name = "adadelta"

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7,
                 name: str = "Adadelta", **kwargs: Any):
        _check_range("rho", rho, 0.0, 1.0)
        super().__init__(learning_rate, name=name, rho=float(rho), epsilon=float(epsilon),
                         **kwargs)


class Ftrl(Optimizer):
    """FTRL-Proximal (see `rules._ftrl`); the arguments are checked as Keras checks them."""

    rule_name = "ftrl"

    def __init__(self, learning_rate: Any = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1,
                 l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0,
                 l2_shrinkage_regularization_strength: float = 0.0, beta: float = 0.0,
                 name: str = "Ftrl", **kwargs: Any):
        if learning_rate_power > 0.0:
            raise ValueError("`learning_rate_power` needs to be negative or zero. Received: "
                             f"learning_rate_power={learning_rate_power}.")
        values = {"initial_accumulator_value": initial_accumulator_value,
                  "l1_regularization_strength": l1_regularization_strength,
                  "l2_regularization_strength": l2_regularization_strength,
                  "l2_shrinkage_regularization_strength": l2_shrinkage_regularization_strength}
        for key, value in values.items():
            if value < 0.0:
                raise ValueError(f"`{key}` needs to be positive or zero. Received: "
                                 f"{key}={value}.")
        super().__init__(learning_rate, name=name, learning_rate_power=float(learning_rate_power),
                         beta=float(beta), **{k: float(v) for k, v in values.items()}, **kwargs)


class Lion(Optimizer):
    """Lion, the sign of an interpolated momentum (see `rules._lion`)."""

    rule_name = "lion"

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99,
                 name: str = "Lion", **kwargs: Any):
        if isinstance(beta_1, bool) or not isinstance(beta_1, int | float) or \
                not 0 < beta_1 <= 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the "
                             f"optimizer degenerates to SignSGD. Received: beta_1={beta_1}.")
        _check_range("beta_2", beta_2, 0.0, 1.0)
        super().__init__(learning_rate, name=name, beta_1=float(beta_1), beta_2=float(beta_2),
                         **kwargs)


class _WholeTensor(Optimizer):
    """An optimizer whose rule reads whole tensors (norms, means), so it trains in one
    process only: under a distribution strategy `apply_gradients` raises, since the
    parameter servers update packed, chunked buffers."""

    def apply_gradients(self, grads_and_vars: Any) -> int:
        if get_apply_override() is not None:
            raise NotImplementedError(
                f"{type(self).__name__} cannot train under a distribution strategy: its update "
                "reads whole tensors (norms, means), while the parameter servers update "
                "packed, chunked buffers. Use Adam or train in one process.")
        return super().apply_gradients(grads_and_vars)


class Adafactor(_WholeTensor):
    """Adafactor with factored second moments (see `rules._adafactor`).

    Its rule reads whole tensors (RMS of the parameter, row and column means), so
    it trains in one process only (see `_WholeTensor`).
    """

    rule_name = "adafactor"

    def __init__(self, learning_rate: Any = 0.001, beta_2_decay: float = -0.8,
                 epsilon_1: float = 1e-30, epsilon_2: float = 1e-3, clip_threshold: float = 1.0,
                 relative_step: bool = True, name: str = "Adafactor", **kwargs: Any):
        super().__init__(learning_rate, name=name, beta_2_decay=float(beta_2_decay),
                         epsilon_1=float(epsilon_1), epsilon_2=float(epsilon_2),
                         clip_threshold=float(clip_threshold),
                         relative_step=bool(relative_step), **kwargs)


class Lamb(_WholeTensor, _Betas):
    """LAMB: Adam's step scaled by the layer-wise trust ratio (see `rules._lamb`).

    Arguments as Adam's (no amsgrad); one process only (see `_WholeTensor`).
    """

    rule_name = "lamb"


class ScheduleFreeAdamW(Optimizer):
    """Schedule-Free AdamW (see `rules._schedule_free_adamw`): no learning-rate schedule needed.

    The model's variables hold the point gradients are taken at (an interpolation
    of the base sequence, a slot, and its running average), as in Keras. Its rule is
    elementwise, so the parameter servers run it too.

    Args:
        learning_rate: default 0.0025.
        beta_1: interpolation and averaging weight, in [0, 1).
        beta_2: second-moment decay, in [0, 1].
        epsilon: added to the denominator.
        warmup_steps: linear learning-rate warmup over this many steps (0: none).
    """

    rule_name = "schedulefreeadamw"

    def __init__(self, learning_rate: Any = 0.0025, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, warmup_steps: int = 0,
                 name: str = "ScheduleFreeAdamW", **kwargs: Any):
        _check_range("beta_1", beta_1, 0.0, 1.0)
        _check_range("beta_2", beta_2, 0.0, 1.0)
        if beta_1 in (0, 1):
            raise ValueError(f"`beta_1` must be strictly between 0 and 1 (x is y averaged by "
                             f"it). Received: beta_1={beta_1!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or \
                warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be a non-negative int. Received: "
                             f"warmup_steps={warmup_steps!r}")
        super().__init__(learning_rate, name=name, beta_1=float(beta_1), beta_2=float(beta_2),
                         epsilon=float(epsilon), warmup_steps=warmup_steps, **kwargs)


# The built-in optimizers by their lower-case class names (what `get("adam")` and a
# config's "class_name" resolve to; the package adds LossScaleOptimizer).
BUILTIN: dict[str, type[Optimizer]] = {
    c.__name__.lower(): c for c in (SGD, Adam, AdamW, RMSprop, Adagrad, Nadam, Adamax, Adadelta,
                                    Ftrl, Lion, Adafactor, Lamb, ScheduleFreeAdamW)}
