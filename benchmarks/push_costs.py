"""Where the time of a launcher run goes, per push: the simulator's measured costs.

For each mode, W workers and M servers, runs the MLP under `python -m
distflow.launch` as `benchmarks/scale_runs.py` does, with `benchmarks/role_cpu.py`
reading every thread's CPU and wait for a core (Linux schedstat) twenty times a
second and the servers logging their push count four times a second. The window
between the second stats line with pushes and the last before the final count is
the steady state (no start-up, no shutdown). Prints one JSON line per configuration
and round with, per push in that window (one worker step's message to one server):

- `server_cpu_s`: each server's CPU per push it answered (all its threads), and
  `server_main_cpu_s` its main thread's (the rest is ZeroMQ's I/O thread),
- `worker_cpu_s`: a worker's CPU per step (its compute, the client's encoding and
  decoding, its ZeroMQ I/O thread), the mean over workers, `worker_main_cpu_s` its
  main thread's,
- `launcher_cpu_s`: the launcher's CPU per worker step,
- `wait_s`: the time all processes waited runnable for a core, per worker step;
  `worker_wait_s` a worker's per step and `server_wait_s` each server's per push,
- `worker_slices`, `server_slices`: the times their threads were put on a core
  (woken or given their turn), per step and per push,
- `fit_s`: the window per worker step (all workers together), `samples_per_s` the
  rate in it, and `runnable`: the threads on a core or waiting for one, on average
  ((CPU + wait) / window),
- `window_s`, `load1` before the run and `other_cores` in the window,
- `idle_cores`, `irq_cores`, `steal_cores`: the cores the machine left idle, spent
  in interrupts and lost to the hypervisor (steal) in the window, on average,
- `fit_samples_per_s` and `wall_s`: the chief's rate over its whole `fit` and the
  run's wall time.

`scale_sim.py --costs FILE` builds the workers' and servers' CPU from the median of
these lines for each configuration (`other_cores` at most 0.2).

    DISTFLOW_DATA=/work/shared/data python benchmarks/push_costs.py \\
        --workers 1,2,4,8 --servers 1,2 --modes async,sync --rounds 2 > costs.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ps_bench import other_cores, wait_quiet  # noqa: E402
from role_cpu import COLUMNS, Series, measure  # noqa: E402

BATCH = 128


def window(series: Series) -> tuple[float, float]:
    """(start, end) wall-clock times of the steady state: from server 0's second stats
    line with pushes to its last one before the final count.

    Raises:
        ValueError: fewer than two such lines (a run too short for the stats interval).
    """
    lines = sorted((t, n) for t, rank, n in series.stats if rank == 0)
    final = max((n for _, n in lines), default=0)
    inside = [t for t, n in lines if 0 < n < final][1:]
    if len(inside) < 2:
        raise ValueError(f"Server 0 logged {len(lines)} stats lines, {len(inside)} inside "
                         "training: too few for a window. Received a run too short: give "
                         "more --epochs.")
    return inside[0], inside[-1]


def pushes_at(series: Series, rank: int, t: float) -> float:
    """Server `rank`'s push count at time t (linear between its stats lines)."""
    return _between(sorted((when, n) for when, r, n in series.stats if r == rank), t)


def cpu_at(series: Series, role: str, column: str, t: float) -> float:
    """`role`'s cumulative `column` (of COLUMNS) at time t (linear between samples)."""
    k = COLUMNS.index(column)
    return _between([(when, roles.get(role, [0.0] * len(COLUMNS))[k]) for when, roles, _ in
                     series.samples], t)


def _between(points: list[tuple[float, float]], t: float) -> float:
    """The value at t of time-sorted (time, value) points, linear between them."""
    after = next((i for i, (when, _) in enumerate(points) if when >= t), len(points) - 1)
    (t0, v0), (t1, v1) = points[max(after - 1, 0)], points[after]
    return v1 if t1 <= t0 else v0 + (v1 - v0) * (min(max(t, t0), t1) - t0) / (t1 - t0)


