"""Saving: the safetensors reader/writer, `.keras` archives, weights files."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import h5py
import numpy as np
import pytest

from distflow import keras, serialization
from distflow.keras import layers, saving
from distflow.keras.functional import Input
from distflow.keras.models import Model, Sequential, load_model, model_from_json

# ----------------------------------------------------------------------------- safetensors


def _hand_written_file(tensors: dict[str, np.ndarray], codes: dict[str, str]) -> bytes:
    """A safetensors file built from the published layout, independently of our writer."""
    header, offset, data = {}, 0, b""
    for name, arr in tensors.items():
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")
        header[name] = {"dtype": codes[name], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


ALL_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8,
              "I16": np.int16, "I32": np.int32, "I64": np.int64, "U8": np.uint8,
              "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}


def _sample_tensors():
    rng = np.random.default_rng(0)
    out = {}
    for code, dtype in ALL_DTYPES.items():
        values = rng.integers(0, 100, size=(2, 3)) if dtype is not np.bool_ else \
            rng.integers(0, 2, size=(2, 3))
        out[code.lower()] = values.astype(dtype)
    out["scalar"] = np.array(3.5, np.float32)
    out["empty"] = np.zeros((0, 4), np.float32)
    out["strided"] = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]
    return out


def test_safetensors_round_trip_of_every_dtype(tmp_path):
    tensors = _sample_tensors()
    path = tmp_path / "t.safetensors"
    serialization.save_file(tensors, path, metadata={"who": "test"})
    loaded, metadata = serialization.load_file(path)
    assert metadata == {"who": "test"}
    assert list(loaded) == list(tensors)
    for name, arr in tensors.items():
        assert loaded[name].dtype == arr.dtype and loaded[name].shape == arr.shape
        np.testing.assert_array_equal(loaded[name], arr)
    loaded["f32"][0, 0] = 1.0  # arrays from a file are writable
    again, _ = serialization.loads(serialization.dumps(tensors))
    np.testing.assert_array_equal(again["strided"], tensors["strided"])
    assert os.listdir(tmp_path) == ["t.safetensors"]  # no temp file left behind


def test_safetensors_layout_matches_the_published_format():
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int64)}
    data = serialization.dumps(tensors)
    (length,) = struct.unpack("<Q", data[:8])
    assert (8 + length) % 8 == 0  # data section aligned
    header = json.loads(data[8:8 + length])
    assert header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert header["b"] == {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}
    assert data[8 + length:8 + length + 24] == tensors["a"].astype("<f4").tobytes()
    foreign = _hand_written_file({"x": np.arange(5, dtype=np.int16),
                                  "y": np.eye(2, dtype=np.float64)}, {"x": "I16", "y": "F64"})
    loaded, metadata = serialization.loads(foreign)
    np.testing.assert_array_equal(loaded["x"], np.arange(5))
    np.testing.assert_array_equal(loaded["y"], np.eye(2))
    assert metadata == {}


@pytest.mark.parametrize("damage, match", [
    (lambda d: d[:5], "fewer than the 8-byte"),
    (lambda d: d[:40], "truncated"),
    (lambda d: d[:-4], "truncated"),
    (lambda d: d + b"junk", "trailing bytes"),
    (lambda d: struct.pack("<Q", 10**12) + d[8:], "header claims"),
    (lambda d: d[:9] + b"\xff" + d[10:], "corrupt safetensors header"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 0xFF]), "checksum mismatch"),
])
def test_damaged_safetensors_are_rejected_clearly(tmp_path, damage, match):
    data = serialization.dumps({"w": np.arange(16, dtype=np.float32)})
    path = tmp_path / "bad.safetensors"
    path.write_bytes(damage(data))
    with pytest.raises(serialization.SafetensorsError, match=match):
        serialization.load_file(path)


def test_invalid_header_entries_are_rejected():
    bad_dtype = _hand_written_file({"x": np.zeros(2, np.float32)}, {"x": "F32"}).replace(
        b'"F32"', b'"BF9"')
    with pytest.raises(serialization.SafetensorsError, match="unsupported dtype"):
        serialization.loads(bad_dtype)
    wrong_size = _hand_written_file({"x": np.zeros(2, np.float32)}, {"x": "F64"})
    with pytest.raises(serialization.SafetensorsError, match="do not hold shape"):
        serialization.loads(wrong_size)


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "keep.safetensors"
    serialization.save_file({"a": np.arange(3.0)}, path)
    with pytest.raises(TypeError):
        serialization.save_file({"a": np.arange(3.0), "b": np.zeros(2, np.complex64)}, path)
    loaded, _ = serialization.load_file(path)
    np.testing.assert_array_equal(loaded["a"], np.arange(3.0))
    assert os.listdir(tmp_path) == ["keep.safetensors"]


def test_safetensors_argument_errors():
    with pytest.raises(TypeError, match="str -> str"):
        serialization.dumps({"a": np.zeros(1)}, metadata={"n": 1})
    with pytest.raises(TypeError, match="cannot store"):
        serialization.dumps({"a": np.zeros(1, np.complex64)})
    with pytest.raises(ValueError, match="__metadata__"):
        serialization.dumps({"__metadata__": np.zeros(1)})


# ----------------------------------------------------------------------------- models


def _data(n=64):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    return x, y


def _trained(model):
    x, y = _data()
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model


class TwoTower(Model):
    def __init__(self, units=6, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.towers = [layers.Dense(units, activation="relu") for _ in range(2)]
        self.head = layers.Dense(2)

    def call(self, inputs, training=False):
        return self.head(self.towers[0](inputs) + self.towers[1](inputs))

    def get_config(self):
        return {"units": self.units, "name": self.name}


def _functional():
    inp = Input(shape=(4,))
    h = layers.Dense(8, activation="relu")(inp)
    h = layers.BatchNormalization()(h)
    return Model(inp, layers.Dense(2)(layers.Dropout(0.3)(h)))


@pytest.mark.parametrize("make", [
    lambda: Sequential([Input(shape=(4,)), layers.Dense(8, activation="relu"),
                        layers.Dense(2)]),
    _functional,
    lambda: TwoTower(units=5),
], ids=["sequential", "functional", "subclassed"])
def test_save_and_load_round_trip(tmp_path, make):
    x, y = _data()
    model = _trained(make())
    path = tmp_path / "model.keras"
    model.save(path)
    restored = load_model(path, custom_objects={"TwoTower": TwoTower})
    assert type(restored) is type(model)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert restored.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    assert type(restored.optimizer) is type(model.optimizer)
    assert restored.optimizer.iterations == model.optimizer.iterations
    for m in (model, restored):  # same dropout masks in both runs
        keras.utils.set_random_seed(3)
        m.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # optimizer slots came back


def test_keras_archive_holds_keras3_config_metadata_and_hdf5_weights(tmp_path):
    model = _trained(_functional())
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json"))
        weights = archive.read("model.weights.h5")
    assert (config["module"], config["class_name"]) == ("keras.src.models.functional",
                                                        "Functional")
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert config["compile_config"]["optimizer"]["module"] == "keras.optimizers"
    assert metadata["keras_version"].startswith("3.") and "@" in metadata["date_saved"]
    with h5py.File(io.BytesIO(weights), "r") as h5:
        stored = {name: h5[name].shape for name in _datasets(h5)}
    layer_arrays = {k: v for k, v in stored.items() if k.startswith("layers/")}
    assert sorted(layer_arrays.values()) == sorted(tuple(v.shape) for v in model.weights)
    assert stored["optimizer/vars/0"] == ()  # iterations, then learning_rate and the slots
    assert len([k for k in stored if k.startswith("optimizer/")]) == 2 + 2 * len(
        model.trainable_weights)


def _datasets(h5):
    names = []
    h5.visititems(lambda name, obj: names.append(name) if hasattr(obj, "shape") else None)
    return names


def test_distflow_archives_of_the_earlier_format_still_load(tmp_path):
    """`.keras` files distflow wrote before (safetensors inside) load as before."""
    x, _ = _data()
    model = _trained(_functional())
    tensors, meta = saving._weight_tensors(model, include_optimizer=True)
    members = {"metadata.json": json.dumps({"format": "distflow.keras", "format_version": 1}),
               "config.json": json.dumps(saving.serialize_model(model),
                                         default=saving.json_default),
               "model.weights.safetensors": serialization.dumps(tensors, meta)}
    path = tmp_path / "old.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    restored = load_model(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert restored.optimizer.iterations == model.optimizer.iterations
    other = _functional()
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_without_compile_and_from_json(tmp_path):
    x, _ = _data()
    model = _trained(Sequential([layers.Dense(3, input_shape=(4,)), layers.Dense(2)]))
    model.save(tmp_path / "m.keras")
    plain = load_model(tmp_path / "m.keras", compile=False)
    assert not plain.compiled and plain.optimizer is None
    np.testing.assert_array_equal(plain.predict(x, verbose=0), model.predict(x, verbose=0))
    clone = model_from_json(model.to_json())
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    assert clone.count_params() == model.count_params()


def test_truncated_or_corrupt_archives_give_a_clear_error(tmp_path):
    model = _trained(_functional())
    path = tmp_path / "m.keras"
    model.save(path)
    data = path.read_bytes()
    for name, content in [("cut.keras", data[: len(data) // 2]),
                          ("flip.keras", data[:200] + bytes([data[200] ^ 0xFF]) + data[201:]),
                          ("empty.keras", b"")]:
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError, match="not a valid .keras file"):
            load_model(bad)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        load_model(tmp_path / "missing.keras")


def test_save_weights_and_load_weights(tmp_path):
    x, _ = _data()
    model = _trained(_functional())
    path = tmp_path / "w.weights.safetensors"
    model.save_weights(path)
    other = _functional()
    assert not np.allclose(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    model.save(tmp_path / "full.keras")
    third = _functional()
    third.load_weights(tmp_path / "full.keras")
    np.testing.assert_array_equal(third.predict(x, verbose=0), model.predict(x, verbose=0))


def test_weights_file_errors(tmp_path):
    model = _trained(_functional())
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        model.save_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match="HDF5"):
        model.save(tmp_path / "m.h5")
    with pytest.raises(ValueError, match=r"\.keras"):
        model.save(tmp_path / "m.zip")
    path = tmp_path / "w.weights.safetensors"
    model.save_weights(path)
    smaller = Sequential([Input(shape=(4,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="different architecture"):
        smaller.load_weights(path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        model.load_weights(path)


class Doubling(layers.Layer):
    """A custom layer with no weights, wrapped below so only custom_objects can rebuild it."""

    def call(self, inputs, training=False):
        return inputs * 2.0


def test_custom_layer_inside_a_wrapper_is_found_through_custom_objects(tmp_path):
    model = Sequential([Input(shape=(3, 2)), layers.TimeDistributed(Doubling()),
                        layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    path = tmp_path / "wrapped.keras"
    model.save(path)
    with pytest.raises(ValueError, match="Doubling"):
        load_model(path)
    restored = load_model(path, custom_objects={"Doubling": Doubling})
    x = np.arange(12, dtype="float32").reshape(2, 3, 2)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_build_without_a_shape_marks_the_layer_built():
    class NoShape(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(2,), initializer="ones", name="w")

    layer = NoShape()
    layer.build()
    assert layer.built and [v.shape for v in layer.weights] == [(2,)]


def test_saving_load_model_finds_model_classes_without_importing_models_first(tmp_path):
    """`keras.saving` does not import `keras.models`: its classes come from the registry."""
    import subprocess
    import sys

    inputs = Input((3,))
    Model(inputs, layers.Dense(2)(inputs) * 2.0).save(tmp_path / "f.keras")
    Sequential([layers.Dense(2, input_shape=(3,))]).save(tmp_path / "s.keras")
    script = ("import sys\nfrom distflow.keras import saving\n"
              "assert 'distflow.keras.models' not in sys.modules\n"
              f"f = saving.load_model({str(tmp_path / 'f.keras')!r})\n"
              f"s = saving.load_model({str(tmp_path / 's.keras')!r})\n"
              "print(type(f).__name__, type(s).__name__, type(f.layers[-1]).__name__)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.split() == ["Functional", "Sequential", "TensorOp"]
