"""One Keras `train_on_batch` step alone in its process: a layers_bench case, a
Transformer block or an MLP; prints the fastest and median step and the median process
CPU time per step (ms). Run one process per checkout and thread count, alternating:

    OMP_NUM_THREADS=2 PYTHONPATH=<checkout> python benchmarks/keras_step.py mha
    OMP_NUM_THREADS=2 python benchmarks/keras_step.py block
    OMP_NUM_THREADS=2 python benchmarks/keras_step.py mlp --batch 512

`block`: MultiHeadAttention(4 heads, key_dim 32) over 64 tokens of width 128, residual,
LayerNormalization, Dense 512 ReLU, Dense 128, residual, LayerNormalization, global
average pooling, Dense 10, batch 32. `mlp`: Dense 256 ReLU, Dense 128 ReLU, Dense 10 on
784 features (batch 128 unless `--batch`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import layers_bench  # noqa: E402

import distflow.keras as keras  # noqa: E402


def block_model():
    """The Transformer block of the module docstring, compiled."""
    layers = keras.layers
    inp = keras.Input((64, 128))
    attended = layers.MultiHeadAttention(num_heads=4, key_dim=32)(inp, inp)
    h = layers.LayerNormalization()(layers.Add()([inp, attended]))
    f = layers.Dense(128)(layers.Dense(512, activation="relu")(h))
    h = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(layers.Add()([h, f])))
    return compiled(keras.Model(inp, layers.Dense(10)(h)))


def mlp_model():
    """The MLP of the module docstring, compiled."""
    layers = keras.layers
    return compiled(keras.Sequential([
        keras.Input((784,)), layers.Dense(256, activation="relu"),
        layers.Dense(128, activation="relu"), layers.Dense(10)]))


def compiled(model):
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def stepper(case: str, batch: int):
    """One train_on_batch of the case's model on fixed random data."""
    if case in layers_bench.CASES:
        return layers_bench.keras_stepper(keras, case)
    rng = np.random.default_rng(0)
    shape = (32, 64, 128) if case == "block" else (batch, 784)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 10, shape[0])
    model = block_model() if case == "block" else mlp_model()
    return lambda: model.train_on_batch(x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=[*layers_bench.CASES, "block", "mlp"])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--batch", type=int, default=128, help="the MLP's batch")
    args = parser.parse_args()
    step = stepper(args.case, args.batch)
    walls = layers_bench.timed(step, args.steps, warmup=10)
    cpus = layers_bench.timed(step, args.steps, warmup=0, clock=time.process_time)
    print(f"{args.case}: fastest {1e3 * min(walls):.2f} ms, median "
          f"{1e3 * statistics.median(walls):.2f} ms, CPU median "
          f"{1e3 * statistics.median(cpus):.2f} ms")


if __name__ == "__main__":
    main()
