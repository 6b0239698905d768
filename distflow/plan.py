"""Capacity model for a parameter-server run: `python -m distflow.plan`.

Given a model size (N float32 parameters), W workers, a network bandwidth and a
worker's compute time per step, recommends how many parameter servers (`--ps`)
to start and predicts samples/s and scaling efficiency. The formulas are in
docs/scaling.md; in short, for a synchronous step every worker pushes its
gradients to each of M servers and pulls the updated parameters back, so

- bytes through one server per step: ``2 * N * 4 * W / M``
- server time per step: ``W * SERVER_S_PER_MESSAGE + bytes * SERVER_S_PER_BYTE``
- link time per step: ``bytes * 8 / bandwidth + 2 * latency``

and the recommendation is the smallest M (at most W) whose server time and link
time both stay under the compute time. The server constants were measured on the
project's 2-core machine with::

    python benchmarks/ps_bench.py --quick --sizes 64KB,1MB,16MB

(async x1 medians: per-byte cost = slope between 1 MB and 16 MB of push_pull
time over bytes sent both ways; per-message cost = the 64 KB time minus its
bytes' share). A worker's compute time defaults to the measured one-process MLP
step at batch 128 (`benchmarks/train_worker.py`, 1 process).

    python -m distflow.plan --params 235146 --workers 8 --bandwidth-gbit 10
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["Calibration", "Prediction", "CALIBRATION", "predict", "recommend_ps", "main"]

BYTES_PER_PARAM = 4  # float32 on the wire

# Measured by `python benchmarks/ps_bench.py --quick --sizes 64KB,1MB,16MB` (async x1).
SERVER_S_PER_MESSAGE = 254e-6  # 64 KB: 0.345 ms - 2 * 64 KiB * per-byte
SERVER_S_PER_BYTE = 0.695e-9  # (23.431 - 1.580) ms / (2 * 15 MiB)
# One-process MLP 784-256-128-10 step at batch 128 (train_worker.py, 1 epoch).
MLP_STEP_S = 3.51e-3  # 36,460 samples/s: python benchmarks/train_worker.py --epochs 2
DEFAULT_LATENCY_S = 50e-6
DEFAULT_BATCH = 128


@dataclass(frozen=True)
class Calibration:
    """Per-server costs: seconds per message and per byte (both directions counted)."""

    s_per_message: float = SERVER_S_PER_MESSAGE
    s_per_byte: float = SERVER_S_PER_BYTE


CALIBRATION = Calibration()


@dataclass(frozen=True)
class Prediction:
    """What the model predicts for one configuration (times in seconds)."""

    servers: int
    bytes_per_server_step: float
    server_s: float
    link_s: float
    step_s: float
    samples_per_s: float
    efficiency: float


def _positive(name: str, value: float, hint: str) -> float:
    """Returns `value` or raises a ValueError quoting it and saying how to fix it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number, received: {name}={value!r}. "
                         f"{hint}")
    return value


