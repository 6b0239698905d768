"""tf.math, tf.linalg and the top-level array ops against TensorFlow 2.21's own results.

tests/goldens/core/ops.json was written by tools/make_goldens_core.py with real
TensorFlow: every case holds the inputs, TF's forward values and dtypes, the
gradients of sum(cotangent * outputs) w.r.t. the float inputs, or the error TF
raised (then distflow must raise too).
"""

import json
import pathlib

import numpy as np
import pytest

import distflow as df

CORE = pathlib.Path(__file__).parent / "goldens" / "core"
GOLDENS = {**json.loads((CORE / "ops.json").read_text())["cases"],
           **json.loads((CORE / "more.json").read_text())["cases"]}  # tf.image, tf.strings, ...


def decode(x):
    if isinstance(x, dict) and x.get("dtype") == "string":  # strings stay NumPy arrays of bytes
        return np.vectorize(str.encode, otypes=[object])(np.asarray(x["a"], dtype=object))
    if isinstance(x, dict) and "a" in x:
        return df.constant(np.asarray(x["a"], dtype=x["dtype"]))
    if isinstance(x, list):
        return [decode(v) for v in x]
    return x


def expected(e):
    if e["dtype"] == "string":
        return np.vectorize(str.encode, otypes=[object])(np.asarray(e["a"], dtype=object))
    arr = np.asarray(e["a"], dtype=e["dtype"]).reshape(e["shape"])
    if e.get("finite") is not None:
        fin = np.asarray(e["finite"], bool).reshape(e["shape"])
        arr = np.where(fin, arr, np.nan)
    return arr


def resolve(path):
    obj = df
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def flatten(out):
    if isinstance(out, list | tuple):
        return [leaf for item in out for leaf in flatten(item)]
    return [out]


def cotangent(shape):
    n = int(np.prod(shape))
    return np.cos(np.arange(n, dtype=np.float64) + 1.0).reshape(shape).astype(np.float32)


def call(case):
    args = [decode(a) for a in case["args"]]
    kwargs = {k: decode(v) for k, v in case["kwargs"].items()}
    watched = [t for t in flatten(args) + flatten(list(kwargs.values()))
               if isinstance(t, df.Tensor) and t.dtype.kind == "f"]
    with df.GradientTape() as tape:
        tape.watch(watched)
        out = flatten(resolve(case["fn"])(*args, **kwargs))
    return tape, watched, out


def close(actual, want, what):
    actual = np.asarray(actual)
    assert actual.dtype == want.dtype, f"{what}: dtype {actual.dtype}, TF gives {want.dtype}"
    assert actual.shape == want.shape, f"{what}: shape {actual.shape}, TF gives {want.shape}"
    if want.dtype == object:  # strings: TF's bytes
        assert actual.tolist() == want.tolist(), what
    elif want.dtype.kind == "f":
        np.testing.assert_allclose(actual, want, rtol=2e-4, atol=2e-5, equal_nan=True,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(actual, want, err_msg=what)


OK = sorted(n for n, c in GOLDENS.items() if "error" not in c)
ERRORS = sorted(n for n, c in GOLDENS.items() if "error" in c)


@pytest.mark.parametrize("name", OK)
def test_forward_values_and_dtypes_match_tensorflow(name):
    case = GOLDENS[name]
    _, _, out = call(case)
    assert len(out) == len(case["outputs"]), f"{name}: {len(out)} outputs, TF gives " \
                                             f"{len(case['outputs'])}"
    for i, (o, e) in enumerate(zip(out, case["outputs"])):
        close(o.numpy() if isinstance(o, df.Tensor) else o, expected(e), f"{name} output {i}")


@pytest.mark.parametrize("name", sorted(n for n in OK if GOLDENS[n].get("grads")))
def test_gradients_match_tensorflow(name):
    case = GOLDENS[name]
    tape, watched, out = call(case)
    float_out = [o for o in out if o.dtype.kind == "f"]
    grads = tape.gradient(float_out, watched,
                          output_gradients=[cotangent(o.shape) for o in float_out])
    for i, (g, e) in enumerate(zip(grads, case["grads"])):
        if e is None:
            assert g is None or not np.any(g.numpy()), f"{name}: TF has no gradient for {i}"
            continue
        assert g is not None, f"{name}: no gradient for input {i}; TF gives one"
        close(g.numpy(), expected(e), f"{name} gradient {i}")


@pytest.mark.parametrize("name", ERRORS)
def test_errors_where_tensorflow_raises(name):
    with pytest.raises((ValueError, TypeError, IndexError, RuntimeError)):
        call(GOLDENS[name])
