"""Data adapters: from what `fit`/`evaluate`/`predict` receive to batches of arrays.

In-memory arrays (`ArrayBatches`, drawn through index arrays: no copy of the data
set per epoch) and `distflow.data.Dataset`s or other re-iterables
(`DatasetBatches`). How rows are split between workers, shuffled and seeded is asked
of the `training_context.TrainingContext` given to them. Keras 3's
`unpack_x_y_sample_weight` / `pack_x_y_sample_weight` are here too, for custom steps
and for the strategies that feed `train_step` themselves.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from distflow import random
from distflow.data import Dataset, auto_shard
from distflow.keras import training_context
from distflow.keras.tree import flatten, map_structure
from distflow.tensor import Tensor

__all__ = ["ArrayBatches", "DatasetBatches", "as_tensors", "eval_batches", "expand_rank",
           "fit_batches", "is_dataset", "non_negative_int", "pack_x_y_sample_weight",
           "positive_int", "prepare_arrays", "step_data", "take", "to_array", "to_arrays",
           "to_numpy", "unpack_x_y_sample_weight"]


def to_array(x: Any) -> np.ndarray:
    """An ndarray for one input; float64 becomes float32 once here, not in every step.
    Strings (str, bytes) stay NumPy arrays: they feed the host-side preprocessing layers
    of models with string inputs, as in Keras."""
    arr = x.value if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "fiubUSO" or (arr.dtype.kind == "O" and not _all_strings(arr)):
        raise TypeError(f"Model data must be numeric or strings. Received an array of dtype "
                        f"{arr.dtype} (convert it with .astype('float32') first).")
    return arr


def _all_strings(arr: np.ndarray) -> bool:
    return all(isinstance(v, str | bytes) for v in arr.reshape(-1)[:64])


def to_arrays(data: Any) -> Any:
    """Arrays in the structure of `data`: an array, a list/tuple of arrays or a dict.

    A list whose items are all arrays is several inputs; any other list (of numbers)
    is one array, as Keras reads them.
    """
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: to_arrays(v) for k, v in data.items()}
    if isinstance(data, list | tuple) and data and all(
            isinstance(d, np.ndarray | Tensor | dict) for d in data):
        return [to_arrays(d) for d in data]
    return to_array(data)


def _num_rows(data: Any) -> list[int]:
    return [a.shape[0] if a.ndim else 1 for a in flatten(data) if a is not None]


def take(data: Any, index: Any) -> Any:
    """Rows `index` (a slice or an index array) of every array in `data`."""
    if data is None:
        return None
    if isinstance(data, np.ndarray):
        return data[index]
    return map_structure(lambda a: a[index], data)


def _check_cardinality(x: Any, y: Any, sample_weight: Any) -> int:
    sizes = {"x": _num_rows(x), "y": _num_rows(y), "sample_weight": _num_rows(sample_weight)}
    distinct = {n for v in sizes.values() for n in v}
    if len(distinct) > 1:
        detail = "\n".join(f"'{k}' sizes: {', '.join(map(str, v))}" for k, v in sizes.items()
                           if v)
        raise ValueError("Data cardinality is ambiguous. Make sure all arrays contain the same "
                         f"number of samples.\n{detail}")
    return distinct.pop() if distinct else 0


def to_numpy(t: Any) -> Any:
    """The array behind a tensor (or `np.asarray` of anything else)."""
    return t.value if isinstance(t, Tensor) else np.asarray(t)


def _split_validation(x: Any, y: Any, sample_weight: Any, fraction: float
                      ) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
    """Keras's rule: the last `fraction` of the rows (before any shuffling) validates."""
    n = _num_rows(x)[0]
    split_at = int(math.floor(n * (1.0 - fraction)))
    if split_at == 0 or split_at == n:
        raise ValueError(f"Training data contains {n} samples, which is not sufficient to split "
                         f"it into a validation and training set as specified by "
                         f"`validation_split={fraction}`. Either provide more data, or a "
                         "different value for the `validation_split` argument.")
    head, tail = slice(0, split_at), slice(split_at, None)
    return (tuple(take(d, head) for d in (x, y, sample_weight)),
            tuple(take(d, tail) for d in (x, y, sample_weight)))


