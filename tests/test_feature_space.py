"""`keras.utils.FeatureSpace` against Keras 3 (tests/goldens/feature_space.json, written by
tools/make_goldens_utils.py): every kind of feature, crosses, both output modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import distflow as df
from distflow import keras

GOLDEN = json.loads((Path(__file__).parent / "goldens" / "feature_space.json").read_text())
DATA = {k: np.array(v, dtype={"ic": np.int32, "ih": np.int32}.get(k)) for k, v in
        GOLDEN["data"].items()}


def _space(output_mode):
    fs = keras.utils.FeatureSpace
    crosses = [("sc", "ic"), fs.cross(("sh", "ih"), 7, "int")] if output_mode == "dict" \
        else [("sc", "ic")]
    return fs(features={
        "f": fs.float(), "fn": fs.float_normalized(), "fr": fs.float_rescaled(0.5, 1.0),
        "fd": fs.float_discretized(num_bins=4), "ic": fs.integer_categorical(),
        "sc": fs.string_categorical(num_oov_indices=2), "sh": fs.string_hashed(num_bins=6),
        "ih": "integer_hashed"}, crosses=crosses, crossing_dim=8, hashing_dim=5,
        output_mode=output_mode)


def _check(got, want):
    if isinstance(want, dict):
        assert sorted(got) == sorted(want)
        for key in want:
            np.testing.assert_allclose(np.asarray(got[key]), np.array(want[key]), rtol=1e-5,
                                       atol=1e-6, err_msg=key)
    else:
        np.testing.assert_allclose(np.asarray(got), np.array(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["output_mode"])
def test_feature_space_matches_keras(case):
    space = _space(case["output_mode"])
    space.adapt(DATA)
    _check(space(DATA), case["batch"])
    _check(space({k: v[3] for k, v in DATA.items()}), case["one"])


def test_encoded_features_build_an_inference_model():
    space = _space("concat")
    with pytest.raises(ValueError, match="adapt"):
        space(DATA)
    space.adapt(df.data.Dataset.from_tensor_slices(DATA))
    encoded = space.get_encoded_features()
    model = keras.Model(space.get_inputs(), keras.layers.Dense(1)(encoded))
    batch = {k: v[:5, None] for k, v in DATA.items()}
    direct = np.asarray(space(batch))
    dense = model.layers[-1]
    kernel, bias = (w.numpy() for w in dense.weights)
    np.testing.assert_allclose(np.asarray(model(batch)), direct @ kernel + bias,
                               rtol=1e-5, atol=1e-5)
    # Keras's inference model takes the raw strings in `predict` and `evaluate` too.
    np.testing.assert_allclose(model.predict(batch, batch_size=2, verbose=0),
                               direct @ kernel + bias, rtol=1e-5, atol=1e-5)
    model.compile(loss="mse")
    loss = model.evaluate(batch, np.zeros((5, 1), np.float32), verbose=0)
    assert loss == pytest.approx(float(np.mean((direct @ kernel + bias) ** 2)), rel=1e-5)
    with pytest.raises(TypeError, match="numeric or strings"):
        model.predict({**batch, "f": np.array([[None]] * 5, dtype=object)}, verbose=0)


def test_feature_space_refuses_what_keras_refuses():
    fs = keras.utils.FeatureSpace
    with pytest.raises(ValueError, match="empty"):
        fs({})
    with pytest.raises(ValueError, match="Invalid feature type"):
        fs({"a": "floaty"})
    with pytest.raises(ValueError, match="unknown features"):
        fs({"a": "float"}, crosses=[("a", "b")])
    with pytest.raises(ValueError, match="output_mode"):
        fs({"a": "float"}, output_mode="list")
    ints = fs({"a": fs.integer_categorical(output_mode="int")})
    with pytest.raises(ValueError, match="not been encoded"):
        ints.adapt({"a": np.array([1, 2, 2])})
    floats = fs({"a": "float"})  # nothing to adapt: usable at once
    np.testing.assert_allclose(np.asarray(floats({"a": np.array([1.5, 2.0])})), [[1.5], [2.0]])
    config = _space("dict").get_config()
    assert fs.from_config(config).get_config()["crosses"] == config["crosses"]
