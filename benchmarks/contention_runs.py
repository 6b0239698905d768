"""How fast a host's cores run with n processes runnable at once: the simulator's contention curve.

Starts n independent one-process trainings of the MLP (`benchmarks/train_worker.py`,
one BLAS thread each) at the same moment, for each n of `--procs`, and prints one
JSON line per n: every process's samples/s, their sum, the one-process rate of
the same round, and `speed`: the sum over n alone-rates, that is the work done
per second by all n together in units of one process alone (1 at n = 1). With
`--work busy` each process instead counts iterations of a pure-Python loop for
`--seconds` (no memory traffic to speak of: the scheduler's share alone).
With `--work wakeup` n - 1 trainings run while two more processes play
ping-pong with 64-byte ZeroMQ messages over loopback (each blocked until the
other's message wakes it, as a server and its workers are), and the line gives
the mean, median and 90th-percentile round trip in microseconds (`rtt_us`,
`rtt_median_us`, `rtt90_us`): the round trip beyond the idle one (n = 1) is two
wake-ups' wait for a core.
Rounds (`--rounds`) repeat the whole sweep; the machine's 1-minute load average
before each n is in `load1`, and the cores other processes kept busy meanwhile
in `other_cores` (Linux /proc/stat; `scale_sim.py` leaves out lines above 0.2).

    DISTFLOW_DATA=/work/shared/data python benchmarks/contention_runs.py \\
        --procs 1,2,4,8,10 --rounds 3 > contention.jsonl
    python benchmarks/scale_sim.py --validate runs.jsonl --cores 2 --contention contention.jsonl

`scale_sim.py --contention` takes the median `speed` per n of the `train` lines.
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
sys.path.insert(0, str(HERE))

from ps_bench import cpu_times, other_cores, steal_percent  # noqa: E402
from scale_runs import children_cpu_s  # noqa: E402
from train_bench import parse_result  # noqa: E402

BUSY = """
import sys, time
start, seconds = float(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
n, end = 0, start + seconds
while time.time() < end:
    for _ in range(1000):
        n += 1
print('{"samples_per_s": %f}' % (n / seconds))
"""


PING = """
import sys, time, zmq
ctx, n = zmq.Context(), int(sys.argv[2])
if sys.argv[1] == "pong":
    sock = ctx.socket(zmq.REP); sock.bind("tcp://127.0.0.1:" + sys.argv[3])
    for _ in range(n):
        sock.send(sock.recv())
    sys.exit()
sock = ctx.socket(zmq.REQ); sock.connect("tcp://127.0.0.1:" + sys.argv[3])
times = []
for _ in range(n):
    t = time.perf_counter(); sock.send(b"x" * 64); sock.recv()
    times.append(time.perf_counter() - t)
    time.sleep(0.002)
mean = sum(times) / n
times.sort()
print('{"rtt_us": %f, "rtt_median_us": %f, "rtt90_us": %f}'
      % (mean * 1e6, times[n // 2] * 1e6, times[n * 9 // 10] * 1e6))
"""


def wakeup(n: int, epochs: int, port: int = 47311, count: int = 2000) -> dict:
    """Ping-pong round trips while n - 1 trainings run: mean, median, 90th percentile."""
    busy = [subprocess.Popen(_command("train", epochs, 0, 0), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=_env(), cwd=HERE.parent)
            for _ in range(n - 1)]
    time.sleep(4.0 if busy else 0.0)  # past their start-up, into training
    pong = subprocess.Popen([sys.executable, "-c", PING, "pong", str(count), str(port)],
                            env=_env())
    ping = subprocess.run([sys.executable, "-c", PING, "ping", str(count), str(port)],
                          capture_output=True, text=True, env=_env(), timeout=600)
    pong.wait(timeout=60)
    for proc in busy:
        proc.kill()
        proc.wait()
    return json.loads(ping.stdout)


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                MKL_NUM_THREADS="1", PYTHONPATH=str(HERE.parent))


def _command(work: str, epochs: int, seconds: float, start: float) -> list[str]:
    if work == "busy":
        return [sys.executable, "-c", BUSY, str(start), str(seconds)]
    return [sys.executable, str(HERE / "train_worker.py"), "--epochs", str(epochs),
            "--batch-size", "128"]


def rates(n: int, work: str, epochs: int, seconds: float) -> list[float]:
    """samples/s (or loop iterations/s) of each of n processes started together."""
    cmd = _command(work, epochs, seconds, time.time() + 1.0 + 0.2 * n)
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(), cwd=HERE.parent) for _ in range(n)]
    outs = [(p, *p.communicate(timeout=1800)) for p in procs]
    return [parse_result(cmd, p.returncode, out, err)["samples_per_s"] for p, out, err in outs]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--procs", default="1,2,4,8,10", help="numbers of processes at once")
    p.add_argument("--work", choices=["train", "busy", "wakeup"], default="train")
    p.add_argument("--epochs", type=int, default=2, help="per training (--work train)")
    p.add_argument("--seconds", type=float, default=5.0, help="per loop (--work busy)")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)
    for _ in range(args.rounds):
        alone = None
        for n in sorted({1, *(int(x) for x in args.procs.split(","))}):
            row, alone = measure(n, args, alone)
            print(json.dumps(row), flush=True)


def measure(n: int, args: argparse.Namespace, alone: float | None) -> tuple[dict, float]:
    """One line of the output for n processes, and the round's one-process rate."""
    load1, host, before, start = (os.getloadavg()[0], cpu_times(), children_cpu_s(),
                                  time.perf_counter())
    if args.work == "wakeup":
        row = {"work": "wakeup", "procs": n, **wakeup(n, args.epochs)}
    else:
        each = rates(n, args.work, args.epochs, args.seconds)
        alone = each[0] if n == 1 else alone
        row = {"work": args.work, "procs": n, "rates": each, "total": sum(each),
               "alone": alone, "speed": sum(each) / alone}
    cpu_s, wall_s = children_cpu_s() - before, time.perf_counter() - start
    return {**row, "load1": load1,
            "other_cores": other_cores(host, cpu_times(), cpu_s, wall_s),
            "steal_pct": steal_percent(host, cpu_times())}, alone


if __name__ == "__main__":
    main()
