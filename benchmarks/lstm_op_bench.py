"""The whole-sequence LSTM op alone, at layers_bench's shapes: forward, and the backward
of each fresh forward (the last step's gradient only, as `return_sequences=False`).

Prints the 10th percentile and the median over the calls, in ms (`time.perf_counter`).
Compare checkouts by alternating them:

    for d in /tmp/base .; do OMP_NUM_THREADS=2 PYTHONPATH=$d \\
        python benchmarks/lstm_op_bench.py --tag $d; done
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from distflow.keras.layers import recurrent_sequence

BATCH, STEPS, FEATURES, UNITS = 64, 50, 32, 128


def inputs(batch: int = BATCH) -> tuple:
    """(x, kernel, recurrent, bias, h0, c0) and the upstream gradient, float32."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((batch, STEPS, FEATURES)).astype(f32)
    kernel = (0.1 * rng.standard_normal((FEATURES, 4 * UNITS))).astype(f32)
    recurrent = (0.1 * rng.standard_normal((UNITS, 4 * UNITS))).astype(f32)
    zeros = np.zeros((batch, UNITS), f32)
    g = rng.standard_normal((batch, 2 * UNITS)).astype(f32)
    return (x, kernel, recurrent, np.zeros(4 * UNITS, f32), zeros, zeros.copy()), g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--batch", type=int, default=BATCH,
                        help="e.g. half the batch on one thread: what each twin runs")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    arrays, g = inputs(args.batch)
    forward, backward = [], []
    for call in range(args.calls + 5):
        start = time.perf_counter()
        _, res = recurrent_sequence._lstm_seq_forward(*arrays, last_only=True)
        middle = time.perf_counter()
        recurrent_sequence._lstm_seq_backward(g, res)
        if call >= 5:
            forward.append(middle - start)
            backward.append(time.perf_counter() - middle)
    cut = args.calls // 10
    for times in (forward, backward):
        times.sort()
    print(f"{args.tag} forward {1e3 * forward[cut]:.2f} / {1e3 * forward[len(forward) // 2]:.2f}"
          f" ms, backward {1e3 * backward[cut]:.2f} / {1e3 * backward[len(backward) // 2]:.2f} ms"
          " (10th percentile / median)")


if __name__ == "__main__":
    main()
