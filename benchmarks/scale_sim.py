"""Discrete-event simulator of a parameter-server run: samples/s past one machine.

Workers compute a step, push their gradients (one shard per server) over their
node's link, each server processes the pushes it receives one at a time (FIFO,
one thread), and the parameters come back over the server's link. Sync (mirrored):
a server answers a step's pushes once all workers' have arrived (the barrier);
async: it answers each push at once. Links are full-duplex per node: a transfer
holds the sender's uplink and the receiver's downlink for bytes * 8 / bandwidth
(cut-through: both at once) and arrives one latency later; transfers meeting on a
link cross it one after the other, or with `--fair-links` share it fairly as TCP
flows do (closer to the rate-limited runs here, see docs/scaling.md). Server CPU
per message is `distflow.plan`'s calibration (measured here with
benchmarks/ps_bench.py).

With `--cores C` every process instead runs on ONE host of C cores (loopback: no
link time, the CPU cost is the calibration's), which is how the prediction is
validated against real `python -m distflow.launch` runs on this 2-core machine.
Measured rows with an `mbit` key (benchmarks/link_runs.py: one network namespace
per node, every node's link rate-limited) keep the shared cores and add the
links, with the servers on the nodes the launcher put them on.

    python benchmarks/scale_sim.py                      # the prediction tables
    python benchmarks/scale_sim.py --validate RESULTS   # beside measured runs
    python benchmarks/scale_sim.py --validate link.jsonl --fair-links  # link runs

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import sys
from collections import Counter, deque
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distflow import plan  # noqa: E402

MLP_PARAMS = (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)  # 235,146
# name -> (variable shapes, compute time per worker step at batch 128): distflow.plan's
# models (the MLP's step measured; the CNN's and the 25M model's derived there).
MODELS = {name.upper(): plan.PRESETS[name] for name in ("mlp", "cnn", "25m")}
BATCH = 128
# TCP over Ethernet at MTU 1500 with timestamps: 1448 payload bytes in a 1514-byte
# frame, which is what a rate limiter on a Linux link counts.
TCP_PAYLOAD_FRACTION = 1448 / 1514


@dataclass(frozen=True)
class Config:
    """One simulated run. `cores` set: all on one host of that many cores.

    `shaped`: with `cores`, links are still modelled (every node's link limited to
    the bandwidth). `server_nodes`: the worker node each server shares (its traffic
    with that worker is free), None: every server on a node of its own.
    `payload_fraction`: the share of the link's rate that carries our bytes.
    `shard_bytes`: the bytes each server holds (distflow's placement, see
    `placed_shards`); None: N * 4 / M each.
    `sliced`: with `cores`, the cores are time-sliced among all runnable processes
    (as Linux shares them) instead of handed out first come, first served.
    `fair_links`: concurrent transfers share a link fairly (as TCP flows do)
    instead of crossing it one after the other.
    """

    params: int
    workers: int
    servers: int
    bandwidth_gbit: float
    step_s: float
    mode: str = "sync"
    latency_s: float = plan.DEFAULT_LATENCY_S
    cores: int | None = None
    overhead_s: float = 0.0
    shared_speed: float = 1.0
    shaped: bool = False
    server_nodes: tuple[int, ...] | None = None
    payload_fraction: float = 1.0
    shard_bytes: tuple[int, ...] | None = None
    sliced: bool = False
    fair_links: bool = False
    steps: int = 40
    cal: plan.Calibration = plan.CALIBRATION


class Pool:
    """k identical FIFO servers given as their next free times (a core pool, a link).

    `shared_speed` < 1: a job that starts while another unit is busy runs that much
    slower (cores sharing memory bandwidth and caches).
    """

    def __init__(self, k: int = 1, shared_speed: float = 1.0):
        self.free = [0.0] * k
        self.shared_speed = shared_speed

    def reserve(self, t: float, duration: float) -> float:
        """Occupies the earliest free unit from max(t, its free time); returns the end."""
        i = min(range(len(self.free)), key=self.free.__getitem__)
        start = max(t, self.free[i])
        if any(f > start for j, f in enumerate(self.free) if j != i):
            duration /= self.shared_speed
        self.free[i] = start + duration
        return self.free[i]


class Fluid:
    """Jobs sharing a capacity, each at its `speeds()` share (fluid processor sharing).

    A job is `work` seconds long when it has the capacity alone; the shares are
    recomputed whenever a job starts or ends, and a finished job calls its callback
    at its end time through the simulator's event queue.
    """

    def __init__(self, sim: Sim):
        self.sim = sim
        self.jobs: dict[int, list] = {}
        self.last, self.gen, self.ids = 0.0, 0, 0

    def speeds(self) -> list[float]:
        """Each job's progress per second of simulated time, in `jobs` order."""
        raise NotImplementedError

    def start(self, t: float, work: float, where: tuple, fn, *args) -> None:
        """Adds a job of `work` seconds at t; `where` is what `speeds` shares by."""
        self._advance(t)
        self.ids += 1
        self.jobs[self.ids] = [work, where, fn, args]
        self._schedule()

    def _advance(self, t: float) -> None:
        for job, speed in zip(self.jobs.values(), self.speeds(), strict=True):
            job[0] -= (t - self.last) * speed
        self.last = t

    def _schedule(self) -> None:
        self.gen += 1
        if self.jobs:
            left = min(max(0.0, job[0]) / speed
                       for job, speed in zip(self.jobs.values(), self.speeds(), strict=True))
            self.sim.at(self.last + left, self._tick, self.gen)

    def _tick(self, t: float, gen: int) -> None:
        if gen != self.gen:
            return  # superseded: the set of jobs changed since
        self._advance(t)
        for i in [i for i, job in self.jobs.items() if job[0] <= 1e-9]:
            _, _, fn, args = self.jobs.pop(i)
            fn(t, *args)
        self._schedule()


