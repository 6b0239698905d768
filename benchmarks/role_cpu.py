"""CPU seconds per role (server, worker, launcher) of one launcher run of the MLP.

    DISTFLOW_DATA=<data> python benchmarks/role_cpu.py WORKERS sync|async [--ps 1]

Starts `python -m distflow.launch` on `benchmarks/train_worker.py` (2 epochs, batch 128
per worker, as `scale_runs.py` runs it), reads every process of its tree from /proc
five times a second (user + system CPU, and the `DISTFLOW_ROLE` its environment gives
it) and prints one JSON line: the CPU per role, wall time and the chief's result. The
split is what `scale_runs.py`'s one total cannot show: how much of a configuration's
CPU the servers spend per push, beside the workers' (Linux only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


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


def sample(pid: int) -> tuple[float, str] | None:
    """(CPU seconds so far, role) of a live process, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    role = next((e.split(b"=", 1)[1].decode() for e in env
                 if e.startswith(b"DISTFLOW_ROLE=")), "launcher")
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK"), role


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workers", type=int)
    p.add_argument("mode", choices=["sync", "async"])
    p.add_argument("--ps", type=int, default=1)
    args = p.parse_args(argv)
    batch = 128 * args.workers if args.mode == "sync" else 128
    cmd = [sys.executable, "-m", "distflow.launch", "--workers", str(args.workers),
           "--ps", str(args.ps), "--strategy", "mirrored" if args.mode == "sync" else "async",
           str(HERE / "train_worker.py"), "--epochs", "2", "--batch-size", str(batch)]
    start, last = time.perf_counter(), {}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    while proc.poll() is None:
        for pid in descendants(proc.pid):
            last[pid] = sample(pid) or last.get(pid)
        time.sleep(0.2)
    out, roles = proc.stdout.read(), {}
    for cpu, role in filter(None, last.values()):
        roles[role] = round(roles.get(role, 0.0) + cpu, 2)
    results = [line.split("] ", 1)[-1] for line in out.splitlines() if "samples_per_s" in line]
    row = {"workers": args.workers, "servers": args.ps, "mode": args.mode,
           "wall_s": round(time.perf_counter() - start, 2), "cpu_by_role": roles,
           "result": json.loads(results[-1]) if results else out[-300:],
           "load1": os.getloadavg()[0]}
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
