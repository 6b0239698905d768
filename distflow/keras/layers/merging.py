"""Layers that merge a list of tensors (functional models): Concatenate, Add, Dot, ..."""

from __future__ import annotations

from typing import Any

from distflow import nn, ops
from distflow.keras.layers.base import Layer
from distflow.tensor import Tensor

__all__ = ["Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
           "concatenate", "add", "subtract", "multiply", "average", "maximum", "minimum", "dot"]


def _as_list(inputs: Any, layer: Layer, exactly: int | None = None) -> list:
    if not isinstance(inputs, list | tuple) or len(inputs) < 2:
        raise ValueError(f'Layer "{layer.name}" should be called on a list of at least 2 '
                         f"inputs. Received: {type(inputs).__name__} of length "
                         f"{len(inputs) if isinstance(inputs, list | tuple) else 1}")
    if exactly is not None and len(inputs) != exactly:
        raise ValueError(f'Layer "{layer.name}" should be called on exactly {exactly} inputs. '
                         f"Received: {len(inputs)} inputs.")
    return list(inputs)


class _Merge(Layer):
    """Elementwise merge of same-shaped inputs (broadcasting allowed)."""

    arity: int | None = None

    def build(self, input_shape: Any) -> None:
        _as_list(input_shape, self, self.arity)

    def call(self, inputs: list[Tensor]) -> Tensor:
        inputs = _as_list(inputs, self, self.arity)
        return self._merge(inputs)

    def _merge(self, inputs: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shapes = [tuple(s) for s in _as_list(input_shape, self, self.arity)]
        rank = max(len(s) for s in shapes)
        padded = [(1,) * (rank - len(s)) + s for s in shapes]
        out = []
        for dims in zip(*padded):
            known = {d for d in dims if d not in (None, 1)}
            if len(known) > 1:
                raise ValueError(f'Layer "{self.name}": inputs with shapes {shapes} cannot be '
                                 "merged elementwise (their dimensions differ).")
            out.append(known.pop() if known else (None if None in dims else 1))
        return tuple(out)


def _fold(fn, inputs: list[Tensor]) -> Tensor:
    out = inputs[0]
    for x in inputs[1:]:
        out = fn(out, x)
    return out


class Add(_Merge):
    """Sum of the inputs."""

    def _merge(self, inputs):
        return _fold(ops.add, inputs)


class Subtract(_Merge):
    """inputs[0] - inputs[1] (exactly two inputs)."""

    arity = 2

    def _merge(self, inputs):
        return ops.subtract(inputs[0], inputs[1])


class Multiply(_Merge):
    """Elementwise product of the inputs."""

    def _merge(self, inputs):
        return _fold(ops.multiply, inputs)


class Average(_Merge):
    """Elementwise mean of the inputs."""

    def _merge(self, inputs):
        return ops.divide(_fold(ops.add, inputs), float(len(inputs)))


class Maximum(_Merge):
    """Elementwise maximum of the inputs."""

    def _merge(self, inputs):
        return _fold(ops.maximum, inputs)


class Minimum(_Merge):
    """Elementwise minimum of the inputs."""

    def _merge(self, inputs):
        return _fold(ops.minimum, inputs)


class Concatenate(Layer):
    """Joins the inputs along `axis` (the last by default)."""

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def build(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)  # validates the shapes once

    def call(self, inputs: list[Tensor]) -> Tensor:
        return ops.concat(_as_list(inputs, self), axis=self.axis)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shapes = [tuple(s) for s in _as_list(input_shape, self)]
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ValueError(f'Layer "{self.name}": all inputs must have the same rank. '
                             f"Received shapes {shapes}")
        axis = self.axis % rank
        out = list(shapes[0])
        for s in shapes[1:]:
            for i, (a, b) in enumerate(zip(out, s)):
                if i != axis and a is not None and b is not None and a != b:
                    raise ValueError(
                        f'Layer "{self.name}" requires inputs with matching shapes except for '
                        f"the concatenation axis {self.axis}. Received: input_shape={shapes}")
                if i != axis and a is None:
                    out[i] = b
        sizes = [s[axis] for s in shapes]
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class Dot(Layer):
    """Dot product of two batched tensors along `axes` (one per input, or one for both).

    (batch, n) . (batch, n) gives (batch, 1); (batch, m, n) . (batch, p, n) with
    axes=2 gives (batch, m, p). `normalize=True` gives cosine similarities.
    """

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        pair = [axes, axes] if isinstance(axes, int) else list(axes)
        if len(pair) != 2 or not all(isinstance(a, int) for a in pair):
            raise ValueError(f"`axes` must be an int or a pair of ints. Received: axes={axes!r}")
        self.axes, self.normalize = pair, bool(normalize)

    def _resolved_axes(self, ranks: tuple[int, int]) -> tuple[int, int]:
        axes = tuple(a % r for a, r in zip(self.axes, ranks))
        if min(ranks) < 2 or max(ranks) > 3 or 0 in axes:
            raise ValueError(f'Layer "{self.name}" supports inputs of rank 2 or 3 and non-batch '
                             f"axes. Received ranks {ranks} and axes={self.axes}")
        return axes

    def call(self, inputs: list[Tensor]) -> Tensor:
        a, b = _as_list(inputs, self, 2)
        axis_a, axis_b = self._resolved_axes((a.ndim, b.ndim))
        if self.normalize:
            a, b = nn.l2_normalize(a, axis_a), nn.l2_normalize(b, axis_b)
        left = _move_axis(a, axis_a, a.ndim - 1)  # (batch, [m,] n)
        right = _move_axis(b, axis_b, 1)  # (batch, n[, p])
        if a.ndim == 2:
            left = ops.expand_dims(left, 1)
        if b.ndim == 2:
            right = ops.expand_dims(right, 2)
        out = ops.matmul(left, right)  # (batch, m or 1, p or 1)
        kept = [size for size, real in ((out.shape[1], a.ndim == 3), (out.shape[2], b.ndim == 3))
                if real]
        return ops.reshape(out, (out.shape[0], *(kept or [1])))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        sa, sb = [tuple(s) for s in _as_list(input_shape, self, 2)]
        axis_a, axis_b = self._resolved_axes((len(sa), len(sb)))
        rest = ([d for i, d in enumerate(sa) if i not in (0, axis_a)]
                + [d for i, d in enumerate(sb) if i not in (0, axis_b)])
        return (sa[0], *(rest or [1]))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _move_axis(x: Tensor, source: int, destination: int) -> Tensor:
    perm = [i for i in range(x.ndim) if i != source]
    perm.insert(destination, source)
    return ops.transpose(x, perm)


def dot(inputs: list[Any], axes: Any, normalize: bool = False, **kwargs: Any) -> Any:
    """Functional form of `Dot`."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


def concatenate(inputs: list[Any], axis: int = -1, **kwargs: Any) -> Any:
    """Functional form of `Concatenate`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs: list[Any], **kwargs: Any) -> Any:
    """Functional form of `Add`."""
    return Add(**kwargs)(inputs)


def subtract(inputs: list[Any], **kwargs: Any) -> Any:
    """Functional form of `Subtract`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: list[Any], **kwargs: Any) -> Any:
    """Functional form of `Multiply`."""
    return Multiply(**kwargs)(inputs)


def average(inputs: list[Any], **kwargs: Any) -> Any:
    """Functional form of `Average`."""
    return Average(**kwargs)(inputs)


def maximum(inputs: list[Any], **kwargs: Any) -> Any:
    """Functional form of `Maximum`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: list[Any], **kwargs: Any) -> Any:
    """Functional form of `Minimum`."""
    return Minimum(**kwargs)(inputs)
