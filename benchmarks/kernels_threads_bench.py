"""The CNN step's kernels on 1 and 2 intra-op threads: forward + VJPs of the example
CNN's fused conv + ReLU + pool ops (and their inference forward) and convolutions, the
ResNet block's convolution, max pooling, ReLU and BatchNormalization, each timed in
isolation (wall time and process CPU time per call).

Every source (this checkout, `--baseline DIR` an older `git archive ... distflow`)
runs in its own process, alternately, `--rounds` times; the thread count is set with
`distflow.config.threading.set_intra_op_parallelism_threads` in the process. Table
columns: the median over rounds of each process's fastest and median call, and its
median CPU time per call (with 2 threads, CPU above wall means both cores worked).

    python benchmarks/kernels_threads_bench.py --baseline /tmp/base --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def kernels(np, df):
    """name -> a function running the kernel's forward and its VJPs once."""
    from distflow import nn
    from distflow.keras.layers import normalization as bn

    rng = np.random.default_rng(0)

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def conv(xs, ws, relu=True):
        x, w, b = f32(*xs), f32(*ws) * 0.1, np.zeros(ws[3], np.float32)
        kw = dict(strides=(1, 1), dilations=(1, 1), mode="SAME", rectify=relu)

        def run():
            out, r = nn._fused_conv2d.forward(x, w, b, **kw)
            for vjp in nn._fused_conv2d.vjps:
                vjp(np.ones_like(out), r)
        return run

    def conv_pool_op(xs, ws, first=False):
        """conv_pool's fused conv + bias + ReLU + 2x2 max pool, forward and the VJPs a
        model asks for (the first layer: kernel and bias only)."""
        from distflow import conv_pool
        x, w, b = f32(*xs), f32(*ws) * 0.1, f32(ws[3]) * 0.1
        op = conv_pool._conv_pool

        def run():
            out, r = op.forward(x, w, b, strides=(1, 1), dilations=(1, 1), mode="SAME",
                                pool=(2, 2))
            g = np.ones_like(out)
            for vjp in op.vjps[1:] if first else op.vjps:
                vjp(g, r)
        return run

    def conv_pool_inference(*shapes):
        """The fused ops called outside a tape (predict): their forwards alone."""
        from distflow import conv_pool
        args = [[df.constant(a) for a in (f32(*xs), f32(*ws) * 0.1, f32(ws[3]))]
                for xs, ws in shapes]

        def run():
            for x, w, b in args:
                conv_pool.conv2d_relu_max_pool(x, w, b, 1, "SAME", pool_size=2)
        return run

    def pool(xs):
        x = f32(*xs)

        def run():
            out, r = nn._max_pool2d.forward(x, ksize=(2, 2), strides=(2, 2), mode="VALID")
            nn._max_pool2d.vjps[0](np.ones_like(out), r)
        return run

    def relu(xs):
        x, g = f32(*xs), f32(*xs)
        return lambda: df.ops._relu_vjp(g, df.ops.rectify(x))

    def batchnorm(xs):
        x, gamma = f32(*xs), np.ones((1, 1, 1, xs[3]), np.float32)

        def run():
            _, var, centered = bn.centered_moments(x, (0, 1, 2))
            out, r = bn._batch_norm_forward(x, gamma, gamma * 0, centered, var, 1e-3, (0, 1, 2))
            for vjp in (bn._batch_norm_vjp_x, bn._batch_norm_vjp_gamma, bn._batch_norm_vjp_beta):
                vjp(np.ones_like(out), r)
        return run

    return {"conv+pool 64x28x28x1->32 (conv1)": conv_pool_op((64, 28, 28, 1), (3, 3, 1, 32),
                                                              first=True),
            "conv+pool 64x14x14x32->64 (conv2)": conv_pool_op((64, 14, 14, 32), (3, 3, 32, 64)),
            "conv+pool 256x14x14x32->64": conv_pool_op((256, 14, 14, 32), (3, 3, 32, 64)),
            "conv+pool conv1 + conv2, inference": conv_pool_inference(
                ((64, 28, 28, 1), (3, 3, 1, 32)), ((64, 14, 14, 32), (3, 3, 32, 64))),
            "cnn conv1 64x28x28x1->32": conv((64, 28, 28, 1), (3, 3, 1, 32)),
            "cnn conv2 64x14x14x32->64": conv((64, 14, 14, 32), (3, 3, 32, 64)),
            "cnn conv2 256x14x14x32->64": conv((256, 14, 14, 32), (3, 3, 32, 64)),
            "resnet conv 32x32x32x64->64": conv((32, 32, 32, 64), (3, 3, 64, 64), False),
            "max pool 2x2 64x28x28x32": pool((64, 28, 28, 32)),
            "relu 32x32x32x64": relu((32, 32, 32, 64)),
            "batchnorm 32x32x32x64": batchnorm((32, 32, 32, 64))}


def worker(calls: int) -> None:
    """Times every kernel on 2 then 1 thread(s); prints one JSON line."""
    import numpy as np

    import distflow as df

    result = {}
    for threads in (2, 1):
        df.config.threading.set_intra_op_parallelism_threads(threads)
        for name, run in kernels(np, df).items():
            for _ in range(2):
                run()
            walls, cpus = [], []
            for _ in range(calls):
                t0, c0 = time.perf_counter(), time.process_time()
                run()
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            result[f"{threads}|{name}"] = [min(walls) * 1e3, statistics.median(walls) * 1e3,
                                           statistics.median(cpus) * 1e3]
    print(json.dumps(result))


def run_source(source: str | None, calls: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    if source:
        env["PYTHONPATH"] = source
    done = subprocess.run([sys.executable, __file__, "--worker", "--calls", str(calls)],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", default=None, metavar="DIR")
    parser.add_argument("--baseline", default=None, metavar="DIR")
    args = parser.parse_args()
    if args.worker:
        worker(args.calls)
        return
    sides = {"distflow": args.source} | ({"baseline": args.baseline} if args.baseline else {})
    runs = {side: [] for side in sides}
    for _ in range(args.rounds):
        for side, source in sides.items():
            runs[side].append(run_source(source, args.calls))
    rows = {side: {key: [round(statistics.median(r[key][i] for r in got), 2) for i in range(3)]
                   for key in got[0]} for side, got in runs.items()}
    print(f"{'threads|kernel':40s}" + "".join(f"{s + ' min/med/cpu ms':>32s}" for s in sides))
    for key in rows["distflow"]:
        print(f"{key:40s}" + "".join(f"{str(rows[s][key]):>32s}" for s in sides))
    print(json.dumps({"benchmark": "kernels_threads", "rounds": args.rounds, "rows": rows}))


if __name__ == "__main__":
    main()
