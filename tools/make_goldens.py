"""Writes the Keras conformance fixtures under tests/goldens/ (run by hand with real Keras).

Needs TensorFlow 2.21 / Keras 3 (CPU), which is never a dependency of distflow:

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfenv/bin/python tools/make_goldens.py            # all fixtures
    /tmp/tfenv/bin/python tools/make_goldens.py optimizers  # one of them

Each fixture is a JSON file holding the inputs of every case (so the tests need
no random generator of Keras's) and Keras's outputs, float32 values written
exactly (as float64 numbers). The tests (tests/test_goldens.py) recompute every
case with distflow and compare.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
OUT = Path(__file__).resolve().parents[1] / "tests" / "goldens"
STEPS = 10

# (name, Keras class, constructor arguments); every optimizer distflow has.
OPTIMIZER_CASES = [
    ("sgd", "SGD", {"learning_rate": 0.1}),
    ("sgd_nesterov", "SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("adam", "Adam", {"learning_rate": 0.01}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("adamw", "AdamW", {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("rmsprop_centered", "RMSprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.5}),
    ("adagrad", "Adagrad", {"learning_rate": 0.05}),
    ("nadam", "Nadam", {"learning_rate": 0.01}),
    ("adamax", "Adamax", {"learning_rate": 0.02}),
    ("adadelta", "Adadelta", {"learning_rate": 1.0}),
    ("ftrl", "Ftrl", {"learning_rate": 0.1}),
    ("ftrl_regularized", "Ftrl", {"learning_rate": 0.1, "l1_regularization_strength": 0.01,
                                  "l2_regularization_strength": 0.02, "beta": 0.5,
                                  "l2_shrinkage_regularization_strength": 0.01,
                                  "learning_rate_power": -0.3}),
    ("lion", "Lion", {"learning_rate": 0.01}),
    ("lion_decay", "Lion", {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("adafactor", "Adafactor", {"learning_rate": 0.1}),
    ("adafactor_small_lr", "Adafactor", {"learning_rate": 0.01, "clip_threshold": 0.5}),
    ("lamb", "Lamb", {"learning_rate": 0.01}),
    ("lamb_decay", "Lamb", {"learning_rate": 0.01, "weight_decay": 0.05, "beta_2": 0.99}),
    ("adam_ema", "Adam", {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.8}),
    ("sgd_ema_overwrite", "SGD", {"learning_rate": 0.1, "momentum": 0.5, "use_ema": True,
                                  "ema_momentum": 0.7, "ema_overwrite_frequency": 3}),
]


def _floats(a: np.ndarray) -> list:
    return np.asarray(a, np.float32).astype(np.float64).tolist()


def optimizers() -> dict:
    """10-step trajectories of a (3, 4) matrix, a (4,) vector and a (2, 3, 2) tensor."""
    import keras

    rng = np.random.default_rng(2026)
    shapes = [(3, 4), (4,), (2, 3, 2)]
    initial = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(STEPS)]
    cases = []
    for name, cls, config in OPTIMIZER_CASES:
        opt = getattr(keras.optimizers, cls)(**config)
        variables = [keras.Variable(v) for v in initial]
        trajectory = []
        for step in grads:
            opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step], variables))
            trajectory.append([_floats(np.asarray(v)) for v in variables])
        opt.finalize_variable_values(variables)  # what fit does at its end (EMA)
        cases.append({"name": name, "class": cls, "config": config,
                      "keras_config": opt.get_config(), "trajectory": trajectory,
                      "finalized": [_floats(np.asarray(v)) for v in variables]})
    return {"keras_version": keras.__version__, "initial": [_floats(v) for v in initial],
            "grads": [[_floats(g) for g in step] for step in grads], "cases": cases}


def _batches(rng: np.random.Generator, kind: str, n: int = 12, k: int = 3) -> list:
    """Two batches of (y_true, y_pred, sample_weight) for a metric case."""
    out = []
    for b in range(2):
        weights = rng.uniform(0.2, 2.0, size=n).astype(np.float32) if b else None
        if kind == "binary":
            y_true = rng.integers(0, 2, size=(n, 1)).astype(np.float32)
            y_pred = rng.uniform(size=(n, 1)).astype(np.float32)
        elif kind == "onehot":
            y_true = np.eye(k, dtype=np.float32)[rng.integers(0, k, size=n)]
            y_pred = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
        elif kind == "sparse_ids":
            y_true = rng.integers(0, k, size=(n,)).astype(np.float32)
            y_pred = rng.integers(0, k, size=(n,)).astype(np.float32)
        else:  # regression
            y_true = rng.normal(size=(n, k)).astype(np.float32)
            y_pred = (y_true + 0.5 * rng.normal(size=(n, k))).astype(np.float32)
        out.append([_floats(y_true), _floats(y_pred),
                    None if weights is None else _floats(weights)])
    return out


METRIC_CASES = [
    ("TruePositives", {}, "binary"), ("FalsePositives", {"thresholds": [0.3, 0.7]}, "binary"),
    ("TrueNegatives", {}, "binary"), ("FalseNegatives", {"thresholds": 0.4}, "binary"),
    ("PrecisionAtRecall", {"recall": 0.6}, "binary"),
    ("RecallAtPrecision", {"precision": 0.5, "num_thresholds": 50}, "binary"),
    ("SensitivityAtSpecificity", {"specificity": 0.5}, "binary"),
    ("SpecificityAtSensitivity", {"sensitivity": 0.5}, "binary"),
    ("PrecisionAtRecall", {"recall": 0.5, "class_id": 1}, "onehot"),
    ("F1Score", {}, "onehot"), ("F1Score", {"average": "macro"}, "onehot"),
    ("F1Score", {"average": "micro", "threshold": 0.4}, "onehot"),
    ("FBetaScore", {"beta": 2.0, "average": "weighted"}, "onehot"),
    ("IoU", {"num_classes": 3, "target_class_ids": [0, 2]}, "sparse_ids"),
    ("MeanIoU", {"num_classes": 3}, "sparse_ids"),
    ("MeanIoU", {"num_classes": 3, "ignore_class": 1}, "sparse_ids"),
    ("BinaryIoU", {"threshold": 0.4}, "binary"),
    ("OneHotIoU", {"num_classes": 3, "target_class_ids": [1]}, "onehot"),
    ("OneHotMeanIoU", {"num_classes": 3}, "onehot"),
    ("R2Score", {}, "regression"), ("R2Score", {"class_aggregation": None}, "regression"),
    ("R2Score", {"class_aggregation": "variance_weighted_average", "num_regressors": 2},
     "regression"),
    ("CosineSimilarity", {}, "regression"), ("LogCoshError", {}, "regression"),
    ("CategoricalHinge", {}, "onehot"), ("Poisson", {}, "onehot"),
    ("PearsonCorrelation", {}, "regression"), ("ConcordanceCorrelation", {}, "regression"),
]


def metrics() -> dict:
    """Each metric's result after two batches (the second weighted)."""
    import keras

    rng = np.random.default_rng(7)
    cases = []
    for cls, config, kind in METRIC_CASES:
        metric = getattr(keras.metrics, cls)(**config)
        batches = _batches(rng, kind)
        for y_true, y_pred, weights in batches:
            metric.update_state(np.array(y_true, np.float32), np.array(y_pred, np.float32),
                                sample_weight=None if weights is None else
                                np.array(weights, np.float32))
        cases.append({"class": cls, "config": config, "batches": batches, "name": metric.name,
                      "result": np.asarray(metric.result(), np.float64).tolist()})
    return {"keras_version": keras.__version__, "cases": cases}


