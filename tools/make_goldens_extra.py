"""Writes the fixtures of Keras's activations, layers and preprocessing layers (real Keras).

Needs TensorFlow 2.21 / Keras 3 (CPU), never a dependency of distflow:

    /tmp/tfenv/bin/python tools/make_goldens_extra.py               # all fixtures
    /tmp/tfenv/bin/python tools/make_goldens_extra.py activations   # one of them

Each fixture (tests/goldens/<name>.json) holds every case's inputs, weights and
Keras's outputs; tests/test_goldens_extra.py recomputes them with distflow.
"""

from __future__ import annotations

import sys

import numpy as np
from make_goldens import OUT, _floats, main

ACTIVATION_CASES = [
    ("celu", {}), ("celu", {"alpha": 0.5}), ("glu", {}), ("glu", {"axis": 0}),
    ("hard_shrink", {}), ("hard_shrink", {"threshold": 1.2}), ("hard_silu", {}),
    ("hard_swish", {}), ("hard_tanh", {}), ("log_sigmoid", {}), ("soft_shrink", {}),
    ("soft_shrink", {"threshold": 0.8}), ("sparse_plus", {}), ("sparse_sigmoid", {}),
    ("sparsemax", {}), ("sparsemax", {"axis": 0}), ("squareplus", {}),
    ("squareplus", {"b": 1.5}), ("tanh_shrink", {}),
    ("threshold", {"threshold": 0.3, "default_value": -2.0}),
]


