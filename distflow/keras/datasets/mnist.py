"""MNIST handwritten digits, as `keras.datasets.mnist`.

The four IDX files are searched for as described in
`distflow.keras.datasets._files` (`path=`, `$DISTFLOW_DATA/mnist`,
`~/.distflow/datasets/mnist`, `/usr/share/datasets/mnist`) and otherwise
downloaded from the CVDF mirror on storage.googleapis.com used by TensorFlow.
"""

from __future__ import annotations

import os

from distflow.keras.datasets import _mnist_like
from distflow.keras.datasets._files import DatasetFiles

# SHA-256 of the published .gz files, as listed by TensorFlow Datasets
# (tensorflow_datasets/url_checksums/mnist.txt).
FILES = DatasetFiles(
    name="mnist",
    title="MNIST",
    sha256={
        "train-images-idx3-ubyte":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",),
)


def load_data(path: str | os.PathLike | None = None):
    """Loads MNIST: 60,000 training and 10,000 test images of digits 0-9.

    Args:
        path: a directory holding the IDX files (searched first; see the module doc).

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 arrays of shape (60000, 28, 28),
        (60000,), (10000, 28, 28) and (10000,).

    Raises:
        DatasetNotFoundError: the files are nowhere and cannot be downloaded.
        IdxFormatError: a file is damaged or truncated (its path is in the message).
    """
    return _mnist_like.load(FILES, path)
