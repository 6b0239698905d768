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

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from distflow.workspace import scratch

State = dict[str, np.ndarray]
UPDATE_CHUNK = 64 * 1024  # elements per rule call on large tensors (fits the L2 cache)


@dataclass(frozen=True)
class Rule:
    """One update rule: its slot names and its in-place step function."""

    name: str
    slots: Callable[[Mapping[str, Any]], tuple[str, ...]]
    step: Callable[[np.ndarray, np.ndarray, State, int, Mapping[str, Any]], None]
    defaults: Mapping[str, Any]
    # False for a rule that reads whole tensors (Adafactor's RMS and row/column means):
    # it cannot run on packed or chunked buffers, so the parameter servers cannot run it.
    elementwise: bool = True
    # For a rule whose step under some hyperparameters is `param += factor * grad` with
    # no state (plain SGD): that factor for the merged hyperparameters and the dtype,
    # else None. The graph executor folds such a step into the gradient's product.
    linear: Callable[[Mapping[str, Any], np.dtype], float | None] | None = None

    def init(self, param: np.ndarray, hp: Mapping[str, Any] | None = None) -> State:
        """Zero-filled slots for `param` (Adagrad's accumulator starts at its initial value)."""
        merged = {**self.defaults, **(hp or {})}
        return {slot: _new_slot(slot, param, merged) for slot in self.slots(merged)}

    def update(self, param: np.ndarray, grad: np.ndarray, state: State, step: int,
               hp: Mapping[str, Any]) -> None:
        """Applies one step in place on `param` and `state`."""
        self.update_merged(param, grad, state, step, self.merge(hp))

    def merge(self, hp: Mapping[str, Any]) -> dict[str, Any]:
        """The rule's defaults overridden by `hp`: what `update_merged` takes."""
        return {**self.defaults, **hp}

    def update_merged(self, param: np.ndarray, grad: np.ndarray, state: State, step: int,
                      merged: Mapping[str, Any]) -> None:
        """`update` with the hyperparameters already merged (`merge(hp)`, made once for
        all the variables of one step)."""
        for slot in self.slots(merged):
            if slot not in state:
                state[slot] = _new_slot(slot, param, merged)
        decay = merged.get("weight_decay") or 0.0
        if decay:
            param -= param * param.dtype.type(merged["learning_rate"] * decay)
        self.step(param, grad, state, step, merged)


def update_in_chunks(rule: Rule, param: np.ndarray, pieces: list[np.ndarray], state: State,
                     step: int, merged: Mapping[str, Any]) -> None:
    """`rule.update_merged` on one array in cache-sized chunks (UPDATE_CHUNK elements).

    An elementwise rule gives the same numbers on consecutive slices as in one call,
    while its temporaries stay in the CPU cache instead of making extra passes over
    main memory. The gradient is given as flat consecutive `pieces` (a parameter
    server's frames, so a large gradient is never joined; one piece locally); one piece
    that is small, not flat, or meets a non-contiguous parameter or slot, or a rule that
    is not elementwise, is one call.
    """
    for slot in rule.slots(merged):  # made whole first: chunks must not create them
        if slot not in state:
            state[slot] = _new_slot(slot, param, merged)
    if len(pieces) == 1 and (pieces[0].size <= UPDATE_CHUNK or not rule.elementwise
                             or pieces[0].ndim != 1 or not all(
                                 a.flags.c_contiguous for a in (param, *state.values()))):
        rule.update_merged(param, pieces[0].reshape(param.shape), state, step, merged)
        return
    flat, flat_slots = param.reshape(-1), {k: v.reshape(-1) for k, v in state.items()}
    offset = 0
    for piece in pieces:
        for start in range(0, piece.size, UPDATE_CHUNK):
            stop = min(start + UPDATE_CHUNK, piece.size)
            a, b = offset + start, offset + stop
            rule.update_merged(flat[a:b], piece[start:stop],
                               {k: v[a:b] for k, v in flat_slots.items()}, step, merged)
        offset += piece.size


def _temp(slot: str, like: np.ndarray, dtype: Any) -> np.ndarray | None:
    """A reused per-thread buffer shaped as `like` for the rules' temporary `slot` (up to
    UPDATE_CHUNK elements), else None: the operation then allocates its result."""
    if like.size > UPDATE_CHUNK:
        return None
    return scratch(f"rules/{slot}", like.shape, dtype)


