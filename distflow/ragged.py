"""`tf.RaggedTensor`, `tf.RaggedTensorSpec` and `tf.ragged`: rows of different lengths.

    import distflow as tf
    rt = tf.ragged.constant([[1, 2, 3], [], [4]])
    rt.row_lengths()          # [3, 0, 1]
    rt.to_tensor()            # [[1, 2, 3], [0, 0, 0], [4, 0, 0]]

A RaggedTensor is `values` (a tensor, an array of bytes for text, or another
RaggedTensor for more ragged dimensions) cut into rows by int64 `row_splits`:
row i is `values[row_splits[i]:row_splits[i + 1]]`. `to_tensor` scatters the
flat values into the padded tensor with the core ops, so gradients reach them.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from distflow import ops
from distflow.array_ops import boolean_mask as boolean_mask_dense
from distflow.array_ops import scatter_nd
from distflow.errors import InvalidArgumentError
from distflow.primitive import constant as _constant
from distflow.primitive import string_array
from distflow.tensor import Tensor, as_array
from distflow.tensor_shape import TensorShape, ValueSpec


def _ints(value: Any) -> np.ndarray:
    return np.asarray(value.numpy() if isinstance(value, Tensor) else value).astype(np.int64)


def _values(values: Any) -> Any:
    if isinstance(values, RaggedTensor | Tensor) or (
            isinstance(values, np.ndarray) and values.dtype == object):
        return values
    return _constant(values)


class RaggedTensor:
    """Rows of different lengths over flat `values`; build one with the `from_*` class
    methods or `tf.ragged.constant`."""

    def __init__(self, values: Any, row_splits: np.ndarray):
        self._values, self._splits = values, row_splits

    # ------------------------------------------------------------ construction

    @classmethod
    def from_row_splits(cls, values: Any, row_splits: Any, validate: bool = True,
                        name: str | None = None) -> RaggedTensor:
        """Row i is `values[row_splits[i]:row_splits[i + 1]]`."""
        splits, values = _ints(row_splits), _values(values)
        n = len(values) if isinstance(values, RaggedTensor | np.ndarray) else int(
            values.shape[0])  # a tensor's rows
        if validate and (splits.ndim != 1 or not len(splits) or splits[0] != 0 or
                         np.any(np.diff(splits) < 0) or splits[-1] != n):
            raise InvalidArgumentError(
                f"row_splits must start at 0, not decrease and end at the number of values "
                f"({n}). Received: row_splits={splits.tolist()}")
        return cls(values, splits)

    @classmethod
    def from_row_lengths(cls, values: Any, row_lengths: Any, validate: bool = True,
                         name: str | None = None) -> RaggedTensor:
        """Consecutive rows of the given lengths."""
        return cls.from_row_splits(values, np.concatenate([[0], np.cumsum(_ints(row_lengths))]),
                                   validate)

    @classmethod
    def from_value_rowids(cls, values: Any, value_rowids: Any, nrows: Any = None,
                          validate: bool = True, name: str | None = None) -> RaggedTensor:
        """Value j belongs to row `value_rowids[j]` (sorted); `nrows` rows in all."""
        ids = _ints(value_rowids)
        rows = int(nrows) if nrows is not None else (int(ids[-1]) + 1 if len(ids) else 0)
        return cls.from_row_lengths(values, np.bincount(ids, minlength=rows), validate)

    @classmethod
    def from_row_starts(cls, values: Any, row_starts: Any, validate: bool = True,
                        name: str | None = None) -> RaggedTensor:
        """Row i starts at `row_starts[i]` and ends where the next one starts."""
        n = len(_values(values))
        return cls.from_row_splits(values, np.append(_ints(row_starts), n), validate)

    @classmethod
    def from_row_limits(cls, values: Any, row_limits: Any, validate: bool = True,
                        name: str | None = None) -> RaggedTensor:
        """Row i ends at `row_limits[i]` and starts where the previous one ends."""
        return cls.from_row_splits(values, np.concatenate([[0], _ints(row_limits)]), validate)

    @classmethod
    def from_tensor(cls, tensor: Any, lengths: Any = None, padding: Any = None,
                    ragged_rank: int = 1, name: str | None = None) -> RaggedTensor:
        """Rows of a dense tensor, cut to `lengths`, or before trailing `padding` values."""
        t = ops.convert_to_tensor(tensor)
        rows, width = int(t.shape[0]), int(t.shape[1])
        if lengths is not None:
            keep = _ints(lengths)
        elif padding is not None:
            pad = np.asarray(t.numpy()) == np.asarray(padding)
            pad = pad.reshape(rows, width, -1).all(axis=2)
            keep = width - np.argmin(pad[:, ::-1], axis=1)
            keep[pad.all(axis=1)] = 0
        else:
            keep = np.full(rows, width)
        mask = np.arange(width)[None, :] < keep[:, None]
        return cls.from_row_lengths(boolean_mask_dense(t, mask), keep)

    # ------------------------------------------------------------ structure

    values = property(lambda self: self._values, doc="The concatenated rows.")
    row_splits = property(lambda self: _constant(self._splits), doc="Row boundaries (int64).")

    @property
    def flat_values(self) -> Any:
        """The innermost values, under every ragged dimension."""
        return self._values.flat_values if isinstance(self._values, RaggedTensor) else \
            self._values

    @property
    def ragged_rank(self) -> int:
        """The number of ragged dimensions."""
        inner = self._values
        return 1 + (inner.ragged_rank if isinstance(inner, RaggedTensor) else 0)

    @property
    def nested_row_splits(self) -> tuple[Tensor, ...]:
        """The row splits of every ragged dimension, outermost first."""
        inner = self._values.nested_row_splits if isinstance(self._values, RaggedTensor) else ()
        return (self.row_splits, *inner)

    @property
    def dtype(self) -> Any:
        """The values' dtype."""
        flat = self.flat_values
        return flat.dtype if isinstance(flat, Tensor) else np.dtype(object)

    @property
    def shape(self) -> TensorShape:
        """`[nrows, None, ...]`: ragged dimensions are unknown."""
        flat = self.flat_values
        inner = list(flat.shape[1:]) if isinstance(flat, Tensor) else list(np.shape(flat)[1:])
        return TensorShape([len(self._splits) - 1] + [None] * self.ragged_rank + inner)

    def row_lengths(self, axis: int = 1, name: str | None = None) -> Tensor:
        """The length of each row (int64)."""
        return _constant(np.diff(self._splits))

    def nrows(self, out_type: Any = np.int64, name: str | None = None) -> Tensor:
        """The number of rows."""
        return _constant(np.asarray(len(self._splits) - 1, np.dtype(out_type)))

    def value_rowids(self, name: str | None = None) -> Tensor:
        """The row of each value (int64)."""
        return _constant(np.repeat(np.arange(len(self._splits) - 1), np.diff(self._splits)))

    def row_starts(self, name: str | None = None) -> Tensor:
        """Where each row starts in `values`."""
        return _constant(self._splits[:-1])

    def row_limits(self, name: str | None = None) -> Tensor:
        """Where each row ends in `values`."""
        return _constant(self._splits[1:])

    def with_values(self, new_values: Any) -> RaggedTensor:
        """The same rows over other values."""
        return RaggedTensor.from_row_splits(new_values, self._splits)

    def with_flat_values(self, new_values: Any) -> RaggedTensor:
        """The same ragged structure over other innermost values."""
        inner = self._values
        return self.with_values(inner.with_flat_values(new_values) if isinstance(
            inner, RaggedTensor) else new_values)

    def bounding_shape(self, axis: Any = None, name: str | None = None,
                       out_type: Any = np.int64) -> Tensor:
        """The shape of the smallest dense tensor holding every row."""
        return _constant(np.asarray(_dense_shape(self), np.dtype(out_type)))

    # ------------------------------------------------------------ conversion

    def to_list(self) -> list:
        """Nested Python lists of the rows."""
        inner = self._values.to_list() if isinstance(self._values, RaggedTensor) else (
            self._values.tolist() if isinstance(self._values, np.ndarray) else
            self._values.numpy().tolist())
        return [inner[a:b] for a, b in zip(self._splits[:-1], self._splits[1:])]

    def numpy(self) -> np.ndarray:
        """An object array of the rows (each a NumPy array), as TF's `.numpy()`."""
        out = np.empty(len(self._splits) - 1, object)
        out[:] = [np.asarray(row) for row in self.to_list()]
        return out

    def to_tensor(self, default_value: Any = None, name: str | None = None,
                  shape: Any = None) -> Tensor:
        """The rows padded with `default_value` (0) into a dense tensor (of `shape`, when
        given, cutting longer rows)."""
        full = _dense_shape(self)
        target = full if shape is None else [f if s in (None, -1) else int(s)
                                             for s, f in zip(shape, full)]
        index = _positions(self)
        keep = np.all(index < np.asarray(target[:index.shape[1]]), axis=1)
        flat = self.flat_values
        if not isinstance(flat, Tensor):
            raise TypeError("to_tensor needs numeric values (text stays a RaggedTensor).")
        kept = ops.gather(flat, np.flatnonzero(keep)) if not keep.all() else flat
        dense = scatter_nd(index[keep], kept, target)
        if default_value is None or not np.any(default_value):
            return dense
        present = np.zeros(target[:index.shape[1]], bool)
        present[tuple(index[keep].T)] = True
        present = present.reshape(present.shape + (1,) * (len(target) - index.shape[1]))
        return ops.where(present, dense, ops.cast(default_value, flat.dtype))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int | np.integer):
            a, b = self._splits[key], self._splits[key + 1] if key != -1 else self._splits[-1]
            return self._values[int(a):int(b)]
        if isinstance(key, slice):
            rows = builtins.range(len(self._splits) - 1)[key]
            if key.step not in (None, 1):
                raise ValueError("RaggedTensor slices must have step 1.")
            a, b = self._splits[rows.start], self._splits[rows.stop] if len(rows) else \
                self._splits[rows.start]
            return RaggedTensor(self._values[int(a):int(b)], self._splits[rows.start:
                                                                           rows.stop + 1] - a)
        raise TypeError(f"RaggedTensor indices must be an int or a slice. Received: {key!r}")

    def __len__(self) -> int:
        return len(self._splits) - 1

    def __repr__(self) -> str:
        return f"<tf.RaggedTensor {self.to_list()}>"


