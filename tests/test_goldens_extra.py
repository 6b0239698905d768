"""distflow's activations, layers and preprocessing layers against real Keras 3's outputs.

The fixtures (written by tools/make_goldens_extra.py with TensorFlow 2.21 / Keras 3)
hold each case's inputs, weights and Keras's results; nothing here imports Keras.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import distflow as df
from distflow import keras

GOLDENS = Path(__file__).resolve().parent / "goldens"


def _load(name: str) -> dict:
    return json.loads((GOLDENS / f"{name}.json").read_text())


ACTIVATIONS = _load("activations")


@pytest.mark.parametrize("case", ACTIVATIONS["cases"],
                         ids=lambda c: "-".join([c["name"], *map(str, c["kwargs"].values())]))
def test_activation_value_and_gradient_match_keras(case):
    x = df.constant(np.array(ACTIVATIONS["x"], np.float32))
    fn = keras.activations.get(case["name"])
    with df.GradientTape() as tape:
        tape.watch(x)
        out = fn(x, **case["kwargs"])
        w = np.array(ACTIVATIONS["w"], np.float32)[: out.shape[0], : out.shape[1]]
        total = df.reduce_sum(out * w)
    np.testing.assert_allclose(out.numpy(), case["output"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), case["grad"], rtol=1e-5,
                               atol=1e-6)


def test_glu_on_an_odd_axis_raises_as_keras():
    with pytest.raises(ValueError, match="divisible by 2"):
        keras.activations.glu(np.ones((2, 3), np.float32))


PREPROCESSING = _load("preprocessing")


def _as_json(out):
    arr = np.asarray(out.numpy() if hasattr(out, "numpy") else out)
    if arr.dtype.kind in "OSU":
        return [x.decode() if isinstance(x, bytes) else x for x in arr.ravel().tolist()]
    return arr.astype(np.float64).ravel().tolist()


@pytest.mark.parametrize("case", PREPROCESSING["cases"],
                         ids=lambda c: f"{c['class']}-{'-'.join(map(str, c['config']))}")
def test_preprocessing_layer_matches_keras(case):
    layer = getattr(keras.layers, case["class"])(**case["config"])
    if case["adapt"] is not None:
        batches = case["adapt"]
        layer.adapt([np.array(b, np.float32) for b in batches]
                    if case["class"] == "Discretization" else np.array(batches))
    out = layer(np.array(case["inputs"]))
    want = np.array(case["output"], dtype=object if case["dtype"] == "object" else np.float64)
    assert np.asarray(out.numpy()).shape == want.shape
    if case["dtype"] == "object":
        assert _as_json(out) == want.ravel().tolist()
    else:
        assert out.dtype.name == case["dtype"]
        np.testing.assert_allclose(_as_json(out), want.ravel(), rtol=1e-6)
    if "vocabulary" in case:
        assert layer.get_vocabulary() == case["vocabulary"]
    if "bin_boundaries" in case:
        np.testing.assert_allclose(layer.bin_boundaries, case["bin_boundaries"], rtol=1e-6)


IMAGE = _load("image")


@pytest.mark.parametrize("case", IMAGE["cases"],
                         ids=lambda c: f"{c['class']}-{'-'.join(map(str, c['config'].values()))}")
def test_image_layer_output_matches_keras(case):
    layer = getattr(keras.layers, case["class"])(**case["config"])
    out = layer(np.array(case["input"], np.float32), training=case.get("training", False))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), case["output"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", IMAGE["affine"],
                         ids=lambda c: f"{c['fill_mode']}-{c['interpolation']}")
def test_affine_transform_matches_keras(case):
    from distflow.keras.layers.preprocessing_image import affine_transform

    out = affine_transform(np.array(IMAGE["images"], np.float32),
                           np.array(case["transforms"], np.float32), case["interpolation"],
                           case["fill_mode"], fill_value=0.5)
    np.testing.assert_allclose(out, case["output"], rtol=1e-5, atol=1e-5)


def test_rotation_zoom_and_translation_matrices_match_keras():
    from distflow.keras.layers.preprocessing_image import (
        rotation_matrix,
        translation_matrix,
        zoom_matrix,
    )

    m = IMAGE["matrices"]
    np.testing.assert_allclose(rotation_matrix(m["angles"], m["height"], m["width"]),
                               m["rotation"], rtol=1e-5, atol=1e-6)
    zooms = np.array(m["zooms"], np.float32)
    np.testing.assert_allclose(zoom_matrix(zooms[:, 0], zooms[:, 1], m["height"], m["width"]),
                               m["zoom"], rtol=1e-6, atol=1e-6)
    shifts = np.array(m["shifts"], np.float32)
    np.testing.assert_allclose(translation_matrix(shifts[:, 0], shifts[:, 1]), m["translation"],
                               rtol=1e-6)


LAYERS = _load("layers")


def _layer_masks(shapes):
    return [np.arange(s[1])[None, :].repeat(s[0], 0) < s[1] - 1 - np.arange(s[0])[:, None]
            for s in shapes[:2]]


def _case_id(config):
    return [v["class_name"] if isinstance(v, dict) else v for v in config.values()]


def _instantiate(value):
    """A case's config with its `{"class_name", "config"}` entries (cells, wrapped layers)
    made into distflow layers."""
    if isinstance(value, dict) and set(value) == {"class_name", "config"}:
        return getattr(keras.layers, value["class_name"])(**_instantiate(value["config"]))
    if isinstance(value, dict):
        return {k: _instantiate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_instantiate(v) for v in value]
    return value


def _apply(layer, inputs, kwargs):
    if kwargs.get("unpack"):
        return layer(*inputs, **{k: v for k, v in kwargs.items() if k != "unpack"})
    return layer(inputs if len(inputs) > 1 else inputs[0], **kwargs)


@pytest.mark.parametrize("case", LAYERS["cases"],
                         ids=lambda c: f"{c['class']}-{'-'.join(map(str, _case_id(c['config'])))}"
                                       f"{'-' + '-'.join(c['call']) if c['call'] else ''}")
def test_layer_output_and_gradients_match_keras(case):
    inputs = [df.constant(np.array(x, np.float32)) for x in case["inputs"]]
    layer = getattr(keras.layers, case["class"])(**_instantiate(case["config"]))
    kwargs = dict(case["call"])
    if kwargs.get("mask") == "qv":
        kwargs["mask"] = _layer_masks([x.shape for x in inputs])
    _apply(layer, inputs, kwargs)  # builds the weights
    assert len(layer.weights) == len(case["weight_names"])
    layer.set_weights([np.array(w, np.float32) for w in case["weights"]])
    with df.GradientTape(persistent=True) as tape:
        for x in inputs:
            tape.watch(x)
        out = _apply(layer, inputs, kwargs)
        total = df.reduce_sum(out * np.array(case["cotangent"], np.float32))
    np.testing.assert_allclose(out.numpy(), case["output"], rtol=1e-5, atol=1e-5)
    for i, (got, want) in enumerate(zip(layer.get_weights(), case["weights_after"])):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"weight {i}")
    grads = tape.gradient(total, [*inputs, *layer.trainable_weights])
    for i, (got, want) in enumerate(zip(grads, case["grads"])):
        if want is None:
            continue
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4,
                                   err_msg=f"gradient {i}")


@pytest.mark.parametrize("case", PREPROCESSING["crossing"], ids=lambda c: str(c["config"]))
def test_hashed_crossing_matches_keras(case):
    layer = keras.layers.HashedCrossing(**case["config"])
    out = layer(tuple(np.array(x) for x in case["inputs"]))
    np.testing.assert_array_equal(out.numpy(), case["output"])


def test_pipeline_matches_keras():
    pipeline = keras.layers.Pipeline([keras.layers.StringLookup(vocabulary=["a", "b", "c", "d"]),
                                      keras.layers.CategoryEncoding(6, output_mode="count")])
    case = PREPROCESSING["pipeline"]
    np.testing.assert_array_equal(pipeline(np.array(case["inputs"])).numpy(), case["output"])


AUGMENT = _load("augment")


@pytest.mark.parametrize("case", AUGMENT["cases"],
                         ids=lambda c: f"{c['class']}-{'-'.join(map(str, c['config'].values()))}")
def test_augmentation_matches_keras(case):
    layer = getattr(keras.layers, case["class"])(**case["config"])
    x = np.array(case["input"], np.float32)
    if case["transformation"] is None:
        out = layer(x, training=True).numpy()
    else:
        out = layer.transform(x, case["transformation"])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, case["output"], rtol=1e-5, atol=1e-4)
    if "labels" in case:
        labels = layer.transform_labels(np.array(case["labels"], np.float32),
                                        case["transformation"])
        np.testing.assert_allclose(labels, case["labels_output"], rtol=1e-6)


def test_box_masks_match_keras():
    from distflow.keras.layers.preprocessing_augment import box_masks

    boxes = AUGMENT["boxes"]
    masks = box_masks((3, 5, 7, 2), boxes["x0"], boxes["x1"], boxes["y0"], boxes["y1"])
    np.testing.assert_array_equal(masks, AUGMENT["box_masks"])


SEQUENCES = _load("sequences")


@pytest.mark.parametrize("case", SEQUENCES["cases"], ids=lambda c: "-".join(
    [c["class"], *map(str, c["config"].values()), *c["call"]]))
def test_sequence_layer_outputs_and_gradients_match_keras(case):
    """LSTM and GRU (one-op sequences and, with a mask, the step loop) and self-attention
    MultiHeadAttention (with and without biases, masks) against Keras."""
    x = df.constant(np.array(case["input"], np.float32))
    layer = getattr(keras.layers, case["class"])(**case["config"])
    kwargs = {k: np.array(v) for k, v in case["kwargs"].items()}
    attention = case["class"] == "MultiHeadAttention"
    layer(x, x) if attention else layer(x)  # builds the weights
    layer.set_weights([np.array(w, np.float32) for w in case["weights"]])
    with df.GradientTape() as tape:
        tape.watch(x)
        outs = layer(x, x, **kwargs) if attention else layer(x, **kwargs)
        outs = outs if isinstance(outs, list) else [outs]
        total = sum(df.reduce_sum(o * np.array(c, np.float32))
                    for o, c in zip(outs, case["cotangents"]))
    for got, want in zip(outs, case["outputs"], strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    grads = tape.gradient(total, [x, *layer.trainable_weights])
    for i, (got, want) in enumerate(zip(grads, case["grads"], strict=True)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4,
                                   err_msg=f"gradient {i}")
