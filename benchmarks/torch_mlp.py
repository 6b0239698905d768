"""PyTorch reference for benchmarks/train_bench.py (benchmarks only: torch is never a
dependency of distflow). Trains the same MLP with Adam on Fashion-MNIST, on one
process or with DistributedDataParallel (gloo) on `--workers` processes, one BLAS
thread each, and prints one JSON line like benchmarks/train_worker.py.

    python benchmarks/torch_mlp.py --workers 2 --epochs 10 --batch-size 128
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load(data: str | None):
    import distflow as df

    (x, y), (xt, yt) = df.keras.datasets.fashion_mnist.load_data(path=data)
    return (x.reshape(-1, 784).astype(np.float32) / 255.0, y.astype(np.int64),
            xt.reshape(-1, 784).astype(np.float32) / 255.0, yt.astype(np.int64))


def _train(rank: int, world: int, port: int, args, queue) -> None:
    import torch
    import torch.distributed as dist
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                                rank=rank, world_size=world)
    x, y, xt, yt = _load(args.data)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    net.train()
    for _ in range(args.epochs):
        order = rng.permutation(len(x))[rank::world]  # DistributedSampler's split
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            idx = torch.from_numpy(order[i:i + args.batch_size])
            opt.zero_grad()
            loss_fn(net(xs[idx]), ys[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    if rank == 0:
        model.eval()
        with torch.no_grad():
            acc = (model(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean()
        queue.put({"samples_per_s": args.epochs * len(x) / seconds,
                   "s_per_epoch": seconds / args.epochs, "test_accuracy": float(acc)})
    if world > 1:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_train, args=(r, args.workers, port, args, queue))
             for r in range(args.workers)]
    for p in procs:
        p.start()
    result = queue.get(timeout=1800)
    for p in procs:
        p.join(timeout=60)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
