"""TensorFlow reference for benchmarks/train_bench.py: MultiWorkerMirroredStrategy on CPU.

TensorFlow is never a dependency of distflow; this script runs with an interpreter
that has it (`python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install
tensorflow-cpu==2.21.0 tf-keras==2.21.0`). Keras 3, TF 2.21's default `tf.keras`,
cannot `fit` under MultiWorkerMirroredStrategy (its steps receive PerReplica
values: keras-team/keras issue 20585), so the workers run TF's own Keras 2
(`TF_USE_LEGACY_KERAS=1`, the tf-keras package), as TF's multi-worker tutorial
does. It starts `--workers` processes with a TF_CONFIG listing
only worker tasks (TF's multi-worker tutorial), each with one intra-op and one
inter-op thread, trains the Fashion-MNIST MLP of benchmarks/train_worker.py with
`model.fit` (global batch = `--batch-size` x workers, Adam 1e-3) and prints one
JSON line like benchmarks/train_worker.py.

    /tmp/tfenv/bin/python benchmarks/tf_mwms.py --workers 2 --epochs 10 --batch-size 128
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _load(data: str | None):
    import distflow as df  # only the IDX reader (PYTHONPATH holds the checkout)

    (x, y), (xt, yt) = df.keras.datasets.fashion_mnist.load_data(path=data)
    return (x.reshape(-1, 784).astype(np.float32) / 255.0, y.astype(np.int64),
            xt.reshape(-1, 784).astype(np.float32) / 255.0, yt.astype(np.int64))


def _worker(args) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(args.seed)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, y, xt, yt = _load(args.data)
    global_batch = args.batch_size * strategy.num_replicas_in_sync
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=args.seed)
    data = data.batch(global_batch, drop_remainder=True).with_options(options)
    with strategy.scope():
        model = tf.keras.Sequential([
            tf.keras.Input(shape=(784,)),
            tf.keras.layers.Dense(256, activation="relu"),
            tf.keras.layers.Dropout(0.2),
            tf.keras.layers.Dense(128, activation="relu"),
            tf.keras.layers.Dense(10),
        ])
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(data, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(xt, yt, batch_size=1000, verbose=0)
    if args.index == 0:
        print(json.dumps({"samples_per_s": args.epochs * len(x) / seconds,
                          "s_per_epoch": seconds / args.epochs,
                          "test_accuracy": float(accuracy)}), flush=True)


def _launch(args) -> None:
    workers = [f"127.0.0.1:{p}" for p in _free_ports(args.workers)]
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2",
               TF_USE_LEGACY_KERAS="1")
    procs = []
    for index in range(args.workers):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        argv = [sys.executable, __file__, "--index", str(index), *sys.argv[1:]]
        procs.append(subprocess.Popen(argv, env={**env, "TF_CONFIG": json.dumps(config)},
                                      stdout=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=3600)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a TensorFlow worker failed: exit codes {[p.returncode for p in procs]}")
    print(outputs[0].strip().splitlines()[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128, help="per worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="directory holding the IDX files")
    parser.add_argument("--index", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.index is None:
        _launch(args)
    else:
        _worker(args)


if __name__ == "__main__":
    main()
