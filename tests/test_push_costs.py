"""benchmarks/push_costs.py: the steady-state window and the costs per push, by hand."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_DIR))
_SPEC = importlib.util.spec_from_file_location("push_costs", _DIR / "push_costs.py")
costs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(costs)
role_cpu = sys.modules["role_cpu"]


def _series() -> "role_cpu.Series":
    """A run of one worker and one server sampled each second, t = 0..5 s: the worker
    at 0.5 CPU-s a second (0.4 its main thread), waiting 0.1 s a second; the server at
    0.3 (0.25 main); the machine's user time 100 ticks a second. Server 0 logged 0,
    10, 110, 210, 310 and 400 pushes at t = 0..5 s."""
    series = role_cpu.Series()
    tick = os.sysconf("SC_CLK_TCK")
    for t in range(6):
        roles = {"worker/0": [0.5 * t, 0.4 * t, 0.1 * t, 10.0 * t],
                 "ps/0": [0.3 * t, 0.25 * t, 0.0, 4.0 * t], "launcher": [0.0] * 4}
        series.samples.append((float(t), roles, [tick * t] + [0] * 9))
    series.stats = [(float(t), 0, n) for t, n in enumerate((0, 10, 110, 210, 310, 400))]
    return series


def test_the_window_skips_the_first_stats_line_with_pushes_and_the_final_count():
    # Lines with 0 < pushes < 400 are at t = 1..4 s; the first is dropped: 2..4 s.
    assert costs.window(_series()) == (2.0, 4.0)


def test_costs_per_push_are_the_windows_deltas_over_its_pushes():
    """Window 2-4 s, 310 - 110 = 200 pushes (and worker steps): the worker's 1.0 CPU-s
    give 5 ms a step (4 ms main, 1 ms I/O), the server's 0.6 give 3 ms a push (2.5 main);
    2 s / 200 steps = 10 ms a step, 200 * 128 / 2 = 12,800 samples/s; runnable
    (1.0 + 0.6 CPU-s + 0.2 s waiting) / 2 s = 0.9; other cores (2 s busy - 1.6 own)
    / 2 s = 0.2; the worker was put on a core 20 times (0.1 a step)."""
    run = {"mode": "async", "workers": 1, "servers": 1, "load1": 0.5}
    row = costs.per_push(run, _series())
    assert row["pushes"] == [200.0]
    assert row["worker_cpu_s"] == pytest.approx(0.005)
    assert row["worker_main_cpu_s"] == pytest.approx(0.004)
    assert row["server_cpu_s"] == pytest.approx([0.003])
    assert row["server_main_cpu_s"] == pytest.approx([0.0025])
    assert row["fit_s"] == pytest.approx(0.01)
    assert row["samples_per_s"] == pytest.approx(12_800)
    assert row["runnable"] == pytest.approx(0.9)
    assert row["other_cores"] == pytest.approx(0.2)
    assert row["worker_slices"] == pytest.approx(0.1)


def test_a_run_too_short_for_two_stats_lines_is_refused():
    series = _series()
    series.stats = series.stats[:3] + series.stats[-1:]  # lines at 0, 1, 2 and 5 s
    with pytest.raises(ValueError, match="more --epochs"):
        costs.window(series)


def test_stats_lines_are_read_with_their_time_and_server():
    series = role_cpu.Series()
    series.read(["[ps 1] 2026-12-03 09:42:20,542 INFO distflow.ps: stats version=68 "
                 "steps=68 pushes=68 bytes_in=1\n", "[worker 0] {\"samples_per_s\": 1}\n"])
    [(when, rank, pushes)] = series.stats
    assert (rank, pushes) == (1, 68)
    assert when % 1 == pytest.approx(0.542, abs=1e-6)
    assert len(series.lines) == 2


def test_host_cores_are_the_idle_interrupt_and_stolen_ticks_over_the_window():
    # /proc/stat's fields: user nice system idle iowait irq softirq steal guest ...
    # 2 s apart: 3 s idle + 1 s waiting for I/O, 0.2 + 0.4 s in interrupts, 1 s stolen.
    tick = os.sysconf("SC_CLK_TCK")
    after = [5 * tick, 0, tick, 3 * tick, tick, tick // 5, 2 * tick // 5, tick, 0, 0]
    assert costs.host_cores([0] * 10, after, 2.0) == pytest.approx(
        {"idle_cores": 2.0, "irq_cores": 0.3, "steal_cores": 0.5}, abs=1e-2)
    assert costs.host_cores([], after, 2.0) == {}


def test_a_costs_line_has_the_host_cores_and_the_chiefs_whole_fit_rate():
    # _series' machine was busy in user time only: nothing idle, nothing stolen.
    run = {"mode": "async", "workers": 1, "servers": 1, "load1": 0.5, "wall_s": 7.0,
           "result": {"samples_per_s": 11_000.0}}
    row = costs.per_push(run, _series())
    assert (row["idle_cores"], row["irq_cores"], row["steal_cores"]) == (0.0, 0.0, 0.0)
    assert (row["fit_samples_per_s"], row["wall_s"]) == (11_000.0, 7.0)
    row = costs.per_push({**run, "result": "Traceback ..."}, _series())
    assert row["fit_samples_per_s"] is None
