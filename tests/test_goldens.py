"""distflow against fixtures computed with real Keras 3 (tools/make_goldens.py wrote them).

The fixtures hold each case's inputs and Keras's outputs; nothing here imports Keras.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import distflow as df
from distflow import keras, optimizers

GOLDENS = Path(__file__).resolve().parent / "goldens"


def _load(name: str) -> dict:
    return json.loads((GOLDENS / f"{name}.json").read_text())


OPTIMIZERS = _load("optimizers")


@pytest.mark.parametrize("case", OPTIMIZERS["cases"], ids=lambda c: c["name"])
def test_optimizer_trajectory_matches_keras(case):
    opt = optimizers.deserialize({"class_name": case["class"], "config": case["config"]})
    variables = [df.Variable(np.array(v, np.float32), name=f"golden/{case['name']}/{i}")
                 for i, v in enumerate(OPTIMIZERS["initial"])]
    for step, (grads, expected) in enumerate(zip(OPTIMIZERS["grads"], case["trajectory"])):
        opt.apply_gradients(zip([np.array(g, np.float32) for g in grads], variables))
        for var, want in zip(variables, expected):
            np.testing.assert_allclose(var.numpy(), np.array(want, np.float32), rtol=1e-5,
                                       atol=1e-6, err_msg=f"step {step + 1}")
    opt.finalize_variable_values(variables)
    for var, want in zip(variables, case["finalized"]):
        np.testing.assert_allclose(var.numpy(), np.array(want, np.float32), rtol=1e-5, atol=1e-6)


METRICS = _load("metrics")


@pytest.mark.parametrize("case", METRICS["cases"],
                         ids=lambda c: f"{c['class']}-{'-'.join(map(str, c['config'].values()))}")
def test_metric_result_matches_keras(case):
    metric = getattr(keras.metrics, case["class"])(**case["config"])
    # Keras numbers default names per session (precision_at_recall_1 for the second one).
    assert case["name"].startswith(metric.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the IoU family's integer-weight warning, as Keras's
        for y_true, y_pred, weights in case["batches"]:
            metric.update_state(np.array(y_true, np.float32), np.array(y_pred, np.float32),
                                sample_weight=None if weights is None else
                                np.array(weights, np.float32))
    np.testing.assert_allclose(np.asarray(metric.result(), np.float64), case["result"],
                               rtol=1e-5, atol=1e-6)


LOSSES = _load("losses")


@pytest.mark.parametrize("case", LOSSES["overlap"],
                         ids=lambda c: f"{c['class']}-{'-'.join(map(str, c['config'].values()))}")
def test_overlap_loss_matches_keras(case):
    loss = getattr(keras.losses, case["class"])(**case["config"])
    weights = np.array(LOSSES["weights"], np.float32) if case["weighted"] else None
    value = loss(np.array(LOSSES["y_true"], np.float32), np.array(LOSSES["y_pred"], np.float32),
                 sample_weight=weights)
    assert float(value) == pytest.approx(case["value"], rel=1e-5)


def test_ctc_loss_and_its_gradient_match_keras():
    golden = LOSSES["ctc"]
    labels = np.array(golden["labels"], np.int32)
    logits = df.Variable(np.array(golden["logits"], np.float32), name="golden/ctc_logits")
    with df.GradientTape() as tape:
        per_sample = keras.losses.ctc(labels, logits)
        total = df.reduce_sum(per_sample * np.array(golden["grad_weights"], np.float32))
    np.testing.assert_allclose(per_sample.numpy(), golden["per_sample"], rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(total, logits).numpy(), golden["grad"], rtol=1e-4,
                               atol=1e-6)
    assert float(keras.losses.CTC()(labels, logits)) == pytest.approx(golden["mean"], rel=1e-5)


SCHEDULES = _load("schedules")


@pytest.mark.parametrize("case", SCHEDULES["cases"],
                         ids=lambda c: f"{c['class']}-{'-'.join(map(str, c['config'].values()))}")
def test_schedule_values_match_keras(case):
    schedule = optimizers.schedules.deserialize({"class_name": case["class"],
                                                 "config": case["config"]})
    np.testing.assert_allclose([schedule(step) for step in range(41)], case["values"],
                               rtol=1e-5, atol=1e-7)


CONSTRAINTS = _load("constraints")


@pytest.mark.parametrize("case", CONSTRAINTS["cases"],
                         ids=lambda c: f"{c['class']}-{'-'.join(map(str, c['config'].values()))}")
def test_constraint_output_matches_keras(case):
    constraint = keras.constraints.get({"class_name": case["class"], "config": case["config"]})
    out = constraint(np.array(CONSTRAINTS["kernel"], np.float32))
    np.testing.assert_allclose(out.numpy(), case["output"], rtol=1e-5, atol=1e-6)


def test_optimizer_applies_a_variables_constraint_after_each_step_as_keras():
    golden = CONSTRAINTS["sgd"]
    var = df.Variable(np.array(golden["start"], np.float32), name="golden/constrained",
                      constraint=keras.constraints.MaxNorm(1.0))
    opt = optimizers.SGD(0.5)
    for grad, expected in zip(golden["grads"], golden["trajectory"]):
        opt.apply_gradients([(np.array(grad, np.float32), var)])
        np.testing.assert_allclose(var.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_generalized_cross_entropy_matches_keras():
    golden = LOSSES["gce"]
    for case in golden["cases"]:
        loss = keras.losses.CategoricalGeneralizedCrossEntropy(q=case["q"])
        value = loss(np.array(golden["labels"]), np.array(golden["probs"], np.float32))
        assert float(value) == pytest.approx(case["value"], rel=1e-5)


def test_loss_scale_optimizer_matches_keras():
    golden = _load("loss_scale")
    opt = keras.mixed_precision.LossScaleOptimizer(optimizers.SGD(0.1), initial_scale=8.0,
                                                   dynamic_growth_steps=2)
    var = df.Variable(np.array(golden["start"], np.float32), name="golden/loss_scale")
    for grad, step in zip(golden["grads"], golden["steps"]):
        opt.apply_gradients([(np.array(grad, np.float32), var)])
        np.testing.assert_allclose(var.numpy(), step["weights"], rtol=1e-5, atol=1e-6)
        assert float(opt.dynamic_scale.numpy()) == step["scale"]
        assert int(opt.iterations) == step["iterations"]


EINSUM = _load("einsum_dense")


@pytest.mark.parametrize("case", EINSUM["cases"], ids=lambda c: c["equation"])
def test_einsum_dense_matches_keras(case):
    layer = keras.layers.EinsumDense(case["equation"], case["output_shape"],
                                     bias_axes=case["bias_axes"], activation=case["activation"])
    x = np.array(case["input"], np.float32)
    layer.build(x.shape)
    layer.set_weights([np.array(w, np.float32) for w in case["weights"]])
    np.testing.assert_allclose(layer(x).numpy(), case["output"], rtol=1e-5, atol=1e-6)
    assert list(layer.compute_output_shape((None, *x.shape[1:]))) == case["symbolic_shape"]


COMPILE = _load("compile_logs")


def _metric_spec(spec):
    if isinstance(spec, list) and len(spec) == 2 and isinstance(spec[1], dict):
        return getattr(keras.metrics, spec[0])(**spec[1])
    if isinstance(spec, list):
        return [_metric_spec(s) for s in spec]
    return spec


@pytest.mark.parametrize("case", COMPILE["cases"], ids=lambda c: c["name"])
def test_compiled_model_logs_match_keras(case):
    inp = keras.Input((4,))
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(inp)
    score = keras.layers.Dense(1, name="score")(inp)
    model = keras.Model(inp, probs if case["outputs"] == "probs" else [probs, score])
    model.set_weights([np.array(w, np.float32) for w in case["weights"]])
    args = {k: _metric_spec(v) if "metrics" in k else v for k, v in case["config"].items()}
    model.compile(optimizer=optimizers.SGD(0.1), **args)
    x, classes = np.array(COMPILE["x"], np.float32), np.array(COMPILE["classes"], np.float32)
    y = classes if case["outputs"] == "probs" else [classes, np.array(COMPILE["target"],
                                                                      np.float32)]
    sw = np.array(COMPILE["sample_weight"], np.float32) if case["outputs"] == "probs" else None
    evaluated = model.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    assert set(evaluated) == set(case["evaluate"])
    for key, value in case["evaluate"].items():
        assert evaluated[key] == pytest.approx(value, rel=1e-5), key
    history = model.fit(x, y, sample_weight=sw, batch_size=16, epochs=2, shuffle=False,
                        verbose=0).history
    assert set(history) == set(case["history"])
    for key, values in case["history"].items():
        np.testing.assert_allclose(history[key], values, rtol=1e-5, err_msg=key)


def test_circle_loss_and_its_gradient_match_keras():
    golden = LOSSES["circle"]
    labels = np.array(golden["labels"])
    emb = df.Variable(np.array(golden["embeddings"], np.float32), name="golden/circle")
    np.testing.assert_allclose(keras.losses.circle(labels, emb).numpy(), golden["per_sample"],
                               rtol=1e-5, atol=1e-6)
    with df.GradientTape() as tape:
        mean = keras.losses.Circle()(labels, emb)
    assert float(mean) == pytest.approx(golden["mean"], rel=1e-5)
    np.testing.assert_allclose(tape.gradient(mean, emb).numpy(), golden["grad"], rtol=1e-4,
                               atol=1e-6)
    small = keras.losses.Circle(gamma=2.0, margin=0.25)(labels, emb.numpy())
    assert float(small) == pytest.approx(golden["small_gamma"], rel=1e-5)


@pytest.mark.parametrize("case", OPTIMIZERS["cases"], ids=lambda c: c["name"])
def test_a_keras_optimizer_config_rebuilds_the_same_optimizer(case):
    opt = optimizers.deserialize({"class_name": case["class"], "config": case["keras_config"]})
    mine = opt.get_config()
    for key, value in case["keras_config"].items():
        if key == "name":
            continue
        if isinstance(value, float):
            assert mine[key] == pytest.approx(value, rel=1e-6), key
        else:
            assert mine[key] == value, key


DECAY = _load("weight_decay")


@pytest.mark.parametrize("case", DECAY["cases"], ids=lambda c: c["class"])
def test_weight_decay_exclusions_match_keras(case):
    opt = optimizers.deserialize({"class_name": case["class"], "config": case["config"]})
    variables = [df.Variable(np.array(DECAY["start"][0], np.float32), name="decay/kernel"),
                 df.Variable(np.array(DECAY["start"][1], np.float32), name="decay/bias")]
    opt.exclude_from_weight_decay(var_names=["bias"])
    for grads in DECAY["grads"]:
        opt.apply_gradients(zip([np.array(g, np.float32) for g in grads], variables))
    for var, want in zip(variables, case["final"]):
        np.testing.assert_allclose(var.numpy(), want, rtol=1e-5, atol=1e-6)