def unpack_x_y_sample_weight(element: Any) -> tuple[Any, Any, Any]:
    """(x, y, sample_weight) from a data set element, as Keras unpacks it."""
    if isinstance(element, list):
        element = tuple(element)
    if not isinstance(element, tuple):
        return element, None, None
    if len(element) == 1:
        return element[0], None, None
    if len(element) == 2:
        return element[0], element[1], None
    if len(element) == 3:
        return element
    raise ValueError("Data set elements must be x, (x,), (x, y) or (x, y, sample_weight). "
                     f"Received a tuple of {len(element)} items.")


def positive_int(name: str, value: Any, allow_none: bool = True) -> int | None:
    """`value` as an int, refused with a Keras-style error unless it is positive (None allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """`value` as an int, refused with a Keras-style error if it is negative or not an int."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative int. Received: {name}={value!r}")
    return int(value)


def _worker_rows(n: int, ctx: training_context.TrainingContext) -> tuple[int, int]:
    """The [begin, end) rows of an n-row global batch that this worker trains on."""
    k, workers = ctx.worker_index, ctx.num_workers
    return k * n // workers, (k + 1) * n // workers


class ArrayBatches:
    """Batches of in-memory arrays, drawn through index arrays, for one worker.

    With `ctx.batch_size_is_global`, every worker shuffles identically, takes the
    same global batches and keeps its slice of each; otherwise rows are sharded
    (`worker_index::num_workers`) and `batch_size` is per worker.
    """

    def __init__(self, x: Any, y: Any, sample_weight: Any, batch_size: int, shuffle: Any,
                 ctx: training_context.TrainingContext, steps: int | None = None):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.n = _check_cardinality(x, y, sample_weight)
        self.batch_size, self.shuffle, self.ctx = batch_size, shuffle, ctx
        self.split_global = ctx.batch_size_is_global and ctx.num_workers > 1
        sharded = ctx.num_workers > 1 and not ctx.batch_size_is_global
        self.rows = np.arange(ctx.worker_index, self.n, ctx.num_workers) if sharded else None
        m = self.n if self.rows is None else len(self.rows)
        if sharded and ctx.drop_remainder:  # equal step counts on every worker
            m = self.n // ctx.num_workers
        full, rest = divmod(m, batch_size)
        self.steps = full + (1 if rest and not ctx.drop_remainder else 0)
        if steps is not None:
            self.steps = min(self.steps, steps)

    def first_x(self) -> Any:
        """The first row of the inputs (what builds an unbuilt model)."""
        return take(self.x, slice(0, 1))

    def _order(self, epoch: int) -> np.ndarray | None:
        """Row order of this epoch (None: rows in order, taken as slices)."""
        rows = self.rows
        if not self.shuffle or self.shuffle == "batch":
            return rows
        m = self.n if rows is None else len(rows)
        seed = self.ctx.shuffle_seed(epoch)
        # Unseeded: distflow's global generator, so `df.random.set_seed` makes `fit`
        # reproducible (as `tf.random.set_seed` does for Keras).
        perm = random.get_global_generator().permutation(m) if seed is None else \
            np.random.default_rng(seed).permutation(m)
        return perm if rows is None else rows[perm]

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[tuple[Any, Any, Any]]:
        """The batches of `epoch`, from its batch `skip` on."""
        order = self._order(epoch)
        b = self.batch_size
        for step in range(skip, self.steps):
            if order is None:
                index: Any = slice(step * b, min((step + 1) * b, self.n))
            else:
                index = order[step * b:(step + 1) * b]
            if self.split_global:
                size = (index.stop - index.start) if isinstance(index, slice) else len(index)
                begin, end = _worker_rows(size, self.ctx)
                index = slice(index.start + begin, index.start + end) \
                    if isinstance(index, slice) else index[begin:end]
            yield take(self.x, index), take(self.y, index), take(self.sample_weight, index)


