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