def _count(name: str, value: int, hint: str) -> int:
    """Returns `value` or raises a ValueError when it is not an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, received: {name}={value!r}. "
                         f"{hint}")
    return value


def _mode(mode: str) -> str:
    if mode not in ("sync", "async"):
        raise ValueError(f"`mode` must be 'sync' or 'async', received: mode={mode!r}. "
                         "Pass --mode sync (mirrored) or --mode async.")
    return mode


def _server_and_link(params: int, workers: int, servers: int, bandwidth_bps: float,
                     latency_s: float, cal: Calibration) -> tuple[float, float, float]:
    """Bytes through one server per sync step, its CPU time and its link time."""
    nbytes = 2 * params * BYTES_PER_PARAM * workers / servers
    server_s = workers * cal.s_per_message + nbytes * cal.s_per_byte
    link_s = nbytes * 8 / bandwidth_bps + 2 * latency_s
    return nbytes, server_s, link_s


def predict(params: int, workers: int, bandwidth_gbit: float, servers: int = 1,
            step_s: float = MLP_STEP_S, mode: str = "sync", batch: int = DEFAULT_BATCH,
            latency_s: float = DEFAULT_LATENCY_S,
            calibration: Calibration = CALIBRATION) -> Prediction:
    """Predicts one configuration's step time, samples/s and scaling efficiency.

    Args:
        params: number of float32 parameters of the model.
        workers: number of workers (one per node or core, each computing alone).
        bandwidth_gbit: each node's link, Gbit/s.
        servers: parameter servers (each on its own node).
        step_s: one worker's compute time per step (forward + backward), seconds.
        mode: "sync" (mirrored: a barrier each step) or "async".
        batch: samples per worker per step.
        latency_s: one-way network latency, seconds.
        calibration: per-message and per-byte server costs.

    Returns:
        A `Prediction`; efficiency is samples/s over `workers * batch / step_s`.

    Raises:
        ValueError: a non-positive or non-numeric argument, or an unknown mode.
    """
    _validate(params, workers, bandwidth_gbit, servers, step_s, batch, latency_s)
    _mode(mode)
    bps = bandwidth_gbit * 1e9
    nbytes, server_s, link_s = _server_and_link(params, workers, servers, bps, latency_s,
                                                calibration)
    worker_link_s = 2 * params * BYTES_PER_PARAM * 8 / bps
    if mode == "sync":
        step = step_s + max(server_s, link_s, worker_link_s + 2 * latency_s)
        rate = workers * batch / step
    else:
        rate = _async_rate(params, workers, servers, bps, step_s, batch, latency_s,
                           calibration)
        step = workers * batch / rate
    ideal = workers * batch / step_s
    return Prediction(servers, nbytes, server_s, link_s, step, rate, rate / ideal)


def _async_rate(params: int, workers: int, servers: int, bps: float, step_s: float,
                batch: int, latency_s: float, cal: Calibration) -> float:
    """Samples/s of async workers: each alone, capped by the busiest server and link."""
    shard_bytes = 2 * params * BYTES_PER_PARAM / servers
    per_push = cal.s_per_message + shard_bytes * cal.s_per_byte
    round_trip = per_push + 2 * params * BYTES_PER_PARAM * 8 / bps + 2 * latency_s
    pushes_per_s = min(workers / (step_s + round_trip), 1 / per_push,
                       bps / (shard_bytes * 8))
    return pushes_per_s * batch


def _validate(params: int, workers: int, bandwidth_gbit: float, servers: int,
              step_s: float, batch: int, latency_s: float) -> None:
    _count("params", params, "Pass the model's parameter count, e.g. --params 235146.")
    _count("workers", workers, "Pass how many workers train, e.g. --workers 8.")
    _count("servers", servers, "Pass --servers 1 or more, or leave it out.")
    _count("batch", batch, "Pass the per-worker batch size, e.g. --batch 128.")
    _positive("bandwidth_gbit", bandwidth_gbit, "Pass the link speed, e.g. --bandwidth-gbit 10.")
    _positive("step_s", step_s, "Pass a worker's compute time per step, e.g. --step-ms 3.5.")
    if latency_s < 0 or not math.isfinite(latency_s):
        raise ValueError(f"`latency_s` must be >= 0, received: latency_s={latency_s!r}. "
                         "Pass e.g. --latency-us 50.")


def recommend_ps(params: int, workers: int, bandwidth_gbit: float,
                 step_s: float = MLP_STEP_S, latency_s: float = DEFAULT_LATENCY_S,
                 calibration: Calibration = CALIBRATION) -> int:
    """The smallest server count whose server and link time per sync step fit in `step_s`.

    Returns `workers` (the cap: more servers than workers buys nothing here) when
    no count fits, and raises ValueError on bad input like `predict`.
    """
    _validate(params, workers, bandwidth_gbit, 1, step_s, 1, latency_s)
    bps = bandwidth_gbit * 1e9
    for servers in range(1, workers + 1):
        _, server_s, link_s = _server_and_link(params, workers, servers, bps, latency_s,
                                               calibration)
        if max(server_s, link_s) <= step_s:
            return servers
    return workers


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m distflow.plan", description=__doc__.split("\n")[0])
    p.add_argument("--params", type=int, required=True, help="float32 parameters of the model")
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--bandwidth-gbit", type=float, required=True, help="per node link, Gbit/s")
    p.add_argument("--servers", type=int, default=None, help="predict for this --ps "
                   "(default: the recommended one)")
    p.add_argument("--step-ms", type=float, default=MLP_STEP_S * 1e3,
                   help="one worker's compute time per step (default: the MLP's, measured)")
    p.add_argument("--mode", default="sync", help="sync (mirrored) or async")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="per-worker batch")
    p.add_argument("--latency-us", type=float, default=DEFAULT_LATENCY_S * 1e6)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the recommendation and prediction as text and one JSON line; exit 2 on bad input."""
    args = _parser().parse_args(argv)
    try:
        step_s, latency_s = args.step_ms / 1e3, args.latency_us / 1e6
        best = recommend_ps(args.params, args.workers, args.bandwidth_gbit, step_s, latency_s)
        servers = best if args.servers is None else args.servers
        pred = predict(args.params, args.workers, args.bandwidth_gbit, servers, step_s,
                       args.mode, args.batch, latency_s)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"recommended --ps {best}; with --ps {servers} ({args.mode}): "
          f"{pred.samples_per_s:,.0f} samples/s, step {pred.step_s * 1e3:.2f} ms, "
          f"scaling efficiency {pred.efficiency:.0%}")
    print(json.dumps({"recommended_ps": best, **asdict(pred)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
