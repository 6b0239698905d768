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
from types import SimpleNamespace
from typing import Any

import numpy as np

from distflow import process_env
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
    launched = process_env.is_set("DISTFLOW_PS_ADDRS") or os.environ.get("TF_CONFIG", "").strip()
    if not launched or process_env.read("DISTFLOW_ROLE", checked=False) != "worker":
        return None
    return [process_env.read("DISTFLOW_SEED"), 0x5EED]


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
    return _truncated_from(_rng(seed), shape, mean, stddev, dtype)


def uniform(shape: Any, minval: float = 0.0, maxval: float | None = None,
            dtype: Any = np.float32, seed: int | None = None) -> Tensor:
    """Samples uniformly from [minval, maxval) (maxval defaults to 1 for floats)."""
    return _uniform_from(_rng(seed), shape, minval, maxval, dtype)


def shuffle(value: Any, seed: int | None = None) -> Tensor:
    """Shuffles along the first axis."""
    arr = np.asarray(value)
    return Tensor._wrap(arr[_rng(seed).permutation(len(arr))])


# ------------------------------------------------------- sampling distributions


def _draw_shape(shape: Any, param: np.ndarray) -> tuple[int, ...]:
    """TF's convention: the sample shape followed by the parameters' shape."""
    return _shape(shape) + param.shape


def categorical(logits: Any, num_samples: int, dtype: Any = np.int64,
                seed: int | None = None) -> Tensor:
    """Draws `num_samples` class ids per row of [batch, classes] unnormalised log-probs."""
    lg = np.asarray(logits, dtype=np.float64)
    if lg.ndim != 2:
        raise ValueError(f"categorical: `logits` must be [batch_size, num_classes]. "
                         f"Received shape {lg.shape}.")
    return Tensor._wrap(_categorical(_rng(seed), lg, int(num_samples)).astype(dtype))


