"""End-to-end Fashion-MNIST MLP training: throughput and accuracy, side by side.

Runs, one after the other in this process's run:
  * distflow, one process (batch 128);
  * distflow, 2 workers + 1 PS, MirroredStrategy (global batch 256 = 128 per worker);
  * distflow, 2 workers + 1 PS, ParameterServerStrategy (batch 128 per worker);
  * PyTorch (if installed), one process and DistributedDataParallel/gloo on 2 processes
    (batch 128 per process): the reference.
Every process uses one BLAS thread. Prints a table and one JSON line.

    DISTFLOW_DATA=../shared/data python benchmarks/train_bench.py [--epochs 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(cmd: list[str], timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(HERE.parent))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=HERE.parent)
    for line in proc.stdout.splitlines():
        start = line.find("{")
        if start >= 0 and '"samples_per_s"' in line:
            return json.loads(line[start:])
    raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} without a result.\n"
                       f"stdout tail:\n{proc.stdout[-2000:]}\nstderr tail:\n{proc.stderr[-2000:]}")


def configurations(epochs: int, data: list[str]) -> list[tuple[str, list[str]]]:
    py = sys.executable
    worker = [str(HERE / "train_worker.py"), "--epochs", str(epochs), *data]
    launch = [py, "-m", "distflow.launch", "--workers", "2", "--ps", "1"]
    runs = [
        ("distflow 1 process", [py, *worker, "--batch-size", "128"]),
        ("distflow mirrored 2w+1ps", [*launch, "--strategy", "mirrored", *worker,
                                      "--batch-size", "256"]),
        ("distflow async 2w+1ps", [*launch, "--strategy", "async", *worker,
                                   "--batch-size", "128"]),
    ]
    if importlib.util.find_spec("torch") is not None:
        ref = [py, str(HERE / "torch_mlp.py"), "--epochs", str(epochs), "--batch-size", "128",
               *data]
        runs += [("pytorch 1 process", [*ref, "--workers", "1"]),
                 ("pytorch DDP gloo 2 procs", [*ref, "--workers", "2"])]
    return runs


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", default=None, help="directory holding the IDX files")
    args = parser.parse_args(argv)
    data = ["--data", args.data] if args.data else []
    rows = []
    for name, cmd in configurations(args.epochs, data):
        result = _run(cmd, timeout=3600)
        rows.append({"run": name, **result})
        print(f"{name:28} {result['samples_per_s']:>10.0f} samples/s "
              f"{result['s_per_epoch']:>7.2f} s/epoch  test accuracy {result['test_accuracy']:.4f}",
              flush=True)
    print(json.dumps({"benchmark": "train", "epochs": args.epochs, "rows": rows}))
    return rows


if __name__ == "__main__":
    main()
