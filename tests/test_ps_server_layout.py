"""The parameter-server package keeps the shape docs/architecture.md describes.

Units stay small (no class over 300 lines, no module over 800, no function over
60), and the mode is read once: after `ServerConfig` parses it and the service
picks the policy, no code tests a mode string (sync semantics live in
`sync_policy.py`, async ones in `async_policy.py`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import distflow.distribute.server.shard as shard_module

PACKAGE = Path(shard_module.__file__).parent
MODE_TEST = re.compile(r"""mode\s*[!=]=|[!=]=\s*["'](a?sync|mirrored)["']""")


def _modules() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(PACKAGE.glob("*.py"))}


def test_no_large_module_class_or_function():
    too_large = []
    for name, text in _modules().items():
        if text.count("\n") > 800:
            too_large.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            length = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.ClassDef) and length > 300 or \
                    isinstance(node, ast.FunctionDef) and length > 60:
                too_large.append(f"{name}: {node.name} has {length} lines")
    assert len(_modules()) >= 10 and too_large == []


def test_the_mode_is_tested_only_where_it_is_parsed_and_the_policy_chosen():
    tested = {name for name, text in _modules().items() if MODE_TEST.search(text)}
    assert tested == set(), f"mode compared outside the choice point in {sorted(tested)}"
    service = _modules()["service.py"]
    assert 'POLICIES = {"sync": SyncPolicy, "async": AsyncPolicy}' in service
    assert "POLICIES[config.mode]" in service
