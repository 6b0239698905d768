"""CIFAR-10 (60,000 32x32 colour images in 10 classes), as `keras.datasets.cifar10`.

Reads Keras's extracted batches (`~/.keras/datasets/cifar-10-batches-py-target/
cifar-10-batches-py/`, tf.keras 2's `cifar-10-batches-py/`, the same under
`$DISTFLOW_DATA`) or downloads Keras's archive; see `_keras_cache`. The batches
are Python pickles (CIFAR's own format), read with a restricted unpickler
that rebuilds NumPy arrays only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distflow.keras.datasets._keras_cache import KerasFile, load_pickle, locate

__all__ = ["load_data", "load_batch"]

FILE = KerasFile(
    title="CIFAR-10",
    names=("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
    origin="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    file_hash="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    archive="cifar-10-batches-py-target")


def load_batch(fpath: str | Path, label_key: str = "labels") -> tuple[np.ndarray, list]:
    """One CIFAR batch file: (uint8 images of shape (n, 3, 32, 32), labels)."""
    batch = {k.decode("utf8") if isinstance(k, bytes) else k: v
             for k, v in load_pickle(Path(fpath)).items()}
    data = np.asarray(batch["data"])
    return data.reshape(data.shape[0], 3, 32, 32), batch[label_key]


def images_and_labels(parts: list[tuple[np.ndarray, list]],
                      label_dtype: type = np.uint8) -> tuple[np.ndarray, np.ndarray]:
    """Batches joined: NHWC uint8 images and (n, 1) labels, as Keras returns them."""
    x = np.concatenate([p[0] for p in parts]).astype(np.uint8).transpose(0, 2, 3, 1)
    y = np.concatenate([np.asarray(p[1]) for p in parts]).astype(label_dtype).reshape(-1, 1)
    return x, y


def load_data():
    """Loads CIFAR-10: 50,000 training and 10,000 test images.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 arrays of shape (50000, 32, 32, 3),
        (50000, 1), (10000, 32, 32, 3) and (10000, 1).

    Raises:
        DatasetNotFoundError: the files are nowhere and cannot be downloaded.
    """
    path = locate(FILE)
    train = images_and_labels([load_batch(path / f"data_batch_{i}") for i in range(1, 6)])
    return train, images_and_labels([load_batch(path / "test_batch")])
