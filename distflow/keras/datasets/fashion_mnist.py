"""Fashion-MNIST (Zalando article images), as `keras.datasets.fashion_mnist`.

The four IDX files are searched for as described in
`distflow.keras.datasets._files` (`path=`, `$DISTFLOW_DATA/fashion-mnist`,
`~/.distflow/datasets/fashion-mnist`, `/usr/share/datasets/fashion-mnist`) and
otherwise downloaded from Zalando's S3 bucket (or the GitHub repository).

`load_synthetic` makes a small generated stand-in with the same shapes.
"""

from __future__ import annotations

import os

from distflow.keras.datasets import _mnist_like
from distflow.keras.datasets._files import DatasetFiles
from distflow.keras.datasets.synthetic import load_synthetic

# SHA-256 of the published .gz files, as listed by TensorFlow Datasets
# (tensorflow_datasets/url_checksums/fashion_mnist.txt).
FILES = DatasetFiles(
    name="fashion-mnist",
    title="Fashion-MNIST",
    sha256={
        "train-images-idx3-ubyte":
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte":
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte":
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte":
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
             "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/"
             "fashion/"),
)

__all__ = ["load_data", "load_synthetic"]


def load_data(path: str | os.PathLike | None = None):
    """Loads Fashion-MNIST: 60,000 training and 10,000 test images in 10 classes.

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
