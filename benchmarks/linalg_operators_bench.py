"""Structured linear operators against their own dense matrix.

For each operator, times `matmul` or `solve` through the operator's structured
path beside `LinearOperatorFullMatrix(op.to_dense())` (the dense fallback every
operator would otherwise take), interleaved in one process; checks both agree
first. Prints a table and one JSON line.

    python benchmarks/linalg_operators_bench.py [--reps 7]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import distflow as tf

L = tf.linalg
rng = np.random.default_rng(0)


def well(n):
    return (rng.uniform(-1, 1, (n, n)) + 3 * np.eye(n)).astype(np.float32)


def cases():
    kron = [L.LinearOperatorFullMatrix(well(16)) for _ in range(3)]
    blocks = [L.LinearOperatorFullMatrix(well(128)) for _ in range(8)]
    return [
        ("Diag n=2000", L.LinearOperatorDiag(rng.uniform(1, 2, 2000).astype(np.float32)),
         "solve", 2000),
        ("LowerTriangular n=1000", L.LinearOperatorLowerTriangular(well(1000)), "solve", 1000),
        ("Kronecker 16x16x16 (n=4096)", L.LinearOperatorKronecker(kron), "matmul", 4096),
        ("Kronecker 16x16x16 (n=4096)", L.LinearOperatorKronecker(kron), "solve", 4096),
        ("BlockDiag 8 x 128 (n=1024)", L.LinearOperatorBlockDiag(blocks), "solve", 1024),
    ]


def timed(op, method, x):
    start = time.perf_counter()
    getattr(op, method)(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    rows = []
    print("| operator | method | structured ms | dense ms | dense / structured |")
    print("|---|---|---|---|---|")
    for label, op, method, n in cases():
        dense = L.LinearOperatorFullMatrix(op.to_dense())
        x = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
        np.testing.assert_allclose(getattr(op, method)(x), getattr(dense, method)(x),
                                   rtol=1e-3, atol=1e-3)
        fast, slow = [], []
        for _ in range(args.reps):  # interleaved, so load affects both alike
            fast.append(timed(op, method, x))
            slow.append(timed(dense, method, x))
        f_ms, s_ms = 1e3 * np.median(fast), 1e3 * np.median(slow)
        rows.append({"operator": label, "method": method, "structured_ms": round(f_ms, 3),
                     "dense_ms": round(s_ms, 3), "ratio": round(s_ms / f_ms, 1)})
        print(f"| {label} | {method} | {f_ms:.3f} | {s_ms:.3f} | {s_ms / f_ms:.1f} |")
    print(json.dumps({"linalg_operators": rows}))


if __name__ == "__main__":
    main()
