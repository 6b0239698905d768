"""`tf.space_to_batch` / `tf.batch_to_space` and their padding helper: blocks of the
spatial dimensions moved to and from the batch dimension (TF's algorithm, as
documented for `space_to_batch_nd`). Composites of pad, reshape, transpose and
slicing, so they differentiate through those ops' VJPs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import ops
from distflow.errors import InvalidArgumentError
from distflow.tensor import Tensor, as_array, graph_form


def _ints(value: Any, what: str, rows: int | None = None) -> np.ndarray:
    arr = np.asarray(as_array(value)).astype(np.int64)
    if rows is not None and arr.shape != (rows, 2):
        raise ValueError(f"`{what}` must have shape [{rows}, 2] (one [start, end] pair per "
                         f"block dimension). Received: {what} of shape {arr.shape}")
    return arr


def required_space_to_batch_paddings(input_shape: Any, block_shape: Any,
                                     base_paddings: Any = None,
                                     name: str | None = None) -> tuple[Tensor, Tensor]:
    """The paddings that make `input_shape` divisible by `block_shape`, and the crops
    that undo the extra end padding (both int32 [M, 2])."""
    shape, block = _ints(input_shape, "input_shape"), _ints(block_shape, "block_shape")
    base = (np.zeros((len(block), 2), np.int64) if base_paddings is None
            else _ints(base_paddings, "base_paddings", len(block)))
    full = shape + base[:, 0] + base[:, 1]
    extra = (block - full % block) % block
    paddings = np.stack([base[:, 0], base[:, 1] + extra], axis=1).astype(np.int32)
    crops = np.stack([np.zeros_like(extra), extra], axis=1).astype(np.int32)
    return Tensor._wrap(paddings), Tensor._wrap(crops)


@graph_form()
def space_to_batch_nd(input: Any, block_shape: Any, paddings: Any,  # noqa: A002
                      name: str | None = None) -> Tensor:
    """Pads the M spatial dims, splits them into `block_shape` blocks and moves the
    blocks into the batch: [B, *S, *R] -> [B * prod(block), *(S + pads) / block, *R]."""
    x = ops.convert_to_tensor(input)
    block = _ints(block_shape, "block_shape")
    m = len(block)
    pads = _ints(paddings, "paddings", m)
    x = ops.pad(x, [[0, 0], *pads.tolist(), *[[0, 0]] * (x.ndim - 1 - m)])
    b, spatial, rest = x.shape[0], list(x.shape[1:1 + m]), list(x.shape[1 + m:])
    if any(s % k for s, k in zip(spatial, block)):
        raise InvalidArgumentError(f"space_to_batch: the padded spatial shape {spatial} must be "
                         f"divisible by block_shape {block.tolist()}; see "
                         "required_space_to_batch_paddings.")
    split = [d for s, k in zip(spatial, block) for d in (s // k, int(k))]
    x = ops.reshape(x, [b, *split, *rest])
    perm = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)]
    x = ops.transpose(x, perm + list(range(1 + 2 * m, 1 + 2 * m + len(rest))))
    return ops.reshape(x, [b * int(np.prod(block)), *(s // k for s, k in zip(spatial, block)),
                           *rest])


@graph_form()
def batch_to_space(input: Any, block_shape: Any, crops: Any,  # noqa: A002
                   name: str | None = None) -> Tensor:
    """The inverse of `space_to_batch_nd`: batch blocks back into the spatial dims,
    then `crops` [M, 2] removed from their starts and ends."""
    x = ops.convert_to_tensor(input)
    block = _ints(block_shape, "block_shape")
    m, n = len(block), int(np.prod(_ints(block_shape, "block_shape")))
    cut = _ints(crops, "crops", m)
    if x.shape[0] % n:
        raise InvalidArgumentError(f"batch_to_space: the batch ({x.shape[0]}) must be divisible by "
                         f"prod(block_shape) = {n}. Received: input of shape {tuple(x.shape)}")
    b, spatial, rest = x.shape[0] // n, list(x.shape[1:1 + m]), list(x.shape[1 + m:])
    x = ops.reshape(x, [*block.tolist(), b, *spatial, *rest])
    perm = [m] + [d for i in range(m) for d in (m + 1 + i, i)]
    x = ops.transpose(x, perm + list(range(2 * m + 1, 2 * m + 1 + len(rest))))
    x = ops.reshape(x, [b, *(s * int(k) for s, k in zip(spatial, block)), *rest])
    keys = [slice(None)] + [slice(int(lo), x.shape[1 + i] - int(hi))
                            for i, (lo, hi) in enumerate(cut)]
    return x[tuple(keys)]


space_to_batch = space_to_batch_nd