def _dense_shape(rt: RaggedTensor) -> list[int]:
    """The bounding shape: rows, the longest row per ragged dimension, inner dims."""
    inner = rt.values
    longest = int(np.max(np.diff(rt._splits), initial=0))
    if isinstance(inner, RaggedTensor):
        below = _dense_shape(inner)
        return [len(rt._splits) - 1, longest] + below[1:]
    return [len(rt._splits) - 1, longest] + list(np.shape(inner)[1:])


def _positions(rt: RaggedTensor) -> np.ndarray:
    """`[n_flat, ragged_rank + 1]` coordinates of each flat value in the dense tensor."""
    rows = np.repeat(np.arange(len(rt._splits) - 1), np.diff(rt._splits))
    cols = np.arange(len(rows)) - rt._splits[:-1][rows]
    outer = np.stack([rows, cols], axis=1)
    if not isinstance(rt.values, RaggedTensor):
        return outer
    inner = _positions(rt.values)
    return np.concatenate([outer[inner[:, 0]], inner[:, 1:]], axis=1)


class RaggedTensorSpec(ValueSpec):
    """The type spec of a RaggedTensor: shape (ragged dimensions None), dtype, ragged rank."""

    value_type = RaggedTensor

    def __init__(self, shape: Any = None, dtype: Any = "float32", ragged_rank: int | None = None,
                 row_splits_dtype: Any = "int64", flat_values_spec: Any = None):
        super().__init__(shape, dtype)
        rank = self.shape.rank
        self.ragged_rank = ragged_rank if ragged_rank is not None else max((rank or 2) - 1, 1)
        self.row_splits_dtype = row_splits_dtype

    @classmethod
    def from_value(cls, value: RaggedTensor) -> RaggedTensorSpec:
        """The spec of a RaggedTensor."""
        dtype = value.dtype if value.dtype != object else "string"
        return cls(value.shape, dtype, value.ragged_rank)


