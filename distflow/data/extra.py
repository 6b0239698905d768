"""The rest of the `tf.data.Dataset` API: padding and bucketing, windows, interleaving,
scans and reductions, options, `from_generator` with types.

Every class here consumes its input with `_iter_numpy()` (NumPy values) and
user functions receive tensors, as in `tf.data`. `Dataset` methods in
base.py create these classes (each is registered as an `implementation`); the file
sources, save/load and snapshots are in files.py, the threaded `prefetch` and
parallel `map` in threads.py.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distflow.data.base import Dataset, implementation
from distflow.data.files import TextLineDataset, _FileSource  # noqa: F401  (a public path)
from distflow.data.structure import (
    AUTOTUNE,
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    TensorSpec,
    _call,
    _check_callable,
    _check_positive,
    _check_seed,
    _flatten,
    _leaf_names,
    _stack,
    _tensors,
    _to_numpy_structure,
    _unflatten,
)
from distflow.data.threads import _ParallelMap
from distflow.data.transforms import _FromGenerator, _Map, _Unary

# ------------------------------------------------------------------ options


class AutoShardPolicy:
    """How multi-worker training splits a dataset (`tf.data.experimental.AutoShardPolicy`).

    OFF: every worker reads everything; DATA: worker i keeps elements i, i+N, ...;
    FILE: worker i reads every N-th file of a file-based source; AUTO (default)
    and HINT: as DATA.
    """

    OFF, AUTO, FILE, DATA, HINT = -1, 0, 1, 2, 3


@dataclass
class DistributeOptions:
    auto_shard_policy: int = AutoShardPolicy.AUTO
    num_devices: int | None = None


@dataclass
class ThreadingOptions:
    private_threadpool_size: int = 0
    max_intra_op_parallelism: int = 1


@dataclass
class OptimizationOptions:
    apply_default_optimizations: bool | None = None
    map_parallelization: bool | None = None
    parallel_batch: bool | None = None


@dataclass
class Options:
    """`tf.data.Options`: settings attached with `Dataset.with_options`."""

    deterministic: bool | None = None
    experimental_distribute: DistributeOptions = field(default_factory=DistributeOptions)
    threading: ThreadingOptions = field(default_factory=ThreadingOptions)
    experimental_optimization: OptimizationOptions = field(default_factory=OptimizationOptions)
    experimental_deterministic: bool | None = None
    experimental_slack: bool = False
    experimental_external_state_policy: Any = None
    experimental_symbolic_checkpoint: bool = False
    autotune: Any = None

    def merge(self, other: Options) -> Options:
        """A copy with `other`'s settings that differ from the defaults taking precedence."""
        merged = copy.deepcopy(self)
        defaults = Options()
        for name in vars(other):
            if getattr(other, name) != getattr(defaults, name):
                setattr(merged, name, copy.deepcopy(getattr(other, name)))
        return merged


@implementation
class _WithOptions(_Unary):
    def __init__(self, input_dataset: Dataset, options: Options):
        super().__init__(input_dataset)
        if not isinstance(options, Options):
            raise TypeError(f"`options` must be a tf.data.Options. Received: {options!r}")
        self._options = input_dataset.options().merge(options)

    def _index_stream(self):
        return self._input._index_stream()

    def _elements(self) -> Iterator[Any]:
        return self._input._iter_numpy()


@implementation
def options_of(dataset: Dataset) -> Options:
    """The options in force at `dataset` (the nearest `with_options` upstream)."""
    node = dataset
    while node is not None:
        if isinstance(node, _WithOptions):
            return node._options
        node = getattr(node, "_input", None)
    return Options()


def auto_shard(dataset: Dataset, num_workers: int, index: int) -> Dataset:
    """The part of `dataset` worker `index` of `num_workers` reads, by its auto-shard policy."""
    policy = options_of(dataset).experimental_distribute.auto_shard_policy
    if num_workers <= 1 or policy == AutoShardPolicy.OFF:
        return dataset
    if policy == AutoShardPolicy.FILE:
        return _shard_files(dataset, num_workers, index)
    return dataset.shard(num_workers, index)


