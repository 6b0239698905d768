"""What every part of `distflow.data` shares: the element structure (`TensorSpec`,
flattening through `distflow.nest`), leaf conversions, argument checks, the
index-chunk streams and the cardinality constants.

The lowest module of the package: `base` (the `Dataset` API), `transforms`,
`extra`, `files` and `threads` import it, it imports none of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from distflow import nest
from distflow.tensor import Tensor

AUTOTUNE = -1
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2

_CHUNK = 1 << 16  # index arrays are produced in chunks of this many rows


# ---------------------------------------------------------------- structures

@dataclass(frozen=True)
class TensorSpec:
    """Shape (None for an unknown size) and dtype of one component of an element."""

    shape: tuple[int | None, ...]
    dtype: np.dtype



def _flatten(structure: Any) -> tuple[list[Any], Any]:
    """The leaves of an element (`distflow.nest`'s order: dict keys sorted; tf.data's rule:
    a list is one leaf) and its tree: the structure with None for each leaf (None for
    a single leaf)."""
    leaves = nest.flatten(structure, leaf_lists=True)
    if not nest.is_nested(structure):
        return leaves, None
    return leaves, nest.pack_sequence_as(structure, [None] * len(leaves), leaf_lists=True)


def _unflatten(tree: Any, leaves: Iterable[Any]) -> Any:
    """Inverse of `_flatten`."""
    if tree is None:
        return next(iter(leaves))
    return nest.pack_sequence_as(tree, leaves, leaf_lists=True)


def _map_leaves(fn: Callable[[Any], Any], structure: Any) -> Any:
    """`structure` with `fn` applied to each leaf (one walk down, one to rebuild)."""
    leaves = nest.flatten(structure, leaf_lists=True)
    return nest.pack_sequence_as(structure, [fn(leaf) for leaf in leaves], leaf_lists=True)


def _leaf_names(tree: Any, prefix: str = "element") -> list[str]:
    """Readable names of the leaves (`element[0]`, `element['image']`) for errors."""
    return [prefix + "".join(f"[{key!r}]" for key in path)
            for path in nest.paths(tree, leaf_lists=True)]


def _to_array(value: Any) -> np.ndarray:
    """NumPy view of a leaf; distflow tensors are unwrapped (no copy).

    Python numbers and lists get TensorFlow's default dtypes (int32, float32), as
    `tf.data` converts them; NumPy arrays keep theirs.
    """
    numpy_method = getattr(value, "numpy", None)
    if callable(numpy_method) and not isinstance(value, np.ndarray):
        value = numpy_method()
    if isinstance(value, list | int | float) and not isinstance(value, bool):
        array = np.asarray(value)
        if array.dtype == np.int64:
            return array.astype(np.int32)
        return array.astype(np.float32) if array.dtype == np.float64 else array
    return np.asarray(value)


def _to_element_leaf(value: Any) -> Any:
    """An array, or a NumPy scalar for 0-d values (as rows of 1-D arrays are)."""
    array = _to_array(value)
    return array[()] if array.ndim == 0 else array


class StringScalar(bytes):
    """A string element (TextLineDataset lines, file names): bytes with TF's `.numpy()`."""

    def numpy(self) -> bytes:
        return bytes(self)


class StringArray(np.ndarray):
    """A batch of strings: a NumPy bytes array with TF's `.numpy()`."""

    def numpy(self) -> np.ndarray:
        return self.view(np.ndarray)


def _tensor_leaf(value: Any) -> Any:
    array = np.asarray(value)
    if array.dtype.kind in "fiub":
        return Tensor._wrap(array)
    if array.dtype.kind == "S":  # distflow tensors hold numbers: strings get .numpy() only
        return StringScalar(array.item()) if array.ndim == 0 else array.view(StringArray)
    return value


_NUMERIC = frozenset("fiub")
_wrap = Tensor._wrap


def _tensors(element: Any) -> Any:
    """The element with each numeric leaf wrapped as a `Tensor` (no copy)."""
    if type(element) is tuple and all(type(leaf) is np.ndarray and leaf.dtype.kind in _NUMERIC
                                      for leaf in element):
        return tuple(map(_wrap, element))  # the common (x, y) batch, without the tree walk
    if isinstance(element, np.ndarray | np.generic):
        return _tensor_leaf(element)
    return _map_leaves(_tensor_leaf, element)


def _to_numpy_structure(element: Any) -> Any:
    return _map_leaves(_to_element_leaf, element)


def _leaf_spec(leaf: Any) -> TensorSpec:
    array = np.asarray(leaf)
    return TensorSpec(array.shape, array.dtype)


def _spec_of(element: Any) -> Any:
    return _map_leaves(_leaf_spec, element)


def _map_specs(spec: Any, fn: Callable[[TensorSpec], TensorSpec]) -> Any:
    return _map_leaves(fn, spec)


# ---------------------------------------------------------------- argument checks

