"""Discrete-event simulator of a parameter-server run: samples/s past one machine.

Workers compute a step, push their gradients (one shard per server) over their
node's link, each server processes the pushes it receives one at a time (FIFO,
one thread), and the parameters come back over the server's link. Sync (mirrored):
a server answers a step's pushes once all workers' have arrived (the barrier);
async: it answers each push at once. Links are full-duplex per node: a transfer
crosses the sender's uplink and the receiver's downlink (cut-through: both at
once) and arrives one latency later; transfers meeting on a link share it fairly
as TCP flows do (validated against rate-limited runs here, see docs/scaling.md),
or with `--fifo-links` cross it one after the other, each holding it for
bytes * 8 / bandwidth. Server CPU per message is `distflow.plan`'s calibration
(measured here with benchmarks/ps_bench.py).

With `--cores C` every process instead runs on ONE host of C cores (loopback: no
link time, the CPU cost is the calibration's), which is how the prediction is
validated against real `python -m distflow.launch` runs on this 2-core machine;
`--contention FILE` gives it the host's measured speed with n runnable processes
(benchmarks/contention_runs.py). Measured rows with an `mbit` key
(benchmarks/link_runs.py: one network namespace per node, every node's link
rate-limited) keep the shared cores and add the links, with the servers on the
nodes the launcher put them on.
`--costs FILE` (benchmarks/push_costs.py) builds each run instead from its
configuration's measured CPU per push: workers' and servers' main threads and the
I/O thread every message crosses, on cores time-sliced at one core's speed less
the measured steal; `--wake FILE` makes every wake-up of a blocked thread wait a
measured latency (see `load_wake_s`).

    python benchmarks/scale_sim.py                      # the prediction tables
    python benchmarks/scale_sim.py --fifo-links         # ... with queued links
    python benchmarks/scale_sim.py --validate RESULTS --cores 2 --contention C.jsonl
    python benchmarks/scale_sim.py --validate link.jsonl --cores 2 --shared-speed 0.69
    python benchmarks/scale_sim.py --validate RESULTS --cores 2 --costs costs.jsonl
    python benchmarks/scale_sim.py --validate RESULTS --cores 2 --costs costs.jsonl \
        --wake costs.jsonl                              # ... + a wake-up latency

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import statistics
import sys
from collections import defaultdict, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
    `fair_links`: concurrent transfers share a link fairly (as TCP flows do, the
    default) instead of crossing it one after the other (first in, first out).
    `contention`: with `cores`, the host's measured speed with n runnable processes,
    as (n, speed) points (`benchmarks/contention_runs.py`: the work n processes do
    per second together, in units of one alone); the cores are then time-sliced
    and each of n runnable jobs runs at speed(n) / n (linear between the points,
    the last point's speed past it), in place of `shared_speed`.
    `wakeup`: with `contention`, the measured wait of a process woken by a message
    (a server by a push when idle, a worker by its reply) with n processes
    runnable, as (n, seconds) points (`contention_runs.py --work wakeup`).
    `costs`: with `cores`, the CPU a worker and each server spend per push as
    measured in runs of this configuration (`benchmarks/push_costs.py`, see
    `PushCosts`) in place of `step_s + overhead_s` and the calibration's server cost;
    the cores are then time-sliced at one core's speed each (the measured CPU
    seconds already include what sharing the cores cost) less what the hypervisor
    steals from them (`PushCosts.steal_cores`).
    `wake_s`: with time-sliced cores, every wake-up of a blocked thread (a worker's
    main thread by its reply, an idle server's by a push, with `costs` an idle I/O
    thread by a message) waits this long before it runs, holding no core
    (`load_wake_s`: the bare cross-core wake-up of `benchmarks/wakeup_latency.py`, or
    the run delay per slice of push_costs.py's one-worker runs).
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
    fair_links: bool = True
    contention: tuple[tuple[int, float], ...] | None = None
    wakeup: tuple[tuple[int, float], ...] | None = None
    costs: PushCosts | None = None
    wake_s: float = 0.0
    steps: int = 40
    cal: plan.Calibration = plan.CALIBRATION


@dataclass(frozen=True)
class PushCosts:
    """CPU seconds per push measured in runs of one configuration (push_costs.py).

    `worker_s`: a worker's main thread per step (its compute and the client's
    encoding, sending, receiving and decoding), on the step's critical path.
    `worker_io_s`: its other threads (ZeroMQ's I/O thread) per step, and
    `server_io_s` each server's per push it answers: every message crosses the
    sender's I/O thread and then the receiver's, in place of link time; each is one
    thread (one message at a time) beside its process's main thread (the server's
    main thread takes the next push meanwhile), and half of its cost per push is
    the push's, half the reply's (`Sim.io_cost`).
    `server_s`: each server's main thread per push (serial: decoding, the update,
    the reply).
    `steal_cores`: the cores the hypervisor gave other guests meanwhile, on average
    (Linux /proc/stat's steal time, which no thread's CPU time includes): the cores
    run at 1 - steal_cores / their number of their speed.
    """

    worker_s: float
    worker_io_s: float
    server_s: tuple[float, ...]
    server_io_s: tuple[float, ...]
    steal_cores: float = 0.0


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
    """Jobs sharing resources, each at the speed `speed` gives it (fluid processor sharing).

    A job is `work` seconds long when it has its resources alone and holds the
    resources `keys(where)` names; its speed depends only on how many jobs hold
    each of them. When jobs start or end, only the jobs sharing a resource with
    them are brought up to date (the others' speeds cannot change), jobs starting
    at one instant are placed together, and a finished job calls its callback at
    its end time through the simulator's event queue.
    """

    EPS = 1e-12  # seconds: jobs ending this close together end together

    def __init__(self, sim: Sim):
        self.sim = sim
        # id -> [work left, as of, speed, keys, fn, args, version of its end in `ends`]
        self.jobs: dict[int, list] = {}
        self.holders: dict[object, set[int]] = defaultdict(set)
        self.ends: list[tuple[float, int, int]] = []  # (end, id, version) heap, pruned lazily
        self.dirty: set = set()
        self.ids, self.gen, self.tick_at = 0, 0, math.inf

    def keys(self, where: tuple) -> tuple:
        """The resources a job started with `where` holds."""
        raise NotImplementedError

    def speed(self, keys: tuple) -> float:
        """Progress per second of a job holding `keys`, given the jobs on each."""
        raise NotImplementedError

    def start(self, t: float, work: float, where: tuple, fn, *args) -> None:
        """Adds a job of `work` seconds at t; its speed is set with the others' at t."""
        self.ids += 1
        keys = self.keys(where)
        self.jobs[self.ids] = [work, t, None, keys, fn, args, 0]
        for key in keys:
            self.holders[key].add(self.ids)
        if not self.dirty:
            self.sim.at(t, self._settle)
        self.dirty.update(keys)

    def _settle(self, t: float) -> None:
        """Brings the jobs on the resources that changed at t up to date."""
        touched = set().union(*(self.holders[key] for key in self.dirty))
        self.dirty.clear()
        for i in touched:
            job = self.jobs[i]
            if job[2] is not None:
                job[0] -= (t - job[1]) * job[2]
            job[1] = t
            speed = self.speed(job[3])
            if speed != job[2]:
                job[2], job[6] = speed, job[6] + 1
                heapq.heappush(self.ends, (t + max(job[0], 0.0) / speed, i, job[6]))
        self._schedule()

    def _schedule(self) -> None:
        while self.ends and self._stale(self.ends[0]):
            heapq.heappop(self.ends)
        if self.ends and self.ends[0][0] < self.tick_at:
            self.gen += 1
            self.tick_at = self.ends[0][0]
            self.sim.at(self.tick_at, self._tick, self.gen)

    def _stale(self, entry: tuple[float, int, int]) -> bool:
        job = self.jobs.get(entry[1])
        return job is None or job[6] != entry[2]

    def _tick(self, t: float, gen: int) -> None:
        if gen != self.gen:
            return  # superseded by an earlier end
        self.tick_at = math.inf
        done = []
        while self.ends and self.ends[0][0] <= t + self.EPS:
            entry = heapq.heappop(self.ends)
            if not self._stale(entry):
                done.append(entry[1])
        for i in sorted(done):
            for key in self.jobs[i][3]:
                self.holders[key].discard(i)
            self.dirty.update(self.jobs[i][3])
        finished = [self.jobs.pop(i) for i in sorted(done)]
        if self.dirty:
            self._settle(t)
        else:
            self._schedule()
        for _, _, _, _, fn, args, _ in finished:
            fn(t, *args)


class SlicedCores(Fluid):
    """k cores time-sliced among the runnable jobs, as Linux's scheduler shares them.

    n jobs each progress at total(n) / n of a core's speed: by default total(n) is
    min(n, k) cores, times `shared_speed` while more than one is busy; with a
    measured `contention` curve ((n, total) points), total(n) is read off it.
    `capacity`: the share of every core's time the jobs get (1 - the share the
    hypervisor steals).
    """

    def __init__(self, sim: Sim, k: int, shared_speed: float,
                 contention: tuple[tuple[int, float], ...] | None = None,
                 capacity: float = 1.0):
        super().__init__(sim)
        self.k, self.shared_speed, self.contention = k, shared_speed, contention
        self.capacity = capacity

    def keys(self, where: tuple) -> tuple:
        return ("cores",)

    def speed(self, keys: tuple) -> float:
        n = len(self.holders["cores"])
        return self.capacity * self.total(n) / n

    def total(self, n: int) -> float:
        """The work n runnable jobs do per second together, in single-core seconds."""
        if self.contention:
            return curve(self.contention, n)
        return min(n, self.k) * (self.shared_speed if min(n, self.k) > 1 else 1)


def curve(points: tuple[tuple[int, float], ...], n: float) -> float:
    """`points`' value at n: linear between points, the end points' values outside them."""
    points = sorted(points)
    if n <= points[0][0]:
        return points[0][1]
    for (n0, v0), (n1, v1) in zip(points, points[1:]):
        if n <= n1:
            return v0 + (v1 - v0) * (n - n0) / (n1 - n0)
    return points[-1][1]


class FairLinks(Fluid):
    """Full-duplex node links shared fairly by the transfers crossing them, as TCP flows
    share a bottleneck: a transfer from node a to node b gets the smaller of its shares
    of a's uplink and b's downlink (1 / the number of transfers on each)."""

    def keys(self, where: tuple) -> tuple:
        return (("up", where[0]), ("down", where[1]))

    def speed(self, keys: tuple) -> float:
        return 1.0 / max(len(self.holders[keys[0]]), len(self.holders[keys[1]]))


class Sim:
    """The event loop and the state of one run (see the module docstring)."""

    def __init__(self, cfg: Config):
        self.cfg, self.events, self.seq = cfg, [], 0
        self.shards = cfg.shard_bytes or (cfg.params * plan.BYTES_PER_PARAM / cfg.servers,) * (
            cfg.servers)
        self.up = [Pool() for _ in range(cfg.workers + cfg.servers)]
        self.down = [Pool() for _ in range(cfg.workers + cfg.servers)]
        self.cost = list(cfg.costs.server_s) if cfg.costs else [
            cfg.cal.s_per_message + 2 * b * cfg.cal.s_per_byte for b in self.shards]
        self.server_free = [0.0] * cfg.servers
        self.queue = [deque() for _ in range(cfg.servers)]
        self.serving = [False] * cfg.servers
        self.threads: dict[object, deque] = defaultdict(deque)  # I/O threads' jobs
        self.cores = Pool(cfg.cores, cfg.shared_speed) if cfg.cores else None
        self.sliced = SlicedCores(
            self, cfg.cores, cfg.shared_speed, cfg.contention,
            1 - cfg.costs.steal_cores / cfg.cores if cfg.costs else 1.0) if (
            cfg.cores and (cfg.sliced or cfg.contention or cfg.costs)) else None
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
        costs = self.cfg.costs
        step = costs.worker_s if costs else self.cfg.step_s + self.cfg.overhead_s
        self.busy(t, step, self.computed, w)

    def computed(self, t: float, w: int) -> None:
        for s in range(self.cfg.servers):
            self.send(t, w, self.cfg.workers + s, self.shards[s], self.push, s, w)

    def node(self, proc: int) -> int:
        """The node of process proc (workers first, then servers)."""
        nodes, w = self.cfg.server_nodes, self.cfg.workers
        return nodes[proc - w] if nodes is not None and proc >= w else proc

    def send(self, t: float, src: int, dst: int, nbytes: float, fn, *args) -> None:
        """Sends nbytes from process src to process dst; fn runs on their arrival."""
        if self.cfg.costs:
            self.on_thread(("io", src), t, self.io_cost(src, dst, src), self.sent, src, dst,
                           fn, args)
            return
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

    def sent(self, t: float, src: int, dst: int, fn, args: tuple) -> None:
        """The sender's I/O thread has sent a message: now the receiver's takes it."""
        self.on_thread(("io", dst), t, self.io_cost(src, dst, dst), fn, *args)

    def io_cost(self, src: int, dst: int, proc: int) -> float:
        """CPU of process proc's I/O thread for a message between a worker and server s,
        with measured costs: half of its cost per push (the other half is for the
        message the other way), a worker's split over the servers by their bytes."""
        s = max(src, dst) - self.cfg.workers
        if proc == src + dst - self.cfg.workers - s:  # the worker
            return self.cfg.costs.worker_io_s * self.shards[s] / sum(self.shards) / 2
        return self.cfg.costs.server_io_s[s] / 2

    def on_thread(self, key: object, t: float, work: float, fn, *args) -> None:
        """Runs `work` of CPU on thread `key` once the jobs before it there are done
        (a thread does one thing at a time), then fn."""
        queue = self.threads[key]
        queue.append((work, fn, args))
        if len(queue) == 1:  # the thread was blocked: it wakes up
            self.at(t + self.cfg.wake_s, self._thread_next, key)

    def _thread_next(self, t: float, key: object) -> None:
        self.sliced.start(t, self.threads[key][0][0], (), self._thread_done, key)

    def _thread_done(self, t: float, key: object) -> None:
        queue = self.threads[key]
        _, fn, args = queue.popleft()
        if queue:
            self._thread_next(t, key)
        fn(t, *args)

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
            self.serving[s] = True  # waking up
            self.at(t + self.wake(), self.serve, s)

    def wake(self) -> float:
        """How long a blocked process that a message wakes waits for a core on
        time-sliced cores: `wake_s`, plus the measured `wakeup` curve's wait if given
        (else 0)."""
        if not self.sliced:
            return 0.0
        queued = len(self.sliced.holders["cores"]) + 1
        return self.cfg.wake_s + (curve(self.cfg.wakeup, queued) if self.cfg.wakeup else 0.0)

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
            self.at(t + self.wake(), self.compute, w)


def simulate(cfg: Config) -> dict:
    """Runs one configuration; returns samples/s and scaling efficiency."""
    rate = Sim(cfg).run()
    alone = BATCH / cfg.step_s * (min(cfg.workers, cfg.cores) if cfg.cores else cfg.workers)
    return {"samples_per_s": rate, "efficiency": rate / alone}


def tables(workers: list[int], servers: list[int], bandwidths: list[float],
           fair_links: bool = True, models: list[str] | None = None) -> list[dict]:
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


def validate(path: Path, cores: int, shared_speed: float = 1.0,
             costs: dict[tuple[str, int, int], PushCosts] | None = None,
             **model: Any) -> list[dict]:
    """Measured runs (JSON lines of scale_runs.py) beside the simulator on one host.

    Calibrated on two runs only: the one process gives the compute time, and sync
    1 worker x 1 server the per-step overhead of `fit` under the launcher beyond the
    simulated push and pull; every other run is a prediction. Server costs are
    `distflow.plan`'s (benchmarks/ps_bench.py); `shared_speed` is the host's, measured
    by running two one-process trainings at once (each one's samples/s over one
    alone's). `model`: `Config`'s `sliced`, `fair_links` and `contention` (a
    measured curve, see `load_contention`, in place of `shared_speed`).

    `costs` (`load_costs`): every run's worker and server CPU per push measured for
    its configuration, in place of the compute time, the overhead and the server
    calibration (the sync 1 x 1 run is then predicted too).
    """
    if costs and (model.get("contention") or shared_speed != 1.0):
        raise ValueError("Measured costs per push already include what sharing the cores "
                         "costs: give --costs without --contention and --shared-speed. "
                         f"Received: shared_speed={shared_speed}, "
                         f"contention={model.get('contention')}")
    measured = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    step_s = BATCH / _find(measured, 0, 0, "none")
    bare = simulate(Config(MLP_PARAMS, 1, 1, 100, step_s, "sync", 0, cores,
                           shared_speed=shared_speed, **model))
    overhead = BATCH / _find(measured, 1, 1, "sync") - BATCH / bare["samples_per_s"]
    rows = []
    for r in (r for r in measured if r["workers"] > 0):
        cfg = replace(_measured_config(r, step_s, cores, overhead, shared_speed), **model)
        if costs:
            cfg = replace(cfg, costs=_costs_of(costs, r))
        pred = simulate(cfg)["samples_per_s"]
        rows.append({**r, "predicted": pred, "error": pred / r["samples_per_s"] - 1,
                     "overhead_ms": overhead * 1e3})
    return rows


def load_costs(path: Path) -> dict[tuple[str, int, int], PushCosts]:
    """(mode, workers, servers) -> `PushCosts` of `benchmarks/push_costs.py`'s lines: the
    median over the quiet lines of each configuration (`other_cores` at most
    QUIET_OTHER_CORES; the one-process lines, workers 0, are left out).

    Raises:
        ValueError: the file has no quiet line of a launcher run.
    """
    by_key: dict[tuple[str, int, int], list[dict]] = defaultdict(list)
    for row in _quiet_lines(path, None):
        if row.get("workers"):
            by_key[row["mode"], row["workers"], row["servers"]].append(row)
    if not by_key:
        raise ValueError(f"{str(path)!r} has no line of a launcher run beside at most "
                         f"{QUIET_OTHER_CORES} other cores. Run benchmarks/push_costs.py "
                         "--workers 1,2,4,8 --servers 1,2 > costs.jsonl.")
    return {key: _median_costs(rows) for key, rows in sorted(by_key.items())}


def _median_costs(rows: list[dict]) -> PushCosts:
    """The median of each cost over push_costs.py lines of one configuration (a thread
    other than the main one: the process's CPU less its main thread's; lines without
    `steal_cores`, from before it was recorded, count none)."""
    def med(key: str, s: int | None = None) -> float:
        return statistics.median(r[key] if s is None else r[key][s] for r in rows)

    servers = range(rows[0]["servers"])
    return PushCosts(
        med("worker_main_cpu_s"), med("worker_cpu_s") - med("worker_main_cpu_s"),
        tuple(med("server_main_cpu_s", s) for s in servers),
        tuple(med("server_cpu_s", s) - med("server_main_cpu_s", s) for s in servers),
        statistics.median(r.get("steal_cores") or 0.0 for r in rows))


def _costs_of(costs: dict[tuple[str, int, int], PushCosts], r: dict) -> PushCosts:
    """The measured costs of run r's configuration (one host, no shaped links: the
    I/O threads take the place of link time)."""
    if "mbit" in r:
        raise ValueError("Measured costs per push model one host without shaped links; "
                         f"received a rate-limited run (mbit={r['mbit']}). Validate "
                         "link_runs.py's results without --costs.")
    key = (r["mode"], r["workers"], r["servers"])
    if key not in costs:
        raise ValueError(f"The measured costs have no line mode={key[0]!r}, "
                         f"workers={key[1]}, servers={key[2]}; measured: {sorted(costs)}. "
                         f"Run benchmarks/push_costs.py --workers {key[1]} --servers "
                         f"{key[2]} --modes {key[0]}.")
    return costs[key]


def load_contention(path: Path) -> tuple[tuple[int, float], ...]:
    """(n, speed) points of `benchmarks/contention_runs.py`'s training lines: the median
    `speed` over its rounds for each number of processes n (lines measured beside other
    work, `other_cores` above QUIET_OTHER_CORES, left out).

    Raises:
        ValueError: the file has no training line with n = 1 (speed 1 by definition).
    """
    by_n: dict[int, list[float]] = defaultdict(list)
    for row in _quiet_lines(path, "train"):
        by_n[row["procs"]].append(row["speed"])
    if 1 not in by_n:
        raise ValueError(f"{str(path)!r} has no training line with procs=1, received: "
                         f"procs={sorted(by_n)}. Run benchmarks/contention_runs.py "
                         "--procs 1,2,4,8,10 > contention.jsonl.")
    return tuple((n, statistics.median(v)) for n, v in sorted(by_n.items()))


QUIET_OTHER_CORES = 0.2  # a measurement beside more other work than this is left out


def _quiet_lines(path: Path, work: str | None) -> list[dict]:
    """The `work` lines of a JSON-lines file measured beside little other work
    (`other_cores` at most QUIET_OTHER_CORES, or not recorded)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("work") == work
            and (r.get("other_cores") or 0.0) <= QUIET_OTHER_CORES]


def load_wake_s(path: Path) -> float:
    """The seconds every wake-up waits, measured in one of two ways (the median):

    - `benchmarks/wakeup_latency.py`'s lines: `wake_s`, how much longer a thread
      woken on the other, idle core takes to run than one woken where its waker ran
      (the bare wake-up across cores);
    - `benchmarks/push_costs.py`'s quiet one-worker lines (`other_cores` at most
      QUIET_OTHER_CORES): the time the run's threads waited runnable per time put on
      a core, all threads of the worker and the servers (Linux schedstat's run
      delay per slice) with a core free most of the time: the wake-up as this
      application's threads see it.

    Raises:
        ValueError: the file has lines of neither kind.
    """
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    found = [r["wake_s"] for r in rows if r.get("bench") == "wakeup_latency"] or [
        _run_delay_per_slice(r) for r in _quiet_lines(path, None)
        if r.get("workers") == 1 and "worker_slices" in r]
    if not found:
        raise ValueError(f"{str(path)!r} has no line of benchmarks/wakeup_latency.py "
                         "(bench 'wakeup_latency') and no quiet one-worker line of "
                         f"benchmarks/push_costs.py with slices; received {len(rows)} "
                         "lines. Run python benchmarks/wakeup_latency.py > wakeup.jsonl.")
    return statistics.median(found)


def _run_delay_per_slice(row: dict) -> float:
    """A push_costs.py line's wait for a core per time put on one, worker and servers
    together (its worker's values are per step, its servers' per push: one each a step
    with one worker)."""
    return ((row["worker_wait_s"] + sum(row["server_wait_s"]))
            / (row["worker_slices"] + sum(row["server_slices"])))


def load_wakeup(path: Path) -> tuple[tuple[int, float], ...]:
    """(n, seconds) points of `contention_runs.py --work wakeup` lines: half the mean
    round trip beyond the idle one (n = 1), a wake-up's mean wait, for each n (median
    over rounds; never below 0; lines beside other work left out as in
    `load_contention`).

    Raises:
        ValueError: the file has no wakeup line with n = 1.
    """
    by_n: dict[int, list[float]] = defaultdict(list)
    for row in _quiet_lines(path, "wakeup"):
        by_n[row["procs"]].append(row["rtt_us"] * 1e-6)
    if 1 not in by_n:
        raise ValueError(f"{str(path)!r} has no wakeup line with procs=1, received: "
                         f"procs={sorted(by_n)}. Run benchmarks/contention_runs.py --work "
                         "wakeup --procs 1,2,4,8 --epochs 30 > wakeup.jsonl.")
    idle = statistics.median(by_n[1])
    return tuple((n, max(0.0, (statistics.median(v) - idle) / 2)) for n, v in
                 sorted(by_n.items()))


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


def markdown(rows: list[dict]) -> str:
    """docs/scaling.md's summary of `tables` rows: per model, bandwidth, mode and W, the
    one-server rate / the best rate over M (that M), the scaling efficiency at that M."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        workers = sorted({r["workers"] for r in mine})
        out += [f"**{model}** ({mine[0]['params']:,} parameters): samples/s with 1 server / "
                "with the best server count (M), scaling efficiency at the best M", "",
                "| Gbit/s | mode | " + " | ".join(f"{w} worker{'s' * (w > 1)}" for w in workers)
                + " |", "|---|---|" + "---|" * len(workers)]
        for gbit in sorted({r["gbit"] for r in mine}):
            for mode in ("sync", "async"):
                cells = [_cell([r for r in mine if (r["gbit"], r["mode"], r["workers"]) ==
                                (gbit, mode, w)]) for w in workers]
                out.append(f"| {gbit:g} | {mode} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _cell(rows: list[dict]) -> str:
    one = next(r for r in rows if r["servers"] == 1)
    best = max(rows, key=lambda r: (r["samples_per_s"], -r["servers"]))
    return (f"{one['samples_per_s']:,.0f} / {best['samples_per_s']:,.0f} (M={best['servers']}), "
            f"{best['efficiency']:.0%}")


def _print(rows: list[dict], keys: list[str]) -> None:
    print(" ".join(f"{k:>12}" for k in keys))
    for r in rows:
        cells = (r.get(k, "-") for k in keys)
        print(" ".join(f"{c:>12.3g}" if isinstance(c, float) else f"{c:>12}" for c in cells))


# --validate's measured inputs: JSON lines of benchmarks/contention_runs.py.
MEASURED_FILES = {
    "--contention": "the host's speed with n runnable processes (--work train): the cores "
                    "are time-sliced, each of n jobs at speed(n) / n (in place of "
                    "--shared-speed)",
    "--wakeup": "a woken process's wait for a core with n runnable (--work wakeup; with "
                "--contention)",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default="1,2,4,8,16,32,64,128,256")
    p.add_argument("--servers", default="1,2,4,8,16,32,64")
    p.add_argument("--bandwidth-gbit", default="1,10,25,100")
    p.add_argument("--models", default=",".join(MODELS), help="of " + ",".join(MODELS))
    p.add_argument("--markdown", action="store_true",
                   help="print the tables' summary as docs/scaling.md has it")
    p.add_argument("--validate", type=Path, help="JSON lines of measured runs")
    p.add_argument("--cores", type=int, default=2, help="the host's cores (--validate)")
    p.add_argument("--shared-speed", type=float, default=1.0,
                   help="speed of a core while the others are busy (--validate)")
    p.add_argument("--sliced", action="store_true",
                   help="time-slice the cores among runnable processes (--validate)")
    for flag, what in MEASURED_FILES.items():
        p.add_argument(flag, type=Path, help=f"--validate: {what}")
    p.add_argument("--costs", type=Path,
                   help="--validate: JSON lines of benchmarks/push_costs.py, each run's "
                        "worker and server CPU per push for its configuration (in place of "
                        "the compute time, the overhead and the server calibration)")
    p.add_argument("--wake", type=Path,
                   help="--validate: every wake-up of a blocked thread waits the median "
                        "wake_s of benchmarks/wakeup_latency.py's lines or the run delay "
                        "per slice of benchmarks/push_costs.py's quiet one-worker lines")
    links = p.add_mutually_exclusive_group()
    links.add_argument("--fair-links", action="store_true", default=True,
                       help="concurrent transfers share a link fairly, as TCP flows do "
                            "(the default)")
    links.add_argument("--fifo-links", dest="fair_links", action="store_false",
                       help="concurrent transfers cross a link one after the other "
                            "(first in, first out: the tables before fair sharing)")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    p = _parser()
    args = p.parse_args(argv)
    if args.validate:
        curve_points = load_contention(args.contention) if args.contention else None
        wake = load_wakeup(args.wakeup) if args.wakeup else None
        costs = load_costs(args.costs) if args.costs else None
        wake_s = load_wake_s(args.wake) if args.wake else 0.0
        rows = validate(args.validate, args.cores, args.shared_speed, costs, sliced=args.sliced,
                        fair_links=args.fair_links, contention=curve_points, wakeup=wake,
                        wake_s=wake_s)
        _print(rows, ["mode", "workers", "servers", "mbit", "samples_per_s", "predicted",
                      "error", "other_cores"])
    else:
        rows = tables([int(x) for x in args.workers.split(",")],
                      [int(x) for x in args.servers.split(",")],
                      [float(x) for x in args.bandwidth_gbit.split(",")], args.fair_links,
                      args.models.split(","))
        _print(rows, ["model", "mode", "gbit", "workers", "servers", "samples_per_s",
                      "efficiency"])
        if args.markdown:
            print(markdown(rows))
    print(json.dumps({"bench": "scale_sim", "rows": rows}))
    return rows


if __name__ == "__main__":
    main()
