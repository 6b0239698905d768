"""`tf.float32` and friends are DType objects that say what TensorFlow says of them.

The facts come from real TensorFlow 2.21 (tests/goldens/core/dtypes.json, written
by tools/make_goldens_dtypes.py); a DType also stays interchangeable with the
NumPy dtype it names, which library code and user NumPy calls rely on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import distflow as tf

GOLDEN = json.loads((Path(__file__).parent / "goldens" / "core" / "dtypes.json").read_text())
PROPERTIES = ("name", "size", "is_floating", "is_integer", "is_bool", "is_complex",
              "is_unsigned", "is_numeric", "is_quantized")


@pytest.mark.parametrize("name", sorted(GOLDEN["dtypes"]))
def test_each_dtype_says_what_tensorflow_says(name):
    want = GOLDEN["dtypes"][name]
    dt = tf.as_dtype(name)
    assert dt is getattr(tf, "bool" if name == "bool" else name)
    assert {p: getattr(dt, p) for p in PROPERTIES} == {p: want[p] for p in PROPERTIES}
    assert (repr(dt), str(dt), dt.as_datatype_enum) == (want["repr"], want["str"], want["enum"])
    assert (dt.real_dtype.name, dt.base_dtype.name) == (want["real_dtype"], want["base_dtype"])
    if want["min"] is None:
        with pytest.raises(TypeError):
            _ = dt.min
    else:
        assert (dt.min, dt.max) == (want["min"], want["max"])


@pytest.mark.parametrize("label", sorted(GOLDEN["as_dtype"]))
def test_as_dtype_converts_what_tensorflow_converts(label):
    arg = eval(label, {"np": np})  # the labels are the Python expressions TF was given
    want = GOLDEN["as_dtype"][label]
    if "error" in want:
        with pytest.raises(TypeError, match="Cannot convert"):
            tf.as_dtype(arg)
    else:
        assert tf.as_dtype(arg).name == want["name"]


def test_aliases_name_the_same_objects():
    for alias, name in GOLDEN["aliases"].items():
        assert getattr(tf, alias) is tf.as_dtype(name)
    assert tf.dtypes.float32 is tf.float32 and tf.dtypes.DType is tf.DType


def test_a_dtype_is_interchangeable_with_its_numpy_dtype():
    assert tf.float32 == np.float32 and np.float32 == tf.float32
    assert np.dtype("float32") == tf.float32 and tf.float32 == "float32"
    assert tf.float32 != tf.float64 and tf.float32 != np.float64 and tf.float64 != None  # noqa: E711
    assert hash(tf.float32) == hash(np.dtype("float32"))
    assert np.zeros(2, tf.int64).dtype == np.int64
    assert np.issubdtype(tf.float16, np.floating)
    assert tf.float32.as_numpy_dtype is np.float32
    assert (tf.float32.kind, tf.float32.itemsize) == ("f", 4)  # NumPy's attributes too


def test_tensors_report_dtype_objects_and_accept_them():
    t = tf.constant([1.0, 2.0])
    assert repr(t.dtype) == GOLDEN["shape"]["eager_dtype_repr"]
    assert (t.dtype == np.float32) is GOLDEN["shape"]["eager_dtype_eq_np"]
    assert t.dtype is tf.float32 and t.dtype.name == "float32"
    assert tf.cast(t, tf.int32).dtype is tf.int32
    assert tf.constant(1, dtype=tf.float64).dtype is tf.float64
    assert tf.Variable(np.zeros(3, np.int64)).dtype is tf.int64
    assert tf.zeros((2,), dtype=tf.bool).dtype is tf.bool


def test_tensorshape_methods_match_tensorflow():
    want, s = GOLDEN["shape"], tf.TensorShape([2, None, 3])
    assert (s.as_list(), s.rank, s.ndims, tf.TensorShape(None).rank) == (
        want["as_list"], want["rank"], want["ndims"], want["unknown_rank"])
    assert (str(s), repr(s), str(tf.TensorShape(None))) == (
        want["str"], want["repr"], want["str_unknown"])
    assert s.is_compatible_with([2, 5, 3]) is want["compatible_2_5_3"]
    assert s.is_compatible_with([3, 5, 3]) is want["compatible_3_5_3"]
    assert tf.TensorShape([2, None, None]).merge_with([None, 4, 3]).as_list() == want["merge"]
    assert s.concatenate([7]).as_list() == want["concatenate"]
    assert tf.TensorShape([2, 3]).num_elements() == want["num_elements_known"]
    assert s.num_elements() == want["num_elements_unknown"]
    assert s.is_fully_defined() is want["is_fully_defined"]


def test_an_eager_tensors_shape_is_a_tensorshape_that_still_acts_as_a_tuple():
    t = tf.constant(np.zeros((2, 3, 4), np.float32))
    assert type(t.shape).__name__ == GOLDEN["shape"]["eager_shape_is_tensorshape"]
    assert t.shape == (2, 3, 4) and t.shape.as_list() == [2, 3, 4] and t.shape.rank == 3
    assert t.shape[0] == 2 and t.shape[1:] == (3, 4) and tuple(t.shape) == (2, 3, 4)
    assert t.shape[:-1] + (-1,) == (2, 3, -1)  # kept as given: reshape arguments
    assert (-1,) + t.shape[1:] == (-1, 3, 4)
    assert np.zeros(t.shape).shape == (2, 3, 4) and str(t.shape) == "(2, 3, 4)"
    assert tf.reshape(t, t.shape[:1] + (-1,)).shape == (2, 12)
    assert t[:, tf.newaxis].shape == (2, 1, 3, 4)


def test_range_infers_tensorflows_dtypes():
    # TF 2.21: tf.range(6) int32, tf.range(16.0) float32, tf.range(1, 5, 0.5) float32.
    assert tf.range(6).dtype is tf.int32 and tf.range(16.0).dtype is tf.float32
    assert tf.range(1, 5, 0.5).dtype is tf.float32
    assert tf.range(3, dtype=tf.float64).dtype is tf.float64
    np.testing.assert_array_equal(tf.range(2, 8, 3).numpy(), [2, 5])
