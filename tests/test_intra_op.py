"""The intra-op pool: pieces run on the configured number of threads (really
concurrently), BLAS is held at one thread inside them and restored exactly, one thread
means the caller alone, errors propagate, overlapping regions and forks are safe."""

import os
import threading

import numpy as np
import pytest

import distflow as df
from distflow import intra_op

HAS_BLAS = intra_op.blas_threads() is not None
needs_blas = pytest.mark.skipif(not HAS_BLAS, reason="no OpenBLAS whose thread count is settable")


@pytest.fixture
def set_threads():
    """Sets the process's intra-op thread count for the test; restores it afterwards."""
    before = intra_op.blas_threads()
    yield lambda n: df.config.threading.set_intra_op_parallelism_threads(n)
    if before is not None:
        intra_op.set_blas_threads(before)


def _barrier_pieces(parties):
    """A body whose first `parties` pieces all wait for each other (a thread that runs
    two of them alone would time out and fail), recording thread and BLAS count."""
    barrier, seen, lock = threading.Barrier(parties, timeout=60), [], threading.Lock()

    def body(i):
        if i < parties:
            barrier.wait()
        with lock:
            seen.append((i, threading.get_ident(), intra_op.blas_threads(),
                         intra_op._blas()[0]() if HAS_BLAS else None, intra_op.threads()))
    return body, seen


@needs_blas
def test_two_threads_run_pieces_concurrently_with_blas_at_one_then_restored(set_threads):
    set_threads(2)
    body, seen = _barrier_pieces(2)
    intra_op.parallel_for(7, body)
    assert sorted(i for i, *_ in seen) == list(range(7))
    assert len({ident for i, ident, *_ in seen if i < 2}) == 2
    assert all(configured == 2 and live == 1 and inner == 1
               for _, _, configured, live, inner in seen)
    assert intra_op._blas()[0]() == 2 and intra_op.blas_threads() == 2
    assert df.config.blas_num_threads() == 2


@needs_blas
def test_one_thread_runs_every_piece_here_in_order_and_leaves_blas_alone(set_threads):
    set_threads(1)
    seen = []
    intra_op.parallel_for(5, lambda i: seen.append((i, threading.get_ident(),
                                                    intra_op._blas()[0]())))
    assert seen == [(i, threading.get_ident(), 1) for i in range(5)]


def test_one_piece_runs_here_with_blas_as_configured(set_threads):
    set_threads(2)
    seen = []
    intra_op.parallel_for(1, lambda i: seen.append((threading.get_ident(),
                                                    intra_op.blas_threads())))
    assert seen == [(threading.get_ident(), 2 if HAS_BLAS else None)]


@needs_blas
def test_an_error_in_a_piece_is_raised_after_all_pieces_and_blas_is_restored(set_threads):
    set_threads(2)
    done = []

    def body(i):
        if i == 3:
            raise ValueError("piece 3 failed")
        done.append(i)
    with pytest.raises(ValueError, match="piece 3 failed"):
        intra_op.parallel_for(8, body)
    assert intra_op._blas()[0]() == 2
    assert 3 not in done


@needs_blas
def test_pieces_do_not_nest(set_threads):
    set_threads(2)
    inner = []

    def body(i):
        intra_op.parallel_for(3, lambda j: inner.append((i, j, threading.get_ident())))
    intra_op.parallel_for(2, body)
    by_piece = {}
    for i, j, ident in inner:
        by_piece.setdefault(i, []).append((j, ident))
    for pieces in by_piece.values():  # each nested loop ran in its piece's thread, in order
        assert [j for j, _ in pieces] == [0, 1, 2] and len({t for _, t in pieces}) == 1


@needs_blas
def test_setting_the_count_during_a_region_is_what_the_region_restores(set_threads):
    set_threads(2)
    body, _ = _barrier_pieces(2)

    def piece(i):
        body(i)
        if i == 0:
            df.config.threading.set_intra_op_parallelism_threads(1)
    intra_op.parallel_for(2, piece)
    assert intra_op._blas()[0]() == 1 and intra_op.threads() == 1


@needs_blas
def test_overlapping_regions_from_two_threads_restore_the_count_exactly(set_threads):
    set_threads(2)
    errors = []

    def run():
        try:
            for _ in range(30):
                intra_op.parallel_for(4, lambda i: np.ones((64, 64), np.float32) @
                                      np.ones((64, 64), np.float32))
        except Exception as e:  # pragma: no cover  (reported below)
            errors.append(e)
    users = [threading.Thread(target=run) for _ in range(3)]
    for t in users:
        t.start()
    for t in users:
        t.join(timeout=120)
    assert not errors
    assert intra_op._blas()[0]() == 2 and intra_op.blas_threads() == 2


