"""The autodiff step of this checkout against another checkout, in process CPU time.

    python benchmarks/cpu_ab.py BASELINE_CHECKOUT [--rounds 3] [--repeats 100]

Runs the steps of `autodiff_bench.py` (the MLP tape step at batch 64, 128 and 512,
the same step traced by `distflow.function` at batch 128, and the Keras MLP's
training step through `fit`'s compiled step at batch 8 and 128, per step of a
`fit` over 16 batches) in child processes,
one per checkout and round, alternating baseline and this checkout, each importing
its own `distflow` and its own `benchmarks/autodiff_bench.py`. Each step is timed
with `time.process_time()` (CPU time of the process, one BLAS thread), so a loaded
machine stretches wall time but hardly the measurement. Prints the median CPU
milliseconds per step of each side (the median over rounds of each round's median)
and their ratio, as a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent.parent

CHILD = r"""
import json, statistics, sys, time
import numpy as np
sys.path.insert(0, "benchmarks")
import autodiff_bench as b
import distflow as df

def timed(fn, x, y, repeats):
    fn(x, y)
    out = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn(x, y)
        out.append(time.process_time() - t0)
    return statistics.median(out) * 1e3

repeats = int(sys.argv[1])
rng = np.random.default_rng(0)
rows = {}
for batch in (64, 128, 512):
    variables = [df.Variable(p, name=f"ab/{batch}/{i}") for i, p in enumerate(b.mlp_params())]
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    rows[f"mlp eager {batch}"] = timed(b.mlp_distflow(variables), x, y, repeats)
    if batch == 128:
        rows[f"mlp traced {batch}"] = timed(df.function(b.mlp_distflow(variables)), x, y,
                                            repeats)
steps = 16  # `fit` over 16 batches per timed call, its per-call costs shared by them
for batch in (8, 128):
    model = b.keras_mlp(False)
    x = rng.standard_normal((batch * steps, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch * steps)
    fit = lambda x, y: model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    rows[f"fit compiled {batch}"] = timed(fit, x, y, max(5, repeats // 5)) / steps
print(json.dumps(rows))
"""


def run(checkout: pathlib.Path, repeats: int) -> dict[str, float]:
    """One child process's median CPU ms per case, in `checkout`."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(repeats)], cwd=checkout, env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=pathlib.Path, help="the other checkout's directory")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"baseline": [], "this": []}
    for _ in range(args.rounds):
        runs["baseline"].append(run(args.baseline.resolve(), args.repeats))
        runs["this"].append(run(HERE, args.repeats))
    rows = []
    for case in runs["this"][0]:
        base = statistics.median(r[case] for r in runs["baseline"])
        this = statistics.median(r[case] for r in runs["this"])
        rows.append({"case": case, "baseline_cpu_ms": base, "this_cpu_ms": this,
                     "ratio": this / base})
    print(f"{'case':16} {'baseline ms':>11} {'this ms':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['case']:16} {r['baseline_cpu_ms']:>11.3f} {r['this_cpu_ms']:>8.3f} "
              f"{r['ratio']:>6.3f}")
    result = {"benchmark": "cpu_ab", "rows": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