def _shard_files(dataset: Dataset, num_workers: int, index: int) -> Dataset:
    if isinstance(dataset, _FileSource):
        return dataset._with_files(dataset._files[index::num_workers])
    if isinstance(dataset, _Unary):
        clone = copy.copy(dataset)
        clone._input = _shard_files(dataset._input, num_workers, index)
        return clone
    raise ValueError("AutoShardPolicy.FILE needs a file-based source (TextLineDataset or "
                     "Dataset.list_files); this dataset reads no files. Use "
                     "AutoShardPolicy.DATA or OFF.")


# ------------------------------------------------------------------ batching with padding


def _pad_leaf(values: list[np.ndarray], shape: Any, pad: Any, name: str) -> np.ndarray:
    ranks = {v.ndim for v in values}
    if len(ranks) != 1:
        raise ValueError(f"padded_batch: {name} has elements of different ranks {sorted(ranks)}.")
    widest = np.max([v.shape for v in values], axis=0) if values[0].ndim else ()
    target = [int(w) if s is None or s == -1 else int(s)
              for w, s in zip(widest, shape if shape is not None else [None] * len(widest))]
    for v in values:
        if any(n > t for n, t in zip(v.shape, target)):
            raise ValueError(f"padded_batch: {name} of shape {v.shape} does not fit the padded "
                             f"shape {target}.")
    fill = pad if pad is not None else (b"" if values[0].dtype.kind == "S" else 0)
    out = np.full([len(values), *target], fill, dtype=values[0].dtype)
    for i, v in enumerate(values):
        out[(i, *(slice(0, n) for n in v.shape))] = v
    return out


def pad_batch(elements: list[Any], padded_shapes: Any, padding_values: Any) -> Any:
    """Stacks elements after padding every leaf to a common (or the given) shape."""
    leaves_per = [_flatten(e) for e in elements]
    tree = leaves_per[0][1]
    names = _leaf_names(tree)
    shapes = _shape_leaves(padded_shapes, len(names))
    pads = _flatten(padding_values)[0] if padding_values is not None else [None] * len(names)
    if len(pads) == 1 and len(names) > 1:
        pads = pads * len(names)
    columns = list(zip(*(leaves for leaves, _ in leaves_per)))
    return _unflatten(tree, [_pad_leaf([np.asarray(v) for v in col], s, p, n)
                             for col, s, p, n in zip(columns, shapes, pads, names)])


def _shape_leaves(padded_shapes: Any, n: int) -> list:
    """One shape (list of ints/None, or None) per leaf; a shape is a list, not a structure."""
    if padded_shapes is None:
        return [None] * n
    if isinstance(padded_shapes, dict):
        return [list(padded_shapes[k]) if padded_shapes[k] is not None else None
                for k in padded_shapes]
    if n == 1 and not (isinstance(padded_shapes, tuple) and padded_shapes
                       and isinstance(padded_shapes[0], list | tuple)):
        return [list(np.atleast_1d(padded_shapes)) if np.ndim(padded_shapes) else
                ([] if padded_shapes == [] else [padded_shapes])]
    return [None if s is None else list(s) for s in padded_shapes]


@implementation
class _PaddedBatch(_Unary):
    def __init__(self, input_dataset, batch_size, padded_shapes, padding_values, drop_remainder):
        super().__init__(input_dataset)
        self._size = _check_positive("batch_size", batch_size)
        self._shapes, self._pads = padded_shapes, padding_values
        self._drop = bool(drop_remainder)

    def _elements(self) -> Iterator[Any]:
        it = self._input._iter_numpy()
        while True:
            batch = list(itertools.islice(it, self._size))
            if not batch or (self._drop and len(batch) < self._size):
                return
            yield pad_batch(batch, self._shapes, self._pads)

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if n < 0:
            return n
        return n // self._size if self._drop else -(-n // self._size)


