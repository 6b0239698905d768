"""Input pipelines, as `tf.data`: `distflow.data.Dataset`.

    import distflow as df
    ds = df.data.Dataset.from_tensor_slices((x, y)).shuffle(60000, seed=1).batch(128)

`experimental` mirrors the `tf.data.experimental` names that Keras scripts use
(`AUTOTUNE`, `AutoShardPolicy`, the cardinality constants and `cardinality(ds)`).
"""

from types import SimpleNamespace

from distflow.data.dataset import (
    AUTOTUNE,
    INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY,
    Dataset,
    TensorSpec,
)
from distflow.data.extra import (
    AutoShardPolicy,
    DistributeOptions,
    OptimizationOptions,
    Options,
    TextLineDataset,
    ThreadingOptions,
    auto_shard,
)

experimental = SimpleNamespace(
    AUTOTUNE=AUTOTUNE,
    INFINITE_CARDINALITY=INFINITE_CARDINALITY,
    UNKNOWN_CARDINALITY=UNKNOWN_CARDINALITY,
    cardinality=lambda dataset: dataset.cardinality(),
    AutoShardPolicy=AutoShardPolicy,
    DistributeOptions=DistributeOptions,
    ThreadingOptions=ThreadingOptions,
    OptimizationOptions=OptimizationOptions,
    sample_from_datasets=Dataset.sample_from_datasets,
    choose_from_datasets=Dataset.choose_from_datasets,
    save=lambda dataset, path, **kwargs: dataset.save(path),
    load=Dataset.load,
    get_single_element=lambda dataset: dataset.get_single_element(),
    enumerate_dataset=lambda start=0: (lambda ds: ds.enumerate(start)),
)

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "AutoShardPolicy",
           "Dataset", "DistributeOptions", "OptimizationOptions", "Options", "TensorSpec",
           "TextLineDataset", "ThreadingOptions", "auto_shard", "experimental"]
