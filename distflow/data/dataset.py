"""`Dataset`: an input pipeline in the style of `tf.data`, over NumPy arrays.

A `Dataset` is a lazy description (source -> transformations); nothing runs
until it is iterated. Every `for` loop over a dataset starts a new *epoch*:
`shuffle` draws a new order (unless `reshuffle_each_iteration=False`), and
that order is a pure function of the shuffle seed and the epoch number, so a
seeded pipeline is reproducible.

How it avoids copying the data set: `from_tensor_slices` keeps references to
the caller's arrays (no copy). Transformations that only choose *which* rows
come next (`shuffle`, `shard`, `take`, `skip`, `repeat`, `prefetch`, `cache`)
are run on arrays of row indices, and `batch` gathers each batch's rows with a
single `np.take` per array (or slices them, when they are consecutive). Only
`map`, `filter` and the other element-wise transformations walk elements one
at a time.

Elements are NumPy arrays (or NumPy scalars for rows of 1-D arrays) in the
structure they were given: a tuple stays a tuple, a dict stays a dict. Treat
them as immutable, like `tf.Tensor`s: a batch of consecutive rows (no shuffle)
is a read-only view of the source array rather than a copy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from distflow import random
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
    """Splits a nest of tuples and dicts into its leaves and a tree description."""
    if isinstance(structure, tuple):
        parts = [_flatten(item) for item in structure]
        return [leaf for leaves, _ in parts for leaf in leaves], ("tuple", type(structure),
                                                                 [tree for _, tree in parts])
    if isinstance(structure, dict):
        keys = list(structure)
        parts = [_flatten(structure[key]) for key in keys]
        return [leaf for leaves, _ in parts for leaf in leaves], ("dict", keys,
                                                                 [tree for _, tree in parts])
    return [structure], None


def _unflatten(tree: Any, leaves: Iterable[Any]) -> Any:
    """Inverse of `_flatten`."""
    return _build(tree, iter(leaves))


def _build(tree: Any, leaves: Iterator[Any]) -> Any:
    if tree is None:
        return next(leaves)
    kind, info, children = tree
    items = [_build(child, leaves) for child in children]
    if kind == "dict":
        return dict(zip(info, items))
    return info._make(items) if hasattr(info, "_make") else info(items)


def _leaf_names(tree: Any, prefix: str = "element") -> list[str]:
    """Readable names of the leaves (`element[0]`, `element['image']`) for errors."""
    if tree is None:
        return [prefix]
    kind, info, children = tree
    keys = info if kind == "dict" else range(len(children))
    return [name for key, child in zip(keys, children)
            for name in _leaf_names(child, f"{prefix}[{key!r}]")]


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
    leaves, tree = _flatten(element)
    return _unflatten(tree, [_tensor_leaf(leaf) for leaf in leaves])


def _to_numpy_structure(element: Any) -> Any:
    leaves, tree = _flatten(element)
    return _unflatten(tree, [_to_element_leaf(leaf) for leaf in leaves])


def _spec_of(element: Any) -> Any:
    leaves, tree = _flatten(element)
    arrays = [np.asarray(leaf) for leaf in leaves]
    return _unflatten(tree, [TensorSpec(a.shape, a.dtype) for a in arrays])


def _map_specs(spec: Any, fn: Callable[[TensorSpec], TensorSpec]) -> Any:
    leaves, tree = _flatten(spec)
    return _unflatten(tree, [fn(leaf) for leaf in leaves])


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

class Dataset:
    """A lazy input pipeline. Build one with `from_tensor_slices`, `from_tensors`,
    `range` or `from_generator`, then chain transformations; iterate it with
    `for`, once per epoch.

    Example:
        >>> ds = Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(32)
        >>> for x_batch, y_batch in ds:
        ...     pass
    """

    # ----- iteration

    def __iter__(self) -> Iterator[Any]:
        """Starts a new epoch and yields its elements as distflow tensors.

        Each array of an element is a `Tensor` (`x.numpy()` works, and NumPy
        functions accept it); strings stay NumPy values.
        """
        return map(_tensors, self._iter_numpy())

    def as_numpy_iterator(self) -> Iterator[Any]:
        """Starts a new epoch and yields its elements as NumPy arrays (and NumPy scalars)."""
        return self._iter_numpy()

    def _iter_numpy(self) -> Iterator[Any]:
        """The elements as NumPy values: what every transformation consumes."""
        stream = self._index_stream()
        if stream is not None:
            source, chunks = stream
            return source._rows(chunks())
        return self._elements()

    def _elements(self) -> Iterator[Any]:
        """Element-by-element iteration (for datasets without an index stream)."""
        raise NotImplementedError

    def _index_stream(self) -> tuple[_RowSource, Callable[[], Iterator[np.ndarray]]] | None:
        """(source, make_chunks) when elements are rows of a source picked by index."""
        return None

    # ----- size

    def cardinality(self) -> int:
        """Number of elements; `INFINITE_CARDINALITY` (-1) or `UNKNOWN_CARDINALITY` (-2)."""
        raise NotImplementedError

    def __len__(self) -> int:
        n = self.cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return n

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__.lstrip('_')} cardinality={self.cardinality()}>"

    @property
    def element_spec(self) -> Any:
        """The structure of one element, with a `TensorSpec` per array."""
        return _spec_of(_peek(self))

    # ----- sources

    @staticmethod
    def from_tensor_slices(tensors: Any) -> Dataset:
        """One element per row of the given arrays (sliced along their first axis).

        Args:
            tensors: an array, or a tuple/dict nest of arrays with the same first
                dimension, e.g. `(x, y)` or `{"image": x, "label": y}`. Lists are
                converted to arrays, as in `tf.data`. Arrays are not copied.
        """
        return _TensorSlices(tensors)

    @staticmethod
    def from_tensors(tensors: Any) -> Dataset:
        """A dataset of a single element: `tensors` itself."""
        return _FromTensors(tensors)

    @staticmethod
    def range(*args: int, dtype: Any = np.int64) -> Dataset:
        """Like Python's `range(stop)` / `range(start, stop[, step])`, as int64 scalars."""
        return _Range(range(*args), np.dtype(dtype))

    @staticmethod
    def from_generator(generator: Callable[..., Iterable[Any]], output_types: Any = None,
                       output_shapes: Any = None, args: Any = None,
                       output_signature: Any = None) -> Dataset:
        """Elements produced by calling `generator(*args)` once per epoch.

        With `output_signature` (a structure of `TensorSpec`s) or `output_types`
        (plus optional `output_shapes`, None for unknown sizes), every element is
        converted to the declared dtypes and checked against the shapes (a
        mismatch raises TypeError, as TF does); without either, elements are
        taken as they come.
        """
        from distflow.data import extra

        return extra.from_generator(generator, output_types, output_shapes, args,
                                    output_signature)

    @staticmethod
    def zip(*datasets: Any, name: str | None = None) -> Dataset:
        """Elements are tuples (or dicts) of one element from each dataset.

        Accepts `zip((a, b))`, `zip({"x": a, "y": b})` or `zip(a, b)`.
        """
        if len(datasets) == 1:
            return _Zip(datasets[0])
        return _Zip(tuple(datasets))

    # ----- transformations

    def shuffle(self, buffer_size: int, seed: int | None = None,
                reshuffle_each_iteration: bool = True) -> Dataset:
        """Randomly reorders elements with a buffer of `buffer_size` elements.

        A buffer at least as large as the dataset gives a uniform random permutation;
        a smaller one is the `tf.data` reservoir (emit a random buffered element,
        refill its slot with the next input). The order of epoch `k` depends only on
        `(seed, k)`. With `seed=None` the seed is drawn from distflow's global
        generator when `shuffle` is called, so `df.random.set_seed` (like
        `tf.random.set_seed`) or `keras.utils.set_random_seed` make it reproducible.
        """
        return _Shuffle(self, buffer_size, seed, reshuffle_each_iteration)

    def batch(self, batch_size: int, drop_remainder: bool = False,
              num_parallel_calls: int | None = None, deterministic: bool | None = None
              ) -> Dataset:
        """Stacks consecutive elements into batches along a new first axis.

        `num_parallel_calls` and `deterministic` are accepted for compatibility and
        ignored (batches are gathered in the iterating thread, in order).
        """
        return _Batch(self, batch_size, drop_remainder)

    def unbatch(self) -> Dataset:
        """Splits each element along its first axis (the inverse of `batch`)."""
        return _Unbatch(self)

    def shard(self, num_shards: int, index: int) -> Dataset:
        """Keeps elements `index, index + num_shards, index + 2 * num_shards, ...`."""
        return _Shard(self, num_shards, index)

    def map(self, map_func: Callable, num_parallel_calls: int | None = None,
            deterministic: bool | None = None) -> Dataset:
        """Applies `map_func` to each element; tuple elements are unpacked into arguments.

        The function receives tensors, as in tf.data. With `num_parallel_calls`
        (an int > 1 or AUTOTUNE) that many threads apply it, overlapping where
        NumPy releases the GIL; the output keeps the input order either way
        (`deterministic` is accepted, order is always kept).
        """
        _check_callable("map_func", map_func)
        if num_parallel_calls is not None and num_parallel_calls != 1:
            from distflow.data import extra

            if num_parallel_calls != AUTOTUNE:
                _check_positive("num_parallel_calls", num_parallel_calls)
            return extra._ParallelMap(self, map_func, num_parallel_calls)
        return _Map(self, map_func)

    def filter(self, predicate: Callable) -> Dataset:
        """Keeps the elements for which `predicate` (called like `map_func`) is True."""
        return _Filter(self, _check_callable("predicate", predicate))

    def repeat(self, count: int | None = None) -> Dataset:
        """Repeats the dataset `count` times (None or -1: forever), reshuffling each pass."""
        return _Repeat(self, -1 if count is None else _check_count("count", count))

    def take(self, count: int) -> Dataset:
        """The first `count` elements (-1: all)."""
        return _Take(self, _check_count("count", count))

    def skip(self, count: int) -> Dataset:
        """All but the first `count` elements (-1: skip everything)."""
        return _Skip(self, _check_count("count", count))

    def prefetch(self, buffer_size: int) -> Dataset:
        """Produces up to `buffer_size` elements ahead in a background thread (AUTOTUNE: 2),
        so the pipeline's work overlaps the consumer's (training steps release the GIL
        in NumPy). Errors in the pipeline are re-raised in the iterating thread."""
        if not _is_int(buffer_size) or buffer_size < AUTOTUNE:
            raise ValueError("`buffer_size` must be a non-negative int or AUTOTUNE (-1). "
                             f"Received: buffer_size={buffer_size!r}")
        from distflow.data import extra

        return extra._Prefetch(self, buffer_size)

    def cache(self, filename: str = "") -> Dataset:
        """Keeps the elements of the first complete pass in memory and replays them.

        A dataset of array rows is already in memory, so this is then a no-op.
        Only the in-memory cache is supported (`filename` must be empty).
        """
        if filename:
            raise ValueError("Only the in-memory cache is supported: call `cache()` "
                             f"without a file name. Received: filename={filename!r}")
        return _Cache(self)

    def concatenate(self, dataset: Dataset) -> Dataset:
        """The elements of this dataset followed by those of `dataset`."""
        return _Concatenate(self, dataset)

    # ----- the rest of the tf.data API (implemented in distflow/data/extra.py)

    def padded_batch(self, batch_size: int, padded_shapes: Any = None,
                     padding_values: Any = None, drop_remainder: bool = False) -> Dataset:
        """Batches elements of different shapes, padding each array to the batch's largest
        shape (or to `padded_shapes`, where None/-1 means the largest) with
        `padding_values` (default 0, b"" for strings)."""
        from distflow.data import extra

        return extra._PaddedBatch(self, batch_size, padded_shapes, padding_values,
                                  drop_remainder)

    def flat_map(self, map_func: Callable) -> Dataset:
        """Maps each element to a dataset and concatenates those datasets."""
        from distflow.data import extra

        return extra._FlatMap(self, map_func)

    def interleave(self, map_func: Callable, cycle_length: int | None = None,
                   block_length: int = 1, num_parallel_calls: int | None = None,
                   deterministic: bool | None = None) -> Dataset:
        """Maps elements to datasets and takes `block_length` elements from each of
        `cycle_length` open datasets in turn (TF's order; default cycle: CPU count)."""
        from distflow.data import extra

        return extra._Interleave(self, map_func, cycle_length, block_length)

    def window(self, size: int, shift: int | None = None, stride: int = 1,
               drop_remainder: bool = False) -> Dataset:
        """Elements are windows: the element structure with a Dataset of `size`
        items (every `stride`-th) per component; windows start `shift` apart."""
        from distflow.data import extra

        return extra._Window(self, size, shift, stride, drop_remainder)

    def enumerate(self, start: int = 0) -> Dataset:
        """Elements are `(index, element)` with int64 indices from `start`."""
        from distflow.data import extra

        return Dataset.zip((extra._Counter(int(start), 1, np.int64), self))

    def reduce(self, initial_state: Any, reduce_func: Callable) -> Any:
        """Folds `reduce_func(state, element)` over the elements; returns the final state."""
        from distflow.data import extra

        return extra.reduce(self, initial_state, reduce_func)

    def scan(self, initial_state: Any, scan_func: Callable) -> Dataset:
        """Elements are the outputs of `scan_func(state, element) -> (state, output)`."""
        from distflow.data import extra

        return extra._Scan(self, initial_state, scan_func)

    def rebatch(self, batch_size: int, drop_remainder: bool = False) -> Dataset:
        """Re-splits batched elements into batches of `batch_size`."""
        return self.unbatch().batch(batch_size, drop_remainder)

    def bucket_by_sequence_length(self, element_length_func: Callable,
                                  bucket_boundaries: list, bucket_batch_sizes: list,
                                  padded_shapes: Any = None, padding_values: Any = None,
                                  pad_to_bucket_boundary: bool = False,
                                  no_padding: bool = False,
                                  drop_remainder: bool = False) -> Dataset:
        """Groups elements by length into buckets (bucket i: lengths in
        [boundaries[i-1], boundaries[i])) and emits padded batches of
        `bucket_batch_sizes[i]`; leftovers are flushed at the end."""
        from distflow.data import extra

        return extra._Bucket(self, element_length_func, bucket_boundaries, bucket_batch_sizes,
                             padded_shapes, padding_values, pad_to_bucket_boundary, no_padding,
                             drop_remainder)

    def group_by_window(self, key_func: Callable, reduce_func: Callable,
                        window_size: int | None = None,
                        window_size_func: Callable | None = None) -> Dataset:
        """Groups elements by `key_func` (an int64), and maps each full window (or the
        leftover at the end) with `reduce_func(key, window_dataset)`."""
        from distflow.data import extra

        return extra._GroupByWindow(self, key_func, reduce_func, window_size, window_size_func)

    def with_options(self, options: Any, name: str | None = None) -> Dataset:
        """The same dataset with `options` (a `tf.data.Options`) merged into its options."""
        from distflow.data import extra

        return extra._WithOptions(self, options)

    def options(self) -> Any:
        """The `tf.data.Options` in force for this dataset."""
        from distflow.data import extra

        return extra.options_of(self)

    def apply(self, transformation_func: Callable) -> Dataset:
        """`transformation_func(self)`, for chaining."""
        return transformation_func(self)

    def take_while(self, predicate: Callable) -> Dataset:
        """The elements up to (not including) the first for which `predicate` is False."""
        from distflow.data import extra

        return extra._TakeWhile(self, predicate)

    def unique(self) -> Dataset:
        """The elements (scalars) not seen before, in first-seen order."""
        from distflow.data import extra

        return extra._Unique(self)

    def ignore_errors(self, log_warning: bool = False) -> Dataset:
        """Drops elements whose production raises an error."""
        from distflow.data import extra

        return extra._IgnoreErrors(self)

    def get_single_element(self) -> Any:
        """The one element of a one-element dataset (ValueError otherwise)."""
        items = list(itertools.islice(self._iter_numpy(), 2))
        if len(items) != 1:
            raise ValueError(f"Dataset had {'no' if not items else 'more than one'} element; "
                             "get_single_element needs exactly one.")
        return _tensors(items[0])

    def save(self, path: str, compression: str | None = None, shard_func: Any = None,
             checkpoint_args: Any = None) -> None:
        """Writes the elements to the directory `path` (NumPy .npz files and a JSON
        description of the structure; no pickle). `Dataset.load(path)` reads it back."""
        from distflow.data import extra

        extra.save(self, path)

    def snapshot(self, path: str, compression: str | None = "AUTO", reader_func: Any = None,
                 shard_func: Any = None, name: str | None = None) -> Dataset:
        """Saves the first complete pass to `path`; later passes (and later runs) read it."""
        from distflow.data import extra

        return extra._Snapshot(self, path)

    @staticmethod
    def load(path: str, element_spec: Any = None, compression: str | None = None,
             reader_func: Any = None) -> Dataset:
        """A dataset of what `save` wrote to `path`."""
        from distflow.data import extra

        return extra._Loaded(path, element_spec)

    @staticmethod
    def list_files(file_pattern: Any, shuffle: bool | None = None, seed: int | None = None,
                   name: str | None = None) -> Dataset:
        """File names (bytes) matching the glob pattern(s); shuffled each epoch unless
        `shuffle=False` (as TF: the default shuffles). No match raises ValueError."""
        from distflow.data import extra

        return extra._ListFiles(file_pattern, shuffle, seed)

    @staticmethod
    def counter(start: int = 0, step: int = 1, dtype: Any = np.int64,
                name: str | None = None) -> Dataset:
        """start, start + step, ... forever."""
        from distflow.data import extra

        return extra._Counter(int(start), int(step), dtype)

    @staticmethod
    def random(seed: int | None = None, rerandomize_each_iteration: bool | None = None,
               name: str | None = None) -> Dataset:
        """An infinite stream of random non-negative int64 values."""
        from distflow.data import extra

        return extra._Random(seed)

    @staticmethod
    def sample_from_datasets(datasets: list, weights: Any = None, seed: int | None = None,
                             stop_on_empty_dataset: bool = False,
                             rerandomize_each_iteration: bool | None = None) -> Dataset:
        """Draws each element from a dataset picked at random with `weights`."""
        from distflow.data import extra

        return extra._Sample(datasets, weights, seed, stop_on_empty_dataset)

    @staticmethod
    def choose_from_datasets(datasets: list, choice_dataset: Dataset,
                             stop_on_empty_dataset: bool = True) -> Dataset:
        """Takes the next element of `datasets[c]` for each `c` of `choice_dataset`."""
        from distflow.data import extra

        return extra._Choose(datasets, choice_dataset, stop_on_empty_dataset)


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
        if not _peeking:
            self._epochs_started += 1
        return np.random.default_rng([self._seed, epoch])

    def _index_stream(self):
        stream = self._input._index_stream()
        if stream is None:
            return None
        source, make_chunks = stream
        return source, lambda: self._shuffled_chunks(make_chunks)

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


