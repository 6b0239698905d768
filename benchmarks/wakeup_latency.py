"""How long a thread woken on the other core takes to run: the simulator's `--wake-s`.

Two processes pass one byte back and forth over a pair of pipes (each blocks in
`read` until the other writes), first both pinned to one core (the woken one runs
where its waker just blocked: no second core involved), then pinned to different
cores with nothing else to run (every wake-up crosses to a core that has gone
idle: on a virtual machine an interprocessor interrupt through the hypervisor and
the halted virtual CPU's wake-up). Prints one JSON line: the one-way time of each
(`same_core_us`, `cross_core_us`, median over `--rounds`) and their difference,
`wake_s`: what a wake-up onto an idle core costs beyond one on a busy one, the
latency `scale_sim.py --wake-s` adds to every wake-up of a blocked thread.

    python benchmarks/wakeup_latency.py --rounds 5 > wakeup.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def one_way_s(waker_core: int, woken_core: int, trips: int) -> float:
    """Mean one-way time of `trips` pipe round trips between a process pinned to
    `waker_core` and a child pinned to `woken_core` (Linux: os.sched_setaffinity)."""
    to_child, to_parent = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the child answers every byte
        code = 1
        try:
            os.sched_setaffinity(0, {woken_core})
            for _ in range(trips):
                os.read(to_child[0], 1)
                os.write(to_parent[1], b"x")
            code = 0
        finally:
            os._exit(code)
    os.close(to_child[0])  # the child's ends: its exit then ends our reads
    os.close(to_parent[1])
    try:
        os.sched_setaffinity(0, {waker_core})
        start = time.perf_counter()
        for _ in range(trips):
            try:
                os.write(to_child[1], b"x")
            except BrokenPipeError:
                pass  # the child is gone: the read below says so
            if not os.read(to_parent[0], 1):
                raise RuntimeError(f"the answering child (pinned to core {woken_core}) "
                                   f"exited early: exit code "
                                   f"{os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}")
        elapsed = time.perf_counter() - start
    finally:
        os.close(to_child[1])
        os.close(to_parent[0])
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the answering child (pinned to core {woken_core}) failed: "
                           f"exit code {os.waitstatus_to_exitcode(status)}")
    return elapsed / trips / 2


def measure(rounds: int = 5, trips: int = 20000) -> dict:
    """`rounds` interleaved same-core and cross-core measurements; medians in us.

    Raises:
        ValueError: fewer than two cores are available to this process.
    """
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise ValueError(f"Measuring a cross-core wake-up needs two cores; this process may "
                         f"run on {cores}.")
    mask = set(cores)
    try:
        same, cross = [], []
        for _ in range(rounds):
            same.append(one_way_s(cores[0], cores[0], trips))
            cross.append(one_way_s(cores[0], cores[1], trips))
    finally:
        os.sched_setaffinity(0, mask)
    same_s, cross_s = statistics.median(same), statistics.median(cross)
    return {"bench": "wakeup_latency", "same_core_us": round(same_s * 1e6, 2),
            "cross_core_us": round(cross_s * 1e6, 2),
            "wake_s": max(0.0, cross_s - same_s), "rounds": rounds, "trips": trips,
            "load1": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--trips", type=int, default=20000)
    args = p.parse_args(argv)
    row = measure(args.rounds, args.trips)
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
