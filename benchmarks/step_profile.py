"""Where one `train_on_batch` step of a layers_bench case goes, op by op.

Every registered primitive's forward and VJPs are wrapped with wall and process-CPU
clocks (keyed by the op and the shape of its first argument: which layer), then the
case's Keras model is stepped; the table lists each op's time per step and the step's
own time (the gap is the loss, the optimizer and the Python between ops). Then each
OS thread's CPU time per step: the calling thread, the intra-op pool's, and the
others (BLAS's own threads: CPU there means they woke and spun during the steps).

    OMP_NUM_THREADS=2 python benchmarks/step_profile.py cnn64 --steps 30

Run with `PYTHONPATH=<checkout>` to profile another checkout of distflow.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import layers_bench  # noqa: E402
import role_cpu  # noqa: E402

import distflow.keras as dk  # noqa: E402
from distflow import primitive, twin  # noqa: E402

TOTALS: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])


def timed(name: str, fn):
    """fn, adding its wall and CPU seconds to TOTALS under name + first argument's shape."""
    def inner(*args, **kwargs):
        key = f"{name}{getattr(args[0], 'shape', '')}"
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            total = TOTALS[key]
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu
            total[2] += 1
    return inner


def primitives() -> dict[str, primitive.Primitive]:
    """The registered primitives and the layers' own (module-level `Primitive`s of the
    loaded distflow modules, e.g. the self-attention op), by name."""
    found = dict(primitive.REGISTRY)
    for name, module in list(sys.modules.items()):
        if name.startswith("distflow"):
            for value in list(vars(module).values()):
                if isinstance(value, primitive.Primitive):
                    found.setdefault(value.name, value)
    return found


def instrument() -> None:
    """Wraps every primitive's forward and VJPs (`primitives()`) with `timed`."""
    for name, prim in primitives().items():
        prim.forward = timed(f"{name}.forward", prim.forward)
        prim.vjps = tuple(None if vjp is None else timed(f"{name}.vjp{i}", vjp)
                          for i, vjp in enumerate(prim.vjps))


def thread_cpu() -> dict[int, float]:
    """Seconds on a core of each of this process's OS threads, by id (schedstat,
    nanoseconds: `role_cpu.threads`)."""
    return {tid: run for tid, (run, _, _) in role_cpu.threads(os.getpid()).items()}


def print_thread_cpu(before: dict[int, float], steps: int) -> None:
    """Each thread's CPU per step since `before` (`thread_cpu()`), named by role."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    for tid, seconds in sorted(thread_cpu().items()):
        name = names.get(tid, "other (BLAS's own)")
        print(f"thread {tid} {name:32s} CPU {1e3 * (seconds - before.get(tid, 0)) / steps:7.3f} "
              f"ms/step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=layers_bench.CASES)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    step = layers_bench.keras_stepper(dk, args.case)  # imports the layers' modules
    instrument()
    for _ in range(5):
        step()
    TOTALS.clear()
    walls, cpus, threads_before = [], [], thread_cpu()
    for _ in range(args.steps):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    n = args.steps
    print(f"step: wall median {1e3 * statistics.median(walls):.2f} ms (fastest "
          f"{1e3 * min(walls):.2f}), CPU median {1e3 * statistics.median(cpus):.2f} ms")
    for key, (wall, cpu, calls) in sorted(TOTALS.items(), key=lambda kv: -kv[1][0]):
        print(f"{key:48s} wall {1e3 * wall / n:7.3f} ms  CPU {1e3 * cpu / n:7.3f} ms  "
              f"calls/step {calls / n:.0f}")
    ops = sum(total[0] for total in TOTALS.values()) / n
    print(f"ops {1e3 * ops:.2f} ms of a mean step of {1e3 * sum(walls) / n:.2f} ms")
    print_thread_cpu(threads_before, n)
    print(f"twin.split calls since start: {twin.counts()} (twins: {twin.pids()}; their CPU "
          f"is not in this process's)")


if __name__ == "__main__":
    main()
