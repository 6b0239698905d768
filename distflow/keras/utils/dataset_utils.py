"""Data set helpers of `keras.utils`: `timeseries_dataset_from_array`, `split_dataset`, and
the directory indexing the `*_dataset_from_directory` functions share.

Orders follow Keras exactly where Keras's order is NumPy's or Python's: the windows'
start positions are shuffled with `np.random.RandomState(seed)`, `split_dataset`
shuffles with Python's `random.Random(seed)`, and a directory's files are listed
class by class (sorted walk, sorted names) and shuffled with
`np.random.RandomState(seed)`, as Keras does.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from distflow import nest
from distflow.data import Dataset
from distflow.keras.utils.io_utils import print_msg


def timeseries_dataset_from_array(data: Any, targets: Any, sequence_length: int,
                                  sequence_stride: int = 1, sampling_rate: int = 1,
                                  batch_size: int | None = 128, shuffle: bool = False,
                                  seed: int | None = None, start_index: int | None = None,
                                  end_index: int | None = None) -> Dataset:
    """Batches of sliding windows over `data` (and the matching `targets`).

    Window `i` is `data[start + p_i + k * sampling_rate]` for `k < sequence_length`,
    with `p_i = i * sequence_stride` and `start = start_index or 0`; its target is
    `targets[start + p_i]`. Windows never reach `end_index` (default `len(data)`).

    Args:
        data: an array (or list) of timesteps on its first axis.
        targets: one target per timestep, or None (the dataset yields windows only).
        sequence_length: timesteps per window.
        sequence_stride: timesteps between the starts of successive windows.
        sampling_rate: timesteps between the rows of one window.
        batch_size: windows per batch (None: single windows).
        shuffle: shuffle the windows: their start positions with
            `np.random.RandomState(seed)` as Keras, then anew each epoch within a buffer
            of `8 * batch_size` (Keras does this with TensorFlow's generator, distflow
            with its own: that order differs).
        seed: the shuffling seed.
        start_index, end_index: the part of `data` windows are taken from.

    Returns:
        A `distflow.data.Dataset` of `windows` or `(windows, targets)` batches.
    """
    data = np.asarray(data)
    _check_timeseries_args(len(data), start_index, end_index, sampling_rate, sequence_stride)
    start = start_index or 0
    end = len(data) if end_index is None else end_index
    count = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)
        count = min(count, len(targets))
    positions = np.arange(0, max(count, 0), sequence_stride, dtype=np.int64)
    if shuffle:
        np.random.RandomState(np.random.randint(1e6) if seed is None else seed) \
            .shuffle(positions)
    offsets = np.arange(sequence_length) * sampling_rate
    window_data = data[start:end]
    window_targets = None if targets is None else targets[start:end]

    def windows(p: Any) -> Any:
        p = np.asarray(p)
        rows = window_data[p[..., None] + offsets]
        return rows if window_targets is None else (rows, window_targets[p])

    source = buffer_shuffled(positions, batch_size, seed if shuffle else None, shuffle)
    return (source if batch_size is None else source.batch(batch_size)).map(windows)


def buffer_shuffled(items: np.ndarray, batch_size: int | None, seed: Any,
                    shuffle: bool | None = None) -> Dataset:
    """`items` as a dataset, shuffled anew each epoch within a buffer of `8 * batch_size`
    (1024 unbatched) when `shuffle` (default: `seed is not None`), as Keras's pipelines."""
    source = Dataset.from_tensor_slices(items)
    if not (seed is not None if shuffle is None else shuffle):
        return source
    return source.shuffle(1024 if batch_size is None else 8 * batch_size, seed=seed)


