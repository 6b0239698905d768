"""Keras's file formats, both ways, against files real Keras 3 wrote and verified.

The fixtures in tests/goldens/saving/ come from tools/make_goldens_saving.py: `.keras`,
`.weights.h5` and legacy `.h5` files Keras 3 wrote with its predictions, and the files
distflow wrote with the predictions Keras 3 computed after loading them.
"""

from __future__ import annotations

import io
import json
import os
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


def _assert_same_archive(path, committed):
    """Same config.json and the same HDF5 datasets (paths and values) in both archives."""
    (config, arrays), (want_config, want_arrays) = _archive(path), _archive(committed)
    assert config == want_config
    assert sorted(arrays) == sorted(want_arrays)
    for name, array in want_arrays.items():
        np.testing.assert_array_equal(arrays[name], array, err_msg=name)


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


@pytest.mark.parametrize("kind, suffix", [
    *[(kind, ".weights.h5") for kind in goldens.MODELS],
    *[(kind, "_legacy.weights.h5") for kind in ("seq", "fun", "sub")]])
def test_keras_written_weights_files_load_into_a_distflow_model(kind, suffix):
    model = goldens.build(keras, kind)
    model.load_weights(GOLDENS / f"{kind}{suffix}")
    _close(model.predict(_x(kind), verbose=0), KERAS[kind]["outputs"])


@pytest.mark.parametrize("kind", ["seq", "fun"])
def test_legacy_h5_full_model_loads_compiled(kind):
    if kind == "seq":  # compiled and trained: its optimizer state is left behind, with a word
        with pytest.warns(UserWarning, match="optimizer state .* not restored"):
            model = keras.models.load_model(GOLDENS / f"{kind}_legacy.h5")
    else:
        model = keras.models.load_model(GOLDENS / f"{kind}_legacy.h5")
    _close(model.predict(_x(kind), verbose=0), KERAS[kind]["outputs"])
    if kind == "seq":
        assert type(model.optimizer).__name__ == "Adam" and model.compiled


@pytest.mark.parametrize("kind", ["seq", "fun"])
def test_tf_keras_2_h5_files_load(kind):
    """tf.keras 2's own HDF5 files: Keras 2 configs (`batch_input_shape`, nodes as lists)."""
    if kind == "seq":
        with pytest.warns(UserWarning, match="optimizer state .* not restored"):
            model = keras.models.load_model(GOLDENS / f"{kind}_tfkeras2.h5")
        assert type(model.optimizer).__name__ == "Adam"
    else:
        model = keras.models.load_model(GOLDENS / f"{kind}_tfkeras2.h5")
    _close(model.predict(_x(kind), verbose=0), KERAS[kind]["tf_keras_2"])
    fresh = goldens.build(keras, kind)
    fresh.load_weights(GOLDENS / f"{kind}_tfkeras2.weights.h5")
    _close(fresh.predict(_x(kind), verbose=0), KERAS[kind]["tf_keras_2"])


# ----------------------------------------------------------------------------- distflow -> Keras


@pytest.mark.parametrize("kind", goldens.MODELS)
def test_distflow_files_load_in_keras_with_the_same_predictions(kind, tmp_path):
    """The committed distflow files are what distflow writes today, and Keras 3 loaded them
    (tools/make_goldens_saving.py check) to the predictions distflow makes."""
    committed = GOLDENS / f"distflow_{kind}.keras"
    model = goldens.distflow_model(kind)  # same seeds and names: the same files
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    _assert_same_archive(tmp_path / "m.keras", committed)
    with h5py.File(tmp_path / "m.weights.h5", "r") as mine, \
            h5py.File(GOLDENS / f"distflow_{kind}.weights.h5", "r") as theirs:
        assert {k: v.tolist() for k, v in _datasets(mine).items()} == \
            {k: v.tolist() for k, v in _datasets(theirs).items()}
    out = model.predict(_x(kind), verbose=0)
    _close(out, DISTFLOW[kind])
    _close(out, VERIFIED[kind]["load_model"])
    _close(out, VERIFIED[kind]["load_weights"])
    _check_adam(model, VERIFIED[kind]["adam"])


