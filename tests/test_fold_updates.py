"""A plain SGD update folded into the product computing its gradient: one BLAS GEMM
with beta = 1 instead of a gradient array and a second pass (`graph/fold_updates.py`),
and every case where it must not happen."""

from __future__ import annotations

import numpy as np
import pytest

import distflow as df
from distflow import blas, keras
from distflow.keras import layers

RNG = np.random.default_rng(5)
X = RNG.normal(size=(60, 8)).astype("float32")
Y = RNG.integers(0, 3, 60)


@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-6), ("float64", 1e-14)])
def test_gemm_accumulate_adds_the_scaled_product(dtype, rtol):
    a = RNG.normal(size=(7, 50)).astype(dtype)[:, :40]  # rows with a stride of 50
    b, c = RNG.normal(size=(7, 3)).astype(dtype), RNG.normal(size=(40, 3)).astype(dtype)
    expected = c - np.asarray(0.25, dtype) * (a.T @ b)
    assert blas.gemm_accumulate(a, b, c, -0.25)
    np.testing.assert_allclose(c, expected, rtol=rtol, atol=rtol)


def test_gemm_accumulate_refuses_what_it_cannot_take_and_writes_nothing():
    a, b = RNG.normal(size=(7, 4)).astype("float32"), RNG.normal(size=(7, 3)).astype("float32")
    c = np.zeros((4, 3), np.float32)
    for args in [(a.astype("float64"), b, c), (a, b, c.astype("float16")),
                 (a, b, np.zeros((3, 4), np.float32).T),  # not C-contiguous
                 (a, b[:6], c), (a[:, ::2], b, c[:2]),  # shapes; rows not contiguous
                 (a.astype("int32"), b.astype("int32"), c.astype("int32"))]:
        before = args[2].copy()
        assert not blas.gemm_accumulate(*args, -1.0)
        np.testing.assert_array_equal(args[2], before)


def _mlp(optimizer, eager):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu"),
                              layers.Dense(3)])
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=eager)
    return model


def _plan(function):
    (concrete,) = function.concrete_functions()
    return concrete._plan


def test_plain_sgd_folds_into_every_kernel_gradient_and_trains_as_eagerly():
    eager, compiled = _mlp(keras.optimizers.SGD(0.3), True), _mlp(keras.optimizers.SGD(0.3), False)
    for model in (eager, compiled):
        model.fit(X, Y, batch_size=20, epochs=2, verbose=0, shuffle=False)
    assert _plan(compiled.train_function).folded_updates == 2  # both Dense kernels
    for a, b in zip(eager.get_weights(), compiled.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(compiled.optimizer.iterations.numpy()) == 6
    assert len(compiled.optimizer._slots) == len(eager.optimizer._slots) == 4


@pytest.mark.parametrize("change", ["momentum", "clipnorm", "weight_decay"])
def test_an_update_that_stops_being_plain_sgd_after_tracing_gets_its_gradient(change):
    """The fold is decided at every step: a momentum, clipping or weight decay set on the
    optimizer after the step was traced must reach the very next step."""
    models = [_mlp(keras.optimizers.SGD(0.3), eager) for eager in (True, False)]
    for model in models:
        model.fit(X, Y, batch_size=20, epochs=1, verbose=0, shuffle=False)
        opt = model.optimizer
        if change == "momentum":
            opt.hyper["momentum"] = 0.9
        elif change == "clipnorm":
            opt.clipnorm = 1e-3
        else:
            opt.weight_decay = 0.5
        model.fit(X, Y, batch_size=20, epochs=2, verbose=0, shuffle=False)
    assert _plan(models[1].train_function).folded_updates == 2
    for a, b in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _traced_step(optimizer, read_after):
    w = df.Variable(RNG.normal(size=(8, 3)).astype("float32"))

    @df.function
    def step(x):
        with df.GradientTape() as tape:
            loss = df.reduce_sum(df.square(df.matmul(x, w)))
        optimizer.apply_gradients([(tape.gradient(loss, w), w)])
        return df.reduce_sum(w) if read_after else loss
    return w, step


@pytest.mark.parametrize("optimizer,read_after,folds", [
    (lambda: keras.optimizers.SGD(0.01), False, 1),
    (lambda: keras.optimizers.SGD(0.01), True, 0),  # the step reads w after its update
    (lambda: keras.optimizers.Adam(0.01), False, 0),
    (lambda: keras.optimizers.SGD(0.01, momentum=0.5), False, 1),  # decided per step
])
def test_a_traced_step_folds_only_what_nothing_reads_later(optimizer, read_after, folds):
    w, step = _traced_step(optimizer(), read_after)
    start = w.numpy().copy()
    expect_w, expect_opt = df.Variable(start), optimizer()
    for _ in range(3):
        got = step(df.constant(X[:10]))
        with df.GradientTape() as tape:
            loss = df.reduce_sum(df.square(df.matmul(df.constant(X[:10]), expect_w)))
        expect_opt.apply_gradients([(tape.gradient(loss, expect_w), expect_w)])
        if read_after:
            np.testing.assert_allclose(got.numpy(), expect_w.numpy().sum(), rtol=1e-5)
    assert _plan(step).folded_updates == folds
    np.testing.assert_allclose(w.numpy(), expect_w.numpy(), rtol=1e-5, atol=1e-6)
