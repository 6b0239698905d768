"""Muon, ScheduleFreeAdamW and MultiOptimizer: 10-step trajectories against Keras 3
(tests/goldens/optimizers_more.json and multi_optimizer.json, written by
tools/make_goldens_utils.py). The servers running ScheduleFreeAdamW's rule and refusing
Muon and MultiOptimizer are in tests/test_new_optimizers.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import distflow as df
from distflow import optimizers
from distflow.optimizers import rules

GOLDEN = json.loads((Path(__file__).parent / "goldens" / "optimizers_more.json").read_text())


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: c["name"])
def test_trajectory_matches_keras(case):
    opt = optimizers.deserialize({"class_name": case["class"], "config": case["config"]})
    variables = [df.Variable(np.array(v, np.float32), name=f"golden_{case['name']}/{n}")
                 for v, n in zip(GOLDEN["initial"], GOLDEN["names"])]
    for step, (grads, expected) in enumerate(zip(GOLDEN["grads"], case["trajectory"])):
        opt.apply_gradients(zip([np.array(g, np.float32) for g in grads], variables))
        for var, want in zip(variables, expected):
            np.testing.assert_allclose(var.numpy(), np.array(want, np.float32), rtol=1e-5,
                                       atol=1e-6, err_msg=f"{var.name} at step {step + 1}")


def test_newton_schulz_orthogonalizes_approximately():
    g = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    out = rules.newton_schulz(g, 5, 3.4445, -4.7750, 2.0315)
    singular = np.linalg.svd(out, compute_uv=False)
    assert out.shape == g.shape
    assert np.all((singular > 0.6) & (singular < 1.25)), singular  # Muon's loose band


def test_muon_config_round_trips_and_checks_arguments():
    opt = optimizers.Muon(0.01, exclude_layers=["head"], rms_rate=None, nesterov=False)
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert again.get_config() == opt.get_config()
    assert again.exclude_layers == ["head"] and again.hyper["rms_rate"] is None
    with pytest.raises(ValueError, match="exclude_layers"):
        optimizers.Muon(exclude_layers="head")
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Muon(beta_1=0.9)


def test_schedule_free_adamw_checks_arguments():
    for bad in ({"beta_1": 1.0}, {"beta_1": 0.0}, {"warmup_steps": -1}, {"warmup_steps": 1.5}):
        with pytest.raises(ValueError):
            optimizers.ScheduleFreeAdamW(**bad)
    assert optimizers.get("schedulefreeadamw").get_config()["learning_rate"] == 0.0025


MULTI = json.loads((Path(__file__).parent / "goldens" / "multi_optimizer.json").read_text())


def _multi():
    return optimizers.MultiOptimizer(optimizers.OptimizerMap(
        optimizers.SGD(0.1, momentum=0.5),
        {"w0": optimizers.Adam(0.01), "w[23]": optimizers.RMSprop(0.02)}),
        loss_scale_factor=4.0)


def test_multi_optimizer_matches_keras():
    opt = _multi()
    variables = [df.Variable(np.array(v, np.float32), name=n)
                 for v, n in zip(GOLDEN["initial"], GOLDEN["names"])]
    for step, (grads, expected) in enumerate(zip(GOLDEN["grads"], MULTI["trajectory"])):
        opt.apply([np.array(g, np.float32) for g in grads], variables)
        for var, want in zip(variables, expected):
            np.testing.assert_allclose(var.numpy(), np.array(want, np.float32), rtol=1e-5,
                                       atol=1e-6, err_msg=f"{var.name} at step {step + 1}")
    assert int(opt.iterations.numpy()) == MULTI["iterations"]
    assert [int(o.iterations.numpy()) for o in opt.optimizers] == MULTI["inner_iterations"]
    assert [type(o).__name__ for o in opt.optimizers] == ["Adam", "RMSprop", "SGD"]


def test_optimizer_map_rules_and_multi_optimizer_contract():
    adam, sgd = optimizers.Adam(), optimizers.SGD()
    mapping = optimizers.OptimizerMap(sgd, {"enc/.*": adam})
    assert mapping["enc/dense/kernel"] is adam and mapping["dec/kernel"] is sgd
    mapping["enc/dense/.*"] = optimizers.Lion()
    with pytest.raises(ValueError, match="Multiple optimizers"):
        mapping["enc/dense/kernel"]  # noqa: B018
    with pytest.raises(ValueError, match="already exists"):
        mapping["enc/.*"] = sgd
    with pytest.raises(ValueError, match="LossScaleOptimizer"):
        mapping["x"] = optimizers.LossScaleOptimizer(optimizers.SGD())
    opt = _multi()
    with pytest.raises(AttributeError, match="sub-optimizers"):
        opt.learning_rate  # noqa: B018
    with pytest.raises(AttributeError, match="sub-optimizers"):
        opt.learning_rate = 0.1
    opt.loss_scale_factor = 2.0
    assert all(o.loss_scale_factor == 2.0 for o in opt.optimizers)
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert [type(o).__name__ for o in again.optimizers] == ["Adam", "RMSprop", "SGD"]
    assert again.optimizers[0].get_config() == opt.optimizers[0].get_config()


def test_multi_optimizer_trains_a_model_and_saves_its_state(tmp_path):
    from distflow import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="enc"),
                              keras.layers.Dense(1, name="head")])
    selector = {"enc": optimizers.Adam(0.01), "head": optimizers.SGD(0.05)}
    model.compile(optimizer=optimizers.MultiOptimizer(
        lambda v: selector[v.name.split("/")[0]]), loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    history = model.fit(x, x.sum(axis=1, keepdims=True), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert [int(o.iterations.numpy()) for o in model.optimizer.optimizers] == [3, 3]
    state = model.optimizer.get_state()
    fresh = optimizers.MultiOptimizer(lambda v: selector[v.name.split("/")[0]])
    fresh._inner = [optimizers.Adam(0.01), optimizers.SGD(0.05)]
    fresh.set_state(state)
    assert int(fresh.iterations.numpy()) == 3
    np.testing.assert_array_equal(fresh.optimizers[0].get_state()["enc/kernel/m"],
                                  state["0:enc/kernel/m"])
