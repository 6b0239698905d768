"""Capacity model for a parameter-server run: `python -m distflow.plan`.

Given a model size (N float32 parameters), W workers, a network bandwidth and a
worker's compute time per step, recommends how many parameter servers (`--ps`)
to start and predicts samples/s and scaling efficiency. The formulas are in
docs/scaling.md; in short, for a synchronous step every worker pushes its
gradients to each of M servers and pulls the updated parameters back. A server
holds what distflow's placement (`distflow.distribute.sharding.place`) gives it,
which never cuts a variable below 1 MiB, so the busiest server, holding S bytes
(N * 4 / M only when the variables cut evenly), sets the pace:

- bytes through the busiest server per step: ``2 * S * W``
- server time per step: ``W * SERVER_S_PER_MESSAGE + bytes * SERVER_S_PER_BYTE``
- link time per step: ``bytes * 8 / bandwidth + 2 * latency``

and the recommendation is the smallest M (at most W) whose server time and link
time both stay under the compute time, or, when none does, the smallest M with
the least of them (more servers than that hold no less). The server constants were measured on the
project's 2-core machine with::

    python benchmarks/ps_bench.py --quick --sizes 64KB,1MB,16MB

(async x1 medians: per-byte cost = slope between 1 MB and 16 MB of push_pull
time over bytes sent both ways; per-message cost = the 64 KB time minus its
bytes' share). A worker's compute time defaults to the measured one-process MLP
step at batch 128 (`benchmarks/train_worker.py`, 1 process).

    python -m distflow.plan --model mlp --workers 8 --bandwidth-gbit 10
    python -m distflow.plan --params 25000000 --workers 64 --bandwidth-gbit 10
    python -m distflow.plan --shapes 784x256,256,256x128,128,128x10,10 --workers 8 \\
        --bandwidth-gbit 10 --step-ms 3.5
    python -m distflow.plan --model saved.keras --workers 8 --bandwidth-gbit 10 --step-ms 3.5

A model of any shapes is given by `--shapes` (one shape a variable, dimensions
joined by "x") or by `--model` with a saved Keras model (`.keras` archive or
Keras 3 `.weights.h5` file), whose variables' shapes are read from the file's
weights without building the model.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from distflow.distribute.sharding import place

__all__ = ["Calibration", "Prediction", "CALIBRATION", "PRESETS", "predict", "recommend_ps",
           "shard_bytes", "parse_shapes", "saved_shapes", "main"]

BYTES_PER_PARAM = 4  # float32 on the wire

# Measured by `python benchmarks/ps_bench.py --quick --sizes 64KB,1MB,16MB` (async x1).
SERVER_S_PER_MESSAGE = 254e-6  # 64 KB: 0.345 ms - 2 * 64 KiB * per-byte
SERVER_S_PER_BYTE = 0.695e-9  # (23.431 - 1.580) ms / (2 * 15 MiB)
# One-process MLP 784-256-128-10 step at batch 128 (train_worker.py, 1 epoch).
MLP_STEP_S = 3.51e-3  # 36,460 samples/s: python benchmarks/train_worker.py --epochs 2
DEFAULT_LATENCY_S = 50e-6
DEFAULT_BATCH = 128

Shapes = Mapping[str, Sequence[int]]

# The models of docs/scaling.md: variable shapes and a worker's step at batch 128.
MLP_SHAPES = {"dense/kernel": (784, 256), "dense/bias": (256,), "dense_1/kernel": (256, 128),
              "dense_1/bias": (128,), "dense_2/kernel": (128, 10), "dense_2/bias": (10,)}
# examples/fashion_mnist_cnn.py; its step from benchmarks/autodiff_bench.py (46.1 ms at
# batch 64, doubled).
CNN_SHAPES = {"conv2d/kernel": (3, 3, 1, 32), "conv2d/bias": (32,),
              "conv2d_1/kernel": (3, 3, 32, 64), "conv2d_1/bias": (64,),
              "dense/kernel": (3136, 128), "dense/bias": (128,),
              "dense_1/kernel": (128, 10), "dense_1/bias": (10,)}
BIG_PARAMS = 25_000_000


def _count_params(shapes: Shapes) -> int:
    return sum(math.prod(shape) for shape in shapes.values())


# Hypothetical 25M model: one variable of many MiB, which placement cuts into M equal
# row ranges; its step scaled from the MLP's by parameter count (6 N flops a sample).
PRESETS: dict[str, tuple[Shapes, float]] = {
    "mlp": (MLP_SHAPES, MLP_STEP_S),
    "cnn": (CNN_SHAPES, 2 * 46.1e-3),
    "25m": ({"params": (BIG_PARAMS,)}, MLP_STEP_S * BIG_PARAMS / _count_params(MLP_SHAPES)),
}


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


def shard_bytes(servers: int, shapes: Shapes | None = None,
                params: int | None = None) -> tuple[int, ...]:
    """Bytes each of `servers` servers holds under distflow's placement (float32).

    Args:
        servers: parameter servers, >= 1.
        shapes: the model's variables, name -> shape; None: one variable of `params`.
        params: the parameter count when `shapes` is None.

    Returns:
        One byte count per server, as `sharding.place` lays the variables out.
    """
    shapes = {"params": (params,)} if shapes is None else shapes
    specs = [(name, tuple(shape), "float32") for name, shape in shapes.items()]
    return tuple(place(specs, servers).shard_bytes())


def _server_and_link(busiest: float, workers: int, bandwidth_bps: float,
                     latency_s: float, cal: Calibration) -> tuple[float, float, float]:
    """Bytes through the busiest server (holding `busiest`) per sync step, its CPU and link time."""
    nbytes = 2 * busiest * workers
    server_s = workers * cal.s_per_message + nbytes * cal.s_per_byte
    link_s = nbytes * 8 / bandwidth_bps + 2 * latency_s
    return nbytes, server_s, link_s


def _busiest(params: int, servers: int, shapes: Shapes | None) -> int:
    """Bytes on the busiest server; raises ValueError when `shapes` do not sum to `params`."""
    if shapes is not None and _count_params(shapes) != params:
        raise ValueError(f"`shapes` hold {_count_params(shapes)} parameters but "
                         f"received: params={params!r}. Pass the shapes' parameter count.")
    return max(shard_bytes(servers, shapes, params))


def predict(params: int, workers: int, bandwidth_gbit: float, servers: int = 1,
            step_s: float = MLP_STEP_S, mode: str = "sync", batch: int = DEFAULT_BATCH,
            latency_s: float = DEFAULT_LATENCY_S,
            calibration: Calibration = CALIBRATION,
            shapes: Shapes | None = None) -> Prediction:
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
        shapes: the model's variables (name -> shape, `params` in all), placed on the
            servers as distflow places them; None: one variable of `params`.

    Returns:
        A `Prediction` (`bytes_per_server_step`: the busiest server's); efficiency
        is samples/s over `workers * batch / step_s`.

    Raises:
        ValueError: a non-positive or non-numeric argument, an unknown mode, or
            shapes that do not hold `params` parameters.
    """
    _validate(params, workers, bandwidth_gbit, servers, step_s, batch, latency_s)
    _mode(mode)
    bps = bandwidth_gbit * 1e9
    busiest = _busiest(params, servers, shapes)
    nbytes, server_s, link_s = _server_and_link(busiest, workers, bps, latency_s, calibration)
    worker_link_s = 2 * params * BYTES_PER_PARAM * 8 / bps
    if mode == "sync":
        step = step_s + max(server_s, link_s, worker_link_s + 2 * latency_s)
        rate = workers * batch / step
    else:
        rate = _async_rate(params, workers, busiest, bps, step_s, batch, latency_s,
                           calibration)
        step = workers * batch / rate
    ideal = workers * batch / step_s
    return Prediction(servers, nbytes, server_s, link_s, step, rate, rate / ideal)


