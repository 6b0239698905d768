"""The Discretization layer: values to bucket indices, boundaries given or adapted.

`adapt()` follows Keras 3's approximate-quantile summary step for step (sort,
sample every 1/epsilon-th value, merge and compress by interpolated cumulative
weights), so adapted boundaries equal Keras's for the same data and batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras.layers.preprocessing_lookup import HostLayer, encode_ids
from distflow.tensor import Tensor

__all__ = ["Discretization"]


def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    values = np.sort(np.reshape(values, [-1]))
    step = max(np.size(values) / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1)::int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def _compress(summary: np.ndarray, epsilon: float) -> np.ndarray:
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_percents, summary[0])
    cum_weights = np.interp(percents, cum_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


def _merge(prev: np.ndarray, new: np.ndarray, epsilon: float) -> np.ndarray:
    merged = np.concatenate((prev, new), axis=1)
    return _compress(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)


class Discretization(HostLayer):
    """Buckets values by boundaries: index i means boundaries[i-1] <= x < boundaries[i].

    Args:
        bin_boundaries: sorted boundaries (n boundaries make n + 1 bins).
        num_bins: number of bins to learn with `adapt()` (instead of `bin_boundaries`).
        epsilon: precision of adapt's quantile summary.
        output_mode: "int" (int32 indices), "one_hot", "multi_hot" or "count".
        sparse: must be False.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, bin_boundaries: Any = None, num_bins: int | None = None,
                 epsilon: float = 0.01, output_mode: str = "int", sparse: bool = False,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if output_mode not in ("int", "one_hot", "multi_hot", "count"):
            raise ValueError("Unknown `output_mode` for Discretization: "
                             f"{output_mode!r}. Use 'int', 'one_hot', 'multi_hot' or 'count'.")
        if sparse:
            raise ValueError("distflow has no sparse tensors: use sparse=False.")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"`num_bins` must be greater than or equal to 0. Received: "
                             f"`num_bins={num_bins}`")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError("Both `num_bins` and `bin_boundaries` should not be set. Received: "
                             f"`num_bins={num_bins}` and `bin_boundaries={bin_boundaries}`")
        if num_bins is None and bin_boundaries is None:
            raise ValueError("You need to set either `num_bins` or `bin_boundaries`.")
        self.bin_boundaries = None if bin_boundaries is None else list(bin_boundaries)
        self.num_bins, self.epsilon, self.output_mode = num_bins, epsilon, output_mode
        self._summary = np.array([[], []], dtype="float32")

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Learns `num_bins - 1` boundaries from `data` (an array or an iterable of batches)."""
        if self.num_bins is None:
            raise ValueError("Cannot adapt a Discretization layer that has been initialized "
                             "with `bin_boundaries`, use `num_bins` instead.")
        self._summary = np.array([[], []], dtype="float32")
        if isinstance(data, np.ndarray | Tensor) or not hasattr(data, "__iter__"):
            data = [data]
        for i, batch in enumerate(data):
            if steps is not None and i >= steps:
                break
            values = np.array(getattr(batch, "value", batch)).astype("float32")
            self._summary = _merge(_summarize(values, self.epsilon), self._summary,
                                   self.epsilon)
        self.bin_boundaries = _compress(self._summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def host_call(self, inputs: np.ndarray) -> Tensor:
        if self.bin_boundaries is None:
            raise ValueError("You need to either pass the `bin_boundaries` argument at "
                             "construction time or call `adapt(dataset)` before you can start "
                             "using the `Discretization` layer.")
        ids = np.digitize(inputs.astype(np.float32), np.asarray(self.bin_boundaries, np.float32))
        if self.output_mode == "int":
            return Tensor._wrap(ids.astype(np.int32))
        return encode_ids(ids, self.output_mode, len(self.bin_boundaries) + 1, np.float32)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return shape
        depth = len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else \
            self.num_bins
        if self.output_mode == "one_hot":
            return (*shape[:-1], depth) if len(shape) > 1 and shape[-1] == 1 else (*shape, depth)
        return (shape[0], *shape[2:], depth) if len(shape) >= 2 else (depth,)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bin_boundaries": self.bin_boundaries,
                "num_bins": self.num_bins, "epsilon": self.epsilon,
                "output_mode": self.output_mode, "sparse": False}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Discretization:
        config = dict(config)
        boundaries = config.pop("bin_boundaries", None)
        if boundaries is not None and config.get("num_bins") is not None:
            layer = cls(**config)
            layer.bin_boundaries = boundaries
            return layer
        return cls(bin_boundaries=boundaries, **config)
