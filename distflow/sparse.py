"""`tf.sparse` and `tf.SparseTensor`: COO sparse tensors over dense NumPy storage.

    import distflow as tf
    st = tf.sparse.SparseTensor(indices=[[0, 1], [2, 0]], values=[1.0, 2.0], dense_shape=[3, 4])
    tf.sparse.sparse_dense_matmul(st, w)        # gradients reach st.values and w

A `SparseTensor` is its three tensors: `indices` (int64, `[nnz, rank]`),
`values` (`[nnz]`) and `dense_shape` (int64, `[rank]`). The ops scatter the
values into a dense tensor where that is exact (sums, products with a dense
operand), so the tape differentiates them through the core's `scatter_nd` and
`gather_nd`; structural ops (reorder, transpose, reshape, concat) work on the
indices in NumPy and keep the values differentiable by gathering them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops
from distflow.array_ops import gather_nd, scatter_nd
from distflow.tensor import Tensor
from distflow.tensor_shape import TensorShape, ValueSpec


def _int64(value: Any, name: str) -> Tensor:
    arr = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"SparseTensor {name} must be integers. Received: {name}={arr!r}")
    return ops.constant(arr.astype(np.int64))


class SparseTensor:
    """A sparse tensor: `values[i]` sits at `indices[i]` of a `dense_shape` tensor.

    Args:
        indices: int `[nnz, rank]` coordinates (row-major order expected, see `reorder`).
        values: `[nnz]` values (any dtype; a tensor keeps its gradient).
        dense_shape: int `[rank]` shape of the dense tensor.
    """

    def __init__(self, indices: Any, values: Any, dense_shape: Any):
        self.indices = _int64(np.reshape(_np(indices), (-1, np.size(_np(dense_shape)))),
                              "indices")
        self.values = ops.convert_to_tensor(values)
        self.dense_shape = _int64(dense_shape, "dense_shape")
        if self.values.ndim != 1 or self.values.shape[0] != self.indices.shape[0]:
            raise ValueError(f"SparseTensor values must be 1-D with one value per index row "
                             f"({self.indices.shape[0]}). Received: values.shape="
                             f"{tuple(self.values.shape)}")

    dtype = property(lambda self: self.values.dtype, doc="The dtype of the values.")
    shape = property(lambda self: TensorShape([int(d) for d in self.dense_shape.numpy()]),
                     doc="The dense shape as a TensorShape.")
    ndim = property(lambda self: int(self.dense_shape.shape[0]), doc="The rank.")

    @classmethod
    def from_value(cls, value: Any) -> SparseTensor:
        """`value` if it is a SparseTensor, else its sparse form (`tf.sparse.from_dense`)."""
        return value if isinstance(value, SparseTensor) else from_dense(value)

    def with_values(self, new_values: Any) -> SparseTensor:
        """The same indices and shape with other values."""
        return SparseTensor(self.indices, new_values, self.dense_shape)

    def get_shape(self) -> TensorShape:
        """The dense shape (TF's alias of `.shape`)."""
        return self.shape

    def __repr__(self) -> str:
        return (f"SparseTensor(indices={self.indices.numpy().tolist()}, values="
                f"{self.values.numpy().tolist()}, dense_shape={self.dense_shape.numpy().tolist()})")


class SparseTensorSpec(ValueSpec):
    """The type spec of a `SparseTensor`: its dense shape and dtype."""

    value_type = SparseTensor

    @classmethod
    def from_value(cls, value: SparseTensor) -> SparseTensorSpec:
        """The spec of `value`."""
        return cls(value.shape, value.dtype)


def _np(value: Any) -> np.ndarray:
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def _shape(sp: SparseTensor) -> tuple[int, ...]:
    return tuple(int(d) for d in sp.dense_shape.numpy())


def _check(sp: Any, what: str) -> SparseTensor:
    if not isinstance(sp, SparseTensor):
        raise TypeError(f"{what} expects a SparseTensor. Received: {type(sp).__name__} "
                        "(convert a dense tensor with tf.sparse.from_dense).")
    return sp


# ------------------------------------------------------------ dense <-> sparse


def from_dense(tensor: Any) -> SparseTensor:
    """The non-zero entries of `tensor` as a SparseTensor (row-major order)."""
    t = ops.convert_to_tensor(tensor)
    idx = np.argwhere(t.numpy() != 0)
    return SparseTensor(idx, gather_nd(t, idx.astype(np.int32)) if idx.size else
                        ops.constant(np.zeros(0, t.dtype)), t.shape)


def to_dense(sp_input: SparseTensor, default_value: Any = None,
             validate_indices: bool = True) -> Tensor:
    """The dense tensor: values at their indices, `default_value` (0) elsewhere."""
    sp = _check(sp_input, "tf.sparse.to_dense")
    idx, shape = sp.indices.numpy(), _shape(sp)
    if validate_indices and len(idx) and len({tuple(r) for r in idx.tolist()}) < len(idx):
        raise ValueError(f"tf.sparse.to_dense: indices must be unique. Received: {idx.tolist()}")
    if not len(idx):
        fill = 0 if default_value is None else default_value
        return ops.constant(np.full(shape, fill, sp.values.value.dtype))
    dense = scatter_nd(idx, sp.values, shape)
    if default_value is None or not np.any(default_value):
        return dense
    present = np.zeros(shape, bool)
    present[tuple(idx.T)] = True
    return ops.where(present, dense, ops.cast(default_value, sp.dtype))


# ------------------------------------------------------------ arithmetic


def add(a: Any, b: Any, threshold: float = 0) -> Any:
    """Sum of two SparseTensors (a SparseTensor), or of a sparse and a dense one (dense)."""
    if isinstance(a, SparseTensor) and isinstance(b, SparseTensor):
        if _shape(a) != _shape(b):
            raise ValueError(f"tf.sparse.add: shapes differ: {_shape(a)} and {_shape(b)}.")
        total = to_dense(a) + to_dense(b)
        keep = np.argwhere(_union_mask(a, b) & (np.abs(total.numpy()) >= threshold))
        return SparseTensor(keep, gather_nd(total, keep.astype(np.int32)), _shape(a))
    sp, dense = (a, b) if isinstance(a, SparseTensor) else (_check(b, "tf.sparse.add"), a)
    return to_dense(sp) + ops.convert_to_tensor(dense, sp.dtype)


def _union_mask(a: SparseTensor, b: SparseTensor) -> np.ndarray:
    mask = np.zeros(_shape(a), bool)
    for sp in (a, b):
        mask[tuple(sp.indices.numpy().T)] = True
    return mask


def sparse_dense_matmul(sp_a: Any, b: Any, adjoint_a: bool = False,
                        adjoint_b: bool = False) -> Tensor:
    """`sp_a @ b` for a rank-2 SparseTensor and a dense matrix (or the reverse)."""
    a = to_dense(sp_a) if isinstance(sp_a, SparseTensor) else ops.convert_to_tensor(sp_a)
    d = to_dense(b) if isinstance(b, SparseTensor) else ops.convert_to_tensor(b)
    return ops.matmul(ops.transpose(a) if adjoint_a else a, ops.transpose(d) if adjoint_b else d)


matmul = sparse_dense_matmul


def reduce_sum(sp_input: SparseTensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Sum of the values over `axis` (all when None), as a dense tensor."""
    return ops.reduce_sum(to_dense(_check(sp_input, "tf.sparse.reduce_sum")), axis=axis,
                          keepdims=keepdims)


# ------------------------------------------------------------ structure


def _permuted(sp: SparseTensor, order: np.ndarray, indices: np.ndarray,
              shape: Any) -> SparseTensor:
    values = ops.gather(sp.values, order) if len(order) else sp.values
    return SparseTensor(indices[order], values, shape)


def reorder(sp_input: SparseTensor) -> SparseTensor:
    """The same tensor with its entries in row-major (lexicographic) order."""
    sp = _check(sp_input, "tf.sparse.reorder")
    idx = sp.indices.numpy()
    order = np.lexsort(idx.T[::-1]) if len(idx) else np.zeros(0, int)
    return _permuted(sp, order, idx, _shape(sp))


def transpose(sp_input: SparseTensor, perm: Any = None) -> SparseTensor:
    """Permutes the dimensions (reverses them when `perm` is None); row-major result."""
    sp = _check(sp_input, "tf.sparse.transpose")
    perm = list(range(sp.ndim))[::-1] if perm is None else [int(p) for p in _np(perm)]
    moved = SparseTensor(sp.indices.numpy()[:, perm], sp.values,
                         [_shape(sp)[p] for p in perm])
    return reorder(moved)


def reshape(sp_input: SparseTensor, shape: Any) -> SparseTensor:
    """The same entries in a dense tensor of `shape` (one dimension may be -1)."""
    sp = _check(sp_input, "tf.sparse.reshape")
    new_shape = np.empty(_shape(sp), np.int8).reshape([int(s) for s in _np(shape)]).shape
    flat = np.ravel_multi_index(sp.indices.numpy().T, _shape(sp)) if sp.ndim else \
        np.zeros(0, int)
    idx = np.stack(np.unravel_index(flat, new_shape), axis=1) if len(flat) else \
        np.zeros((0, len(new_shape)), np.int64)
    return SparseTensor(idx, sp.values, new_shape)


def retain(sp_input: SparseTensor, to_retain: Any) -> SparseTensor:
    """The entries where the boolean vector `to_retain` is True."""
    sp = _check(sp_input, "tf.sparse.retain")
    keep = np.flatnonzero(_np(to_retain).astype(bool))
    return _permuted(sp, keep, sp.indices.numpy(), _shape(sp))


def concat(axis: int, sp_inputs: list[SparseTensor], expand_nonconcat_dims: bool = False
           ) -> SparseTensor:
    """Concatenates SparseTensors along `axis` (other dimensions must agree)."""
    sps = [_check(s, "tf.sparse.concat") for s in sp_inputs]
    axis = axis % sps[0].ndim
    shapes = np.array([_shape(s) for s in sps])
    if expand_nonconcat_dims:
        shapes[:, [d for d in range(shapes.shape[1]) if d != axis]] = shapes.max(axis=0)[
            [d for d in range(shapes.shape[1]) if d != axis]]
    elif any((shapes[:, d] != shapes[0, d]).any() for d in range(shapes.shape[1]) if d != axis):
        raise ValueError(f"tf.sparse.concat: shapes {shapes.tolist()} differ off axis {axis}.")
    offsets = np.concatenate([[0], np.cumsum(shapes[:, axis])[:-1]])
    idx = [s.indices.numpy() + np.eye(s.ndim, dtype=np.int64)[axis] * off
           for s, off in zip(sps, offsets)]
    out_shape = shapes[0].copy()
    out_shape[axis] = shapes[:, axis].sum()
    joined = SparseTensor(np.concatenate(idx), ops.concat([s.values for s in sps], 0), out_shape)
    return reorder(joined)


def expand_dims(sp_input: SparseTensor, axis: int | None = None) -> SparseTensor:
    """Inserts a dimension of size 1 at `axis` (-1: last)."""
    sp = _check(sp_input, "tf.sparse.expand_dims")
    axis = -1 if axis is None else axis
    pos = axis if axis >= 0 else sp.ndim + 1 + axis
    idx = np.insert(sp.indices.numpy(), pos, 0, axis=1)
    return SparseTensor(idx, sp.values, list(np.insert(_shape(sp), pos, 1)))


def eye(num_rows: int, num_columns: int | None = None, dtype: Any = np.float32) -> SparseTensor:
    """The sparse identity matrix (`num_columns` defaults to `num_rows`)."""
    cols = num_rows if num_columns is None else num_columns
    n = min(num_rows, cols)
    dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    return SparseTensor(np.stack([np.arange(n)] * 2, axis=1), np.ones(n, dtype), [num_rows, cols])
