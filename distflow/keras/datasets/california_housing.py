"""California housing prices (20,640 districts, 8 features), as Keras's loader.

Reads Keras's `california_housing.npz` (Keras's cache, `$DISTFLOW_DATA`, or
`path=` naming a file) or downloads it. Numeric arrays only: no pickle.
"""

from __future__ import annotations

import os

from distflow.keras.datasets._keras_cache import KerasFile
from distflow.keras.datasets.boston_housing import read_xy, shuffled_split

__all__ = ["load_data"]


def load_data(version: str = "large", path: str | os.PathLike = "california_housing.npz",
              test_split: float = 0.2, seed: int = 113):
    """Loads the data ("small": the first 600 districts) shuffled and split as Keras does.

    Raises:
        ValueError: `test_split` outside [0, 1) or an unknown `version`.
    """
    if not 0 <= test_split < 1:
        raise ValueError(f"Invalid `test_split` argument: {test_split}. It must be between 0 "
                         "and 1 (exclusive of 1).")
    if version not in ("small", "large"):
        raise ValueError(f"Argument `version` must be one of 'small', 'large'. Received: "
                         f"version={version}")
    spec = KerasFile("California housing", (os.fspath(path),),
                     "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
                     "california_housing.npz",
                     "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f")
    x, y = read_xy(spec, path)
    if version == "small":
        x, y = x[:600], y[:600]
    return shuffled_split(x, y, test_split, seed)
