"""Writes tests/goldens/core/dtypes.json from real TensorFlow: DType and TensorShape facts.

Run by hand with an interpreter that has TensorFlow 2.21 (never a dependency):

    /tmp/tfenv/bin/python tools/make_goldens_dtypes.py

For each DType distflow exposes, the file records what TensorFlow says of it
(name, repr, str, enum, size, kind flags, limits, real dtype); for a list of
`tf.as_dtype` arguments, the dtype TF returns or the error it raises; and for
`TensorShape`, the results of its everyday methods.
"""

from __future__ import annotations

import json
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "goldens", "core", "dtypes.json")
NAMES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64",
         "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128", "string"]
ALIASES = ["half", "double", "complex64", "complex128"]
AS_DTYPE = {"'float32'": "float32", "'float'": "float", "'double'": "double", "'half'": "half",
            "'bool'": "bool", "'int32'": "int32", "'string'": "string",
            "np.float32": np.float32, "np.int64": np.int64, "np.bool_": np.bool_,
            "np.dtype('float64')": np.dtype("float64"), "np.dtype('uint8')": np.dtype("uint8"),
            "float": float, "int": int, "bool": bool, "str": str,
            "'nonsense'": "nonsense", "3": 3}


def _limit(value):
    return float(value) if isinstance(value, (float, np.floating)) else int(value)


def describe(dt: tf.DType) -> dict:
    limited = dt.is_floating or dt.is_integer
    return {"name": dt.name, "repr": repr(dt), "str": str(dt), "enum": dt.as_datatype_enum,
            "size": dt.size, "is_floating": dt.is_floating, "is_integer": dt.is_integer,
            "is_bool": dt.is_bool, "is_complex": dt.is_complex, "is_unsigned": dt.is_unsigned,
            "is_numeric": dt.is_numeric, "is_quantized": dt.is_quantized,
            "real_dtype": dt.real_dtype.name, "base_dtype": dt.base_dtype.name,
            "min": _limit(dt.min) if limited else None,
            "max": _limit(dt.max) if limited else None}


def as_dtype_cases() -> dict:
    out = {}
    for label, arg in AS_DTYPE.items():
        try:
            out[label] = {"name": tf.as_dtype(arg).name}
        except Exception as e:  # noqa: BLE001 - recording what TF raises
            out[label] = {"error": type(e).__name__}
    return out


def shape_cases() -> dict:
    s, u = tf.TensorShape([2, None, 3]), tf.TensorShape(None)
    return {
        "as_list": s.as_list(), "rank": s.rank, "ndims": s.ndims, "unknown_rank": u.rank,
        "str": str(s), "repr": repr(s), "str_unknown": str(u),
        "compatible_2_5_3": s.is_compatible_with([2, 5, 3]),
        "compatible_3_5_3": s.is_compatible_with([3, 5, 3]),
        "merge": tf.TensorShape([2, None, None]).merge_with([None, 4, 3]).as_list(),
        "concatenate": s.concatenate([7]).as_list(),
        "num_elements_known": tf.TensorShape([2, 3]).num_elements(),
        "num_elements_unknown": s.num_elements(),
        "is_fully_defined": s.is_fully_defined(),
        "eager_shape_is_tensorshape": type(tf.constant([[1.0]]).shape).__name__,
        "eager_shape_eq_tuple": tf.constant([[1.0, 2.0]]).shape == (1, 2),
        "eager_dtype_repr": repr(tf.constant([1.0]).dtype),
        "eager_dtype_eq_np": bool(tf.constant([1.0]).dtype == np.float32),
    }


def main() -> None:
    golden = {"dtypes": {n: describe(tf.as_dtype(n)) for n in NAMES},
              "aliases": {a: tf.as_dtype(getattr(tf, a)).name for a in ALIASES},
              "as_dtype": as_dtype_cases(), "shape": shape_cases()}
    with open(OUT, "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
