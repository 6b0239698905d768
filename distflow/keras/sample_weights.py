"""Keras's rule for `sample_weight`, shared by losses and metrics.

Weights are per sample: `(N,)` or `(N, 1)` against values of shape `(N, ...)`.
They are rank-matched to the values (a trailing 1 dropped, trailing axes added)
and must then broadcast against them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.tensor import Tensor


def rank_matched(sample_weight: Any, values_shape: tuple[int, ...], dtype: Any,
                 what: str = "values") -> np.ndarray:
    """`sample_weight` as a `dtype` array that broadcasts against `values_shape`.

    Args:
        sample_weight: a tensor, array or nested list of weights.
        values_shape: the shape of the per-sample values the weights scale.
        dtype: the weights' dtype.
        what: how the error message names the values.

    Raises:
        ValueError: the weights do not give one weight per sample.
    """
    given = sample_weight.value if isinstance(sample_weight, Tensor) else sample_weight
    weights = np.asarray(given, dtype=dtype)
    rank = len(values_shape)
    if weights.ndim == rank + 1 and weights.shape[-1] == 1:
        weights = weights.reshape(weights.shape[:-1])  # (N, 1) weights for (N,) values
    elif 0 < weights.ndim < rank:
        weights = weights.reshape(weights.shape + (1,) * (rank - weights.ndim))
    try:
        np.broadcast_shapes(weights.shape, tuple(values_shape))
    except ValueError:
        raise ValueError(
            f"`sample_weight` must have one weight per sample. Received: sample_weight.shape="
            f"{np.shape(given)} for {what} of shape {tuple(values_shape)}.") from None
    return weights
