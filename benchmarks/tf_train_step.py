"""TF/Keras 3's `train_on_batch` of autodiff_bench.py's MLP (benchmarks only: TensorFlow is
never a dependency of distflow). Run by `autodiff_bench.py --tf-python PATH` in its own
process; prints one JSON line: per step, process CPU ms, median over the repeats.

    /tmp/tfenv/bin/python benchmarks/tf_train_step.py --batches 128 512
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def measure(batch: int, repeats: int, steps: int) -> dict:
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * steps, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch * steps)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(steps)]
    model.train_on_batch(*batches[0])  # traces
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        for xb, yb in batches:
            model.train_on_batch(xb, yb)
        times.append((time.process_time() - t0) / steps)
    return {"model": "mlp-tf-keras", "batch": batch,
            "tf_train_on_batch_ms": statistics.median(times) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)  # as the NumPy floor's BLAS
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rows = [measure(b, args.repeats, args.steps) for b in args.batches]
    print(json.dumps({"benchmark": "tf-train-on-batch", "rows": rows}))


if __name__ == "__main__":
    main()