@needs_blas
def test_a_forked_child_runs_regions_on_its_own_pool(set_threads):
    set_threads(2)
    intra_op.parallel_for(2, _barrier_pieces(2)[0])  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child reports through its exit code)
        try:
            body, seen = _barrier_pieces(2)
            intra_op.parallel_for(4, body)
            ok = len(seen) == 4 and intra_op._blas()[0]() == 2
            os._exit(0 if ok else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("count,parts", [(10, 3), (2, 5), (7, 1), (0, 2), (64, 2)])
def test_split_covers_the_range_in_near_equal_contiguous_parts(count, parts):
    ranges = intra_op.split(count, parts)
    assert [i for a, b in ranges for i in range(a, b)] == list(range(count))
    sizes = [b - a for a, b in ranges]
    assert len(ranges) <= max(1, parts) and (not sizes or max(sizes) - min(sizes) <= 1)


@needs_blas
def test_a_region_at_interpreter_exit_runs_its_pieces_in_the_caller():
    """After the pool has refused new work (atexit), the calling thread takes every piece."""
    import subprocess
    import sys
    code = ("import atexit, distflow as df\n"
            "from distflow import intra_op\n"
            "df.config.threading.set_intra_op_parallelism_threads(2)\n"
            "intra_op.parallel_for(2, lambda i: None)\n"
            "def late():\n"
            "    seen = []\n"
            "    intra_op.parallel_for(4, seen.append)\n"
            "    print(sorted(seen))\n"
            "atexit.register(late)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 2, 3]"


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n,transposed", [(64, 3136, 10, False), (3136, 64, 10, True),
                                              (7, 9000, 40, True), (100, 50, 60, False)])
def test_small_products_on_two_threads_equal_one_thread_and_leave_blas_asleep(
        m, k, n, transposed, dtype, set_threads, monkeypatch):
    """Products OpenBLAS would thread but that are small run with BLAS at one thread
    (bit for bit the one-thread result); the count is restored."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((k, m) if transposed else (m, k)).astype(dtype)
    a = a.T if transposed else a
    b = rng.standard_normal((n, k)).astype(dtype).T  # a transposed view, as in the VJPs
    set_threads(1)
    expect = a @ b
    set_threads(2)
    held = []
    real = intra_op._enter
    monkeypatch.setattr(intra_op, "_enter", lambda: (real(), held.append(
        intra_op._blas()[0]())))
    got = intra_op.matmul(a, b)
    np.testing.assert_array_equal(got, expect)
    assert got.dtype == expect.dtype
    assert held == ([1] if m * k * n >= intra_op.BLAS_THREADED else [])
    assert intra_op._blas()[0]() == 2


@needs_blas
def test_blas_spinning_after_a_product_on_blas_threads_only(set_threads, monkeypatch):
    """A product through `matmul` from OWN_THREADS_PRODUCT multiply-adds on several
    threads leaves BLAS's threads spinning for BLAS_SPIN seconds; smaller products,
    and any product on one thread, do not."""
    monkeypatch.setattr(intra_op, "OWN_THREADS_PRODUCT", 1 << 19)
    monkeypatch.setitem(intra_op._state, "woken", float("-inf"))
    a = np.ones((128, 64), np.float32)
    set_threads(1)
    intra_op.matmul(a, a.T)  # 1 M multiply-adds, one thread
    assert not intra_op.blas_spinning()
    set_threads(2)
    intra_op.matmul(a[:8], a.T)  # small
    assert not intra_op.blas_spinning()
    intra_op.matmul(a, a.T)
    assert intra_op.blas_spinning()
    monkeypatch.setattr(intra_op, "BLAS_SPIN", 0.0)
    assert not intra_op.blas_spinning()


@needs_blas
def test_one_blas_thread_holds_blas_at_one_inside_and_restores_it(set_threads):
    set_threads(2)
    inside = intra_op.on_one_blas_thread(lambda: (intra_op._blas()[0](),
                                                  intra_op.blas_threads()))
    assert inside == (1, 2) and intra_op._blas()[0]() == 2
    set_threads(1)
    assert intra_op.on_one_blas_thread(lambda: intra_op._blas()[0]()) == 1
    assert intra_op.threads() == 1


@needs_blas
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("count", [1, 2, 5])
def test_per_thread_gives_each_thread_one_contiguous_range(set_threads, threads, count):
    set_threads(threads)
    seen, lock = [], threading.Lock()

    def body(start, stop):
        with lock:
            seen.append((start, stop, intra_op.blas_threads(), intra_op._blas()[0]()))
    intra_op.per_thread(count, body)
    assert sorted(s[:2] for s in seen) == intra_op.split(count, threads)
    assert all(blas == threads for *_, blas, _ in seen)  # the count it is restored to
    if len(seen) > 1:
        assert all(running == 1 for *_, running in seen)


@needs_blas
@pytest.mark.parametrize("threads", [1, 2])
def test_rows_matmul_is_the_product_by_row_ranges(set_threads, threads, monkeypatch):
    """The product of a column block and a transposed view, as one piece per thread;
    BLAS back at the configured count afterwards."""
    set_threads(threads)
    counts, real = [], intra_op.parallel_for
    monkeypatch.setattr(intra_op, "parallel_for",
                        lambda count, body: (counts.append(count), real(count, body)))
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((41, 7)), rng.standard_normal((9, 5))
    np.testing.assert_allclose(intra_op.rows_matmul(a[:, :5], b.T), a[:, :5] @ b.T,
                               rtol=1e-12)
    assert counts == [threads] and intra_op._blas()[0]() == threads