KERAS_SLOT = {"m": "momentum", "v": "velocity", "v_hat": "velocity_hat"}


@pytest.mark.parametrize("name", goldens.OPTIMIZERS)
def test_optimizer_state_reaches_keras_slot_by_slot(name, tmp_path):
    """Keras 3 loaded distflow's file and named each optimizer variable: every distflow slot
    is the Keras variable `<layer>_<weight>_<slot>` with the same values."""
    model = goldens.optimizer_model(name)
    model.save(tmp_path / "m.keras")
    _assert_same_archive(tmp_path / "m.keras", GOLDENS / f"distflow_opt_{name}.keras")
    verified = VERIFIED[f"opt_{name}"]
    assert verified["class"] == type(model.optimizer).__name__
    state = model.optimizer.get_state()
    assert verified["iterations"] == int(state.pop("iterations")) == 3
    assert len(verified["variables"]) == 2 + len(state)  # and iteration, learning_rate
    for key, value in state.items():
        var, _, slot = key.rpartition("/")
        suffix = f"{var.replace('/', '_')}_{KERAS_SLOT.get(slot, slot)}"
        paths = [p for p in verified["variables"] if p.endswith(("/" + suffix, "_" + suffix))]
        assert len(paths) == 1, (key, paths)
        _close(value, verified["variables"][paths[0]])


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


# ----------------------------------------------------------------------------- rejected files