# ------------------------------------------------------------------ nested datasets


def _as_dataset(value: Any, what: str) -> Dataset:
    if not isinstance(value, Dataset):
        raise TypeError(f"`{what}` must return a Dataset. Received: {type(value).__name__}")
    return value


@implementation
class _FlatMap(_Unary):
    def __init__(self, input_dataset, map_func):
        super().__init__(input_dataset)
        self._fn = _check_callable("map_func", map_func)

    def _elements(self) -> Iterator[Any]:
        for element in self._input._iter_numpy():
            yield from _as_dataset(_call(self._fn, _tensors(element)), "map_func")._iter_numpy()

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


@implementation
class _Interleave(_Unary):
    def __init__(self, input_dataset, map_func, cycle_length, block_length):
        super().__init__(input_dataset)
        self._fn = _check_callable("map_func", map_func)
        self._cycle = os.cpu_count() or 1 if cycle_length in (None, AUTOTUNE) else \
            _check_positive("cycle_length", cycle_length)
        self._block = _check_positive("block_length", block_length)

    def _open(self, inputs: Iterator[Any]) -> Iterator[Any] | None:
        for element in inputs:
            return _as_dataset(_call(self._fn, _tensors(element)), "map_func")._iter_numpy()
        return None

    def _elements(self) -> Iterator[Any]:
        inputs = self._input._iter_numpy()
        slots = [self._open(inputs) for _ in range(self._cycle)]
        while any(s is not None for s in slots):
            for i, it in enumerate(slots):
                if it is None:
                    continue
                block = list(itertools.islice(it, self._block))
                yield from block
                if len(block) < self._block:
                    slots[i] = self._open(inputs)

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


@implementation
class _Window(_Unary):
    def __init__(self, input_dataset, size, shift, stride, drop_remainder):
        super().__init__(input_dataset)
        self._size = _check_positive("size", size)
        self._shift = self._size if shift is None else _check_positive("shift", shift)
        self._stride = _check_positive("stride", stride)
        self._drop = bool(drop_remainder)

    def _windows(self) -> Iterator[list]:
        it = self._input._iter_numpy()
        buf: deque = deque()
        base, start, done = 0, 0, False
        while True:
            last = start + (self._size - 1) * self._stride
            while not done and base + len(buf) <= last:
                nxt = next(it, StopIteration)
                done = nxt is StopIteration
                if not done:
                    buf.append(nxt)
            items = [buf[p - base] for p in range(start, last + 1, self._stride)
                     if p - base < len(buf)]
            if not items or (self._drop and len(items) < self._size):
                return
            yield items
            start += self._shift
            while buf and base < start:
                buf.popleft()
                base += 1

    def _elements(self) -> Iterator[Any]:
        for items in self._windows():
            leaves_per = [_flatten(e) for e in items]
            tree = leaves_per[0][1]
            columns = list(zip(*(leaves for leaves, _ in leaves_per)))
            yield _unflatten(tree, [Dataset.from_tensor_slices(np.stack(col)) for col in columns])

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


# ------------------------------------------------------------------ scans and counters


@implementation
class _Counter(Dataset):
    def __init__(self, start: int, step: int, dtype: Any):
        self._start, self._step, self._dtype = start, step, np.dtype(dtype)

    def _elements(self) -> Iterator[Any]:
        for i in itertools.count(self._start, self._step):
            yield self._dtype.type(i)

    def cardinality(self) -> int:
        return INFINITE_CARDINALITY