def _new_slot(slot: str, param: np.ndarray, hp: Mapping[str, Any]) -> np.ndarray:
    if slot == "accumulator":
        return np.full_like(param, hp["initial_accumulator_value"])
    if slot == "z":  # Schedule-Free AdamW's base sequence starts at the parameter itself
        return param.copy()
    if slot in ("r", "c"):  # Adafactor's factored second moments (scalars below rank 2)
        if param.ndim < 2:
            return np.zeros((), param.dtype)
        shape = param.shape[:-1] if slot == "r" else param.shape[:-2] + param.shape[-1:]
        return np.zeros(shape, param.dtype)
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
    delta = np.subtract(grad, m, out=_temp("a", m, np.result_type(grad, m)))
    delta *= f(1 - b1)
    m += delta
    delta = np.square(grad, out=_temp("a", v, np.result_type(grad, v)))
    delta -= v
    delta *= f(1 - b2)
    v += delta
    if hp["amsgrad"]:
        np.maximum(state["v_hat"], v, out=state["v_hat"])
        v = state["v_hat"]
    alpha = f(hp["learning_rate"] * np.sqrt(1 - b2 ** t) / (1 - b1 ** t))
    step_ = np.multiply(m, alpha, out=_temp("a", m, np.result_type(m, alpha)))
    root = np.sqrt(v, out=_temp("b", v, v.dtype))
    root += f(hp["epsilon"])
    step_ /= root
    param -= step_


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


@functools.lru_cache(maxsize=64)
def _nadam_u_product(beta_1: float, step: int) -> float:
    """prod_{i=1..step} beta_1 * (1 - 0.5 * 0.96**i) (Keras keeps it as a variable)."""
    i = np.arange(1, step + 1, dtype=np.float64)
    return float(np.prod(beta_1 * (1.0 - 0.5 * 0.96 ** i)))


def _nadam(param, grad, state, step, hp) -> None:
    """Nadam (Dozat), Keras's formulation with the 0.96 momentum schedule.

    u_t = beta_1 * (1 - 0.5 * 0.96**t);  P_t = u_1 * ... * u_t
    m += (1 - beta_1) * (grad - m);  v += (1 - beta_2) * (grad**2 - v)
    m_hat = u_{t+1} * m / (1 - P_t * u_{t+1}) + (1 - u_t) * grad / (1 - P_t)
    v_hat = v / (1 - beta_2**t)
    param -= lr * m_hat / (sqrt(v_hat) + epsilon)
    """
    f, b1, b2, t = param.dtype.type, hp["beta_1"], hp["beta_2"], step
    u_t = b1 * (1.0 - 0.5 * 0.96 ** t)
    u_next = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
    product = _nadam_u_product(float(b1), int(t))
    m, v = state["m"], state["v"]
    m += (grad - m) * f(1 - b1)
    v += (np.square(grad) - v) * f(1 - b2)
    m_hat = m * f(u_next / (1 - product * u_next)) + grad * f((1 - u_t) / (1 - product))
    v_hat = v / f(1 - b2 ** t)
    param -= m_hat * f(hp["learning_rate"]) / (np.sqrt(v_hat) + f(hp["epsilon"]))


def _adamax(param, grad, state, step, hp) -> None:
    """Adamax (Kingma & Ba, the infinity-norm Adam).

    m += (1 - beta_1) * (grad - m);  u = max(beta_2 * u, |grad|)
    param -= lr * m / ((1 - beta_1**t) * (u + epsilon))
    """
    f = param.dtype.type
    m, u = state["m"], state["u"]
    m += (grad - m) * f(1 - hp["beta_1"])
    np.maximum(u * f(hp["beta_2"]), np.abs(grad), out=u)
    param -= f(hp["learning_rate"]) * m / (f(1 - hp["beta_1"] ** step) * (u + f(hp["epsilon"])))


