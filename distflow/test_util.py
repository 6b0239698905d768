"""Gradient checking: central differences in float64 against the VJPs.

`check_grads(f, args)` draws random directions v (one per argument) and a
random output cotangent u, then compares the directional derivative of
<u, f(x)> along v, estimated by central differences, with
sum_i <grad_i, v_i> from `GradientTape`. Everything runs in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distflow.tensor import GradientTape, Tensor


def _scalarize(f: Callable, u: np.ndarray | None):
    def g(*xs):
        out = f(*xs)
        return (out * Tensor._wrap(u)).sum() if u is not None else out.sum()
    return g


def check_grads(f: Callable[..., Tensor], args: Sequence[Any], *, eps: float = 1e-6,
                rtol: float = 1e-5, atol: float = 1e-7, directions: int = 3,
                seed: int = 0) -> None:
    """Asserts that the tape's gradients of `f` match central differences.

    Args:
        f: function of tensors returning a tensor.
        args: the inputs (converted to float64; non-contiguous arrays are kept so).
        eps: finite-difference step.
        rtol: relative tolerance of the comparison.
        atol: absolute tolerance of the comparison.
        directions: how many random directions to test.
        seed: seed of the random directions.

    Raises:
        AssertionError: naming the direction and both derivative estimates.
    """
    rng = np.random.default_rng(seed)
    xs = [a.astype(np.float64) if a.dtype != np.float64 else a
          for a in (np.asarray(a.value if isinstance(a, Tensor) else a) for a in args)]
    out = f(*[Tensor._wrap(x) for x in xs])
    u = rng.standard_normal(out.shape) if out.ndim else None
    scalar = _scalarize(f, u)
    tensors = [Tensor._wrap(x) for x in xs]
    with GradientTape() as tape:
        tape.watch(tensors)
        y = scalar(*tensors)
    grads = tape.gradient(y, tensors)
    for k in range(directions):
        vs = [rng.standard_normal(x.shape) for x in xs]
        plus = scalar(*[Tensor._wrap(x + eps * v) for x, v in zip(xs, vs)]).value
        minus = scalar(*[Tensor._wrap(x - eps * v) for x, v in zip(xs, vs)]).value
        numeric = float((plus - minus) / (2 * eps))
        analytic = float(sum(np.sum(g.value * v) for g, v in zip(grads, vs) if g is not None))
        if not np.isclose(analytic, numeric, rtol=rtol, atol=atol):
            raise AssertionError(
                f"Gradient check failed along direction {k}: VJP gives {analytic!r}, "
                f"central differences give {numeric!r}.")
