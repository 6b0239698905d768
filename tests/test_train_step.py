"""Keras 3's "customize what happens in fit()": train_step/test_step/predict_step and friends.

Each test follows a pattern from Keras's guides (custom train_step, tf.keras 2 style with
compiled_loss/compiled_metrics, GAN, VAE, add_loss-only models) on small data.
"""

from __future__ import annotations

import numpy as np
import pytest

import distflow as df
from distflow import keras
from distflow.keras import layers, ops
from distflow.keras.functional import Input
from distflow.keras.models import Model, Sequential


def _regression(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.1).astype(np.float32)
    return x, y


def _functional(cls=Model, units=1):
    inp = Input(shape=(3,))
    return cls(inp, layers.Dense(units)(inp))


class Keras3Step(Model):
    """The Keras 3 guide's model: compute_loss, optimizer.apply, a loop over self.metrics."""

    calls = 0

    def train_step(self, data):
        type(self).calls += 1
        x, y = data
        with df.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply(gradients, trainable_vars)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


@pytest.mark.parametrize("run_eagerly", [True, False])
def test_custom_train_step_is_what_fit_runs(run_eagerly):
    x, y = _regression()
    Keras3Step.calls = 0
    model = _functional(Keras3Step)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"],
                  run_eagerly=run_eagerly)
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    # compiled, the Python function runs once, when traced (as in Keras)
    assert Keras3Step.calls == (3 * 4 if run_eagerly else 1)
    assert set(history.history) == {"loss", "mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.optimizer.iterations == 12


class FrozenStep(Model):
    def train_step(self, data):
        return {"seen": float(len(data[0]))}


def test_overriding_train_step_changes_training():
    x, y = _regression()
    model = _functional(FrozenStep)
    model.compile(optimizer="sgd", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert history.history == {"seen": [64.0, 64.0]}


class Keras2Step(Model):
    """tf.keras 2's idiom: compiled_loss, apply_gradients, compiled_metrics."""

    def train_step(self, data):
        x, y = data
        with df.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compiled_loss(y, y_pred, regularization_losses=self.losses)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply_gradients(zip(gradients, trainable_vars))
        self.compiled_metrics.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_tf_keras_2_style_step_matches_the_default_step():
    x, y = _regression()
    custom = _functional(Keras2Step)
    default = _functional()
    default.set_weights(custom.get_weights())
    for model in (custom, default):
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    with pytest.warns(UserWarning, match="compiled_loss"):
        h_custom = custom.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
    h_default = default.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
    assert set(h_custom.history) == {"loss", "mae"}
    for key in ("loss", "mae"):
        np.testing.assert_allclose(h_custom.history[key], h_default.history[key], rtol=1e-6)


class CustomEval(Model):
    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        return {"max_error": float(np.max(np.abs(y_pred.numpy() - y)))}

    def predict_step(self, data):
        return {"doubled": self(data, training=False) * 2.0}


def test_custom_test_step_and_predict_step():
    x, y = _regression(40)
    model = _functional(CustomEval)
    model.compile(optimizer="sgd", loss="mse")
    expected = np.max(np.abs(model(x).numpy() - y[:40]))
    logs = model.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
    assert logs == {"max_error": pytest.approx(expected, rel=1e-6)}
    assert model.evaluate(x, y, batch_size=40, verbose=0) == pytest.approx(expected, rel=1e-6)
    out = model.predict(x, batch_size=16, verbose=0)
    np.testing.assert_allclose(out["doubled"], 2 * model(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x)["doubled"], out["doubled"], rtol=1e-6)


def test_metrics_lists_the_trackers_and_reset_metrics_clears_them():
    x, y = _regression()
    model = _functional()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics"]
    model.fit(x, y, epochs=1, verbose=0)
    results = model.get_metrics_result()
    assert set(results) == {"loss", "mae"} and float(results["loss"]) > 0
    model.reset_metrics()
    assert all(float(v) == 0.0 for v in model.get_metrics_result().values())
    plain = _functional()
    plain.compile(optimizer="sgd", loss="mse")
    assert [m.name for m in plain.metrics] == ["loss"]


class Tracked(Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1)
        self.loss_tracker = keras.metrics.Mean(name="my_loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="my_mae")

    def call(self, inputs, training=False):
        return self.dense(inputs)

    def train_step(self, data):
        x, y = data
        with df.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = df.reduce_mean(df.square(y_pred - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"my_loss": self.loss_tracker.result(), "my_mae": self.mae_metric.result()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def test_trackers_of_an_overridden_metrics_property_are_reset_every_epoch():
    x, y = _regression()
    model = Tracked()
    model.compile(optimizer=keras.optimizers.SGD(0.05))  # no loss: the step computes it
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
    # Reset at the start of epoch 2: its mean is over its own 4 batches only.
    assert model.loss_tracker.count == 4
    assert history.history["my_loss"][1] < history.history["my_loss"][0]


def test_attribute_metrics_are_listed_after_the_compiled_ones():
    class WithAttr(Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = layers.Dense(1)
            self.extra = keras.metrics.Mean(name="extra")

        def call(self, inputs):
            return self.dense(inputs)

    model = WithAttr()
    model.compile(optimizer="sgd", loss="mse")
    assert [m.name for m in model.metrics] == ["loss", "extra"]


def test_compute_loss_and_compute_metrics_default_behaviour():
    x, y = _regression(16)
    model = _functional()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    y_pred = model(x)
    loss = model.compute_loss(x, y, y_pred)
    assert float(loss) == pytest.approx(float(np.mean((y_pred.numpy() - y) ** 2)), rel=1e-6)
    logs = model.compute_metrics(x, y, y_pred)
    assert float(logs["mae"]) == pytest.approx(float(np.mean(np.abs(y_pred.numpy() - y))),
                                               rel=1e-6)


# ----------------------------------------------------------------------------- GAN


class GAN(Model):
    """The Keras guide's GAN (x-only data, two optimizers, its own trackers)."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def train_step(self, real):
        if isinstance(real, tuple):
            real = real[0]
        batch_size = ops.shape(real)[0]
        noise = keras.random.normal(shape=(batch_size, self.latent_dim),
                                    seed=self.seed_generator)
        fake = self.generator(noise)
        combined = ops.concatenate([fake, real], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((real.shape[0], 1))],
                                 axis=0)
        with df.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        noise = keras.random.normal(shape=(batch_size, self.latent_dim),
                                    seed=self.seed_generator)
        with df.GradientTape() as tape:
            g_loss = self.loss_fn(ops.zeros((batch_size, 1)),
                                  self.discriminator(self.generator(noise)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


def test_gan_from_the_guide_trains_both_networks():
    df.random.set_seed(0)
    latent = 4
    discriminator = Sequential([Input(shape=(2,)), layers.Dense(8, activation="relu"),
                                layers.Dense(1, activation="sigmoid")])
    generator = Sequential([Input(shape=(latent,)), layers.Dense(8, activation="relu"),
                            layers.Dense(2)])
    gan = GAN(discriminator, generator, latent)
    gan.compile(keras.optimizers.Adam(0.01), keras.optimizers.Adam(0.01),
                keras.losses.BinaryCrossentropy())
    real = np.random.default_rng(0).normal(loc=3.0, size=(128, 2)).astype(np.float32)
    d_before, g_before = discriminator.get_weights()[0].copy(), generator.get_weights()[0].copy()
    history = gan.fit(real, batch_size=32, epochs=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    assert all(np.isfinite(v) for vs in history.history.values() for v in vs)
    assert gan.d_optimizer.iterations == gan.g_optimizer.iterations == 8
    assert not np.allclose(discriminator.get_weights()[0], d_before)
    assert not np.allclose(generator.get_weights()[0], g_before)


# ----------------------------------------------------------------------------- VAE


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = df.random.normal(shape=df.shape(z_mean))
        return z_mean + df.exp(0.5 * z_log_var) * eps


class VAE(Model):
    """The Keras guide's VAE: no call(), the loss computed in train_step."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with df.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            rec = df.reduce_mean(df.reduce_sum(
                keras.losses.binary_crossentropy(data, reconstruction)[:, None], axis=1))
            kl = -0.5 * (1 + z_log_var - df.square(z_mean) - df.exp(z_log_var))
            kl = df.reduce_mean(df.reduce_sum(kl, axis=1))
            total = rec + kl
        grads = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total)
        self.kl_loss_tracker.update_state(kl)
        return {"loss": self.total_loss_tracker.result(), "kl_loss": self.kl_loss_tracker.result()}


def test_vae_without_call_trains_through_its_train_step():
    df.random.set_seed(1)
    inp = Input(shape=(6,))
    h = layers.Dense(8, activation="relu")(inp)
    z_mean, z_log_var = layers.Dense(2)(h), layers.Dense(2)(h)
    encoder = Model(inp, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])])
    latent = Input(shape=(2,))
    decoder = Model(latent, layers.Dense(6, activation="sigmoid")(
        layers.Dense(8, activation="relu")(latent)))
    vae = VAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(0.01))
    data = (np.random.default_rng(0).random((128, 6)) > 0.5).astype(np.float32)
    history = vae.fit(data, batch_size=32, epochs=4, verbose=0)
    assert set(history.history) == {"loss", "kl_loss"}
    assert history.history["loss"][-1] < history.history["loss"][0]


