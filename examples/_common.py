"""Shared plumbing of the Fashion-MNIST examples: flags and data loading.

Kept out of the examples themselves so that each reads like the Keras script a
user would write; nothing here is needed to use distflow.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from distflow import keras


def parse_args(description: str, epochs: int, batch_size: int) -> argparse.Namespace:
    """The flags both examples take."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help="global batch under MirroredStrategy, per worker under async")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--data", default=None,
                        help="directory with the Fashion-MNIST IDX files (default: the "
                             "loader's search path: $DISTFLOW_DATA/fashion-mnist, ~/.distflow/"
                             "datasets/fashion-mnist, /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--synthetic", action="store_true",
                        help="train on a small generated stand-in instead of the real data")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training images (quick runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="save the trained model (.keras) here")
    return parser.parse_args()


def load_fashion_mnist(args: argparse.Namespace):
    """(x_train, y_train), (x_test, y_test) as float32 in [0, 1] and int labels."""
    if args.synthetic:
        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_synthetic(
            seed=args.seed)
    else:
        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data(
                path=args.data)
        except (FileNotFoundError, OSError, ValueError) as exc:
            sys.exit(f"{exc}\nOr run this example with --synthetic to train on a small "
                     "generated stand-in.")
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    return ((x_train.astype(np.float32) / 255.0, y_train.astype(np.int64)),
            (x_test.astype(np.float32) / 255.0, y_test.astype(np.int64)))
