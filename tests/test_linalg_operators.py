"""tf.linalg's LinearOperator family and banded_triangular_solve against the goldens of
tests/goldens/core/linalg_operators.json (written by tools/make_goldens_linalg_operators.py
with real TensorFlow 2.21), plus gradients through operators against finite differences."""

import json

import numpy as np
import pytest
from golden_nest import GOLDENS, decode

import distflow as tf
from distflow import test_util

SRC = json.loads((GOLDENS / "linalg_operators.json").read_text())["src"]
VALUES = sorted(n for n, c in SRC.items() if "value" in c)
ERRORS = sorted(n for n, c in SRC.items() if "error" in c)


def assert_close(actual, want, what):
    """A nest of tensors equals the golden nest: dtypes exactly, values to float32 accuracy."""
    if isinstance(want, list):
        assert isinstance(actual, list | tuple) and len(actual) == len(want), what
        for a, w in zip(actual, want):
            assert_close(a, w, what)
        return
    actual = np.asarray(actual)
    assert actual.dtype == want.dtype, f"{what}: dtype {actual.dtype}, TF gives {want.dtype}"
    np.testing.assert_allclose(actual, want, rtol=2e-4, atol=2e-5, err_msg=what)


@pytest.mark.parametrize("name", VALUES)
def test_operator_matches_tensorflow(name):
    case = SRC[name]
    actual = eval(case["src"], {"tf": tf})  # noqa: S307  (our own fixed case strings)
    assert_close(actual, decode(case["value"]), name)


@pytest.mark.parametrize("name", ERRORS)
def test_operator_refuses_what_tensorflow_refuses(name):
    case = SRC[name]
    with pytest.raises(Exception) as info:  # noqa: PT011  (the class is the golden)
        eval(case["src"], {"tf": tf})  # noqa: S307
    assert type(info.value).__name__ == case["error"], (name, info.value)