def _adadelta(param, grad, state, step, hp) -> None:
    """Adadelta (Zeiler), Keras's formulation (with a learning rate).

    acc_g = rho * acc_g + (1 - rho) * grad**2
    delta = -sqrt(acc_d + epsilon) * grad / sqrt(acc_g + epsilon)
    acc_d = rho * acc_d + (1 - rho) * delta**2;  param += lr * delta
    """
    f, rho, eps = param.dtype.type, hp["rho"], param.dtype.type(hp["epsilon"])
    acc_g, acc_d = state["accumulated_grad"], state["accumulated_delta_var"]
    acc_g *= f(rho)
    acc_g += f(1 - rho) * np.square(grad)
    delta = -np.sqrt(acc_d + eps) * grad / np.sqrt(acc_g + eps)
    acc_d *= f(rho)
    acc_d += f(1 - rho) * np.square(delta)
    param += f(hp["learning_rate"]) * delta


def _ftrl(param, grad, state, step, hp) -> None:
    """FTRL-Proximal (McMahan et al.), Keras's formulation.

    p = -learning_rate_power;  l2 = l2_regularization_strength + beta / (2 lr)
    g' = grad + 2 * l2_shrinkage_regularization_strength * param
    n' = n + grad**2;  z += g' - (n'**p - n**p) / lr * param
    param = (clip(z, -l1, l1) - z) / (n'**p / lr + 2 * l2);  n = n'
    """
    f, lr, power = param.dtype.type, param.dtype.type(hp["learning_rate"]), \
        -hp["learning_rate_power"]
    n, z = state["accumulator"], state["linear"]
    l1 = hp["l1_regularization_strength"]
    l2 = f(hp["l2_regularization_strength"] + hp["beta"] / (2.0 * float(lr)))
    grad_to_use = grad + f(2 * hp["l2_shrinkage_regularization_strength"]) * param
    new_n = n + np.square(grad)
    z += grad_to_use - (np.power(new_n, f(power)) - np.power(n, f(power))) / lr * param
    quadratic = np.power(new_n, f(power)) / lr + f(2) * l2
    param[...] = (np.clip(z, -l1, l1) - z) / quadratic
    n[...] = new_n


def _lion(param, grad, state, step, hp) -> None:
    """Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms").

    param -= lr * sign(beta_1 * m + (1 - beta_1) * grad)
    m = beta_2 * m + (1 - beta_2) * grad
    """
    f, m = param.dtype.type, state["m"]
    param -= f(hp["learning_rate"]) * np.sign(m * f(hp["beta_1"]) + grad * f(1 - hp["beta_1"]))
    m *= f(hp["beta_2"])
    m += grad * f(1 - hp["beta_2"])


def _rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(np.square(x)))


def _adafactor(param, grad, state, step, hp) -> None:
    """Adafactor (Shazeer & Stern), Keras's formulation: factored second moments.

    rho_t = min(lr, 1 / sqrt(t));  alpha_t = max(epsilon_2, RMS(param)) * rho_t
    g2 = grad**2 + epsilon_1;  beta_2_t = 1 - t**beta_2_decay
    rank >= 2: r = beta_2_t r + (1 - beta_2_t) mean(g2, -1);  c likewise over axis -2;
               v = (r / mean(r, -1))[..., None] * c[..., None, :]
    else:      v = beta_2_t v + (1 - beta_2_t) g2
    u = grad / sqrt(v);  param -= alpha_t * u / max(1, RMS(u) / clip_threshold)
    Not elementwise: RMS(param) and the means read whole tensors.
    """
    f, t = param.dtype.type, float(step)
    rho_t = min(hp["learning_rate"], 1.0 / np.sqrt(t))
    alpha_t = np.maximum(f(hp["epsilon_2"]), _rms(param)) * f(rho_t)
    g2 = np.square(grad) + f(hp["epsilon_1"])
    beta = f(1.0 - t ** hp["beta_2_decay"])
    v = state["v"]
    if param.ndim >= 2:
        r, c = state["r"], state["c"]
        r[...] = beta * r + (1 - beta) * np.mean(g2, axis=-1)
        c[...] = beta * c + (1 - beta) * np.mean(g2, axis=-2)
        v[...] = (r / np.mean(r, axis=-1, keepdims=True))[..., None] * c[..., None, :]
    else:
        v[...] = beta * v + (1 - beta) * g2
    u = grad / np.sqrt(v)
    param -= alpha_t * (u / np.maximum(f(1), _rms(u) / f(hp["clip_threshold"])))


