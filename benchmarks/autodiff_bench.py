"""One training step (forward, softmax cross-entropy, backward) with distflow's tape
against a hand-written NumPy forward/backward of the same network: the floor for a
NumPy implementation. Runs are interleaved in one process, so the ratio is meaningful
on a noisy machine even when absolute times are not.

    python benchmarks/autodiff_bench.py [--repeats 60] [--json-only]

Prints a table and one JSON line. Targets (issue 2): MLP <= 1.15x at batch 128 and 512,
CNN <= 1.5x, peak memory <= 1.5x. A second table (issue 14) runs the same MLP step traced
by `distflow.function` (one graph, run as a flat list of NumPy calls) beside the eager
tape and the NumPy floor, with the one-off tracing time. A third (issue 14, target
<= 1.05x the floor) trains the MLP as a Keras model with SGD: `fit`'s compiled step,
compiled `train_on_batch` and eager `fit` against the NumPy floor with its SGD update
and PyTorch eager (if installed), per step in process CPU time; `--tf-python` adds
TF/Keras 3's `train_on_batch` from its own process (benchmarks/tf_train_step.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc

import numpy as np
from numpy.lib.stride_tricks import as_strided

import distflow as df

RNG = np.random.default_rng(0)


def _glorot(*shape):
    fan = shape[-2] * (np.prod(shape[:-2]) if len(shape) > 2 else 1) + shape[-1]
    return (RNG.standard_normal(shape) * np.sqrt(2.0 / fan)).astype(np.float32)


# ------------------------------------------------------------------------ MLP

def mlp_params():
    return [_glorot(784, 256), np.zeros(256, np.float32), _glorot(256, 128),
            np.zeros(128, np.float32), _glorot(128, 10), np.zeros(10, np.float32)]


def mlp_distflow(variables):
    def step(x, y):
        w1, b1, w2, b2, w3, b3 = variables
        with df.GradientTape() as tape:
            h = df.nn.relu(x @ w1 + b1)
            h = df.nn.relu(h @ w2 + b2)
            logits = h @ w3 + b3
            loss = df.reduce_mean(df.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        return tape.gradient(loss, variables)
    return step


def _softmax_ce_backward(logits, y):
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    probs = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(probs[np.arange(n), y]).mean()
    probs[np.arange(n), y] -= 1
    return loss, probs / n


def mlp_numpy(params):
    def step(x, y):
        w1, b1, w2, b2, w3, b3 = params
        a1 = np.maximum(x @ w1 + b1, 0)
        a2 = np.maximum(a1 @ w2 + b2, 0)
        _, d3 = _softmax_ce_backward(a2 @ w3 + b3, y)
        d2 = (d3 @ w3.T) * (a2 > 0)
        d1 = (d2 @ w2.T) * (a1 > 0)
        return [x.T @ d1, d1.sum(0), a1.T @ d2, d2.sum(0), a2.T @ d3, d3.sum(0)]
    return step


# ------------------------------------------------------------------------ CNN

def cnn_params():
    return [_glorot(3, 3, 1, 32), np.zeros(32, np.float32), _glorot(3, 3, 32, 64),
            np.zeros(64, np.float32), _glorot(1600, 10), np.zeros(10, np.float32)]


def cnn_distflow(variables):
    def step(x, y):
        k1, c1, k2, c2, w, b = variables
        with df.GradientTape() as tape:
            h = df.nn.relu(df.nn.conv2d(x, k1, 1, "VALID") + c1)
            h = df.nn.max_pool2d(h, 2, 2, "VALID")
            h = df.nn.relu(df.nn.conv2d(h, k2, 1, "VALID") + c2)
            h = df.nn.max_pool2d(h, 2, 2, "VALID")
            logits = df.reshape(h, (-1, 1600)) @ w + b
            loss = df.reduce_mean(df.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        return tape.gradient(loss, variables)
    return step


def _im2col(x, k):
    n, h, w, c = x.shape
    s = x.strides
    view = as_strided(x, (n, h - k + 1, w - k + 1, k, k, c), (s[0], s[1], s[2], s[1], s[2], s[3]))
    return view.reshape(-1, k * k * c)


def _col2im(dcols, shape, k):
    n, h, w, c = shape
    oh, ow = h - k + 1, w - k + 1
    d = dcols.reshape(n, oh, ow, k, k, c)
    dx = np.zeros(shape, np.float32)
    for i in range(k):
        for j in range(k):
            dx[:, i:i + oh, j:j + ow, :] += d[:, :, :, i, j, :]
    return dx


def _pool_fwd(a):
    n, h, w, c = a.shape
    crop = a[:, :h // 2 * 2, :w // 2 * 2, :]
    win = crop.reshape(n, h // 2, 2, w // 2, 2, c)
    out = win.max(axis=(2, 4))
    return out, win == out[:, :, None, :, None, :]


def _pool_bwd(g, mask, shape):
    n, h, w, c = shape
    dx = np.zeros(shape, np.float32)
    dwin = mask * g[:, :, None, :, None, :]  # ties are rare with random data
    dx[:, :h // 2 * 2, :w // 2 * 2, :] = dwin.reshape(n, h // 2 * 2, w // 2 * 2, c)
    return dx


def cnn_numpy(params):
    def step(x, y):
        k1, c1, k2, c2, w, b = params
        cols1 = _im2col(x, 3)
        z1 = (cols1 @ k1.reshape(-1, 32)).reshape(len(x), 26, 26, 32) + c1
        a1 = np.maximum(z1, 0)
        p1, m1 = _pool_fwd(a1)
        cols2 = _im2col(p1, 3)
        z2 = (cols2 @ k2.reshape(-1, 64)).reshape(len(x), 11, 11, 64) + c2
        a2 = np.maximum(z2, 0)
        p2, m2 = _pool_fwd(a2)
        flat = p2.reshape(len(x), -1)
        _, d = _softmax_ce_backward(flat @ w + b, y)
        gw, gb = flat.T @ d, d.sum(0)
        dz2 = _pool_bwd((d @ w.T).reshape(p2.shape), m2, a2.shape) * (a2 > 0)
        gk2 = (cols2.T @ dz2.reshape(-1, 64)).reshape(k2.shape)
        dp1 = _col2im(dz2.reshape(-1, 64) @ k2.reshape(-1, 64).T, p1.shape, 3)
        dz1 = _pool_bwd(dp1, m1, a1.shape) * (a1 > 0)
        gk1 = (cols1.T @ dz1.reshape(-1, 32)).reshape(k1.shape)
        return [gk1, dz1.sum((0, 1, 2)), gk2, dz2.sum((0, 1, 2)), gw, gb]
    return step


# -------------------------------------------------------------------- harness

def _peak_bytes(fn, *args) -> int:
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def compare(name, batch, params_fn, ours_fn, floor_fn, x_shape, repeats):
    params = params_fn()
    variables = [df.Variable(p, name=f"bench/{name}/{i}") for i, p in enumerate(params)]
    ours, floor = ours_fn(variables), floor_fn(params)
    x = RNG.standard_normal((batch, *x_shape)).astype(np.float32)
    y = RNG.integers(0, 10, batch)
    for g_ours, g_floor in zip(ours(x, y), floor(x, y)):  # same math, or the timing is moot
        np.testing.assert_allclose(g_ours.numpy(), g_floor, rtol=2e-3, atol=1e-5)
    times = {"distflow": [], "numpy": []}
    for _ in range(repeats):  # interleaved so both see the same machine load
        for label, fn in (("distflow", ours), ("numpy", floor)):
            t0 = time.perf_counter()
            fn(x, y)
            times[label].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    mem = {"distflow": _peak_bytes(ours, x, y), "numpy": _peak_bytes(floor, x, y)}
    return {"model": name, "batch": batch,
            "distflow_ms": med["distflow"] * 1e3, "numpy_ms": med["numpy"] * 1e3,
            "time_ratio": med["distflow"] / med["numpy"],
            "distflow_peak_mb": mem["distflow"] / 2**20, "numpy_peak_mb": mem["numpy"] / 2**20,
            "memory_ratio": mem["distflow"] / mem["numpy"]}


def compare_traced(batch, repeats):
    """Eager tape step, the same step traced by `distflow.function`, and the NumPy floor."""
    params = mlp_params()
    variables = [df.Variable(p, name=f"bench/traced/{i}") for i, p in enumerate(params)]
    eager, floor = mlp_distflow(variables), mlp_numpy(params)
    traced = df.function(eager)
    x = RNG.standard_normal((batch, 784)).astype(np.float32)
    y = RNG.integers(0, 10, batch)
    t0 = time.perf_counter()
    traced(x, y)
    trace_ms = (time.perf_counter() - t0) * 1e3
    for g_traced, g_floor in zip(traced(x, y), floor(x, y)):
        np.testing.assert_allclose(g_traced.numpy(), g_floor, rtol=2e-3, atol=1e-5)
    times = {"eager": [], "traced": [], "numpy": []}
    for _ in range(repeats):
        for label, fn in (("eager", eager), ("traced", traced), ("numpy", floor)):
            t0 = time.perf_counter()
            fn(x, y)
            times[label].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {"model": "mlp-traced", "batch": batch, "eager_ms": med["eager"],
            "traced_ms": med["traced"], "numpy_ms": med["numpy"], "trace_ms": trace_ms,
            "traced_ratio": med["traced"] / med["numpy"],
            "eager_ratio": med["eager"] / med["numpy"],
            "kernel_calls": traced.get_concrete_function(x, y).num_kernel_calls}


# ------------------------------------------------------------ Keras training step

KERAS_LR = 0.01


def keras_mlp(run_eagerly):
    """The MLP as a Keras model, SGD and sparse cross-entropy from logits, no metrics."""
    model = df.keras.Sequential([
        df.keras.Input((784,)), df.keras.layers.Dense(256, activation="relu"),
        df.keras.layers.Dense(128, activation="relu"), df.keras.layers.Dense(10)])
    model.compile(optimizer=df.keras.optimizers.SGD(KERAS_LR), run_eagerly=run_eagerly,
                  loss=df.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def numpy_train_step(params):
    """The NumPy floor of a training step: forward, backward, SGD update in place."""
    grads = mlp_numpy(params)

    def step(x, y):
        for w, g in zip(params, grads(x, y)):
            w -= KERAS_LR * g
    return step


def torch_train_step(params):
    """PyTorch eager (one thread, as the NumPy floor's BLAS): zero_grad, backward, step."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 128), torch.nn.ReLU(),
                              torch.nn.Linear(128, 10))
    with torch.no_grad():
        for layer, (w, b) in zip(net[::2], zip(params[::2], params[1::2])):
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    opt, loss_fn = torch.optim.SGD(net.parameters(), lr=KERAS_LR), torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    return step


