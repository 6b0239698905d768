"""Which NumPy work two Python threads run faster than one, on this machine.

Each loop runs twice in one thread, then once in each of two threads at the same time,
each thread on its own arrays; the table gives the speed-up (serial time / concurrent
time). Run with one BLAS thread, as the intra-op pool's pieces run:

    OMP_NUM_THREADS=1 python benchmarks/thread_scaling.py
"""

from __future__ import annotations

import threading
import time

import numpy as np


def _maximum_loop(kib: int, calls: int):
    pairs = [(np.ones(kib * 256, np.float32), np.empty(kib * 256, np.float32))
             for _ in range(2)]

    def loop(i: int) -> None:
        a, out = pairs[i]
        for _ in range(calls):
            np.maximum(a, a, out=out)
    return loop


def _sin_loop(i: int) -> None:
    a, out = np.ones(1 << 16, np.float32), np.empty(1 << 16, np.float32)
    for _ in range(4000):
        np.sin(a, out=out)


def _gemm_loop(i: int) -> None:
    a = np.ones((256, 256), np.float32)
    for _ in range(400):
        a @ a


LOOPS = {"a @ a, 256x256 float32": _gemm_loop, "np.sin over 256 KB": _sin_loop,
         "np.maximum over 64 KB": _maximum_loop(64, 20000),
         "np.maximum over 1 MB": _maximum_loop(1024, 4000),
         "np.maximum over 4 MB": _maximum_loop(4096, 400)}


def speed_up(loop) -> float:
    """Serial time of loop(0); loop(1) over the time of both in two threads at once."""
    start = time.perf_counter()
    loop(0)
    loop(1)
    serial = time.perf_counter() - start
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return serial / (time.perf_counter() - start)


if __name__ == "__main__":
    for name, loop in LOOPS.items():
        print(f"{name:28s} {speed_up(loop):.2f}x on 2 threads")
