"""The chaos suite (issue 13): real server processes, real sockets, hostile input,
full disks and damaged checkpoints. Every test here is marked slow (still run in CI)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/chaos/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