@implementation
class _Scan(_Unary):
    def __init__(self, input_dataset, initial_state, scan_func):
        super().__init__(input_dataset)
        self._initial = initial_state
        self._fn = _check_callable("scan_func", scan_func)

    def _elements(self) -> Iterator[Any]:
        state = _to_numpy_structure(self._initial)
        for element in self._input._iter_numpy():
            result = self._fn(_tensors(state), _tensors(element))
            if not isinstance(result, tuple) or len(result) != 2:
                raise ValueError("`scan_func` must return (new_state, output_element). "
                                 f"Received: {result!r}")
            state = _same_state(state, result[0], "scan_func")
            yield _to_numpy_structure(result[1])


def _same_state(old: Any, new: Any, what: str) -> Any:
    """`new` as NumPy values, checked to have `old`'s structure and dtypes (as TF requires)."""
    new = _to_numpy_structure(new)
    old_leaves, old_tree = _flatten(old)
    new_leaves, new_tree = _flatten(new)
    old_types = [np.asarray(v).dtype for v in old_leaves]
    new_types = [np.asarray(v).dtype for v in new_leaves]
    if old_tree != new_tree or old_types != new_types:
        raise TypeError(f"The element types for the new state must match the initial state "
                        f"in `{what}`. Expected {[t.name for t in old_types]}; got "
                        f"{[t.name for t in new_types]}.")
    return new


@implementation
def reduce(dataset: Dataset, initial_state: Any, reduce_func: Callable) -> Any:
    """Folds `reduce_func(state, element)` over the dataset; returns the final state."""
    _check_callable("reduce_func", reduce_func)
    state = _to_numpy_structure(initial_state)
    for element in dataset._iter_numpy():
        state = _same_state(state, reduce_func(_tensors(state), _tensors(element)),
                            "reduce_func")
    return _tensors(state)


@implementation
class _TakeWhile(_Unary):
    def __init__(self, input_dataset, predicate):
        super().__init__(input_dataset)
        self._fn = _check_callable("predicate", predicate)

    def _elements(self) -> Iterator[Any]:
        for element in self._input._iter_numpy():
            if not bool(np.asarray(_call(self._fn, _tensors(element)))):
                return
            yield element

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


@implementation
class _Unique(_Unary):
    def _elements(self) -> Iterator[Any]:
        seen = set()
        for element in self._input._iter_numpy():
            key = np.asarray(element).tobytes() + str(np.asarray(element).dtype).encode()
            if key not in seen:
                seen.add(key)
                yield element

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


_ERRORS = (ValueError, TypeError, ArithmeticError, OSError, IndexError, KeyError)


@implementation
class _IgnoreErrors(_Unary):
    """Drops elements whose `map` function raises; after an error elsewhere the pass ends
    (a Python generator cannot resume after raising)."""

    def _elements(self) -> Iterator[Any]:
        source = self._input
        if isinstance(source, _Map | _ParallelMap):
            fn = source._map_func if isinstance(source, _Map) else source._fn
            for element in source._input._iter_numpy():
                try:
                    yield _to_numpy_structure(_call(fn, _tensors(element)))
                except _ERRORS:
                    continue
            return
        try:
            yield from source._iter_numpy()
        except _ERRORS:
            return


# ------------------------------------------------------------------ grouping


@implementation
class _GroupByWindow(_Unary):
    def __init__(self, input_dataset, key_func, reduce_func, window_size, window_size_func):
        super().__init__(input_dataset)
        if (window_size is None) == (window_size_func is None):
            raise ValueError("group_by_window needs exactly one of `window_size` and "
                             "`window_size_func`.")
        self._key = _check_callable("key_func", key_func)
        self._reduce = _check_callable("reduce_func", reduce_func)
        self._size = (lambda key: window_size) if window_size_func is None else window_size_func

    def _flush(self, key: Any, items: list) -> Iterator[Any]:
        window = Dataset.from_tensor_slices(_stack(items))
        out = _as_dataset(self._reduce(_tensors(np.int64(key)), window), "reduce_func")
        yield from out._iter_numpy()

    def _elements(self) -> Iterator[Any]:
        groups: dict[int, list] = {}
        for element in self._input._iter_numpy():
            key = int(np.asarray(_call(self._key, _tensors(element))))
            groups.setdefault(key, []).append(element)
            if len(groups[key]) >= int(np.asarray(self._size(_tensors(np.int64(key))))):
                yield from self._flush(key, groups.pop(key))
        for key, items in groups.items():
            yield from self._flush(key, items)

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


