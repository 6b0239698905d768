"""benchmarks/switch_counts.py: /proc parsing and the window's rates, by hand."""

import importlib.util
import os
import sys
import threading
from pathlib import Path

import pytest

_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_DIR))
_SPEC = importlib.util.spec_from_file_location("switch_counts", _DIR / "switch_counts.py")
switches = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(switches)

STATUS = "Name:\tpython\nThreads:\t3\nvoluntary_ctxt_switches:\t120\n" \
         "nonvoluntary_ctxt_switches:\t7\n"
SCHED = ("python (12, #threads: 3)\n----\nse.exec_start    :   10.0\n"
         "se.sum_exec_runtime      :     1500.250000\nse.nr_migrations    :   9\n")


def test_status_and_sched_texts_give_switches_cpu_and_migrations():
    assert switches.parse_status(STATUS) == (120, 7)
    assert switches.parse_sched(SCHED) == (pytest.approx(1.50025), 9)
    with pytest.raises(ValueError, match="Name"):
        switches.parse_status("Name:\tpython\n")


def test_a_live_thread_is_read_and_a_gone_one_is_none():
    # This process's main thread: a name and non-negative counts that a blocking
    # wait (a voluntary switch) moves.
    name, before = switches.thread_counts(os.getpid(), threading.get_native_id())
    threading.Event().wait(0.01)
    _, after = switches.thread_counts(os.getpid(), threading.get_native_id())
    assert name and min(before) >= 0
    assert after[1] > before[1]
    assert switches.thread_counts(os.getpid(), 2**22 + 12345) is None


def test_core_shares_are_idle_interrupt_and_stolen_ticks_over_all():
    # 100 ticks: 50 user, 20 idle + 10 I/O wait, 5 + 5 in interrupts, 10 stolen.
    before = {"cpu0": [0] * 10}
    after = {"cpu0": [50, 0, 0, 20, 10, 5, 5, 10, 0, 0]}
    assert switches.core_shares(before, after) == {
        "cpu0": {"idle": 0.3, "irq": 0.1, "steal": 0.1}}


def test_rates_sum_a_roles_threads_of_one_name_per_second():
    # Two I/O threads of ps/0 (different tids) and a thread that ended before `after`.
    before = {("ps/0", 1): ("ZMQbg/IO/0", [1.0, 10, 2, 0]),
              ("ps/0", 2): ("ZMQbg/IO/0", [0.0, 0, 0, 0]),
              ("worker/0", 3): ("python", [5.0, 1, 1, 1])}
    after = {("ps/0", 1): ("ZMQbg/IO/0", [1.5, 30, 6, 2]),
             ("ps/0", 2): ("ZMQbg/IO/0", [0.5, 20, 0, 0]),
             ("ps/0", 4): ("python", [9.0, 9, 9, 9])}
    assert switches.rates(before, after, 2.0) == {"ps/0 ZMQbg/IO/0": {
        "cores": 0.5, "voluntary_per_s": 20.0, "involuntary_per_s": 2.0,
        "migrations_per_s": 1.0}}


def test_other_cores_are_the_busy_cores_beyond_the_runs_threads():
    # Two cores, 0.3 and 0.1 idle, 0.1 stolen on the first: 1.5 cores busy, the
    # run's threads 1.2 of them.
    shares = {"cpu0": {"idle": 0.3, "irq": 0.0, "steal": 0.1},
              "cpu1": {"idle": 0.1, "irq": 0.0, "steal": 0.0}}
    threads = {"ps/0 python": {"cores": 0.5}, "worker/0 python": {"cores": 0.7}}
    assert switches.other_cores(shares, threads) == pytest.approx(0.3)
    assert switches.other_cores(shares, {"w": {"cores": 2.0}}) == 0.0
