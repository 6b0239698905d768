"""Cross-format fixtures: files real Keras 3 wrote, and Keras's verdict on files distflow wrote.

Three steps, two environments (TensorFlow is never a dependency of distflow):

    /tmp/tfenv/bin/python tools/make_goldens_saving.py make    # Keras writes its files
    .venv/bin/python      tools/make_goldens_saving.py write   # distflow writes its files
    /tmp/tfenv/bin/python tools/make_goldens_saving.py check   # Keras loads distflow's files

Everything lands in tests/goldens/saving/:

* `make`: for each model (`seq`: Sequential with Dense, BatchNormalization, Dropout, compiled
  with Adam and trained two steps; `fun`: two-input functional model with Embedding, LSTM,
  Conv2D, Flatten, Concatenate, Dense; `sub`: a registered subclassed model; `rnn`: Conv1D,
  LayerNormalization, Bidirectional LSTM, GRU, SimpleRNN, TimeDistributed; `conv`:
  BatchNormalization, MaxPooling2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose;
  `mha`: MultiHeadAttention, GlobalMaxPooling1D) the Keras 3
  `<m>.keras` and `<m>.weights.h5`, the legacy (Keras 2 layout) `<m>_legacy.h5` full model
  (`seq`, `fun`) and `<m>_legacy.weights.h5` weights (`seq`, `fun`, `sub`), and
  `keras_predictions.json` (inputs and Keras's outputs);
  tf.keras 2 (the `tf_keras` package) writes `seq` and `fun` as `<m>_tfkeras2.h5` and
  `<m>_tfkeras2.weights.h5` (other weights: their outputs are under `tf_keras_2`).
* `write`: `distflow_<m>.keras` and `distflow_<m>.weights.h5`, models built by distflow with
  weights from a fixed seed; `distflow_predictions.json` holds distflow's outputs;
  `distflow_opt_<name>.keras`: a model compiled with SGD, RMSprop, Adagrad or AdamW whose
  optimizer slots come from a fixed seed (Keras records its optimizer variables by path).
* `check`: Keras loads every `distflow_*` file and records its own predictions in
  `keras_verified.json`; tests/test_saving_keras_format.py rebuilds the distflow files the same
  way, checks they equal the committed ones and that distflow's outputs equal Keras's.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "goldens" / "saving"
MODELS = ("seq", "fun", "sub", "rnn", "conv", "mha")


def inputs() -> dict[str, list[np.ndarray]]:
    """The fixed inputs each model is evaluated on."""
    rng = np.random.default_rng(1515)
    return {"seq": [rng.normal(size=(5, 4)).astype(np.float32)],
            "fun": [rng.integers(0, 10, size=(3, 5)).astype(np.int32),
                    rng.normal(size=(3, 6, 6, 1)).astype(np.float32)],
            "sub": [rng.normal(size=(4, 4)).astype(np.float32)],
            "rnn": [rng.normal(size=(3, 6, 3)).astype(np.float32)],
            "conv": [rng.normal(size=(2, 8, 8, 2)).astype(np.float32)],
            "mha": [rng.normal(size=(2, 4, 6)).astype(np.float32)]}


def build(keras, kind: str):
    """The model `kind` built with the `keras` API given (real Keras or distflow's)."""
    layers = keras.layers
    if kind == "seq":
        return keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu"),
                                 layers.BatchNormalization(), layers.Dropout(0.1),
                                 layers.Dense(2)])
    if kind == "fun":
        tokens, image = keras.Input((5,), dtype="int32"), keras.Input((6, 6, 1))
        text = layers.LSTM(3)(layers.Embedding(10, 4)(tokens))
        picture = layers.Dense(3)(layers.Flatten()(layers.Conv2D(2, 3)(image)))
        merged = layers.Concatenate()([text, picture])
        return keras.Model([tokens, image], layers.Dense(2, activation="softmax")(merged))
    if kind == "rnn":
        x = keras.Input((6, 3))
        h = layers.LayerNormalization()(layers.Conv1D(4, 2, activation="relu")(x))
        h = layers.Bidirectional(layers.LSTM(3, return_sequences=True))(h)
        h = layers.SimpleRNN(3, return_sequences=True)(layers.GRU(2, return_sequences=True)(h))
        h = layers.GlobalAveragePooling1D()(layers.TimeDistributed(layers.Dense(2))(h))
        return keras.Model(x, layers.Dense(2)(h))
    if kind == "conv":
        x = keras.Input((8, 8, 2))
        h = layers.BatchNormalization()(layers.Conv2D(3, 3, padding="same")(x))
        h = layers.DepthwiseConv2D(3)(layers.MaxPooling2D()(h))
        h = layers.Conv2DTranspose(2, 2, strides=2)(layers.SeparableConv2D(4, 1)(h))
        return keras.Model(x, layers.Dense(3)(layers.Flatten()(h)))
    if kind == "mha":
        x = keras.Input((4, 6))
        h = layers.MultiHeadAttention(2, 3)(x, x)
        return keras.Model(x, layers.Dense(1)(layers.GlobalMaxPooling1D()(h)))
    model = subclass(keras)()
    model(np.zeros((1, 4), np.float32))
    return model


