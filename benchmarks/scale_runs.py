"""Real runs for the simulator's validation: the MLP under the launcher, W workers x M servers.

Trains `benchmarks/train_worker.py` (the Fashion-MNIST MLP, Adam) for `--epochs`
on one process (workers 0 in the output: the compute-time calibration) and
under `python -m distflow.launch --workers W --ps M` for each W and M, sync
(mirrored, global batch 128 * W) and async (128 per worker), one BLAS thread per
process, and prints one JSON line per run (`workers`, `servers`, `mode`,
`samples_per_s`): the input of `benchmarks/scale_sim.py --validate`.

    DISTFLOW_DATA=/work/shared/data python benchmarks/scale_runs.py \\
        --workers 1,2,4,8 --servers 1,2 > runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train_bench import _run  # noqa: E402


def runs(workers: list[int], servers: list[int], epochs: int):
    """Yields (workers, servers, mode, command) for every configuration."""
    worker = [str(HERE / "train_worker.py"), "--epochs", str(epochs)]
    yield 0, 0, "none", [sys.executable, *worker, "--batch-size", "128"]
    for w in workers:
        for m in servers:
            launch = [sys.executable, "-m", "distflow.launch", "--workers", str(w),
                      "--ps", str(m), "--strategy"]
            yield w, m, "sync", [*launch, "mirrored", *worker, "--batch-size", str(128 * w)]
            yield w, m, "async", [*launch, "async", *worker, "--batch-size", "128"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default="1,2,4,8")
    p.add_argument("--servers", default="1,2")
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    for w, m, mode, cmd in runs([int(x) for x in args.workers.split(",")],
                                [int(x) for x in args.servers.split(",")], args.epochs):
        result = _run(cmd, timeout=1800)
        print(json.dumps({"workers": w, "servers": m, "mode": mode,
                          "samples_per_s": result["samples_per_s"],
                          "test_accuracy": result["test_accuracy"]}), flush=True)


if __name__ == "__main__":
    main()
