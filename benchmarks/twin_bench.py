"""Why ops' ranges run in twin processes, and what a twin costs.

1. `halves`: a layers_bench case's `train_on_batch` step three ways, one process each:
   the whole batch on one thread, the whole batch on two threads, and two processes
   side by side each stepping half the batch on one thread (what ops' ranges on a
   twin process approach: no GIL shared between the halves).
2. `round-trip`: `twin.split` of a kernel that does nothing (twin.probe), two threads:
   the fixed cost of sending a range to a twin and waiting for its answer.

    python benchmarks/twin_bench.py --cases cnn64 lstm --steps 60
    python benchmarks/twin_bench.py --round-trip

Prints a table and one JSON line. The halves run one after another (one process at a
time but for the side-by-side pair); compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads)}


def _stepper_cmd(case: str, half: bool, steps: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--step", case,
            "--steps", str(steps), *(["--half"] if half else [])]


def _run_side_by_side(cmds: list[tuple[list[str], dict]]) -> list[float]:
    """Starts the commands together; each prints its median step (ms)."""
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
             for cmd, env in cmds]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, cmd in zip(procs, cmds):
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[0][2:])} failed (exit code {p.returncode}; its "
                             f"error is above)")
    return [float(out.split()[-1]) for out in outs]


def halves(case: str, steps: int) -> dict:
    """The three ways of the module docstring, in ms per step (median)."""
    one = _run_side_by_side([(_stepper_cmd(case, False, steps), _env(1))])[0]
    two = _run_side_by_side([(_stepper_cmd(case, False, steps), _env(2))])[0]
    pair = _run_side_by_side([(_stepper_cmd(case, True, steps), _env(1))] * 2)
    return {"case": case, "one_thread_ms": one, "two_threads_ms": two,
            "two_half_processes_ms": max(pair), "x_two_threads": round(max(pair) / two, 3)}


def step_alone(case: str, half: bool, steps: int) -> float:
    """One process's median `train_on_batch` step of the case (half the batch if asked)."""
    sys.path.insert(0, str(HERE))
    import layers_bench

    import distflow.keras as keras
    batch = len(layers_bench.case_data(case)[0])
    step = layers_bench.keras_stepper(keras, case, batch // 2 if half else None)
    return 1e3 * statistics.median(layers_bench.timed(step, steps, warmup=10))


def round_trip(calls: int) -> dict:
    """Median and 10th percentile of `twin.split` over an empty kernel (us)."""
    import numpy as np

    from distflow import twin
    twin.ensure_started()
    out, ran = twin.array((16,), np.int64), twin.array((2,), np.int64)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        twin.split(16, twin.probe, out, ran)
        times.append(time.perf_counter() - start)
    assert ran[1] != os.getpid(), "the second range did not run in a twin"
    return {"round_trip_us": round(1e6 * statistics.median(times), 1),
            "round_trip_p10_us": round(1e6 * float(np.percentile(times, 10)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["cnn64", "lstm"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--round-trip", action="store_true")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--half", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--round-trip-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(f"{step_alone(args.step, args.half, args.steps):.3f}")
        return
    if args.round_trip_child:
        print(json.dumps(round_trip(args.calls)))
        return
    if args.round_trip:
        child = subprocess.run([sys.executable, str(Path(__file__).resolve()),
                                "--round-trip-child", "--calls", str(args.calls)],
                               env=_env(2), stdout=subprocess.PIPE, text=True, timeout=300)
        if child.returncode != 0:
            raise SystemExit(f"the round-trip process failed (exit code {child.returncode}; "
                             f"its error is above)")
        row = json.loads(child.stdout)
        print(f"twin.split round trip, empty kernel: median {row['round_trip_us']} us, "
              f"10th percentile {row['round_trip_p10_us']} us")
        print(json.dumps({"benchmark": "twin_round_trip", **row}))
        return
    rows = [halves(case, args.steps) for case in args.cases]
    print(f"{'case':>8} {'1 thread':>10} {'2 threads':>10} {'2 x half':>10} {'x 2 threads':>12}")
    for r in rows:
        print(f"{r['case']:>8} {r['one_thread_ms']:>10.2f} {r['two_threads_ms']:>10.2f} "
              f"{r['two_half_processes_ms']:>10.2f} {r['x_two_threads']:>12.2f}")
    print(json.dumps({"benchmark": "twin_halves", "steps": args.steps, "rows": rows}))


if __name__ == "__main__":
    main()