def activations() -> dict:
    """Each activation's output on a (4, 6) input and the gradient of sum(out * w)."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(15)
    x = (rng.normal(size=(4, 6)) * 1.8).astype(np.float32)
    w = rng.normal(size=(4, 6)).astype(np.float32)
    cases = []
    for name, kwargs in ACTIVATION_CASES:
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = getattr(keras.activations, name)(xt, **kwargs)
            total = tf.reduce_sum(out * tf.constant(w[: out.shape[0], : out.shape[1]]))
        cases.append({"name": name, "kwargs": kwargs, "output": _floats(out),
                      "grad": _floats(tape.gradient(total, xt))})
    return {"keras_version": keras.__version__, "x": _floats(x), "w": _floats(w),
            "cases": cases}


TEXTS = ["The cat sat on the mat.", "A dog! A DOG? the dog...", "cats and dogs, and mats",
         "Ünïcode Straße: the END", ""]
WORDS = [["a", "b", "c", "zz"], ["c", "", "a", "q"], ["b", "b", "e", "a"]]
VOCAB = ["a", "b", "c", "d"]

# (Keras class, constructor arguments, adapt data or None, inputs).
PREPROCESSING_CASES = [
    ("StringLookup", {"vocabulary": VOCAB}, None, WORDS),
    ("StringLookup", {"vocabulary": VOCAB, "mask_token": ""}, None, WORDS),
    ("StringLookup", {"vocabulary": ["[UNK]", *VOCAB]}, None, [["d", "x"]]),
    ("StringLookup", {"vocabulary": VOCAB, "num_oov_indices": 0}, None, [["d", "a"]]),
    ("StringLookup", {"vocabulary": VOCAB, "num_oov_indices": 3, "mask_token": ""}, None,
     [["zz", "q", "e", "", "long out of vocabulary token", "a"]]),
    ("StringLookup", {"vocabulary": VOCAB, "invert": True}, None, [[0, 1, 2, 5, 9]]),
    ("StringLookup", {"vocabulary": VOCAB, "invert": True, "mask_token": "[MASK]"}, None,
     [[0, 1, 2, 5, 9]]),
    ("StringLookup", {"vocabulary": VOCAB, "output_mode": "one_hot"}, None, ["a", "d", "x"]),
    ("StringLookup", {"vocabulary": VOCAB, "output_mode": "multi_hot"}, None, WORDS),
    ("StringLookup", {"vocabulary": VOCAB, "output_mode": "count"}, None, WORDS),
    ("StringLookup", {"vocabulary": VOCAB, "output_mode": "multi_hot"}, None, ["a", "a", "c"]),
    ("StringLookup", {"vocabulary": VOCAB, "output_mode": "tf_idf",
                      "idf_weights": [0.5, 1.0, 1.5, 2.0]}, None, WORDS),
    ("StringLookup", {"vocabulary": VOCAB, "output_mode": "count", "max_tokens": 8,
                      "pad_to_max_tokens": True}, None, WORDS),
    ("StringLookup", {}, [["x", "y", "x"], ["z", "y", "x"], ["w", "w", "v"]], WORDS),
    ("StringLookup", {"max_tokens": 3, "mask_token": ""}, [["x", "y", "x"], ["z", "y", "x"]],
     [["x", "y", "z"]]),
    ("StringLookup", {"output_mode": "tf_idf"}, [["x", "y", "x"], ["z", "y", "x"],
                                                 ["w", "w", "v"]], [["x", "w", "q", "x"]]),
    ("IntegerLookup", {"vocabulary": [12, 36, 1138, 42]}, None, [[12, 1138, 42], [42, 1000, 36]]),
    ("IntegerLookup", {"vocabulary": [12, 36, 1138, 42], "mask_token": 0, "num_oov_indices": 2},
     None, [[12, 0, 7], [8, 13, 36]]),
    ("IntegerLookup", {"vocabulary": [12, 36, 1138, 42], "num_oov_indices": 3,
                       "oov_method": "farmhash"}, None, [[1, 2, 3, 4, 5, 36]]),
    ("IntegerLookup", {"vocabulary": [12, 36, 1138, 42], "invert": True}, None, [[0, 1, 4, 7]]),
    ("IntegerLookup", {"vocabulary": [12, 36, 1138, 42], "output_mode": "multi_hot"}, None,
     [[12, 1138, 42], [42, 1000, 42]]),
    ("IntegerLookup", {}, [[5, 5, 3], [3, 3, 1], [9, 5, 3]], [[5, 3, 1, 9, 2]]),
    ("Hashing", {"num_bins": 7}, None, [["a", "bb"], ["ccc", "a longer string of text"]]),
    ("Hashing", {"num_bins": 5}, None, [[1, 2, 3], [1000, -7, 0]]),
    ("Hashing", {"num_bins": 5}, None, [[1.7, -2.2, 3.0]]),
    ("Hashing", {"num_bins": 4, "mask_value": ""}, None, [["", "a", "b", "c"]]),
    ("Hashing", {"num_bins": 6, "output_mode": "multi_hot"}, None, [["a", "b"], ["c", "c"]]),
    ("Hashing", {"num_bins": 6, "output_mode": "count"}, None, [["a", "b"], ["c", "c"]]),
    ("Hashing", {"num_bins": 6, "output_mode": "one_hot"}, None, [["a"], ["d"]]),
    ("Discretization", {"bin_boundaries": [0.0, 1.0, 2.5]}, None,
     [[-1.5, 0.0, 0.5], [1.0, 2.5, 9.0]]),
    ("Discretization", {"bin_boundaries": [0.0, 1.0], "output_mode": "one_hot"}, None,
     [-1.0, 0.5, 3.0]),
    ("Discretization", {"bin_boundaries": [0.0, 1.0], "output_mode": "multi_hot"}, None,
     [[-1.0, 0.5], [3.0, 3.0]]),
    ("Discretization", {"bin_boundaries": [0.0, 1.0], "output_mode": "count"}, None,
     [[-1.0, 0.5], [3.0, 3.0]]),
    ("Discretization", {"num_bins": 4}, "normal", [[-1.0, -0.1, 0.0, 0.2, 0.9, 3.0]]),
    ("Discretization", {"num_bins": 5, "epsilon": 0.05}, "normal",
     [[-1.0, -0.1, 0.0, 0.2, 0.9, 3.0]]),
    ("TextVectorization", {}, TEXTS, TEXTS),
    ("TextVectorization", {"output_sequence_length": 4}, TEXTS, TEXTS),
    ("TextVectorization", {"max_tokens": 6, "output_sequence_length": 8}, TEXTS, TEXTS),
    ("TextVectorization", {"output_mode": "multi_hot"}, TEXTS, TEXTS),
    ("TextVectorization", {"output_mode": "count"}, TEXTS, TEXTS),
    ("TextVectorization", {"output_mode": "tf_idf"}, TEXTS, TEXTS),
    ("TextVectorization", {"ngrams": 2, "output_mode": "count"}, TEXTS, TEXTS),
    ("TextVectorization", {"standardize": "lower", "split": "character"}, TEXTS, TEXTS),
    ("TextVectorization", {"standardize": None}, TEXTS, [[t] for t in TEXTS]),
    ("TextVectorization", {"vocabulary": ["cat", "the", "dog"]}, None, TEXTS),
]


def _plain(value):
    """A layer output as JSON: strings decoded, numbers as float64."""
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        return [[_plain(x) for x in arr]] if arr.ndim == 0 else [
            _plain(x) if np.ndim(x) else (x.decode() if isinstance(x, bytes) else str(x))
            for x in arr]
    return arr.astype(np.float64).tolist()


def _adapt_data(adapt):
    if isinstance(adapt, str):  # three batches of normal values, adapted batch by batch
        rng = np.random.default_rng(3)
        return [rng.normal(size=(40,)).astype(np.float32) for _ in range(3)]
    return adapt


def preprocessing() -> dict:
    """Lookup, hashing, discretization and text layers: outputs, dtypes and vocabularies."""
    import keras

    cases = []
    for cls, config, adapt, inputs in PREPROCESSING_CASES:
        layer = getattr(keras.layers, cls)(**config)
        if adapt is not None:
            layer.adapt(_adapt_data(adapt))
        out = layer(np.array(inputs))
        case = {"class": cls, "config": config, "adapt": _adapt_data(adapt) if isinstance(
            adapt, str) else adapt, "inputs": inputs, "output": _plain(out),
                "dtype": str(np.asarray(out).dtype)}
        if hasattr(layer, "get_vocabulary"):
            case["vocabulary"] = [v.decode() if isinstance(v, bytes) else
                                  v.item() if hasattr(v, "item") else v
                                  for v in layer.get_vocabulary()]
        if cls == "Discretization":
            case["bin_boundaries"] = _floats(layer.bin_boundaries)
        cases.append(case)
    for case in cases:
        if isinstance(case["adapt"], list) and case["adapt"] and isinstance(
                case["adapt"][0], np.ndarray):
            case["adapt"] = [_floats(b) for b in case["adapt"]]
    crossing = []
    for config, inputs in CROSSING_CASES:
        out = keras.layers.HashedCrossing(**config)(tuple(np.array(x) for x in inputs))
        crossing.append({"config": config, "inputs": inputs, "output": _plain(out)})
    pipeline = keras.layers.Pipeline([keras.layers.StringLookup(vocabulary=VOCAB),
                                      keras.layers.CategoryEncoding(6, output_mode="count")])
    return {"keras_version": keras.__version__, "cases": cases, "crossing": crossing,
            "pipeline": {"inputs": WORDS, "output": _plain(pipeline(np.array(WORDS)))}}


CROSSING_CASES = [
    ({"num_bins": 97}, [["a", "b", "cc"], [1, 2, -3]]),
    ({"num_bins": 1000}, [[[5], [6]], [[1], [2]], [["x"], ["a longer string value"]]]),
    ({"num_bins": 5, "output_mode": "one_hot"}, [["a", "b"], ["x", "y"]]),
]


AFFINE_TRANSFORMS = [
    [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    [0.8, -0.3, 2.5, 0.4, 1.1, -3.2, 0.0, 0.0],
    [1.3, 0.2, -4.0, -0.2, 0.7, 5.5, 0.0, 0.0],
    [0.9, 0.1, 1.0, 0.05, 0.95, 0.5, 0.01, -0.02],
]

IMAGE_CASES = [  # (Keras class, constructor arguments, input shape)
    ("Resizing", {"height": 5, "width": 4}, (2, 7, 9, 3)),
    ("Resizing", {"height": 11, "width": 13}, (2, 7, 9, 3)),
    ("Resizing", {"height": 4, "width": 12, "interpolation": "nearest"}, (2, 7, 9, 3)),
    ("Resizing", {"height": 10, "width": 5, "interpolation": "nearest"}, (7, 9, 3)),
    ("Resizing", {"height": 4, "width": 4, "crop_to_aspect_ratio": True}, (2, 7, 9, 3)),
    ("CenterCrop", {"height": 4, "width": 5}, (2, 7, 9, 3)),
    ("CenterCrop", {"height": 3, "width": 8}, (6, 9, 1)),
    ("CenterCrop", {"height": 9, "width": 5}, (2, 7, 9, 3)),
    ("RandomCrop", {"height": 4, "width": 5, "seed": 1}, (2, 7, 9, 3)),
    ("RandomRotation", {"factor": 0.2, "seed": 1}, (2, 7, 9, 3)),
    ("RandomZoom", {"height_factor": 0.3, "seed": 1}, (2, 7, 9, 3)),
    ("RandomTranslation", {"height_factor": 0.2, "width_factor": (-0.1, 0.3), "seed": 1},
     (2, 7, 9, 3)),
    ("RandomContrast", {"factor": 0.4, "seed": 1}, (2, 7, 9, 3)),
    ("RandomBrightness", {"factor": 0.3, "seed": 1}, (2, 7, 9, 3)),
    ("RandomGrayscale", {"factor": 0.5, "seed": 1}, (2, 7, 9, 3)),
    ("RandomInvert", {"factor": 0.5, "seed": 1}, (2, 7, 9, 3)),
    ("Solarization", {"addition_factor": 0.2, "threshold_factor": 0.5, "seed": 1},
     (2, 7, 9, 3)),
    ("RandomPosterization", {"factor": 3, "seed": 1}, (2, 7, 9, 3)),
    ("AutoContrast", {}, (2, 7, 9, 3)),
    ("RandomColorDegeneration", {"factor": 0.5, "seed": 1}, (2, 7, 9, 3)),
    ("RandomSharpness", {"factor": 0.5, "seed": 1}, (2, 7, 9, 3)),
]

# Training-mode cases whose draws cannot change the result.
IMAGE_TRAINING_CASES = [
    ("RandomGrayscale", {"factor": 1.0}, (2, 7, 9, 3)),
    ("RandomInvert", {"factor": (1.0, 1.0)}, (2, 7, 9, 3)),
    ("RandomInvert", {"factor": (1.0, 1.0), "value_range": (0, 1)}, (2, 7, 9, 3)),
    ("RandomPosterization", {"factor": (4, 4)}, (2, 7, 9, 3)),
    ("RandomPosterization", {"factor": (2, 2), "value_range": (0, 1)}, (2, 7, 9, 3)),
    ("AutoContrast", {}, (2, 7, 9, 3)),
    ("AutoContrast", {"value_range": (0, 1)}, (2, 7, 9, 3)),
    ("Solarization", {"threshold_factor": (0.0, 0.0)}, (2, 7, 9, 3)),
    ("Solarization", {"threshold_factor": (0.0, 0.0), "value_range": (0, 1)}, (2, 7, 9, 3)),
    ("RandomColorDegeneration", {"factor": (0.4, 0.4)}, (2, 7, 9, 3)),
    ("RandomSharpness", {"factor": (0.3, 0.3)}, (2, 7, 9, 3)),
    ("RandomSharpness", {"factor": (0.8, 0.8), "value_range": (0, 1)}, (2, 7, 9, 3)),
]


def image() -> dict:
    """Image layers' inference outputs, affine_transform per fill mode, Keras's matrices."""
    import keras

    rng = np.random.default_rng(21)
    cases = []
    for cls, config, shape in IMAGE_CASES:
        x = rng.uniform(0, 255, size=shape).astype(np.float32)
        out = getattr(keras.layers, cls)(**config)(x, training=False)
        cases.append({"class": cls, "config": config, "input": _floats(x),
                      "output": _floats(out)})
    for cls, config, shape in IMAGE_TRAINING_CASES:
        high = config.get("value_range", (0, 255))[1]
        x = rng.uniform(0, high, size=shape).astype(np.float32)
        out = getattr(keras.layers, cls)(**config)(x, training=True)
        cases.append({"class": cls, "config": config, "input": _floats(x), "training": True,
                      "output": _floats(out)})
    images = rng.uniform(0, 1, size=(2, 6, 7, 2)).astype(np.float32)
    affine = []
    for mode in ("reflect", "wrap", "constant", "nearest"):
        for interpolation in ("bilinear", "nearest"):
            out = keras.ops.image.affine_transform(
                images, np.array(AFFINE_TRANSFORMS[1:3], np.float32), interpolation=interpolation,
                fill_mode=mode, fill_value=0.5)
            affine.append({"fill_mode": mode, "interpolation": interpolation,
                           "transforms": AFFINE_TRANSFORMS[1:3], "output": _floats(out)})
            out = keras.ops.image.affine_transform(
                images, np.array(AFFINE_TRANSFORMS[::3], np.float32), interpolation=interpolation,
                fill_mode=mode, fill_value=0.5)
            affine.append({"fill_mode": mode, "interpolation": interpolation,
                           "transforms": AFFINE_TRANSFORMS[::3], "output": _floats(out)})
    angles = np.array([30.0, -45.0, 7.5], np.float32)
    zeros, ones = np.zeros(3, np.float32), np.ones(3, np.float32)
    rotation = keras.layers.RandomRotation(0.1)._compute_affine_matrix(
        0.5, 0.5, angles, zeros, zeros, ones, zeros, zeros, 6, 7)
    zooms = np.array([[0.8, 1.2], [1.1, 1.1], [1.5, 0.7]], np.float32)
    zoom = keras.layers.RandomZoom(0.1)._get_zoom_matrix(zooms, 6, 7)
    shifts = np.array([[1.5, -2.0], [0.0, 3.0], [-1.25, 0.5]], np.float32)
    translation = keras.layers.RandomTranslation(0.1, 0.1)._get_translation_matrix(shifts)
    return {"keras_version": keras.__version__, "cases": cases, "images": _floats(images),
            "affine": affine,
            "matrices": {"angles": _floats(angles), "rotation": _floats(rotation),
                         "zooms": _floats(zooms), "zoom": _floats(zoom),
                         "shifts": _floats(shifts), "translation": _floats(translation),
                         "height": 6, "width": 7}}


# (Keras class, constructor arguments, input shape, fixed transformation or None). With a
# transformation the fixture holds `transform_images` (and MixUp's `transform_labels`)
# for it; without, a training call whose draws cannot change the result.
AUGMENT_CASES = [
    ("RandomHue", {"factor": 0.5}, (3, 5, 6, 3), {"factor": [0.2, -0.45, 0.05]}),
    ("RandomHue", {"factor": 0.5, "value_range": (0, 1)}, (3, 5, 6, 3),
     {"factor": [-0.1, 0.3, 0.49]}),
    ("RandomHue", {"factor": (1.0, 1.0)}, (2, 5, 6, 3), None),
    ("RandomSaturation", {"factor": 0.5}, (3, 5, 6, 3), {"factor": [0.5, 2.0, 0.0]}),
    ("RandomSaturation", {"factor": (0.8, 0.8), "value_range": (0, 1)}, (2, 5, 6, 3), None),
    ("RandomColorJitter", {"brightness_factor": (0.1, 0.1), "saturation_factor": (0.7, 0.7),
                           "hue_factor": (1.0, 1.0)}, (2, 5, 6, 3), None),
    ("RandomColorJitter", {"value_range": (0, 1), "saturation_factor": (0.3, 0.3)},
     (2, 5, 6, 3), None),
    ("RandomGaussianBlur", {"factor": (1.0, 1.0), "sigma": (0.8, 0.8)}, (2, 7, 6, 3), None),
    ("RandomGaussianBlur", {"kernel_size": 5}, (3, 7, 6, 2),
     {"should_apply_blur": [True, False, True], "blur_factor": [0.7, 1.6]}),
    ("Equalization", {}, (2, 7, 6, 3), None),
    ("Equalization", {"value_range": (0, 1), "bins": 16}, (2, 7, 6, 3), None),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"tile_grid_size": (2, 3)},
     (2, 9, 10, 3), None),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"value_range": (0, 1), "clip_limit": 2.0,
                                                      "tile_grid_size": (3, 2)},
     (1, 12, 8, 2), None),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"clip_limit": 0.0}, (1, 16, 16, 1),
     None),
    ("MixUp", {}, (4, 5, 6, 3), {"mix_weight": [0.9, 0.3, 0.5, 0.05],
                                 "permutation_order": [2, 0, 3, 1]}),
    ("CutMix", {"seed": 3}, (4, 7, 6, 3), "draw"),
    ("RandomShear", {"x_factor": 0.3, "y_factor": 0.2}, (3, 7, 6, 2),
     {"shear_factor": [[0.3, -0.1], [-0.25, 0.2], [0.0, 0.15]]}),
    ("RandomShear", {"x_factor": 0.5, "fill_mode": "constant", "interpolation": "nearest",
                     "fill_value": 9.0}, (2, 7, 6, 2), {"shear_factor": [[0.4, 0.0],
                                                                       [-0.45, 0.0]]}),
    ("RandomPerspective", {"factor": (1.0, 1.0), "scale": 0.6, "seed": 3}, (3, 8, 7, 2),
     "draw"),
    ("RandomPerspective", {"factor": (1.0, 1.0), "interpolation": "nearest",
                           "fill_value": 5.0, "seed": 4}, (2, 8, 7, 2), "draw"),
    ("RandomErasing", {"factor": (1.0, 1.0), "seed": 3}, (3, 7, 6, 3), "draw"),
    ("RandomErasing", {"factor": (1.0, 1.0), "fill_value": [10.0, 20.0, 30.0], "seed": 4},
     (3, 7, 6, 3), "draw"),
]

BOXES = {"x0": [0.0, 1.5, 2.2], "x1": [3.0, 4.5, 6.0], "y0": [0.5, 0.0, 3.9],
         "y1": [2.5, 7.0, 4.1]}


def augment() -> dict:
    """Augmentation layers: training outputs that cannot vary, and transforms for fixed
    parameters."""
    import keras

    rng = np.random.default_rng(44)
    cases = []
    for cls, config, shape, transformation in AUGMENT_CASES:
        high = config.get("value_range", (0, 255))[1]
        x = rng.uniform(0, high, size=shape).astype(np.float32)
        layer = getattr(keras.layers, cls)(**config)
        case = {"class": cls, "config": config, "input": _floats(x),
                "transformation": transformation}
        if transformation is None:
            case["output"] = _floats(layer(x, training=True))
        elif transformation == "draw":  # Keras's own draw, then its transform
            params = layer.get_random_transformation(x, training=True)
            case["transformation"] = {k: np.asarray(v).tolist() for k, v in params.items()
                                      if k != "input_shape"}
            case["output"] = _floats(layer.transform_images(x, params, training=True))
        else:
            params = {k: np.array(v, np.float32 if isinstance(v[0], float) else None)
                      for k, v in transformation.items()}
            case["output"] = _floats(layer.transform_images(x, params, training=True))
        if cls in ("MixUp", "CutMix"):
            labels = np.eye(3, dtype=np.float32)[rng.integers(0, 3, shape[0])]
            case["labels"] = _floats(labels)
            case["labels_output"] = _floats(layer.transform_labels(labels, params,
                                                                   training=True))
        cases.append(case)
    corners = tuple(np.array(BOXES[k], np.float32) for k in ("x0", "x1", "y0", "y1"))
    masks = keras.layers.CutMix()._generate_batch_mask((3, 5, 7, 2), corners)
    if isinstance(masks, tuple):
        masks = masks[0]
    return {"keras_version": keras.__version__, "cases": cases, "boxes": BOXES,
            "box_masks": np.asarray(masks).tolist()}


def mixed_sequence_model(keras):
    """LSTM, GRU and attention layers under the global policy; every output."""
    x = keras.Input((5, 3))
    lstm = keras.layers.LSTM(4, return_sequences=True)(x)
    gru = keras.layers.GRU(4, return_sequences=True)(lstm)
    attention = keras.layers.MultiHeadAttention(2, 2)(gru, gru)
    pooled = keras.layers.GlobalAveragePooling1D()(attention)
    out = keras.layers.Dense(2, dtype="float32")(pooled)
    return keras.Model(x, [lstm, gru, attention, out])


def mixed_precision() -> dict:
    """A model under the 'mixed_float16' policy: dtypes, outputs, loss, gradients, the
    optimizer compile chooses and the weights after three full-batch steps of fit."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(55)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential([
            keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(), keras.layers.Dense(4),
            keras.layers.Activation("softmax", dtype="float32")])
        weights = [rng.normal(size=w.shape).astype(np.float32) * 0.5 for w in model.weights]
        model.set_weights(weights)
        x = rng.normal(size=(8, 6)).astype(np.float32)
        y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 8)]
        loss_fn = keras.losses.CategoricalCrossentropy()
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = loss_fn(y, out)
        grads = tape.gradient(loss, model.trainable_weights)
        hidden = model.layers[0](x)
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
        sequence = mixed_sequence_model(keras)
        sequence_weights = [rng.normal(size=w.shape).astype(np.float32) * 0.5
                            for w in sequence.weights]
        sequence.set_weights(sequence_weights)
        sequence_x = rng.normal(size=(2, 5, 3)).astype(np.float32)
        sequence_out = sequence(sequence_x)
        return {"sequence": {"weights": [_floats(w) for w in sequence_weights],
                             "x": _floats(sequence_x),
                             "outputs": [_floats(t) for t in sequence_out],
                             "dtypes": [str(t.dtype) for t in sequence.outputs]},
                "keras_version": keras.__version__, "weights": [_floats(w) for w in weights],
                "x": _floats(x), "y": _floats(y),
                "variable_dtypes": [w.dtype for w in model.weights],
                "hidden_dtype": str(hidden.dtype.name), "hidden": _floats(hidden),
                "output_dtype": str(out.dtype.name), "output": _floats(out),
                "loss": float(loss), "grads": [_floats(g) for g in grads],
                "optimizer": type(model.optimizer).__name__,
                "history": [float(v) for v in history.history["loss"]],
                "weights_after_fit": [_floats(w) for w in model.get_weights()]}
    finally:
        keras.mixed_precision.set_global_policy("float32")


