"""Packaging: the distribution name is not the unrelated `distflow` on the public index,
and nothing the project ships tells users to install a bare name that resolves there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "distflow-ps"  # free on the public index; the import name stays `distflow`

# `pip install distflow`, `pip install 'distflow[tensorboard]'`, `pip install -U distflow`:
# a name (not a path such as `.` or `-e .`) that is the unrelated project on the index.
BARE_INSTALL = re.compile(r"pip3? install(?:\s+-\S+)*\s+['\"]?distflow(?![-\w./])")


def _shipped_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    suffixes = {".py", ".md", ".toml", ".yaml", ".yml", ".sbatch", ".txt", ".cfg", ""}
    return [ROOT / name for name in listed
            if Path(name).suffix in suffixes and (ROOT / name).is_file()
            and not name.startswith("tests/goldens/")]


def test_distribution_name_is_not_the_unrelated_index_project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION


def test_the_pattern_catches_bare_installs_and_spares_paths():
    assert BARE_INSTALL.search("pip install distflow[tensorboard]")
    assert BARE_INSTALL.search("Install it with: pip install 'distflow[tensorboard]'")
    assert BARE_INSTALL.search("pip install -U distflow")
    assert not BARE_INSTALL.search("pip install -e '.[test]'")
    assert not BARE_INSTALL.search("pip install distflow-ps")
    assert not BARE_INSTALL.search("pip install tensorboardX")


def test_no_message_or_doc_recommends_installing_the_bare_name():
    offenders = []
    for path in _shipped_text_files():
        if path.name == Path(__file__).name:
            continue
        # joined so a message split over two string literals is still seen
        text = re.sub(r"\"\s*\n\s*\"", "", path.read_text(errors="replace"))
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}"
                      for m in BARE_INSTALL.finditer(text)]
    assert offenders == []


def test_tensorboard_import_error_names_the_package_to_install():
    """Without tensorboardX the error says `pip install tensorboardX`, never the bare name."""
    probe = ("import sys; sys.modules['tensorboardX'] = None\n"
             "from distflow import summary\n"
             "try:\n    summary._import_writer()\n"
             "except ImportError as error:\n    print(error)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert "pip install tensorboardX" in out
    assert not BARE_INSTALL.search(out)
