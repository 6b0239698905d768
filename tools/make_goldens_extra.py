"""Writes the fixtures of Keras's activations, layers and preprocessing layers (real Keras).

Needs TensorFlow 2.21 / Keras 3 (CPU), never a dependency of distflow:

    /tmp/tfenv/bin/python tools/make_goldens_extra.py               # all fixtures
    /tmp/tfenv/bin/python tools/make_goldens_extra.py activations   # one of them

Each fixture (tests/goldens/<name>.json) holds every case's inputs, weights and
Keras's outputs; tests/test_goldens_extra.py recomputes them with distflow.
"""

from __future__ import annotations

import sys

import numpy as np
from make_goldens import _floats, main

ACTIVATION_CASES = [
    ("celu", {}), ("celu", {"alpha": 0.5}), ("glu", {}), ("glu", {"axis": 0}),
    ("hard_shrink", {}), ("hard_shrink", {"threshold": 1.2}), ("hard_silu", {}),
    ("hard_swish", {}), ("hard_tanh", {}), ("log_sigmoid", {}), ("soft_shrink", {}),
    ("soft_shrink", {"threshold": 0.8}), ("sparse_plus", {}), ("sparse_sigmoid", {}),
    ("sparsemax", {}), ("sparsemax", {"axis": 0}), ("squareplus", {}),
    ("squareplus", {"b": 1.5}), ("tanh_shrink", {}),
    ("threshold", {"threshold": 0.3, "default_value": -2.0}),
]


def activations() -> dict:
    """Each activation's output on a (4, 6) input and the gradient of sum(out * w)."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(15)
    x = (rng.normal(size=(4, 6)) * 1.8).astype(np.float32)
    w = rng.normal(size=(4, 6)).astype(np.float32)
    cases = []
    for name, kwargs in ACTIVATION_CASES:
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = getattr(keras.activations, name)(xt, **kwargs)
            total = tf.reduce_sum(out * tf.constant(w[: out.shape[0], : out.shape[1]]))
        cases.append({"name": name, "kwargs": kwargs, "output": _floats(out),
                      "grad": _floats(tape.gradient(total, xt))})
    return {"keras_version": keras.__version__, "x": _floats(x), "w": _floats(w),
            "cases": cases}


FIXTURES = {"activations": activations}


if __name__ == "__main__":
    main(sys.argv[1:], FIXTURES)
