"""How fast could a Python parameter server answer a small push_pull? A floor study.

Side by side, in interleaved blocks, at one parameter-set size (64 KB default):

- echo: a ROUTER process that sends every message back unchanged (the transport
  floor with a msgpack header frame and one data frame, as distflow's requests have);
- minimal: a ROUTER process doing the least a push_pull needs: unpack the
  msgpack header, check the gradient is finite, apply SGD to one flat parameter
  array, reply with a header and the parameters (zero-copy);
- distflow: `PSClient.push_pull` against a real `python -m distflow.distribute.server`
  (async, SGD with learning rate 0) for the same bytes in 4 variables.

The client copies each reply into its arrays in all three. The gap between
"minimal" and "distflow" is distflow's per-request bookkeeping (validation,
per-variable updates, staleness and stats, the client's exchange logic), the
part a faster small-message path would have to remove. Prints a table and one
JSON line.

    python benchmarks/ps_floor.py [--size-kb 64] [--blocks 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import msgpack
import numpy as np
import zmq
from ps_bench import SGD_LR0, child_env, free_port, start_servers


def serve(kind: str, address: str, floats: int) -> None:
    """The echo or minimal server loop (run in a child process)."""
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(address)
    params = np.ones(floats, np.float32)
    while True:
        identity, header, data = sock.recv_multipart(copy=False)
        if kind == "echo":
            sock.send_multipart([identity, header, data], copy=False)
            continue
        request = msgpack.unpackb(header.buffer)
        if request["op"] == "stop":
            return
        grad = np.frombuffer(data.buffer, np.float32)
        if not np.isfinite(np.add.reduce(grad)):  # one pass: inf or nan makes the sum non-finite
            raise ValueError("non-finite gradient")
        params -= 0.0 * grad
        reply = msgpack.packb({"op": "ok", "req": request["req"], "version": 1})
        sock.send_multipart([identity, reply, params], copy=False)


def _dealer(address: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    return sock


def _round_trip(sock: zmq.Socket, grad: np.ndarray, out: np.ndarray, req: int) -> None:
    sock.send_multipart([msgpack.packb({"op": "push_pull", "req": req, "step": 1}), grad],
                        copy=False)
    if not sock.poll(10_000):
        raise TimeoutError(f"no reply from {sock.LAST_ENDPOINT!r} within 10 s")
    header, data = sock.recv_multipart(copy=False)
    msgpack.unpackb(header.buffer)
    np.copyto(out, np.frombuffer(data.buffer, np.float32))


def runners(floats: int) -> tuple[dict, list]:
    children, steps = [], {}
    for kind in ("echo", "minimal"):
        address = f"tcp://127.0.0.1:{free_port()}"
        children.append(subprocess.Popen([sys.executable, __file__, "--serve", kind, address,
                                          str(floats)], env=child_env()))
        sock, grad, out = _dealer(address), np.full(floats, 0.5, np.float32), np.empty(floats,
                                                                                  np.float32)
        steps[kind] = lambda i, s=sock, g=grad, o=out: _round_trip(s, g, o, i)
    from distflow.distribute.client import PSClient

    procs, addrs = start_servers(1, "async", None)
    children += procs
    params = {f"layer{i}/kernel": np.ones(floats // 4, np.float32) for i in range(4)}
    grads = {name: np.full(floats // 4, 0.5, np.float32) for name in params}
    client = PSClient(addrs, worker_id=0, timeout=60.0, retries=0)
    client.init(params, SGD_LR0, out=params)
    steps["distflow"] = lambda i: client.push_pull(grads, out=params)
    return steps, [client, *children]


def measure(steps: dict, blocks: int, per_block: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # warm up
        for i in range(50):
            step(i)
    for _ in range(blocks):
        for name, step in steps.items():
            start = time.perf_counter()
            for i in range(per_block):
                step(i)
            times[name].append((time.perf_counter() - start) / per_block * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-kb", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, address, floats = args.serve
        return serve(kind, address, int(floats))
    floats = args.size_kb * 1024 // 4
    steps, owned = runners(floats)
    try:
        ms = measure(steps, args.blocks, per_block=100)
    finally:
        client, *children = owned
        client.shutdown()
        client.close(leave=False)
        for child in children:
            child.kill()
    print(f"{'server':10} {'ms':>8} {'x echo':>7}")
    for name, value in ms.items():
        print(f"{name:10} {value:>8.3f} {value / ms['echo']:>7.2f}")
    print(json.dumps({"benchmark": "ps_floor", "size_kb": args.size_kb, "ms": ms}))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
