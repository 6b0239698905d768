"""The core transformations: the array-row sources (`from_tensor_slices`, `range`,
`from_tensors`) and the index-stream transformations (`shuffle`, `batch`, `shard`,
`take`, `skip`, `repeat`, `cache`), `map`, `filter`, `concatenate`, `zip`.

Each class is a `Dataset` registered as the implementation its method creates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from distflow import random
from distflow.data import structure
from distflow.data.base import Dataset, implementation
from distflow.data.structure import (
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    TensorSpec,
    _arange_chunks,
    _call,
    _check_positive,
    _check_seed,
    _chunk_ints,
    _flatten,
    _is_int,
    _leaf_names,
    _map_specs,
    _peek,
    _rebatch,
    _repeat,
    _reservoir,
    _slice_chunks,
    _spec_of,
    _stack,
    _stride_chunks,
    _tensors,
    _to_array,
    _to_numpy_structure,
    _unflatten,
)


class _RowSource(Dataset):
    """A dataset whose elements are rows that can be gathered by index."""

    def _size(self) -> int:
        raise NotImplementedError

    def _take_rows(self, indices: np.ndarray) -> Any:
        """The batch made of rows `indices` (one gather per array)."""
        raise NotImplementedError

    def _rows(self, chunks: Iterator[np.ndarray]) -> Iterator[Any]:
        # Gather a few hundred rows at a time: one NumPy call per block instead of
        # one per row, while never holding more than a block of copied rows.
        for block in _rebatch(chunks, 256, drop_remainder=False):
            block_leaves, tree = _flatten(self._take_rows(block))
            for position in range(len(block)):
                yield _unflatten(tree, [leaf[position] for leaf in block_leaves])

    def _index_stream(self) -> tuple[_RowSource, Callable[[], Iterator[np.ndarray]]]:
        return self, lambda: _arange_chunks(self._size())

    def cardinality(self) -> int:
        return self._size()


@implementation
class _TensorSlices(_RowSource):
    def __init__(self, tensors: Any) -> None:
        if tensors is None:
            raise ValueError("`from_tensor_slices` needs an array or a tuple/dict of "
                             "arrays. Received: None")
        leaves, self._tree = _flatten(tensors)
        if not leaves:
            raise ValueError("`from_tensor_slices` needs at least one array. "
                             f"Received: {tensors!r}")
        self._leaves = [_to_array(leaf) for leaf in leaves]
        self._n = self._common_length(_leaf_names(self._tree))

    def _common_length(self, names: list[str]) -> int:
        for name, leaf in zip(names, self._leaves):
            if leaf.ndim == 0:
                raise ValueError("`from_tensor_slices` slices arrays along their first "
                                 f"axis, so they need at least one dimension. Received: "
                                 f"{name} with shape ()")
        lengths = {len(leaf) for leaf in self._leaves}
        if len(lengths) > 1:
            sizes = ", ".join(f"{name} has {len(leaf)} rows (shape {leaf.shape})"
                              for name, leaf in zip(names, self._leaves))
            raise ValueError("All arrays given to `from_tensor_slices` must have the same "
                             f"size in their first dimension. Received: {sizes}")
        return lengths.pop()

    def _size(self) -> int:
        return self._n

    def _take_rows(self, indices: np.ndarray) -> Any:
        run = _consecutive_run(indices)
        if run is not None:  # rows in order: read-only views, nothing copied
            return _unflatten(self._tree, [_read_only(leaf[run]) for leaf in self._leaves])
        return _unflatten(self._tree, [np.take(leaf, indices, axis=0) for leaf in self._leaves])

    @property
    def element_spec(self) -> Any:
        return _unflatten(self._tree, [TensorSpec(leaf.shape[1:], leaf.dtype)
                                       for leaf in self._leaves])


def _consecutive_run(indices: np.ndarray) -> slice | None:
    """`slice(a, b)` when `indices` is exactly a, a+1, ..., b-1; else None."""
    if not len(indices) or indices[-1] - indices[0] != len(indices) - 1:
        return None
    if len(indices) > 2 and not np.all(np.diff(indices) == 1):
        return None
    return slice(int(indices[0]), int(indices[-1]) + 1)


def _read_only(view: np.ndarray) -> np.ndarray:
    view.flags.writeable = False
    return view


@implementation
class _Range(_RowSource):
    def __init__(self, values: range, dtype: np.dtype) -> None:
        self._values = values
        self._dtype = dtype

    def _size(self) -> int:
        return len(self._values)

    def _take_rows(self, indices: np.ndarray) -> np.ndarray:
        return (self._values.start + indices * self._values.step).astype(self._dtype)

    @property
    def element_spec(self) -> TensorSpec:
        return TensorSpec((), self._dtype)


@implementation
class _FromTensors(_RowSource):
    def __init__(self, tensors: Any) -> None:
        self._element = _to_numpy_structure(tensors)

    def _size(self) -> int:
        return 1

    def _take_rows(self, indices: np.ndarray) -> Any:
        leaves, tree = _flatten(self._element)
        return _unflatten(tree, [np.stack([leaf] * len(indices)) for leaf in leaves])

    @property
    def element_spec(self) -> Any:
        return _spec_of(self._element)


@implementation
class _FromGenerator(Dataset):
    def __init__(self, generator: Callable[[], Iterable[Any]], signature: Any) -> None:
        self._generator = generator
        self._signature = signature

    def _elements(self) -> Iterator[Any]:
        for element in self._generator():
            yield _to_numpy_structure(element)

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY

    @property
    def element_spec(self) -> Any:
        return self._signature if self._signature is not None else _spec_of(_peek(self))


# ---------------------------------------------------------------- transformations

class _Unary(Dataset):
    """A transformation of one input dataset."""

    def __init__(self, input_dataset: Dataset) -> None:
        if not isinstance(input_dataset, Dataset):
            raise TypeError(f"Expected a Dataset. Received: {input_dataset!r}")
        self._input = input_dataset

    def cardinality(self) -> int:
        return self._input.cardinality()

    @property
    def element_spec(self) -> Any:
        return self._input.element_spec

    def _input_stream(self, chunks_of: Callable[[Callable[[], Iterator[np.ndarray]]],
                                                 Iterator[np.ndarray]]):
        """The input's index stream (or None), its chunks passed through
        `chunks_of(make_chunks)`: what an index-choosing transformation yields."""
        stream = self._input._index_stream()
        if stream is None:
            return None
        source, make_chunks = stream
        return source, lambda: chunks_of(make_chunks)


class _Counted(_Unary):
    """A transformation with an element count (`take`, `skip`, `repeat`; -1: all)."""

    def __init__(self, input_dataset: Dataset, count: int) -> None:
        super().__init__(input_dataset)
        self._count = count


@implementation
class _Shuffle(_Unary):
    def __init__(self, input_dataset: Dataset, buffer_size: int, seed: int | None,
                 reshuffle_each_iteration: bool) -> None:
        super().__init__(input_dataset)
        self._buffer_size = _check_positive("buffer_size", buffer_size)
        seed = _check_seed(seed)
        # Unseeded: drawn from distflow's global generator (`df.random.set_seed`).
        self._seed = int(random.get_global_generator().integers(0, 2**62)) if seed is None \
            else seed
        self._reshuffle = bool(reshuffle_each_iteration)
        self._epochs_started = 0

    def _next_rng(self) -> np.random.Generator:
        """The generator of the next epoch: a function of (seed, epoch) only."""
        epoch = self._epochs_started if self._reshuffle else 0
        if not structure._peeking:
            self._epochs_started += 1
        return np.random.default_rng([self._seed, epoch])

    def _index_stream(self):
        return self._input_stream(self._shuffled_chunks)

    def _shuffled_chunks(self, make_chunks: Callable[[], Iterator[np.ndarray]]
                         ) -> Iterator[np.ndarray]:
        rng = self._next_rng()
        n = self._input.cardinality()
        if 0 <= n <= self._buffer_size:  # the whole input fits: one permutation
            chunks = list(make_chunks())
            if chunks:
                yield rng.permutation(np.concatenate(chunks))
            return
        ints = (i for chunk in make_chunks() for i in chunk.tolist())
        yield from _chunk_ints(_reservoir(ints, self._buffer_size, rng))

    def _elements(self) -> Iterator[Any]:
        rng = self._next_rng()
        return _reservoir(self._input._iter_numpy(), self._buffer_size, rng)


@implementation
class _Batch(_Unary):
    def __init__(self, input_dataset: Dataset, batch_size: int, drop_remainder: bool) -> None:
        super().__init__(input_dataset)
        self._batch_size = _check_positive("batch_size", batch_size)
        self._drop_remainder = bool(drop_remainder)

    def _elements(self) -> Iterator[Any]:
        stream = self._input._index_stream()
        if stream is not None:  # fast path: one gather per array per batch
            source, make_chunks = stream
            for indices in _rebatch(make_chunks(), self._batch_size, self._drop_remainder):
                yield source._take_rows(indices)
            return
        batch: list[Any] = []
        for element in self._input._iter_numpy():
            batch.append(element)
            if len(batch) == self._batch_size:
                yield _stack(batch)
                batch = []
        if batch and not self._drop_remainder:
            yield _stack(batch)

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if n < 0:
            return n
        if self._drop_remainder:
            return n // self._batch_size
        return -(-n // self._batch_size)

    @property
    def element_spec(self) -> Any:
        size = self._batch_size if self._drop_remainder else None
        return _map_specs(self._input.element_spec,
                          lambda spec: TensorSpec((size, *spec.shape), spec.dtype))


@implementation
class _Unbatch(_Unary):
    def _elements(self) -> Iterator[Any]:
        for element in self._input._iter_numpy():
            leaves, tree = _flatten(element)
            lengths = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
            if None in lengths or len(lengths) != 1:
                shapes = [np.shape(leaf) for leaf in leaves]
                raise ValueError("`unbatch` needs every array of an element to have the same "
                                 f"first dimension. Received shapes: {shapes}")
            for i in range(lengths.pop()):
                yield _unflatten(tree, [leaf[i] for leaf in leaves])

    def cardinality(self) -> int:
        n = self._input.cardinality()
        return INFINITE_CARDINALITY if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    @property
    def element_spec(self) -> Any:
        return _map_specs(self._input.element_spec,
                          lambda spec: TensorSpec(spec.shape[1:], spec.dtype))


@implementation
class _Shard(_Unary):
    def __init__(self, input_dataset: Dataset, num_shards: int, index: int) -> None:
        super().__init__(input_dataset)
        self._num_shards = _check_positive("num_shards", num_shards)
        if not _is_int(index) or not 0 <= index < num_shards:
            raise ValueError(f"`index` must be an int in [0, num_shards). Received: "
                             f"index={index!r}, num_shards={num_shards}")
        self._index = int(index)

    def _index_stream(self):
        return self._input_stream(
            lambda make: _stride_chunks(make(), self._index, self._num_shards))

    def _elements(self) -> Iterator[Any]:
        return itertools.islice(self._input._iter_numpy(), self._index, None, self._num_shards)

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if n < 0:
            return n
        return n // self._num_shards + (1 if self._index < n % self._num_shards else 0)


@implementation
class _Take(_Counted):
    def _stop(self) -> int | None:
        return None if self._count < 0 else self._count

    def _index_stream(self):
        return self._input_stream(lambda make: _slice_chunks(make(), 0, self._stop()))

    def _elements(self) -> Iterator[Any]:
        return itertools.islice(self._input._iter_numpy(), self._stop())

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count < 0:
            return n
        if n == INFINITE_CARDINALITY:
            return self._count
        return n if n == UNKNOWN_CARDINALITY else min(n, self._count)


@implementation
class _Skip(_Counted):
    def _index_stream(self):
        if self._count < 0:
            return self._input_stream(lambda make: iter(()))
        return self._input_stream(lambda make: _slice_chunks(make(), self._count, None))

    def _elements(self) -> Iterator[Any]:
        if self._count < 0:
            return iter(())
        return itertools.islice(self._input._iter_numpy(), self._count, None)

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count < 0:
            return 0
        return n if n < 0 else max(n - self._count, 0)


@implementation
class _Repeat(_Counted):
    def _index_stream(self):
        return self._input_stream(lambda make: _repeat(make, self._count))

    def _elements(self) -> Iterator[Any]:
        return _repeat(lambda: self._input._iter_numpy(), self._count)

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count < 0:
            return 0 if n == 0 else INFINITE_CARDINALITY
        return n if n < 0 else n * self._count


@implementation
class _Map(_Unary):
    def __init__(self, input_dataset: Dataset, map_func: Callable) -> None:
        super().__init__(input_dataset)
        self._map_func = map_func

    def _elements(self) -> Iterator[Any]:
        for element in self._input._iter_numpy():
            yield _to_numpy_structure(_call(self._map_func, _tensors(element)))

    @property
    def element_spec(self) -> Any:
        return _spec_of(_peek(self))


@implementation
class _Filter(_Unary):
    def __init__(self, input_dataset: Dataset, predicate: Callable) -> None:
        super().__init__(input_dataset)
        self._predicate = predicate

    def _elements(self) -> Iterator[Any]:
        for element in self._input._iter_numpy():
            keep = _to_array(_call(self._predicate, _tensors(element)))
            if keep.shape != ():
                raise ValueError("`predicate` must return a scalar boolean. Received a value "
                                 f"of shape {keep.shape}")
            if keep:
                yield element

    def cardinality(self) -> int:
        n = self._input.cardinality()
        return n if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY


@implementation
class _Cache(_Unary):
    def __init__(self, input_dataset: Dataset) -> None:
        super().__init__(input_dataset)
        self._cached: list[Any] | None = None

    def _index_stream(self):
        return self._input._index_stream()

    def _elements(self) -> Iterator[Any]:
        if self._cached is not None:
            yield from self._cached
            return
        collected = []
        for element in self._input._iter_numpy():
            collected.append(element)
            yield element
        self._cached = collected  # only a complete pass is kept


@implementation
class _Concatenate(Dataset):
    def __init__(self, first: Dataset, second: Dataset) -> None:
        if not isinstance(second, Dataset):
            raise TypeError(f"`dataset` must be a Dataset. Received: {second!r}")
        self._parts = (first, second)

    def _elements(self) -> Iterator[Any]:
        return itertools.chain.from_iterable(part._iter_numpy() for part in self._parts)

    def cardinality(self) -> int:
        sizes = [part.cardinality() for part in self._parts]
        if INFINITE_CARDINALITY in sizes:
            return INFINITE_CARDINALITY
        return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in sizes else sum(sizes)

    @property
    def element_spec(self) -> Any:
        return self._parts[0].element_spec


@implementation
class _Zip(Dataset):
    def __init__(self, datasets: Any) -> None:
        members, self._tree = _flatten(datasets)
        if not members or not all(isinstance(ds, Dataset) for ds in members):
            raise TypeError("`Dataset.zip` needs a tuple or dict of datasets. "
                            f"Received: {datasets!r}")
        self._members = members

    def _elements(self) -> Iterator[Any]:
        for parts in zip(*(ds._iter_numpy() for ds in self._members)):
            yield _unflatten(self._tree, parts)

    def cardinality(self) -> int:
        sizes = [ds.cardinality() for ds in self._members]
        finite = [n for n in sizes if n >= 0]
        if finite:
            return min(finite) if UNKNOWN_CARDINALITY not in sizes else UNKNOWN_CARDINALITY
        return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in sizes else INFINITE_CARDINALITY

    @property
    def element_spec(self) -> Any:
        return _unflatten(self._tree, [ds.element_spec for ds in self._members])