class _Shard(_Unary):
    def __init__(self, input_dataset: Dataset, num_shards: int, index: int) -> None:
        super().__init__(input_dataset)
        self._num_shards = _check_positive("num_shards", num_shards)
        if not _is_int(index) or not 0 <= index < num_shards:
            raise ValueError(f"`index` must be an int in [0, num_shards). Received: "
                             f"index={index!r}, num_shards={num_shards}")
        self._index = int(index)

    def _index_stream(self):
        stream = self._input._index_stream()
        if stream is None:
            return None
        source, make_chunks = stream
        return source, lambda: _stride_chunks(make_chunks(), self._index, self._num_shards)

    def _elements(self) -> Iterator[Any]:
        return itertools.islice(self._input._iter_numpy(), self._index, None, self._num_shards)

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if n < 0:
            return n
        return n // self._num_shards + (1 if self._index < n % self._num_shards else 0)


class _Take(_Unary):
    def __init__(self, input_dataset: Dataset, count: int) -> None:
        super().__init__(input_dataset)
        self._count = count

    def _stop(self) -> int | None:
        return None if self._count < 0 else self._count

    def _index_stream(self):
        stream = self._input._index_stream()
        if stream is None:
            return None
        source, make_chunks = stream
        return source, lambda: _slice_chunks(make_chunks(), 0, self._stop())

    def _elements(self) -> Iterator[Any]:
        return itertools.islice(self._input._iter_numpy(), self._stop())

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count < 0:
            return n
        if n == INFINITE_CARDINALITY:
            return self._count
        return n if n == UNKNOWN_CARDINALITY else min(n, self._count)