class SlicedCores(Fluid):
    """k cores time-sliced among the runnable jobs, as Linux's scheduler shares them.

    n jobs each progress at min(1, k / n) of a core's speed, times `shared_speed`
    while more than one core is busy.
    """

    def __init__(self, sim: Sim, k: int, shared_speed: float):
        super().__init__(sim)
        self.k, self.shared_speed = k, shared_speed

    def speeds(self) -> list[float]:
        n = len(self.jobs)
        speed = min(1.0, self.k / max(n, 1)) * (self.shared_speed if min(n, self.k) > 1 else 1)
        return [speed] * n


class FairLinks(Fluid):
    """Full-duplex node links shared fairly by the transfers crossing them, as TCP flows
    share a bottleneck: a transfer from node a to node b gets the smaller of its shares
    of a's uplink and b's downlink (1 / the number of transfers on each)."""

    def speeds(self) -> list[float]:
        up = Counter(job[1][0] for job in self.jobs.values())
        down = Counter(job[1][1] for job in self.jobs.values())
        return [1.0 / max(up[a], down[b]) for _, (a, b), _, _ in self.jobs.values()]


class Sim:
    """The event loop and the state of one run (see the module docstring)."""

    def __init__(self, cfg: Config):
        self.cfg, self.events, self.seq = cfg, [], 0
        self.shards = cfg.shard_bytes or (cfg.params * plan.BYTES_PER_PARAM / cfg.servers,) * (
            cfg.servers)
        self.up = [Pool() for _ in range(cfg.workers + cfg.servers)]
        self.down = [Pool() for _ in range(cfg.workers + cfg.servers)]
        self.cost = [cfg.cal.s_per_message + 2 * b * cfg.cal.s_per_byte for b in self.shards]
        self.server_free = [0.0] * cfg.servers
        self.queue = [deque() for _ in range(cfg.servers)]
        self.serving = [False] * cfg.servers
        self.cores = Pool(cfg.cores, cfg.shared_speed) if cfg.cores else None
        self.sliced = SlicedCores(self, cfg.cores, cfg.shared_speed) if (
            cfg.cores and cfg.sliced) else None
        self.links = FairLinks(self) if cfg.fair_links else None
        self.arrived = [0] * cfg.servers
        self.replies = [0] * cfg.workers
        self.done_steps = [0] * cfg.workers
        self.end = 0.0

    def at(self, t: float, fn, *args) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, fn, args))

    def run(self) -> float:
        """Simulates `steps` steps per worker; returns samples/s."""
        for w in range(self.cfg.workers):
            self.at(0.0, self.compute, w)
        while self.events:
            t, _, fn, args = heapq.heappop(self.events)
            fn(t, *args)
        return self.cfg.workers * self.cfg.steps * BATCH / self.end

    def reserve(self, t: float, duration: float) -> float:
        """End of `duration` of CPU from t: a core of the host's pool or the node's own."""
        return self.cores.reserve(t, duration) if self.cores else t + duration

    def busy(self, t: float, duration: float, fn, *args) -> None:
        """Runs `duration` of CPU from t, then fn (at its end)."""
        if self.sliced:
            self.sliced.start(t, duration, (), fn, *args)
        else:
            self.at(self.reserve(t, duration), fn, *args)

    def compute(self, t: float, w: int) -> None:
        self.busy(t, self.cfg.step_s + self.cfg.overhead_s, self.computed, w)

    def computed(self, t: float, w: int) -> None:
        for s in range(self.cfg.servers):
            self.send(t, w, self.cfg.workers + s, self.shards[s], self.push, s, w)

    def node(self, proc: int) -> int:
        """The node of process proc (workers first, then servers)."""
        nodes, w = self.cfg.server_nodes, self.cfg.workers
        return nodes[proc - w] if nodes is not None and proc >= w else proc

    def send(self, t: float, src: int, dst: int, nbytes: float, fn, *args) -> None:
        """Sends nbytes from process src to process dst; fn runs on their arrival."""
        src, dst = self.node(src), self.node(dst)
        if (self.cores and not self.cfg.shaped) or src == dst:
            self.at(t, fn, *args)
            return
        d = nbytes * 8 / (self.cfg.bandwidth_gbit * 1e9 * self.cfg.payload_fraction)
        if self.links:
            self.links.start(t, d, (src, dst), self.arrive, fn, args)
            return
        start = max(t, self.up[src].free[0], self.down[dst].free[0])
        self.up[src].free[0] = self.down[dst].free[0] = start + d
        self.arrive(start + d, fn, args)

    def arrive(self, t: float, fn, args: tuple) -> None:
        """The last byte left at t: fn runs one latency later."""
        self.at(t + self.cfg.latency_s, fn, *args)

    def push(self, t: float, s: int, w: int) -> None:
        """A push arrives at server s: processed after the ones before it (FIFO).

        First come, first served cores: its CPU is booked now for when the server
        is free; time-sliced: it waits in the server's queue until then.
        """
        if not self.sliced:
            self.server_free[s] = end = self.reserve(max(t, self.server_free[s]), self.cost[s])
            self.at(end, self.processed, s, w)
            return
        self.queue[s].append(w)
        if not self.serving[s]:
            self.serve(t, s)

    def serve(self, t: float, s: int) -> None:
        self.serving[s] = True
        self.sliced.start(t, self.cost[s], (), self.processed, s, self.queue[s].popleft())

    def processed(self, t: float, s: int, w: int) -> None:
        self.serving[s] = False
        if self.queue[s]:
            self.serve(t, s)
        if self.cfg.mode == "async":
            self.send(t, self.cfg.workers + s, w, self.shards[s], self.reply, w)
            return
        self.arrived[s] += 1
        if self.arrived[s] == self.cfg.workers:
            self.arrived[s] = 0
            for v in range(self.cfg.workers):
                self.send(t, self.cfg.workers + s, v, self.shards[s], self.reply, v)

    def reply(self, t: float, w: int) -> None:
        self.replies[w] += 1
        if self.replies[w] < self.cfg.servers:
            return
        self.replies[w] = 0
        self.done_steps[w] += 1
        self.end = max(self.end, t)
        if self.done_steps[w] < self.cfg.steps:
            self.compute(t, w)


