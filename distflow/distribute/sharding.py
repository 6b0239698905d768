"""Placement of variables on parameter-server shards.

Every process computes the same placement from the same input, so no process
has to tell another where a variable lives: `place(specs, num_shards)` depends
only on the variables' names, shapes and dtypes and on the number of shards.

Rule (greedy largest first, balanced by bytes):

1. A variable is split by rows (axis 0) when splitting is enabled and it is
   larger than `split_bytes` (default: its fair share, total bytes / shards,
   for variables of at least `MIN_SPLIT_BYTES`). It is cut into
   `min(shards, rows, ceil(bytes / split_bytes))` contiguous row ranges of
   near-equal size (the first ranges get the extra rows).
2. The pieces (whole variables and row ranges) are sorted by size, largest
   first, ties by name, and each goes to the shard holding the fewest bytes so
   far (ties: lowest shard id), avoiding shards that already hold a piece of
   the same variable when possible.

A piece of a split variable is named `"<name>[<start>:<stop>]"` on the wire.

`partitions` (name -> parts, from a TF-style variable partitioner) overrides
rule 1 for the variables it names: such a variable is cut into
`min(parts, shards, rows)` row ranges whatever its size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

MIN_SPLIT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Piece:
    """A variable or a row range of one, stored on one shard.

    Attributes:
        key: the name used on the wire.
        var: the variable's name.
        start, stop: the row range (the whole variable when not split: 0, rows).
        shape: the piece's shape.
        dtype: the dtype name.
        shard: the shard id holding it.
        split: True when the piece is a row range of a larger variable.
    """

    key: str
    var: str
    start: int
    stop: int
    shape: tuple[int, ...]
    dtype: str
    shard: int
    split: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    def view(self, array: np.ndarray) -> np.ndarray:
        """The part of the full variable `array` this piece covers (a view, no copy)."""
        return array[self.start:self.stop] if self.split else array


@dataclass(frozen=True)
class Placement:
    """The result of `place`: the pieces of every variable and their shards.

    Attributes:
        num_shards: number of shards.
        pieces: every piece, in placement order.
    """

    num_shards: int
    pieces: tuple[Piece, ...]

    def for_shard(self, shard: int) -> list[Piece]:
        """The pieces stored on `shard`."""
        return [p for p in self.pieces if p.shard == shard]

    def for_var(self, name: str) -> list[Piece]:
        """The pieces of variable `name`, in row order."""
        return sorted((p for p in self.pieces if p.var == name), key=lambda p: p.start)

    def shard_bytes(self) -> list[int]:
        """Bytes stored on each shard."""
        loads = [0] * self.num_shards
        for p in self.pieces:
            loads[p.shard] += p.nbytes
        return loads

    @property
    def variables(self) -> list[str]:
        return sorted({p.var for p in self.pieces})


def specs_of(arrays: Mapping[str, np.ndarray]) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of each array, the input `place` expects."""
    return [(name, tuple(a.shape), np.dtype(a.dtype).name) for name, a in arrays.items()]


def place(specs: Iterable[tuple[str, Sequence[int], str]], num_shards: int,
          split: bool = True, split_bytes: int | None = None,
          partitions: Mapping[str, int] | None = None) -> Placement:
    """Places variables on `num_shards` shards (see the module docstring for the rule).

    Args:
        specs: (name, shape, dtype) of every variable; order does not matter.
        num_shards: number of parameter servers, >= 1.
        split: allow row-splitting of large variables.
        split_bytes: split variables larger than this; None: the fair share.
        partitions: name -> number of row ranges wanted (overrides the size rule).

    Returns:
        The `Placement`, identical in every process for the same input.
    """
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"`num_shards` must be a positive int. "
                         f"Received: num_shards={num_shards!r}")
    items = sorted((str(n), tuple(int(d) for d in s), np.dtype(t).name) for n, s, t in specs)
    names = [n for n, _, _ in items]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"Variable names must be unique to be placed on shards. "
                         f"Received duplicates: {dupes}")
    threshold = _threshold(items, num_shards, split_bytes)
    wanted = partitions or {}
    candidates = [c for item in items
                  for c in _cut(item, num_shards, split, threshold, wanted.get(item[0]))]
    candidates.sort(key=lambda c: (-c[5], c[0]))
    return Placement(num_shards, tuple(_assign(candidates, num_shards)))


def _nbytes(shape: tuple[int, ...], dtype: str) -> int:
    return math.prod(shape) * np.dtype(dtype).itemsize


def _threshold(items: list, num_shards: int, split_bytes: int | None) -> int:
    if split_bytes is not None:
        return max(1, int(split_bytes))
    total = sum(_nbytes(s, t) for _, s, t in items)
    return max(MIN_SPLIT_BYTES, math.ceil(total / num_shards))


def _cut(item: tuple, num_shards: int, split: bool, threshold: int,
         wanted: int | None = None) -> list[tuple]:
    name, shape, dtype = item
    nbytes = _nbytes(shape, dtype)
    rows = shape[0] if shape else 1
    if wanted is not None:  # a partitioner decided for this variable
        threshold, parts = 0, min(num_shards, rows, max(1, int(wanted))) if shape else 1
    else:
        parts = min(num_shards, rows, math.ceil(nbytes / threshold)) if split and shape else 1
    if parts <= 1 or nbytes <= threshold:
        return [(name, name, 0, rows, shape, nbytes, False, dtype)]
    base, extra = divmod(rows, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        piece_shape = (stop - start, *shape[1:])
        out.append((f"{name}[{start}:{stop}]", name, start, stop, piece_shape,
                    _nbytes(piece_shape, dtype), True, dtype))
        start = stop
    return out


def _assign(candidates: list[tuple], num_shards: int) -> list[Piece]:
    loads = [0] * num_shards
    holders: dict[str, set[int]] = {}
    pieces = []
    for key, var, start, stop, shape, nbytes, is_split, dtype in candidates:
        used = holders.setdefault(var, set())
        free = [s for s in range(num_shards) if s not in used] or list(range(num_shards))
        shard = min(free, key=lambda s: (loads[s], s))
        loads[shard] += nbytes
        used.add(shard)
        pieces.append(Piece(key, var, start, stop, shape, dtype, shard, is_split))
    return pieces

