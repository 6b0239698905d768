"""Writes the fixtures of Keras's utilities (FeatureSpace included), Muon, ScheduleFreeAdamW
and OrthogonalRegularizer.

Needs TensorFlow 2.21 / Keras 3 (CPU), never a dependency of distflow:

    /tmp/tfenv/bin/python tools/make_goldens_utils.py                 # all fixtures
    /tmp/tfenv/bin/python tools/make_goldens_utils.py optimizers_more  # one of them

`directory_datasets` also writes the small image, text and WAV files it reads
(tests/goldens/utils_files/), with TensorFlow's own encoders, so the tests read the
very files Keras read. tests/test_keras_utils.py, test_keras_utils_data.py,
test_feature_space.py, test_bounding_boxes.py and test_optimizers_muon.py recompute every
case with distflow.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
from make_goldens import OUT, STEPS, _floats, main

FILES = OUT / "utils_files"

# (name, Keras class, constructor arguments); variables are named w0..w3 and embedding_w.
OPTIMIZER_CASES = [
    ("muon", "Muon", {"learning_rate": 0.02}),
    ("muon_plain", "Muon", {"learning_rate": 0.02, "nesterov": False, "exclude_layers": ["w3"],
                            "weight_decay": 0.01, "adam_weight_decay": 0.02, "rms_rate": None,
                            "adam_lr_ratio": 0.5, "ns_steps": 3}),
    ("muon_embeddings", "Muon", {"learning_rate": 0.01, "exclude_embeddings": False,
                                 "momentum": 0.9, "weight_decay": None}),
    ("schedule_free_adamw", "ScheduleFreeAdamW", {"learning_rate": 0.01}),
    ("schedule_free_adamw_warmup", "ScheduleFreeAdamW", {"learning_rate": 0.02, "beta_1": 0.8,
                                                         "warmup_steps": 4,
                                                         "weight_decay": 0.05}),
]
VARIABLES = [("w0", (3, 4)), ("w1", (4,)), ("w2", (2, 3, 2)), ("w3", (5, 3)),
             ("embedding_w", (4, 2))]


def optimizers_more() -> dict:
    """10-step trajectories of five named variables (matrices, a vector, a rank-3 tensor)."""
    import keras

    rng = np.random.default_rng(1515)
    initial = [rng.normal(size=s).astype(np.float32) for _, s in VARIABLES]
    grads = [[rng.normal(size=s).astype(np.float32) for _, s in VARIABLES] for _ in range(STEPS)]
    cases = []
    for name, cls, config in OPTIMIZER_CASES:
        opt = getattr(keras.optimizers, cls)(**config)
        variables = [keras.Variable(v, name=n) for v, (n, _) in zip(initial, VARIABLES)]
        trajectory = []
        for step in grads:
            opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step], variables))
            trajectory.append([_floats(np.asarray(v)) for v in variables])
        cases.append({"name": name, "class": cls, "config": config, "trajectory": trajectory})
    return {"keras_version": keras.__version__, "names": [n for n, _ in VARIABLES],
            "initial": [_floats(v) for v in initial],
            "grads": [[_floats(g) for g in step] for step in grads], "cases": cases}


def multi_optimizer() -> dict:
    """MultiOptimizer over an OptimizerMap (exact key, regular expression, default): 10 steps
    of the optimizers_more variables and gradients, with a loss scale factor."""
    import keras

    fixture = optimizers_more()  # same variables and gradients (same generator)
    opt = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
        keras.optimizers.SGD(0.1, momentum=0.5),
        {"w0": keras.optimizers.Adam(0.01), "w[23]": keras.optimizers.RMSprop(0.02)}),
        loss_scale_factor=4.0)
    variables = [keras.Variable(np.array(v, np.float32), name=n)
                 for v, n in zip(fixture["initial"], fixture["names"])]
    trajectory = []
    for step in fixture["grads"]:
        opt.apply([keras.ops.convert_to_tensor(np.array(g, np.float32)) for g in step],
                  variables)
        trajectory.append([_floats(np.asarray(v)) for v in variables])
    return {"keras_version": keras.__version__, "trajectory": trajectory,
            "iterations": int(opt.iterations.numpy()),
            "inner_iterations": [int(o.iterations.numpy()) for o in opt.optimizers],
            "cases": []}


FORMATS = ["xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw", "rel_xyxy", "rel_yxyx",
           "rel_xywh", "rel_center_xywh"]


def bounding_boxes() -> dict:
    """Every keras.utils.bounding_boxes function on fixed boxes."""
    import keras

    bb = keras.utils.bounding_boxes
    rng = np.random.default_rng(31)
    corner = rng.uniform(0, 60, size=(2, 5, 2)).astype(np.float32)
    boxes = np.concatenate([corner, corner + rng.uniform(2, 40, size=(2, 5, 2))], -1) \
        .astype(np.float32)  # (2, 5, 4) xyxy inside a 100 x 120 image
    other = np.concatenate([corner[:, ::-1] + 3, corner[:, ::-1] + 25], -1).astype(np.float32)
    out = {"keras_version": keras.__version__, "boxes": _floats(boxes),
           "other": _floats(other), "convert": {}, "cases": []}
    for source in FORMATS:
        start = np.asarray(bb.convert_format(boxes, "xyxy", source, height=100, width=120))
        out["convert"][source] = {target: _floats(bb.convert_format(
            start, source, target, height=100, width=120)) for target in FORMATS}
    labels = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 0]], np.int32)
    shifted = boxes - np.float32(30)
    clipped = bb.clip_to_image_size({"boxes": shifted, "labels": labels}, 50, 40)
    out["clip"] = {"boxes": _floats(clipped["boxes"]),
                   "labels": np.asarray(clipped["labels"]).tolist(),
                   "rel": _floats(bb.clip_to_image_size(
                       {"boxes": shifted / np.float32(40)}, bounding_box_format="rel_xyxy")
                       ["boxes"])}
    out["crop"] = _floats(bb.crop(boxes, 10, 15, 50, 60))
    out["pad"] = _floats(bb.pad(boxes, 7, 3))
    angle = np.array([30.0, -12.0], np.float32)
    out["affine"] = _floats(bb.affine_transform(
        boxes, angle, np.array([0.1, -0.05], np.float32), np.array([0.0, 0.2], np.float32),
        np.array([1.2, 0.9], np.float32), np.array([5.0, 0.0], np.float32),
        np.array([0.0, -8.0], np.float32), 100, 120))
    out["affine_center"] = _floats(bb.affine_transform(
        boxes, angle, np.zeros(2, np.float32), np.zeros(2, np.float32),
        np.ones(2, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32), 100, 120,
        center_x=0.2, center_y=0.7))
    masked = other.copy()
    masked[0, 1] = -1
    out["iou"] = {"unbatched": _floats(bb.compute_iou(boxes[0], other[1], "xyxy")),
                  "batched": _floats(bb.compute_iou(boxes, other, "xyxy")),
                  "yxyx": _floats(bb.compute_iou(boxes[0], other[0], "yxyx")),
                  "masked": _floats(bb.compute_iou(boxes, masked, "xyxy", use_masking=True,
                                                   mask_val=-2)),
                  "rel": _floats(bb.compute_iou(boxes[1] / 120, other[0] / 120, "rel_xyxy",
                                                image_shape=(100, 120, 3)))}
    out["ciou"] = {"xyxy": _floats(bb.compute_ciou(boxes, other, "xyxy")),
                   "center": _floats(bb.compute_ciou(boxes[0], other[0], "center_xywh"))}
    anchors = np.concatenate([corner[0] + 1, corner[0] + 20], -1).astype(np.float32)
    deltas = bb.encode_box_to_deltas(anchors, boxes[0], "xyxy", "xyxy")
    out["encode"] = {"plain": _floats(deltas), "variance": _floats(bb.encode_box_to_deltas(
        anchors, boxes[0], "xyxy", "xywh", "center_xywh", variance=[0.1, 0.1, 0.2, 0.2]))}
    out["decode"] = {"plain": _floats(bb.decode_deltas_to_boxes(anchors, deltas, "xyxy",
                                                                 "xyxy")),
                     "variance": _floats(bb.decode_deltas_to_boxes(
                         anchors, np.asarray(deltas) * 3, "xyxy", "center_yxhw",
                         "center_xywh", variance=[0.1, 0.1, 0.2, 0.2])),
                     "levels": {k: _floats(v) for k, v in bb.decode_deltas_to_boxes(
                         {"p3": anchors, "p4": anchors * 2}, {"p3": deltas, "p4": deltas},
                         "xyxy", "rel_xyxy", image_shape=(100, 120, 3)).items()}}
    out["anchors"] = _floats(anchors)
    return out


def stft() -> dict:
    """The STFT initializer's kernels without a window and with given window arrays (Keras
    needs SciPy for named windows, which this environment does not have)."""
    import keras

    rng = np.random.default_rng(8)
    cases = []
    for kwargs, shape in [({"window": None}, (16, 1, 9)),
                          ({"window": None, "side": "imag"}, (7, 1, 5)),
                          ({"window": "array"}, (16, 1, 9)),
                          ({"window": "array", "scaling": "spectrum", "side": "imag"}, (7, 1, 4)),
                          ({"window": "array", "scaling": None}, (6, 1, 6))]:
        if kwargs["window"] == "array":
            kwargs = {**kwargs, "window": rng.uniform(0.1, 1.0, shape[0]).astype(
                np.float32).tolist()}
        value = keras.initializers.STFT(**{**kwargs, "window": None if kwargs["window"] is None
                                           else np.array(kwargs["window"], np.float32)})(shape)
        cases.append({"kwargs": kwargs, "shape": shape, "value": _floats(value)})
    return {"keras_version": keras.__version__, "cases": cases}


def regularizers_more() -> dict:
    """OrthogonalRegularizer's penalty on wide, tall and partly zero matrices."""
    import keras

    rng = np.random.default_rng(77)
    wide = rng.normal(size=(4, 6)).astype(np.float32)
    tall = rng.normal(size=(6, 4)).astype(np.float32)
    zero_row = wide.copy()
    zero_row[1] = 0
    cases = []
    for factor, mode in [(0.01, "rows"), (0.5, "columns"), (2.0, "rows")]:
        reg = keras.regularizers.OrthogonalRegularizer(factor=factor, mode=mode)
        for label, x in (("wide", wide), ("tall", tall), ("zero_row", zero_row)):
            cases.append({"factor": factor, "mode": mode, "input": label,
                          "value": float(np.asarray(reg(keras.ops.convert_to_tensor(x)))),
                          "config": reg.get_config()})
    return {"keras_version": keras.__version__, "inputs": {
        "wide": _floats(wide), "tall": _floats(tall), "zero_row": _floats(zero_row)},
        "cases": cases}