def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_positive(name: str, value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def _check_count(name: str, value: Any) -> int:
    """Counts where -1 means "all" (take, skip, repeat)."""
    if not _is_int(value) or value < -1:
        raise ValueError(f"`{name}` must be an int >= 0, or -1 for all elements. "
                         f"Received: {name}={value!r}")
    return int(value)


def _check_seed(seed: Any) -> int | None:
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise ValueError(f"`seed` must be None or a non-negative int. Received: seed={seed!r}")
    return None if seed is None else int(seed)


def _check_callable(name: str, fn: Any) -> Callable:
    if not callable(fn):
        raise TypeError(f"`{name}` must be callable. Received: {name}={fn!r}")
    return fn


# ---------------------------------------------------------------- index streams

def _arange_chunks(n: int) -> Iterator[np.ndarray]:
    for start in range(0, n, _CHUNK):
        yield np.arange(start, min(start + _CHUNK, n), dtype=np.int64)


def _slice_chunks(chunks: Iterator[np.ndarray], start: int, stop: int | None
                  ) -> Iterator[np.ndarray]:
    """Positions [start, stop) of the concatenated stream (stop None: to the end)."""
    position = 0
    for chunk in chunks:
        low = max(start - position, 0)
        high = len(chunk) if stop is None else min(stop - position, len(chunk))
        if low < high:
            yield chunk[low:high]
        position += len(chunk)
        if stop is not None and position >= stop:
            return


def _stride_chunks(chunks: Iterator[np.ndarray], offset: int, step: int
                   ) -> Iterator[np.ndarray]:
    """Positions p of the concatenated stream with p % step == offset."""
    position = 0
    for chunk in chunks:
        picked = chunk[(offset - position) % step::step]
        if len(picked):
            yield picked
        position += len(chunk)


def _rebatch(chunks: Iterator[np.ndarray], size: int, drop_remainder: bool
             ) -> Iterator[np.ndarray]:
    """Regroups a stream of index chunks into arrays of exactly `size` indices."""
    pending: list[np.ndarray] = []
    count = 0
    for chunk in chunks:
        while len(chunk):
            part, chunk = chunk[:size - count], chunk[size - count:]
            pending.append(part)
            count += len(part)
            if count == size:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                pending, count = [], 0
    if count and not drop_remainder:
        yield np.concatenate(pending)


def _random_ints(rng: np.random.Generator, high: int) -> Iterator[int]:
    """Endless uniform ints in [0, high), drawn in blocks (one call per 1024)."""
    while True:
        yield from rng.integers(0, high, size=1024).tolist()


def _reservoir(items: Iterable[Any], buffer_size: int, rng: np.random.Generator
               ) -> Iterator[Any]:
    """`tf.data` shuffle: keep `buffer_size` items, emit a random one, refill its slot."""
    buffer: list[Any] = []
    picks = _random_ints(rng, buffer_size)
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        slot = next(picks)
        yield buffer[slot]
        buffer[slot] = item
    for slot in rng.permutation(len(buffer)).tolist():
        yield buffer[slot]


def _chunk_ints(ints: Iterator[int]) -> Iterator[np.ndarray]:
    while True:
        block = np.fromiter(itertools.islice(ints, 4096), dtype=np.int64)
        if not len(block):
            return
        yield block


def _repeat(make: Callable[[], Iterator[Any]], count: int) -> Iterator[Any]:
    """Runs `make()` `count` times (-1: forever), stopping early if a pass is empty."""
    done = 0
    while count < 0 or done < count:
        produced = False
        for item in make():
            produced = True
            yield item
        done += 1
        if not produced:
            return


# ---------------------------------------------------------------- the Dataset API


def _call(fn: Callable, element: Any) -> Any:
    """Calls a user function as tf.data does: a tuple element is unpacked."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _stack(elements: list[Any]) -> Any:
    """Stacks a list of same-structure elements into one batch, with clear errors."""
    flat = [_flatten(element) for element in elements]
    tree = flat[0][1]
    columns = list(zip(*(leaves for leaves, _ in flat)))
    stacked = []
    for name, column in zip(_leaf_names(tree), columns):
        shapes = [np.shape(value) for value in column]
        if any(shape != shapes[0] for shape in shapes):
            bad = next(i for i, shape in enumerate(shapes) if shape != shapes[0])
            raise ValueError(f"Cannot batch elements of different shapes: {name} has shape "
                             f"{shapes[0]} in the first element of the batch and {shapes[bad]}"
                             f" in element {bad}. Use `map` to give them one shape first.")
        stacked.append(np.stack(column))
    return _unflatten(tree, stacked)


# ---------------------------------------------------------------- peeking

# ---------------------------------------------------------------- peeking

_peeking = False  # while True, shuffles do not count the iteration as an epoch


def _peek(dataset: Any) -> Any:
    """The first element, without advancing any shuffle's epoch counter."""
    global _peeking
    previous, _peeking = _peeking, True
    try:
        for element in dataset._iter_numpy():
            return element
    finally:
        _peeking = previous
    raise ValueError("Cannot infer `element_spec` of an empty dataset.")
