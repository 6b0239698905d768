"""`tf.autodiff`: `GradientTape` and `ForwardAccumulator` (forward-mode products).

distflow differentiates in reverse mode only, so `ForwardAccumulator.jvp(y)` is
computed from the Jacobian of `y` with respect to each primal (one backward pass
per element of `y`) contracted with its tangent: exact, and fine for the small
outputs forward mode is used for; a large `y` costs as many passes as elements.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from distflow import nest
from distflow.tensor import GradientTape, Tensor, as_array

__all__ = ["ForwardAccumulator", "GradientTape"]


class ForwardAccumulator:
    """Jacobian-vector products of what is computed inside its `with` block.

    Args:
        primals: a tensor or a nest of tensors (the point).
        tangents: the direction, the same structure and shapes as `primals`.
    """

    def __init__(self, primals: Any, tangents: Any):
        self._primals = nest.flatten(primals)
        self._tangents = [np.asarray(as_array(t)) for t in nest.flatten(tangents)]
        for p, t in zip(self._primals, self._tangents):
            if tuple(p.shape) != t.shape:
                raise ValueError(f"Each tangent must have its primal's shape. Received: "
                                 f"primal shape {tuple(p.shape)}, tangent shape {t.shape}")
        if len(self._primals) != len(self._tangents):
            raise ValueError(f"{len(self._primals)} primals but {len(self._tangents)} tangents; "
                             "give one tangent per primal.")
        self._tape = GradientTape(persistent=True)
        self._inside = False

    def __enter__(self) -> ForwardAccumulator:
        self._tape.__enter__()
        self._tape.watch(self._primals)
        self._inside = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inside = False
        self._tape.__exit__(*exc)

    def jvp(self, primals: Any, unconnected_gradients: str = "none") -> Any:
        """The directional derivative of each tensor in `primals` (a nest) along the
        tangents; None (or zeros with "zero") for one that does not depend on them."""
        return nest.map_structure(lambda y: self._jvp(y, unconnected_gradients), primals)

    def _jvp(self, y: Tensor, unconnected: str) -> Tensor | None:
        with self._tape.stop_recording() if self._inside else contextlib.nullcontext():
            jacobians = self._tape.jacobian(y, self._primals)
        total = None
        for jac, p, t in zip(jacobians, self._primals, self._tangents):
            if jac is not None:
                part = np.tensordot(np.asarray(as_array(jac)), t, axes=len(p.shape))
                total = part if total is None else total + part
        if total is None:
            return Tensor._wrap(np.zeros(y.shape, y.dtype)) if unconnected == "zero" else None
        return Tensor._wrap(np.asarray(total, dtype=y.dtype))
