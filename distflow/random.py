"""Seeded random tensors, as `tf.random`.

One global NumPy `Generator` backs every call without an explicit `seed`;
`set_seed` replaces it, so a program that sets the seed first is reproducible.
In a worker started by the launcher (or by hand with `TF_CONFIG`) it starts
from `DISTFLOW_SEED` (0 when unset), the same in every worker, so what a script
draws without a seed before training (an unseeded `Dataset.shuffle`, initial
weights) agrees across workers; strategies fold the worker index in when
training starts (per-worker dropout).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from distflow.tensor import Tensor


def set_seed(seed: int) -> None:
    """Resets the global generator so later draws are reproducible."""
    global _generator
    _generator = np.random.default_rng(_non_negative_int("seed", seed))


def fold_in(data: int) -> None:
    """Replaces the global generator by one derived from its state and `data`.

    Deterministic: the same seed and the same `data` give the same stream; a
    different `data` gives an unrelated one. Distributed strategies fold in the
    worker index so replicas draw different noise from one shared seed.
    """
    global _generator
    _generator = np.random.default_rng([int(_generator.integers(2**63)),
                                        _non_negative_int("data", data)])


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative int. Received: {name}={value!r}")
    return int(value)


def _launch_seed() -> list[int] | None:
    """The shared start of a launcher's worker's generator; None in a plain process."""
    launched = os.environ.get("DISTFLOW_PS_ADDRS") or os.environ.get("TF_CONFIG", "").strip()
    if not launched or os.environ.get("DISTFLOW_ROLE", "worker") != "worker":
        return None
    raw = os.environ.get("DISTFLOW_SEED", "").strip() or "0"
    try:
        return [_non_negative_int("DISTFLOW_SEED", int(raw)), 0x5EED]
    except ValueError:
        raise ValueError(f"Environment variable DISTFLOW_SEED must be a non-negative int. "
                         f"Received: {raw!r}") from None


_generator = np.random.default_rng(_launch_seed())


def get_global_generator() -> np.random.Generator:
    """The generator used when no op-level seed is given (layers, dropout)."""
    return _generator


def _rng(seed: int | None) -> np.random.Generator:
    return _generator if seed is None else np.random.default_rng(seed)


def _shape(shape: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in np.atleast_1d(np.asarray(shape))) if np.ndim(shape) else (
        () if shape == [] else (int(shape),))


def normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = np.float32,
           seed: int | None = None) -> Tensor:
    """Samples from N(mean, stddev**2)."""
    draw = _rng(seed).standard_normal(_shape(shape))
    return Tensor._wrap(np.asarray(draw * stddev + mean, dtype=dtype))


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0,
                     dtype: Any = np.float32, seed: int | None = None) -> Tensor:
    """Normal samples redrawn until within two standard deviations of the mean."""
    rng = _rng(seed)
    draw = rng.standard_normal(_shape(shape))
    bad = np.abs(draw) > 2
    while bad.any():
        draw[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(draw) > 2
    return Tensor._wrap(np.asarray(draw * stddev + mean, dtype=dtype))


def uniform(shape: Any, minval: float = 0.0, maxval: float | None = None,
            dtype: Any = np.float32, seed: int | None = None) -> Tensor:
    """Samples uniformly from [minval, maxval) (maxval defaults to 1 for floats)."""
    dtype = np.dtype(dtype)
    rng = _rng(seed)
    if dtype.kind in "iu":
        if maxval is None:
            raise ValueError("`maxval` is required for integer dtypes.")
        return Tensor._wrap(rng.integers(int(minval), int(maxval), _shape(shape), dtype=dtype))
    maxval = 1.0 if maxval is None else maxval
    return Tensor._wrap(np.asarray(rng.uniform(minval, maxval, _shape(shape)), dtype=dtype))


def shuffle(value: Any, seed: int | None = None) -> Tensor:
    """Shuffles along the first axis."""
    arr = np.asarray(value)
    return Tensor._wrap(arr[_rng(seed).permutation(len(arr))])