def _async_rate(params: int, workers: int, busiest: int, bps: float, step_s: float,
                batch: int, latency_s: float, cal: Calibration) -> float:
    """Samples/s of async workers: each alone, capped by the busiest server and link."""
    both_ways = 2 * busiest
    per_push = cal.s_per_message + both_ways * cal.s_per_byte
    round_trip = per_push + 2 * params * BYTES_PER_PARAM * 8 / bps + 2 * latency_s
    pushes_per_s = min(workers / (step_s + round_trip), 1 / per_push,
                       bps / (both_ways * 8))
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
                 calibration: Calibration = CALIBRATION, shapes: Shapes | None = None) -> int:
    """The smallest server count whose busiest server's time per sync step fits in `step_s`.

    Servers hold distflow's placement of `shapes` (None: one variable of `params`).
    When no count up to `workers` fits, returns the smallest count with the least
    server and link time: more servers than that leave the busiest one as loaded,
    as when a variable below 1 MiB sits whole on one. Raises ValueError on bad
    input like `predict`.
    """
    _validate(params, workers, bandwidth_gbit, 1, step_s, 1, latency_s)
    bps = bandwidth_gbit * 1e9
    best, best_s = 1, math.inf
    for servers in range(1, workers + 1):
        busiest = _busiest(params, servers, shapes)
        _, server_s, link_s = _server_and_link(busiest, workers, bps, latency_s, calibration)
        if max(server_s, link_s) <= step_s:
            return servers
        if max(server_s, link_s) < best_s:
            best, best_s = servers, max(server_s, link_s)
    return best


_SHAPES_HINT = ("Pass one shape per variable, dimensions joined by 'x' and variables by ',', "
                "e.g. --shapes 784x256,256,256x128,128.")


def parse_shapes(text: str) -> dict[str, tuple[int, ...]]:
    """Variable shapes from text like ``"784x256,256"``, named ``var0``, ``var1``, ...

    Raises:
        ValueError: an empty text, an empty item, or a dimension that is not an
            integer >= 1; the message quotes the received text and the item.
    """
    items = [item.strip() for item in str(text).split(",")]
    return {f"var{i}": _parse_shape(item, text) for i, item in enumerate(items)}


