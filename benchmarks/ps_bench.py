"""Parameter-server benchmark: `PSClient.push_pull` round trips against raw pyzmq.

Side by side in one run, for parameter sets of 64 KB, 1 MB, 16 MB and 64 MB
(4 float32 variables of a quarter each; the MLP 784-256-128-10 is 0.9 MB):

- raw: a ZeroMQ REQ socket sends the same bytes (in the same <= 8 MB frames)
  to a REP echo process that sends them back, and the client copies the reply
  into its arrays as push_pull does: the floor.
- async x1: one server process (async mode, SGD with learning rate 0, so it
  validates and applies a full update each step) and one client. Above the
  client's `pipeline_bytes` (4 MiB) the push is pipelined (sent in parts the
  server updates and answers while the rest is on the wire).
- async x1, one message (16 MB and up): the same with pipelining off
  (`pipeline_bytes=None`), to show what pipelining buys.
- async x2: the same variables spread over two server processes.
- sync 2w: one server in sync mode with two clients (the second one in its own
  process, pushing in lockstep); the time is one synchronous step.
- CURVE: async x1 with CURVE encryption and the ZAP allow-list (1 MB, 16 MB).
- with `--baseline DIR` (a checkout of another commit, e.g. a `git worktree`):
  async x1 and sync 2w again with DIR's servers (and DIR's client in the sync
  peer), in the same rounds; "x base" is this tree's time / DIR's, paired per
  round like "x raw" (above 1: this tree is slower), and "CPU x base" the
  servers' CPU time per step (all their threads, Linux schedstat) over the
  rounds, this tree's / DIR's: less sensitive to a loaded machine than time.

Every process pins one BLAS thread. The configurations of one size run side
by side in interleaved blocks of steps, so load changes on a shared machine
hit all alike. "x raw" is push_pull time / raw time (above 1 is overhead), the
median over rounds of each round's paired ratio (q1-q3: its quartiles);
throughput = bytes sent both ways / time. "steal %" is the CPU time the
hypervisor gave to other guests during the size's runs (Linux /proc/stat): on
a shared VM a high value means the host, not the code, set the pace.
Prints a table and one JSON line. Targets from the issue: async x1 throughput
at least 0.8x raw (time ratio <= 1.25) from 1 MB up, latency under 2x raw at
64 KB.

    python benchmarks/ps_bench.py [--quick] [--sizes 64KB,1MB] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from distflow.distribute import protocol, transport  # noqa: E402
from distflow.distribute.client import PSClient  # noqa: E402

SIZES = {"64KB": 64 * 1024, "1MB": 1024**2, "16MB": 16 * 1024**2, "64MB": 64 * 1024**2}
CURVE_SIZES = ("1MB", "16MB")
UNPIPELINED_SIZES = ("16MB", "64MB")
SGD_LR0 = {"name": "sgd", "hp": {}, "learning_rate": 0.0}
QUIET_CORES = 0.3  # `wait_quiet`: a run starts once other work keeps fewer cores busy

ECHO = textwrap.dedent("""
    import sys, zmq
    sock = zmq.Context().socket(zmq.REP)
    sock.bind(sys.argv[1])
    while True:
        frames = sock.recv_multipart(copy=False)
        if len(frames) == 1 and frames[0].bytes == b"stop":
            sock.send(b"bye")
            break
        sock.send_multipart(frames, copy=False)
