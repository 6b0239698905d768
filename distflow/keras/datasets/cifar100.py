"""CIFAR-100 (60,000 32x32 colour images, 100 fine / 20 coarse classes), as Keras's.

Reads Keras's extracted files (`~/.keras/datasets/cifar-100-python-target/
cifar-100-python/train` and `test`, or tf.keras 2's `cifar-100-python/`) with
the restricted unpickler; see `cifar10` and `_keras_cache`.
"""

from __future__ import annotations

import numpy as np

from distflow.keras.datasets._keras_cache import KerasFile, locate
from distflow.keras.datasets.cifar10 import images_and_labels, load_batch

__all__ = ["load_data"]

FILE = KerasFile(
    title="CIFAR-100",
    names=("cifar-100-python-target/cifar-100-python", "cifar-100-python"),
    origin="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    file_hash="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    archive="cifar-100-python-target")


def load_data(label_mode: str = "fine"):
    """Loads CIFAR-100 with the "fine" (100) or "coarse" (20) labels.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 arrays of shape (50000, 32, 32, 3),
        (50000, 1), (10000, 32, 32, 3) and (10000, 1); the labels are int64 as Keras's.

    Raises:
        ValueError: an unknown `label_mode`.
        DatasetNotFoundError: the files are nowhere and cannot be downloaded.
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError('`label_mode` must be one of `"fine"`, `"coarse"`. '
                         f"Received: label_mode={label_mode}.")
    path = locate(FILE)
    key = f"{label_mode}_labels"
    # Keras reshapes the label lists without a cast: int64, unlike CIFAR-10's uint8.
    return (images_and_labels([load_batch(path / "train", key)], np.int64),
            images_and_labels([load_batch(path / "test", key)], np.int64))
