"""End-to-end Fashion-MNIST MLP training: throughput and accuracy, side by side.

Runs, one after the other in this process's run:
  * distflow, one process (batch 128);
  * distflow, 2 workers + 1 PS, MirroredStrategy (global batch 256 = 128 per worker);
  * distflow, 2 workers + 1 PS, ParameterServerStrategy (batch 128 per worker);
  * PyTorch (if installed), one process and DistributedDataParallel/gloo on 2 processes
    (batch 128 per process): the reference;
  * TensorFlow's MultiWorkerMirroredStrategy on 2 processes (batch 128 per worker), with
    `--tf-python PATH`, an interpreter that has `tensorflow-cpu==2.21.0` (its own
    virtual environment: TensorFlow is never a dependency).
Every process uses one BLAS thread. Prints a table and one JSON line.

    DISTFLOW_DATA=../shared/data python benchmarks/train_bench.py [--epochs 10] [--seeds 0,1,2] \
        [--tf-python /tmp/tfenv/bin/python]

With several seeds every configuration runs once per seed (the seed sets the
initial weights, the dropout noise and the shuffling) and a summary gives each
configuration's mean throughput and mean, lowest and highest test accuracy: one
run's accuracy moves by a few tenths of a point from seed to seed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
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


def configurations(epochs: int, data: list[str], seed: int,
                   tf_python: str | None = None) -> list[tuple[str, list[str]]]:
    py = sys.executable
    worker = [str(HERE / "train_worker.py"), "--epochs", str(epochs), "--seed", str(seed), *data]
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
               "--seed", str(seed), *data]
        runs += [("pytorch 1 process", [*ref, "--workers", "1"]),
                 ("pytorch DDP gloo 2 procs", [*ref, "--workers", "2"])]
    if tf_python:
        runs.append(("tensorflow MWMS 2 procs", [
            tf_python, str(HERE / "tf_mwms.py"), "--workers", "2", "--epochs", str(epochs),
            "--batch-size", "128", "--seed", str(seed), *data]))
    return runs


def summarize(rows: list[dict]) -> list[dict]:
    """Per configuration over the seeds: mean throughput, mean/min/max test accuracy."""
    out = []
    for name in dict.fromkeys(r["run"] for r in rows):
        mine = [r for r in rows if r["run"] == name]
        accuracy = [r["test_accuracy"] for r in mine]
        out.append({"run": name, "seeds": len(mine),
                    "samples_per_s": statistics.mean(r["samples_per_s"] for r in mine),
                    "accuracy_mean": statistics.mean(accuracy),
                    "accuracy_min": min(accuracy), "accuracy_max": max(accuracy)})
        print(f"{name:28} {out[-1]['samples_per_s']:>10.0f} samples/s  test accuracy mean "
              f"{out[-1]['accuracy_mean']:.4f} ({min(accuracy):.4f}-{max(accuracy):.4f}, "
              f"{len(mine)} seeds)", flush=True)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", default=None, help="directory holding the IDX files")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds; each configuration runs once per seed")
    parser.add_argument("--tf-python", default=None,
                        help="an interpreter with tensorflow-cpu 2.21 (adds TF's MWMS)")
    args = parser.parse_args(argv)
    data = ["--data", args.data] if args.data else []
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows = []
    for seed in seeds:
        for name, cmd in configurations(args.epochs, data, seed, args.tf_python):
            result = _run(cmd, timeout=3600)
            rows.append({"run": name, "seed": seed, **result})
            print(f"{name:28} seed {seed} {result['samples_per_s']:>10.0f} samples/s "
                  f"{result['s_per_epoch']:>7.2f} s/epoch  test accuracy "
                  f"{result['test_accuracy']:.4f}", flush=True)
    summary = summarize(rows) if len(seeds) > 1 else []
    print(json.dumps({"benchmark": "train", "epochs": args.epochs, "rows": rows,
                      "summary": summary}))
    return rows


if __name__ == "__main__":
    main()
