"""Compiled steps: `train_step`, `test_step` and `predict_step` traced by `distflow.function`.

`Model.compile(run_eagerly=False)` (the default, as in Keras) makes `fit`,
`evaluate`, `predict` and the `*_on_batch` methods call the model's steps
through `distflow.function`: each step is traced once per input signature (the
batch's structure, shapes and dtypes; a last partial batch is a new shape and
traces again) and then runs as one compiled plan. What runs on the host stays
correct at every step, because it is recorded as stateful operations that run
when the plan runs, never frozen at trace time: metric updates and results,
dropout masks, BatchNormalization's moving statistics, the losses' label checks,
and the optimizer's update (its iterations, learning rate and schedules, and a
distribution strategy's push/pull of the parameter servers).

A step that cannot be traced (it reads a tensor's value, branches in Python on
one, or calls code with no graph form) runs eagerly instead, with one warning
naming why; the results are the eager ones. Keras would raise there; distflow
prefers training to go on at eager speed (`run_eagerly=True` silences it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distflow.graph.function import Function

__all__ = ["StepFunctions"]

_FALLBACK_HINT = (". The model's steps run eagerly from now on; pass run_eagerly=True to "
                  "`compile()` to choose that explicitly and silence this warning.")


class StepFunctions:
    """`run_eagerly` and the `make_*_function` methods of `keras.Model`.

    `train_function` / `test_function` / `predict_function` are what the loops
    call per batch: the bound step itself when running eagerly, else its traced
    `distflow.function` (made on first use, dropped by `compile` and by setting
    `run_eagerly`).
    """

    _run_eagerly: bool = False
    train_function: Any = None
    test_function: Any = None
    predict_function: Any = None

    @property
    def run_eagerly(self) -> bool:
        """Whether the steps run eagerly (True) or traced into graphs (False, the default)."""
        return bool(self.__dict__.get("_run_eagerly", False))

    @run_eagerly.setter
    def run_eagerly(self, value: bool) -> None:
        object.__setattr__(self, "_run_eagerly", bool(value))
        self._reset_step_functions()

    def _reset_step_functions(self) -> None:
        for name in ("train_function", "test_function", "predict_function"):
            object.__setattr__(self, name, None)

    def make_train_function(self, force: bool = False) -> Callable:
        """The per-batch training function `fit` and `train_on_batch` call."""
        if self.__dict__.get("train_function") is None or force:
            object.__setattr__(self, "train_function", self._step_function("train_step"))
        return self.train_function

    def _train_function_for(self, variables: list) -> Callable:
        """`make_train_function()`, traced again when the trainable variables changed
        since its traces (a layer frozen or unfrozen between two `fit` calls)."""
        key = [id(v) for v in variables]
        if self.__dict__.get("_traced_variables") != key:
            object.__setattr__(self, "_traced_variables", key)
            object.__setattr__(self, "train_function", None)
        return self.make_train_function()

    def make_test_function(self, force: bool = False) -> Callable:
        """The per-batch evaluation function `evaluate` and `test_on_batch` call."""
        if self.__dict__.get("test_function") is None or force:
            object.__setattr__(self, "test_function", self._step_function("test_step"))
        return self.test_function

    def make_predict_function(self, force: bool = False) -> Callable:
        """The per-batch prediction function `predict` and `predict_on_batch` call."""
        if self.__dict__.get("predict_function") is None or force:
            object.__setattr__(self, "predict_function", self._step_function("predict_step"))
        return self.predict_function

    def _step_function(self, name: str) -> Callable:
        step = getattr(self, name)
        if self.run_eagerly:
            return step
        return Function(step, name=f"{type(self).__name__}.{name}",
                        eager_fallback=_FALLBACK_HINT)