@implementation
class _Bucket(_Unary):
    def __init__(self, input_dataset, length_func, boundaries, batch_sizes, padded_shapes,
                 padding_values, pad_to_boundary, no_padding, drop_remainder):
        super().__init__(input_dataset)
        self._length = _check_callable("element_length_func", length_func)
        self._bounds = [int(b) for b in boundaries]
        if sorted(self._bounds) != self._bounds:
            raise ValueError(f"`bucket_boundaries` must be sorted. Received: {self._bounds}")
        self._sizes = [int(b) for b in batch_sizes]
        if len(self._sizes) != len(self._bounds) + 1:
            raise ValueError(f"`bucket_batch_sizes` needs len(bucket_boundaries) + 1 = "
                             f"{len(self._bounds) + 1} entries. Received: {self._sizes}")
        self._shapes, self._pads = padded_shapes, padding_values
        self._to_boundary, self._no_pad = bool(pad_to_boundary), bool(no_padding)
        self._drop = bool(drop_remainder)

    def _emit(self, bucket: int, items: list) -> Any:
        if self._no_pad:
                return _stack(items)
        shapes = self._shapes
        if self._to_boundary and shapes is None:
            if bucket == len(self._bounds):
                raise ValueError("pad_to_bucket_boundary=True needs every length below the "
                                 "last boundary; an element fell in the last bucket.")
            shapes = [self._bounds[bucket] - 1]
        return pad_batch(items, shapes, self._pads)

    def _elements(self) -> Iterator[Any]:
        buckets: dict[int, list] = {}
        for element in self._input._iter_numpy():
            length = int(np.asarray(_call(self._length, _tensors(element))))
            b = bisect.bisect_right(self._bounds, length)
            buckets.setdefault(b, []).append(element)
            if len(buckets[b]) == self._sizes[b]:
                yield self._emit(b, buckets.pop(b))
        if not self._drop:
            for b in sorted(buckets):
                yield self._emit(b, buckets[b])

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


# ------------------------------------------------------------------ sampling


@implementation
class _Choose(Dataset):
    def __init__(self, datasets: list, choices: Dataset, stop_on_empty: bool):
        self._datasets, self._choices, self._stop = list(datasets), choices, bool(stop_on_empty)

    def _elements(self) -> Iterator[Any]:
        its = [ds._iter_numpy() for ds in self._datasets]
        alive = [True] * len(its)
        for choice in self._choices._iter_numpy():
            i = int(choice)
            if not 0 <= i < len(its):
                raise ValueError(f"choose_from_datasets: choice {i} is out of range for "
                                 f"{len(its)} datasets.")
            if not alive[i]:
                continue
            value = next(its[i], StopIteration)
            if value is StopIteration:
                alive[i] = False
                if self._stop or not any(alive):
                    return
                continue
            yield value

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


@implementation
class _Sample(Dataset):
    def __init__(self, datasets: list, weights: Any, seed: Any, stop_on_empty: bool):
        self._datasets = list(datasets)
        n = len(self._datasets)
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (n,) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"`weights` must be {n} non-negative numbers. Received: {weights!r}")
        self._weights = w / w.sum()
        self._seed = _check_seed(seed)
        self._stop = bool(stop_on_empty)
        self._epoch = 0

    def _elements(self) -> Iterator[Any]:
        rng = np.random.default_rng(None if self._seed is None else [self._seed, self._epoch])
        self._epoch += 1
        its = [ds._iter_numpy() for ds in self._datasets]
        w = self._weights.copy()
        while w.sum() > 0:
            i = int(rng.choice(len(its), p=w / w.sum()))
            value = next(its[i], StopIteration)
            if value is StopIteration:
                if self._stop:
                    return
                w[i] = 0
                continue
            yield value

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