def compare_keras(batch, repeats, steps=32):
    """Per training step, in process CPU time: `fit` (compiled, and eager) over `steps`
    batches, compiled `train_on_batch`, the NumPy floor and PyTorch over the same batches.
    `fit`'s once-per-call costs (callbacks, data adapter, metric resets: about a
    millisecond) are shared by the `steps` steps of its epoch."""
    x = RNG.standard_normal((batch * steps, 784)).astype(np.float32)
    y = RNG.integers(0, 10, batch * steps)
    compiled, eager = keras_mlp(False), keras_mlp(True)
    eager.set_weights(compiled.get_weights())
    params = [w.copy() for w in compiled.get_weights()]
    floor, torch_step = numpy_train_step(params), torch_train_step(params)
    batches = [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(steps)]
    t0 = time.perf_counter()
    compiled.train_on_batch(*batches[0])
    trace_ms = (time.perf_counter() - t0) * 1e3
    floor(*batches[0])
    np.testing.assert_allclose(compiled.get_weights()[0], params[0], rtol=1e-4, atol=1e-6)

    def fit(model):
        return lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)

    def loop(step):
        return lambda: [step(xb, yb) for xb, yb in batches]

    runs = {"fit_compiled": fit(compiled), "fit_eager": fit(eager),
            "train_on_batch": loop(compiled.train_on_batch), "numpy": loop(floor)}
    if torch_step is not None:
        runs["torch"] = loop(torch_step)
    fit(compiled)()  # the last partial batch's trace, if any, before timing
    times = {k: [] for k in runs}
    for _ in range(repeats):  # interleaved so all see the same machine load
        for label, run in runs.items():
            t0 = time.process_time()
            run()
            times[label].append((time.process_time() - t0) / steps)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    row = {"model": "mlp-keras", "batch": batch, "trace_ms": trace_ms,
           **{f"{k}_ms": v for k, v in med.items()},
           **{f"{k}_ratio": v / med["numpy"] for k, v in med.items() if k != "numpy"}}
    return row