def losses() -> dict:
    """Dice, Tversky and CTC: reduced values, per-sample values and CTC's logit gradients."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(11)
    y_true = (rng.uniform(size=(4, 3, 3, 2)) > 0.5).astype(np.float32)
    y_pred = rng.uniform(size=(4, 3, 3, 2)).astype(np.float32)
    weights = rng.uniform(0.5, 2.0, size=4).astype(np.float32)
    overlap = []
    for cls, config in [("Dice", {}), ("Dice", {"axis": [1, 2, 3]}),
                        ("Dice", {"axis": [1, 2, 3], "reduction": "sum"}),
                        ("Tversky", {}), ("Tversky", {"alpha": 0.3, "beta": 0.7,
                                                      "axis": [1, 2, 3]})]:
        loss = getattr(keras.losses, cls)(**config)
        weighted = None if "axis" not in config else weights
        overlap.append({"class": cls, "config": config, "weighted": weighted is not None,
                        "value": float(loss(y_true, y_pred, sample_weight=weighted))})
    labels = np.array([[1, 2, 2, 0], [3, 1, 0, 0], [2, 0, 0, 0]], np.int32)
    logits = rng.normal(size=(3, 7, 4)).astype(np.float32)
    logits_tf = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits_tf)
        per_sample = keras.losses.ctc(tf.constant(labels), logits_tf)
        total = tf.reduce_sum(per_sample * tf.constant([1.0, 2.0, 0.5]))
    grad = tape.gradient(total, logits_tf)
    mean = float(keras.losses.CTC()(labels, logits))
    ids = rng.integers(0, 4, size=6).astype(np.int32)
    probs = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    gce = [{"q": q, "value": float(keras.losses.CategoricalGeneralizedCrossEntropy(q=q)(
        ids, probs))} for q in (0.2, 0.7)]
    circle_labels = rng.integers(0, 3, size=8).astype(np.int32)
    emb = rng.normal(size=(8, 5)).astype(np.float32)
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    emb_tf = tf.constant(emb)
    with tf.GradientTape() as tape:
        tape.watch(emb_tf)
        circle_values = keras.losses.circle(tf.constant(circle_labels), emb_tf)
        circle_mean = keras.losses.Circle()(circle_labels, emb_tf)
    circle = {"labels": circle_labels.tolist(), "embeddings": _floats(emb),
              "per_sample": _floats(np.asarray(circle_values)), "mean": float(circle_mean),
              "grad": _floats(tape.gradient(circle_mean, emb_tf).numpy()),
              "small_gamma": float(keras.losses.Circle(gamma=2.0, margin=0.25)(
                  circle_labels, emb))}
    return {"circle": circle,
            "gce": {"labels": ids.tolist(), "probs": _floats(probs), "cases": gce},
            "keras_version": keras.__version__, "y_true": _floats(y_true),
            "y_pred": _floats(y_pred), "weights": _floats(weights), "overlap": overlap,
            "ctc": {"labels": labels.tolist(), "logits": _floats(logits),
                    "per_sample": _floats(per_sample.numpy()), "mean": mean,
                    "grad_weights": [1.0, 2.0, 0.5], "grad": _floats(grad.numpy())}}


SCHEDULE_CASES = [
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.5}),
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.5,
                          "staircase": True}),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.3}),
    ("PiecewiseConstantDecay", {"boundaries": [5, 12], "values": [0.3, 0.2, 0.1]}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 20, "power": 2.0,
                         "end_learning_rate": 0.01}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 8, "cycle": True}),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 20, "alpha": 0.1}),
    ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 20, "warmup_target": 0.2,
                     "warmup_steps": 5}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 5}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 4,
                             "t_mul": 1.0, "m_mul": 0.5, "alpha": 0.1}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.2, "first_decay_steps": 3,
                             "t_mul": 1.5, "m_mul": 0.8}),
]


def schedules() -> dict:
    """Each schedule's value at steps 0..40."""
    import keras

    cases = []
    for cls, config in SCHEDULE_CASES:
        schedule = getattr(keras.optimizers.schedules, cls)(**config)
        cases.append({"class": cls, "config": config,
                      "values": [float(schedule(step)) for step in range(41)]})
    return {"keras_version": keras.__version__, "cases": cases}


