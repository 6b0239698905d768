"""Utilities, as `keras.utils`: `to_categorical`, `set_random_seed`, `normalize`, and (below)
the registration, serialization, data set, image, file and plotting helpers."""

from __future__ import annotations

import importlib
import random
from typing import Any

import numpy as np

import distflow.random as df_random


def to_categorical(y: Any, num_classes: int | None = None, dtype: Any = "float32") -> np.ndarray:
    """One-hot encodes integer class labels.

    Args:
        y: array-like of integer labels in `[0, num_classes)`. A trailing axis of
            size 1 (labels shaped `(N, 1)`) is dropped, as in Keras.
        num_classes: number of classes; defaults to `max(y) + 1`.
        dtype: dtype of the result.

    Returns:
        An array of shape `y.shape + (num_classes,)` with a single 1 per row.

    Example:
        >>> to_categorical([0, 2], num_classes=3)
        array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    labels = _integer_labels(y)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    num_classes = _check_num_classes(flat, num_classes)
    encoded = np.zeros((flat.size, num_classes), dtype=dtype)
    encoded[np.arange(flat.size), flat] = 1
    return encoded.reshape(*shape, num_classes)


def _integer_labels(y: Any) -> np.ndarray:
    numpy_method = getattr(y, "numpy", None)
    values = np.asarray(numpy_method() if callable(numpy_method) else y)
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and \
            np.all(values == np.round(values)):
        return values.astype(np.int64)
    raise ValueError("`to_categorical` needs integer class labels. Received: y of dtype "
                     f"{values.dtype} with values such as {values.reshape(-1)[:5].tolist()}")


def _check_num_classes(labels: np.ndarray, num_classes: int | None) -> int:
    if num_classes is None:
        if labels.size == 0:
            raise ValueError("`num_classes` is required when `y` is empty.")
        num_classes = int(labels.max()) + 1
    elif isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) \
            or num_classes <= 0:
        raise ValueError("`num_classes` must be a positive int. "
                         f"Received: num_classes={num_classes!r}")
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(f"Labels must be in [0, num_classes) = [0, {num_classes}). "
                         f"Received: label {int(bad[0])} ({bad.size} out of range)")
    return int(num_classes)


def set_random_seed(seed: int) -> None:
    """Seeds Python's `random`, NumPy's global RNG and `distflow.random`.

    After this, weight initialisation, dropout, `fit(shuffle=True)` and
    `Dataset.shuffle(seed=None)` are reproducible.

    Args:
        seed: an int in `[0, 2**32)`.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) \
            or not 0 <= seed < 2**32:
        raise ValueError("`seed` must be an int in [0, 2**32). "
                         f"Received: seed={seed!r} (of type {type(seed).__name__})")
    random.seed(int(seed))
    np.random.seed(int(seed))
    df_random.set_seed(int(seed))


def normalize(x: Any, axis: int = -1, order: int = 2) -> np.ndarray:
    """Scales `x` to unit `order`-norm along `axis` (rows of norm 0 are left at 0).

    Args:
        x: array-like of floats.
        axis: the axis to normalize along.
        order: the norm order (2: Euclidean).
    """
    values = np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
    norms = np.linalg.norm(values, ord=order, axis=axis, keepdims=True)
    return values / np.where(norms == 0, 1, norms)


def __getattr__(name: str) -> Any:
    # The names of `_ON_USE` (below): their modules are imported when first asked for.
    if name == "bounding_boxes":  # a submodule, as Keras's namespace
        return importlib.import_module(f"{__name__}.bounding_boxes")
    if name in _MODULE_OF:
        return getattr(importlib.import_module(_MODULE_OF[name]), name)
    raise AttributeError(f"module 'distflow.keras.utils' has no attribute {name!r}")


class DatasetCreator:
    """tf.keras's `utils.experimental.DatasetCreator`: a dataset built per worker by `fit`.

    `model.fit(DatasetCreator(dataset_fn), steps_per_epoch=...)` under a
    parameter-server strategy calls `dataset_fn(input_context)` once per worker
    (`input_context.input_pipeline_id` is the worker's index).

    Args:
        dataset_fn: `fn(input_context)` -> a dataset of (x, y[, sample_weight]) batches.
        input_options: accepted for TF compatibility.
    """

    def __init__(self, dataset_fn: Any, input_options: Any = None):
        if not callable(dataset_fn):
            raise TypeError(f"`dataset_fn` for `DatasetCreator` must be a callable. "
                            f"Received: dataset_fn={dataset_fn!r}")
        self.dataset_fn, self.input_options = dataset_fn, input_options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.dataset_fn(*args, **kwargs)


class experimental:  # noqa: N801  (TF's namespace `keras.utils.experimental`)
    """`keras.utils.experimental.DatasetCreator`."""

    DatasetCreator = DatasetCreator


# Keras 3's other `keras.utils` names; each module's docstring states its contract. The
# light ones are imported here; the others (which load layers, data sets, trainers) on
# first use, by `__getattr__` above, so `import distflow.keras.utils` stays light.
from distflow.keras.saving_registry import *  # noqa: E402, F403
from distflow.keras.utils.config import Config  # noqa: E402
from distflow.keras.utils.io_utils import (  # noqa: E402
    disable_interactive_logging,
    enable_interactive_logging,
    is_interactive_logging_enabled,
)
from distflow.keras.utils.sequence_utils import pad_sequences  # noqa: E402

_ON_USE = {
    "distflow.keras.backend": ("clear_session", "is_keras_tensor", "standardize_dtype"),
    "distflow.keras.serialization_lib": ("deserialize_keras_object", "legacy",
                                         "serialize_keras_object"),
    "distflow.keras.trainers.data_adapters": ("pack_x_y_sample_weight",
                                              "unpack_x_y_sample_weight"),
    "distflow.keras.utils.dataset_utils": ("split_dataset", "timeseries_dataset_from_array"),
    "distflow.keras.utils.directory_datasets": ("audio_dataset_from_directory",
                                                "image_dataset_from_directory",
                                                "text_dataset_from_directory"),
    "distflow.keras.utils.feature_space": ("FeatureSpace",),
    "distflow.keras.utils.file_utils": ("get_file",),
    "distflow.keras.utils.image_utils": ("array_to_img", "img_to_array", "load_img", "save_img"),
    "distflow.keras.utils.model_visualization": ("model_to_dot", "plot_model"),
    "distflow.keras.utils.py_dataset": ("PyDataset", "Sequence"),
    "distflow.keras.callbacks.progbar": ("Progbar",),
}
_MODULE_OF = {name: module for module, names in _ON_USE.items() for name in names}


def get_source_inputs(tensor: Any) -> list[Any]:
    """The `keras.Input` tensors `tensor` (a symbolic KerasTensor) is computed from.

    Follows each tensor's producing layer call back to the input layers, as Keras's
    `get_source_inputs`; an input tensor gives `[tensor]`.
    """
    node = getattr(tensor, "_node", None)
    if node is None or node.is_input:
        return [tensor]
    found: list[Any] = []
    for parent in node.input_tensors:
        found += [t for t in get_source_inputs(parent) if all(t is not f for f in found)]
    return found
