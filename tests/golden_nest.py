"""Comparing nests of arrays with the TensorFlow goldens under tests/goldens/core/.

A golden array is `{"a": nested list, "dtype": name}`; a nest is a list of those
(tuples and lists both become lists in JSON).
"""

import json
import pathlib

import numpy as np

GOLDENS = pathlib.Path(__file__).parent / "goldens" / "core"


def load(name: str) -> dict:
    """The `cases` of tests/goldens/core/<name>.json."""
    return json.loads((GOLDENS / f"{name}.json").read_text())["cases"]


def decode(x):
    """NumPy arrays in the golden's nest structure."""
    if isinstance(x, dict) and x.get("dtype") == "string":  # TF's bytes
        return np.vectorize(str.encode, otypes=[object])(np.asarray(x["a"], dtype=object))
    if isinstance(x, dict) and "a" in x:
        return np.asarray(x["a"], dtype=x["dtype"])
    if isinstance(x, dict):
        return {k: decode(v) for k, v in x.items()}
    return [decode(v) for v in x]


def assert_same(actual, want, what, rtol=0.0):
    """`actual` (a nest of tensors/arrays) equals the decoded golden `want`, dtypes included."""
    if isinstance(want, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(want), what
        for k in want:
            assert_same(actual[k], want[k], f"{what}[{k!r}]", rtol)
        return
    if isinstance(want, list):
        assert isinstance(actual, list | tuple) and len(actual) == len(want), what
        for a, w in zip(actual, want):
            assert_same(a, w, what, rtol)
        return
    actual = np.asarray(actual)
    assert actual.dtype == want.dtype, f"{what}: dtype {actual.dtype}, TF gives {want.dtype}"
    if want.dtype == object:
        assert actual.tolist() == want.tolist(), what
        return
    np.testing.assert_allclose(actual, want, rtol=rtol, err_msg=what)