CONSTRAINT_CASES = [
    ("MaxNorm", {}), ("MaxNorm", {"max_value": 1.0, "axis": [0, 1, 2]}),
    ("MinMaxNorm", {"min_value": 1.0, "max_value": 1.5, "rate": 0.5}),
    ("MinMaxNorm", {"min_value": 0.5, "max_value": 2.0, "axis": 3}),
    ("NonNeg", {}), ("UnitNorm", {}), ("UnitNorm", {"axis": [0, 1]}),
]


def constraints() -> dict:
    """Each constraint on a (3, 3, 2, 4) kernel, and SGD steps on a constrained variable."""
    import keras

    rng = np.random.default_rng(13)
    kernel = (2.0 * rng.normal(size=(3, 3, 2, 4))).astype(np.float32)
    cases = []
    for cls, config in CONSTRAINT_CASES:
        out = getattr(keras.constraints, cls)(**config)(kernel)
        cases.append({"class": cls, "config": config, "output": _floats(np.asarray(out))})
    start = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(3)]
    variable = keras.Variable(start)
    variable.constraint = keras.constraints.MaxNorm(1.0)  # the constructor ignores it
    opt = keras.optimizers.SGD(0.5)
    trajectory = []
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
        trajectory.append(_floats(np.asarray(variable)))
    return {"keras_version": keras.__version__, "kernel": _floats(kernel), "cases": cases,
            "sgd": {"start": _floats(start), "grads": [_floats(g) for g in grads],
                    "trajectory": trajectory}}


