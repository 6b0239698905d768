"""Whose checkpoints are these? A run resumes only its own unless told otherwise.

Checkpoints record the run id and whether the user named the run (`--run-id`).
Started again with the same command and `--checkpoint-dir`, a run resumes as
Keras's `BackupAndRestore` does. Pointed at checkpoints of *another named run*
(or an unnamed run at a named run's checkpoints) the servers refuse to start,
the launcher exits non-zero naming both runs and the flag, and the checkpoints
stay as they were; `--resume-other-run` resumes them anyway.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from test_launch_e2e import run_launcher, worker_json
from test_resume import TRAIN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _launch(workdir: Path, checkpoints: Path, epochs: int, *flags: str):
    return run_launcher(workdir, "--workers", "2", "--ps", "1", "--strategy", "mirrored",
                        "--checkpoint-dir", str(checkpoints), "--checkpoint-every", "1000",
                        *flags, script=TRAIN, script_args=(str(epochs),), timeout=180)


def _epochs(result) -> list[list[int]]:
    """Both workers' epochs; they trained through the server: identical weights."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = worker_json(result.stdout, "result")
    assert sorted(found) == [0, 1], result.stdout[-3000:]
    assert found[0]["weights"] == found[1]["weights"], "the workers trained apart"
    return [found[0]["epochs"], found[1]["epochs"]]


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and "ckpt" in p.name}


def test_a_named_run_refuses_another_named_runs_checkpoints_until_told(tmp_path):
    checkpoints = tmp_path / "ckpt"
    assert _epochs(_launch(tmp_path, checkpoints, 1, "--run-id", "exp1")) == [[0], [0]]
    before = _digest(checkpoints)
    assert before, "the first run wrote no checkpoint"

    refused = _launch(tmp_path, checkpoints, 2, "--run-id", "exp2")
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "exp1" in said and "exp2" in said and "--resume-other-run" in said, said[-3000:]
    assert _digest(checkpoints) == before, "a refused run changed the checkpoints"

    resumed = _launch(tmp_path, checkpoints, 2, "--run-id", "exp2", "--resume-other-run")
    assert _epochs(resumed) == [[1], [1]]


def test_an_unnamed_run_resumes_its_own_checkpoints_but_not_a_named_runs(tmp_path):
    mine = tmp_path / "mine"
    assert _epochs(_launch(tmp_path, mine, 1)) == [[0], [0]]
    assert _epochs(_launch(tmp_path, mine, 2)) == [[1], [1]]

    named = tmp_path / "named"
    assert _epochs(_launch(tmp_path, named, 1, "--run-id", "exp1")) == [[0], [0]]
    refused = _launch(tmp_path, named, 2)
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "exp1" in said and "--run-id exp1" in said, said[-3000:]
    assert _epochs(_launch(tmp_path, named, 2, "--run-id", "exp1")) == [[1], [1]]
