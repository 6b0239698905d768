"""`LossScaleOptimizer`: Keras 3's dynamic loss scaling around another optimizer.

scale_loss(loss) = loss * scale. `apply_gradients` checks that every gradient is
finite: if so it divides them by the scale and lets the inner optimizer apply
them (through its `apply_gradients`, so a strategy's override still routes
them), doubling the scale after `dynamic_growth_steps` such steps in a row;
otherwise it skips the step and halves the scale. distflow computes in float32,
where this changes no result, but scripts written for mixed precision run as
written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from distflow.optimizers.base import Optimizer, deserialize_from, serialize
from distflow.optimizers.optimizers import BUILTIN
from distflow.tensor import Tensor, Variable


class LossScaleOptimizer(Optimizer):
    """Dynamic loss scaling (see the module docstring).

    Args:
        inner_optimizer: the optimizer that applies the unscaled gradients.
        initial_scale: the starting scale (2**15, as Keras).
        dynamic_growth_steps: finite steps in a row before the scale doubles.
        name: display name.
    """

    def __init__(self, inner_optimizer: Optimizer, initial_scale: float = 2.0 ** 15,
                 dynamic_growth_steps: int = 2000, name: str | None = None, **kwargs: Any):
        if not isinstance(inner_optimizer, Optimizer):
            raise ValueError("`inner_optimizer` must be an Optimizer. Received: "
                             f"inner_optimizer={inner_optimizer!r}")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        self.inner_optimizer = inner_optimizer
        self.initial_scale, self.dynamic_growth_steps = float(initial_scale), \
            int(dynamic_growth_steps)
        self.name = name or f"loss_scale_optimizer_{inner_optimizer.name}"
        self.dynamic_scale = Variable(np.array(initial_scale, np.float32), name="dynamic_scale",
                                      trainable=False)
        self.step_counter = Variable(np.array(0, np.int64), name="step_counter",
                                     trainable=False)

    def __getattr__(self, name: str) -> Any:
        if name == "inner_optimizer":  # not yet set (during unpickling-free copies)
            raise AttributeError(name)
        return getattr(self.inner_optimizer, name)

    @property
    def learning_rate(self) -> Any:
        """The inner optimizer's learning rate."""
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self.inner_optimizer.learning_rate = value

    @property
    def iterations(self) -> Variable:
        """The inner optimizer's step counter (skipped steps do not count)."""
        return self.inner_optimizer.iterations

    def scale_loss(self, loss: Any) -> Any:
        """loss * the current scale."""
        return loss * float(self.dynamic_scale.value)

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> int:
        """Unscales and applies finite gradients (else skips the step); adapts the scale."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        arrays = [g.value if isinstance(g, Tensor) else np.asarray(g) for g, _ in pairs]
        if not all(np.all(np.isfinite(a)) for a in arrays):
            self.step_counter.assign(0)
            self.dynamic_scale.assign(float(self.dynamic_scale.value) / 2.0)
            return int(self.iterations.value)
        scale = np.float32(self.dynamic_scale.value)
        result = self.inner_optimizer.apply_gradients(
            (a / a.dtype.type(scale), v) for a, (_, v) in zip(arrays, pairs))
        if int(self.step_counter.value) == self.dynamic_growth_steps - 1:
            self.step_counter.assign(0)
            self.dynamic_scale.assign(float(scale) * 2.0)
        else:
            self.step_counter.assign_add(1)
        return result

    def get_state(self) -> dict[str, np.ndarray]:
        """The inner optimizer's state plus the scale and its counter."""
        return {**self.inner_optimizer.get_state(),
                "loss_scale/dynamic_scale": np.array(self.dynamic_scale.value),
                "loss_scale/step_counter": np.array(self.step_counter.value)}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restores what `get_state` returned."""
        own = {k: v for k, v in state.items() if k.startswith("loss_scale/")}
        self.inner_optimizer.set_state({k: v for k, v in state.items() if k not in own})
        if own:
            self.dynamic_scale.assign(own["loss_scale/dynamic_scale"])
            self.step_counter.assign(own["loss_scale/step_counter"])

    def get_config(self) -> dict:
        return {"name": self.name, "inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> LossScaleOptimizer:
        config = dict(config)
        inner = deserialize_from({**BUILTIN, "lossscaleoptimizer": cls},
                                 config.pop("inner_optimizer"), custom_objects)
        return cls(inner, **config)

    def __repr__(self) -> str:
        return f"<LossScaleOptimizer inner={self.inner_optimizer!r}>"
