"""Real runs for the simulator's validation: the MLP under the launcher, W workers x M servers.

Trains `benchmarks/train_worker.py` (the Fashion-MNIST MLP, Adam) for `--epochs`
on one process (workers 0 in the output: the compute-time calibration) and
under `python -m distflow.launch --workers W --ps M` for each W and M, sync
(mirrored, global batch 128 * W) and async (128 per worker), one BLAS thread per
process, and prints one JSON line per run (`workers`, `servers`, `mode`,
`samples_per_s`), with the CPU seconds all its processes used (`cpu_s`, user +
system, from the launcher's and its children's resource usage), its wall time
(`wall_s`), the 1-minute load average before it (`load1`) and the cores other
processes kept busy meanwhile (`other_cores`, Linux /proc/stat: near 0 on a
quiet machine) and the CPU time the hypervisor gave other guests (`steal_pct`):
the input of `benchmarks/scale_sim.py --validate`. Each run starts once other
processes keep fewer than 0.3 cores busy over 2 s (at most 2 minutes' wait;
`--no-wait`: at once).

    DISTFLOW_DATA=/work/shared/data python benchmarks/scale_runs.py \\
        --workers 1,2,4,8 --servers 1,2 > runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ps_bench import cpu_times, other_cores, steal_percent, wait_quiet  # noqa: E402
from train_bench import _run  # noqa: E402


def runs(workers: list[int], servers: list[int], epochs: int):
    """Yields (workers, servers, mode, command) for every configuration."""
    worker = [str(HERE / "train_worker.py"), "--epochs", str(epochs)]
    yield 0, 0, "none", [sys.executable, *worker, "--batch-size", "128"]
    for w in workers:
        for m in servers:
            launch = [sys.executable, "-m", "distflow.launch", "--workers", str(w),
                      "--ps", str(m), "--strategy"]
            yield w, m, "sync", [*launch, "mirrored", *worker, "--batch-size", str(128 * w)]
            yield w, m, "async", [*launch, "async", *worker, "--batch-size", "128"]


def children_cpu_s() -> float:
    """User + system CPU seconds of the finished children waited for (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default="1,2,4,8")
    p.add_argument("--servers", default="1,2")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--no-wait", action="store_true",
                   help="start each run at once, without waiting for a quiet machine")
    args = p.parse_args(argv)
    for w, m, mode, cmd in runs([int(x) for x in args.workers.split(",")],
                                [int(x) for x in args.servers.split(",")], args.epochs):
        if not args.no_wait:
            wait_quiet()
        load1, host, before, start = (os.getloadavg()[0], cpu_times(), children_cpu_s(),
                                      time.perf_counter())
        result = _run(cmd, timeout=1800)
        cpu_s, wall_s = children_cpu_s() - before, time.perf_counter() - start
        print(json.dumps({"workers": w, "servers": m, "mode": mode,
                          "samples_per_s": result["samples_per_s"],
                          "test_accuracy": result["test_accuracy"], "cpu_s": cpu_s,
                          "wall_s": wall_s, "load1": load1,
                          "other_cores": other_cores(host, cpu_times(), cpu_s, wall_s),
                          "steal_pct": steal_percent(host, cpu_times())}),
              flush=True)


if __name__ == "__main__":
    main()
