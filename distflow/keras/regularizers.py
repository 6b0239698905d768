"""Weight regularizers, as `keras.regularizers`.

A regularizer maps a weight tensor to a scalar penalty built from
differentiable ops, so the penalty's gradient flows to the weight when the
layer's `losses` are read under a `GradientTape`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import ops
from distflow.keras._objects import class_and_config, serialize_object
from distflow.tensor import Tensor


def _factor(value: Any, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a non-negative number. Received: {name}={value!r}") \
            from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative number. Received: {name}={value!r}")
    return value


class Regularizer:
    """Base class: subclasses implement `__call__(x) -> scalar tensor` and `get_config()`."""

    def __call__(self, x: Any) -> Tensor:
        return ops.constant(0.0)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-safe)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Recreates the regularizer from `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """l1 * sum(|x|) + l2 * sum(x**2)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = _factor(l1, "l1"), _factor(l2, "l2")

    def __call__(self, x: Any) -> Tensor:
        x = ops.convert_to_tensor(x)
        total = None
        if self.l1:
            total = ops.multiply(ops.sum(ops.abs(x)), self.l1)
        if self.l2:
            penalty = ops.multiply(ops.sum(ops.square(x)), self.l2)
            total = penalty if total is None else ops.add(total, penalty)
        return total if total is not None else ops.constant(0.0, dtype=x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|x|)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(x**2)."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """An L1L2 regularizer with both factors 0.01 by default (as Keras's `l1_l2`)."""
    return L1L2(l1=l1, l2=l2)


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (or columns) of a rank-2 weight towards orthogonality, as Keras's.

    With the rows (mode "rows") or columns L2-normalized, `P` their Gram matrix and `n`
    their count: `factor * 0.5 * sum(|P - diag(P)|) / (n * (n - 1) / 2)`, i.e. `factor`
    times the mean absolute cosine between distinct pairs.

    Args:
        factor: the non-negative weight of the penalty.
        mode: "rows" or "columns".
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        self.factor = _factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError('Invalid value for argument `mode`. Expected one of {"rows", '
                             f'"columns"}}. Received: mode={mode!r}')
        self.mode = mode

    def __call__(self, x: Any) -> Tensor:
        x = ops.convert_to_tensor(x)
        if len(x.shape) != 2:
            raise ValueError("Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={tuple(x.shape)}")
        axis = 1 if self.mode == "rows" else 0
        norms = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), 1e-12))
        unit = ops.divide(x, norms)
        product = ops.matmul(unit, ops.transpose(unit)) if axis == 1 else \
            ops.matmul(ops.transpose(unit), unit)
        size = int(x.shape[1 - axis])
        off_diagonal = ops.multiply(product, ops.constant(1.0 - np.eye(size, dtype=np.float32)))
        pairs = size * (size - 1.0) / 2.0
        return ops.multiply(ops.sum(ops.abs(off_diagonal)), self.factor * 0.5 / pairs)

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


l1, l2, orthogonal_regularizer = L1, L2, OrthogonalRegularizer

_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2, "Regularizer": Regularizer,
            "OrthogonalRegularizer": OrthogonalRegularizer}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": l1_l2, "l1l2": l1_l2,
          "orthogonal_regularizer": OrthogonalRegularizer}


def serialize(regularizer: Regularizer) -> dict[str, Any]:
    """`{"class_name": ..., "config": ...}` of a regularizer."""
    return serialize_object(regularizer, "regularizer")


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None):
    """Inverse of `serialize` (a plain name also works; custom classes via `custom_objects`)."""
    if isinstance(config, str):
        return get(config)
    cls, cfg = class_and_config(config, _CLASSES, "regularizer", custom_objects)
    return cls.from_config(cfg)


def get(identifier: Any) -> Any:
    """Resolves a regularizer: None, a name ('l1', 'l2', 'l1_l2'), a config dict, or a callable."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        factory = _NAMES.get(identifier.lower()) or _CLASSES.get(identifier)
        if factory is None:
            raise ValueError(f"Unknown regularizer: '{identifier}'. Use one of "
                             f"{sorted(_NAMES)} or a Regularizer instance.")
        return factory()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")
