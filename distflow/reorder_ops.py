"""Sorting and reordering ops: sort, argsort, reverse, roll, unstack, repeat,
broadcast_to, identity. `distflow.array_ops` re-exports them."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from distflow import ops
from distflow.ops import _t, defop, unbroadcast
from distflow.tensor import Tensor, as_array, graph_form

# ------------------------------------------------------------------ einsum


def _direction(direction: str) -> int:
    if direction not in ("ASCENDING", "DESCENDING"):
        raise ValueError(f"`direction` must be 'ASCENDING' or 'DESCENDING'. Received: "
                         f"direction={direction!r}")
    return 1 if direction == "ASCENDING" else -1


@graph_form(differentiable=False)
def argsort(values: Any, axis: int = -1, direction: str = "ASCENDING", stable: bool = False,
            name: str | None = None) -> Tensor:
    """Indices that sort `values` along `axis` (int32; ties keep their order)."""
    x = as_array(values)
    sign = _direction(direction)
    key = x if sign > 0 else (-x if x.dtype.kind in "fi" else ~x)
    return Tensor._wrap(np.argsort(key, axis=int(axis), kind="stable").astype(np.int32))


@graph_form()
def sort(values: Any, axis: int = -1, direction: str = "ASCENDING",
         name: str | None = None) -> Tensor:
    """`values` sorted along `axis` (differentiable: the gradient follows the permutation)."""
    from distflow.math_ops import take_along_axis

    idx = argsort(values, axis, direction).value
    return take_along_axis(values, idx, int(axis))


def unstack(value: Any, num: int | None = None, axis: int = 0) -> list[Tensor]:
    """Splits `value` into its slices along `axis`."""
    value = _t(value)
    if value.ndim == 0:
        raise ValueError("unstack needs a tensor of rank >= 1. Received a scalar.")
    axis = int(axis) % value.ndim
    n = value.shape[axis]
    if num is not None and int(num) != n:
        raise ValueError(f"unstack: `num` ({num}) differs from the axis size {n}.")
    lead = (builtins.slice(None),) * axis
    return [ops.getitem(value, lead + (i,)) for i in builtins.range(n)]


def reverse(tensor: Any, axis: Any) -> Tensor:
    """Reverses `tensor` along each axis in `axis`."""
    tensor = _t(tensor)
    axes = {int(a) % tensor.ndim for a in np.atleast_1d(as_array(axis))}
    flip, keep = builtins.slice(None, None, -1), builtins.slice(None)
    return ops.getitem(tensor, tuple(flip if i in axes else keep
                                     for i in builtins.range(tensor.ndim)))


_roll = defop("roll", lambda x, shift, axis: (np.roll(x, shift, axis), (shift, axis)),
              lambda g, r: np.roll(g, tuple(-s for s in r[0]), r[1]))


def roll(input: Any, shift: Any, axis: Any) -> Tensor:  # noqa: A002
    """Rotates elements by `shift` along `axis` (ints or matching lists)."""
    shift = tuple(int(s) for s in np.atleast_1d(as_array(shift)))
    axis = tuple(int(a) for a in np.atleast_1d(as_array(axis)))
    if len(shift) != len(axis):
        raise ValueError(f"roll: `shift` and `axis` need the same length. Received: "
                         f"shift={list(shift)}, axis={list(axis)}")
    return _roll(_t(input), shift=shift, axis=axis)


def repeat(input: Any, repeats: Any, axis: int | None = None) -> Tensor:  # noqa: A002
    """Repeats each element `repeats` times along `axis` (flattened first when None)."""
    x = _t(input)
    if axis is None:
        x, axis = ops.reshape(x, [-1]), 0
    axis = int(axis) % x.ndim
    idx = np.repeat(np.arange(x.shape[axis]), as_array(repeats))
    return ops.gather(x, idx, axis=axis)


_broadcast_to = defop("broadcast_to",
                      lambda x, shape: (np.ascontiguousarray(np.broadcast_to(x, shape)), x.shape),
                      lambda g, shape: unbroadcast(g, shape))


@graph_form()
def broadcast_to(input: Any, shape: Any) -> Tensor:  # noqa: A002
    """`input` broadcast to `shape` (the gradient sums over the broadcast axes)."""
    x = _t(input)
    shape = tuple(int(s) for s in np.atleast_1d(as_array(shape)))
    try:
        np.broadcast_shapes(x.shape, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}.") from None
    return _broadcast_to(x, shape=shape)


def identity(input: Any, name: str | None = None) -> Tensor:  # noqa: A002
    """A tensor equal to `input` (the gradient passes through)."""
    x = _t(input)
    return ops.reshape(x, x.shape)


def approx_top_k(input: Any, k: int, reduction_dimension: int = -1,  # noqa: A002
                 recall_target: float = 0.95, is_max_k: bool = True,
                 reduction_input_size_override: int = -1, aggregate_to_topk: bool = True,
                 name: str | None = None) -> tuple[Tensor, Tensor]:
    """The k largest (or smallest, `is_max_k=False`) entries along `reduction_dimension`
    and their int32 indices. Exact (recall 1, above any `recall_target`), as TF on CPU."""
    from distflow.math_ops import top_k

    x = _t(input)
    axis = int(reduction_dimension) % builtins.max(x.ndim, 1)
    moved = ops.swapaxes(x, axis, -1) if axis != x.ndim - 1 else x
    values, indices = top_k(moved if is_max_k else -moved, k=int(k))
    values = values if is_max_k else -values
    if axis != x.ndim - 1:
        values, indices = ops.swapaxes(values, axis, -1), ops.swapaxes(indices, axis, -1)
    return values, indices


def approx_max_k(operand: Any, k: int, reduction_dimension: int = -1,
                 recall_target: float = 0.95, reduction_input_size_override: int = -1,
                 aggregate_to_topk: bool = True, name: str | None = None):
    """`approx_top_k(..., is_max_k=True)` (`tf.nn.approx_max_k`)."""
    return approx_top_k(operand, k, reduction_dimension, recall_target, True)


def approx_min_k(operand: Any, k: int, reduction_dimension: int = -1,
                 recall_target: float = 0.95, reduction_input_size_override: int = -1,
                 aggregate_to_topk: bool = True, name: str | None = None):
    """`approx_top_k(..., is_max_k=False)` (`tf.nn.approx_min_k`)."""
    return approx_top_k(operand, k, reduction_dimension, recall_target, False)
