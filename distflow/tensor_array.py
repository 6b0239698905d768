"""`tf.TensorArray` as TF's eager one: a list of same-dtype tensors, written and read
by index, stacked and unstacked; gradients flow through `write` -> `stack`/`read`
because the elements are ordinary tensors.

Each method returns the array itself after a write (TF's eager arrays mutate in
place too); code written for graphs (`ta = ta.write(i, x)`) works unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops
from distflow.errors import OutOfRangeError
from distflow.reorder_ops import unstack
from distflow.tensor import Tensor, as_array
from distflow.tensor_shape import TensorShape


class TensorArray:
    """A growable or fixed-size array of tensors of one dtype.

    Args:
        dtype: the elements' dtype; written values are cast to it.
        size: the initial number of (unwritten) slots.
        dynamic_size: allow writes past `size` (the array grows).
        element_shape: the elements' shape, checked on write; None: the first write sets it.
        infer_shape: take the element shape from the first write (TF's default).
    """

    def __init__(self, dtype: Any, size: Any = None, dynamic_size: bool | None = None,
                 clear_after_read: bool | None = None, tensor_array_name: str | None = None,
                 handle: Any = None, flow: Any = None, infer_shape: bool = True,
                 element_shape: Any = None, colocate_with_first_write_call: bool = True,
                 name: str | None = None):
        self._dtype = np.dtype(dtype)
        self._items: list[Tensor | None] = [None] * int(as_array(size) if size is not None else 0)
        self._dynamic = bool(dynamic_size)
        self._shape = TensorShape(element_shape)
        self._infer = infer_shape

    dtype = property(lambda self: self._dtype, doc="The elements' dtype.")
    dynamic_size = property(lambda self: self._dynamic, doc="Whether writes may grow it.")
    element_shape = property(lambda self: self._shape, doc="The elements' (known) shape.")

    def size(self, name: str | None = None) -> Tensor:
        """The number of slots, an int32 scalar."""
        return Tensor._wrap(np.asarray(len(self._items), np.int32))

    def write(self, index: Any, value: Any, name: str | None = None) -> TensorArray:
        """Stores `value` at `index` (growing the array if `dynamic_size`)."""
        i = int(as_array(index))
        if i < 0 or (i >= len(self._items) and not self._dynamic):
            raise OutOfRangeError(f"TensorArray.write: index {i} is outside an array of size "
                             f"{len(self._items)}; create it with dynamic_size=True to grow.")
        t = ops.cast(ops.convert_to_tensor(value), self._dtype)
        self._check_shape(t)
        self._items.extend([None] * (i + 1 - len(self._items)))
        self._items[i] = t
        return self

    def _check_shape(self, t: Tensor) -> None:
        if not self._shape.is_compatible_with(TensorShape(t.shape)):
            raise ValueError(f"TensorArray holds elements of shape {self._shape}. "
                             f"Received: a value of shape {tuple(t.shape)}")
        if self._infer and self._shape.rank is None:
            self._shape = TensorShape(t.shape)

    def read(self, index: Any, name: str | None = None) -> Tensor:
        """The element at `index`; zeros of the element shape if never written."""
        i = int(as_array(index))
        if not 0 <= i < len(self._items):
            raise OutOfRangeError(f"TensorArray.read: index {i} is outside an array of size "
                             f"{len(self._items)}.")
        item = self._items[i]
        return item if item is not None else self._zeros()

    def _zeros(self) -> Tensor:
        if not self._shape.is_fully_defined():
            raise ValueError("TensorArray: reading an unwritten element needs a known "
                             f"element_shape. Received: element_shape={self._shape}")
        return ops.zeros(self._shape.as_list(), self._dtype)

    def stack(self, name: str | None = None) -> Tensor:
        """All elements stacked on a new first axis."""
        if not self._items:
            shape = self._shape.as_list() if self._shape.rank is not None else []
            return ops.zeros([0, *shape], self._dtype)
        return ops.stack([self.read(i) for i in range(len(self._items))])

    def gather(self, indices: Any, name: str | None = None) -> Tensor:
        """The elements at `indices`, stacked."""
        return ops.stack([self.read(i) for i in np.asarray(as_array(indices)).ravel()])

    def concat(self, name: str | None = None) -> Tensor:
        """All elements concatenated along their first axis."""
        return ops.concat([self.read(i) for i in range(len(self._items))], axis=0)

    def unstack(self, value: Any, name: str | None = None) -> TensorArray:
        """Writes `value[i]` to slot i for every i of its first axis."""
        return self.scatter(np.arange(len(as_array(value))), value)

    def scatter(self, indices: Any, value: Any, name: str | None = None) -> TensorArray:
        """Writes `value[j]` to slot `indices[j]`."""
        for i, part in zip(np.asarray(as_array(indices)).ravel(), unstack(value)):
            self.write(int(i), part)
        return self

    def split(self, value: Any, lengths: Any, name: str | None = None) -> TensorArray:
        """Writes consecutive pieces of `value` (first axis) of the given `lengths`."""
        sizes = [int(n) for n in np.asarray(as_array(lengths)).ravel()]
        if self._shape.rank is None:  # pieces differ in their first dimension only
            self._shape = TensorShape([None, *np.shape(as_array(value))[1:]])
        for i, part in enumerate(ops.split(value, sizes, axis=0)):
            self.write(i, part)
        return self

    def identity(self) -> TensorArray:
        """Itself (TF's control-dependency helper)."""
        return self

    def close(self, name: str | None = None) -> None:
        """Drops the elements."""
        self._items = []
