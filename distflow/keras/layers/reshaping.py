"""Shape-changing layers: Permute, RepeatVector, ZeroPadding1D/2D, UpSampling1D/2D,
Cropping1D/2D."""

from __future__ import annotations

from typing import Any

from distflow import ops
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.convolutional import check_data_format, normalize_tuple
from distflow.keras.layers.core import positive_int
from distflow.tensor import Tensor

__all__ = ["Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D", "UpSampling1D",
           "UpSampling2D", "Cropping1D", "Cropping2D"]


class Permute(Layer):
    """Permutes the non-batch axes; `dims` is 1-indexed as in Keras, e.g. (2, 1)."""

    def __init__(self, dims: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError("Invalid permutation argument `dims` for Permute Layer. The set "
                             "of indices in `dims` must be consecutive and start from 1. "
                             f"Received dims={dims}")
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.transpose(inputs, (0, *self.dims))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features)."""

    def __init__(self, n: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.n = positive_int(n, "n")
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.tile(ops.expand_dims(inputs, 1), (1, self.n, 1))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}


def _pairs(value: Any, name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """int -> ((p, p), (p, p)); (a, b) -> ((a, a), (b, b)); ((t, b), (l, r)) as is."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) == 2 and all(isinstance(v, int) for v in value):
        value = ((value[0], value[0]), (value[1], value[1]))
    try:
        (top, bottom), (left, right) = value
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be an int, a tuple of 2 ints or a tuple of 2 tuples "
                         f"of 2 ints. Received: {name}={value!r}") from None
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"`{name}` must be non-negative. Received: {name}={value!r}")
    return (int(top), int(bottom)), (int(left), int(right))


class ZeroPadding2D(Layer):
    """Pads the rows and columns of NHWC images with zeros."""

    def __init__(self, padding: Any = (1, 1), data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.padding = _pairs(padding, "padding")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.pad(inputs, [[0, 0], list(self.padding[0]), list(self.padding[1]), [0, 0]])

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, h, w, c = tuple(input_shape)
        (t, bo), (le, r) = self.padding
        return (b, None if h is None else h + t + bo, None if w is None else w + le + r, c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": [list(p) for p in self.padding],
                "data_format": self.data_format}


class Cropping2D(Layer):
    """Removes rows and columns at the borders of NHWC images."""

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.cropping = _pairs(cropping, "cropping")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs: Tensor) -> Tensor:
        (t, b), (le, r) = self.cropping
        h, w = inputs.shape[1:3]
        if t + b >= h or le + r >= w:
            raise ValueError(f'Layer "{self.name}": cropping {self.cropping} leaves nothing of '
                             f"inputs of shape {inputs.shape}.")
        return inputs[:, t:h - b, le:w - r, :]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, h, w, c = tuple(input_shape)
        (t, bo), (le, r) = self.cropping
        return (b, None if h is None else h - t - bo, None if w is None else w - le - r, c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping],
                "data_format": self.data_format}


class UpSampling2D(Layer):
    """Repeats rows and columns `size` times (nearest-neighbour upsampling)."""

    def __init__(self, size: Any = (2, 2), data_format: str | None = None,
                 interpolation: str = "nearest", **kwargs: Any):
        super().__init__(**kwargs)
        if interpolation != "nearest":
            raise ValueError("UpSampling2D supports interpolation='nearest' only. "
                             f"Received: interpolation={interpolation!r}")
        self.size = normalize_tuple(size, 2, "size")
        self.data_format = check_data_format(data_format)
        self.interpolation = interpolation
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs: Tensor) -> Tensor:
        b, h, w, c = inputs.shape
        sh, sw = self.size
        grid = ops.reshape(inputs, (b, h, 1, w, 1, c))
        return ops.reshape(ops.tile(grid, (1, 1, sh, 1, sw, 1)), (b, h * sh, w * sw, c))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, h, w, c = tuple(input_shape)
        return (b, None if h is None else h * self.size[0],
                None if w is None else w * self.size[1], c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": list(self.size),
                "data_format": self.data_format, "interpolation": self.interpolation}


def _pair_1d(value: Any, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 0 for v in pair):
        raise ValueError(f"`{name}` must be a non-negative int or a pair of them. "
                         f"Received: {name}={value!r}")
    return int(pair[0]), int(pair[1])


class ZeroPadding1D(Layer):
    """Pads the steps of (batch, steps, features) inputs with zeros: int or (before, after)."""

    def __init__(self, padding: Any = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.padding = _pair_1d(padding, "padding")
        self.input_spec = InputSpec(ndim=3)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.pad(inputs, [[0, 0], list(self.padding), [0, 0]])

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, steps, c = tuple(input_shape)
        return (b, None if steps is None else steps + sum(self.padding), c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": list(self.padding)}


class Cropping1D(Layer):
    """Removes steps at both ends of (batch, steps, features) inputs."""

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any):
        super().__init__(**kwargs)
        self.cropping = _pair_1d(cropping, "cropping")
        self.input_spec = InputSpec(ndim=3)

    def call(self, inputs: Tensor) -> Tensor:
        start, end = self.cropping
        steps = inputs.shape[1]
        if start + end >= steps:
            raise ValueError(f'Layer "{self.name}": cropping {self.cropping} leaves nothing of '
                             f"inputs of shape {inputs.shape}.")
        return inputs[:, start:steps - end, :]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, steps, c = tuple(input_shape)
        return (b, None if steps is None else steps - sum(self.cropping), c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": list(self.cropping)}


class UpSampling1D(Layer):
    """Repeats each step `size` times."""

    def __init__(self, size: int = 2, **kwargs: Any):
        super().__init__(**kwargs)
        self.size = positive_int(size, "size")
        self.input_spec = InputSpec(ndim=3)

    def call(self, inputs: Tensor) -> Tensor:
        b, steps, c = inputs.shape
        grid = ops.tile(ops.reshape(inputs, (b, steps, 1, c)), (1, 1, self.size, 1))
        return ops.reshape(grid, (b, steps * self.size, c))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        b, steps, c = tuple(input_shape)
        return (b, None if steps is None else steps * self.size, c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size}