class _Skip(_Unary):
    def __init__(self, input_dataset: Dataset, count: int) -> None:
        super().__init__(input_dataset)
        self._count = count

    def _index_stream(self):
        stream = self._input._index_stream()
        if stream is None:
            return None
        source, make_chunks = stream
        if self._count < 0:
            return source, lambda: iter(())
        return source, lambda: _slice_chunks(make_chunks(), self._count, None)

    def _elements(self) -> Iterator[Any]:
        if self._count < 0:
            return iter(())
        return itertools.islice(self._input._iter_numpy(), self._count, None)

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count < 0:
            return 0
        return n if n < 0 else max(n - self._count, 0)


class _Repeat(_Unary):
    def __init__(self, input_dataset: Dataset, count: int) -> None:
        super().__init__(input_dataset)
        self._count = count

    def _index_stream(self):
        stream = self._input._index_stream()
        if stream is None:
            return None
        source, make_chunks = stream
        return source, lambda: _repeat(make_chunks, self._count)

    def _elements(self) -> Iterator[Any]:
        return _repeat(lambda: self._input._iter_numpy(), self._count)

    def cardinality(self) -> int:
        n = self._input.cardinality()
        if self._count < 0:
            return 0 if n == 0 else INFINITE_CARDINALITY
        return n if n < 0 else n * self._count


def _call(fn: Callable, element: Any) -> Any:
    """Calls a user function as tf.data does: a tuple element is unpacked."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


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


# ---------------------------------------------------------------- peeking

_peeking = False  # while True, shuffles do not count the iteration as an epoch


def _peek(dataset: Dataset) -> Any:
    """The first element, without advancing any shuffle's epoch counter."""
    global _peeking
    previous, _peeking = _peeking, True
    try:
        for element in dataset._iter_numpy():
            return element
    finally:
        _peeking = previous
    raise ValueError("Cannot infer `element_spec` of an empty dataset.")