def per_push(run: dict, series: Series) -> dict:
    """The costs per push of `run`'s steady state (see the module docstring)."""
    w, m, start, end = run["workers"], run["servers"], *window(series)
    span = end - start
    pushes = [pushes_at(series, s, end) - pushes_at(series, s, start) for s in range(m)]
    steps = pushes[0]  # every worker step pushes once to every server

    def delta(role: str, column: str = "cpu_s") -> float:
        return cpu_at(series, role, column, end) - cpu_at(series, role, column, start)

    roles = sorted(series.samples[-1][1])
    workers = [f"worker/{i}" for i in range(w)]
    cpu, wait = sum(delta(r) for r in roles), sum(delta(r, "wait_s") for r in roles)
    host = [h for when, _, h in series.samples if start <= when <= end]
    return {"mode": run["mode"], "workers": w, "servers": m, "window_s": span,
            "pushes": pushes,
            "server_cpu_s": [delta(f"ps/{s}") / pushes[s] for s in range(m)],
            "server_main_cpu_s": [delta(f"ps/{s}", "main_cpu_s") / pushes[s]
                                  for s in range(m)],
            "worker_cpu_s": sum(delta(r) for r in workers) / steps,
            "worker_main_cpu_s": sum(delta(r, "main_cpu_s") for r in workers) / steps,
            "launcher_cpu_s": delta("launcher") / steps, "wait_s": wait / steps,
            "worker_wait_s": sum(delta(r, "wait_s") for r in workers) / steps,
            "server_wait_s": [delta(f"ps/{s}", "wait_s") / pushes[s] for s in range(m)],
            "worker_slices": sum(delta(r, "slices") for r in workers) / steps,
            "server_slices": [delta(f"ps/{s}", "slices") / pushes[s] for s in range(m)],
            "fit_s": span / steps, "samples_per_s": steps * BATCH / span,
            "runnable": (cpu + wait) / span, "load1": run["load1"],
            "fit_samples_per_s": fit_rate(run), "wall_s": run.get("wall_s"),
            "other_cores": other_cores(host[0], host[-1], cpu, span) if len(host) > 1
            else None, **(host_cores(host[0], host[-1], span) if len(host) > 1 else {})}


def fit_rate(run: dict) -> float | None:
    """The samples/s the chief reported over its whole `fit` (start-up included), or
    None without its result line."""
    result = run.get("result")
    return result.get("samples_per_s") if isinstance(result, dict) else None


HOST_FIELDS = {"idle_cores": (3, 4), "irq_cores": (5, 6), "steal_cores": (7,)}


def host_cores(before: list[int], after: list[int], span: float) -> dict:
    """The cores the machine spent idle, in interrupts (hard and soft: the loopback's
    network stack, charged to no thread) and stolen by the hypervisor between two
    `cpu_times` readings span seconds apart, on average (Linux /proc/stat)."""
    if len(before) < 8 or len(after) < 8 or span <= 0:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    return {key: round(sum(after[i] - before[i] for i in fields) / tick / span, 3)
            for key, fields in HOST_FIELDS.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default="1,2,4,8")
    p.add_argument("--servers", default="1,2")
    p.add_argument("--modes", default="async,sync")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)
    for _ in range(args.rounds):
        for w, m, mode in configurations(args.workers, args.servers, args.modes):
            wait_quiet()
            series = Series()
            run = measure(w, mode, m, args.epochs, series)
            print(json.dumps(per_push(run, series)), flush=True)


def configurations(workers: str, servers: str, modes: str) -> list[tuple[int, int, str]]:
    """(W, M, mode) for the comma-separated lists."""
    return [(w, m, mode) for mode in modes.split(",") for w in (int(x) for x in
            workers.split(",")) for m in (int(x) for x in servers.split(","))]

if __name__ == "__main__":
    main()