PAD_CASES = [
    ({}, [[1, 2, 3], [4, 5], [6]]),
    ({"maxlen": 2}, [[1, 2, 3], [4, 5], [6]]),
    ({"maxlen": 4, "padding": "post", "truncating": "post", "value": -1}, [[1, 2, 3, 4, 5],
                                                                            [6], []]),
    ({"maxlen": 2, "truncating": "post", "dtype": "float32", "value": 0.5},
     [[1.5, 2.5, 3.5], [4.0]]),
    ({"padding": "post"}, [[[1, 2], [3, 4]], [[5, 6]]]),
]
TIMESERIES_CASES = [
    {"sequence_length": 3, "batch_size": 4},
    {"sequence_length": 4, "sequence_stride": 2, "sampling_rate": 2, "batch_size": 3},
    {"sequence_length": 2, "start_index": 3, "end_index": 15, "batch_size": None},
    {"sequence_length": 3, "batch_size": 5, "targets": False},
    {"sequence_length": 3, "batch_size": 100, "shuffle": True, "seed": 7},
]
SPLIT_CASES = [
    {"left_size": 0.7}, {"right_size": 3}, {"left_size": 4, "right_size": 0.3},
    {"left_size": 0.5, "shuffle": True, "seed": 11},
]


def _as_list(value):
    if isinstance(value, tuple | list):
        return [_as_list(v) for v in value]
    return np.asarray(value).tolist()


