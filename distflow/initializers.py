"""`tf.initializers` and TF's `*_initializer` aliases: Keras's initializers.

Loaded on first use (`df.initializers` is a lazy submodule) because the
initializers live in the Keras layer above the core.
"""

from distflow.keras.initializers import *  # noqa: F403
from distflow.keras.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    Ones,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    Zeros,
    deserialize,
    get,
    serialize,
)

constant = Constant
zeros = Zeros
ones = Ones
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal
random_normal = RandomNormal
random_uniform = RandomUniform
truncated_normal = TruncatedNormal

# TF2's top-level aliases (tf.zeros_initializer(), ...)
constant_initializer = Constant
zeros_initializer = Zeros
ones_initializer = Ones
random_normal_initializer = RandomNormal
random_uniform_initializer = RandomUniform
glorot_uniform_initializer = GlorotUniform
glorot_normal_initializer = GlorotNormal
truncated_normal_initializer = TruncatedNormal

__all__ = ["Constant", "GlorotNormal", "GlorotUniform", "Ones", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "Zeros", "deserialize", "get", "serialize"]