def _categorical(rng: np.random.Generator, lg: np.ndarray, n: int) -> np.ndarray:
    p = np.exp(lg - lg.max(axis=1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = rng.random((lg.shape[0], n))
    return np.minimum((u[:, :, None] >= cdf[:, None, :]).sum(-1), lg.shape[1] - 1)


def gamma(shape: Any, alpha: Any, beta: Any = None, dtype: Any = np.float32,
          seed: int | None = None) -> Tensor:
    """Gamma(alpha, rate=beta) samples of shape `shape + broadcast(alpha, beta).shape`."""
    a = np.asarray(alpha, np.float64)
    b = np.ones_like(a) if beta is None else np.asarray(beta, np.float64)
    a, b = np.broadcast_arrays(a, b)
    draw = _rng(seed).gamma(a, 1.0, _draw_shape(shape, a)) / b
    return Tensor._wrap(draw.astype(dtype))


def poisson(shape: Any, lam: Any, dtype: Any = np.float32, seed: int | None = None) -> Tensor:
    """Poisson(lam) samples of shape `shape + lam.shape`."""
    lam = np.asarray(lam, np.float64)
    return Tensor._wrap(_rng(seed).poisson(lam, _draw_shape(shape, lam)).astype(dtype))


def binomial(shape: Any, counts: Any, probs: Any, dtype: Any = np.int32,
             seed: int | None = None) -> Tensor:
    """Binomial(counts, probs) samples of shape `shape` (parameters broadcast to it)."""
    draw = _rng(seed).binomial(np.asarray(counts, np.int64), np.asarray(probs, np.float64),
                               _shape(shape))
    return Tensor._wrap(draw.astype(dtype))


# ------------------------------------------------------------- stateless ops


def _seed_pair(seed: Any) -> np.random.Generator:
    """A generator keyed by a shape-[2] integer seed (the same pair: the same numbers).

    Stateless ops are deterministic functions of (seed, shape), as in TF; the
    numbers come from NumPy's Philox, so they differ from TensorFlow's.
    """
    pair = np.asarray(seed.value if isinstance(seed, Tensor) else seed)
    if pair.shape != (2,) or pair.dtype.kind not in "iu":
        raise ValueError(f"Stateless random ops need `seed` of shape [2] with integers. "
                         f"Received: seed={pair.tolist()!r}")
    key = [int(v) & 0xFFFFFFFFFFFFFFFF for v in pair]
    return np.random.Generator(np.random.Philox(key=key[0] | (key[1] << 64)))


def stateless_normal(shape: Any, seed: Any, mean: float = 0.0, stddev: float = 1.0,
                     dtype: Any = np.float32) -> Tensor:
    """N(mean, stddev**2) samples that depend only on `seed` (a pair) and `shape`."""
    draw = _seed_pair(seed).standard_normal(_shape(shape))
    return Tensor._wrap(np.asarray(draw * stddev + mean, dtype=dtype))


def stateless_uniform(shape: Any, seed: Any, minval: float = 0.0, maxval: float | None = None,
                      dtype: Any = np.float32) -> Tensor:
    """Uniform samples in [minval, maxval) that depend only on `seed` and `shape`."""
    return _uniform_from(_seed_pair(seed), shape, minval, maxval, dtype)


def _uniform_from(rng: np.random.Generator, shape: Any, minval: Any, maxval: Any,
                  dtype: Any) -> Tensor:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        if maxval is None:
            raise ValueError("`maxval` is required for integer dtypes.")
        return Tensor._wrap(rng.integers(int(minval), int(maxval), _shape(shape), dtype=dtype))
    maxval = 1.0 if maxval is None else maxval
    return Tensor._wrap(np.asarray(rng.uniform(minval, maxval, _shape(shape)), dtype=dtype))


def _truncated_from(rng: np.random.Generator, shape: Any, mean: float, stddev: float,
                    dtype: Any) -> Tensor:
    draw = rng.standard_normal(_shape(shape))
    bad = np.abs(draw) > 2
    while bad.any():
        draw[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(draw) > 2
    return Tensor._wrap(np.asarray(draw * stddev + mean, dtype=dtype))


def stateless_truncated_normal(shape: Any, seed: Any, mean: float = 0.0, stddev: float = 1.0,
                               dtype: Any = np.float32) -> Tensor:
    """Normal samples within two stddevs of the mean, a function of `seed` and `shape`."""
    return _truncated_from(_seed_pair(seed), shape, mean, stddev, dtype)


def stateless_categorical(logits: Any, num_samples: int, seed: Any,
                          dtype: Any = np.int64) -> Tensor:
    """`categorical` keyed by a seed pair."""
    lg = np.asarray(logits, dtype=np.float64)
    return Tensor._wrap(_categorical(_seed_pair(seed), lg, int(num_samples)).astype(dtype))


def stateless_binomial(shape: Any, seed: Any, counts: Any, probs: Any,
                       output_dtype: Any = np.int32) -> Tensor:
    """`binomial` keyed by a seed pair."""
    draw = _seed_pair(seed).binomial(np.asarray(counts, np.int64), np.asarray(probs, np.float64),
                                     _shape(shape))
    return Tensor._wrap(draw.astype(output_dtype))


def stateless_poisson(shape: Any, seed: Any, lam: Any, dtype: Any = np.int32) -> Tensor:
    """Poisson samples keyed by a seed pair (`shape` must end with lam's shape)."""
    return Tensor._wrap(_seed_pair(seed).poisson(np.asarray(lam, np.float64),
                                                 _shape(shape)).astype(dtype))


def stateless_gamma(shape: Any, seed: Any, alpha: Any, beta: Any = None,
                    dtype: Any = np.float32) -> Tensor:
    """Gamma samples keyed by a seed pair (`shape` must end with alpha's shape)."""
    a = np.asarray(alpha, np.float64)
    b = 1.0 if beta is None else np.asarray(beta, np.float64)
    return Tensor._wrap((_seed_pair(seed).gamma(a, 1.0, _shape(shape)) / b).astype(dtype))


def split(seed: Any, num: int = 2) -> Tensor:
    """`num` new seed pairs derived deterministically from a seed pair."""
    return Tensor._wrap(_seed_pair(seed).integers(0, 2**31 - 1, (int(num), 2), dtype=np.int64))


# ----------------------------------------------------------------- Generator


class Generator:
    """A random-number generator object with its own state, as `tf.random.Generator`.

    Create it with `Generator.from_seed(seed)` or
    `Generator.from_non_deterministic_state()`; draws advance its state.
    """

    def __init__(self, rng: np.random.Generator | None = None, seed: int | None = None):
        self._rng = rng if rng is not None else np.random.default_rng(seed)

    @classmethod
    def from_seed(cls, seed: int, alg: Any = None) -> Generator:
        """A generator whose stream is a function of `seed`."""
        return cls(seed=_non_negative_int("seed", seed))

    @classmethod
    def from_non_deterministic_state(cls, alg: Any = None) -> Generator:
        """A generator seeded from the operating system's entropy."""
        return cls()

    def reset_from_seed(self, seed: int) -> None:
        """Restarts the stream from `seed`."""
        self._rng = np.random.default_rng(_non_negative_int("seed", seed))

    def normal(self, shape: Any, mean: float = 0.0, stddev: float = 1.0,
               dtype: Any = np.float32) -> Tensor:
        """N(mean, stddev**2) samples."""
        draw = self._rng.standard_normal(_shape(shape))
        return Tensor._wrap(np.asarray(draw * stddev + mean, dtype=dtype))

    def uniform(self, shape: Any, minval: float = 0.0, maxval: float | None = None,
                dtype: Any = np.float32) -> Tensor:
        """Uniform samples in [minval, maxval)."""
        return _uniform_from(self._rng, shape, minval, maxval, dtype)

    def truncated_normal(self, shape: Any, mean: float = 0.0, stddev: float = 1.0,
                         dtype: Any = np.float32) -> Tensor:
        """Normal samples within two stddevs of the mean."""
        return _truncated_from(self._rng, shape, mean, stddev, dtype)

    def make_seeds(self, count: int = 1) -> Tensor:
        """[2, count] seeds for stateless ops (column i is one seed pair)."""
        return Tensor._wrap(self._rng.integers(0, 2**31 - 1, (2, int(count)), dtype=np.int64))

    def split(self, count: int = 1) -> list[Generator]:
        """`count` independent generators derived from this one."""
        return [Generator(seed=int(self._rng.integers(2**63))) for _ in range(int(count))]


_global_tf_generator: Generator | None = None


def get_global_generator_object() -> Generator:
    """The process-wide `Generator` (`tf.random.get_global_generator`)."""
    if _global_tf_generator is None:  # follows `set_seed` until one is set explicitly
        return Generator(_generator)
    return _global_tf_generator


def set_global_generator(generator: Generator) -> None:
    """Replaces the process-wide `Generator`."""
    global _global_tf_generator
    _global_tf_generator = generator


experimental = SimpleNamespace(
    stateless_split=split,
    Generator=Generator,
    get_global_generator=get_global_generator_object,
    set_global_generator=set_global_generator,
)


class Algorithm:
    """RNG algorithm names (`tf.random.Algorithm`); distflow draws with NumPy's Philox/PCG64."""

    PHILOX, THREEFRY, AUTO_SELECT = 1, 2, 3


def create_rng_state(seed: int, alg: Any) -> Tensor:
    """A state vector for `seed` (int64, shape [3], as TF's Philox state)."""
    key = np.random.default_rng(_non_negative_int("seed", seed)).integers(0, 2**62, 3)
    return Tensor._wrap(key.astype(np.int64))


_SAMPLERS = ("all_candidate_sampler", "fixed_unigram_candidate_sampler",
             "log_uniform_candidate_sampler", "uniform_candidate_sampler")


def __getattr__(name: str) -> Any:
    # the candidate samplers build on this module's generator: loaded on first use
    if name not in _SAMPLERS:
        raise AttributeError(f"module 'distflow.random' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module("distflow.candidate_sampling"), name)