def _check_timeseries_args(length: int, start_index: int | None, end_index: int | None,
                           sampling_rate: int, sequence_stride: int) -> None:
    if start_index and not 0 <= start_index < length:
        raise ValueError(f"`start_index` must be 0 or greater and lower than the length of the "
                         f"data. Received: start_index={start_index}, for data of length "
                         f"{length}")
    if end_index and (end_index <= (start_index or 0) or end_index >= length):
        raise ValueError("`end_index` must be higher than `start_index` and lower than the "
                         f"length of the data. Received: start_index={start_index}, "
                         f"end_index={end_index}, for data of length {length}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if not 0 < value < length:
            raise ValueError(f"`{name}` must be higher than 0 and lower than the length of the "
                             f"data. Received: {name}={value}, for data of length {length}")


def split_dataset(dataset: Any, left_size: int | float | None = None,
                  right_size: int | float | None = None, shuffle: bool = False,
                  seed: int | None = None) -> tuple[Dataset, Dataset]:
    """Splits samples into a left and a right data set, as Keras's `utils.split_dataset`.

    Args:
        dataset: an array, a tuple/list of arrays of one length, or an unbatched
            `distflow.data.Dataset`.
        left_size: a fraction in (0, 1) (rounded as Keras: `round(f * n)`) or a count;
            None: the complement of `right_size`.
        right_size: likewise; the right split is the *last* `right_size` samples.
        shuffle: shuffle the samples first (Python's `random.Random(seed)`, Keras's order).
        seed: the shuffling seed.

    Returns:
        `(left, right)`, two unbatched datasets of the same element structure.
    """
    samples = _as_samples(dataset)
    if left_size is None and right_size is None:
        raise ValueError("At least one of the `left_size` or `right_size` must be specified. "
                         "Received: left_size=None and right_size=None")
    if shuffle:
        random.Random(random.randint(0, int(1e6)) if seed is None else seed).shuffle(samples)
    left, right = _split_sizes(left_size, right_size, len(samples))
    return _from_samples(samples[:left]), _from_samples(samples[len(samples) - right:])


def _as_samples(dataset: Any) -> list[Any]:
    if isinstance(dataset, Dataset):
        return list(dataset.as_numpy_iterator())
    if isinstance(dataset, tuple | list) and dataset and all(
            hasattr(x, "__len__") and not isinstance(x, str) for x in dataset):
        arrays = [np.asarray(x) for x in dataset]
        if len({len(a) for a in arrays}) != 1:
            raise ValueError("The arrays of `dataset` must have the same length. Received "
                             f"lengths {[len(a) for a in arrays]}")
        return [tuple(a[i] for a in arrays) for i in range(len(arrays[0]))]
    if isinstance(dataset, np.ndarray):
        return list(dataset)
    raise TypeError("The `dataset` argument must be a `Dataset`, an array, or a list/tuple of "
                    f"arrays. Received: dataset={dataset!r} of type {type(dataset)}")


def _split_sizes(left: Any, right: Any, total: int) -> tuple[int, int]:
    sizes = {"left_size": left, "right_size": right}
    for name, size in sizes.items():
        if size is not None and (isinstance(size, bool) or not isinstance(size, int | float)
                                 or size < 0 or (isinstance(size, float) and size >= 1)
                                 or (isinstance(size, int) and size > total)):
            raise ValueError(f"`{name}` must be a float in [0, 1) or an int in [0, {total}] "
                             f"(the number of samples). Received: {name}={size!r}")
    left, right = (round(s * total) if isinstance(s, float) else s for s in (left, right))
    left = total - right if left is None else left
    right = total - left if right is None else right
    if left + right > total:
        raise ValueError(f"The sum of `left_size` and `right_size` should be smaller than "
                         f"the {total} samples. Received: left_size + right_size = "
                         f"{left + right}")
    if not left or not right:
        raise ValueError(f"With a dataset of {total} samples, left_size={left} and "
                         f"right_size={right}: one split would be empty. Adjust the sizes.")
    return int(left), int(right)


def _from_samples(samples: list[Any]) -> Dataset:
    first = samples[0]
    if isinstance(first, tuple | list | dict):
        columns = [np.array(column) for column in zip(*(nest.flatten(s) for s in samples))]
        return Dataset.from_tensor_slices(tuple(nest.pack_sequence_as(first, columns)))
    return Dataset.from_tensor_slices(np.array(samples))


# ----------------------------------------------------------------------- directories


def index_directory(directory: str, labels: Any, formats: tuple[str, ...],
                    class_names: Sequence[str] | None = None, shuffle: bool = True,
                    seed: int | None = None, follow_links: bool = False,
                    verbose: bool = True) -> tuple[list[str], Any, list[str] | None]:
    """`(file_paths, labels, class_names)` of the files under `directory`, Keras's order.

    Args:
        directory: with `labels="inferred"`, one subdirectory per class.
        labels: "inferred", None, or a list of labels (one per file, sorted order).
        formats: the lower-case extensions to keep (".png", ".txt", ...).
        class_names: the classes to use, in this order (a subset of the subdirectories).
        shuffle, seed: shuffle paths and labels with `np.random.RandomState(seed)`.
        follow_links: follow symbolic links to directories.
        verbose: print how many files were found.
    """
    if not os.path.isdir(directory):
        raise ValueError(f"`directory` must be an existing directory. Received: "
                         f"directory={directory!r}")
    subdirs = _class_dirs(directory, labels, class_names)
    filenames, label_list = [], []
    for index, subdir in enumerate(subdirs):
        found = _valid_files(os.path.join(directory, subdir), follow_links, formats)
        filenames += [os.path.join(subdir, path) if subdir else path for path in found]
        label_list += [index] * len(found)
    labels, class_names = _resolve_labels(labels, subdirs, label_list, len(filenames), directory)
    if verbose:
        print_msg(f"Found {len(filenames)} files." if labels is None else
                  f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    paths = [os.path.join(directory, name) for name in filenames]
    if shuffle:
        seed = np.random.randint(1e6) if seed is None else seed
        np.random.RandomState(seed).shuffle(paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return paths, labels, class_names


def _class_dirs(directory: str, labels: Any, class_names: Sequence[str] | None) -> list[str]:
    if labels != "inferred":
        if class_names is not None:
            raise ValueError("`class_names` can only be given with `labels='inferred'` (with "
                             "explicit labels the class names are the sorted labels). Received:"
                             f" labels={labels!r}, class_names={class_names!r}")
        return [""]
    subdirs = [name for name in sorted(os.listdir(directory))
               if os.path.isdir(os.path.join(directory, name)) and not name.startswith(".")]
    if class_names is not None:
        if not set(class_names) <= set(subdirs):
            raise ValueError("The `class_names` passed did not match the names of the "
                             f"subdirectories of the target directory. Expected: {subdirs} (or "
                             f"a subset of it), but received: class_names={class_names}")
        return list(class_names)
    return subdirs


def _valid_files(directory: str, follow_links: bool, formats: tuple[str, ...]) -> list[str]:
    found = []
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links),
                                 key=lambda entry: entry[0]):
        found += [os.path.relpath(os.path.join(root, name), directory)
                  for name in sorted(files) if name.lower().endswith(formats)]
    return found


def _resolve_labels(labels: Any, subdirs: list[str], inferred: list[int], count: int,
                    directory: str) -> tuple[Any, list[str] | None]:
    if labels == "inferred":
        return np.array(inferred, np.int32), subdirs
    if labels is None:
        return None, None
    if len(labels) != count:
        raise ValueError(f"Expected the lengths of `labels` to match the number of files in the "
                         f"target directory. len(labels) is {len(labels)} while we found "
                         f"{count} files in directory {directory}.")
    return np.asarray(labels), [str(label) for label in sorted(set(labels))]


def training_or_validation_split(samples: list[Any], labels: Any, validation_split: Any,
                                 subset: str | None) -> tuple[list[Any], Any]:
    """The last `int(validation_split * n)` samples for "validation", the rest for
    "training" (Keras's split); everything when `validation_split` is falsy."""
    if not validation_split:
        return samples, labels
    if subset not in ("training", "validation", "both"):
        raise ValueError('`subset` must be either "training", "validation" or "both" with '
                         f"`validation_split`. Received: subset={subset!r}")
    num_val = int(validation_split * len(samples))
    cut = slice(None, len(samples) - num_val) if subset == "training" else \
        slice(len(samples) - num_val, None)
    print_msg(f"Using {len(samples[cut])} files for {subset}.")
    return samples[cut], None if labels is None else labels[cut]


def labels_to_array(labels: Any, label_mode: str | None, num_classes: int) -> Any:
    """Labels as Keras encodes them: "int" int32, "categorical" one-hot float32,
    "binary" float32 of shape (n, 1)."""
    if label_mode is None or labels is None:
        return None
    if label_mode == "int":
        return np.asarray(labels, np.int32)
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, np.int64)]
    if label_mode == "binary":
        return np.asarray(labels, np.float32).reshape(-1, 1)
    raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or '
                     f"None. Received: label_mode={label_mode!r}")


def check_validation_split(validation_split: Any, subset: Any, shuffle: bool,
                           seed: Any) -> None:
    """Keras's argument checks for `validation_split`/`subset`."""
    if validation_split and not 0 < validation_split < 1:
        raise ValueError("`validation_split` must be between 0 and 1, received: "
                         f"{validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely. "
                         f"Received: validation_split={validation_split}, subset={subset}")
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide "
                         "a `seed` argument, to make sure that there is no overlap between the "
                         "training and validation subset.")
