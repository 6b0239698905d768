"""`keras.utils` / `keras.saving` / `keras.preprocessing` helpers against Keras 3.

Fixtures: tests/goldens/utils.json and regularizers_more.json, written by
tools/make_goldens_utils.py with real Keras (never imported here).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import distflow as df
from distflow import keras
from distflow.keras import backend, saving_registry

GOLDENS = Path(__file__).parent / "goldens"
UTILS = json.loads((GOLDENS / "utils.json").read_text())
REGULARIZERS = json.loads((GOLDENS / "regularizers_more.json").read_text())


def _nested(value):
    """Arrays and tuples of a dataset element as nested lists."""
    if isinstance(value, tuple | list):
        return [_nested(v) for v in value]
    return np.asarray(value).tolist()


# ------------------------------------------------------------------ sequences and splits


@pytest.mark.parametrize("case", UTILS["pad_sequences"], ids=lambda c: str(c["kwargs"]))
def test_pad_sequences_matches_keras(case):
    result = keras.utils.pad_sequences(case["sequences"], **case["kwargs"])
    assert str(result.dtype) == case["dtype"]
    np.testing.assert_array_equal(result, np.array(case["result"], dtype=case["dtype"]))


def test_pad_sequences_refuses_bad_arguments_as_keras():
    with pytest.raises(ValueError, match="Truncating type"):
        keras.utils.pad_sequences([[1, 2, 3]], maxlen=2, truncating="middle")
    with pytest.raises(ValueError, match="Padding type"):
        keras.utils.pad_sequences([[1]], maxlen=2, padding="middle")
    with pytest.raises(ValueError, match="non-iterable"):
        keras.utils.pad_sequences([[1], 2])
    with pytest.raises(ValueError, match="dtype=object"):
        keras.utils.pad_sequences([["a"]], value="x")
    assert keras.preprocessing.sequence.pad_sequences is keras.utils.pad_sequences


@pytest.mark.parametrize("case", UTILS["timeseries"], ids=lambda c: str(c["kwargs"]))
def test_timeseries_dataset_matches_keras(case):
    data = np.arange(40, dtype=np.float32).reshape(20, 2)
    kwargs = {k: v for k, v in case["kwargs"].items() if k != "targets"}
    targets = None if case["kwargs"].get("targets") is False else np.arange(100, 120)
    ds = keras.utils.timeseries_dataset_from_array(data, targets, **kwargs)
    got = [_nested(e) for e in ds.as_numpy_iterator()]
    if kwargs.get("shuffle"):
        # Keras shuffles the start positions with NumPy (reproduced) and then again
        # within a buffer with TensorFlow's generator (not reproduced): same windows.
        pairs = lambda batches: sorted(  # noqa: E731
            zip(map(str, batches[0][0]), batches[0][1]))
        assert pairs(got) == pairs(case["elements"])
    else:
        assert got == case["elements"]


def test_timeseries_dataset_checks_arguments():
    data = np.zeros((10, 1))
    for bad in ({"sampling_rate": 0}, {"sequence_stride": 10}, {"start_index": 12},
                {"start_index": 4, "end_index": 3}):
        with pytest.raises(ValueError):
            keras.utils.timeseries_dataset_from_array(data, None, 2, **bad)
    assert keras.preprocessing.timeseries_dataset_from_array is \
        keras.utils.timeseries_dataset_from_array


@pytest.mark.parametrize("case", UTILS["split"], ids=lambda c: str(c["kwargs"]))
def test_split_dataset_matches_keras(case):
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    left, right = keras.utils.split_dataset((x, y), **case["kwargs"])
    assert [_nested(e) for e in left.as_numpy_iterator()] == case["left"]
    assert [_nested(e) for e in right.as_numpy_iterator()] == case["right"]


def test_split_dataset_accepts_datasets_and_refuses_bad_sizes():
    ds = df.data.Dataset.from_tensor_slices(np.arange(5))
    left, right = keras.utils.split_dataset(ds, right_size=2)
    assert list(left.as_numpy_iterator()) == [0, 1, 2]
    assert list(right.as_numpy_iterator()) == [3, 4]
    for bad in ({}, {"left_size": 1.5}, {"left_size": 5}, {"left_size": 3, "right_size": 3}):
        with pytest.raises(ValueError):
            keras.utils.split_dataset(np.arange(5), **bad)


def test_pack_and_unpack_are_keras_s():
    x, y, w = np.ones(2), np.zeros(2), np.ones(2)
    assert keras.utils.pack_x_y_sample_weight(x, y, None) == (x, y)
    assert keras.utils.unpack_x_y_sample_weight((x, y, w)) == (x, y, w)
    assert keras.utils.unpack_x_y_sample_weight(x) == (x, None, None)


# ------------------------------------------------------------------ images


@pytest.mark.parametrize("case", UTILS["smart_resize"]["cases"], ids=lambda c: str(c["size"]))
def test_smart_resize_matches_keras(case):
    image = np.array(UTILS["smart_resize"]["image"], np.float32)
    got = keras.preprocessing.image.smart_resize(image, case["size"], case["interpolation"])
    np.testing.assert_allclose(got, np.array(case["result"], np.float32), rtol=1e-5, atol=1e-3)


def test_img_to_array_and_save_img_round_trip(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (5, 7, 3)).astype(np.float32)
    assert keras.utils.img_to_array(pixels[..., 0]).shape == (5, 7, 1)
    assert keras.utils.img_to_array(pixels, data_format="channels_first").shape == (3, 5, 7)
    with pytest.raises(ValueError, match="rank 2 or 3"):
        keras.utils.img_to_array(np.zeros(3))
    keras.utils.save_img(tmp_path / "a.png", pixels, scale=False)
    from distflow.keras.utils.image_utils import decode_image

    np.testing.assert_array_equal(decode_image(str(tmp_path / "a.png"), 3), pixels)
    scaled = keras.utils.img_to_array(decode_image(str(tmp_path / "a.png"), 3))
    assert scaled.dtype == np.float32


def test_pillow_functions_need_pillow_or_use_it(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (4, 6, 3)).astype(np.float32)
    try:
        import PIL  # noqa: F401
    except ImportError:
        for call in (lambda: keras.utils.array_to_img(pixels),
                     lambda: keras.utils.load_img(tmp_path / "x.png"),
                     lambda: keras.utils.save_img(tmp_path / "x.jpg", pixels)):
            with pytest.raises(ImportError, match="pip install pillow"):
                call()
        return
    img = keras.utils.array_to_img(pixels, scale=False)
    np.testing.assert_array_equal(keras.utils.img_to_array(img), pixels)
    keras.utils.save_img(tmp_path / "x.png", pixels, scale=False)
    loaded = keras.utils.load_img(tmp_path / "x.png", target_size=(4, 6))
    np.testing.assert_array_equal(keras.utils.img_to_array(loaded), pixels)


# ------------------------------------------------------------------ serialization


@pytest.mark.parametrize("key", sorted(UTILS["serialized"]))
def test_serialize_keras_object_matches_keras(key):
    objects = {
        "none": None, "int": 3, "str": "relu", "tuple": (1, 2),
        "nested": [1, (2, 3), {"a": (4,)}], "numpy": np.arange(3, dtype="float32"),
        "numpy_scalar": np.float32(2.5), "bytes": b"ab",
        "glorot": keras.initializers.GlorotUniform(seed=3), "l2": keras.regularizers.L2(0.1),
        "orthogonal_reg": keras.regularizers.OrthogonalRegularizer(0.2, "columns"),
        "relu": keras.activations.relu, "max_norm": keras.constraints.MaxNorm(2.0),
        "orthogonal": keras.initializers.Orthogonal(gain=2.0, seed=1)}
    want = UTILS["serialized"][key]
    got = keras.saving.serialize_keras_object(objects[key])
    assert isinstance(got, tuple) == want["is_tuple"]
    got = json.loads(json.dumps(got))
    if isinstance(want["serialized"], dict) and isinstance(want["serialized"].get("config"),
                                                           dict) and "module" in want["serialized"]:
        for field in ("module", "class_name", "registered_name"):
            assert got[field] == want["serialized"][field]
        # Keras's config may hold arguments distflow lacks; what both have agrees.
        shared = set(got["config"]) & set(want["serialized"]["config"])
        assert shared and all(
            np.isclose(got["config"][k], want["serialized"]["config"][k])
            if isinstance(got["config"][k], float) else
            got["config"][k] == want["serialized"]["config"][k] for k in shared)
    else:
        assert got == want["serialized"]


def test_deserialize_keras_object_reads_keras_dicts():
    sv = UTILS["serialized"]
    assert keras.saving.deserialize_keras_object(sv["relu"]["serialized"]) is \
        keras.activations.relu
    reg = keras.saving.deserialize_keras_object(sv["orthogonal_reg"]["serialized"])
    assert isinstance(reg, keras.regularizers.OrthogonalRegularizer) and reg.mode == "columns"
    np.testing.assert_array_equal(
        keras.saving.deserialize_keras_object(sv["numpy"]["serialized"]), np.arange(3.0))
    assert keras.saving.deserialize_keras_object(sv["bytes"]["serialized"]) == b"ab"
    norm = keras.saving.deserialize_keras_object(sv["max_norm"]["serialized"])
    assert norm.get_config()["max_value"] == 2.0
    dense = keras.layers.Dense(3, activation="relu")
    again = keras.utils.deserialize_keras_object(keras.utils.serialize_keras_object(dense))
    assert type(again) is type(dense) and again.get_config() == dense.get_config()
    with pytest.raises(TypeError, match="Could not locate class 'Nope'"):
        keras.saving.deserialize_keras_object({"class_name": "Nope", "config": {},
                                               "module": "keras.layers"})
    with pytest.raises(ValueError, match="lambda"):
        keras.saving.serialize_keras_object(lambda x: x)


def test_registration_scopes_and_names():
    @keras.saving.register_keras_serializable(package="Utils15")
    class Scaler:
        def __init__(self, k=1.0):
            self.k = k

        def get_config(self):
            return {"k": self.k}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    assert keras.saving.get_registered_name(Scaler) == "Utils15>Scaler"
    assert keras.utils.get_registered_object("Utils15>Scaler") is Scaler
    assert keras.saving.get_custom_objects()["Utils15>Scaler"] is Scaler
    serialized = keras.saving.serialize_keras_object(Scaler(3.0))
    assert serialized["registered_name"] == "Utils15>Scaler"
    assert keras.saving.deserialize_keras_object(serialized).k == 3.0
    assert keras.saving.get_registered_name(len) == "len"
    with pytest.raises(ValueError, match="get_config"):
        keras.saving.register_keras_serializable()(type("NoConfig", (), {}))

    class Local:
        pass

    assert keras.utils.get_registered_object("Local") is None
    with keras.utils.custom_object_scope({"Local": Local}) as scope:
        assert keras.saving.get_registered_object("Local") is Local
        with keras.saving.CustomObjectScope({"Other": int}):  # replaces, as Keras's
            assert keras.saving.get_registered_object("Local") is None
        assert keras.saving.get_registered_object("Local") is Local
    assert isinstance(scope, keras.utils.CustomObjectScope)
    assert keras.utils.get_registered_object("Local") is None


def test_a_registered_layer_loads_without_custom_objects(tmp_path):
    @keras.saving.register_keras_serializable(package="Utils15")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    model = keras.Sequential([keras.Input((3,)), Doubler(), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    x = np.ones((2, 3), np.float32)
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_legacy_serialization():
    legacy = keras.utils.legacy
    want = UTILS["legacy"]
    config = legacy.serialize_keras_object(keras.regularizers.L2(0.5))
    assert config == want["l2"]
    assert legacy.serialize_keras_object(keras.activations.relu) == want["relu"]
    assert legacy.serialize_keras_object(keras.constraints.MaxNorm(2.0)) == want["max_norm"]
    back = legacy.deserialize_keras_object(config, module_objects={"L2": keras.regularizers.L2})
    assert back.l2 == 0.5
    with pytest.raises(ValueError, match="Unknown object"):
        legacy.deserialize_keras_object("missing")


# ------------------------------------------------------------------ regularizers, initializers


@pytest.mark.parametrize("case", REGULARIZERS["cases"],
                         ids=lambda c: f"{c['mode']}-{c['factor']}-{c['input']}")
def test_orthogonal_regularizer_matches_keras(case):
    reg = keras.regularizers.OrthogonalRegularizer(case["factor"], case["mode"])
    x = np.array(REGULARIZERS["inputs"][case["input"]], np.float32)
    assert float(reg(x)) == pytest.approx(case["value"], rel=1e-5, abs=1e-7)
    assert reg.get_config()["mode"] == case["config"]["mode"]


def test_orthogonal_regularizer_has_a_gradient_and_checks_input():
    reg = keras.regularizers.orthogonal_regularizer(1.0)
    w = df.Variable(np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32),
                    name="orth_reg/w")
    with df.GradientTape() as tape:
        penalty = reg(w)
    assert np.abs(tape.gradient(penalty, w).numpy()).sum() > 0
    with pytest.raises(ValueError, match="rank 2"):
        reg(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="mode"):
        keras.regularizers.OrthogonalRegularizer(mode="diagonal")
    assert isinstance(keras.regularizers.get("orthogonal_regularizer"),
                      keras.regularizers.OrthogonalRegularizer)


def test_keras_3_initializer_names():
    assert keras.initializers.OrthogonalInitializer is keras.initializers.Orthogonal
    assert keras.initializers.IdentityInitializer is keras.initializers.Identity
    init = keras.initializers.deserialize({"class_name": "IdentityInitializer",
                                           "config": {"gain": 2.0}})
    np.testing.assert_array_equal(np.asarray(init((2, 2))), 2 * np.eye(2))


# ------------------------------------------------------------------ small utilities


def test_config_behaves_as_keras():
    config = keras.utils.Config(learning_rate=0.1, momentum=0.9)
    config.seed = 3
    config["beta"] = 1
    assert config.learning_rate == 0.1 and config["seed"] == 3 and "beta" in config
    assert list(config) == ["beta", "learning_rate", "momentum", "seed"]
    assert json.loads(config.to_json())["seed"] == 3 and len(config) == 4
    with pytest.raises(AttributeError, match="Did you mean 'momentum'"):
        config.momentun  # noqa: B018
    config.freeze()
    assert config.frozen
    for change in (lambda: setattr(config, "x", 1), lambda: config.update(x=1),
                   lambda: config.pop("seed"), lambda: config.__delitem__("seed")):
        with pytest.raises(ValueError, match="frozen"):
            change()
    config.unfreeze()
    config.x = 1
    assert config.as_dict()["x"] == 1


def test_interactive_logging_switches_between_stdout_and_logging(capsys, caplog):
    from distflow.keras.utils.io_utils import print_msg

    assert keras.utils.is_interactive_logging_enabled()
    print_msg("to stdout")
    keras.utils.disable_interactive_logging()
    try:
        assert not keras.utils.is_interactive_logging_enabled()
        with caplog.at_level(logging.INFO, logger="distflow.keras"):
            print_msg("to logging")
    finally:
        keras.utils.enable_interactive_logging()
    assert capsys.readouterr().out == "to stdout\n"
    assert "to logging" in caplog.text


def test_backend_helpers_are_exported_and_source_inputs_are_found():
    assert keras.utils.clear_session is backend.clear_session
    assert keras.utils.standardize_dtype(np.float64) == "float64"
    a, b = keras.Input((3,)), keras.Input((3,))
    out = keras.layers.Dense(2)(keras.layers.Add()([a, keras.layers.Dense(3)(b)]))
    assert keras.utils.is_keras_tensor(out) and not keras.utils.is_keras_tensor(np.ones(2))
    sources = keras.utils.get_source_inputs(out)
    assert len(sources) == 2 and sources[0] is a and sources[1] is b
    assert keras.utils.get_source_inputs(a) == [a]


def test_model_to_dot_and_plot_model(tmp_path):
    a = keras.Input((4,), name="x_in")
    hidden = keras.layers.Dense(3, activation="relu", name="hidden")(a)
    out = keras.layers.Dense(1, name="out")(keras.layers.Concatenate(name="cat")([a, hidden]))
    model = keras.Model(a, out)
    text = keras.utils.model_to_dot(model, show_shapes=True,
                                    show_layer_activations=True).to_string()
    assert text.startswith("digraph G {") and "hidden (Dense)" in text and "relu" in text
    assert text.count("->") == 4  # x_in->hidden, x_in->cat, hidden->cat, cat->out
    assert "(None, 3)" in text
    keras.utils.plot_model(model, to_file=tmp_path / "m.dot")
    assert (tmp_path / "m.dot").read_text() == keras.utils.model_to_dot(model).to_string()
    if shutil.which("dot") is None:
        with pytest.raises(ImportError, match="graphviz"):
            keras.utils.plot_model(model, to_file=tmp_path / "m.png")
    else:
        keras.utils.plot_model(model, to_file=tmp_path / "m.png")
        assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    seq = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    assert keras.utils.model_to_dot(seq, rankdir="LR").to_string().count("->") == 1


def test_namespaces_expose_keras_names():
    for name in ("CustomObjectScope", "custom_object_scope", "get_custom_objects",
                 "register_keras_serializable", "serialize_keras_object"):
        assert getattr(keras.saving, name) is getattr(keras.utils, name)
    assert keras.preprocessing.image.img_to_array is keras.utils.img_to_array
    assert keras.utils.Sequence is keras.utils.PyDataset
    assert saving_registry.custom_object_scope is saving_registry.CustomObjectScope


def test_fit_progress_goes_to_logging_when_interactive_logging_is_disabled(capsys, caplog):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 2), np.float32), np.ones((8, 1), np.float32)
    keras.utils.disable_interactive_logging()
    try:
        with caplog.at_level(logging.INFO, logger="distflow.keras"):
            model.fit(x, y, epochs=2, verbose=2)
    finally:
        keras.utils.enable_interactive_logging()
    assert capsys.readouterr().out == ""
    assert "Epoch 2/2" in caplog.text and "loss" in caplog.text
    model.fit(x, y, epochs=1, verbose=2)
    assert "Epoch 1/1" in capsys.readouterr().out


STFT = json.loads((GOLDENS / "stft.json").read_text())


@pytest.mark.parametrize("case", STFT["cases"], ids=lambda c: str(c["shape"]))
def test_stft_initializer_matches_keras(case):
    kwargs = dict(case["kwargs"])
    if isinstance(kwargs.get("window"), list):
        kwargs["window"] = np.array(kwargs["window"], np.float32)
    got = keras.initializers.STFT(**kwargs)(tuple(case["shape"]))
    np.testing.assert_allclose(np.asarray(got), np.array(case["value"], np.float32),
                               rtol=1e-5, atol=1e-6)


def test_stft_named_windows_are_scipy_s():
    from distflow.keras.initializers import _window

    # SciPy's documented values: symmetric and periodic (DFT-even) windows.
    np.testing.assert_allclose(_window("hann", 5, False), [0, 0.5, 1, 0.5, 0], atol=1e-12)
    np.testing.assert_allclose(_window("hann", 4, True), [0, 0.5, 1, 0.5], atol=1e-12)
    np.testing.assert_allclose(_window("hamming", 3, False), [0.08, 1, 0.08], atol=1e-12)
    np.testing.assert_allclose(_window("blackman", 3, False), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(_window("bartlett", 5, False), [0, 0.5, 1, 0.5, 0], atol=1e-12)
    kernel = np.asarray(keras.initializers.STFT()((5, 1, 3)))
    window = np.array([0, 0.5, 1, 0.5, 0])
    plain = np.asarray(keras.initializers.STFT(window=None)((5, 1, 3)))
    np.testing.assert_allclose(kernel, plain * window.reshape(-1, 1, 1) /
                               np.sqrt(np.sum(window ** 2)), rtol=1e-6, atol=1e-7)
    assert keras.initializers.STFTInitializer is keras.initializers.STFT
    assert isinstance(keras.initializers.get("stft"), keras.initializers.STFT)
    for bad in ({"side": "both"}, {"scaling": "energy"}):
        with pytest.raises(ValueError):
            keras.initializers.STFT(**bad)
    try:
        import scipy  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="needs SciPy"):
            keras.initializers.STFT(window="kaiser")
