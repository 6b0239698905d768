"""CPU seconds per role (server, worker, launcher) of one launcher run of the MLP.

    DISTFLOW_DATA=<data> python benchmarks/role_cpu.py WORKERS sync|async [--ps 1] [--epochs 2]

Starts `python -m distflow.launch` on `benchmarks/train_worker.py` (batch 128 per
worker, as `scale_runs.py` runs it; WORKERS 0: the one process alone), reads every
thread of every process of its tree from /proc twenty times a second (Linux
schedstat: the time it ran on a core, the time it waited runnable for one and the
times it was put on one; the `DISTFLOW_ROLE` and `DISTFLOW_RANK` its environment
gives it) and prints one JSON line: per role and rank the CPU seconds (`cpu_s`;
`main_cpu_s` of the main thread, the rest ZeroMQ's I/O and the heartbeat threads),
the seconds it waited for a core (`wait_s`) and `slices`, the wall time, the
chief's result and the cores other processes kept busy meanwhile (`other_cores`).
The split is what `scale_runs.py`'s one total cannot show: how much of a
configuration's CPU the servers spend per push, beside the workers'. Start-up is
included; `benchmarks/push_costs.py` takes the steady state alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ps_bench import cpu_times, other_cores  # noqa: E402

SAMPLE_S = 0.05
STATS_INTERVAL_S = 0.25  # the servers log their push count this often
RUN_LIMIT_S = 1800.0  # a run still going after this long is stopped: something hangs


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack += children.get(pid, [])
    return found


def role_of(pid: int) -> str | None:
    """`role/rank` of a live process from its environment ("launcher" without one), or
    None once it is gone."""
    try:
        env = dict(e.split(b"=", 1) for e in Path(f"/proc/{pid}/environ").read_bytes()
                   .split(b"\0") if b"=" in e)
    except OSError:
        return None
    role = env.get(b"DISTFLOW_ROLE", b"launcher").decode()
    return role if role == "launcher" else f"{role}/{env.get(b'DISTFLOW_RANK', b'0').decode()}"


def threads(pid: int) -> dict[int, tuple[float, float, int]]:
    """tid -> (seconds on a core, seconds runnable waiting for one, times it was put on
    a core) of pid's threads."""
    found = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            run, wait, slices = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        found[int(tid)] = (int(run) / 1e9, int(wait) / 1e9, int(slices))
    return found


class Series:
    """Snapshots of a launcher run: per role and rank the cumulative [cpu_s, main_cpu_s,
    wait_s, slices] (slices: the times its threads were put on a core) at each
    sample's wall-clock time, the machine's /proc/stat counters with them, and the
    servers' `stats` log lines (time, rank, pushes so far)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, dict[str, list[float]], list[int]]] = []
        self.stats: list[tuple[float, int, int]] = []
        self.lines: list[str] = []

    def read(self, stream) -> None:
        """Keeps the run's output lines and the servers' stats lines of `stream`."""
        for line in stream:
            self.lines.append(line)
            found = STATS_LINE.search(line)
            if found:
                when = datetime.strptime(found[2], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                self.stats.append((when, int(found[1]), int(found[3])))

    def totals(self) -> dict[str, dict[str, float]]:
        """The last sample's cpu_s, main_cpu_s and wait_s per role and rank."""
        last = self.samples[-1][1] if self.samples else {}
        return {role: dict(zip(COLUMNS, (round(x, 4) for x in row)))
                for role, row in sorted(last.items())}


COLUMNS = ("cpu_s", "main_cpu_s", "wait_s", "slices")
STATS_LINE = re.compile(r"\[ps (\d+)\] (\S+ \S+) INFO .*: stats .*\bpushes=(\d+)")