# ------------------------------------------------------------ tf.ragged


def _depth(pylist: Any) -> int:
    if isinstance(pylist, list | tuple):
        return 1 + max((_depth(v) for v in pylist), default=0)
    return 0


def _flatten_once(rows: list) -> tuple[list, list[int]]:
    return [v for row in rows for v in row], [len(row) for row in rows]


def constant(pylist: Any, dtype: Any = None, ragged_rank: int | None = None,
             inner_shape: Any = None, name: str | None = None,
             row_splits_dtype: Any = np.int64) -> RaggedTensor:
    """A RaggedTensor from nested Python lists (every nested level ragged unless
    `ragged_rank` says fewer); ints become int32 and floats float32, as `tf.constant`."""
    depth = _depth(pylist)
    rank = depth - 1 - len(inner_shape or ()) if ragged_rank is None else ragged_rank
    if depth < 2 or rank < 1:
        raise ValueError(f"tf.ragged.constant needs nested lists with at least one ragged "
                         f"dimension. Received: {pylist!r}")
    lengths = []
    values = list(pylist)
    for _ in builtins.range(rank):
        values, row_lengths = _flatten_once(values)
        lengths.append(row_lengths)
    leaf = _leaf(values, dtype, depth - rank - 1)
    for row_lengths in reversed(lengths):
        leaf = RaggedTensor.from_row_lengths(leaf, row_lengths)
    return leaf