def _lamb(param, grad, state, step, hp) -> None:
    """LAMB (You et al. 2019), Keras's formulation: Adam's step scaled by a trust ratio.

    m += (1 - beta_1) (grad - m);  v += (1 - beta_2) (grad**2 - v)
    u = (m / (1 - beta_1**t)) / (sqrt(v / (1 - beta_2**t)) + epsilon)
    ratio = |param| / |u| (L2 norms of the whole tensor; 1 if either is 0)
    param -= ratio * lr * u.  Not elementwise: the norms read whole tensors.
    """
    f, b1, b2, t = param.dtype.type, hp["beta_1"], hp["beta_2"], step
    m, v = state["m"], state["v"]
    m += (grad - m) * f(1 - b1)
    v += (np.square(grad) - v) * f(1 - b2)
    update = (m / f(1 - b1 ** t)) / (np.sqrt(v / f(1 - b2 ** t)) + f(hp["epsilon"]))
    w_norm, u_norm = np.sqrt(np.sum(np.square(param))), np.sqrt(np.sum(np.square(update)))
    ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else f(1)
    param -= f(ratio) * f(hp["learning_rate"]) * update


def _adam_moments(grad: np.ndarray, m: np.ndarray, v: np.ndarray, b1: float, b2: float,
                  f: Any) -> None:
    """m += (1 - b1) (grad - m);  v += (1 - b2) (grad**2 - v), in place."""
    m += (grad - m) * f(1 - b1)
    v += (np.square(grad) - v) * f(1 - b2)


def _schedule_free_adamw(param, grad, state, step, hp) -> None:
    """Schedule-Free AdamW (Defazio et al. 2024), Keras 3's formulation.

    The parameter holds y, the point gradients are taken at; slot `z` (initially the
    parameter) is the base sequence, x (the average, what to evaluate) is implied:
    x = (y - (1 - beta_1) z) / beta_1.

    lr_t = lr * min(t / warmup_steps, 1) (when warmup_steps > 0)
    v += (1 - beta_2) (grad**2 - v)
    z_new = z - lr_t * grad / (sqrt(v / (1 - beta_2**t)) + epsilon)
    x_old = (y - (1 - beta_1) z_new) / beta_1     (Keras reads z after its update)
    x_new = (1 - 1/t) x_old + (1/t) z_new
    y = (1 - beta_1) z_new + beta_1 x_new
    """
    f, t, b1 = param.dtype.type, float(step), hp["beta_1"]
    lr = hp["learning_rate"] * (min(t / hp["warmup_steps"], 1.0) if hp["warmup_steps"] > 0
                                else 1.0)
    z, v = state["z"], state["velocity"]
    v += (np.square(grad) - v) * f(1 - hp["beta_2"])
    denom = np.sqrt(v / f(1 - hp["beta_2"] ** t)) + f(hp["epsilon"])
    z -= f(lr) * grad / denom
    x_old = (param - z * f(1 - b1)) / f(b1)
    x_new = x_old * f(1 - 1 / t) + z * f(1 / t)
    param[...] = z * f(1 - b1) + x_new * f(b1)


def newton_schulz(x: np.ndarray, steps: int, a: float, b: float, c: float) -> np.ndarray:
    """Muon's quintic Newton-Schulz iteration: approximately U V^T of x = U S V^T.

    x / (|x|_F + 1e-7), transposed when taller than wide; then `steps` times
    A = X X^T;  X = a X + (b A + c A A) X.
    """
    tall = x.shape[-2] > x.shape[-1]
    x = np.swapaxes(x, -1, -2) if tall else x
    f = x.dtype.type
    x = x / (np.sqrt(np.sum(np.square(x), axis=(-2, -1), keepdims=True)) + f(1e-7))
    for _ in range(steps):
        gram = x @ np.swapaxes(x, -1, -2)
        x = f(a) * x + (f(b) * gram + f(c) * gram @ gram) @ x
    return np.swapaxes(x, -1, -2) if tall else x