def simulate(cfg: Config) -> dict:
    """Runs one configuration; returns samples/s and scaling efficiency."""
    rate = Sim(cfg).run()
    alone = BATCH / cfg.step_s * (min(cfg.workers, cfg.cores) if cfg.cores else cfg.workers)
    return {"samples_per_s": rate, "efficiency": rate / alone}


def tables(workers: list[int], servers: list[int], bandwidths: list[float],
           fair_links: bool = False, models: list[str] | None = None) -> list[dict]:
    """Simulated rows for every model, mode, bandwidth, W and M <= W; servers hold
    distflow's placement of the model's variables."""
    rows = []
    for model in models or list(MODELS):
        shapes, step_s = MODELS[model]
        params = sum(math.prod(s) for s in shapes.values())
        for mode in ("sync", "async"):
            for bw in bandwidths:
                for w in workers:
                    for m in (s for s in servers if s <= max(w, 1)):
                        cfg = Config(params, w, m, bw, step_s, mode, fair_links=fair_links,
                                     steps=max(4, 40 // max(1, w // 16)),
                                     shard_bytes=plan.shard_bytes(m, shapes))
                        rows.append({"model": model, "params": params, "mode": mode,
                                     "gbit": bw, "workers": w, "servers": m,
                                     **simulate(cfg)})
    return rows


def validate(path: Path, cores: int, shared_speed: float = 1.0, **model: bool) -> list[dict]:
    """Measured runs (JSON lines of scale_runs.py) beside the simulator on one host.

    Calibrated on two runs only: the one process gives the compute time, and sync
    1 worker x 1 server the per-step overhead of `fit` under the launcher beyond the
    simulated push and pull; every other run is a prediction. Server costs are
    `distflow.plan`'s (benchmarks/ps_bench.py); `shared_speed` is the host's, measured
    by running two one-process trainings at once (each one's samples/s over one
    alone's). `model`: `Config`'s `sliced` and `fair_links`.
    """
    measured = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    step_s = BATCH / _find(measured, 0, 0, "none")
    bare = simulate(Config(MLP_PARAMS, 1, 1, 100, step_s, "sync", 0, cores,
                           shared_speed=shared_speed, **model))
    overhead = BATCH / _find(measured, 1, 1, "sync") - BATCH / bare["samples_per_s"]
    rows = []
    for r in (r for r in measured if r["workers"] > 0):
        cfg = replace(_measured_config(r, step_s, cores, overhead, shared_speed), **model)
        pred = simulate(cfg)["samples_per_s"]
        rows.append({**r, "predicted": pred, "error": pred / r["samples_per_s"] - 1,
                     "overhead_ms": overhead * 1e3})
    return rows


def placed_shards(servers: int) -> tuple[int, ...]:
    """Bytes on each of `servers` servers for the MLP under distflow's placement.

    Its largest variable (the 784 x 256 kernel, 85 % of the bytes) is below the
    1 MiB that placement cuts, so one server holds it whole.
    """
    return plan.shard_bytes(servers, plan.MLP_SHAPES)


def _measured_config(r: dict, step_s: float, cores: int, overhead: float,
                     shared_speed: float) -> Config:
    """The simulated twin of measured run r: on one host, through its links if shaped."""
    cfg = Config(MLP_PARAMS, r["workers"], r["servers"], 100, step_s, r["mode"], 0,
                 cores, overhead, shared_speed, shard_bytes=placed_shards(r["servers"]))
    if "mbit" not in r:
        return cfg
    return replace(cfg, bandwidth_gbit=r["mbit"] / 1000, shaped=True,
                   latency_s=plan.DEFAULT_LATENCY_S, server_nodes=tuple(r["server_nodes"]),
                   payload_fraction=TCP_PAYLOAD_FRACTION)


def _find(rows: list[dict], workers: int, servers: int, mode: str) -> float:
    """samples/s of the unshaped measured run (workers, servers, mode)."""
    for r in (r for r in rows if "mbit" not in r):
        if (r["workers"], r["servers"], r["mode"]) == (workers, servers, mode):
            return r["samples_per_s"]
    raise ValueError(f"The measured runs have no row workers={workers}, servers={servers}, "
                     f"mode={mode!r}; run benchmarks/scale_runs.py with --workers 1,... "
                     "--servers 1,2.")


def _print(rows: list[dict], keys: list[str]) -> None:
    print(" ".join(f"{k:>12}" for k in keys))
    for r in rows:
        cells = (r.get(k, "-") for k in keys)
        print(" ".join(f"{c:>12.3g}" if isinstance(c, float) else f"{c:>12}" for c in cells))


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default="1,2,4,8,16,32,64,128,256")
    p.add_argument("--servers", default="1,2,4,8,16,32,64")
    p.add_argument("--bandwidth-gbit", default="1,10,25,100")
    p.add_argument("--models", default=",".join(MODELS), help="of " + ",".join(MODELS))
    p.add_argument("--validate", type=Path, help="JSON lines of measured runs")
    p.add_argument("--cores", type=int, default=2, help="the host's cores (--validate)")
    p.add_argument("--shared-speed", type=float, default=1.0,
                   help="speed of a core while the others are busy (--validate)")
    p.add_argument("--sliced", action="store_true",
                   help="time-slice the cores among runnable processes (--validate)")
    p.add_argument("--fair-links", action="store_true",
                   help="concurrent transfers share a link fairly instead of queueing "
                        "(slow past a few hundred concurrent transfers)")
    args = p.parse_args(argv)
    if args.validate:
        rows = validate(args.validate, args.cores, args.shared_speed, sliced=args.sliced,
                        fair_links=args.fair_links)
        _print(rows, ["mode", "workers", "servers", "mbit", "samples_per_s", "predicted",
                      "error"])
    else:
        rows = tables([int(x) for x in args.workers.split(",")],
                      [int(x) for x in args.servers.split(",")],
                      [float(x) for x in args.bandwidth_gbit.split(",")], args.fair_links,
                      args.models.split(","))
        _print(rows, ["model", "mode", "gbit", "workers", "servers", "samples_per_s",
                      "efficiency"])
    print(json.dumps({"bench": "scale_sim", "rows": rows}))
    return rows


if __name__ == "__main__":
    main()
