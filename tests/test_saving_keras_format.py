"""Keras's file formats, both ways, against files real Keras 3 wrote and verified.

The fixtures in tests/goldens/saving/ come from tools/make_goldens_saving.py: `.keras`,
`.weights.h5` and legacy `.h5` files Keras 3 wrote with its predictions, and the files
distflow wrote with the predictions Keras 3 computed after loading them.
"""

from __future__ import annotations

import io
import json
import pathlib
import sys
import zipfile

import h5py
import numpy as np
import pytest

import distflow.keras as keras

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
import make_goldens_saving as goldens  # noqa: E402 - the fixture's models, built with distflow

GOLDENS = goldens.OUT
KERAS = json.loads((GOLDENS / "keras_predictions.json").read_text())
VERIFIED = json.loads((GOLDENS / "keras_verified.json").read_text())
DISTFLOW = json.loads((GOLDENS / "distflow_predictions.json").read_text())
goldens.subclass(keras)  # registers goldens>Sub, as the Keras side did


def _x(kind):
    x = goldens.inputs()[kind]
    return x if len(x) > 1 else x[0]


def _close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5, atol=1e-6)


def _datasets(h5) -> dict[str, np.ndarray]:
    out = {}
    h5.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if hasattr(obj, "shape")
                  else None)
    return out


def _archive(path):
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
            return config, _datasets(h5)


def _check_adam(model, expected):
    """distflow's Adam slots equal Keras's, variable by variable (matched by value)."""
    state = model.optimizer.get_state()
    assert int(state["iterations"]) == expected["iterations"]
    by_value = {v.name: v.numpy() for v in model.trainable_weights}
    for entry in expected["variables"]:
        value = np.asarray(entry["value"], np.float32)
        names = [n for n, w in by_value.items() if w.shape == value.shape
                 and np.allclose(w, value, rtol=1e-6, atol=1e-7)]
        assert len(names) == 1, names
        _close(state[f"{names[0]}/m"], entry["m"])
        _close(state[f"{names[0]}/v"], entry["v"])


# ----------------------------------------------------------------------------- Keras -> distflow


@pytest.mark.parametrize("kind", goldens.MODELS)
def test_keras_written_keras_file_loads_with_keras_predictions(kind):
    model = keras.models.load_model(GOLDENS / f"{kind}.keras")
    _close(model.predict(_x(kind), verbose=0), KERAS[kind]["outputs"])


def test_keras_written_optimizer_state_is_restored():
    model = keras.models.load_model(GOLDENS / "seq.keras")
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01)
    _check_adam(model, KERAS["seq"]["adam"])


@pytest.mark.parametrize("kind", goldens.MODELS)
@pytest.mark.parametrize("suffix", [".weights.h5", "_legacy.weights.h5"])
def test_keras_written_weights_files_load_into_a_distflow_model(kind, suffix):
    model = goldens.build(keras, kind)
    model.load_weights(GOLDENS / f"{kind}{suffix}")
    _close(model.predict(_x(kind), verbose=0), KERAS[kind]["outputs"])


@pytest.mark.parametrize("kind", ["seq", "fun"])
def test_legacy_h5_full_model_loads_compiled(kind):
    model = keras.models.load_model(GOLDENS / f"{kind}_legacy.h5")
    _close(model.predict(_x(kind), verbose=0), KERAS[kind]["outputs"])
    if kind == "seq":
        assert type(model.optimizer).__name__ == "Adam" and model.compiled


# ----------------------------------------------------------------------------- distflow -> Keras


@pytest.mark.parametrize("kind", goldens.MODELS)
def test_distflow_files_load_in_keras_with_the_same_predictions(kind, tmp_path):
    """The committed distflow files are what distflow writes today, and Keras 3 loaded them
    (tools/make_goldens_saving.py check) to the predictions distflow makes."""
    committed = GOLDENS / f"distflow_{kind}.keras"
    model = goldens.distflow_model(kind)  # same seeds and names: the same files
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    (config, arrays), (want_config, want_arrays) = _archive(tmp_path / "m.keras"), \
        _archive(committed)
    assert config == want_config
    assert sorted(arrays) == sorted(want_arrays)
    for name, array in want_arrays.items():
        np.testing.assert_array_equal(arrays[name], array, err_msg=name)
    with h5py.File(tmp_path / "m.weights.h5", "r") as mine, \
            h5py.File(GOLDENS / f"distflow_{kind}.weights.h5", "r") as theirs:
        assert {k: v.tolist() for k, v in _datasets(mine).items()} == \
            {k: v.tolist() for k, v in _datasets(theirs).items()}
    out = model.predict(_x(kind), verbose=0)
    _close(out, DISTFLOW[kind])
    _close(out, VERIFIED[kind]["load_model"])
    _close(out, VERIFIED[kind]["load_weights"])
    _check_adam(model, VERIFIED[kind]["adam"])


@pytest.mark.parametrize("kind", goldens.MODELS)
def test_written_layout_equals_what_keras_writes_for_the_same_weights(kind, tmp_path):
    """Load Keras's file, save it again: every HDF5 path, shape and value is Keras's."""
    model = keras.models.load_model(GOLDENS / f"{kind}.keras")
    model.save(tmp_path / "again.keras")
    config, arrays = _archive(tmp_path / "again.keras")
    keras_config, keras_arrays = _archive(GOLDENS / f"{kind}.keras")
    assert sorted(arrays) == sorted(keras_arrays)
    for name, array in keras_arrays.items():
        np.testing.assert_allclose(arrays[name], array, rtol=0, atol=0, err_msg=name)
    assert (config["module"], config["class_name"], config["registered_name"]) == \
        (keras_config["module"], keras_config["class_name"], keras_config["registered_name"])
    layers = config["config"].get("layers", [])
    keras_layers = keras_config["config"].get("layers", [])
    assert [(x["class_name"], x["module"]) for x in layers] == \
        [(x["class_name"], x["module"]) for x in keras_layers]
