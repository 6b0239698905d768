"""Geometric augmentation layers, as Keras 3's: RandomShear and RandomPerspective.

Both sample the input through `affine_transform` (TensorFlow's projective
transform); `draw(images)` gives a call's parameters with Keras's keys and
`transform(images, params)` applies given ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras.layers.preprocessing_image import (
    _INTERPOLATIONS,
    _AffineLayer,
    _factor_pair,
    _ImageLayer,
    affine_transform,
)

__all__ = ["RandomShear", "RandomPerspective"]


def shear_matrix(factors: np.ndarray) -> np.ndarray:
    """(n, 2) shear factors (x, y) -> (n, 8) transforms [1, sx, 0, sy, 1, 0, 0, 0]."""
    factors = np.asarray(factors, np.float32)
    n = factors.shape[0]
    zeros, ones = np.zeros(n, np.float32), np.ones(n, np.float32)
    return np.stack([ones, factors[:, 0], zeros, factors[:, 1], ones, zeros, zeros, zeros],
                    axis=1)


def homography(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n, 8) projective transforms mapping each image's 4 `end` points (x, y) onto its
    `start` points (solved in float32, as Keras's compute_homography_matrix)."""
    start, end = np.asarray(start, np.float32), np.asarray(end, np.float32)
    n = start.shape[0]
    rows = np.zeros((n, 8, 8), np.float32)
    for k in range(4):
        (sx, sy), (ex, ey) = start[:, k].T, end[:, k].T
        rows[:, 2 * k, :3] = np.stack([ex, ey, np.ones(n, np.float32)], axis=1)
        rows[:, 2 * k, 6:] = np.stack([-sx * ex, -sx * ey], axis=1)
        rows[:, 2 * k + 1, 3:6] = np.stack([ex, ey, np.ones(n, np.float32)], axis=1)
        rows[:, 2 * k + 1, 6:] = np.stack([-sy * ex, -sy * ey], axis=1)
    target = start.reshape(n, 8, 1)
    return np.linalg.solve(rows, target).reshape(n, 8).astype(np.float32)


def _shear_range(factor: Any, name: str) -> tuple[float, float]:
    message = ("The `factor` argument should be a number (or a list of two numbers) in the "
               f"range [0, 1.0]. Received: {name}={factor}")
    values = list(factor) if isinstance(factor, list | tuple) else [factor]
    if len(values) not in (1, 2) or not all(
            isinstance(v, int | float) and 0 <= v <= 1 for v in values):
        raise ValueError(message)
    low, high = sorted(values) if len(values) == 2 else (-abs(values[0]), abs(values[0]))
    return float(low), float(high)


class RandomShear(_AffineLayer):
    """In training, shears each image along x and y by random factors.

    As Keras: factors drawn in `x_factor` and `y_factor`, both negated together with
    probability 1/2; the output pixel (x, y) samples the input at (x + sx y, sy x + y).

    Args:
        x_factor, y_factor: f in [0, 1] (factors in [-f, f]) or a pair in [0, 1].
        interpolation: "bilinear" or "nearest".
        fill_mode: "reflect", "wrap", "constant" or "nearest".
        fill_value: the value outside the image for fill_mode="constant".
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, x_factor: Any = 0.0, y_factor: Any = 0.0,
                 interpolation: str = "bilinear", fill_mode: str = "reflect",
                 fill_value: float = 0.0, data_format: str | None = None,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.x_factor = _shear_range(x_factor, "x_factor")
        self.y_factor = _shear_range(y_factor, "y_factor")
        # The config keeps the arguments: Keras's (-f, f) ranges would not load again.
        self._factor_args = {"x_factor": x_factor, "y_factor": y_factor}

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The (n, 2) shear factors of a batch."""
        rng, n = self._generator(), images.shape[0]
        sign = np.where(rng.uniform(0, 1, (n, 1)) > 0.5, -1.0, 1.0)
        y = rng.uniform(*self.y_factor, (n, 1))
        x = rng.uniform(*self.x_factor, (n, 1))
        return {"shear_factor": (np.concatenate([x, y], axis=1) * sign).astype(np.float32)}

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """The images sheared by the given factors."""
        return affine_transform(images, shear_matrix(params["shear_factor"]),
                                self.interpolation, self.fill_mode, self.fill_value)

    def _matrix(self, n: int, height: int, width: int) -> np.ndarray:
        return shear_matrix(self.draw(np.empty((n, 0)))["shear_factor"])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._factor_args}


class RandomPerspective(_ImageLayer):
    """In training, with probability drawn in `factor`, moves each image's corners by up to
    `scale` / 2 of their coordinates and warps the image to match (constant fill).

    Args:
        factor: the probability: f in [-1, 1] (drawn in [-f, f], as Keras) or a pair.
        scale: how far the corners move, in [0, 1].
        interpolation: "bilinear" or "nearest".
        fill_value: the value outside the input image.
        seed: optional int seed.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, factor: Any = 1.0, scale: float = 1.0, interpolation: str = "bilinear",
                 fill_value: float = 0.0, seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = _factor_pair(factor, (-1, 1), "factor")
        if not 0.0 <= scale <= 1.0:
            raise ValueError("The `scale` argument should be a number in the range [0,1]. "
                             f"Received: scale={scale}")
        if interpolation not in _INTERPOLATIONS:
            raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of "
                                      f"one {_INTERPOLATIONS}.")
        self.scale, self.interpolation, self.fill_value = float(scale), interpolation, \
            fill_value

    def _images(self, images: np.ndarray, training: bool) -> np.ndarray:
        return self.transform(images, self.draw(images)) if training else images

    def draw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Which images change, and their corners before and after."""
        rng, (n, h, w, _) = self._generator(), images.shape
        apply = rng.uniform(0, 1, n) < rng.uniform(*self.factor, n)
        moves = rng.uniform(-0.5 * self.scale, 0.5 * self.scale, (n, 4, 2)).astype(np.float32)
        corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float32)
        start = np.broadcast_to(corners, (n, 4, 2))
        return {"apply_perspective": apply, "start_points": start,
                "end_points": start + start * moves}

    def transform(self, images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """The images warped by the given corners."""
        matrices = homography(params["start_points"], params["end_points"])
        warped = affine_transform(images, matrices, self.interpolation, "constant",
                                  self.fill_value)
        apply = np.asarray(params["apply_perspective"], bool)[:, None, None, None]
        return np.where(apply, warped, images).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor), "scale": self.scale,
                "interpolation": self.interpolation, "fill_value": self.fill_value}