def _parse_shape(item: str, text: str) -> tuple[int, ...]:
    dims = item.lower().split("x")
    if not item or not all(d.strip().isdigit() and int(d) >= 1 for d in dims):
        raise ValueError(f"`shapes` must be shapes of integers >= 1, received: "
                         f"shapes={text!r} (item {item!r}). {_SHAPES_HINT}")
    return tuple(int(d) for d in dims)


def saved_shapes(path: str) -> dict[str, tuple[int, ...]]:
    """The shapes of a saved Keras model's variables, read from its weights file alone.

    Args:
        path: a Keras 3 `.keras` archive or `.weights.h5` file (as `model.save` and
            `model.save_weights` write them); nothing is built and no weight is read.

    Returns:
        ``"<layer path>/vars/<i>" -> shape`` for every layer variable; optimizer state
        is left out. Non-trainable variables (e.g. BatchNormalization's moving
        statistics) are included, although servers hold trainable ones only.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not such a file, or a file without variables.
    """
    from distflow.keras import saving_keras3

    if not os.path.isfile(path):
        raise FileNotFoundError(f"File not found: filepath={path!r}. Pass a saved model's "
                                "`.keras` or `.weights.h5` file, or a preset: "
                                f"--model {'|'.join(sorted(PRESETS))}.")
    if zipfile.is_zipfile(path):
        h5 = saving_keras3.read_archive(path)[2]
    else:
        h5 = saving_keras3.open_h5(path, f"'{path}'")
    with h5:
        shapes = _h5_shapes(h5)
    if not shapes:
        raise ValueError(f"'{path}' holds no model variables (no `vars` datasets outside "
                         "`optimizer`), received: filepath={path!r}. Pass a file written by "
                         "`model.save(...)` or `model.save_weights(...)` of a built model.")
    return shapes


def _h5_shapes(h5: Any) -> dict[str, tuple[int, ...]]:
    """``name -> shape`` of the datasets under a `vars` group, the optimizer's left out."""
    shapes: dict[str, tuple[int, ...]] = {}

    def visit(name: str, obj: Any) -> None:
        parts = name.split("/")
        if hasattr(obj, "shape") and len(parts) > 1 and parts[-2] == "vars" \
                and parts[0] != "optimizer":
            shapes[name] = tuple(obj.shape)
    h5.visititems(visit)
    return shapes


def _model(args: argparse.Namespace) -> tuple[Shapes | None, float | None]:
    """(shapes, default step time) of the command line's model; None for `--params`."""
    if args.shapes is not None:
        return parse_shapes(args.shapes), None
    if args.model is None:
        return None, None
    if args.model in PRESETS:
        return PRESETS[args.model]
    return saved_shapes(args.model), None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m distflow.plan", description=__doc__.split("\n")[0])
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="a model of docs/scaling.md (" + "|".join(
        sorted(PRESETS)) + ": its variables' shapes, placed as distflow places them, and "
        "step time), or a saved Keras model's .keras or .weights.h5 file (its variables' "
        "shapes)")
    model.add_argument("--shapes", help="the model's variable shapes, dimensions joined by "
                       "'x', variables by ',' (e.g. 784x256,256,256x128,128)")
    model.add_argument("--params", type=int, help="float32 parameters of the model, "
                       "placed as one variable (cut into equal row ranges of >= 1 MiB)")
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--bandwidth-gbit", type=float, required=True, help="per node link, Gbit/s")
    p.add_argument("--servers", type=int, default=None, help="predict for this --ps "
                   "(default: the recommended one)")
    p.add_argument("--step-ms", type=float, default=None,
                   help="one worker's compute time per step (default: the preset's, "
                        "else the MLP's, measured: give your model's)")
    p.add_argument("--mode", default="sync", help="sync (mirrored) or async")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="per-worker batch")
    p.add_argument("--latency-us", type=float, default=DEFAULT_LATENCY_S * 1e6)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the recommendation and prediction as text and one JSON line; exit 2 on bad input."""
    args = _parser().parse_args(argv)
    try:
        shapes, step_s = _model(args)
        params = _count_params(shapes) if shapes else args.params
        step_s = (step_s or MLP_STEP_S) if args.step_ms is None else args.step_ms / 1e3
        latency_s = args.latency_us / 1e6
        best = recommend_ps(params, args.workers, args.bandwidth_gbit, step_s, latency_s,
                            shapes=shapes)
        servers = best if args.servers is None else args.servers
        pred = predict(params, args.workers, args.bandwidth_gbit, servers, step_s,
                       args.mode, args.batch, latency_s, shapes=shapes)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"recommended --ps {best}; with --ps {servers} ({args.mode}): "
          f"{pred.samples_per_s:,.0f} samples/s, step {pred.step_s * 1e3:.2f} ms, "
          f"scaling efficiency {pred.efficiency:.0%}")
    print(json.dumps({"recommended_ps": best, **asdict(pred)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
