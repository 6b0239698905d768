"""Twin processes: ranges really run in another process over shared memory; errors,
deaths and silences are reported by name; arrays outside twin memory, one thread or
DISTFLOW_TWINS=0 mean threads; twins end with their parent."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import distflow as df
from distflow import intra_op, twin


@pytest.fixture
def two_threads():
    """Two intra-op threads and running twins for the test; the count restored after."""
    before = intra_op.blas_threads()
    df.config.threading.set_intra_op_parallelism_threads(2)
    yield twin.ensure_started()
    df.config.threading.set_intra_op_parallelism_threads(before)


def _probe_arrays(rows=10):
    return twin.array((rows,), np.int64), twin.array((2,), np.int64)


def test_the_second_range_runs_in_the_twin_process(two_threads):
    out, ran = _probe_arrays()
    out[:] = -1
    assert twin.split(10, twin.probe, out, ran) == [(0, 5), (5, 10)]
    assert out.tolist() == list(range(10))
    assert ran[0] == os.getpid()
    assert ran[1] == two_threads[0] != os.getpid()


def test_shared_copies_only_what_lies_outside_twin_memory(two_threads):
    outside = np.arange(12.0).reshape(3, 4).T
    inside = twin.copy(outside)
    assert twin.holds(inside) and not twin.holds(outside)
    assert inside.flags.c_contiguous and (inside == outside).all()
    assert twin.shared(inside) is inside and twin.shared(inside[1:]).base is inside.base
    moved = twin.shared(outside)
    assert moved is not outside and twin.holds(moved) and (moved == outside).all()


def test_views_with_offsets_and_strides_reach_the_twin(two_threads):
    base, ran = twin.array((3, 40), np.int64), twin.array((2,), np.int64)
    base[:] = -1
    view = base[1, 3::3]  # 13 elements, offset 43 items, stride 3
    twin.split(len(view), twin.probe, view, ran)
    assert view.tolist() == list(range(13))
    assert (base[0] == -1).all() and (base[2] == -1).all()
    assert base[1, 4] == -1 and ran[1] == two_threads[0]


def test_a_kernel_error_is_raised_with_its_name_and_the_twin_serves_on(two_threads):
    out, ran = _probe_arrays()
    with pytest.raises(RuntimeError, match=r"distflow.twin:probe failed in twin process "
                       rf"{two_threads[0]}: ValueError: bad rows"):
        twin.split(10, twin.probe, out, ran, 0.0, "bad rows")
    twin.split(10, twin.probe, out, ran)
    assert ran[1] == two_threads[0] and twin.pids() == two_threads


def test_only_marked_kernels_run():
    with pytest.raises(TypeError, match="marked @twin.kernel only. Received: "
                       "numpy.zeros"):
        twin.split(4, np.zeros)
    with pytest.raises(ValueError, match="distflow's kernels only. Received: os:system"):
        twin._kernel_by_name("os:system")
    with pytest.raises(ValueError, match="distflow.twin:array is not a @twin.kernel"):
        twin._kernel_by_name("distflow.twin:array")


def test_arguments_the_wire_cannot_carry_are_refused(two_threads):
    out, ran = _probe_arrays()
    with pytest.raises(TypeError, match="Received: dict"):
        twin.split(10, twin.probe, out, ran, {"pause": 1})


def test_an_argument_too_large_for_a_message_says_to_use_a_twin_array(two_threads):
    out, ran = _probe_arrays()
    with pytest.raises(ValueError, match=r"limited to 65536 bytes. Received \d+ bytes for "
                       r"distflow.twin:probe: pass large or variable-size values as a "
                       r"twin.array instead"):
        twin.split(10, twin.probe, out, ran, 0.0, "x" * 70000)
    twin.split(10, twin.probe, out, ran)  # nothing was half sent
    assert ran[1] == two_threads[0] and out.tolist() == list(range(10))


def test_an_array_outside_twin_memory_runs_the_ranges_on_threads(two_threads):
    out, ran = np.full(10, -1), twin.array((2,), np.int64)
    before = twin.counts()
    twin.split(10, twin.probe, out, ran)
    assert out.tolist() == list(range(10))
    assert ran.tolist() == [os.getpid(), os.getpid()]
    twin.split(10, twin.probe, twin.array((10,), np.int64), ran)
    after = twin.counts()
    assert (after["threads"] - before["threads"], after["twins"] - before["twins"]) == (1, 1)


def test_a_dead_twin_fails_the_call_by_name_and_the_next_start_replaces_it(two_threads):
    out, ran = _probe_arrays()
    os.kill(two_threads[0], signal.SIGKILL)
    time.sleep(0.2)  # gone before the call
    with pytest.raises(RuntimeError, match=rf"twin process {two_threads[0]} exited \(code "
                       r"-9\) before it was sent distflow.twin:probe over rows 5:10"):
        twin.split(10, twin.probe, out, ran)
    new = twin.ensure_started()
    assert new != two_threads
    twin.split(10, twin.probe, out, ran)
    assert ran[1] == new[0] and out.tolist() == list(range(10))


def test_a_twin_that_dies_during_a_call_fails_it_by_name(two_threads):
    out, ran = _probe_arrays()
    killer = subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -9 {two_threads[0]}"])
    with pytest.raises(RuntimeError, match=rf"twin process {two_threads[0]} exited \(code "
                       r"-9\) while this process waited for distflow.twin:probe over rows 5:10"):
        twin.split(10, twin.probe, out, ran, 5.0)
    killer.wait()
    assert twin.pids() == []


def test_a_silent_twin_times_out_naming_what_was_awaited(two_threads, monkeypatch):
    out, ran = _probe_arrays()
    monkeypatch.setenv("DISTFLOW_TWIN_TIMEOUT", "0.5")
    with pytest.raises(TimeoutError, match=rf"twin process {two_threads[0]} did not answer "
                       r"within 0.5 s while this process waited for distflow.twin:probe over "
                       r"rows 5:10 \(DISTFLOW_TWIN_TIMEOUT"):
        twin.split(10, twin.probe, out, ran, 3.0)
    assert twin.pids() == []  # stopped: its late answer must not be read as the next one
    monkeypatch.delenv("DISTFLOW_TWIN_TIMEOUT")
    assert twin.ensure_started() != two_threads


def test_twins_that_cannot_start_leave_the_ranges_on_threads_with_one_warning(
        two_threads, monkeypatch):
    twin._stop()
    monkeypatch.setenv("DISTFLOW_TWIN_TIMEOUT", "0.001")
    out, ran = _probe_arrays()
    with pytest.warns(RuntimeWarning, match="twin processes did not start .*did not answer "
                      "within 0.001 s while this process waited for its start-up.*ops run "
                      "their ranges on threads instead"):
        twin.split(10, twin.probe, out, ran)
    assert out.tolist() == list(range(10)) and ran.tolist() == [os.getpid()] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin.split(10, twin.probe, out, ran)  # no second attempt, no second warning
    with pytest.raises(TimeoutError, match="waited for its start-up"):
        twin.ensure_started()
    monkeypatch.delenv("DISTFLOW_TWIN_TIMEOUT")
    assert len(twin.ensure_started()) == 1


def _memfd_maps(pid):
    with open(f"/proc/{pid}/maps") as maps:
        return sum("distflow-twin" in line for line in maps)


def test_freed_arrays_are_unmapped_in_the_twin_too(two_threads):
    ran = twin.array((2,), np.int64)
    twin.split(10, twin.probe, twin.array((10,), np.int64), ran)
    before = _memfd_maps(two_threads[0])
    arrays = [twin.array((1000 + k,), np.int64) for k in range(40)]
    for a in arrays:
        twin.split(len(a), twin.probe, a, ran)
    peak = _memfd_maps(two_threads[0])
    assert peak >= 40  # the forty arrays at least
    del arrays, a  # the pool keeps the last 16 shapes' arrays; the others are freed
    twin.split(10, twin.probe, twin.array((10,), np.int64), ran)  # carries the drops
    assert _memfd_maps(two_threads[0]) <= before + twin._POOL_SHAPES + 2 < peak


def test_a_forked_child_has_no_twins_and_leaves_the_parents_alone(two_threads):
    pid = os.fork()
    if pid == 0:  # the child: no twins, its copies of their sockets closed
        os._exit(0 if twin.pids() == [] and twin._state["error"] is None else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    out, ran = _probe_arrays()
    twin.split(10, twin.probe, out, ran)
    assert ran[1] == two_threads[0] and twin.pids() == two_threads


@pytest.mark.parametrize("threads", [1, 2])
def test_an_array_is_not_handed_out_again_while_a_view_of_it_lives(threads):
    before = intra_op.blas_threads()
    df.config.threading.set_intra_op_parallelism_threads(threads)
    try:
        first = twin.array((7, 11), np.float32)
        view = first[2:5].T  # its base is the pooled memory, not `first`
        address = first.__array_interface__["data"][0]
        del first
        second = twin.array((7, 11), np.float32)
        assert not np.shares_memory(view, second)
        del view, second
        third = twin.array((11, 7), np.float32)  # the same size, free again: reused
        assert third.shape == (11, 7) and third.__array_interface__["data"][0] == address
    finally:
        df.config.threading.set_intra_op_parallelism_threads(before)


def test_one_thread_means_no_twins_and_plain_arrays():
    before = intra_op.blas_threads()
    df.config.threading.set_intra_op_parallelism_threads(1)
    try:
        out, ran = np.full(6, -1), np.zeros(2, np.int64)
        assert twin.ensure_started() == []
        assert not twin.holds(twin.array((6,), np.int64))
        assert twin.split(6, twin.probe, out, ran) == [(0, 6)]
        assert out.tolist() == list(range(6)) and ran[0] == os.getpid()
    finally:
        df.config.threading.set_intra_op_parallelism_threads(before)


def _run(code, env=None, timeout=120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_distflow_twins_0_keeps_every_range_on_threads():
    done = _run("""
        import os, numpy as np
        from distflow import twin
        out, ran = twin.array((8,), np.int64), twin.array((2,), np.int64)
        twin.split(8, twin.probe, out, ran)
        print(twin.ensure_started(), ran.tolist() == [os.getpid()] * 2, out.tolist())
    """, {"DISTFLOW_TWINS": "0", "OPENBLAS_NUM_THREADS": "2"})
    assert done.stdout.split("\n")[0] == "[] True [0, 1, 2, 3, 4, 5, 6, 7]", done.stderr


def test_ctrl_c_while_waiting_leaves_no_stale_answer_for_the_next_call():
    done = _run("""
        import os, signal, threading, numpy as np
        from distflow import twin
        first = twin.ensure_started()
        out, ran = twin.array((10,), np.int64), twin.array((2,), np.int64)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            twin.split(10, twin.probe, out, ran, 1.0)
        except KeyboardInterrupt:
            print("interrupted")
        out[:] = -1
        twin.split(10, twin.probe, out, ran)
        print(out.tolist() == list(range(10)), twin.pids() != first, ran[1] == twin.pids()[0])
    """, {"OPENBLAS_NUM_THREADS": "2"})
    assert done.stdout.split("\n")[:2] == ["interrupted", "True True True"], done.stderr


def test_twins_exit_when_their_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from distflow import twin
        print(*twin.ensure_started(), flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})
    try:
        child = int(parent.stdout.readline())
        assert os.path.exists(f"/proc/{child}")
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid):
    """Whether pid runs (a zombie child of init counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
