"""The share of TensorFlow 2.21's names (tests/goldens/core/api_names.json) that distflow
offers in the namespaces this project completes; docs/api_coverage.md has every namespace
and the reasons for what is left out (`python tools/api_coverage.py`)."""

import json
import pathlib

import pytest

import distflow as df
from distflow.data import Dataset

NAMES = json.loads((pathlib.Path(__file__).parent / "goldens" / "core" / "api_names.json")
                   .read_text())["names"]


def present(obj, name):
    try:
        getattr(obj, name)
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.parametrize("space,obj", [("tf", df), ("tf.math", df.math), ("tf.nn", df.nn),
                                       ("tf.random", df.random), ("tf.linalg", df.linalg),
                                       ("tf.data.Dataset", Dataset),
                                       ("tf.io.gfile", df.io.gfile), ("tf.config", df.config)])
def test_namespace_covers_at_least_85_percent_of_tensorflow(space, obj):
    names = NAMES[space]
    missing = [n for n in names if not present(obj, n)]
    share = 1 - len(missing) / len(names)
    assert share >= 0.85, f"{space}: {share:.0%} of TF's names; missing {missing}"


def test_every_top_level_name_left_out_has_its_reason():
    import importlib.util

    path = pathlib.Path(__file__).parent.parent / "tools" / "api_coverage.py"
    spec = importlib.util.spec_from_file_location("api_coverage", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for space, obj in (("tf", df), ("tf.linalg", df.linalg)):
        unexplained = [n for n in NAMES[space]
                       if not present(obj, n) and tool.reason(n) == "not yet"]
        assert not unexplained, f"{space} names missing without a reason: {unexplained}"
    assert tool.reason("feature_column") != tool.reason("tpu")  # the reasons say which is which
