"""Python function calls a worker's `PSClient.push_pull` makes per step: a load-free cost.

On a shared machine wall-clock and even CPU-time comparisons of the client move
by more than the client's own per-step work; the number of Python-level calls
(`sys.setprofile`, the calling thread only) does not. Run it in two checkouts to
compare them (no absolute meaning: a call costs roughly 0.05-0.1 microseconds,
a step's client CPU is hundreds).

Four float32 variables of a quarter of `--kb` each, pushed to `--servers` async
server processes (started as `ps_bench` starts them); prints one JSON line.

    python benchmarks/client_calls.py [--servers 2] [--kb 64] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from ps_bench import SGD_LR0, start_servers  # noqa: E402

from distflow.distribute.client import PSClient  # noqa: E402


def count_calls(client: PSClient, grads: dict, params: dict, steps: int) -> dict[str, float]:
    """Python and C calls per `push_pull`, on this thread only, over `steps` steps."""
    me, counts = threading.get_ident(), {"call": 0, "c_call": 0}

    def profile(frame, event, arg):
        if event in counts and threading.get_ident() == me:
            counts[event] += 1

    sys.setprofile(profile)
    try:
        for _ in range(steps):
            client.push_pull(grads, out=params)
    finally:
        sys.setprofile(None)
    return {event: count / steps for event, count in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--kb", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    procs, addrs = start_servers(args.servers, "async", None)
    n = args.kb * 1024 // 16
    params = {f"layer{i}/kernel": np.ones(n, np.float32) for i in range(4)}
    grads = {name: np.full(n, 0.5, np.float32) for name in params}
    try:
        with PSClient(addrs, worker_id=0, timeout=60.0) as client:
            client.init(params, SGD_LR0, out=params)
            for _ in range(5):  # warm: plans, layouts
                client.push_pull(grads, out=params)
            calls = count_calls(client, grads, params, args.steps)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    print(json.dumps({"bench": "client_calls", "servers": args.servers, "kb": args.kb,
                      "calls_per_step": calls["call"], "c_calls_per_step": calls["c_call"]}))


if __name__ == "__main__":
    main()
