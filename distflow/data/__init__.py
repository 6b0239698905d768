"""Input pipelines, as `tf.data`: `distflow.data.Dataset`.

    import distflow as df
    ds = df.data.Dataset.from_tensor_slices((x, y)).shuffle(60000, seed=1).batch(128)

`experimental` mirrors the `tf.data.experimental` names that Keras scripts use
(`AUTOTUNE`, the cardinality constants and `cardinality(ds)`).
"""

from types import SimpleNamespace

from distflow.data.dataset import (
    AUTOTUNE,
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    Dataset,
    TensorSpec,
)

experimental = SimpleNamespace(
    AUTOTUNE=AUTOTUNE,
    INFINITE_CARDINALITY=INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY=UNKNOWN_CARDINALITY,
    cardinality=lambda dataset: dataset.cardinality(),
)

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "Dataset", "TensorSpec",
           "experimental"]
