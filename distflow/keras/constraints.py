"""Weight constraints, as `keras.constraints`: projections applied after each update.

A constraint is a callable `constraint(w) -> w'`. Give one to a layer as
`kernel_constraint=`, `bias_constraint=`, ... (or to `add_weight(constraint=...)`);
the optimizer applies it to the variable after every `apply_gradients` step,
as Keras does (`variable.assign(variable.constraint(variable))`).

MaxNorm, MinMaxNorm, NonNeg and UnitNorm are Keras 3's; RadialConstraint is
tf.keras 2's (Keras 3 dropped it), kept with its exact rule.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from distflow.keras._objects import class_and_config, serialize_object
from distflow.tensor import Tensor

EPSILON = 1e-7  # Keras's backend.epsilon()


def _array(w: Any) -> np.ndarray:
    return np.asarray(w.value if isinstance(w, Tensor) else w)


def _norms(w: np.ndarray, axis: Any) -> np.ndarray:
    return np.sqrt(np.sum(np.square(w), axis=_axis(axis), keepdims=True))


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


class Constraint:
    """Base class: `__call__(w)` returns the projected weights (the identity here)."""

    def __call__(self, w: Any) -> Tensor:
        return Tensor._wrap(_array(w))

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-safe."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """Rebuilds a constraint from `get_config()`'s dict."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Scales each slice along `axis` down to an L2 norm of at most `max_value`.

    w * clip(norm, 0, max_value) / (epsilon + norm), norm = sqrt(sum(w**2, axis)).

    Args:
        max_value: the largest norm allowed.
        axis: the axis (or axes) the norms are taken over (0: each column of a Dense
            kernel, [0, 1, 2]: each filter of a Conv2D kernel).
    """

    def __init__(self, max_value: float = 2.0, axis: Any = 0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w: Any) -> Tensor:
        w = _array(w)
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return Tensor._wrap((w * (desired / (EPSILON + norms))).astype(w.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves each slice's L2 norm towards [min_value, max_value] at `rate`.

    desired = rate * clip(norm, min_value, max_value) + (1 - rate) * norm;
    w * desired / (epsilon + norm).
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: Any = 0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w: Any) -> Tensor:
        w = _array(w)
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + \
            (1 - self.rate) * norms
        return Tensor._wrap((w * (desired / (EPSILON + norms))).astype(w.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


class NonNeg(Constraint):
    """max(w, 0): the weights stay non-negative."""

    def __call__(self, w: Any) -> Tensor:
        return Tensor._wrap(np.maximum(_array(w), 0))


class UnitNorm(Constraint):
    """w / (epsilon + norm): each slice along `axis` gets unit L2 norm."""

    def __init__(self, axis: Any = 0):
        self.axis = axis

    def __call__(self, w: Any) -> Tensor:
        w = _array(w)
        return Tensor._wrap((w / (EPSILON + _norms(w, self.axis))).astype(w.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class RadialConstraint(Constraint):
    """tf.keras 2's radial symmetry of Conv2D kernels (height, width, in, out).

    Each (in, out) slice becomes constant on square rings. With k = height and
    s = k // 2, the innermost ring (1x1 for odd k, 2x2 for even k) takes the value
    at [s - 1, s - 1] and ring i outward takes the one at [s + i, s + i] (i from 0
    for odd k, from 1 for even k): tf.keras 2's rule, kept as it was.
    """

    def __call__(self, w: Any) -> Tensor:
        w = _array(w)
        if w.ndim != 4 or w.shape[0] != w.shape[1]:
            raise ValueError("The weight tensor must have rank 4 with square kernels "
                             f"(height == width). Received weight tensor with shape: "
                             f"{w.shape}")
        k = w.shape[0]
        s, odd = k // 2, k % 2 == 1
        distance = np.abs(np.arange(k) - (k - 1) / 2)
        ring = np.floor(np.maximum(distance[:, None], distance[None, :])).astype(int)
        source = np.where(ring == 0, s - 1, s + ring - (1 if odd else 0))
        out = w[source, source]
        return Tensor._wrap(out.astype(w.dtype))


_CLASSES: dict[str, type[Constraint]] = {cls.__name__: cls for cls in (
    Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm, RadialConstraint)}
_NAMES = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg,
          "unit_norm": UnitNorm, "radial_constraint": RadialConstraint,
          "constraint": Constraint}
max_norm, min_max_norm, non_neg, unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm
radial_constraint = RadialConstraint


def serialize(constraint: Any) -> Any:
    """`{"class_name", "config"}` of a constraint (None stays None)."""
    if constraint is None:
        return None
    if isinstance(constraint, Constraint):
        return serialize_object(constraint, "constraint")
    name = getattr(constraint, "__name__", None)
    if callable(constraint) and name and name != "<lambda>":
        return name
    raise ValueError(f"Cannot serialize constraint {constraint!r}: use a Constraint subclass "
                     "with get_config() or a named function.")


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Inverse of `serialize`; custom classes come from `custom_objects`."""
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        return get(custom_objects.get(config, config))
    cls, cfg = class_and_config(config, _CLASSES, "constraint", custom_objects)
    return cls.from_config(cfg)


def get(identifier: Any) -> Any:
    """A constraint from None, a name ('max_norm', 'NonNeg', ...), a config dict, a class or
    a callable (returned as is).

    Raises:
        ValueError: for anything else, naming it.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _CLASSES.get(identifier) or _NAMES.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret constraint identifier: {identifier}. "
                             f"Known: {sorted({*_CLASSES, *_NAMES})}")
        return cls()
    if inspect.isclass(identifier):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret constraint identifier: {identifier!r}")
