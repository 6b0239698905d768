"""The examples and the README's main-job command run end to end as real processes.

No test here needs the real Fashion-MNIST files: the seed MNIST port reads
small IDX files this test writes, and the Fashion-MNIST examples run with
`--synthetic` (the README's command with that flag added).
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISTFLOW_", "SLURM_", "OMPI_")) and k != "TF_CONFIG"}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               DISTFLOW_OFFLINE="1")
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path = REPO, timeout: float = 240, **env: str) -> str:
    result = subprocess.run(args, cwd=cwd, env=_env(**env), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, train: int = 600, test: int = 200) -> None:
    """Learnable digits: class c lights up a class-specific block of pixels."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 * c:2 * c + 6, 4:24] += 180
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)


def test_linear_regression_tape_recovers_w_and_b():
    out = _run([sys.executable, str(EXAMPLES / "linear_regression_tape.py")])
    w = float(re.search(r"w:\s*(-?[\d.]+)", out).group(1))
    b = float(re.search(r"b:\s*(-?[\d.]+)", out).group(1))
    assert abs(w - 2.0) < 0.05 and abs(b) < 0.1, out


@pytest.mark.parametrize("script,pattern,minimum", [
    ("seed_000_sequential.py", r"final accuracy ([\d.]+)", 0.8),
    ("seed_001_sequential_imports.py", r"final accuracy ([\d.]+)", 0.6),
    ("seed_002_session_and_evaluate.py", r"accuracy: ([\d.]+)", 0.5),
])
def test_seed_ports_train(script, pattern, minimum):
    out = _run([sys.executable, str(EXAMPLES / "seeds" / script)])
    assert float(re.findall(pattern, out)[-1]) >= minimum, out[-2000:]
    if "002" in script:
        assert "[[19. 22.]\n [43. 50.]]" in out


def test_seed_mnist_port_reads_idx_files_from_distflow_data(tmp_path):
    _fake_mnist(tmp_path / "mnist")
    out = _run([sys.executable, str(EXAMPLES / "seeds" / "seed_004_mnist.py")],
               DISTFLOW_DATA=str(tmp_path))
    assert float(re.search(r"Test accuracy: ([\d.]+)%", out).group(1)) > 90.0, out[-2000:]


def test_fashion_mnist_example_without_data_says_where_it_looked(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "fashion_mnist_mlp.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=_env(HOME=str(tmp_path), DISTFLOW_DATA=str(tmp_path / "none")))
    assert result.returncode != 0
    assert "fashion-mnist" in result.stderr and "--synthetic" in result.stderr, result.stderr


def _readme_main_command() -> list[str]:
    """The launcher command of the README's set-up block (a fenced line, not the prose)."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"^```(?:bash|sh)\n(.*?)^```", text, flags=re.M | re.S)
    line = next(ln for block in blocks for ln in block.splitlines()
                if "python -m distflow.launch" in ln)
    command = line.split("python -m distflow.launch", 1)[1]
    return [sys.executable, "-m", "distflow.launch", *shlex.split(command)]


@pytest.mark.parametrize("strategy", ["mirrored", "async"])
def test_readme_main_command_trains_on_synthetic_data(strategy):
    command = _readme_main_command()
    assert "--strategy" in command and "examples/fashion_mnist_mlp.py" in command
    command[command.index("--strategy") + 1] = strategy
    out = _run([*command, "--synthetic", "--epochs", "2"], timeout=280)
    accuracy = float(re.search(r"\[worker 0\] test loss [\d.]+ - test accuracy ([\d.]+)",
                               out).group(1))
    assert accuracy > 0.8, out[-3000:]
    assert "[worker 1] test" not in out  # only the chief evaluates and prints
    assert "completed" in out


def test_cnn_example_trains_on_synthetic_data():
    out = _run([sys.executable, str(EXAMPLES / "fashion_mnist_cnn.py"), "--synthetic",
                "--epochs", "1", "--limit", "2000"])
    assert float(re.search(r"test accuracy ([\d.]+)", out).group(1)) > 0.5, out[-2000:]


def test_transformer_example_learns_the_docs_beyond_character_frequencies():
    """The GPT-style example trains by `fit` on the checkout's own docs: its held-out
    perplexity ends well below the unigram baseline's (what character counts alone give)."""
    out = _run([sys.executable, str(EXAMPLES / "transformer_char_lm.py"), "--epochs", "2",
                "--max-chars", "40000", "--blocks", "1"])
    found = re.search(r"held-out perplexity ([\d.]+) \(unigram ([\d.]+)\)", out)
    assert found, out[-2000:]
    perplexity, unigram = float(found.group(1)), float(found.group(2))
    assert perplexity < 0.8 * unigram, out[-2000:]
