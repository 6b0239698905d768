"""Keras's optimizer extras, a base of `Optimizer`: weight-decay exclusions, the moving
average of the variables (`use_ema`), gradient clipping, and the slot state.

`OptimizerExtras` reads the attributes `Optimizer.__init__` sets (`_slots`, `_ema`,
`_no_decay_ids`, `_no_decay_pattern`, `use_ema`, `ema_momentum`,
`ema_overwrite_frequency`, `clipnorm`, `clipvalue`, `global_clipnorm`) and its
`_step_count()`, `hyperparameters()`, `rule` and `iterations`; it is not used on its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np

from distflow.tensor import Variable


class OptimizerExtras:
    """The parts of `Optimizer` that Keras's optional arguments switch on, and its state."""

    def exclude_from_weight_decay(self, var_list: Iterable[Variable] | None = None,
                                  var_names: Iterable[str] | None = None) -> None:
        """Keras's exclusions from weight decay (call before the first step).

        Args:
            var_list: variables never decayed.
            var_names: regular expressions; a variable whose name contains a match (e.g.
                "bias", "layer_norm") is not decayed.

        Raises:
            ValueError: once the optimizer has slots (built), as in Keras.
        """
        if self._slots:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before "
                             "the optimizer is built.")
        self._no_decay_ids = {id(v) for v in var_list or ()}
        names = sorted(set(var_names or ()))
        self._no_decay_pattern = re.compile("|".join(names)) if names else None

    def _use_weight_decay(self, var: Variable) -> bool:
        if id(var) in self._no_decay_ids:
            return False
        pattern = self._no_decay_pattern
        return pattern is None or pattern.search(var.name) is None

    def _refuse_decay_exclusions(self) -> None:
        if self._no_decay_ids or self._no_decay_pattern is not None:
            raise NotImplementedError(
                "`exclude_from_weight_decay` is not supported under a distribution strategy: "
                "the parameter servers decay every parameter. Train in one process or use "
                "no weight decay.")

    def _refuse_ema(self) -> None:
        if self.use_ema:
            raise NotImplementedError(
                "`use_ema=True` is not supported under a distribution strategy: the moving "
                "average would be kept by each worker, not by the parameter servers. Pass "
                "use_ema=False or train in one process.")

    def _update_ema(self, variables: list[Variable]) -> None:
        """Keras's moving average of the variables (and its periodic overwrite)."""
        step = self._step_count()  # before this step is counted, as in Keras
        for var in variables:
            average = self._ema.get(var.name)
            if average is None:
                average = self._ema[var.name] = np.zeros_like(var.value)
            m = var.value.dtype.type(self.ema_momentum if step else 0.0)
            average *= m
            average += (1 - m) * var.value
        frequency = self.ema_overwrite_frequency
        if frequency and (step + 1) % frequency == 0:
            self.finalize_variable_values(variables)

    def finalize_variable_values(self, var_list: Iterable[Variable]) -> None:
        """With `use_ema`, writes each variable's moving average into it (as Keras does
        when `fit` ends); otherwise nothing."""
        if not self.use_ema:
            return
        for var in var_list:
            if var.name in self._ema:
                var.assign(self._ema[var.name])

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clipvalue is not None:
            grads = [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            grads = [_scale_to_norm(g, _norm(g), self.clipnorm) for g in grads]
        if self.global_clipnorm is not None:
            total = math.sqrt(sum(_norm(g) ** 2 for g in grads))
            grads = [_scale_to_norm(g, total, self.global_clipnorm) for g in grads]
        return grads

    def build(self, var_list: Iterable[Variable]) -> None:
        """Creates the slots of `var_list` now (Keras does it lazily as well)."""
        hp = self.hyperparameters()
        var_list = list(var_list)
        self._built_variables = var_list
        for var in var_list:
            if var.name not in self._slots:
                self._slots[var.name] = self.rule.init(var.value, hp)

    def get_state(self) -> dict[str, np.ndarray]:
        """Step counter and slots as `{"iterations": ..., "<var>/<slot>": array}` (for saving)."""
        state = {"iterations": np.array(self._step_count(), np.int64)}
        for var_name, slots in self._slots.items():
            for slot, array in slots.items():
                state[f"{var_name}/{slot}"] = array
        for var_name, average in self._ema.items():
            state[f"ema:{var_name}"] = average
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restores what `get_state` returned."""
        self.iterations = int(np.asarray(state.get("iterations", 0)))
        self._slots = {}
        self._ema = {key[4:]: np.array(array) for key, array in state.items()
                     if key.startswith("ema:")}
        for key, array in state.items():
            if key != "iterations" and not key.startswith("ema:"):
                var_name, _, slot = key.rpartition("/")
                self._slots.setdefault(var_name, {})[slot] = np.array(array)

    def variables(self) -> list[np.ndarray]:
        """The slot arrays (Keras returns the optimizer's variables)."""
        return [a for slots in self._slots.values() for a in slots.values()]


def _norm(g: np.ndarray) -> float:
    flat = g.reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


def _scale_to_norm(g: np.ndarray, norm: float, limit: float) -> np.ndarray:
    return g * g.dtype.type(limit / norm) if norm > limit else g