class DatasetBatches:
    """Batches from a `distflow.data.Dataset` (or any re-iterable) yielding (x, y[, sw])."""

    def __init__(self, dataset: Any, ctx: training_context.TrainingContext,
                 steps: int | None, what: str = "x"):
        self.ctx = ctx
        self.split_global = ctx.batch_size_is_global and ctx.num_workers > 1
        if ctx.num_workers > 1 and not ctx.batch_size_is_global and hasattr(dataset, "shard"):
            dataset = auto_shard(dataset, ctx.num_workers, ctx.worker_index) \
                if isinstance(dataset, Dataset) else dataset.shard(ctx.num_workers,
                                                                   ctx.worker_index)
        self.dataset = dataset
        size = _cardinality(dataset)
        if size == -1 and steps is None:
            raise ValueError(f"`{what}` is an infinite data set (it repeats), so the number of "
                             "steps must be given: pass `steps_per_epoch` (or `steps` / "
                             "`validation_steps`).")
        self.steps = steps if steps is not None else (size if size >= 0 else None)
        self._persistent = steps is not None
        self._iterator: Iterator | None = None
        self._first: Any = None

    def first_x(self) -> Any:
        """The first row of the first element's inputs (read once, kept)."""
        if self._first is None:
            self._first = unpack_x_y_sample_weight(next(iter(self.dataset)))
        x = self._first[0]
        return map_structure(lambda a: np.asarray(a)[:1], x)

    def _next(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self.dataset)
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = None
            raise

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[tuple[Any, Any, Any]]:
        """The batches of `epoch`; the first `skip` are read and passed over."""
        if not self._persistent:  # one pass over the data set per epoch
            self._iterator = None
        produced = 0
        while self.steps is None or produced < self.steps:
            try:
                element = self._next()
            except StopIteration:
                if self._persistent and produced < self.steps:
                    warnings.warn("Your input ran out of data: the epoch ended after "
                                  f"{produced} of steps_per_epoch={self.steps} steps. Make sure "
                                  "the data set can produce `steps_per_epoch * epochs` batches "
                                  "(e.g. with .repeat()).", stacklevel=4)
                return
            produced += 1
            if produced > skip:
                yield self._split(unpack_x_y_sample_weight(element))

    def _split(self, batch: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        batch = tuple(None if b is None else to_arrays(b) for b in batch)
        if not self.split_global:
            return batch
        n = _num_rows(batch[0])[0]
        begin, end = _worker_rows(n, self.ctx)
        return tuple(take(b, slice(begin, end)) for b in batch)


def _cardinality(dataset: Any) -> int:
    """Number of elements, -1 for infinite, -2 for unknown."""
    if hasattr(dataset, "cardinality"):
        return int(dataset.cardinality())
    try:
        return len(dataset)
    except TypeError:
        return -2


def is_dataset(x: Any) -> bool:
    """True for a `distflow.data.Dataset`; a one-shot iterator is refused with the fix."""
    if isinstance(x, Iterator):
        raise TypeError(f"A Python iterator or generator ({type(x).__name__}) cannot be passed "
                        "as `x`: it can only be read once. Wrap it in "
                        "distflow.data.Dataset.from_generator(...) (a function returning a new "
                        "generator each epoch) or pass arrays.")
    return isinstance(x, Dataset)


def _class_weights(y: Any, class_weight: dict) -> np.ndarray:
    """Per-sample weights from `class_weight` (labels as ints or one-hot rows)."""
    if not isinstance(class_weight, dict):
        raise ValueError("`class_weight` must be a dict mapping class index to weight. "
                         f"Received: class_weight={class_weight!r}")
    if not isinstance(y, np.ndarray):
        raise ValueError("`class_weight` is only supported for models with a single output.")
    labels = y.argmax(axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    lookup = np.vectorize(lambda c: float(class_weight.get(int(c), 1.0)), otypes=[np.float32])
    return lookup(labels.astype(np.int64))


# =========================================================================== losses/metrics


def pack_x_y_sample_weight(x: Any, y: Any, sample_weight: Any) -> Any:
    """The batch `train_step` gets, as Keras packs it: `x`, `(x,)`, `(x, y)` or `(x, y, sw)`."""
    if y is None and sample_weight is None:
        return (x,) if isinstance(x, list | tuple) else x
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def step_data(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """The batch a step receives: the arrays as tensors, packed as Keras packs them."""
    return pack_x_y_sample_weight(as_tensors(x), as_tensors(y), as_tensors(sample_weight))


def as_tensors(structure: Any) -> Any:
    """Arrays of a batch wrapped (without copying) as the tensors Keras's steps receive."""
    if structure is None:
        return None
    if type(structure) is np.ndarray:  # the usual batch: one array
        return _as_tensor(structure)
    return map_structure(_as_tensor, structure)


def _as_tensor(a: Any) -> Any:
    """A numeric array as a tensor (no copy); strings and other leaves stay as they are."""
    return Tensor._wrap(a) if isinstance(a, np.ndarray) and a.dtype.kind in "fiub" else a



# --------------------------------------------------------------------------- the trainer's batches


def expand_rank(x: Any, input_shapes: list[tuple] | None) -> Any:
    """Keras's rule: an input one rank short of a model input whose last dimension is 1
    gets that axis ((N,) data for `Input(shape=(1,))` becomes (N, 1)).

    Args:
        x: the arrays given to the model.
        input_shapes: the shapes of a functional model's inputs (None: no rule applies).
    """
    if input_shapes is None:
        return x

    def expand(arr: Any, shape: tuple) -> Any:
        short = isinstance(arr, np.ndarray) and arr.ndim == len(shape) - 1
        return arr[..., None] if short and shape[-1] == 1 else arr
    if isinstance(x, np.ndarray) and len(input_shapes) == 1:
        return expand(x, input_shapes[0])
    if isinstance(x, list) and len(x) == len(input_shapes):
        return [expand(a, shape) for a, shape in zip(x, input_shapes)]
    return x


def prepare_arrays(x: Any, y: Any, sample_weight: Any, class_weight: Any, method: str,
                   loss: Any, input_shapes: list[tuple] | None) -> tuple[Any, Any, Any]:
    """(x, y, sample_weight) as arrays, checked, with `class_weight` folded into the weights.

    Args:
        x, y, sample_weight, class_weight: as given to `method`.
        method: the calling method's name (for the error messages).
        loss: the compiled loss (a missing `y` is an error when there is one).
        input_shapes: as for `expand_rank`.
    """
    x, y = to_arrays(x), to_arrays(y)
    if isinstance(x, list) and len(x) == 1:  # [x] for a single-input model, as Keras
        x = x[0]
    x = expand_rank(x, input_shapes)
    sample_weight = None if sample_weight is None else to_array(sample_weight)
    if y is None and loss is not None and method != "predict":
        raise ValueError(f"Target data is missing. Your model was compiled with "
                         f"loss={loss!r}, and therefore expects target data to be "
                         f"provided in `{method}()`.")
    _check_cardinality(x, y, sample_weight)
    if class_weight is not None:
        weights = _class_weights(y, class_weight)
        sample_weight = weights if sample_weight is None else sample_weight * weights
    return x, y, sample_weight


def _check_dataset_args(y: Any, batch_size: Any, sample_weight: Any, class_weight: Any,
                        validation_split: Any) -> None:
    given = {"y": y, "batch_size": batch_size, "sample_weight": sample_weight,
             "class_weight": class_weight, "validation_split": validation_split or None}
    bad = [k for k, v in given.items() if v is not None]
    if bad:
        raise ValueError(f"When `x` is a data set, {bad} must not be given: the data set "
                         "yields (x, y[, sample_weight]) batches already. Use arrays for "
                         "validation_split, or pass validation_data.")


def _check_validation_split(validation_split: Any) -> None:
    if isinstance(validation_split, bool) or not isinstance(
            validation_split, int | float) or not 0 <= validation_split < 1:
        raise ValueError("`validation_split` must be a float in [0, 1). Received: "
                         f"validation_split={validation_split!r}")


def fit_batches(ctx: training_context.TrainingContext, x: Any, y: Any, sample_weight: Any,
                class_weight: Any, batch_size: Any, shuffle: Any, steps_per_epoch: Any,
                validation_split: Any, validation_data: Any, validation_batch_size: Any,
                validation_steps: Any, loss: Any = None,
                input_shapes: list[tuple] | None = None) -> tuple[Any, Any]:
    """(training batches, validation batches or None) for `fit`'s arguments."""
    batch_size = positive_int("batch_size", batch_size)
    steps_per_epoch = positive_int("steps_per_epoch", steps_per_epoch)
    _check_validation_split(validation_split)
    val_arrays = None
    if x is None:
        raise ValueError("`fit` needs training data: pass `x` (and `y`).")
    if is_dataset(x):
        _check_dataset_args(y, batch_size, sample_weight, class_weight, validation_split)
        train: Any = DatasetBatches(x, ctx, steps_per_epoch)
    else:
        x, y, sample_weight = prepare_arrays(x, y, sample_weight, class_weight, "fit", loss,
                                             input_shapes)
        if validation_split and validation_data is None:
            (x, y, sample_weight), val_arrays = _split_validation(
                x, y, sample_weight, validation_split)
        train = ArrayBatches(x, y, sample_weight, batch_size or 32, shuffle, ctx,
                             steps_per_epoch)
    val = _validation_batches(validation_data, val_arrays, validation_batch_size or batch_size,
                              validation_steps, loss, input_shapes)
    return train, val


def _validation_batches(validation_data: Any, val_arrays: Any, batch_size: Any, steps: Any,
                        loss: Any, input_shapes: list[tuple] | None) -> Any:
    local = training_context.TrainingContext()  # the chief validates on all the data
    steps = positive_int("validation_steps", steps)
    if validation_data is None and val_arrays is None:
        return None
    if validation_data is not None and is_dataset(validation_data):
        return DatasetBatches(validation_data, local, steps, what="validation_data")
    if validation_data is not None:
        if not isinstance(validation_data, list | tuple) or len(validation_data) not in (2, 3):
            raise ValueError("`validation_data` must be a tuple (x_val, y_val) or (x_val, "
                             "y_val, val_sample_weight), or a data set. Received: "
                             f"{type(validation_data).__name__}")
        x_val, y_val, sw_val = unpack_x_y_sample_weight(tuple(validation_data))
        val_arrays = prepare_arrays(x_val, y_val, sw_val, None, "fit", loss, input_shapes)
    return ArrayBatches(*val_arrays, batch_size or 32, False, local, steps)


def eval_batches(x: Any, y: Any, sample_weight: Any, batch_size: Any, steps: Any, method: str,
                 loss: Any = None, input_shapes: list[tuple] | None = None) -> Any:
    """The batches of `evaluate` or `predict`: all the data, in order, on this process."""
    local = training_context.TrainingContext()
    batch_size = positive_int("batch_size", batch_size)
    steps = positive_int("steps", steps)
    if x is None:
        raise ValueError(f"`{method}` needs data: pass `x`.")
    if is_dataset(x):
        _check_dataset_args(y, batch_size, sample_weight, None, None)
        return DatasetBatches(x, local, steps)
    x, y, sample_weight = prepare_arrays(x, y, sample_weight, None, method, loss, input_shapes)
    return ArrayBatches(x, y, sample_weight, batch_size or 32, False, local, steps)