""")

PEER = textwrap.dedent("""
    import sys, numpy as np
    from distflow.distribute.client import PSClient
    addrs, n, steps = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
    params = {f"layer{i}/kernel": np.ones(n, np.float32) for i in range(4)}
    grads = {k: np.full(n, 0.5, np.float32) for k in params}
    client = PSClient(addrs, worker_id=1, timeout=60.0)
    client.init(params, {"name": "sgd", "hp": {}, "learning_rate": 0.0}, out=params)
    for _ in range(steps):
        client.push_pull(grads, out=params)
    client.close()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(tree: str | None = None, **extra: str) -> dict:
    """A child's environment: one BLAS thread, distflow from `tree` (default: this one)."""
    path = os.pathsep.join(filter(None, [tree or str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "PYTHONPATH": path, "DISTFLOW_LOG_LEVEL": "WARNING",
            **extra}


class Runner:
    """One configuration: a `step` callable to time, a `close` to clean up, and the
    server processes it talks to."""

    def __init__(self, step, close, procs=()):
        self.step, self.close, self.procs = step, close, list(procs)

    def cpu_ns(self) -> int:
        """CPU time of its servers so far, every thread (Linux; 0 elsewhere)."""
        total = 0
        for proc in self.procs:
            for task in Path(f"/proc/{proc.pid}/task").glob("*/schedstat"):
                total += int(task.read_text().split()[0])
        return total


def raw_runner(nbytes: int) -> Runner:
    import zmq  # the baseline itself is raw pyzmq

    addr = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-c", ECHO, addr], env=child_env())
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(addr)
    payload = np.ones(nbytes // 4, np.float32)
    raw = memoryview(payload.view(np.uint8))
    frames = [raw[i:i + protocol.FRAME_BYTES] for i in range(0, nbytes, protocol.FRAME_BYTES)]
    flat = np.empty_like(payload).view(np.uint8)

    def step():
        sock.send_multipart(frames, copy=False)
        if not sock.poll(30_000):
            raise TimeoutError(f"raw echo at {addr} did not answer within 30 s")
        offset = 0
        for frame in sock.recv_multipart(copy=False):
            view = np.frombuffer(frame.buffer, np.uint8)
            flat[offset:offset + view.size] = view
            offset += view.size

    def close():
        sock.send(b"stop")
        sock.poll(5000)
        proc.wait(10)
        sock.close()

    return Runner(step, close)


def start_servers(count: int, mode: str, keys: str | None,
                  tree: str | None = None) -> tuple[list, list[str]]:
    addrs = [f"tcp://127.0.0.1:{free_port()}" for _ in range(count)]
    procs = []
    for rank in range(count):
        env = child_env(tree, DISTFLOW_RANK=str(rank), DISTFLOW_PS_ADDRS=",".join(addrs),
                        DISTFLOW_STRATEGY="mirrored" if mode == "sync" else mode,
                        DISTFLOW_NUM_WORKERS="2" if mode == "sync" else "1",
                        DISTFLOW_KEYS=keys or "", DISTFLOW_HEARTBEAT_TIMEOUT="60")
        procs.append(subprocess.Popen([sys.executable, "-m", "distflow.distribute.server"],
                                      env=env, cwd=tree))
    return procs, addrs


def ps_runner(nbytes: int, steps: int, servers: int = 1, mode: str = "async",
              keys: str | None = None, pipeline: bool = True, tree: str | None = None
              ) -> Runner:
    """push_pull through real servers; `steps`: how many the sync peer will take;
    `tree`: another checkout whose servers (and sync peer) run instead of this one's."""
    procs, addrs = start_servers(servers, mode, keys, tree)
    n = nbytes // 16
    params = {f"layer{i}/kernel": np.ones(n, np.float32) for i in range(4)}
    grads = {name: np.full(n, 0.5, np.float32) for name in params}
    peer = None
    if mode == "sync":  # the second worker pushes in lockstep with ours
        peer = subprocess.Popen([sys.executable, "-c", PEER, ",".join(addrs), str(n),
                                 str(steps)], env=child_env(tree), cwd=tree)
    client = PSClient(addrs, worker_id=0, timeout=60.0, keys_dir=keys, retries=0,
                      **({} if pipeline else {"pipeline_bytes": None}))
    client.init(params, SGD_LR0, out=params)

    def close():
        if peer is not None:
            peer.wait(60)
        client.shutdown()
        client.close(leave=False)
        for proc in procs:
            proc.wait(30)

    return Runner(lambda: client.push_pull(grads, out=params), close, procs)


def reps_for(nbytes: int, quick: bool) -> int:
    base = max(7, min(400, int(2.5e7 / max(nbytes, 1))))
    return max(5, base // 4) if quick else base


ROUNDS = 15


def measure(label: str, nbytes: int, reps: int, keys: str, baseline: str | None = None
            ) -> dict:
    """Times every configuration in interleaved blocks of steps (ROUNDS rounds).

    Each round times one short block of every configuration back to back, so a
    change in the machine's load hits all of them alike; "x raw" is the median
    over rounds of (the configuration's median step in the round / raw's), a
    paired ratio, with its quartiles for async x1. The first step of each block
    is not timed (it wakes up a process that sat idle).
    """
    block = max(2, -(-reps // ROUNDS) + 1)
    steps = 2 + ROUNDS * block
    runners = {"raw": raw_runner(nbytes), "async1": ps_runner(nbytes, steps),
               "async2": ps_runner(nbytes, steps, servers=2),
               "sync2w": ps_runner(nbytes, steps, mode="sync")}
    if label in UNPIPELINED_SIZES:
        runners["async1np"] = ps_runner(nbytes, steps, pipeline=False)
    if label in CURVE_SIZES:
        runners["curve"] = ps_runner(nbytes, steps, keys=keys)
    if baseline:
        runners["base_async1"] = ps_runner(nbytes, steps, tree=baseline)
        runners["base_sync2w"] = ps_runner(nbytes, steps, mode="sync", tree=baseline)
    times: dict[str, list[float]] = {key: [] for key in runners}
    rounds: list[dict[str, float]] = []
    cpu_before = cpu_times()
    try:
        for runner in runners.values():  # warm-up: connections, page faults
            runner.step()
            runner.step()
        cpu = {key: -runner.cpu_ns() for key, runner in runners.items()}
        for _ in range(ROUNDS):
            rounds.append({key: time_block(runner, block, times[key])
                           for key, runner in runners.items()})
        cpu = {key: cpu[key] + runner.cpu_ns() for key, runner in runners.items()}
    finally:
        for runner in runners.values():
            runner.close()
    row = summarize(label, nbytes, reps, times, rounds)
    for key in ("async1", "sync2w"):
        if f"base_{key}" in cpu and cpu[f"base_{key}"] > 0:
            row[f"{key}_server_cpu_us"] = cpu[key] / (ROUNDS * block) / 1e3
            row[f"base_{key}_server_cpu_us"] = cpu[f"base_{key}"] / (ROUNDS * block) / 1e3
            row[f"{key}_cpu_x_base"] = cpu[key] / cpu[f"base_{key}"]
    row["steal_pct"] = steal_percent(cpu_before, cpu_times())
    return row


def cpu_times() -> list[int]:
    """The machine's CPU time counters (Linux /proc/stat; empty elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            return [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return []


def steal_percent(before: list[int], after: list[int]) -> float | None:
    """CPU time the hypervisor gave to other guests, in % of all CPU time, between two
    `cpu_times`: on a busy host the run is slowed by more than the code measured."""
    if len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before, after)]
    return round(100 * delta[7] / max(1, sum(delta)), 1)


def other_cores(before: list[int], after: list[int], own_cpu_s: float,
                wall_s: float) -> float | None:
    """Cores that other processes kept busy between two `cpu_times`, on average: the
    machine's user, nice, system and interrupt time less `own_cpu_s`, over `wall_s`.
    Near 0 on a quiet machine; a run beside 1 or more was shared with other work."""
    if len(before) < 7 or len(after) < 7 or wall_s <= 0:
        return None
    busy = sum(after[i] - before[i] for i in (0, 1, 2, 5, 6)) / os.sysconf("SC_CLK_TCK")
    return round(max(0.0, busy - own_cpu_s) / wall_s, 2)


def wait_quiet(limit: float = QUIET_CORES, most_s: float = 120.0) -> float:
    """Waits (at most `most_s`) until other processes kept fewer than `limit` cores busy
    over 2 s; returns the last such reading (the cores busy on the machine meanwhile)."""
    deadline, busy = time.monotonic() + most_s, 0.0
    while time.monotonic() < deadline:
        before = cpu_times()
        time.sleep(2.0)
        busy = other_cores(before, cpu_times(), 0.0, 2.0) or 0.0
        if busy < limit:
            break
    return busy


def time_block(runner: Runner, block: int, sink: list[float]) -> float:
    """Runs a block of steps; appends the timed ones to `sink`; returns their median."""
    runner.step()
    timed = []
    for _ in range(block - 1):
        t0 = time.perf_counter()
        runner.step()
        timed.append(time.perf_counter() - t0)
    sink.extend(timed)
    return float(np.median(timed))


def summarize(label: str, nbytes: int, reps: int, times: dict, rounds: list[dict]) -> dict:
    row = {"size": label, "bytes": nbytes, "reps": reps, "rounds": len(rounds)}
    row.update({f"{key}_ms": float(np.median(t)) * 1e3 for key, t in times.items()})
    for key in times:
        if key != "raw":
            ratios = [r[key] / r["raw"] for r in rounds]
            row[f"{key}_x_raw"] = float(np.median(ratios))
            if key == "async1":
                row["async1_x_raw_q1"], row["async1_x_raw_q3"] = (
                    float(q) for q in np.percentile(ratios, [25, 75]))
    row["raw_GBps"] = 2 * nbytes / row["raw_ms"] / 1e6
    row["async1_GBps"] = 2 * nbytes / row["async1_ms"] / 1e6
    if "curve_ms" in row:
        row["curve_cost"] = row["curve_x_raw"] / row["async1_x_raw"]
    for key in ("async1", "sync2w"):
        if f"base_{key}" in times:
            row[f"{key}_x_base"] = float(np.median([r[key] / r[f"base_{key}"]
                                                     for r in rounds]))
    return row


def print_table(rows: list[dict]) -> None:
    head = (f"{'size':>5} {'raw ms':>8} {'async1':>8} {'x raw':>6} {'q1-q3':>9} {'1 msg':>8} "
            f"{'x raw':>6} "
            f"{'async2':>8} {'x raw':>6} {'sync2w':>8} {'x raw':>6} {'CURVE':>8} {'x plain':>7} "
            f"{'raw GB/s':>8} {'p_p GB/s':>8} {'steal %':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        curve = (f"{r['curve_ms']:8.3f} {r['curve_cost']:7.2f}" if "curve_ms" in r
                 else f"{'-':>8} {'-':>7}")
        single = (f"{r['async1np_ms']:8.3f} {r['async1np_x_raw']:6.2f}" if "async1np_ms" in r
                  else f"{'-':>8} {'-':>6}")
        print(f"{r['size']:>5} {r['raw_ms']:8.3f} {r['async1_ms']:8.3f} "
              f"{r['async1_x_raw']:6.2f} {r['async1_x_raw_q1']:4.2f}-{r['async1_x_raw_q3']:4.2f} "
              f"{single} {r['async2_ms']:8.3f} {r['async2_x_raw']:6.2f} "
              f"{r['sync2w_ms']:8.3f} {r['sync2w_x_raw']:6.2f} {curve} "
              f"{r['raw_GBps']:8.2f} {r['async1_GBps']:8.2f} {r['steal_pct'] or 0:7.1f}")
    for r in rows:
        if "async1_x_base" in r:
            print(f"{r['size']:>5} against the baseline: async x1 {r['async1_x_base']:.3f}x, "
                  f"sync 2w {r['sync2w_x_base']:.3f}x (this tree's time / the baseline's); "
                  f"servers' CPU per step x base: async x1 {r.get('async1_cpu_x_base', 0):.3f}, "
                  f"sync 2w {r.get('sync2w_cpu_x_base', 0):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help=f"comma-separated subset of {list(SIZES)}")
    parser.add_argument("--baseline", default=None,
                        help="a checkout of another commit whose servers run side by side")
    args = parser.parse_args()
    labels = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in labels if s not in SIZES]
    if unknown:
        parser.error(f"--sizes must name sizes among {list(SIZES)}. Received: {unknown}")
    with tempfile.TemporaryDirectory() as keys:
        transport.generate_keys(keys, 2)
        rows = [measure(label, SIZES[label], reps_for(SIZES[label], args.quick), keys,
                        args.baseline) for label in labels]
    print_table(rows)
    summary = {"bench": "ps_push_pull", "rows": rows,
               "targets": {"async1_x_raw_max_1MB_up": 1.25, "async1_x_raw_max_64KB": 2.0}}
    print(json.dumps(summary, default=lambda x: round(x, 4)))


if __name__ == "__main__":
    main()
