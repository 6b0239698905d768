"""`keras.random`: seeded draws as Keras 3 takes them (an int, a `SeedGenerator` or None).

`seed=None` draws from distflow's global generator (`distflow.random.set_seed`
makes it reproducible); an int gives the same values at every call, as Keras's
stateless draws do; a `SeedGenerator` advances its own stream at every draw, so
a model that owns one (Keras's GAN guide) gets fresh, reproducible noise per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import random as core
from distflow.tensor import Tensor


class SeedGenerator:
    """A stream of seeds of its own (Keras's `keras.random.SeedGenerator`).

    Args:
        seed: the stream's starting seed (None: one drawn from the global generator).
    """

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs: Any):
        if seed is None:
            seed = int(core.get_global_generator().integers(0, 2 ** 31 - 1))
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.seed, self.name = int(seed), name or "seed_generator"
        self._rng = np.random.default_rng(self.seed)

    def next(self) -> int:
        """The next seed of the stream."""
        return int(self._rng.integers(0, 2 ** 63 - 1))

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed, "name": self.name}


def _seed(seed: Any) -> int | None:
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None or (isinstance(seed, int | np.integer) and not isinstance(seed, bool)):
        return None if seed is None else int(seed)
    raise ValueError("`seed` must be None, an int or a keras.random.SeedGenerator. "
                     f"Received: seed={seed!r}")


def _dtype(dtype: Any) -> Any:
    from distflow.keras import backend

    return backend.floatx() if dtype is None else dtype


def normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
           seed: Any = None) -> Tensor:
    """Normal draws of `shape`."""
    return core.normal(shape, mean=mean, stddev=stddev, dtype=_dtype(dtype), seed=_seed(seed))


def uniform(shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None,
            seed: Any = None) -> Tensor:
    """Uniform draws in [minval, maxval)."""
    return core.uniform(shape, minval=minval, maxval=maxval, dtype=_dtype(dtype),
                        seed=_seed(seed))


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
                     seed: Any = None) -> Tensor:
    """Normal draws, redrawn beyond two standard deviations."""
    return core.truncated_normal(shape, mean=mean, stddev=stddev, dtype=_dtype(dtype),
                                 seed=_seed(seed))


def _generator(seed: Any) -> np.random.Generator:
    value = _seed(seed)
    return core.get_global_generator() if value is None else np.random.default_rng(value)


def randint(shape: Any, minval: int, maxval: int, dtype: Any = "int32",
            seed: Any = None) -> Tensor:
    """Integers in [minval, maxval)."""
    draws = _generator(seed).integers(minval, maxval, size=tuple(np.atleast_1d(shape)))
    return Tensor._wrap(draws.astype(dtype))


def shuffle(x: Any, axis: int = 0, seed: Any = None) -> Tensor:
    """`x` with its entries permuted along `axis`."""
    arr = np.asarray(x.value if isinstance(x, Tensor) else x)
    return Tensor._wrap(_generator(seed).permutation(arr, axis=axis))


def categorical(logits: Any, num_samples: int, dtype: Any = "int32",
                seed: Any = None) -> Tensor:
    """`num_samples` class ids per row of `logits` (unnormalised log-probabilities)."""
    z = np.asarray(logits.value if isinstance(logits, Tensor) else logits, np.float64)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    rng = _generator(seed)
    rows = [rng.choice(p.shape[-1], size=num_samples, p=row) for row in p]
    return Tensor._wrap(np.asarray(rows).astype(dtype))


def dropout(inputs: Any, rate: float, noise_shape: Any = None, seed: Any = None) -> Tensor:
    """Zeroes each entry with probability `rate` and scales the rest by 1 / (1 - rate)
    (differentiable in `inputs`)."""
    from distflow import ops

    x = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
    shape = x.shape if noise_shape is None else tuple(noise_shape)
    keep = (_generator(seed).random(shape) >= rate).astype(x.dtype) / x.dtype.type(1 - rate)
    return ops.multiply(x, keep)


__all__ = ["SeedGenerator", "categorical", "dropout", "normal", "randint", "shuffle",
           "truncated_normal", "uniform"]