# ----------------------------------------------------------------------------- add_loss


class ActivityPenalty(layers.Layer):
    def call(self, inputs):
        self.add_loss(df.reduce_mean(df.square(inputs - 1.0)))
        return inputs


def test_model_whose_only_loss_is_add_loss_trains():
    x, _ = _regression(64)
    inp = Input(shape=(3,))
    out = ActivityPenalty()(layers.Dense(2)(inp))
    model = Model(inp, out)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, batch_size=16, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(x, verbose=0) == pytest.approx(
        float(np.mean((model.predict(x, verbose=0) - 1.0) ** 2)), rel=1e-4)


def test_train_on_batch_and_test_on_batch_use_the_steps():
    x, y = _regression(32)
    FrozenCalls = type("FrozenCalls", (Model,), {
        "train_step": lambda self, data: {"n": float(len(data[0]))},
        "test_step": lambda self, data: {"m": 2.0 * len(data[0])}})
    model = _functional(FrozenCalls)
    model.compile(optimizer="sgd", loss="mse")
    assert model.train_on_batch(x, y, return_dict=True) == {"n": 32.0}
    assert model.test_on_batch(x, y) == 64.0


class PerSamplePenalty(layers.Layer):
    def call(self, inputs):
        self.add_loss(df.reduce_sum(df.square(inputs), axis=1))  # one value per sample
        return inputs


