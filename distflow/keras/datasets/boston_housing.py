"""Boston housing prices (506 samples, 13 features), as `keras.datasets.boston_housing`.

Reads Keras's `boston_housing.npz` (Keras's cache, `$DISTFLOW_DATA`, or `path=`
naming a file) or downloads it. The file holds numeric arrays only: no pickle.
"""

from __future__ import annotations

import os

import numpy as np

from distflow.keras.datasets._keras_cache import KerasFile, locate

__all__ = ["load_data", "read_xy", "shuffled_split"]


def load_data(path: str | os.PathLike = "boston_housing.npz", test_split: float = 0.2,
              seed: int = 113):
    """Loads the data shuffled with `seed` and split as Keras does.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: float arrays (404, 13), (404,), (102, 13),
        (102,) for the real file.
    """
    spec = KerasFile("Boston housing", (os.fspath(path),),
                     "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
                     "boston_housing.npz",
                     "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5")
    return shuffled_split(*read_xy(spec, path), test_split, seed)


def read_xy(spec: KerasFile, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The `x` and `y` arrays of a numeric `.npz` file (pickle disabled)."""
    with np.load(locate(spec, path), allow_pickle=False) as f:
        return f["x"], f["y"]


def shuffled_split(x: np.ndarray, y: np.ndarray, test_split: float, seed: int):
    """Keras's regression split: one RandomState(seed) shuffle, the first part for training."""
    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    x, y = x[indices], y[indices]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))
