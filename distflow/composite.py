"""Composite values and their specs: `tf.IndexedSlices`, `tf.IndexedSlicesSpec`,
`tf.TensorArraySpec`, `tf.NoneTensorSpec`, and `tf.register_tensor_conversion_function`
(how ops turn a value of a user type into a tensor).

    import distflow as tf
    rows = tf.IndexedSlices(values, indices=[0, 3], dense_shape=[5, 2])
    tf.convert_to_tensor(rows)     # the dense [5, 2] tensor (rows summed where repeated)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import ops, tensor
from distflow.segment_ops import unsorted_segment_sum
from distflow.tensor import Tensor
from distflow.tensor_array import TensorArray
from distflow.tensor_shape import TensorShape, TypeSpec, ValueSpec

_ORDER = itertools.count()
_NOT_CONVERTIBLE = (int, float, bool, complex, str, bytes, np.ndarray, np.generic, list, tuple)


def register_tensor_conversion_function(base_type: Any, conversion_func: Callable,
                                        priority: int = 100) -> None:
    """Makes every op convert values of `base_type` with `conversion_func`.

    Args:
        base_type: a class (or tuple of classes) whose instances the function converts.
        conversion_func: `(value, dtype=None, name=None, as_ref=False) -> Tensor`, or
            `NotImplemented` to let the next registered function try.
        priority: lower runs first (TF's default is 100).
    """
    bases = base_type if isinstance(base_type, tuple) else (base_type,)
    if not all(isinstance(b, type) for b in bases):
        raise TypeError(f"base_type must be a class or a tuple of classes. Received: "
                        f"{base_type!r}")
    if any(issubclass(b, _NOT_CONVERTIBLE) for b in bases):
        raise TypeError(f"Cannot register a conversion for Python numbers, strings, lists, "
                        f"tuples or NumPy arrays. Received: base_type={base_type!r}")
    if not callable(conversion_func):
        raise TypeError(f"conversion_func must be callable. Received: {conversion_func!r}")
    tensor.CONVERSIONS.append((int(priority), next(_ORDER), bases, conversion_func))
    tensor.CONVERSIONS.sort(key=lambda entry: entry[:2])


class IndexedSlices:
    """Rows of a dense tensor: `values[i]` is row `indices[i]` of a `dense_shape` tensor.

    Converting it to a tensor (`tf.convert_to_tensor`, or passing it to any op)
    sums the rows into the dense tensor; the gradient reaches `values`.

    Args:
        values: `[n, ...]` rows.
        indices: int `[n]` row numbers.
        dense_shape: int shape of the dense tensor (optional).
    """

    def __init__(self, values: Any, indices: Any, dense_shape: Any = None):
        self.values = ops.convert_to_tensor(values)
        self.indices = ops.convert_to_tensor(indices)
        self.dense_shape = None if dense_shape is None else ops.convert_to_tensor(dense_shape)
        if self.indices.ndim != 1 or self.indices.shape[0] != self.values.shape[0]:
            raise ValueError(f"IndexedSlices needs one index per row of values "
                             f"({self.values.shape[0]}). Received: indices.shape="
                             f"{tuple(self.indices.shape)}")

    dtype = property(lambda self: self.values.dtype, doc="The dtype of the values.")

    @property
    def shape(self) -> TensorShape:
        """The dense shape (the first dimension unknown without `dense_shape`)."""
        if self.dense_shape is None:
            return TensorShape([None] + list(self.values.shape[1:]))
        return TensorShape([int(d) for d in self.dense_shape.numpy()])

    def to_dense(self) -> Tensor:
        """The dense tensor (repeated rows are summed)."""
        if self.dense_shape is None:
            raise ValueError("Converting IndexedSlices without dense_shape to a tensor: pass "
                             "dense_shape= when making it.")
        rows = int(self.dense_shape.numpy()[0])
        return unsorted_segment_sum(self.values, self.indices, rows)

    def __neg__(self) -> IndexedSlices:
        return IndexedSlices(-self.values, self.indices, self.dense_shape)

    def __repr__(self) -> str:
        return (f"IndexedSlices(indices={self.indices.numpy().tolist()}, values="
                f"{self.values!r}, dense_shape={self.shape})")


register_tensor_conversion_function(
    IndexedSlices, lambda value, dtype=None, name=None, as_ref=False: value.to_dense())


class IndexedSlicesSpec(ValueSpec):
    """The type spec of `IndexedSlices`: dense shape and dtype."""

    value_type = IndexedSlices

    def __init__(self, shape: Any = None, dtype: Any = "float32", indices_dtype: Any = "int64",
                 dense_shape_dtype: Any = None, indices_shape: Any = None):
        super().__init__(shape, dtype)
        self.indices_dtype, self.dense_shape_dtype = indices_dtype, dense_shape_dtype


class TensorArraySpec(ValueSpec):
    """The type spec of a `TensorArray`: element shape and dtype, dynamic size, inference."""

    value_type = TensorArray

    def __init__(self, element_shape: Any = None, dtype: Any = "float32",
                 dynamic_size: bool = False, infer_shape: bool = True):
        super().__init__(element_shape, dtype)
        self.dynamic_size, self.infer_shape = bool(dynamic_size), bool(infer_shape)

    @classmethod
    def from_value(cls, value: TensorArray) -> TensorArraySpec:
        """The spec of a TensorArray."""
        return cls(value.element_shape, value.dtype, value._dynamic, value._infer)

    def is_compatible_with(self, spec_or_value: Any) -> bool:
        """True for a TensorArray or spec with a matching dtype and element shape."""
        other = spec_or_value
        if isinstance(other, TensorArray):
            other = TensorArraySpec.from_value(other)
        return isinstance(other, TensorArraySpec) and super().is_compatible_with(other)

    def __eq__(self, other: Any) -> bool:
        return super().__eq__(other) and (self.dynamic_size, self.infer_shape) == (
            other.dynamic_size, other.infer_shape)

    __hash__ = ValueSpec.__hash__


class NoneTensorSpec(TypeSpec):
    """The type spec of `None` (an absent optional value)."""

    value_type = type(None)

    def is_compatible_with(self, spec_or_value: Any) -> bool:
        """True for None and for another NoneTensorSpec."""
        return spec_or_value is None or isinstance(spec_or_value, NoneTensorSpec)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, NoneTensorSpec)

    def __hash__(self) -> int:
        return hash(NoneTensorSpec)

    def __repr__(self) -> str:
        return "NoneTensorSpec()"
