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

With `--baseline DIR` (a checkout of another commit, e.g. a `git worktree`),
each distflow configuration also runs from DIR right after (or before: the
order alternates) the same run from this tree, and a last table gives this
tree's throughput / DIR's per configuration (the median over the pairs; below
1: this tree is slower).

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


def _run(cmd: list[str], timeout: float, tree: Path = HERE.parent) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(tree))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=tree)
    return parse_result(cmd, proc.returncode, proc.stdout, proc.stderr)


def parse_result(cmd: list[str], returncode: int, stdout: str, stderr: str) -> dict:
    """The JSON result line train_worker.py's chief printed (maybe behind a prefix)."""
    for line in stdout.splitlines():
        start = line.find("{")
        if start >= 0 and '"samples_per_s"' in line:
            return json.loads(line[start:])
    raise RuntimeError(f"{' '.join(cmd)} exited {returncode} without a result.\n"
                       f"stdout tail:\n{stdout[-2000:]}\nstderr tail:\n{stderr[-2000:]}")


def configurations(epochs: int, data: list[str], seed: int, tf_python: str | None = None,
                   here: Path = HERE) -> list[tuple[str, list[str]]]:
    py = sys.executable
    worker = [str(here / "train_worker.py"), "--epochs", str(epochs), "--seed", str(seed), *data]
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
    parser.add_argument("--baseline", default=None,
                        help="a checkout of another commit: its distflow runs side by side")
    args = parser.parse_args(argv)
    data = ["--data", args.data] if args.data else []
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows = []
    for seed in seeds:
        for name, cmd in configurations(args.epochs, data, seed, args.tf_python):
            if args.baseline and name.startswith("distflow"):
                rows += _against_baseline(name, cmd, seed, Path(args.baseline).resolve(),
                                          len(rows) // 2 % 2)
                continue
            rows.append(_report({"run": name, "seed": seed, **_run(cmd, timeout=3600)}))
    summary = summarize([r for r in rows if "tree" not in r or r["tree"] == "this"]) \
        if len(seeds) > 1 else []
    baseline = compare_to_baseline(rows) if args.baseline else []
    print(json.dumps({"benchmark": "train", "epochs": args.epochs, "rows": rows,
                      "summary": summary, "baseline": baseline}))
    return rows


def _report(row: dict) -> dict:
    print(f"{row['run']:28} seed {row['seed']} {row.get('tree', ''):8} "
          f"{row['samples_per_s']:>10.0f} samples/s {row['s_per_epoch']:>7.2f} s/epoch  "
          f"test accuracy {row['test_accuracy']:.4f}", flush=True)
    return row


def _against_baseline(name: str, cmd: list[str], seed: int, baseline: Path,
                      baseline_first: int) -> list[dict]:
    """One run of a configuration from this tree and one from `baseline`, in turn."""
    theirs = [str(baseline / "benchmarks" / Path(a).name) if a.startswith(str(HERE)) else a
              for a in cmd]
    runs = [("this", cmd, HERE.parent), ("baseline", theirs, baseline)]
    rows = []
    for tree, command, root in (runs[::-1] if baseline_first else runs):
        rows.append(_report({"run": name, "seed": seed, "tree": tree,
                             **_run(command, timeout=3600, tree=root)}))
    return rows


def compare_to_baseline(rows: list[dict]) -> list[dict]:
    """Per configuration: this tree's throughput / the baseline's, paired per seed."""
    out = []
    for name in dict.fromkeys(r["run"] for r in rows if "tree" in r):
        pairs = {}
        for r in rows:
            if r["run"] == name and "tree" in r:
                pairs.setdefault(r["seed"], {})[r["tree"]] = r["samples_per_s"]
        ratios = [p["this"] / p["baseline"] for p in pairs.values()]
        out.append({"run": name, "pairs": len(ratios),
                    "this_over_baseline": statistics.median(ratios)})
        print(f"{name:28} throughput this / baseline {out[-1]['this_over_baseline']:.3f} "
              f"(median of {len(ratios)}: {' '.join(f'{x:.2f}' for x in ratios)})", flush=True)
    return out


if __name__ == "__main__":
    main()