NAMESPACES = ["layers", "losses", "metrics", "optimizers", "optimizers.schedules", "callbacks",
              "activations", "initializers", "regularizers", "constraints", "models", "utils",
              "backend", "datasets", "applications", "mixed_precision", "ops", "random",
              "saving", "preprocessing"]


def names() -> dict:
    """Keras 3's public names per namespace (what tools/keras_coverage.py compares)."""
    import importlib

    import keras

    out = {}
    for namespace in NAMESPACES:
        module = importlib.import_module(f"keras.{namespace}")
        out[namespace] = sorted(n for n in dir(module) if not n.startswith("_"))
    return {"keras_version": keras.__version__, "cases": [], "namespaces": out}


EINSUM_CASES = [
    ("ab,bc->ac", 4, "c", (2, 3), None),
    ("abc,cd->abd", [None, 4], "d", (2, 5, 3), "relu"),
    ("abc,cde->abde", [None, 2, 4], "de", (2, 5, 3), None),
    ("...b,bc->...c", 4, "c", (2, 5, 3), "tanh"),
    ("abc,cd->abd", [5, 4], "b", (2, 5, 3), None),
    ("ab...,bc->ac...", [4], None, (2, 3, 5), None),
    ("abcd,cde->abe", [3, 6], "e", (2, 3, 4, 2), None),
]


