"""`MultiOptimizer` and `OptimizerMap`: different optimizers for different variables (Keras 3's).

`OptimizerMap(default_optimizer, {pattern: optimizer})` picks a variable's optimizer by
its name: an exact key first, else the one key that `re.fullmatch`es it (two matches
raise), else the default. `MultiOptimizer(optimizer_map)` (or a function
`variable -> optimizer`) hands each optimizer its variables' gradients on every step,
and each applies its own rule, clipping, weight decay and step count.

One process only: under a distribution strategy the parameter servers run one update
rule per model, so `apply_gradients` raises there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import numpy as np

from distflow.optimizers.base import Optimizer, deserialize_from, get_apply_override, serialize
from distflow.optimizers.loss_scale import LossScaleOptimizer
from distflow.optimizers.muon import Muon
from distflow.optimizers.optimizers import BUILTIN
from distflow.tensor import Variable, graph_form

_SUB_OPTIMIZERS = {**BUILTIN, "muon": Muon}


def _check_inner(optimizer: Any, what: str) -> None:
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"{what} must be a Keras Optimizer instance. Received: {optimizer!r}")
    if isinstance(optimizer, LossScaleOptimizer):
        raise ValueError("LossScaleOptimizer cannot be used inside a MultiOptimizer.")
    if isinstance(optimizer, MultiOptimizer):
        raise ValueError("MultiOptimizer cannot be used inside a MultiOptimizer.")


class OptimizerMap(MutableMapping):
    """Variable-name patterns -> optimizers, with a default for the rest.

    Args:
        default_optimizer: the optimizer of variables no key matches.
        optimizer_map: `{name or regular expression: optimizer}`.
    """

    def __init__(self, default_optimizer: Optimizer,
                 optimizer_map: dict[str, Optimizer] | None = None):
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError("default_optimizer must be a Keras Optimizer instance. Received: "
                            f"{default_optimizer!r}")
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"optimizer_map must be a dictionary. Received: {optimizer_map!r}")
        self._default_optimizer = default_optimizer
        self._optimizer_map: dict[str, Optimizer] = {}
        for key, optimizer in (optimizer_map or {}).items():
            self[key] = optimizer

    @property
    def default_optimizer(self) -> Optimizer:
        return self._default_optimizer

    def __getitem__(self, key: str) -> Optimizer:
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        matches = [p for p in self._optimizer_map if re.fullmatch(p, key)]
        if len(matches) > 1:
            raise ValueError(f"Multiple optimizers assigned to variable {key}: patterns "
                             f"{matches} all match it.")
        return self._optimizer_map[matches[0]] if matches else self._default_optimizer

    def __setitem__(self, key: str, optimizer: Optimizer) -> None:
        if key in self._optimizer_map:
            raise ValueError(f"'{key}' already exists in the OptimizerMap with value "
                             f"{self._optimizer_map[key]!r}. Please make sure to not use "
                             "duplicated keys.")
        if not isinstance(key, str):
            raise ValueError(f"key must be a string. Received: {key!r}")
        _check_inner(optimizer, "optimizer")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key: str) -> None:
        del self._optimizer_map[key]

    def __len__(self) -> int:
        return len(self._optimizer_map)

    def __iter__(self) -> Iterator[str]:
        return iter(self._optimizer_map)

    def __call__(self, variable: Variable) -> Optimizer:
        return self[variable.name]

    def get_config(self) -> dict[str, Any]:
        return {"default_optimizer": serialize(self._default_optimizer),
                "optimizer_map": {k: serialize(v) for k, v in self._optimizer_map.items()}}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None
                    ) -> OptimizerMap:
        def load(entry: dict) -> Optimizer:
            # Sub-optimizers are never LossScaleOptimizer or MultiOptimizer (refused above).
            return deserialize_from(_SUB_OPTIMIZERS, entry, custom_objects)

        return cls(load(config["default_optimizer"]),
                   {k: load(v) for k, v in (config.get("optimizer_map") or {}).items()})


class MultiOptimizer(Optimizer):
    """Delegates each variable to the optimizer `optimizer_map` gives it (see the module).

    `learning_rate` cannot be read or set (each sub-optimizer has its own, as in Keras);
    `optimizers` lists the sub-optimizers; `iterations` counts this optimizer's steps.

    Args:
        optimizer_map: an `OptimizerMap`, or a function `variable -> Optimizer`.
        loss_scale_factor: set on every sub-optimizer (they divide the gradients by it).
        name: display name.
    """

    rule_name = "sgd"  # unused: the sub-optimizers apply their own rules

    def __init__(self, optimizer_map: OptimizerMap | Callable[[Variable], Optimizer],
                 loss_scale_factor: float | None = None, name: str | None = None):
        if not callable(optimizer_map):
            raise TypeError("`optimizer_map` must be an OptimizerMap or a function returning "
                            f"the optimizer of a variable. Received: {optimizer_map!r}")
        super().__init__(0.0, name=name or "MultiOptimizer",
                         loss_scale_factor=loss_scale_factor)
        self._optimizer_map = optimizer_map
        self._inner: list[Optimizer] = []
        self._assigned: dict[str, Optimizer] = {}
        for optimizer in [*getattr(optimizer_map, "values", list)(),
                          getattr(optimizer_map, "default_optimizer", None)]:
            if optimizer is not None:
                self._adopt(optimizer)

    def _adopt(self, optimizer: Optimizer) -> Optimizer:
        if all(optimizer is not o for o in self._inner):
            optimizer.loss_scale_factor = self.loss_scale_factor
            self._inner.append(optimizer)
        return optimizer

    @property
    def loss_scale_factor(self) -> float | None:
        return self.__dict__.get("_loss_scale_factor")

    @loss_scale_factor.setter
    def loss_scale_factor(self, value: float | None) -> None:
        """Set on every sub-optimizer too, as Keras does."""
        self._loss_scale_factor = value
        for optimizer in self.__dict__.get("_inner", []):
            optimizer.loss_scale_factor = value

    @property
    def optimizers(self) -> list[Optimizer]:
        """The sub-optimizers, in the order they were first used."""
        return list(self._inner)

    @property
    def learning_rate(self) -> Any:
        raise AttributeError("Learning rate cannot be accessed on a MultiOptimizer. Access the "
                             "learning rate on the individual sub-optimizers instead "
                             "(`optimizer.optimizers`).")

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if "_inner" in self.__dict__:
            raise AttributeError("Learning rate cannot be set on a MultiOptimizer. Set the "
                                 "learning rate on the individual sub-optimizers instead.")
        Optimizer.learning_rate.fset(self, value)  # the base class's placeholder

    def optimizer_for(self, variable: Variable) -> Optimizer:
        """The sub-optimizer of `variable` (chosen once, at its first step)."""
        chosen = self._assigned.get(variable.name)
        if chosen is None:
            chosen = self._optimizer_map(variable)
            _check_inner(chosen, f"The optimizer for variable {variable.name}")
            self._assigned[variable.name] = self._adopt(chosen)
        return chosen

    def build(self, var_list: Iterable[Variable]) -> None:
        var_list = list(var_list)
        self._built_variables = var_list
        for optimizer, variables in self._groups([(None, v) for v in var_list]):
            optimizer.build([v for _, v in variables])

    def _groups(self, pairs: list) -> list[tuple[Optimizer, list]]:
        groups: dict[int, tuple[Optimizer, list]] = {}
        for grad, var in pairs:
            optimizer = self.optimizer_for(var)
            groups.setdefault(id(optimizer), (optimizer, []))[1].append((grad, var))
        return list(groups.values())

    @graph_form("effect")
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> int:
        """Each sub-optimizer applies one step to its variables; then `iterations` += 1."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if get_apply_override() is not None or self._owner_strategy(pairs) is not None:
            raise NotImplementedError(
                "MultiOptimizer cannot train under a distribution strategy: the parameter "
                "servers run one update rule per model. Use one optimizer, or train in one "
                "process.")
        for optimizer, sub_pairs in self._groups(pairs):
            optimizer.apply_gradients(sub_pairs)
        self._iterations.assign_add(1)
        return self._step_count()

    def finalize_variable_values(self, var_list: Iterable[Variable]) -> None:
        for optimizer, pairs in self._groups([(None, v) for v in var_list]):
            optimizer.finalize_variable_values([v for _, v in pairs])

    def get_state(self) -> dict[str, np.ndarray]:
        state = {"iterations": np.array(self._step_count(), np.int64)}
        for index, optimizer in enumerate(self._inner):
            state.update({f"{index}:{k}": v for k, v in optimizer.get_state().items()})
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.iterations = int(np.asarray(state.get("iterations", 0)))
        for index, optimizer in enumerate(self._inner):
            prefix = f"{index}:"
            optimizer.set_state({k[len(prefix):]: v for k, v in state.items()
                                 if k.startswith(prefix)})

    def variables(self) -> list[np.ndarray]:
        return [a for optimizer in self._inner for a in optimizer.variables()]

    def get_config(self) -> dict[str, Any]:
        if not isinstance(self._optimizer_map, OptimizerMap):
            raise ValueError("A MultiOptimizer built from a function cannot be serialized: use "
                             "an OptimizerMap.")
        return {"optimizer_map": {"class_name": "OptimizerMap",
                                  "config": self._optimizer_map.get_config()},
                "loss_scale_factor": self.loss_scale_factor, "name": self.name}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> MultiOptimizer:
        config = dict(config)
        mapping = config.pop("optimizer_map")
        if isinstance(mapping, dict):
            mapping = OptimizerMap.from_config(mapping.get("config", mapping), custom_objects)
        return cls(mapping, **config)

    def __repr__(self) -> str:
        return f"<MultiOptimizer optimizers={[type(o).__name__ for o in self._inner]}>"
