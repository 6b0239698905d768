"""EinsumDense: gradients, training, config and errors (outputs against Keras 3 are in
tests/test_goldens.py)."""

from __future__ import annotations

import numpy as np
import pytest

from distflow import keras
from distflow.keras import layers
from distflow.keras.functional import Input
from distflow.keras.layers import einsum_dense
from distflow.keras.models import Model
from distflow.test_util import check_grads

RNG = np.random.default_rng(6)


@pytest.mark.parametrize("specs,shapes", [
    (("abc", "cde", "abde"), [(2, 3, 4), (4, 2, 5)]),
    (("abc", "cd", "ad"), [(2, 3, 4), (4, 5)]),  # b summed out of the input alone
    (("ab", "bc", "ac"), [(3, 2), (2, 4)]),
], ids=["two-output-axes", "input-only-sum", "matmul"])
def test_einsum_primitive_gradients(specs, shapes):
    check_grads(lambda a, b: einsum_dense._einsum(a, b, specs=specs),
                [RNG.normal(size=s) for s in shapes])


def test_a_model_with_einsum_dense_trains_and_round_trips(tmp_path):
    inp = Input(shape=(5, 3))
    out = layers.EinsumDense("abc,cd->abd", (None, 2), bias_axes="d",
                             kernel_constraint="max_norm")(inp)
    model = Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    x = RNG.normal(size=(32, 5, 3)).astype(np.float32)
    y = (x @ RNG.normal(size=(3, 2))).astype(np.float32)
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    model.save(tmp_path / "einsum.keras")
    loaded = keras.models.load_model(tmp_path / "einsum.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    assert loaded.layers[1].get_config()["equation"] == "abc,cd->abd"


def test_bad_equations_raise_as_keras_does():
    with pytest.raises(ValueError, match="Invalid einsum equation"):
        layers.EinsumDense("ab->b", 3)
    with pytest.raises(ValueError, match="no corresponding dim|has no corresponding"):
        layers.EinsumDense("ab,bc->ad", 3)(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="Bias dimension 'z'"):
        layers.EinsumDense("ab,bc->ac", 3, bias_axes="z")(np.ones((2, 2), np.float32))
