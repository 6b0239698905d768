"""Loading a data set laid out like MNIST: four IDX files, 28x28 uint8 images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from distflow.keras.datasets._files import DatasetFiles, locate
from distflow.keras.datasets._idx import IdxFormatError, read_idx

FILE_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IMAGE_SHAPE = (28, 28)

Split = tuple[np.ndarray, np.ndarray]


def load(spec: DatasetFiles, path: str | os.PathLike | None) -> tuple[Split, Split]:
    """Finds (or downloads) the files of `spec` and reads them, checking every shape.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 images `(N, 28, 28)` and uint8
        labels `(N,)`, as `keras.datasets.*.load_data()` returns them.
    """
    files = locate(spec, path)
    train = _read_split(files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"])
    test = _read_split(files["t10k-images-idx3-ubyte"], files["t10k-labels-idx1-ubyte"])
    return train, test


def _read_split(images_path: Path, labels_path: Path) -> Split:
    images = _read_checked(images_path, (None, *IMAGE_SHAPE), "images")
    labels = _read_checked(labels_path, (None,), "labels")
    if len(images) != len(labels):
        raise IdxFormatError(labels_path, f"{len(labels)} labels for the {len(images)} images "
                                          f"of {images_path}")
    return images, labels


def _read_checked(path: Path, shape: tuple[int | None, ...], what: str) -> np.ndarray:
    array = read_idx(path)
    shape_ok = array.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(array.shape, shape))
    if array.dtype != np.uint8 or not shape_ok:
        expected = "(N, " + ", ".join(str(s) for s in shape[1:]) + ")" if len(shape) > 1 \
            else "(N,)"
        raise IdxFormatError(path, f"expected uint8 {what} of shape {expected}, found "
                                   f"{array.dtype} of shape {array.shape}")
    return array