def utils() -> dict:
    """pad_sequences, timeseries_dataset_from_array, split_dataset, smart_resize and
    serialize_keras_object on fixed inputs."""
    import keras

    out = {"keras_version": keras.__version__, "pad_sequences": [], "timeseries": [],
           "split": [], "cases": []}
    for kwargs, sequences in PAD_CASES:
        result = keras.utils.pad_sequences(sequences, **kwargs)
        out["pad_sequences"].append({"kwargs": kwargs, "sequences": sequences,
                                     "result": result.tolist(), "dtype": str(result.dtype)})
    data = np.arange(40, dtype=np.float32).reshape(20, 2)
    targets = np.arange(100, 120)
    for case in TIMESERIES_CASES:
        kwargs = {k: v for k, v in case.items() if k != "targets"}
        ds = keras.utils.timeseries_dataset_from_array(
            data, None if case.get("targets") is False else targets, **kwargs)
        out["timeseries"].append({"kwargs": case, "elements": [_as_list(e) for e in ds]})
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    for case in SPLIT_CASES:
        left, right = keras.utils.split_dataset((x, y), **case)
        out["split"].append({"kwargs": case, "left": [_as_list(e) for e in left],
                             "right": [_as_list(e) for e in right]})
    image = np.random.default_rng(3).uniform(0, 255, size=(7, 5, 3)).astype(np.float32)
    out["smart_resize"] = {"image": _floats(image), "cases": [
        {"size": size, "interpolation": method,
         "result": _floats(keras.preprocessing.image.smart_resize(image, size, method))}
        for size, method in (((4, 4), "bilinear"), ((3, 6), "nearest"), ((10, 3), "bilinear"))]}
    out["serialized"] = _serialized(keras)
    legacy = keras.utils.legacy.serialize_keras_object
    out["legacy"] = {"l2": legacy(keras.regularizers.L2(0.5)),
                     "relu": legacy(keras.activations.relu),
                     "max_norm": legacy(keras.constraints.MaxNorm(2.0))}
    return out


