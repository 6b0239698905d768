"""A layer's own variables and losses: `add_weight`, constraints, `get/set_weights`, `losses`.

`add_weight` creates a `Variable` named `<layer name>/<name>` with its initializer,
regularizer (whose penalty `losses` recomputes at each read, so it is
differentiable) and constraint (the layer's `<name>_constraint` argument unless
given).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from distflow import ops
from distflow.keras import initializers, regularizers
from distflow.tensor import Tensor, Variable

__all__ = ["VariablesMixin"]


def _shape_tuple(shape: Any) -> tuple:
    if isinstance(shape, int | np.integer) or shape is None:
        return (shape if shape is None else int(shape),)
    return tuple(None if s is None else int(s) for s in shape)

def _dtype_name(dtype: Any) -> str:
    """The policy name of a layer's `dtype` argument: a NumPy float dtype name, "string",
    or "mixed_float16"."""
    if dtype is None:
        from distflow.keras import mixed_precision

        return mixed_precision.default_dtype()
    if isinstance(dtype, dict):  # Keras 3 DTypePolicy config
        dtype = dtype.get("config", {}).get("name", "float32")
    name = str(getattr(dtype, "name", dtype))
    if name in ("string", "str"):  # string inputs of the host-side preprocessing layers
        return "string"
    if name.startswith("mixed_"):
        from distflow.keras import mixed_precision

        return mixed_precision.DTypePolicy(name).name
    try:
        return np.dtype(name).name
    except TypeError:
        raise ValueError(f"`dtype` must be a NumPy dtype name such as 'float32'. "
                         f"Received: dtype={dtype!r}") from None


def policy_dtypes(policy: str) -> tuple[str, str]:
    """(variable dtype, compute dtype) of a policy name from `_dtype_name`."""
    return ("float32", "float16") if policy == "mixed_float16" else (policy, policy)


def _cast_floats(structure: Any, dtype: Any) -> Any:
    from distflow.keras.tree import map_structure

    return map_structure(lambda t: ops.cast(t, dtype) if isinstance(t, Tensor)
                         and t.dtype.kind == "f" and t.dtype != dtype else t, structure)


class VariablesMixin:
    """`add_weight`, weight constraints, `get_weights`/`set_weights`, `losses`, `add_loss`."""

    # False: under a mixed policy the layer computes in float32 from its float16 inputs and
    # casts its outputs to float16 (Keras's normalization layers, against overflow).
    _autocast_variables = True

    @contextlib.contextmanager
    def _variables_in_compute_dtype(self) -> Iterator[None]:
        """Under a mixed policy, the layer's float variable attributes read as (recorded,
        differentiable) casts to the compute dtype for the time of a call, as Keras's
        autocasting; the attributes are restored after it."""
        if self._policy != "mixed_float16" or not self._autocast_variables:
            yield
            return
        compute, swapped = self._np_dtype, []
        for name, value in list(vars(self).items()):
            if isinstance(value, Variable) and value.trainable and value.dtype.kind == "f" \
                    and value.dtype != compute:
                object.__setattr__(self, name, ops.cast(value, compute))
                swapped.append((name, value))
        try:
            yield
        finally:
            for name, value in swapped:
                object.__setattr__(self, name, value)

    def _call_with_policy(self, inputs: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        """`self.call` under the layer's dtype policy: as it is, or (mixed) with variables
        cast to float16, or (mixed, `_autocast_variables` False) on float32 copies of the
        float16 inputs with the outputs cast back to float16."""
        if self._policy != "mixed_float16":
            return self.call(inputs, *args, **kwargs)
        if self._autocast_variables:
            with self._variables_in_compute_dtype():
                return self.call(inputs, *args, **kwargs)
        inputs = _cast_floats(inputs, self._dtype)
        return _cast_floats(self.call(inputs, *args, **kwargs), self._np_dtype)

    def _read_constraint_kwargs(self, kwargs: dict[str, Any]) -> None:
        """`kernel_constraint=`, `bias_constraint=`, ...: kept as `self.<name>_constraint`, and
        given by `add_weight` to the weight of that name (`recurrent_constraint` to
        `recurrent_kernel`, `depthwise_constraint` to `depthwise_kernel`, ...)."""
        from distflow.keras import constraints

        self._constraints = {k[:-len("_constraint")]: constraints.get(v)
                             for k, v in kwargs.items() if k.endswith("_constraint")}
        for key, constraint in self._constraints.items():
            object.__setattr__(self, f"{key}_constraint", constraint)

    def _constraint_for(self, name: str | None) -> Any:
        found = self.__dict__.get("_constraints") or {}
        base = (name or "").rpartition("/")[2]
        for key in (base, base.removesuffix("_kernel")):
            if found.get(key) is not None:
                return found[key]
        return None

    @property
    def losses(self) -> list[Tensor]:
        """Regularization penalties of the current weights plus losses added during the last call.

        Weight penalties are recomputed at each read, so reading `losses` inside a
        `GradientTape` makes them differentiable with respect to the weights.
        """
        out = []
        for layer in self._flatten_layers():
            for loss in layer._call_losses:
                out.append(loss() if callable(loss) else loss)
            for regularizer, var in layer._regularized:
                out.append(regularizer(var))
        return out

    def add_metric(self, value: Any, name: str | None = None, aggregation: Any = None) -> None:
        """tf.keras 2's `add_metric`: a running mean of `value` reported as `name` by `fit`.

        Call it in `call`; the model lists the tracker in `metrics` (reset every
        epoch, as Keras did) and the logs and History carry `name`.

        Args:
            value: a tensor (its mean over the batch is accumulated) or a number.
            name: the log name (required, as in tf.keras 2).
            aggregation: None or 'mean' (the only aggregation tf.keras 2 allowed).
        """
        from distflow.keras import metrics

        if not name:
            raise ValueError("Please provide a name for your metric, e.g. "
                             "`self.add_metric(tf.reduce_sum(inputs), name='mean_activation')`.")
        if aggregation not in (None, "mean"):
            raise ValueError("We currently support only `mean` aggregation in add_metric. "
                             f"Received: aggregation={aggregation!r}")
        added = self.__dict__.setdefault("_added_metrics", {})
        if name not in added:
            added[name] = metrics.Mean(name=name)
        added[name].update_state(value)  # a tensor: in a traced step, updated at every run

    def add_loss(self, loss: Any) -> None:
        """Adds a loss tensor (or a zero-argument callable returning one) to `losses`."""
        self._call_losses.append(loss if callable(loss) else ops.convert_to_tensor(loss))

    # ------------------------------------------------------------- variables

    def add_weight(self, name: str | None = None, shape: Any = None,
                   initializer: Any = "glorot_uniform", regularizer: Any = None,
                   trainable: bool = True, dtype: Any = None, **kwargs: Any) -> Variable:
        """Creates a variable named `<layer name>/<name>` owned by this layer.

        Args:
            name: variable name within the layer.
            shape: variable shape (Keras 3's positional order `add_weight(shape, ...)`
                is accepted too).
            initializer: initializer name, instance or callable `(shape, dtype)`.
            regularizer: optional regularizer; its penalty appears in `losses`.
            trainable: whether gradients update it.
            dtype: defaults to the layer's dtype.
            **kwargs: `constraint` (a `keras.constraints` name or callable, applied by
                the optimizer after each update; default: the layer's
                `<name>_constraint` argument), and `autocast`, `aggregation`,
                `synchronization`, accepted for compatibility.
        """
        from distflow.keras import constraints

        if name is not None and not isinstance(name, str):  # Keras 3: add_weight(shape, ...)
            name, shape = kwargs.pop("name", None), name
        shape = () if shape is None else _shape_tuple(shape)
        if any(s is None or s < 0 for s in shape):
            raise ValueError(f"Layer '{self.name}': cannot create weight '{name}' with an "
                             f"undefined or negative dimension. Received: shape={shape}")
        dtype = _dtype_name(dtype or self._dtype)
        init = initializers.get(initializer if initializer is not None else "glorot_uniform")
        value = init(shape, dtype=dtype)
        constraint = constraints.get(kwargs.get("constraint")) or self._constraint_for(name)
        var = Variable(value, name=f"{self.name}/{name or 'variable'}",
                       trainable=trainable and self.trainable, dtype=dtype, constraint=constraint)
        self._track_variable(var, trainable)
        reg = regularizers.get(regularizer)
        if reg is not None:
            self._regularized.append((reg, var))
        return var

    add_variable = add_weight

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights' values, in the order of `weights`."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights: list[Any]) -> None:
        """Sets the weights from arrays in the order of `get_weights()` (shapes must match)."""
        params = self.weights
        weights = list(weights)
        if len(weights) != len(params):
            raise ValueError(
                f'You called `set_weights(weights)` on layer "{self.name}" with a weight list '
                f"of length {len(weights)}, but the layer was expecting {len(params)} weights.")
        arrays = [np.asarray(w.value if isinstance(w, Tensor) else w) for w in weights]
        for var, arr in zip(params, arrays):
            if tuple(arr.shape) != tuple(var.shape):
                raise ValueError(
                    f"Layer {self.name} weight shape {tuple(var.shape)} is not compatible with "
                    f"provided weight shape {tuple(arr.shape)} (variable '{var.name}').")
        for var, arr in zip(params, arrays):
            var.assign(arr)

    def count_params(self) -> int:
        """Number of scalars in all weights (the layer must be built)."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't "
                "built. You can build it manually via: `layer.build(input_shape)`.")
        return int(sum(math.prod(v.shape) for v in self.weights))
