"""Context switches and idle cores of one launcher run: where the cores' time goes.

    DISTFLOW_DATA=<data> python benchmarks/switch_counts.py WORKERS sync|async [--ps 1]

Runs the MLP under `python -m distflow.launch` as `benchmarks/push_costs.py` does
(the servers logging their push count), reads every thread's voluntary and
involuntary context switches (it blocked / it was preempted), migrations between
cores and CPU time (Linux /proc/<pid>/task/<tid>/status and .../sched) and each
core's /proc/stat counters ten times a second, and prints one JSON line over
push_costs' steady-state window: per role and thread name (`ps/0 python`: a
server's main thread, `worker/3 ZMQbg/IO/0`: a worker's ZeroMQ I/O thread) the
cores it used and its switches and migrations a second; per core the share of the
window it was idle, in interrupts and stolen by the hypervisor, `other_cores`
the cores busy beyond the run's threads (other processes and this sampler: a run
beside other work shows fewer idle cores than its own); and the rate in the window.
Starts once other processes keep fewer than 0.3 cores busy (at most two minutes'
wait), as push_costs.py does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ps_bench import wait_quiet  # noqa: E402
from push_costs import BATCH, pushes_at, window  # noqa: E402
from role_cpu import Series, descendants, launch, role_of, running  # noqa: E402

SAMPLE_S = 0.1
COUNTS = ("cpu_s", "voluntary", "involuntary", "migrations")
# /proc/stat's per-core fields: user nice system idle iowait irq softirq steal ...
CORE_SHARES = {"idle": (3, 4), "irq": (5, 6), "steal": (7,)}


def parse_status(text: str) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of a /proc/<pid>/status text.

    Raises:
        ValueError: the text has no `voluntary_ctxt_switches` line.
    """
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if "voluntary_ctxt_switches" not in fields:
        raise ValueError("Expected a /proc status text with voluntary_ctxt_switches; "
                         f"received {text[:80]!r}")
    return (int(fields["voluntary_ctxt_switches"]),
            int(fields["nonvoluntary_ctxt_switches"]))


def parse_sched(text: str) -> tuple[float, int]:
    """(CPU seconds, migrations) of a /proc/<pid>/task/<tid>/sched text."""
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in
                                                text.splitlines() if ":" in line)}
    return float(fields["se.sum_exec_runtime"]) / 1e3, int(fields["se.nr_migrations"])


def thread_counts(pid: int, tid: int) -> tuple[str, list[float]] | None:
    """(thread name, COUNTS) of a live thread, None once it is gone."""
    task = Path(f"/proc/{pid}/task/{tid}")
    try:
        voluntary, involuntary = parse_status((task / "status").read_text())
        cpu_s, migrations = parse_sched((task / "sched").read_text())
        return (task / "comm").read_text().strip(), [cpu_s, voluntary, involuntary,
                                                     migrations]
    except (OSError, KeyError, ValueError):
        return None


def core_counters() -> dict[str, list[int]]:
    """Each core's /proc/stat counters (`cpu0`, `cpu1`, ...)."""
    with open("/proc/stat") as stat:
        return {f[0]: [int(x) for x in f[1:]] for f in (line.split() for line in stat)
                if f[0].startswith("cpu") and f[0][3:].isdigit()}


def core_shares(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict:
    """Per core, the share of the ticks between two `core_counters` it spent idle
    (idle + I/O wait), in interrupts (hard and soft) and stolen by the hypervisor."""
    shares = {}
    for core, counts in after.items():
        delta = [b - a for a, b in zip(before[core], counts)]
        total = max(1, sum(delta[:8]))
        shares[core] = {name: round(sum(delta[i] for i in fields) / total, 3)
                        for name, fields in CORE_SHARES.items()}
    return shares


def rates(before: dict, after: dict, span: float) -> dict[str, dict[str, float]]:
    """Per `role name` the cores used and the switches and migrations a second
    between two samples {(role, tid): (name, COUNTS)} span seconds apart (threads
    present in both)."""
    out: dict[str, list[float]] = {}
    for key, (name, counts) in after.items():
        if key in before:
            row = out.setdefault(f"{key[0]} {name}", [0.0] * len(COUNTS))
            for i, (a, b) in enumerate(zip(before[key][1], counts)):
                row[i] += (b - a) / span
    return {role: {("cores" if c == "cpu_s" else f"{c}_per_s"): round(v, 3)
                   for c, v in zip(COUNTS, row)} for role, row in sorted(out.items())}


def sample(root: int, roles: dict[int, str]) -> dict:
    """{(role, tid): (name, COUNTS)} of every thread under root now."""
    found = {}
    for pid in descendants(root):
        roles[pid] = role_of(pid) or roles.get(pid, "launcher")
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            counts = thread_counts(pid, tid)
            if counts:
                found[roles[pid], tid] = counts
    return found


def measure(workers: int, mode: str, ps: int = 1, epochs: int = 2) -> dict:
    """One launcher run sampled every SAMPLE_S; the window's rates (module docstring)."""
    series, snaps, roles = Series(), [], {}
    load1 = os.getloadavg()[0]
    proc, reader, started = *launch(workers, mode, ps, epochs, series), time.monotonic()
    while running(proc, started):
        snaps.append((time.time(), core_counters(), sample(proc.pid, roles)))
        time.sleep(SAMPLE_S)
    reader.join(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"The launcher run failed (exit code {proc.returncode}); its "
                           f"output ended:\n{''.join(series.lines[-20:])}")
    start, end = window(series)
    inside = [s for s in snaps if start <= s[0] <= end]
    if len(inside) < 2:
        raise ValueError(f"{len(inside)} samples fell in the run's steady window of "
                         f"{end - start:.2f} s (one every {SAMPLE_S} s): give more --epochs.")
    (t0, cores0, threads0), (t1, cores1, threads1) = inside[0], inside[-1]
    steps = pushes_at(series, 0, t1) - pushes_at(series, 0, t0)
    threads = rates(threads0, threads1, t1 - t0)
    shares = core_shares(cores0, cores1)
    return {"workers": workers, "servers": ps, "mode": mode, "window_s": round(t1 - t0, 3),
            "samples_per_s": steps * BATCH / (t1 - t0), "load1": load1, "cores": shares,
            "other_cores": other_cores(shares, threads), "threads": threads}


def other_cores(shares: dict, threads: dict) -> float:
    """The cores busy beyond the run's threads (other processes, this sampler): all
    cores' time less their idle, interrupt and stolen shares, less the threads' cores."""
    busy = sum(1 - sum(share.values()) for share in shares.values())
    return round(max(0.0, busy - sum(row["cores"] for row in threads.values())), 3)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workers", type=int)
    p.add_argument("mode", choices=["sync", "async"])
    p.add_argument("--ps", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    wait_quiet()
    row = measure(args.workers, args.mode, args.ps, args.epochs)
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
