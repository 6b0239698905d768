"""Input pipeline throughput: `distflow.data.Dataset` against a hand-written NumPy loop.

Each case runs one epoch over Fashion-MNIST-sized arrays (60,000 x 784 float32
images, int64 labels; generated, the values do not matter) through a Dataset
pipeline and through the NumPy loop a user would write for the same batches,
interleaved, and reports the median seconds per epoch and their ratio.

    python benchmarks/data_bench.py [--rows 60000] [--repeats 5] [--batch-size 128]

A second table measures overlap, each case against the same pipeline without it:
`prefetch(2)` (the pipeline runs in a background thread while the consumer works)
and `map(num_parallel_calls=2)` (two threads apply the function), with NumPy work
that releases the GIL (a 256x256 float32 matmul chain per element on one BLAS
thread). The ideal ratio is about 0.5 on 2 free cores. A third case has a consumer
that waits 2 ms per element instead of computing (as a worker waits for the
parameter servers): there the overlap needs no second core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread: overlap must come from the pipeline

import numpy as np  # noqa: E402

from distflow.data import Dataset  # noqa: E402


def numpy_shuffled(x: np.ndarray, y: np.ndarray, batch: int, seed: int,
                   shard: tuple[int, int] = (1, 0)) -> Iterable:
    order = np.random.default_rng(seed).permutation(len(x))[shard[1]::shard[0]]
    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        yield x[rows], y[rows]


def numpy_in_order(x: np.ndarray, y: np.ndarray, batch: int) -> Iterable:
    for start in range(0, len(x), batch):
        yield x[start:start + batch], y[start:start + batch]


def numpy_scaled(x: np.ndarray, y: np.ndarray, batch: int, seed: int) -> Iterable:
    for xb, yb in numpy_shuffled(x, y, batch, seed):
        yield xb * 2.0, yb


def cases(x: np.ndarray, y: np.ndarray, batch: int) -> dict[str, tuple[Callable, Callable]]:
    """name -> (make the Dataset epoch iterator, make the NumPy epoch iterator)."""
    n = len(x)
    full = Dataset.from_tensor_slices((x, y)).shuffle(n, seed=0).batch(batch)
    ordered = Dataset.from_tensor_slices((x, y)).batch(batch)
    sharded = Dataset.from_tensor_slices((x, y)).shuffle(n, seed=0).shard(2, 0).batch(batch)
    reservoir = Dataset.from_tensor_slices((x, y)).shuffle(10_000, seed=0).batch(batch)
    mapped = full.map(lambda xb, yb: (xb * 2.0, yb))
    return {
        "shuffle(full)+batch": (lambda: iter(full), lambda: numpy_shuffled(x, y, batch, 0)),
        "batch (in order)": (lambda: iter(ordered), lambda: numpy_in_order(x, y, batch)),
        "shuffle+shard(2,0)+batch": (lambda: iter(sharded),
                                     lambda: numpy_shuffled(x, y, batch, 0, (2, 0))),
        "shuffle(10000)+batch": (lambda: iter(reservoir), lambda: numpy_shuffled(x, y, batch, 0)),
        "shuffle+batch+map(x*2)": (lambda: iter(mapped), lambda: numpy_scaled(x, y, batch, 0)),
    }


def epoch_seconds(make_iterator: Callable[[], Iterable]) -> float:
    start = time.perf_counter()
    rows = 0
    for xb, _ in make_iterator():
        rows += len(xb)
    assert rows > 0
    return time.perf_counter() - start


def _work(a: np.ndarray, rounds: int = 6) -> np.ndarray:
    """GIL-free NumPy work: a chain of 256x256 matmuls (about 1 ms on one core)."""
    for _ in range(rounds):
        a = np.tanh(a @ a.T * (1.0 / 256))
    return a


def overlap_cases(elements: int) -> dict[str, tuple[Callable, Callable]]:
    """name -> (the pipeline with overlap, the same pipeline without)."""
    base = np.random.default_rng(1).random((elements, 256, 256), dtype=np.float32)
    source = Dataset.from_tensor_slices(base)

    def consume(ds: Dataset) -> Callable[[], Iterable]:
        def run():
            for a in ds.as_numpy_iterator():
                _work(a)  # the "training step" of the consumer
                yield a, None
        return run

    def produce(ds: Dataset) -> Callable[[], Iterable]:
        return lambda: ((a, None) for a in ds.as_numpy_iterator())

    def wait(ds: Dataset) -> Callable[[], Iterable]:
        def run():
            for a in ds.as_numpy_iterator():
                time.sleep(0.002)  # the consumer waits (e.g. for the parameter servers)
                yield a, None
        return run

    heavy = source.map(_work)
    return {
        "map(work)+prefetch(2), consumer works": (consume(heavy.prefetch(2)), consume(heavy)),
        "map(work)+prefetch(2), consumer waits": (wait(heavy.prefetch(2)), wait(heavy)),
        "map(work, num_parallel_calls=2)": (
            produce(source.map(_work, num_parallel_calls=2)), produce(heavy)),
    }


def run_overlap(repeats: int) -> list[dict]:
    results = []
    for name, (with_overlap, without) in overlap_cases(64).items():
        timings: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(repeats):
            timings["with"].append(epoch_seconds(with_overlap))
            timings["without"].append(epoch_seconds(without))
        ours, base = (statistics.median(timings[k]) for k in ("with", "without"))
        results.append({"case": name, "overlap_ms": round(ours * 1e3, 1),
                        "sequential_ms": round(base * 1e3, 1), "ratio": round(ours / base, 2)})
    print(f"\n{'overlap (64 elements)':40} {'with ms':>9} {'without ms':>11} {'ratio':>7}")
    for row in results:
        print(f"{row['case']:40} {row['overlap_ms']:9.1f} {row['sequential_ms']:11.1f} "
              f"{row['ratio']:7.2f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.rows, 784), dtype=np.float32)
    y = rng.integers(0, 10, args.rows)
    results = []
    for name, (dataset_epoch, numpy_epoch) in cases(x, y, args.batch_size).items():
        timings: dict[str, list[float]] = {"distflow": [], "numpy": []}
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            timings["distflow"].append(epoch_seconds(dataset_epoch))
            timings["numpy"].append(epoch_seconds(numpy_epoch))
        ours, theirs = (statistics.median(timings[k]) for k in ("distflow", "numpy"))
        results.append({"case": name, "distflow_ms": round(ours * 1e3, 1),
                        "numpy_ms": round(theirs * 1e3, 1), "ratio": round(ours / theirs, 2)})
    print(f"{'pipeline':28} {'distflow ms':>12} {'NumPy ms':>10} {'ratio':>7}   "
          f"({args.rows} rows x 784 float32, batch {args.batch_size}, one epoch)")
    for row in results:
        print(f"{row['case']:28} {row['distflow_ms']:12.1f} {row['numpy_ms']:10.1f} "
              f"{row['ratio']:7.2f}")
    overlap = run_overlap(args.repeats)
    print(json.dumps({"benchmark": "data", "rows": args.rows, "batch_size": args.batch_size,
                      "results": results, "overlap": overlap}))


if __name__ == "__main__":
    main()
