"""The `Metric` base class and the helpers every metric module shares.

A metric is updated with `update_state(y_true, y_pred, sample_weight=None)`, read
with `result()` and cleared with `reset_state()`. Metrics read the arrays behind
tensors and compute with NumPy, keeping running totals in float64.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from distflow import nest
from distflow.keras._objects import snake_case as _snake_case
from distflow.keras.sample_weights import rank_matched
from distflow.tensor import GRAPH, Tensor, Variable, graph_form

EPSILON = 1e-7  # Keras's backend.epsilon()


def _np(x: Any) -> np.ndarray:
    """The array behind a tensor, or `x` as an array (no copy when possible)."""
    return x.value if isinstance(x, Tensor) else np.asarray(x)


def _match_rank(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's squeeze-or-expand: (N,) labels against (N, 1) predictions become (N, 1)."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape[:-1])
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape + (1,))
    return y_true, y_pred


def _same_shape(y_true: Any, y_pred: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _match_rank(_np(y_true), _np(y_pred))
    if y_true.shape != y_pred.shape:
        hint = (" Integer class labels need the sparse variant (e.g. "
                "sparse_categorical_accuracy)." if y_true.shape == y_pred.shape[:-1] else "")
        raise ValueError(f"`y_true` and `y_pred` must have the same shape for {what}. "
                         f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
                         + hint)
    return y_true, y_pred


def _last_axis_mean(values: np.ndarray) -> np.ndarray:
    """One value per sample; rank-1 inputs already are (Keras would average the batch)."""
    return values.mean(axis=-1) if values.ndim > 1 else values


def _float_pair(y_true: Any, y_pred: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _same_shape(y_true, y_pred, what)
    return y_true.astype(np.float64, copy=False), y_pred.astype(np.float64, copy=False)


class MetricValue(float):
    """A float returned by `result()`; `.numpy()` is there for code written for TF tensors."""

    def numpy(self) -> np.float64:
        """The value as a NumPy scalar."""
        return np.float64(self)



# ------------------------------------------------------------------ weights


def _weights_like(sample_weight: Any, values: np.ndarray) -> np.ndarray:
    """`sample_weight` (float64) rank-matched to `values`: (N,) or (N, 1) per sample."""
    return rank_matched(sample_weight, values.shape, np.float64)


def _samplewise_totals(values: Any, sample_weight: Any = None) -> tuple[float, float]:
    """(weighted sum, weight) of the per-sample means of `values`, as Keras's Mean counts.

    Values with more than one axis are first averaged over the non-batch axes, so
    every sample counts once (times its weight).
    """
    values = np.asarray(_np(values), dtype=np.float64)
    if values.ndim == 0 and (sample_weight is None or np.ndim(_np(sample_weight)) == 0):
        weight = 1.0 if sample_weight is None else float(_np(sample_weight))  # a loss value
        return float(values) * weight, weight
    if sample_weight is not None:
        weights = _weights_like(sample_weight, values)
        values, weights = np.broadcast_arrays(values, weights)
    if values.size == 0:
        return 0.0, 0.0
    samples = values.shape[0] if values.ndim else 1
    per_sample = values.size // samples  # values in each sample
    if sample_weight is None:
        return float(values.sum()) / per_sample, float(samples)
    return (float(np.vdot(values, weights)) / per_sample,
            float(weights.sum()) / per_sample)




def _result_tensors(metric: Metric, fn: Callable) -> Any:
    """`fn(metric)` (a `result()`) with every value a tensor: what a graph returns."""
    out = fn(metric)
    if isinstance(out, float):  # the usual one number (a MetricValue)
        return Tensor._wrap(np.array(float(out)))
    return nest.map_structure(lambda v: Tensor._wrap(np.asarray(_np(v))), out)


_result_tensors.graph_kernel = lambda metric, fn: metric._result_kernel(fn)


def _recorded_result(fn: Callable) -> Callable:
    """`result` that, while a traced step is built, becomes a stateful graph operation
    reading the metric's state when the graph runs (after the updates recorded before)."""
    @functools.wraps(fn)
    def result(self: Metric) -> Any:
        if GRAPH.active:
            out = GRAPH.call(_result_tensors, "stateful", (), False, (self, fn), {})
            if out is not NotImplemented:
                return out
        return fn(self)
    result._graph_recorded = True
    return result


def _recorded_update(fn: Callable) -> Callable:
    """`update_state` that, while a traced step is built, becomes a stateful graph
    operation running it on the step's arrays whenever the graph runs."""
    wrapped = graph_form("effect", specialize=lambda self, *a, **k: self._update_kernel(
        fn, *a, **k))(fn)
    wrapped._graph_recorded = True
    return wrapped