def _edited_archive(tmp_path, kind, edit):
    """A copy of Keras's `<kind>.keras` whose config.json went through `edit(config)`."""
    path = tmp_path / f"edited_{kind}.keras"
    with zipfile.ZipFile(GOLDENS / f"{kind}.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            dst.writestr(name, data)
    return path


def _seq_layer(config, class_name):
    return next(x for x in config["config"]["layers"] if x["class_name"] == class_name)


def test_a_field_distflow_lacks_is_an_error_naming_class_and_field(tmp_path):
    path = _edited_archive(tmp_path, "seq", lambda c: _seq_layer(
        c, "BatchNormalization")["config"].update(renorm=True))
    with pytest.raises(ValueError, match=r"BatchNormalization 'batch_normalization'.*"
                                         r"`renorm`=True.*does not support"):
        keras.models.load_model(path)
    lora = _edited_archive(tmp_path, "seq", lambda c: _seq_layer(
        c, "Dense")["config"].update(lora_rank=4))
    with pytest.raises(ValueError, match=r"Dense 'dense'.*`lora_rank`=4"):
        keras.models.load_model(lora)


def test_keras_defaults_of_fields_distflow_lacks_are_accepted(tmp_path):
    """`renorm=False`, `quantization_config=None`: Keras's defaults, the behaviour distflow has."""
    path = _edited_archive(tmp_path, "seq", lambda c: _seq_layer(
        c, "Dense")["config"].update(quantization_config=None, lora_rank=None))
    model = keras.models.load_model(path)
    _close(model.predict(_x("seq"), verbose=0), KERAS["seq"]["outputs"])


def test_a_class_distflow_lacks_is_an_error_naming_it(tmp_path):
    path = _edited_archive(tmp_path, "seq", lambda c: _seq_layer(c, "Dropout").update(
        class_name="QuantumDropout"))
    with pytest.raises(ValueError, match="'QuantumDropout', which distflow does not implement"):
        keras.models.load_model(path)
    custom = _edited_archive(tmp_path, "sub", lambda c: c.update(registered_name="other>Nope"))
    with pytest.raises(ValueError, match=r"'other>Nope'.*register_keras_serializable"):
        keras.models.load_model(custom)


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def _assert_unchanged(model, before):
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def _h5_copy_with_wrong_shape(src, dst, dataset):
    """A copy of the HDF5 file `src` where `dataset` has one more row."""
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        for key in a:
            a.copy(a[key], b, name=key)
        for key, value in a.attrs.items():
            b.attrs[key] = value
        data = b[dataset][()]
        del b[dataset]
        b.create_dataset(dataset, data=np.concatenate([data, data[:1]]))
    return dst


@pytest.mark.parametrize("source, dataset", [
    ("seq.weights.h5", "layers/dense_1/vars/1"),
    ("seq_legacy.weights.h5", "dense_1/sequential/dense_1/bias"),
])
def test_a_rejected_weights_file_changes_no_weight(tmp_path, source, dataset):
    """The last layer's bias differs: the layers before it match, and still none is loaded."""
    model = goldens.build(keras, "seq")
    before = _weights(model)
    bad = _h5_copy_with_wrong_shape(GOLDENS / source, tmp_path / source, dataset)
    with pytest.raises(ValueError, match=r"does not match model.*dense.*bias.*\(2,\).*\(3,\)"):
        model.load_weights(bad)
    _assert_unchanged(model, before)
    with pytest.raises(ValueError, match="does not match"):
        model.load_weights(GOLDENS / "sub.weights.h5")
    _assert_unchanged(model, before)


def test_damaged_files_give_a_clear_error(tmp_path):
    model = goldens.build(keras, "seq")
    before = _weights(model)
    for name in ("seq.keras", "seq.weights.h5", "seq_legacy.h5", "seq_legacy.weights.h5"):
        data = (GOLDENS / name).read_bytes()
        for tag, content in [("cut", data[: len(data) // 2]), ("empty", b""),
                             ("noise", bytes(range(256)) * 8)]:
            bad = tmp_path / f"{tag}_{name}"
            bad.write_bytes(content)
            with pytest.raises(ValueError, match=r"not a valid (\.keras|HDF5) file"):
                if name.endswith(".weights.h5"):
                    model.load_weights(bad)
                else:
                    keras.models.load_model(bad)
    _assert_unchanged(model, before)
    inner = tmp_path / "inner.keras"  # a valid zip whose weights member is damaged
    with zipfile.ZipFile(GOLDENS / "seq.keras") as src, zipfile.ZipFile(inner, "w") as dst:
        for member in src.namelist():
            data = src.read(member)
            dst.writestr(member, data[:100] if member == "model.weights.h5" else data)
    with pytest.raises(ValueError, match=r"model\.weights\.h5.*not a valid HDF5 file"):
        keras.models.load_model(inner)


# ----------------------------------------------------------------------------- files written


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_users_umask(tmp_path, mask):
    model = goldens.distflow_model("seq")
    old = os.umask(mask)
    try:
        for name in ("m.keras", "w.weights.h5", "w.weights.safetensors"):
            (model.save if name.endswith(".keras") else model.save_weights)(tmp_path / name)
    finally:
        os.umask(old)
    for name in ("m.keras", "w.weights.h5", "w.weights.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "w.weights.h5", "w.weights.safetensors"]


def test_model_checkpoint_writes_weights_h5_files(tmp_path):
    model = goldens.distflow_model("seq")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype(np.float32), rng.normal(size=(16, 2))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[
        keras.callbacks.ModelCheckpoint(str(tmp_path / "w{epoch}.weights.h5"),
                                        save_weights_only=True)])
    assert sorted(os.listdir(tmp_path)) == ["w1.weights.h5", "w2.weights.h5"]
    other = goldens.build(keras, "seq")
    other.load_weights(tmp_path / "w2.weights.h5")
    _close(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_registered_class_never_shadows_a_built_in_of_the_same_name(tmp_path):
    @keras.saving.register_keras_serializable(package="shadow")
    class Dense(keras.layers.Layer):
        def call(self, x):
            return x * 3.0

    assert keras.saving.get_registered_name(Dense) == "shadow>Dense"
    x = keras.Input((2,))
    model = keras.Model(x, keras.layers.Dense(2)(Dense()(x)))
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert [type(layer) for layer in restored.layers[1:]] == [Dense, keras.layers.Dense]
    data = np.ones((1, 2), np.float32)
    _close(restored.predict(data, verbose=0), model.predict(data, verbose=0))
    assert type(keras.layers.deserialize(
        {"class_name": "Dense", "config": {"units": 1}})) is keras.layers.Dense
