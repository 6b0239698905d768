"""keras.backend: Keras 3's names and tf.keras 2's functions that scripts still call."""

from __future__ import annotations

import numpy as np
import pytest

import distflow as df
from distflow.keras import backend as K
from distflow.keras import layers
from distflow.keras.functional import Input


def test_keras_3_names():
    assert K.backend() == "numpy" and K.floatx() == "float32" and K.epsilon() == 1e-7
    assert K.standardize_dtype("float64") == "float64" and K.standardize_dtype(None) == "float32"
    assert K.is_float_dtype("float16") and K.is_int_dtype("uint8") and not K.is_int_dtype("f4")
    assert K.result_type("int32", "float32") == "float64"  # NumPy's promotion
    assert K.is_keras_tensor(Input(shape=(2,))) and not K.is_keras_tensor(df.constant(1.0))
    K.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match="channels_last"):
        K.set_image_data_format("channels_first")
    first = K.get_uid("test_backend_prefix")
    assert K.get_uid("test_backend_prefix") == first + 1


def test_values_and_variables():
    v = K.variable(np.arange(6).reshape(2, 3).astype("float64"))
    assert v.dtype == np.float32 and K.int_shape(v) == (2, 3) and K.ndim(v) == 2
    K.set_value(v, np.ones((2, 3)))
    snapshot = K.get_value(v)
    K.update_add(v, np.ones((2, 3)))
    np.testing.assert_array_equal(snapshot, 1.0)  # get_value is a copy
    np.testing.assert_array_equal(K.eval(v), 2.0)
    K.batch_set_value([(v, np.zeros((2, 3)))])
    assert K.batch_get_value([v])[0].sum() == 0 and K.count_params(v) == 6
    with pytest.raises(TypeError, match="set_value"):
        K.set_value(0.5, 1.0)
    assert K.dtype(K.cast(v, "int32")) == "int32"
    assert K.zeros((2,)).numpy().tolist() == [0, 0] and isinstance(K.ones((1,)), df.Variable)


def test_tf_keras_2_math_is_differentiable():
    x = df.Variable(np.array([[1.0, -2.0], [3.0, 0.5]], np.float32), name="backend/x")
    with df.GradientTape() as tape:
        y = K.sum(K.square(K.relu(x))) + K.mean(K.exp(x), axis=1)[0]
    grad = tape.gradient(y, x).numpy()
    expected = 2 * np.maximum(x.numpy(), 0) + np.array([[np.e, np.exp(-2)], [0, 0]]) / 2
    np.testing.assert_allclose(grad, expected, rtol=1e-5)
    np.testing.assert_array_equal(K.argmax(x).numpy(), [0, 0])  # last axis, as tf.keras 2
    np.testing.assert_allclose(K.clip(x, -1.0, 1.0).numpy(), [[1, -1], [1, 0.5]])
    assert K.concatenate([x, x]).shape == (2, 4) and K.batch_flatten(x).shape == (2, 2)
    assert K.random_normal((3, 2), seed=1).shape == (3, 2)
    assert float(K.max(K.random_uniform((100,), 2.0, 3.0, seed=2))) < 3.0
    np.testing.assert_allclose(np.linalg.norm(K.l2_normalize(x, axis=1).numpy(), axis=1), 1,
                               rtol=1e-6)


def test_a_lambda_layer_written_with_the_backend_works():
    inp = Input(shape=(3,))
    out = layers.Lambda(lambda t: K.sum(K.square(t), axis=-1, keepdims=True))(inp)
    model = df.keras.Model(inp, out)
    np.testing.assert_allclose(model.predict(np.ones((2, 3), np.float32), verbose=0), 3.0)