class Metric:
    """Base class of stateful metrics.

    Subclasses list their additive state in `_state_shapes` (name -> shape), set
    in `reset_state()` as float64 arrays, and implement `update_state` and `result`.
    Metrics compute on the host with NumPy: in a traced step (`Model.compile`'s
    default, `run_eagerly=False`), each `update_state` and `result` call becomes one
    stateful graph operation that runs the method when the graph runs, so the
    values are those of every step, never of the trace.

    Args:
        name: the metric's name (the key in `History` and progress output).
        dtype: kept for Keras compatibility (results are Python floats).
    """

    _state_shapes: dict[str, tuple[int, ...]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, recorded in (("update_state", _recorded_update),
                               ("result", _recorded_result)):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_graph_recorded", False):
                setattr(cls, name, recorded(method))

    def __init__(self, name: str | None = None, dtype: Any = None):
        self.name = name or _snake_case(type(self).__name__)
        self.dtype = "float32" if dtype is None else np.dtype(dtype).name
        self._variables: list[tuple[Variable, np.ndarray]] = []
        self.reset_state()

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the statistics of one batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_state().")

    def result(self) -> Any:
        """The metric's value over everything accumulated since the last reset."""
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    def _update_kernel(self, fn: Callable, *args: Any, **kwargs: Any) -> Callable | None:
        """A traced step's kernel for `fn(self, *args, **kwargs)` (this class's own
        `update_state`), taking the arrays of the symbolic arguments; None: the graph
        runs `fn` on the rebuilt arguments."""
        return None

    def _result_kernel(self, fn: Callable) -> Callable | None:
        """A traced step's kernel for `fn(self)` (this class's own `result`) returning
        its value as a tuple of arrays; None: the graph runs `fn`."""
        return None

    def reset_state(self) -> None:
        """Clears the accumulated state (variables from `add_weight` return to their start)."""
        for name, shape in self._state_shapes.items():
            setattr(self, name, np.zeros(shape, dtype=np.float64))
        for variable, initial in self._variables:
            variable.assign(initial)

    def add_weight(self, name: str | None = None, shape: Any = (), initializer: Any = "zeros",
                   dtype: Any = None, **kwargs: Any) -> Variable:
        """A non-trainable state variable for custom metrics, as in Keras.

        `reset_state()` puts it back to its initial value; `get_state()`/`merge_state()`
        include it (summed, Keras's default aggregation).

        Args:
            name: the variable's name within the metric.
            shape: its shape (scalar by default).
            initializer: an initializer name ("zeros", "ones", ...), instance or callable.
            dtype: defaults to the metric's dtype.
            **kwargs: Keras's `aggregation`/`synchronization`, accepted and ignored.
        """
        from distflow.keras import initializers

        if name is not None and not isinstance(name, str):  # Keras 3 order: shape first
            name, shape = None, name
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        dtype = dtype or self.dtype
        initial = np.array(_np(initializers.get(initializer)(shape, dtype)), dtype=dtype)
        variable = Variable(initial, name=f"{self.name}/{name or 'variable'}", trainable=False)
        self._variables.append((variable, initial.copy()))
        return variable

    add_variable = add_weight

    @property
    def variables(self) -> list[Variable]:
        """The variables created with `add_weight`."""
        return [variable for variable, _ in self._variables]

    def reset_states(self) -> None:
        """The TF 2.x name of `reset_state` (calls a subclass's override)."""
        self.reset_state()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Updates with one batch and returns the result (as Keras metrics do)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def _state_items(self) -> list[tuple[str, tuple[int, ...], Any]]:
        """(name, shape, setter) of every additive state array, variables included."""
        items = [(name, tuple(shape), lambda v, n=name: setattr(self, n, v))
                 for name, shape in self._state_shapes.items()]
        items += [(f"variables/{i}", var.shape, var.assign)
                  for i, (var, _) in enumerate(self._variables)]
        return items

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays, by name (all additive across batches and workers)."""
        state = {name: np.array(getattr(self, name), dtype=np.float64)
                 for name in self._state_shapes}
        for i, (variable, _) in enumerate(self._variables):
            state[f"variables/{i}"] = np.array(variable.value, dtype=np.float64)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a state produced by `get_state()`."""
        for name, shape, setter in self._state_items():
            value = np.asarray(state[name], dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"State '{name}' of {self.name} must have shape {shape}. "
                                 f"Received: shape={value.shape}")
            setter(value.copy())

    def merge_state(self, others: Iterable[Metric | dict[str, Any]]) -> None:
        """Adds the states of other metrics of the same kind (e.g. from other workers)."""
        mine = self.get_state()
        for other in others:
            state = other.get_state() if isinstance(other, Metric) else other
            for name in mine:
                mine[name] = mine[name] + np.asarray(state[name], np.float64)
        self.set_state(mine)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-safe."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """Rebuilds a metric from `get_config()`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


# Every built-in per-sample metric function by name (filled by `metrics.registry`), so a
# `MeanMetricWrapper` config naming its function can be read back.
FUNCTIONS: dict[str, Callable] = {}


def _function_by_name(name: str, custom_objects: dict[str, Any]) -> Callable:
    fn = custom_objects.get(name) or FUNCTIONS.get(name)
    if fn is None:
        raise ValueError(f"Unknown metric function: '{name}'. Use one of {sorted(FUNCTIONS)} "
                         "or pass the function in `custom_objects`.")
    return fn