def _print_keras(rows) -> None:
    labels = ["fit_compiled", "train_on_batch", "fit_eager", "torch"]
    print(f"\n{'batch':>5} {'numpy ms':>9} " + " ".join(f"{k + '/np':>17}" for k in labels)
          + f" {'trace ms':>9}")
    for r in rows:
        print(f"{r['batch']:>5} {r['numpy_ms']:>9.3f} " + " ".join(
            f"{r.get(k + '_ratio', float('nan')):>17.3f}" for k in labels)
            + f" {r['trace_ms']:>9.1f}")


def tensorflow_peer(python, batches, repeats, steps=32) -> list[dict]:
    """TF/Keras 3's compiled `train_on_batch`, measured by `python` (an interpreter with
    TensorFlow) in its own process right after this one's measurements."""
    import os
    import subprocess

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_train_step.py")
    out = subprocess.run([python, script, "--batches", *map(str, batches), "--repeats",
                          str(repeats), "--steps", str(steps)], capture_output=True, text=True,
                         check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])["rows"]


def _print_traced(rows) -> None:
    print(f"\n{'batch':>5} {'eager ms':>9} {'traced ms':>10} {'numpy ms':>9} {'traced/np':>9} "
          f"{'eager/np':>8} {'trace ms':>9} {'kernels':>7}")
    for r in rows:
        print(f"{r['batch']:>5} {r['eager_ms']:>9.3f} {r['traced_ms']:>10.3f} "
              f"{r['numpy_ms']:>9.3f} {r['traced_ratio']:>9.3f} {r['eager_ratio']:>8.3f} "
              f"{r['trace_ms']:>9.1f} {r['kernel_calls']:>7}")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument("--traced-batches", type=int, nargs="+", default=[128, 512],
                        help="batch sizes of the traced-step table (8 shows the fixed cost)")
    parser.add_argument("--keras-batches", type=int, nargs="+", default=[128, 512],
                        help="batch sizes of the Keras training-step table")
    parser.add_argument("--keras-repeats", type=int, default=30)
    parser.add_argument("--keras-only", action="store_true", help="only the Keras table")
    parser.add_argument("--tf-python", default=None,
                        help="an interpreter with tensorflow-cpu 2.21: TF/Keras 3's "
                        "train_on_batch measured in its own process after this one")
    args = parser.parse_args(argv)
    rows = [] if args.keras_only else [
        compare("mlp", b, mlp_params, mlp_distflow, mlp_numpy, (784,), args.repeats)
        for b in (64, 128, 512)]
    if not args.keras_only:
        rows.append(compare("cnn", 64, cnn_params, cnn_distflow, cnn_numpy, (28, 28, 1),
                            max(args.repeats // 4, 5)))
    if not args.json_only and rows:
        print(f"{'model':6} {'batch':>5} {'distflow ms':>12} {'numpy ms':>9} {'ratio':>6} "
              f"{'peak MB (df/np)':>16} {'mem ratio':>9}")
        for r in rows:
            print(f"{r['model']:6} {r['batch']:>5} {r['distflow_ms']:>12.3f} "
                  f"{r['numpy_ms']:>9.3f} {r['time_ratio']:>6.3f} "
                  f"{r['distflow_peak_mb']:>7.1f}/{r['numpy_peak_mb']:<8.1f} "
                  f"{r['memory_ratio']:>9.3f}")
    traced = [] if args.keras_only else [compare_traced(b, args.repeats)
                                         for b in args.traced_batches]
    if not args.json_only and traced:
        _print_traced(traced)
    rows += traced
    keras_rows = [compare_keras(b, args.keras_repeats) for b in args.keras_batches]
    if not args.json_only:
        _print_keras(keras_rows)
    rows += keras_rows
    if args.tf_python:
        tf_rows = tensorflow_peer(args.tf_python, args.keras_batches, args.keras_repeats)
        for r in tf_rows:
            floor = next(k["numpy_ms"] for k in keras_rows if k["batch"] == r["batch"])
            r["tf_ratio_to_this_runs_numpy"] = r["tf_train_on_batch_ms"] / floor
            if not args.json_only:
                print(f"TF/Keras 3 train_on_batch, batch {r['batch']}: "
                      f"{r['tf_train_on_batch_ms']:.3f} ms CPU "
                      f"({r['tf_ratio_to_this_runs_numpy']:.3f}x this run's NumPy floor)")
        rows += tf_rows
    print(json.dumps({"benchmark": "autodiff", "rows": rows}))
    return rows


if __name__ == "__main__":
    main()