def running(proc: subprocess.Popen, started: float) -> bool:
    """Whether the run goes on (False once it has exited).

    Raises:
        TimeoutError: it ran RUN_LIMIT_S seconds since `started` (time.monotonic);
            it is killed first.
    """
    if proc.poll() is not None:
        return False
    if time.monotonic() - started > RUN_LIMIT_S:
        proc.kill()
        proc.wait()
        raise TimeoutError(f"The launcher run {' '.join(proc.args)} was still going after "
                           f"{RUN_LIMIT_S:g} s and was killed: a process hangs (its output "
                           f"says which).")
    return True


def watch(proc: subprocess.Popen, series: Series) -> None:
    """Samples proc's tree into `series` until it exits (each thread's last sample
    counts once it has ended: up to SAMPLE_S of a thread's end is missed)."""
    roles: dict[int, str] = {}
    last: dict[tuple[int, int], tuple[float, float, int]] = {}
    started = time.monotonic()
    while running(proc, started):
        for pid in descendants(proc.pid):
            roles[pid] = role_of(pid) or roles.get(pid, "launcher")  # after its exec
            for tid, times in threads(pid).items():
                last[pid, tid] = times
        totals: dict[str, list[float]] = {}
        for (pid, tid), (run, wait, slices) in last.items():
            row = totals.setdefault(roles[pid], [0.0, 0.0, 0.0, 0.0])
            row[0] += run
            row[1] += run if tid == pid else 0.0
            row[2] += wait
            row[3] += slices
        series.samples.append((time.time(), totals, cpu_times()))
        time.sleep(SAMPLE_S)


def command(workers: int, mode: str, ps: int, epochs: int) -> list[str]:
    """The launcher command of scale_runs.py for W x M in `mode` (W = 0: the one
    process alone, its role "launcher")."""
    if workers == 0:
        return [sys.executable, str(HERE / "train_worker.py"), "--epochs", str(epochs),
                "--batch-size", "128"]
    batch = 128 * workers if mode == "sync" else 128
    return [sys.executable, "-m", "distflow.launch", "--workers", str(workers), "--ps", str(ps),
            "--strategy", "mirrored" if mode == "sync" else "async",
            str(HERE / "train_worker.py"), "--epochs", str(epochs), "--batch-size", str(batch)]


def launch(workers: int, mode: str, ps: int, epochs: int,
           series: Series) -> tuple[subprocess.Popen, threading.Thread]:
    """Starts `command`'s run (one BLAS thread, the servers logging their push count
    every STATS_INTERVAL_S) and a thread reading its output into `series` (join it
    once the run has ended)."""
    proc = subprocess.Popen(command(workers, mode, ps, epochs), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1",
                                 "DISTFLOW_STATS_INTERVAL": str(STATS_INTERVAL_S)})
    reader = threading.Thread(target=series.read, args=(proc.stdout,), daemon=True)
    reader.start()
    return proc, reader


def measure(workers: int, mode: str, ps: int = 1, epochs: int = 2,
            series: Series | None = None) -> dict:
    """One launcher run: CPU and wait per role and rank, wall time, the chief's result
    (`series`, when given, receives the samples and the servers' stats lines)."""
    series = series or Series()
    load1, host, start = os.getloadavg()[0], cpu_times(), time.perf_counter()
    proc, reader = launch(workers, mode, ps, epochs, series)
    watch(proc, series)
    reader.join(timeout=30)
    wall_s, roles = time.perf_counter() - start, series.totals()
    own = sum(row["cpu_s"] for row in roles.values())
    results = [line.split("] ", 1)[-1] for line in series.lines if "samples_per_s" in line]
    return {"workers": workers, "servers": ps, "mode": mode, "epochs": epochs,
            "wall_s": round(wall_s, 2), "cpu_by_role": roles,
            "result": json.loads(results[-1]) if results else "".join(series.lines)[-300:],
            "load1": load1, "other_cores": other_cores(host, cpu_times(), own, wall_s)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workers", type=int, help="0: one process without the launcher")
    p.add_argument("mode", choices=["sync", "async", "none"], help="none: one process")
    p.add_argument("--ps", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    row = measure(args.workers, args.mode, args.ps, args.epochs)
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
