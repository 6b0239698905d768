"""Static shapes with unknown dimensions, as `tf.TensorShape`, and `TensorSpec`.

A `TensorShape` is a tuple of dimensions where `None` is an unknown size: eager
tensors' `.shape` returns one (all dimensions known), graph tensors' may hold
unknowns, and either still compares equal to a plain tuple. `TensorShape(None)`
has an unknown rank. This module sits below `tensor` and the graph package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.dtypes import DType, as_dtype


def _dim(d: Any) -> int | None:
    if d is None:
        return None
    value = getattr(d, "value", d)  # a TF1-style Dimension
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or int(value) < -1:
        raise TypeError(f"A dimension must be a non-negative int or None. Received: {d!r}")
    return None if int(value) == -1 else int(value)


class TensorShape(tuple):
    """The static shape of a tensor: a tuple whose unknown dimensions are None.

    Args:
        dims: an iterable of ints / None, or None for an unknown rank.
    """

    _known_rank = True  # set False on the instance for an unknown rank

    def __new__(cls, dims: Any = ()) -> TensorShape:
        if isinstance(dims, TensorShape):
            return dims
        if dims is None:
            shape = super().__new__(cls, ())
            shape._known_rank = False
            return shape
        if isinstance(dims, int | np.integer):
            dims = (dims,)
        return super().__new__(cls, tuple(_dim(d) for d in dims))

    @classmethod
    def _of(cls, dims: tuple[int, ...]) -> TensorShape:
        """A known shape from a tuple of ints, unchecked (what eager `Tensor.shape` returns)."""
        return tuple.__new__(cls, dims)

    @property
    def rank(self) -> int | None:
        """Number of dimensions, or None when unknown."""
        return len(self) if self._known_rank else None

    ndims = rank

    @property
    def dims(self) -> list[int | None] | None:
        """The dimensions as a list (None for an unknown rank)."""
        return list(self) if self._known_rank else None

    def as_list(self) -> list[int | None]:
        """The dimensions as a list; an unknown rank raises ValueError."""
        if not self._known_rank:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self)

    def is_fully_defined(self) -> bool:
        """True when the rank and every dimension are known."""
        return self._known_rank and None not in self

    def num_elements(self) -> int | None:
        """The number of elements, or None when not fully defined."""
        return int(np.prod(self, dtype=np.int64)) if self.is_fully_defined() else None

    def is_compatible_with(self, other: Any) -> bool:
        """True when some concrete shape could be both (unknowns match anything)."""
        other = as_shape(other)
        if not self._known_rank or not other._known_rank:
            return True
        return len(self) == len(other) and all(
            a is None or b is None or a == b for a, b in zip(self, other))

    def merge_with(self, other: Any) -> TensorShape:
        """The most specific shape compatible with both; ValueError if none is."""
        other = as_shape(other)
        if not self.is_compatible_with(other):
            raise ValueError(f"Shapes {self} and {other} are not compatible")
        if not self._known_rank:
            return other
        if not other._known_rank:
            return self
        return TensorShape([a if a is not None else b for a, b in zip(self, other)])

    def most_specific_common_shape(self, other: Any) -> TensorShape:
        """Keeps the dimensions both shapes agree on; the others become None."""
        other = as_shape(other)
        if not self._known_rank or not other._known_rank or len(self) != len(other):
            return TensorShape(None)
        return TensorShape([a if a == b else None for a, b in zip(self, other)])

    def concatenate(self, other: Any) -> TensorShape:
        """This shape followed by `other`."""
        other = as_shape(other)
        if not self._known_rank or not other._known_rank:
            return TensorShape(None)
        return TensorShape(tuple(self) + tuple(other))

    def with_rank(self, rank: int) -> TensorShape:
        """This shape, checked (or made) to have `rank` dimensions."""
        if not self._known_rank:
            return TensorShape([None] * rank)
        if len(self) != rank:
            raise ValueError(f"Shape {self} must have rank {rank}")
        return self

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return TensorShape(tuple(self)[key]) if self._known_rank else TensorShape(None)
        if not self._known_rank:
            return None
        return tuple.__getitem__(self, key)

    def __add__(self, other: Any) -> TensorShape:
        if _plain_ints(self, other):  # shape[:-1] + (-1,) keeps -1 for a reshape
            return TensorShape._of(tuple(self) + tuple(other))
        return self.concatenate(other)

    def __radd__(self, other: Any) -> TensorShape:
        if _plain_ints(self, other):
            return TensorShape._of(tuple(other) + tuple(self))
        return as_shape(other).concatenate(self)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, TensorShape) and self._known_rank != other._known_rank:
            return False
        return tuple.__eq__(self, other) if isinstance(other, tuple) else (
            isinstance(other, list) and list(self) == other)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return f"TensorShape({list(self) if self._known_rank else None})"

    def __str__(self) -> str:
        if not self._known_rank:
            return "<unknown>"
        return "(" + ", ".join(str(d) for d in self) + ("," if len(self) == 1 else "") + ")"

    def __reduce__(self):
        return (TensorShape, (self.dims,))


def _plain_ints(shape: TensorShape, other: Any) -> bool:
    """A fully known shape beside a tuple/list of ints: concatenated as tuples are."""
    return (isinstance(other, tuple | list) and not isinstance(other, TensorShape)
            and shape.is_fully_defined() and all(type(d) is int for d in other))


def as_shape(value: Any) -> TensorShape:
    """Converts a tuple, list, int, None or TensorShape to a TensorShape."""
    return value if isinstance(value, TensorShape) else TensorShape(value)


class TypeSpec:
    """The base of value specs (TF's `tf.TypeSpec`); `TensorSpec` is distflow's one kind."""


class TensorSpec(TypeSpec):
    """Describes a tensor argument of a traced function: shape, dtype and name.

    Args:
        shape: dimensions (None entries are unknown), or None for any rank.
        dtype: element type (default float32).
        name: optional name of the placeholder made for it.
    """

    def __init__(self, shape: Any, dtype: Any = "float32", name: str | None = None):
        self.shape = as_shape(shape)
        self.dtype: DType = as_dtype(dtype)
        self.name = name

    @classmethod
    def from_tensor(cls, tensor: Any, name: str | None = None) -> TensorSpec:
        """The spec of a concrete or symbolic tensor."""
        return cls(tensor.shape, tensor.dtype, name)

    def is_compatible_with(self, value: Any) -> bool:
        """True when `value` (a tensor, array or spec) has a matching dtype and shape."""
        shape = value.shape if hasattr(value, "shape") else np.shape(value)
        dtype = getattr(value, "dtype", None)
        return (dtype is None or np.dtype(dtype) == self.dtype) and \
            self.shape.is_compatible_with(shape)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, TensorSpec) and (self.shape, self.dtype, self.name) == (
            other.shape, other.dtype, other.name) and self.shape.rank == other.shape.rank

    def __hash__(self) -> int:
        return hash((tuple(self.shape), self.shape.rank, self.dtype, self.name))

    def __repr__(self) -> str:
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype!r}, name={self.name!r})"


class ValueSpec(TypeSpec):
    """A spec by shape and dtype for a composite value (sparse, indexed slices, arrays).

    Subclasses name the `value_type` they describe; two specs are equal when their
    class, shape and dtype are.
    """

    value_type: type = object

    def __init__(self, shape: Any = None, dtype: Any = "float32"):
        self._shape = as_shape(shape)
        self._dtype: DType = as_dtype(dtype)

    shape = property(lambda self: self._shape, doc="The (possibly partial) shape.")
    dtype = property(lambda self: self._dtype, doc="The element dtype.")

    def is_compatible_with(self, spec_or_value: Any) -> bool:
        """True for a value or spec of the same kind with a matching dtype and shape."""
        other = spec_or_value
        if not isinstance(other, type(self) | self.value_type):
            return False
        return np.dtype(other.dtype) == self._dtype and self._shape.is_compatible_with(
            other.shape)

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and (self._shape, self._dtype) == (
            other.shape, other.dtype) and self._shape.rank == other.shape.rank

    def __hash__(self) -> int:
        return hash((type(self).__name__, str(self._shape), self._dtype))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self._shape}, dtype={self._dtype!r})"