def einsum_dense() -> dict:
    """EinsumDense outputs and output shapes for fixed weights and inputs."""
    import keras

    rng = np.random.default_rng(19)
    cases = []
    for equation, output_shape, bias_axes, shape, activation in EINSUM_CASES:
        layer = keras.layers.EinsumDense(equation, output_shape, bias_axes=bias_axes,
                                         activation=activation)
        x = rng.normal(size=shape).astype(np.float32)
        layer.build(shape)
        weights = [rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        cases.append({"equation": equation, "output_shape": output_shape,
                      "bias_axes": bias_axes, "activation": activation, "input": _floats(x),
                      "weights": [_floats(w) for w in weights],
                      "output": _floats(np.asarray(layer(x))),
                      "symbolic_shape": list(layer.compute_output_shape((None, *shape[1:])))})
    return {"keras_version": keras.__version__, "cases": cases}


# (name, outputs, compile arguments); a metric is a name or [class name, config].
COMPILE_CASES = [
    ("single", "probs", {"loss": "sparse_categorical_crossentropy",
                         "metrics": ["accuracy", "sparse_categorical_crossentropy"]}),
    ("duplicates", "probs", {"loss": "sparse_categorical_crossentropy",
                             "metrics": ["accuracy", "acc",
                                         ["SparseTopKCategoricalAccuracy", {"k": 2}],
                                         ["SparseTopKCategoricalAccuracy", {"k": 1}]]}),
    ("weighted", "probs", {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                           "weighted_metrics": ["accuracy"]}),
    ("two_outputs", "both", {"loss": ["sparse_categorical_crossentropy", "mse"],
                             "metrics": [["accuracy"], ["mae", "mse"]],
                             "loss_weights": [1.0, 0.5]}),
]


def _metric_spec(keras, spec):
    if isinstance(spec, list) and len(spec) == 2 and isinstance(spec[1], dict):
        return getattr(keras.metrics, spec[0])(**spec[1])
    if isinstance(spec, list):
        return [_metric_spec(keras, s) for s in spec]
    return spec


def compile_logs() -> dict:
    """evaluate() dicts and 2-epoch fit History of compiled models, from given weights."""
    import keras

    rng = np.random.default_rng(23)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    classes = rng.integers(0, 3, 32).astype(np.float32)
    target = rng.normal(size=(32, 1)).astype(np.float32)
    weights = rng.uniform(0.5, 2.0, 32).astype(np.float32)
    cases = []
    for name, outputs, config in COMPILE_CASES:
        inp = keras.Input((4,))
        probs = keras.layers.Dense(3, activation="softmax", name="probs")(inp)
        score = keras.layers.Dense(1, name="score")(inp)
        model = keras.Model(inp, probs if outputs == "probs" else [probs, score])
        init = [rng.normal(size=w.shape).astype(np.float32) * 0.5 for w in model.get_weights()]
        model.set_weights(init)
        args = {k: _metric_spec(keras, v) if "metrics" in k else v for k, v in config.items()}
        model.compile(optimizer=keras.optimizers.SGD(0.1), **args)
        y = classes if outputs == "probs" else [classes, target]
        sw = weights if outputs == "probs" else None
        evaluated = model.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
        history = model.fit(x, y, sample_weight=sw, batch_size=16, epochs=2, shuffle=False,
                            verbose=0).history
        cases.append({"name": name, "outputs": outputs, "config": config,
                      "weights": [_floats(w) for w in init], "evaluate": evaluated,
                      "history": history})
    return {"keras_version": keras.__version__, "x": _floats(x), "classes": _floats(classes),
            "target": _floats(target), "sample_weight": _floats(weights), "cases": cases}


def weight_decay() -> dict:
    """AdamW and SGD with weight decay, "bias" excluded by name: 5 steps of two variables."""
    import keras

    rng = np.random.default_rng(29)
    start = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    grads = [[rng.normal(size=v.shape).astype(np.float32) for v in start] for _ in range(5)]
    cases = []
    for cls, config in [("AdamW", {"learning_rate": 0.05, "weight_decay": 0.2}),
                        ("SGD", {"learning_rate": 0.1, "weight_decay": 0.3})]:
        opt = getattr(keras.optimizers, cls)(**config)
        variables = [keras.Variable(start[0], name="kernel"), keras.Variable(start[1], name="bias")]
        opt.exclude_from_weight_decay(var_names=["bias"])
        for step in grads:
            opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step], variables))
        cases.append({"class": cls, "config": config,
                      "final": [_floats(np.asarray(v)) for v in variables]})
    return {"keras_version": keras.__version__, "start": [_floats(v) for v in start],
            "grads": [[_floats(g) for g in step] for step in grads], "cases": cases}


def loss_scale() -> dict:
    """LossScaleOptimizer(SGD) over gradients with a non-finite step: weights and scales."""
    import keras

    rng = np.random.default_rng(17)
    start = rng.normal(size=(3,)).astype(np.float32)
    grads = [rng.normal(size=(3,)).astype(np.float32) * 8 for _ in range(6)]
    grads[2][1] = np.inf
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=8.0,
                                              dynamic_growth_steps=2)
    variable = keras.Variable(start)
    steps = []
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
        steps.append({"weights": _floats(np.asarray(variable)),
                      "scale": float(np.asarray(opt.dynamic_scale)),
                      "iterations": int(np.asarray(opt.iterations))})
    return {"keras_version": keras.__version__, "start": _floats(start),
            "grads": [_floats(g) for g in grads], "steps": steps}


FIXTURES = {"compile_logs": compile_logs, "einsum_dense": einsum_dense,
            "loss_scale": loss_scale, "optimizers": optimizers, "metrics": metrics,
            "losses": losses, "schedules": schedules, "constraints": constraints,
            "names": names, "weight_decay": weight_decay}


def main(argv: list[str], fixtures: dict | None = None) -> None:
    """Writes the fixtures named in `argv` (all of `fixtures` when none is named)."""
    fixtures = FIXTURES if fixtures is None else fixtures
    OUT.mkdir(parents=True, exist_ok=True)
    for name in argv or list(fixtures):
        data = fixtures[name]()
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {path} ({len(data.get('cases', []))} cases)")


if __name__ == "__main__":
    main(sys.argv[1:])
