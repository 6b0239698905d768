"""The `Dataset` API: its public methods, and how a transformation is found.

Each method creates the dataset class (or calls the function) that implements it,
looked up by name in `_IMPLEMENTATIONS`: `transforms`, `extra`, `files` and
`threads` define those classes as subclasses of `Dataset` and register them with
`@implementation`, so this module imports none of them (they import it).
`distflow.data.dataset` imports them all, and every import of `distflow.data`
runs it first, so the table is complete before a dataset is built.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from distflow.data.structure import (
    AUTOTUNE,
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    _check_callable,
    _check_count,
    _check_positive,
    _is_int,
    _peek,
    _spec_of,
    _tensors,
)

_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {}


def implementation(obj: Any) -> Any:
    """Registers a class or function under its name as the implementation of a method."""
    _IMPLEMENTATIONS[obj.__name__] = obj
    return obj


def _impl(name: str) -> Callable[..., Any]:
    return _IMPLEMENTATIONS[name]


class DatasetSources:
    """`Dataset`'s static constructors (`from_tensor_slices`, `range`, `zip`, files, ...)."""

    @staticmethod
    def from_tensor_slices(tensors: Any) -> Dataset:
        """One element per row of the given arrays (sliced along their first axis).

        Args:
            tensors: an array, or a tuple/dict nest of arrays with the same first
                dimension, e.g. `(x, y)` or `{"image": x, "label": y}`. Lists are
                converted to arrays, as in `tf.data`. Arrays are not copied.
        """
        return _impl("_TensorSlices")(tensors)

    @staticmethod
    def from_tensors(tensors: Any) -> Dataset:
        """A dataset of a single element: `tensors` itself."""
        return _impl("_FromTensors")(tensors)

    @staticmethod
    def range(*args: int, dtype: Any = np.int64) -> Dataset:
        """Like Python's `range(stop)` / `range(start, stop[, step])`, as int64 scalars."""
        return _impl("_Range")(range(*args), np.dtype(dtype))

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
        return _impl("from_generator")(generator, output_types, output_shapes, args,
                                    output_signature)

    @staticmethod
    def zip(*datasets: Any, name: str | None = None) -> Dataset:
        """Elements are tuples (or dicts) of one element from each dataset.

        Accepts `zip((a, b))`, `zip({"x": a, "y": b})` or `zip(a, b)`.
        """
        if len(datasets) == 1:
            return _impl("_Zip")(datasets[0])
        return _impl("_Zip")(tuple(datasets))

    @staticmethod
    def load(path: str, element_spec: Any = None, compression: str | None = None,
             reader_func: Any = None) -> Dataset:
        """A dataset of what `save` wrote to `path`."""
        return _impl("_Loaded")(path, element_spec)

    @staticmethod
    def list_files(file_pattern: Any, shuffle: bool | None = None, seed: int | None = None,
                   name: str | None = None) -> Dataset:
        """File names (bytes) matching the glob pattern(s); shuffled each epoch unless
        `shuffle=False` (as TF: the default shuffles). No match raises ValueError."""
        return _impl("_ListFiles")(file_pattern, shuffle, seed)

    @staticmethod
    def counter(start: int = 0, step: int = 1, dtype: Any = np.int64,
                name: str | None = None) -> Dataset:
        """start, start + step, ... forever."""
        return _impl("_Counter")(int(start), int(step), dtype)

    @staticmethod
    def random(seed: int | None = None, rerandomize_each_iteration: bool | None = None,
               name: str | None = None) -> Dataset:
        """An infinite stream of random non-negative int64 values."""
        return _impl("_Random")(seed)

    @staticmethod
    def sample_from_datasets(datasets: list, weights: Any = None, seed: int | None = None,
                             stop_on_empty_dataset: bool = False,
                             rerandomize_each_iteration: bool | None = None) -> Dataset:
        """Draws each element from a dataset picked at random with `weights`."""
        return _impl("_Sample")(datasets, weights, seed, stop_on_empty_dataset)

    @staticmethod
    def choose_from_datasets(datasets: list, choice_dataset: Dataset,
                             stop_on_empty_dataset: bool = True) -> Dataset:
        """Takes the next element of `datasets[c]` for each `c` of `choice_dataset`."""
        return _impl("_Choose")(datasets, choice_dataset, stop_on_empty_dataset)