_SUBCLASSES: dict = {}


def subclass(keras):
    """`goldens>Sub`, a registered subclassed model: a list of layers, a BN, an output."""
    if id(keras) in _SUBCLASSES:
        return _SUBCLASSES[id(keras)]

    @keras.saving.register_keras_serializable(package="goldens")
    class Sub(keras.Model):
        def __init__(self, units=3, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.out = keras.layers.Dense(2)
            self.hidden = [keras.layers.Dense(units, activation="tanh"),
                           keras.layers.Dense(units)]
            self.bn = keras.layers.BatchNormalization()

        def call(self, x, training=False):
            for layer in self.hidden:
                x = layer(x)
            return self.out(self.bn(x, training=training))

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    _SUBCLASSES[id(keras)] = Sub
    return Sub


def _lists(arrays) -> list:
    return [np.asarray(a).tolist() for a in arrays]


def _dump(name: str, data) -> None:
    (OUT / name).write_text(json.dumps(data, indent=0) + "\n")


def make() -> None:
    """Keras writes its `.keras`, `.weights.h5` and legacy `.h5` files and its predictions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(15)
    OUT.mkdir(parents=True, exist_ok=True)
    xs, predictions = inputs(), {}
    for kind in MODELS:
        model = build(keras, kind)
        if kind == "seq":
            model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
            rng = np.random.default_rng(7)
            model.fit(rng.normal(size=(8, 4)), rng.normal(size=(8, 2)), batch_size=4,
                      epochs=1, verbose=0)
        x = xs[kind] if len(xs[kind]) > 1 else xs[kind][0]
        model.save(OUT / f"{kind}.keras")
        model.save_weights(OUT / f"{kind}.weights.h5")
        if kind in ("seq", "fun"):  # legacy files: for the first models only
            model.save(OUT / f"{kind}_legacy.h5")
        import h5py

        if kind in ("seq", "fun", "sub"):
            with h5py.File(OUT / f"{kind}_legacy.weights.h5", "w") as f:
                legacy_h5_format.save_weights_to_hdf5_group(f, model)
        predictions[kind] = {"inputs": _lists(xs[kind]),
                             "outputs": np.asarray(model.predict(x, verbose=0)).tolist()}
        if kind == "seq":
            predictions[kind]["adam"] = adam_state(model.optimizer)
    for kind in ("seq", "fun"):
        predictions[kind]["tf_keras_2"] = tf_keras_2(kind)
    _dump("keras_predictions.json", predictions)


def tf_keras_2(kind: str) -> list:
    """tf.keras 2 (the `tf_keras` package) writes `<kind>_tfkeras2.h5` and
    `<kind>_tfkeras2.weights.h5` in its own HDF5 format; returns its predictions."""
    import tf_keras

    tf_keras.utils.set_random_seed(16)
    model = build(tf_keras, kind)
    if kind == "seq":
        model.compile(optimizer=tf_keras.optimizers.Adam(0.01), loss="mse")
        rng = np.random.default_rng(8)
        model.fit(rng.normal(size=(8, 4)), rng.normal(size=(8, 2)), batch_size=4, epochs=1,
                  verbose=0)
    model.save(OUT / f"{kind}_tfkeras2.h5", save_format="h5")
    model.save_weights(OUT / f"{kind}_tfkeras2.weights.h5", save_format="h5")
    x = inputs()[kind]
    return np.asarray(model.predict(x if len(x) > 1 else x[0], verbose=0)).tolist()


def adam_state(optimizer) -> dict:
    """Keras Adam's step and, per trainable variable (by value), its two slots."""
    return {"iterations": int(np.asarray(optimizer.iterations)),
            "variables": [{"value": np.asarray(var).tolist(), "m": np.asarray(m).tolist(),
                           "v": np.asarray(v).tolist()}
                          for var, m, v in zip(optimizer._trainable_variables,
                                               optimizer._momentums, optimizer._velocities)]}


def set_seeded_weights(model, seed: int = 2024) -> None:
    """Gives every weight of `model` values from a fixed seed (variances stay positive)."""
    rng = np.random.default_rng(seed)
    model.set_weights([np.abs(rng.normal(size=w.shape)).astype(w.dtype) + 0.5
                       if "variance" in name else
                       (rng.normal(size=w.shape) * 0.4).astype(w.dtype)
                       for w, name in zip(model.get_weights(), [v.name for v in model.weights])])


def distflow_model(kind: str):
    """The distflow model `kind` with seeded weights and Adam state (names from a fresh
    session, so every run writes the same files)."""
    import distflow.keras as keras

    keras.backend.clear_session()
    model = build(keras, kind)
    set_seeded_weights(model)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    _seed_optimizer(model)
    return model


OPTIMIZERS = {"sgd": ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
              "rmsprop": ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
              "adagrad": ("Adagrad", {"learning_rate": 0.1}),
              "adamw": ("AdamW", {"learning_rate": 0.01, "amsgrad": True})}


def optimizer_model(name: str):
    """A functional model with a nested Sequential, seeded weights, compiled with the
    optimizer `name` (metrics and a loss object too), its slots from a fixed seed."""
    import distflow.keras as keras

    keras.backend.clear_session()
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu")])
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(3)(inner(x)))
    set_seeded_weights(model)
    cls, kwargs = OPTIMIZERS[name]
    model.compile(optimizer=getattr(keras.optimizers, cls)(**kwargs),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    _seed_optimizer(model)
    return model


def _seed_optimizer(model) -> None:
    optimizer = model.optimizer
    optimizer.build(model.trainable_weights)
    rng = np.random.default_rng(99)
    optimizer.set_state({key: np.asarray(3, np.int64) if key == "iterations" else
                         (np.abs(rng.normal(size=np.shape(value))) * 0.01).astype(np.float32)
                         for key, value in optimizer.get_state().items()})


def write() -> None:
    """distflow writes `distflow_<m>.keras` / `.weights.h5` and its predictions."""
    predictions = {}
    for kind in MODELS:
        model = distflow_model(kind)
        model.save(OUT / f"distflow_{kind}.keras")
        model.save_weights(OUT / f"distflow_{kind}.weights.h5")
        x = inputs()[kind]
        out = model.predict(x if len(x) > 1 else x[0], verbose=0)
        predictions[kind] = np.asarray(out).tolist()
    for name in OPTIMIZERS:
        optimizer_model(name).save(OUT / f"distflow_opt_{name}.keras")
    _dump("distflow_predictions.json", predictions)


def check() -> None:
    """Keras loads distflow's files; its predictions go to `keras_verified.json`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    subclass(keras)
    verified = {}
    for kind in MODELS:
        x = inputs()[kind]
        x = x if len(x) > 1 else x[0]
        model = keras.models.load_model(OUT / f"distflow_{kind}.keras")
        twin = build(keras, kind)
        twin.load_weights(OUT / f"distflow_{kind}.weights.h5")
        verified[kind] = {"keras_version": keras.__version__,
                          "load_model": np.asarray(model.predict(x, verbose=0)).tolist(),
                          "load_weights": np.asarray(twin.predict(x, verbose=0)).tolist(),
                          "adam": adam_state(model.optimizer)}
    for name in OPTIMIZERS:
        model = keras.models.load_model(OUT / f"distflow_opt_{name}.keras")
        optimizer = model.optimizer
        verified[f"opt_{name}"] = {
            "class": type(optimizer).__name__, "iterations": int(optimizer.iterations),
            "variables": {v.path: np.asarray(v).tolist() for v in optimizer.variables}}
    _dump("keras_verified.json", verified)


if __name__ == "__main__":
    {"make": make, "write": write, "check": check}[sys.argv[1] if len(sys.argv) > 1 else "make"]()
