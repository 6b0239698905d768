"""Data sets, as `keras.datasets`: `mnist.load_data()`, `fashion_mnist.load_data()`.

Both read the original IDX files (gzip or raw) from the first place that has
them (`path=`, `$DISTFLOW_DATA`, `~/.distflow/datasets`, `/usr/share/datasets`)
or download them with a checksum check; see `distflow.keras.datasets._files`.
`synthetic.load_synthetic()` (also `fashion_mnist.load_synthetic`) generates a
small stand-in for runs without the data.

`cifar10`, `cifar100`, `imdb`, `reuters`, `boston_housing` and
`california_housing` read the files
Keras caches (`~/.keras/datasets/`, also `$DISTFLOW_DATA`) with Keras's
loaders' exact processing; see `distflow.keras.datasets._keras_cache`.
"""

from distflow.keras.datasets import (
    boston_housing,
    california_housing,
    cifar10,
    cifar100,
    fashion_mnist,
    imdb,
    mnist,
    reuters,
    synthetic,
)
from distflow.keras.datasets._files import DatasetNotFoundError
from distflow.keras.datasets._idx import IdxFormatError, read_idx
from distflow.keras.datasets.synthetic import load_synthetic

__all__ = ["DatasetNotFoundError", "IdxFormatError", "boston_housing", "california_housing",
           "cifar10", "cifar100",
           "fashion_mnist", "imdb", "load_synthetic", "mnist", "read_idx", "reuters",
           "synthetic"]