def _serialized(keras) -> dict:
    """Keras 3's dicts for plain values, arrays and built-in objects."""
    objects = {
        "none": None, "int": 3, "str": "relu", "tuple": (1, 2), "nested": [1, (2, 3), {"a": (4,)}],
        "numpy": np.arange(3, dtype="float32"), "numpy_scalar": np.float32(2.5),
        "bytes": b"ab", "glorot": keras.initializers.GlorotUniform(seed=3),
        "l2": keras.regularizers.L2(0.1),
        "orthogonal_reg": keras.regularizers.OrthogonalRegularizer(0.2, "columns"),
        "relu": keras.activations.relu, "max_norm": keras.constraints.MaxNorm(2.0),
        "orthogonal": keras.initializers.Orthogonal(gain=2.0, seed=1),
    }
    out = {}
    for key, obj in objects.items():
        serialized = keras.saving.serialize_keras_object(obj)
        out[key] = {"serialized": json.loads(json.dumps(serialized)),
                    "is_tuple": isinstance(serialized, tuple)}
    return out


def _write_files(tf) -> None:
    """Images (PNG), texts and WAV clips in two classes each, written by TensorFlow."""
    shutil.rmtree(FILES, ignore_errors=True)
    rng = np.random.default_rng(9)
    for kind, names in (("images", ["cats", "dogs"]), ("texts", ["neg", "pos"]),
                        ("audio", ["no", "yes"])):
        for label, name in enumerate(names):
            folder = FILES / kind / name
            folder.mkdir(parents=True)
            for i in range(3 + label):
                stem = folder / f"f{i}"
                if kind == "images":
                    h, w = 5 + i, 6 + 2 * label
                    pixels = rng.integers(0, 256, size=(h, w, 3 + (i == 1)), dtype=np.uint8)
                    stem.with_suffix(".png").write_bytes(tf.io.encode_png(pixels).numpy())
                elif kind == "texts":
                    stem.with_suffix(".txt").write_text(f"{name} text {i} " * (i + 1))
                else:
                    audio = rng.uniform(-1, 1, size=(50 + 7 * i, 1)).astype(np.float32)
                    stem.with_suffix(".wav").write_bytes(
                        tf.audio.encode_wav(audio, 8000).numpy())
    (FILES / "images" / "cats" / "notes.txt").write_text("not an image")