def test_add_loss_of_per_sample_values_is_summed_as_keras_does():
    x, _ = _regression(64)
    inp = Input(shape=(3,))
    model = Model(inp, PerSamplePenalty()(layers.Dense(2)(inp)))
    model.compile(optimizer=keras.optimizers.SGD(0.001))
    history = model.fit(x, batch_size=16, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    out = model.predict(x, verbose=0)
    assert model.evaluate(x, batch_size=64, verbose=0) == pytest.approx(float(np.sum(out ** 2)),
                                                                        rel=1e-4)


class MeanActivation(layers.Layer):
    def call(self, inputs):
        self.add_metric(df.reduce_mean(inputs), name="mean_activation")
        return inputs


def test_add_metric_in_a_layer_is_reported_per_epoch():
    x, y = _regression(32)
    inp = Input(shape=(3,))
    model = Model(inp, layers.Dense(1)(MeanActivation()(inp)))
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert history.history["mean_activation"] == pytest.approx([float(x.mean())] * 2, rel=1e-5)
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert logs["mean_activation"] == pytest.approx(float(x.mean()), rel=1e-5)
    with pytest.raises(ValueError, match="name"):
        layers.Layer().add_metric(1.0)


# ----------------------------------------------------------------------------- strategy


def _fit_keras3_step(strategy=None):
    x, y = _regression(64, seed=3)
    model = _functional(Keras3Step)
    model.set_weights([np.full((3, 1), 0.1, np.float32), np.zeros(1, np.float32)])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5), loss="mse")
    if strategy is None:
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    else:
        with strategy.scope():
            history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return model.get_weights(), history.history["loss"]


def test_a_custom_train_step_is_routed_to_the_parameter_servers(servers):
    from test_hyperparams import _mirrored

    local, local_loss = _fit_keras3_step()
    server = servers(mode="sync")
    strategy = _mirrored(server)
    try:
        remote, remote_loss = _fit_keras3_step(strategy)
    finally:
        strategy.close()
    assert server.version == 8  # every step of the custom train_step went through the server
    np.testing.assert_allclose(remote_loss, local_loss, rtol=1e-5)
    for a, b in zip(local, remote):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
