"""`Dataset`: an input pipeline in the style of `tf.data`, over NumPy arrays.

A `Dataset` is a lazy description (source -> transformations); nothing runs
until it is iterated. Every `for` loop over a dataset starts a new *epoch*:
`shuffle` draws a new order (unless `reshuffle_each_iteration=False`), and
that order is a pure function of the shuffle seed and the epoch number, so a
seeded pipeline is reproducible.

How it avoids copying the data set: `from_tensor_slices` keeps references to
the caller's arrays (no copy). Transformations that only choose *which* rows
come next (`shuffle`, `shard`, `take`, `skip`, `repeat`, `prefetch`, `cache`)
are run on arrays of row indices, and `batch` gathers each batch's rows with a
single `np.take` per array (or slices them, when they are consecutive). Only
`map`, `filter` and the other element-wise transformations walk elements one
at a time.

Elements are NumPy arrays (or NumPy scalars for rows of 1-D arrays) in the
structure they were given: a tuple stays a tuple, a dict stays a dict. Treat
them as immutable, like `tf.Tensor`s: a batch of consecutive rows (no shuffle)
is a read-only view of the source array rather than a copy.

The pieces: `structure` (element structure, conversions, checks), `base` (the
`Dataset` API), `transforms` (sources and the core transformations), `extra`,
`files` and `threads` (the rest of tf.data). This module is the public path of
`Dataset`; importing it registers every implementation.
"""

from distflow.data import extra, files, threads, transforms  # noqa: F401  (they register)
from distflow.data.base import Dataset
from distflow.data.structure import (
    AUTOTUNE,
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    StringArray,
    StringScalar,
    TensorSpec,
)

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "Dataset", "StringArray",
           "StringScalar", "TensorSpec"]