class Dataset(DatasetSources):
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

    def _index_stream(self) -> tuple[Any, Callable[[], Iterator[np.ndarray]]] | None:
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
        return _impl("_Shuffle")(self, buffer_size, seed, reshuffle_each_iteration)

    def batch(self, batch_size: int, drop_remainder: bool = False,
              num_parallel_calls: int | None = None, deterministic: bool | None = None
              ) -> Dataset:
        """Stacks consecutive elements into batches along a new first axis.

        `num_parallel_calls` and `deterministic` are accepted for compatibility and
        ignored (batches are gathered in the iterating thread, in order).
        """
        return _impl("_Batch")(self, batch_size, drop_remainder)

    def unbatch(self) -> Dataset:
        """Splits each element along its first axis (the inverse of `batch`)."""
        return _impl("_Unbatch")(self)

    def shard(self, num_shards: int, index: int) -> Dataset:
        """Keeps elements `index, index + num_shards, index + 2 * num_shards, ...`."""
        return _impl("_Shard")(self, num_shards, index)

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
            if num_parallel_calls != AUTOTUNE:
                _check_positive("num_parallel_calls", num_parallel_calls)
            return _impl("_ParallelMap")(self, map_func, num_parallel_calls)
        return _impl("_Map")(self, map_func)

    def filter(self, predicate: Callable) -> Dataset:
        """Keeps the elements for which `predicate` (called like `map_func`) is True."""
        return _impl("_Filter")(self, _check_callable("predicate", predicate))

    def repeat(self, count: int | None = None) -> Dataset:
        """Repeats the dataset `count` times (None or -1: forever), reshuffling each pass."""
        return _impl("_Repeat")(self, -1 if count is None else _check_count("count", count))

    def take(self, count: int) -> Dataset:
        """The first `count` elements (-1: all)."""
        return _impl("_Take")(self, _check_count("count", count))

    def skip(self, count: int) -> Dataset:
        """All but the first `count` elements (-1: skip everything)."""
        return _impl("_Skip")(self, _check_count("count", count))

    def prefetch(self, buffer_size: int) -> Dataset:
        """Produces up to `buffer_size` elements ahead in a background thread (AUTOTUNE: 2),
        so the pipeline's work overlaps the consumer's (training steps release the GIL
        in NumPy). Errors in the pipeline are re-raised in the iterating thread."""
        if not _is_int(buffer_size) or buffer_size < AUTOTUNE:
            raise ValueError("`buffer_size` must be a non-negative int or AUTOTUNE (-1). "
                             f"Received: buffer_size={buffer_size!r}")
        return _impl("_Prefetch")(self, buffer_size)

    def cache(self, filename: str = "") -> Dataset:
        """Keeps the elements of the first complete pass in memory and replays them.

        A dataset of array rows is already in memory, so this is then a no-op.
        Only the in-memory cache is supported (`filename` must be empty).
        """
        if filename:
            raise ValueError("Only the in-memory cache is supported: call `cache()` "
                             f"without a file name. Received: filename={filename!r}")
        return _impl("_Cache")(self)

    def concatenate(self, dataset: Dataset) -> Dataset:
        """The elements of this dataset followed by those of `dataset`."""
        return _impl("_Concatenate")(self, dataset)

    # ----- the rest of the tf.data API (implemented in extra.py, files.py, threads.py)

    def padded_batch(self, batch_size: int, padded_shapes: Any = None,
                     padding_values: Any = None, drop_remainder: bool = False) -> Dataset:
        """Batches elements of different shapes, padding each array to the batch's largest
        shape (or to `padded_shapes`, where None/-1 means the largest) with
        `padding_values` (default 0, b"" for strings)."""
        return _impl("_PaddedBatch")(self, batch_size, padded_shapes, padding_values,
                                  drop_remainder)

    def flat_map(self, map_func: Callable) -> Dataset:
        """Maps each element to a dataset and concatenates those datasets."""
        return _impl("_FlatMap")(self, map_func)

    def interleave(self, map_func: Callable, cycle_length: int | None = None,
                   block_length: int = 1, num_parallel_calls: int | None = None,
                   deterministic: bool | None = None) -> Dataset:
        """Maps elements to datasets and takes `block_length` elements from each of
        `cycle_length` open datasets in turn (TF's order; default cycle: CPU count)."""
        return _impl("_Interleave")(self, map_func, cycle_length, block_length)

    def window(self, size: int, shift: int | None = None, stride: int = 1,
               drop_remainder: bool = False) -> Dataset:
        """Elements are windows: the element structure with a Dataset of `size`
        items (every `stride`-th) per component; windows start `shift` apart."""
        return _impl("_Window")(self, size, shift, stride, drop_remainder)

    def enumerate(self, start: int = 0) -> Dataset:
        """Elements are `(index, element)` with int64 indices from `start`."""
        return Dataset.zip((_impl("_Counter")(int(start), 1, np.int64), self))

    def reduce(self, initial_state: Any, reduce_func: Callable) -> Any:
        """Folds `reduce_func(state, element)` over the elements; returns the final state."""
        return _impl("reduce")(self, initial_state, reduce_func)

    def scan(self, initial_state: Any, scan_func: Callable) -> Dataset:
        """Elements are the outputs of `scan_func(state, element) -> (state, output)`."""
        return _impl("_Scan")(self, initial_state, scan_func)

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
        return _impl("_Bucket")(self, element_length_func, bucket_boundaries, bucket_batch_sizes,
                             padded_shapes, padding_values, pad_to_bucket_boundary, no_padding,
                             drop_remainder)

    def group_by_window(self, key_func: Callable, reduce_func: Callable,
                        window_size: int | None = None,
                        window_size_func: Callable | None = None) -> Dataset:
        """Groups elements by `key_func` (an int64), and maps each full window (or the
        leftover at the end) with `reduce_func(key, window_dataset)`."""
        return _impl("_GroupByWindow")(self, key_func, reduce_func, window_size, window_size_func)

    def with_options(self, options: Any, name: str | None = None) -> Dataset:
        """The same dataset with `options` (a `tf.data.Options`) merged into its options."""
        return _impl("_WithOptions")(self, options)

    def options(self) -> Any:
        """The `tf.data.Options` in force for this dataset."""
        return _impl("options_of")(self)

    def apply(self, transformation_func: Callable) -> Dataset:
        """`transformation_func(self)`, for chaining."""
        return transformation_func(self)

    def take_while(self, predicate: Callable) -> Dataset:
        """The elements up to (not including) the first for which `predicate` is False."""
        return _impl("_TakeWhile")(self, predicate)

    def unique(self) -> Dataset:
        """The elements (scalars) not seen before, in first-seen order."""
        return _impl("_Unique")(self)

    def ignore_errors(self, log_warning: bool = False) -> Dataset:
        """Drops elements whose production raises an error."""
        return _impl("_IgnoreErrors")(self)

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
        _impl("save")(self, path)

    def snapshot(self, path: str, compression: str | None = "AUTO", reader_func: Any = None,
                 shard_func: Any = None, name: str | None = None) -> Dataset:
        """Saves the first complete pass to `path`; later passes (and later runs) read it."""
        return _impl("_Snapshot")(self, path)
