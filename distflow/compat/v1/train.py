"""TF1 optimizers (`tf.compat.v1.train`): `minimize`, `compute_gradients`, `apply_gradients`.

In graph mode `compute_gradients` adds gradient operations (`gradients`) and
`apply_gradients` adds one stateful operation that applies the update when a
session runs it. The arithmetic is `distflow.optimizers.rules`, the same NumPy
rules the Keras optimizers and the parameter servers use; TF1's formulations
coincide with them:

    GradientDescent:  var -= lr * g
    Momentum:         accum = momentum * accum + g;  var -= lr * accum
                      (use_nesterov: var -= lr * (g + momentum * accum))
    Adam:             m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
                      var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)
    Adagrad, RMSProp: see their classes (TF1's, which differ slightly from Keras's).

(Keras's momentum velocity is -lr * accum, so the two agree for a constant rate.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import ops
from distflow.compat.v1 import variables
from distflow.graph import core, errors
from distflow.graph.gradients import gradients
from distflow.graph.record import record_effect
from distflow.optimizers import rules
from distflow.tensor import GradientTape, Tensor, Variable, as_array, graph_form


class Optimizer:
    """Base of the TF1 optimizers.

    Args:
        rule: the `distflow.optimizers.rules` name.
        hyper: the rule's hyper-parameters (learning_rate included).
        name: the name scope of the update operations.
    """

    def __init__(self, rule: str, hyper: dict, name: str):
        lr = hyper["learning_rate"]
        self._rate = lr if isinstance(lr, Tensor) else None  # a tensor: read at every update
        if self._rate is not None:
            hyper = {**hyper, "learning_rate": 0.0}
        elif isinstance(lr, bool) or not isinstance(lr, int | float | np.floating) or lr < 0:
            raise ValueError(f"`learning_rate` must be a non-negative float or a tensor. "
                             f"Received: learning_rate={lr!r}")
        self._rule, self._hyper, self._name = rules.get_rule(rule), dict(hyper), name
        self._slots: dict[int, dict] = {}
        self._step = 0

    def get_name(self) -> str:
        return self._name

    def compute_gradients(self, loss: Any, var_list: list | None = None,
                          grad_loss: Any = None, **_kwargs: Any) -> list[tuple]:
        """(gradient, variable) pairs; a gradient is None when `loss` does not use it."""
        if callable(loss):
            return self._eager_gradients(loss, var_list)
        var_list = list(var_list) if var_list is not None else variables.trainable_variables()
        if not var_list:
            raise ValueError("No variables to optimize.")
        grads = gradients(loss, var_list, None if grad_loss is None else [grad_loss])
        return list(zip(grads, var_list))

    def _eager_gradients(self, loss: Callable, var_list: list | None) -> list[tuple]:
        with GradientTape() as tape:
            value = loss()
        var_list = list(var_list) if var_list is not None else tape.watched_variables()
        return list(zip(tape.gradient(value, var_list), var_list))

    def apply_gradients(self, grads_and_vars: Any, global_step: Variable | None = None,
                        name: str | None = None) -> Any:
        """An operation (graph mode) that applies one update; eagerly, applies it now."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable: "
                             f"{[v.name for _, v in grads_and_vars]}.")
        if core.building_graph() is None:
            self._apply([g.value if isinstance(g, Tensor) else np.asarray(g) for g, _ in pairs],
                        [v for _, v in pairs], global_step, self._rate)
            return None
        graph = core.building_graph()
        with graph.name_scope(name or self._name):
            return record_effect(self._apply, ([g for g, _ in pairs], [v for _, v in pairs],
                                               global_step, self._rate), {}, "Apply")

    def _apply(self, grads: list, variables_: list, global_step: Variable | None,
               rate: Any = None) -> None:
        """One update in place (TF1 order: the rate is read, then global_step advances)."""
        self._step += 1
        if rate is not None:
            self._hyper["learning_rate"] = float(rate.value if isinstance(rate, Tensor)
                                                 else rate)
        for g, var in zip(grads, variables_):
            g = g.value if isinstance(g, Tensor) else g
            state = self._slots.get(id(var))
            if state is None:
                state = self._slots[id(var)] = self._init_slots(var.value)
            self._rule.update(var.value, g.astype(var.value.dtype, copy=False), state,
                              self._step, self._hyper)
        if global_step is not None:
            global_step.value += 1

    def _init_slots(self, param: np.ndarray) -> dict:
        return self._rule.init(param, self._hyper)

    def minimize(self, loss: Any, global_step: Variable | None = None,
                 var_list: list | None = None, name: str | None = None,
                 grad_loss: Any = None, **_kwargs: Any) -> Any:
        """compute_gradients then apply_gradients; the update operation (graph mode)."""
        pairs = self.compute_gradients(loss, var_list, grad_loss)
        if all(g is None for g, _ in pairs):
            raise ValueError(
                "No gradients provided for any variable, check your graph for ops that do not "
                f"support gradients, between variables {[v.name for _, v in pairs]} and loss "
                f"{loss!r}.")
        return self.apply_gradients(pairs, global_step, name)

    def get_slot_names(self) -> list[str]:
        return list(self._rule.slots({**self._rule.defaults, **self._hyper}))


class GradientDescentOptimizer(Optimizer):
    """var -= learning_rate * gradient."""

    def __init__(self, learning_rate: float, use_locking: bool = False,
                 name: str = "GradientDescent"):
        super().__init__("sgd", {"learning_rate": learning_rate, "momentum": 0.0}, name)