def _leaf(values: list, dtype: Any, inner_rank: int) -> Any:
    if values and _depth(values[0]) != inner_rank:
        raise ValueError("tf.ragged.constant: values below the ragged dimensions must have "
                         "a uniform shape.")
    text = bool(values) and isinstance(np.asarray(values).reshape(-1)[:1].tolist()[0],
                                       str | bytes)
    if text:
        return string_array(values)
    if not values:
        return ops.constant(np.zeros(0, np.dtype(getattr(dtype, "as_numpy_dtype", dtype
                                                         or np.float32))))
    return ops.constant(values, dtype)


def range(starts: Any, limits: Any = None, deltas: Any = 1, dtype: Any = None,  # noqa: A001
          name: str | None = None, row_splits_dtype: Any = np.int64) -> RaggedTensor:
    """Row i is `range(starts[i], limits[i], deltas[i])` (one argument: from 0 to it)."""
    if limits is None:
        starts, limits = 0, starts
    s, lim, d = np.broadcast_arrays(*(as_array(v) for v in (starts, limits, deltas)))
    rows = [np.arange(a, b, c) for a, b, c in zip(s.reshape(-1), lim.reshape(-1), d.reshape(-1))]
    kind = np.result_type(s, lim, d) if dtype is None else np.dtype(
        getattr(dtype, "as_numpy_dtype", dtype))
    flat = np.concatenate(rows).astype(kind) if rows else np.zeros(0, kind)
    return RaggedTensor.from_row_lengths(ops.constant(flat), [len(r) for r in rows])


def boolean_mask(data: Any, mask: Any, name: str | None = None) -> RaggedTensor:
    """The entries of each row of a dense `data` where `mask` (same shape) is True."""
    x = ops.convert_to_tensor(data)
    keep = np.asarray(mask.numpy() if isinstance(mask, Tensor) else mask, bool)
    if keep.shape != tuple(x.shape[:keep.ndim]) or keep.ndim != 2:
        raise ValueError(f"tf.ragged.boolean_mask here takes 2-D data and mask of its shape. "
                         f"Received: data {tuple(x.shape)}, mask {keep.shape}")
    return RaggedTensor.from_row_lengths(boolean_mask_dense(x, keep), keep.sum(axis=1))


def map_flat_values(op: Any, *args: Any, **kwargs: Any) -> Any:
    """Applies `op` to the flat values of the RaggedTensor arguments, keeping their rows."""
    found = [a for a in list(args) + list(kwargs.values()) if isinstance(a, RaggedTensor)]
    if not found:
        return op(*args, **kwargs)
    flat = [a.flat_values if isinstance(a, RaggedTensor) else a for a in args]
    flat_kw = {k: v.flat_values if isinstance(v, RaggedTensor) else v for k, v in kwargs.items()}
    return found[0].with_flat_values(op(*flat, **flat_kw))


def row_splits_to_segment_ids(splits: Any, name: str | None = None,
                              out_type: Any = None) -> Tensor:
    """The row of each value, from row splits."""
    s = _ints(splits)
    return _constant(np.repeat(np.arange(len(s) - 1), np.diff(s)))


def segment_ids_to_row_splits(segment_ids: Any, num_segments: Any = None,
                              out_type: Any = None, name: str | None = None) -> Tensor:
    """Row splits from the (sorted) row of each value."""
    ids = _ints(segment_ids)
    n = int(num_segments) if num_segments is not None else (int(ids[-1]) + 1 if len(ids) else 0)
    return _constant(np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=n))]))