def _muon(param, grad, state, step, hp) -> None:
    """Muon (Jordan et al. 2024; Liu et al. 2025's scaling), Keras 3's formulation.

    Matrices the optimizer does not exclude (`hp["adamw_variable"]` false, rank 2):
        momentum = mu * momentum + grad
        g = grad + mu * momentum (nesterov) or momentum
        param -= lr * NS(g) * sqrt(max(rows, cols)) * rms_rate   (NS: `newton_schulz`;
                 no sqrt(...) * rms_rate factor when rms_rate is None)
    Every other variable takes Adam's step with lr * adam_lr_ratio:
        momentum += (1 - b1)(grad - momentum);  velocity += (1 - b2)(grad**2 - velocity)
        param -= lr' sqrt(1 - b2**t) / (1 - b1**t) * momentum / (sqrt(velocity) + epsilon)
    Not elementwise: the iteration reads whole matrices.
    """
    f, m = param.dtype.type, state["momentum"]
    if hp.get("adamw_variable", False) or param.ndim != 2:
        v = state.setdefault("velocity", np.zeros_like(param))
        b1, b2, t = hp["adam_beta_1"], hp["adam_beta_2"], step
        lr = hp["learning_rate"] * hp["adam_lr_ratio"]
        alpha = f(lr * np.sqrt(1 - f(b2) ** t) / (1 - f(b1) ** t))
        _adam_moments(grad, m, v, b1, b2, f)
        param -= m * alpha / (np.sqrt(v) + f(hp["epsilon"]))
        return
    mu = f(hp["momentum"])
    m += grad + m * (mu - f(1))
    update = newton_schulz(grad + mu * m if hp["nesterov"] else m, int(hp["ns_steps"]),
                           hp["muon_a"], hp["muon_b"], hp["muon_c"])
    update = update * f(hp["learning_rate"])
    if hp["rms_rate"] is not None:
        update = update * f(np.sqrt(max(param.shape))) * f(hp["rms_rate"])
    param -= update


_RULES: dict[str, Rule] = {}


def _register(rule: Rule) -> Rule:
    _RULES[rule.name] = rule
    return rule


def _sgd_linear(hp: Mapping[str, Any], dtype: np.dtype) -> float | None:
    """-lr (in the parameter's dtype, as `_sgd` rounds it) without momentum or decay."""
    if hp["momentum"] or hp.get("weight_decay"):
        return None
    return -float(dtype.type(hp["learning_rate"]))


_register(Rule("sgd", lambda hp: ("momentum",) if hp["momentum"] else (), _sgd,
               {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
               linear=_sgd_linear))
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


_register(Rule("nadam", lambda hp: ("m", "v"), _nadam,
               {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}))
_register(Rule("adamax", lambda hp: ("m", "u"), _adamax,
               {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}))
_register(Rule("adadelta", lambda hp: ("accumulated_grad", "accumulated_delta_var"),
               _adadelta, {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7}))
_register(Rule("ftrl", lambda hp: ("accumulator", "linear"), _ftrl,
               {"learning_rate": 0.001, "learning_rate_power": -0.5,
                "initial_accumulator_value": 0.1, "l1_regularization_strength": 0.0,
                "l2_regularization_strength": 0.0, "l2_shrinkage_regularization_strength": 0.0,
                "beta": 0.0}))
_register(Rule("lion", lambda hp: ("m",), _lion,
               {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.99}))
_register(Rule("lamb", lambda hp: ("m", "v"), _lamb,
               {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
               elementwise=False))
_register(Rule("adafactor", lambda hp: ("r", "c", "v"), _adafactor,
               {"learning_rate": 0.001, "beta_2_decay": -0.8, "epsilon_1": 1e-30,
                "epsilon_2": 1e-3, "clip_threshold": 1.0, "relative_step": True},
               elementwise=False))


_register(Rule("schedulefreeadamw", lambda hp: ("z", "velocity"), _schedule_free_adamw,
               {"learning_rate": 0.0025, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
                "warmup_steps": 0}))
_register(Rule("muon", lambda hp: ("momentum", "velocity") if hp.get("adamw_variable")
               else ("momentum",), _muon,
               {"learning_rate": 0.001, "adam_beta_1": 0.9, "adam_beta_2": 0.999,
                "adam_weight_decay": 0.004, "epsilon": 1e-7, "muon_a": 3.4445,
                "muon_b": -4.7750, "muon_c": 2.0315, "adam_lr_ratio": 1.0, "momentum": 0.95,
                "ns_steps": 5, "nesterov": True, "rms_rate": 0.2},
               elementwise=False))


def get_rule(name: str) -> Rule:
    """The update rule called `name` ("sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam",
    "adamax", "adadelta", "ftrl", "lion", "adafactor", "lamb", "schedulefreeadamw", "muon").

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
