"""TensorFlow 1 compatibility for scripts that still say `tf.compat.v1.Session`."""

from distflow.compat import v1
