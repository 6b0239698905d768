"""benchmarks/wakeup_latency.py: real processes passing a byte over pipes."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "wakeup_latency.py"
_SPEC = importlib.util.spec_from_file_location("wakeup_latency", _PATH)
wakeup = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(wakeup)

two_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")


@two_cores
def test_a_measurement_times_both_placements_and_restores_the_affinity():
    # One round: the medians are that round's times; wake_s is their difference.
    before = os.sched_getaffinity(0)
    row = wakeup.measure(rounds=1, trips=200)
    assert os.sched_getaffinity(0) == before
    assert row["same_core_us"] > 0 and row["cross_core_us"] > 0
    assert row["wake_s"] == pytest.approx(
        max(0.0, row["cross_core_us"] - row["same_core_us"]) * 1e-6, abs=1e-8)
    assert (row["rounds"], row["trips"]) == (1, 200)


@two_cores
def test_the_command_prints_one_json_line():
    out = subprocess.run([sys.executable, str(_PATH), "--rounds", "1", "--trips", "100"],
                         capture_output=True, text=True, check=True, timeout=120)
    [line] = out.stdout.splitlines()
    assert json.loads(line)["bench"] == "wakeup_latency"


def test_one_core_is_refused_with_the_cores_received():
    code = ("import importlib.util, os; "
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            f"spec = importlib.util.spec_from_file_location('w', {str(_PATH)!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "m.measure(1, 10)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert "needs two cores" in out.stderr and "may run on [" in out.stderr


def test_an_answering_child_that_dies_fails_the_measurement_instead_of_hanging():
    core = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError, match=r"child \(pinned to core 4096\) exited early"):
        wakeup.one_way_s(core, 4096, 100)  # no such core: the child's pinning fails
    os.sched_setaffinity(0, before)
