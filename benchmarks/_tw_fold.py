"""Training script used by benchmarks/train_bench.py (run directly or under the launcher).

Trains the Fashion-MNIST MLP 784-256-128-10 (ReLU, Adam 1e-3) with `model.fit` under
whatever strategy `distflow.distribute.get_strategy()` returns, then prints one JSON
line from the chief: training samples per second (all workers together), seconds per
epoch and test accuracy.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import distflow as df
from distflow.keras import layers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    df.random.set_seed(args.seed)
    (x, y), (xt, yt) = df.keras.datasets.fashion_mnist.load_data(path=args.data)
    x = x.reshape(-1, 784).astype(np.float32) / 255.0
    xt = xt.reshape(-1, 784).astype(np.float32) / 255.0
    strategy = df.distribute.get_strategy()
    with strategy.scope():
        model = df.keras.Sequential([
            layers.Dense(256, activation="relu", input_shape=(784,)),
            layers.Dropout(0.2),  # the network of examples/fashion_mnist_mlp.py
            layers.Dense(128, activation="relu"),
            layers.Dense(10),
        ])
        model.compile(optimizer=df.keras.optimizers.Adam(1e-3),
                      loss=df.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        if strategy.worker_index > 0:
            df.random.set_seed(args.seed * 7919 + strategy.worker_index)
        start = time.perf_counter()
        model.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
        seconds = time.perf_counter() - start
    if strategy.is_chief:
        _, accuracy = model.evaluate(xt, yt, batch_size=1000, verbose=0)
        print(json.dumps({"samples_per_s": args.epochs * len(x) / seconds,
                          "s_per_epoch": seconds / args.epochs,
                          "test_accuracy": float(accuracy)}), flush=True)


if __name__ == "__main__":
    main()