def directory_datasets() -> dict:
    """image/text/audio_dataset_from_directory over the files `_write_files` makes."""
    import keras
    import tensorflow as tf

    _write_files(tf)
    cases = []
    calls = [
        ("image", {"image_size": (6, 6), "batch_size": 3, "shuffle": False}),
        ("image", {"image_size": (4, 5), "batch_size": 4, "seed": 5, "label_mode": "categorical",
                   "interpolation": "nearest"}),
        ("image", {"image_size": (6, 7), "batch_size": 2, "seed": 1, "color_mode": "rgba",
                   "validation_split": 0.4, "subset": "validation", "crop_to_aspect_ratio": True}),
        ("text", {"batch_size": 2, "seed": 3}),
        ("text", {"batch_size": None, "shuffle": False, "max_length": 9, "label_mode": "binary"}),
        ("text", {"batch_size": 4, "seed": 2, "validation_split": 0.3, "subset": "training"}),
        ("audio", {"batch_size": 3, "shuffle": False}),
        ("audio", {"batch_size": 2, "seed": 4, "output_sequence_length": 60}),
    ]
    functions = {"image": keras.utils.image_dataset_from_directory,
                 "text": keras.utils.text_dataset_from_directory,
                 "audio": keras.utils.audio_dataset_from_directory}
    folders = {"image": "images", "text": "texts", "audio": "audio"}
    for kind, kwargs in calls:
        ds = functions[kind](str(FILES / folders[kind]), **kwargs)
        batches = []
        for inputs, labels in ds:
            values = inputs.numpy()
            values = [v.decode() for v in np.atleast_1d(values)] if kind == "text" \
                else _floats(values)
            batches.append({"inputs": values, "labels": labels.numpy().tolist()})
        paths = [str(p).split("utils_files/")[1] for p in getattr(ds, "file_paths", [])]
        cases.append({"kind": kind, "kwargs": kwargs, "class_names": ds.class_names,
                      "file_paths": paths, "batches": batches})
    return {"keras_version": keras.__version__, "cases": cases}


def _feature_data() -> dict:
    rng = np.random.default_rng(21)
    n = 40
    return {"f": rng.normal(size=n).astype(np.float32),
            "fn": (rng.normal(size=n) * 3 + 1).astype(np.float32),
            "fr": rng.uniform(0, 10, size=n).astype(np.float32),
            "fd": rng.uniform(-1, 1, size=n).astype(np.float32),
            "ic": rng.integers(0, 5, size=n).astype(np.int32),
            "sc": np.array(rng.choice(["red", "green", "blue", "teal"], size=n,
                                      p=[0.4, 0.3, 0.2, 0.1])),
            "sh": np.array(rng.choice(["a", "b", "c", "d", "e"], size=n)),
            "ih": rng.integers(0, 100, size=n).astype(np.int32)}


def _feature_space(keras, output_mode: str):
    fs = keras.utils.FeatureSpace
    return fs(features={
        "f": fs.float(), "fn": fs.float_normalized(), "fr": fs.float_rescaled(0.5, 1.0),
        "fd": fs.float_discretized(num_bins=4), "ic": fs.integer_categorical(),
        "sc": fs.string_categorical(num_oov_indices=2), "sh": fs.string_hashed(num_bins=6),
        "ih": "integer_hashed"}, crosses=[("sc", "ic"), fs.cross(("sh", "ih"), 7, "int")]
        if output_mode == "dict" else [("sc", "ic")], crossing_dim=8, hashing_dim=5,
        output_mode=output_mode)


def feature_space() -> dict:
    """FeatureSpace on every kind of feature and two crosses: adapted, then called on the
    data and on one example."""
    import keras

    data = _feature_data()
    out = {"keras_version": keras.__version__,
           "data": {k: v.tolist() for k, v in data.items()}, "cases": []}
    for mode in ("concat", "dict"):
        space = _feature_space(keras, mode)
        space.adapt(data)
        batch = space(data)
        one = space({k: v[3] for k, v in data.items()})
        as_lists = lambda r: ({k: np.asarray(v).tolist() for k, v in r.items()}  # noqa: E731
                              if isinstance(r, dict) else np.asarray(r).tolist())
        out["cases"].append({"output_mode": mode, "batch": as_lists(batch),
                             "one": as_lists(one)})
    return out


FIXTURES = {"optimizers_more": optimizers_more, "feature_space": feature_space,
            "multi_optimizer": multi_optimizer, "bounding_boxes": bounding_boxes,
            "stft": stft,
            "regularizers_more": regularizers_more, "utils": utils,
            "directory_datasets": directory_datasets}

if __name__ == "__main__":
    main(sys.argv[1:], FIXTURES)
