"""Muon and ScheduleFreeAdamW: 10-step trajectories against Keras 3 (tests/goldens/
optimizers_more.json, written by tools/make_goldens_utils.py). The servers running
ScheduleFreeAdamW's rule and refusing Muon are in tests/test_new_optimizers.py."""

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
