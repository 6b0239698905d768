"""Fashion-MNIST accuracy and time per epoch of the example models, beside PyTorch.

Single process, one BLAS thread for both libraries. For each model it trains
the example's network (examples/fashion_mnist_mlp.py and _cnn.py, without the
validation split) with its settings (Adam 1e-3; MLP batch 128 for 10 epochs,
CNN batch 32 for 5 epochs), evaluating on the test set after every epoch (evaluation is
not counted in the epoch time). PyTorch (CPU) runs the same architecture with
the same optimizer when it is installed (`pip install torch==2.13.0`; never a
distflow dependency). Prints a table and one JSON line.

    OMP_NUM_THREADS=1 DISTFLOW_DATA=../shared/data python benchmarks/accuracy_bench.py \
        [--models mlp,cnn] [--epochs-mlp 10] [--epochs-cnn 5] [--limit N]

Targets (issue 3): MLP >= 0.885 test accuracy within 10 epochs, CNN >= 0.91 within 5.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402 - after pinning BLAS threads

import distflow as df  # noqa: E402
from distflow import keras  # noqa: E402
from distflow.keras import layers  # noqa: E402

TARGETS = {"mlp": 0.885, "cnn": 0.91}


def load(data: str | None, limit: int | None):
    (x, y), (xt, yt) = keras.datasets.fashion_mnist.load_data(path=data)
    x, xt = x[..., None].astype(np.float32) / 255.0, xt[..., None].astype(np.float32) / 255.0
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y.astype(np.int64), xt, yt.astype(np.int64)


def distflow_model(kind: str) -> keras.Model:
    if kind == "mlp":
        body = [layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dropout(0.2),
                layers.Dense(128, activation="relu")]
    else:
        body = [layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
                layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
                layers.Flatten(), layers.Dropout(0.3), layers.Dense(128, activation="relu"),
                layers.Dropout(0.3)]
    return keras.Sequential([keras.Input(shape=(28, 28, 1)), *body, layers.Dense(10)])


def run_distflow(kind: str, epochs: int, batch: int, data) -> list[dict]:
    x, y, xt, yt = data
    keras.utils.set_random_seed(0)
    model = distflow_model(kind)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    rows = []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
        _, accuracy = model.evaluate(xt, yt, batch_size=1000, verbose=0)
        rows.append({"epoch": epoch + 1, "s": seconds, "test_accuracy": float(accuracy)})
    return rows


def run_torch(kind: str, epochs: int, batch: int, data) -> list[dict]:
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y, xt, yt = (torch.from_numpy(np.ascontiguousarray(a)) for a in data)
    x, xt = x.permute(0, 3, 1, 2).contiguous(), xt.permute(0, 3, 1, 2).contiguous()
    if kind == "mlp":
        body = [nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                nn.Linear(256, 128), nn.ReLU()]
    else:
        body = [nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                nn.Dropout(0.3), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.3)]
    model = nn.Sequential(*body, nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    rows = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.from_numpy(rng.permutation(len(x)))
        model.train()
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            accuracy = float((model(xt).argmax(1) == yt).float().mean())
        rows.append({"epoch": epoch + 1, "s": seconds, "test_accuracy": accuracy})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--epochs-mlp", type=int, default=10)
    parser.add_argument("--epochs-cnn", type=int, default=5)
    parser.add_argument("--data", default=None)
    parser.add_argument("--limit", type=int, default=None, help="first N training images")
    args = parser.parse_args(argv)
    data = load(args.data, args.limit)
    libraries = {"distflow": run_distflow}
    if importlib.util.find_spec("torch") is not None:
        libraries["pytorch"] = run_torch
    results = {}
    print(f"{'model':5} {'library':9} {'epoch':>5} {'s/epoch':>8} {'test acc':>8}")
    for kind in args.models.split(","):
        epochs = args.epochs_mlp if kind == "mlp" else args.epochs_cnn
        batch = 128 if kind == "mlp" else 32
        for name, run in libraries.items():
            rows = run(kind, epochs, batch, data)
            results[f"{kind}/{name}"] = rows
            for r in rows:
                print(f"{kind:5} {name:9} {r['epoch']:>5} {r['s']:>8.2f} "
                      f"{r['test_accuracy']:>8.4f}", flush=True)
        best = max(r["test_accuracy"] for r in results[f"{kind}/distflow"])
        print(f"{kind}: distflow best {best:.4f} (target {TARGETS[kind]})", flush=True)
    print(json.dumps({"benchmark": "accuracy", "limit": args.limit, "results": results}))
    return results


if __name__ == "__main__":
    df.random.set_seed(0)
    main()