def summary_models(keras) -> dict:
    """The models of the summary fixture, by case name (tests/test_models.py builds the
    same ones with distflow)."""
    class TwoDense(keras.Model):
        def __init__(self):
            super().__init__()
            self.first, self.second = keras.layers.Dense(4), keras.layers.Dense(2)

        def call(self, x):
            return self.second(self.first(x))

    called = TwoDense()
    called(np.zeros((2, 3), np.float32))
    return {"subclassed_unbuilt": TwoDense(), "subclassed_called": called,
            "sequential_unbuilt": keras.Sequential([keras.layers.Dense(3)]),
            "sequential": keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                                            keras.layers.Dense(2)])}


def summaries() -> dict:
    """`summary()` rows (layer type, output shape, parameter count) and totals."""
    import keras

    cases = {}
    for name, model in summary_models(keras).items():
        lines = []
        model.summary(print_fn=lambda line, *args, out=lines, **kwargs: out.append(line))
        text = "\n".join(lines)
        rows = [[c.strip() for c in line.split("\u2502")[1:-1]]
                for line in text.splitlines() if line.count("\u2502") == 4]
        rows = [[row[0][row[0].index("("):], *row[1:]] for row in rows]
        totals = [line.strip() for line in text.splitlines() if "params:" in line]
        cases[name] = {"rows": rows, "totals": totals}
    return {"keras_version": keras.__version__, "cases": cases}