@implementation
class _Random(Dataset):
    def __init__(self, seed: Any):
        self._seed = _check_seed(seed)

    def _elements(self) -> Iterator[Any]:
        rng = np.random.default_rng(self._seed)
        while True:
            yield np.int64(rng.integers(0, 2**63 - 1))

    def cardinality(self) -> int:
        return INFINITE_CARDINALITY


@implementation
def from_generator(generator: Callable, output_types: Any, output_shapes: Any, args: Any,
                   output_signature: Any) -> Dataset:
    """`Dataset.from_generator` with TF's argument forms (types/shapes or a signature)."""
    _check_callable("generator", generator)
    if output_signature is not None and (output_types is not None or output_shapes is not None):
        raise TypeError("Pass either `output_signature` or `output_types`/`output_shapes`, "
                        "not both.")
    call = generator if args is None else (lambda: generator(*[np.asarray(a) for a in args]))
    if output_signature is not None:
        leaves, tree = _flatten(output_signature)
        dtypes = [np.dtype(getattr(s.dtype, "as_numpy_dtype", s.dtype)) for s in leaves]
        shapes = [None if s.shape is None else tuple(s.shape) for s in leaves]
    elif output_types is not None:
        type_leaves, tree = _flatten(output_types)
        dtypes = [np.dtype(getattr(t, "as_numpy_dtype", t)) for t in type_leaves]
        shapes = _flatten(output_shapes)[0] if output_shapes is not None else [None] * len(dtypes)
        shapes = [None if s is None else tuple(s) for s in _shape_leaves(
            output_shapes, len(dtypes))] if output_shapes is not None else shapes
    else:
        return _FromGenerator(call, None)
    return _TypedGenerator(call, tree, dtypes, shapes)


class _TypedGenerator(_FromGenerator):
    def __init__(self, generator, tree, dtypes, shapes):
        super().__init__(generator, _unflatten(tree, [
            TensorSpec(s if s is not None else (), d) for s, d in zip(shapes, dtypes)]))
        self._tree, self._dtypes, self._shapes = tree, dtypes, shapes

    def _elements(self) -> Iterator[Any]:
        for element in self._generator():
            leaves, _ = _flatten(_to_numpy_structure(element))
            if len(leaves) != len(self._dtypes):
                raise TypeError(f"The generator yielded {len(leaves)} values per element; the "
                                f"declared structure has {len(self._dtypes)}.")
            yield _unflatten(self._tree, [self._convert(v, d, s) for v, d, s in
                                          zip(leaves, self._dtypes, self._shapes)])

    @staticmethod
    def _convert(value: Any, dtype: np.dtype, shape: Any) -> Any:
        arr = np.asarray(value)
        if dtype.kind in "SU" or arr.dtype.kind in "SU":
            arr = arr.astype(np.bytes_) if dtype.kind == "S" or arr.dtype.kind == "U" else arr
        elif not np.can_cast(arr.dtype, dtype, "same_kind") and not (
                arr.dtype.kind in "iub" and dtype.kind in "iuf"):
            raise TypeError(f"`generator` yielded an element of type {arr.dtype} where "
                            f"{dtype} was expected.")
        else:
            arr = arr.astype(dtype, copy=False)
        if shape is not None and (len(shape) != arr.ndim or any(
                s is not None and s != n for s, n in zip(shape, arr.shape))):
            raise TypeError(f"`generator` yielded an element of shape {arr.shape} where an "
                            f"element of shape {tuple(shape)} was expected.")
        return arr[()] if arr.ndim == 0 else arr
