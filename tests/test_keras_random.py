"""keras.random: int seeds repeat, SeedGenerator streams advance reproducibly, None uses the
global generator."""

from __future__ import annotations

import numpy as np
import pytest

import distflow as df
from distflow import keras


def test_seeds_as_keras_takes_them():
    a = keras.random.normal((3,), seed=7).numpy()
    np.testing.assert_array_equal(a, keras.random.normal((3,), seed=7).numpy())
    gen, again = keras.random.SeedGenerator(5), keras.random.SeedGenerator(5)
    first, second = keras.random.uniform((4,), seed=gen), keras.random.uniform((4,), seed=gen)
    assert not np.array_equal(first.numpy(), second.numpy())
    np.testing.assert_array_equal(first.numpy(), keras.random.uniform((4,), seed=again).numpy())
    df.random.set_seed(3)
    b = keras.random.truncated_normal((2, 2)).numpy()
    df.random.set_seed(3)
    np.testing.assert_array_equal(b, keras.random.truncated_normal((2, 2)).numpy())
    assert keras.random.normal((2,)).dtype == np.float32
    with pytest.raises(ValueError, match="SeedGenerator"):
        keras.random.normal((2,), seed="seven")


def test_integer_draws_shuffle_categorical_and_dropout():
    ints = keras.random.randint((100,), 2, 5, seed=1).numpy()
    assert ints.min() >= 2 and ints.max() < 5 and ints.dtype == np.int32
    x = np.arange(10)
    assert sorted(keras.random.shuffle(x, seed=2).numpy().tolist()) == x.tolist()
    draws = keras.random.categorical(np.log([[0.0001, 0.9999]]), 50, seed=3).numpy()
    assert draws.shape == (1, 50) and draws.mean() > 0.9
    kept = keras.random.dropout(np.ones((1000,), np.float32), 0.5, seed=4).numpy()
    assert set(np.unique(kept)) <= {0.0, 2.0} and 0.4 < (kept > 0).mean() < 0.6
