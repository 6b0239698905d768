"""Dice, Tversky and CTC: gradients by finite differences, configs, and a CTC model that
trains (their values against Keras are in tests/test_goldens.py)."""

from __future__ import annotations

import numpy as np
import pytest

import distflow as df
from distflow import keras
from distflow.keras import layers, losses
from distflow.keras.functional import Input
from distflow.keras.models import Sequential
from distflow.test_util import check_grads

RNG = np.random.default_rng(4)


def test_ctc_gradient_matches_finite_differences():
    labels = np.array([[1, 1, 2], [2, 0, 0]], np.int64)  # a repeated label needs a blank
    logits = RNG.normal(size=(2, 6, 3))
    check_grads(lambda z: losses.ctc(labels, z), [logits], rtol=1e-5, atol=1e-7)


def test_ctc_of_an_impossible_alignment_is_infinite_with_a_zero_gradient():
    labels = np.array([[1, 1, 1]], np.int64)  # needs 5 steps, only 3 given
    logits = df.Variable(RNG.normal(size=(1, 3, 2)).astype(np.float32), name="ctc/short")
    with df.GradientTape() as tape:
        loss = losses.ctc(labels, logits)
        total = df.reduce_sum(loss)
    assert np.isinf(loss.numpy()[0])
    np.testing.assert_array_equal(tape.gradient(total, logits).numpy(), 0.0)


@pytest.mark.parametrize("fn", [lambda t, p: losses.dice(t, p, axis=(1, 2)),
                                lambda t, p: losses.tversky(t, p, 0.3, 0.7)],
                         ids=["dice", "tversky"])
def test_overlap_gradients_match_finite_differences(fn):
    y_true = (RNG.uniform(size=(3, 4, 2)) > 0.5).astype(np.float64)
    check_grads(lambda p: fn(y_true, p), [RNG.uniform(0.1, 0.9, size=(3, 4, 2))])


def test_circle_gradient_matches_finite_differences():
    labels = np.array([0, 1, 0, 2, 1, 2])
    emb = RNG.normal(size=(6, 4))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    check_grads(lambda e: losses.circle(labels, e, gamma=4.0), [emb], rtol=1e-5, atol=1e-7)


def test_configs_round_trip_and_names_resolve():
    for loss in (losses.Dice(axis=[1, 2]), losses.Tversky(0.2, 0.8), losses.CTC(),
                 losses.Circle(gamma=10.0), losses.CategoricalGeneralizedCrossEntropy(0.3)):
        rebuilt = losses.deserialize(losses.serialize(loss))
        assert type(rebuilt) is type(loss) and rebuilt.get_config() == loss.get_config()
    assert isinstance(losses.get("ctc"), losses.CTC) and isinstance(losses.get("dice"),
                                                                      losses.Dice)
    with pytest.raises(ValueError, match="max_length"):
        losses.ctc(np.ones(3), np.ones((1, 3, 2)))


def test_a_model_trained_with_ctc_learns_its_labels():
    df.random.set_seed(0)
    steps, classes = 6, 4
    # Each step's input tells the step apart (a one-hot position plus noise).
    x = (np.eye(steps)[None] + 0.1 * RNG.normal(size=(32, steps, steps))).astype(np.float32)
    labels = np.array([[1, 2, 3]] * 32, np.float32)
    model = Sequential([Input(shape=(steps, steps)), layers.Dense(16, activation="tanh"),
                        layers.Dense(classes)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=losses.CTC())
    history = model.fit(x, labels, batch_size=8, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