class MomentumOptimizer(Optimizer):
    """accum = momentum * accum + g; var -= lr * accum (Nesterov optional)."""

    def __init__(self, learning_rate: float, momentum: float, use_locking: bool = False,
                 name: str = "Momentum", use_nesterov: bool = False):
        super().__init__("sgd", {"learning_rate": learning_rate, "momentum": float(momentum),
                                 "nesterov": bool(use_nesterov)}, name)


class AdamOptimizer(Optimizer):
    """Adam with TF1's defaults (epsilon 1e-8)."""

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, use_locking: bool = False, name: str = "Adam"):
        super().__init__("adam", {"learning_rate": learning_rate, "beta_1": beta1,
                                  "beta_2": beta2, "epsilon": epsilon, "amsgrad": False}, name)


@graph_form(differentiable=False)
def _floor(x: Any) -> Tensor:
    return Tensor._wrap(np.floor(as_array(x)))


def exponential_decay(learning_rate: float, global_step: Any, decay_steps: int,
                      decay_rate: float, staircase: bool = False, name: Any = None) -> Any:
    """learning_rate * decay_rate ** (global_step / decay_steps) (floored when staircase).

    Evaluated from `global_step` whenever the graph runs (pass it to an optimizer).
    """
    if decay_steps <= 0:
        raise ValueError(f"`decay_steps` must be positive. Received: decay_steps={decay_steps}")
    p = ops.divide(ops.cast(global_step, np.float32), float(decay_steps))
    if staircase:
        p = _floor(p)
    return ops.multiply(float(learning_rate), ops.power(float(decay_rate), p))


class AdagradOptimizer(Optimizer):
    """accum += g^2;  var -= lr * g / sqrt(accum) (TF1: no epsilon, accum starts at 0.1)."""

    def __init__(self, learning_rate: float, initial_accumulator_value: float = 0.1,
                 use_locking: bool = False, name: str = "Adagrad"):
        super().__init__("adagrad", {"learning_rate": learning_rate, "epsilon": 0.0,
                                     "initial_accumulator_value": initial_accumulator_value},
                         name)


class RMSPropOptimizer(Optimizer):
    """ms = decay ms + (1 - decay) g^2;  mom = momentum mom + lr g / sqrt(ms + epsilon);
    var -= mom. As TF1, `ms` starts at ones (Keras's RMSprop starts it at zeros)."""

    def __init__(self, learning_rate: float, decay: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-10, use_locking: bool = False, centered: bool = False,
                 name: str = "RMSProp"):
        super().__init__("rmsprop", {"learning_rate": learning_rate, "rho": decay,
                                     "momentum": momentum, "epsilon": epsilon,
                                     "centered": centered}, name)

    def _init_slots(self, param: np.ndarray) -> dict:
        state = super()._init_slots(param)
        state["velocity"][...] = 1
        return state


def get_or_create_global_step(graph: Any = None) -> Variable:
    """The graph's `global_step` variable (int64, not trainable)."""
    graph = graph or core.get_default_graph()
    step = graph.__dict__.get("_global_step")
    if step is None:
        with graph.as_default():
            step = graph._global_step = variables.Variable_(
                np.int64(0), trainable=False, name="global_step")
    return step


get_global_step = get_or_create_global_step


class Saver:
    """Saves and restores variables (`tf.compat.v1.train.Saver`), as a safetensors file.

    `save(sess, "model.ckpt")` writes `model.ckpt.safetensors` (each variable under
    its name; never pickle) and returns that prefix; `restore(sess, "model.ckpt")`
    writes the saved values back into the variables and marks them initialized.
    The file is distflow's, not TF's checkpoint format.

    Args:
        var_list: the variables (a list, or a dict name -> variable); default: the
            default graph's global variables when the Saver is made.
    """

    def __init__(self, var_list: Any = None, **_kwargs: Any):
        if var_list is None:
            var_list = variables.global_variables()
        if not isinstance(var_list, dict):
            var_list = {v.name: v for v in var_list}
        if not var_list:
            raise ValueError("No variables to save.")
        self._vars = dict(var_list)

    def save(self, sess: Any, save_path: str, global_step: Any = None, **_kwargs: Any) -> str:
        """Writes the variables' current values; returns the checkpoint prefix."""
        from distflow.serialization import save_file

        prefix = save_path if global_step is None else f"{save_path}-{int(_step(global_step))}"
        for name, var in self._vars.items():
            if not variables.is_variable_initialized(var):
                raise errors.FailedPreconditionError(
                    f"Attempting to save the uninitialized variable {name}.")
        save_file({name: var.value for name, var in self._vars.items()},
                  prefix + ".safetensors")
        return prefix

    def restore(self, sess: Any, save_path: str) -> None:
        """Loads the values saved under `save_path` into the variables."""
        from distflow.serialization import load_file

        path = save_path + ".safetensors"
        if not os.path.exists(path):
            raise ValueError(f"The passed save_path is not a valid checkpoint: {save_path} "
                             f"({path} does not exist).")
        tensors, _ = load_file(path)
        missing = sorted(set(self._vars) - set(tensors))
        if missing:
            raise errors.NotFoundError(f"Key {missing[0]} not found in checkpoint {path}.")
        for name, var in self._vars.items():
            if tensors[name].shape != var.value.shape:
                raise errors.InvalidArgumentError(
                    f"Restoring '{name}': the checkpoint holds shape {tensors[name].shape}, "
                    f"the variable has shape {var.value.shape}.")
            np.copyto(var.value, tensors[name], casting="unsafe")
            graph = getattr(var, "graph", None)
            if graph is not None:
                graph.uninitialized.discard(id(var))


def _step(global_step: Any) -> Any:
    return global_step.value if isinstance(global_step, Tensor) else global_step