DATASET_DIR = OUT / "datasets"


def _python2_pickler():
    """A protocol-2 pickler writing bytes as Python 2's str opcodes, as CIFAR's files are."""
    import pickle
    import struct

    class Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_bytes(self, obj: bytes) -> None:
            if len(obj) < 256:
                self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
            else:
                self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
            self.memoize(obj)
        dispatch[bytes] = save_bytes
    return Pickler


_Python2Pickler = _python2_pickler()


def _write_dataset_files() -> None:
    """Small files in the real formats: Keras's .npz files and CIFAR's protocol-2 pickles."""
    rng = np.random.default_rng(5)
    DATASET_DIR.mkdir(parents=True, exist_ok=True)

    def seqs(n: int) -> np.ndarray:
        out = np.empty(n, dtype=object)
        out[:] = [list(map(int, rng.integers(1, 30, size=rng.integers(2, 9)))) for _ in range(n)]
        return out
    np.savez(DATASET_DIR / "imdb.npz", x_train=seqs(12), y_train=rng.integers(0, 2, 12),
             x_test=seqs(8), y_test=rng.integers(0, 2, 8))
    np.savez(DATASET_DIR / "reuters.npz", x=seqs(15), y=rng.integers(0, 46, 15))
    np.savez(DATASET_DIR / "boston_housing.npz", x=rng.normal(size=(20, 13)) * 10,
             y=rng.uniform(5, 50, size=20))
    for name, files, keys in (("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)]
                               + ["test_batch"], ("labels",)),
                              ("cifar-100-python", ["train", "test"],
                               ("fine_labels", "coarse_labels"))):
        (DATASET_DIR / name).mkdir(exist_ok=True)
        for file in files:
            n = 3
            batch = {b"batch_label": f"{file} of {name}".encode(),
                     b"data": rng.integers(0, 256, size=(n, 3072)).astype(np.uint8),
                     b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
            for key in keys:
                batch[key.encode()] = [int(v) for v in rng.integers(0, 100, n)]
            with open(DATASET_DIR / name / file, "wb") as f:
                _Python2Pickler(f, protocol=2).dump(batch)
    np.savez(DATASET_DIR / "california_housing.npz", x=rng.normal(size=(30, 8)),
             y=rng.uniform(0.5, 5, size=30))


DATASET_CASES = [  # (module, load_data arguments)
    ("imdb", {}), ("imdb", {"num_words": 12, "skip_top": 3}), ("imdb", {"maxlen": 7}),
    ("imdb", {"start_char": None, "oov_char": None, "index_from": 0, "num_words": 20}),
    ("imdb", {"seed": 7, "index_from": 5}),
    ("reuters", {}), ("reuters", {"num_words": 15, "test_split": 0.3, "maxlen": 8}),
    ("reuters", {"oov_char": None, "skip_top": 5, "seed": 1}),
    ("boston_housing", {}), ("boston_housing", {"test_split": 0.35, "seed": 3}),
    ("california_housing", {}),
    ("california_housing", {"version": "small", "test_split": 0.25, "seed": 9}),
]


def datasets() -> dict:
    """Keras's loaders run on the small files (their download step pointed at them)."""
    import keras
    from keras.src.datasets import boston_housing, california_housing, cifar, imdb, reuters

    _write_dataset_files()
    modules = {"imdb": imdb, "reuters": reuters, "boston_housing": boston_housing,
               "california_housing": california_housing}
    cases = []
    for module, kwargs in DATASET_CASES:
        modules[module].get_file = lambda *a, _m=module, **k: str(DATASET_DIR / f"{_m}.npz")
        (x_train, y_train), (x_test, y_test) = modules[module].load_data(**kwargs)
        plain = [[list(map(int, s)) for s in x] if x.dtype == object else _floats(x)
                 for x in (x_train, x_test)]
        cases.append({"module": module, "kwargs": kwargs, "x_train": plain[0],
                      "y_train": np.asarray(y_train).tolist(), "x_test": plain[1],
                      "y_test": np.asarray(y_test).tolist(), "y_dtype": str(y_train.dtype),
                      "x_dtype": str(x_train.dtype)})
    batches = []
    for path, key in (("cifar-10-batches-py/data_batch_2", "labels"),
                      ("cifar-100-python/test", "coarse_labels")):
        data, labels = cifar.load_batch(str(DATASET_DIR / path), label_key=key)
        batches.append({"path": path, "label_key": key, "data": np.asarray(data).tolist(),
                        "labels": list(labels)})
    return {"keras_version": keras.__version__, "cases": cases, "cifar_batches": batches}


VOLUME, SEQ = (1, 4, 5, 6, 2), (2, 9, 3)


def _layer(class_name: str, **config) -> dict:
    """A layer argument of a case (a cell, a wrapped layer): built by `_instantiate`."""
    return {"class_name": class_name, "config": config}


def _instantiate(layers, value):
    """`value` with every `_layer(...)` dict replaced by that layer of `layers`."""
    if isinstance(value, dict) and set(value) == {"class_name", "config"}:
        return getattr(layers, value["class_name"])(**_instantiate(layers, value["config"]))
    if isinstance(value, dict):
        return {k: _instantiate(layers, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_instantiate(layers, v) for v in value]
    return value

LAYER_CASES = [  # (Keras class, constructor arguments, input shapes, call arguments)
    ("Conv3D", {"filters": 4, "kernel_size": 3}, [VOLUME], {}),
    ("Conv3D", {"filters": 2, "kernel_size": (2, 3, 2), "strides": (1, 2, 2), "padding": "same",
                "activation": "relu"}, [VOLUME], {}),
    ("Conv3D", {"filters": 2, "kernel_size": 2, "dilation_rate": (2, 1, 2), "use_bias": False},
     [VOLUME], {}),
    ("Conv3DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2}, [(1, 3, 3, 2, 2)], {}),
    ("Conv3DTranspose", {"filters": 3, "kernel_size": (2, 3, 3), "strides": (1, 2, 2),
                         "padding": "same"}, [(1, 3, 3, 2, 2)], {}),
    ("Conv1DTranspose", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"},
     [SEQ], {}),
    ("Conv1DTranspose", {"filters": 2, "kernel_size": 4, "strides": 3}, [SEQ], {}),
    ("Conv1DTranspose", {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, [SEQ], {}),
    ("DepthwiseConv1D", {"kernel_size": 3, "depth_multiplier": 2}, [SEQ], {}),
    ("DepthwiseConv1D", {"kernel_size": 3, "strides": 2, "padding": "same"}, [SEQ], {}),
    ("SeparableConv1D", {"filters": 5, "kernel_size": 3, "depth_multiplier": 2,
                         "padding": "same"}, [SEQ], {}),
    ("MaxPooling3D", {}, [VOLUME], {}),
    ("MaxPooling3D", {"pool_size": (2, 2, 3), "strides": (1, 2, 1), "padding": "same"},
     [VOLUME], {}),
    ("AveragePooling3D", {"pool_size": 2}, [VOLUME], {}),
    ("AveragePooling3D", {"pool_size": (3, 2, 2), "strides": 2, "padding": "same"}, [VOLUME], {}),
    ("GlobalAveragePooling3D", {}, [VOLUME], {}),
    ("GlobalMaxPooling3D", {"keepdims": True}, [VOLUME], {}),
    ("UpSampling3D", {"size": (1, 2, 3)}, [VOLUME], {}),
    ("ZeroPadding3D", {"padding": ((1, 0), (0, 2), (1, 1))}, [VOLUME], {}),
    ("Cropping3D", {"cropping": ((1, 0), (1, 1), (0, 2))}, [VOLUME], {}),
    ("SpatialDropout3D", {"rate": 0.5}, [VOLUME], {}),
    ("GroupNormalization", {"groups": 3}, [(2, 4, 5, 6)], {}),
    ("GroupNormalization", {"groups": -1, "epsilon": 0.01}, [SEQ], {}),
    ("GroupNormalization", {"groups": 2, "axis": 1, "center": False}, [(2, 4, 3)], {}),
    ("UnitNormalization", {}, [SEQ], {}),
    ("UnitNormalization", {"axis": (1, 2)}, [SEQ], {}),
    ("RMSNormalization", {}, [SEQ], {}),
    ("RMSNormalization", {"axis": (1, 2), "epsilon": 0.1}, [SEQ], {}),
    ("AlphaDropout", {"rate": 0.3}, [SEQ], {}),
    ("Attention", {}, [(2, 4, 3), SEQ], {}),
    ("Attention", {"use_scale": True}, [(2, 4, 3), SEQ, (2, 9, 3)], {}),
    ("Attention", {"use_scale": True, "score_mode": "concat"}, [(2, 4, 3), SEQ], {}),
    ("Attention", {}, [(2, 9, 3), SEQ], {"use_causal_mask": True}),
    ("Attention", {}, [(2, 4, 3), SEQ], {"mask": "qv"}),
    ("AdditiveAttention", {}, [(2, 4, 3), SEQ], {}),
    ("AdditiveAttention", {"use_scale": False}, [(2, 4, 3), SEQ, (2, 9, 3)], {"mask": "qv"}),
    ("AdaptiveAveragePooling1D", {"output_size": 4}, [SEQ], {}),
    ("AdaptiveMaxPooling1D", {"output_size": 5}, [SEQ], {}),
    ("AdaptiveAveragePooling2D", {"output_size": (3, 4)}, [(2, 7, 9, 2)], {}),
    ("AdaptiveMaxPooling2D", {"output_size": 3}, [(2, 7, 9, 2)], {}),
    ("AdaptiveAveragePooling3D", {"output_size": (2, 3, 4)}, [VOLUME], {}),
    ("AdaptiveMaxPooling3D", {"output_size": (3, 2, 4)}, [VOLUME], {}),
    ("ReversibleEmbedding", {"input_dim": 7, "output_dim": 3}, [SEQ], {"reverse": True}),
    ("ReversibleEmbedding", {"input_dim": 7, "output_dim": 3, "tie_weights": False,
                             "logit_soft_cap": 1.5}, [SEQ], {"reverse": True}),
    ("RNN", {"cell": _layer("StackedRNNCells", cells=[
        _layer("LSTMCell", units=4), _layer("GRUCell", units=2),
        _layer("SimpleRNNCell", units=3)]), "return_sequences": True}, [SEQ], {}),
    ("RNN", {"cell": _layer("StackedRNNCells", cells=[
        _layer("LSTMCell", units=3), _layer("LSTMCell", units=2, activation="relu")]),
        "go_backwards": True}, [SEQ], {}),
    ("ConvLSTM2D", {"filters": 3, "kernel_size": 3, "padding": "same",
                    "return_sequences": True}, [(2, 3, 6, 5, 2)], {}),
    ("ConvLSTM2D", {"filters": 2, "kernel_size": (2, 3), "strides": 2, "go_backwards": True,
                    "use_bias": False}, [(2, 3, 6, 5, 2)], {}),
    ("ConvLSTM1D", {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "activation": "relu",
                    "return_sequences": True}, [(2, 4, 7, 2)], {}),
    ("ConvLSTM3D", {"filters": 2, "kernel_size": 2, "padding": "same"}, [(1, 3, 4, 4, 3, 2)],
     {}),
    ("SpectralNormalization", {"layer": _layer("Dense", units=3)}, [(2, 4)],
     {"training": True}),
    ("SpectralNormalization", {"layer": _layer("Conv2D", filters=2, kernel_size=3),
                               "power_iterations": 3}, [(1, 5, 5, 2)], {"training": True}),
    ("SpectralNormalization", {"layer": _layer("Dense", units=2)}, [(2, 4)],
     {"training": False}),
    ("GroupQueryAttention", {"head_dim": 2, "num_query_heads": 4, "num_key_value_heads": 2},
     [(2, 4, 3), SEQ], {"unpack": True}),
    ("GroupQueryAttention", {"head_dim": 3, "num_query_heads": 2, "num_key_value_heads": 1,
                             "use_bias": False, "use_gate": True}, [(2, 4, 3), SEQ, SEQ],
     {"unpack": True}),
    ("GroupQueryAttention", {"head_dim": 2, "num_query_heads": 3, "num_key_value_heads": 3,
                             "sliding_window": 3}, [SEQ, SEQ],
     {"unpack": True, "use_causal_mask": True}),
]


def _masks(shapes: list) -> list:
    return [np.arange(s[1])[None, :].repeat(s[0], 0) < s[1] - 1 - np.arange(s[0])[:, None]
            for s in shapes[:2]]


def layers() -> dict:
    """Layer outputs for fixed weights and inputs, and the gradients of sum(out * cotangent)."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(33)
    cases = []
    for cls, config, shapes, call_kwargs in LAYER_CASES:
        inputs = [tf.constant(rng.normal(size=s).astype(np.float32)) for s in shapes]
        layer = getattr(keras.layers, cls)(**_instantiate(keras.layers, config))
        kwargs = dict(call_kwargs)
        unpack = kwargs.pop("unpack", False)
        if unpack:
            layer.build(*shapes)
        else:
            layer.build([tuple(s) for s in shapes] if len(shapes) > 1 else shapes[0])
        weights = [rng.normal(size=w.shape).astype(np.float32) * 0.5 for w in layer.weights]
        layer.set_weights(weights)
        if kwargs.get("mask") == "qv":
            kwargs["mask"] = [tf.constant(m) for m in _masks(shapes)]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(inputs)
            if unpack:
                out = layer(*inputs, **kwargs)
            else:
                out = layer(inputs if len(inputs) > 1 else inputs[0], **kwargs)
            cotangent = rng.normal(size=out.shape).astype(np.float32)
            total = tf.reduce_sum(out * cotangent)
        grads = tape.gradient(total, [*inputs, *layer.trainable_weights])
        cases.append({"class": cls, "config": config, "call": call_kwargs,
                      "inputs": [_floats(x) for x in inputs],
                      "weights": [_floats(w) for w in weights],
                      "weight_names": [w.name for w in layer.weights],
                      "weights_after": [_floats(w) for w in layer.get_weights()],
                      "output": _floats(out), "cotangent": _floats(cotangent),
                      "grads": [None if g is None else _floats(g) for g in grads]})
    return {"keras_version": keras.__version__, "cases": cases}


# (Keras class, constructor arguments, call arguments): recurrent layers on (2, 6, 3)
# inputs, and MultiHeadAttention as self-attention (layer(x, x)) on (2, 5, 4) inputs.
# "mask" (a padding mask) and "attention_mask" take arrays written into the fixture.
SEQUENCE_CASES = [
    ("LSTM", {"units": 4}, {}),
    ("LSTM", {"units": 4, "return_sequences": True, "go_backwards": True}, {}),
    ("LSTM", {"units": 3, "return_state": True, "use_bias": False}, {}),
    ("LSTM", {"units": 3, "return_sequences": True, "unit_forget_bias": False},
     {"mask": True}),
    ("GRU", {"units": 4}, {}),
    ("GRU", {"units": 4, "return_sequences": True, "return_state": True,
             "go_backwards": True}, {}),
    ("GRU", {"units": 3, "reset_after": False}, {}),
    ("GRU", {"units": 3, "use_bias": False, "return_sequences": True}, {"mask": True}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3}, {}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "value_dim": 2, "output_shape": 5},
     {"use_causal_mask": True}),
    ("MultiHeadAttention", {"num_heads": 3, "key_dim": 2}, {"attention_mask": True}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "use_bias": False}, {}),
]


def sequences() -> dict:
    """Recurrent and self-attention layers: every output for fixed weights and inputs, and
    the gradients of sum(output * cotangent) over all outputs."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(34)
    cases = []
    for cls, config, call in SEQUENCE_CASES:
        attention = cls == "MultiHeadAttention"
        x = rng.normal(size=(2, 5, 4) if attention else (2, 6, 3)).astype(np.float32)
        layer = getattr(keras.layers, cls)(**config)
        kwargs = {}
        if call.get("mask"):
            steps = x.shape[1]  # the first sequence's last two steps are padding
            kwargs["mask"] = np.arange(steps)[None] < np.array([[steps - 2], [steps]])
        if call.get("attention_mask"):
            kwargs["attention_mask"] = rng.random((2, 5, 5)) > 0.3
        kwargs.update({k: v for k, v in call.items() if k not in ("mask", "attention_mask")})
        xt = tf.constant(x)
        layer(xt, xt) if attention else layer(xt)  # builds the weights
        weights = [rng.normal(size=w.shape).astype(np.float32) * 0.5 for w in layer.weights]
        layer.set_weights(weights)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            outs = layer(xt, xt, **kwargs) if attention else layer(xt, **kwargs)
            outs = outs if isinstance(outs, list | tuple) else [outs]
            cotangents = [rng.normal(size=o.shape).astype(np.float32) for o in outs]
            total = sum(tf.reduce_sum(o * c) for o, c in zip(outs, cotangents))
        grads = tape.gradient(total, [xt, *layer.trainable_weights])
        cases.append({"class": cls, "config": config, "call": call, "input": _floats(x),
                      "kwargs": {k: np.asarray(v).tolist() for k, v in kwargs.items()},
                      "weights": [_floats(w) for w in weights],
                      "outputs": [_floats(o) for o in outs],
                      "cotangents": [_floats(c) for c in cotangents],
                      "grads": [None if g is None else _floats(g) for g in grads]})
    return {"keras_version": keras.__version__, "cases": cases}


FIXTURES = {"activations": activations, "preprocessing": preprocessing, "image": image,
            "datasets": datasets, "layers": layers, "augment": augment,
            "mixed_precision": mixed_precision, "summaries": summaries, "sequences": sequences}


if __name__ == "__main__":
    main(sys.argv[1:], FIXTURES)
