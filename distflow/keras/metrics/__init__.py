"""Metrics, as `keras.metrics`: stateful objects that accumulate over batches.

A metric is updated with `update_state(y_true, y_pred, sample_weight=None)`,
read with `result()` and cleared with `reset_state()`. Metrics never take part
in differentiation: they read the arrays behind tensors (`.value`) and compute
with NumPy, keeping their running totals in float64, so that accumulating
several batches gives the same result as one batch holding them all.

`get(identifier)` turns a name, a config dict, a function or a `Metric` into a
`Metric`; `resolve(identifier, loss)` also applies Keras's rule for
`"accuracy"` / `"acc"` and `"crossentropy"` / `"ce"`, which pick the binary,
categorical or sparse categorical variant from the loss (or, when the loss
says nothing, from the shapes of the first batch).

Every metric's state is a few additive NumPy arrays (`get_state()`), so the
states of several workers combine with `merge_state`.

The package follows Keras 3's `keras/src/metrics/`: `metric` (the base class),
`reduction_metrics` (Mean, Sum, MeanMetricWrapper), `accuracy_metrics`,
`probabilistic_metrics` (cross-entropies, KL), `regression_metrics` (errors,
correlations, R2, hinge), `confusion_metrics` (Precision, Recall, AUC, counts,
F-scores, IoU) and `registry` (names: `get`, `serialize`, `deserialize`, `resolve`).
"""

# Keras's `keras.metrics` also exports these loss functions under their own names.
from distflow.keras.losses import (  # noqa: F401
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
    huber,
)
from distflow.keras.metrics.accuracy_metrics import (  # noqa: F401
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from distflow.keras.metrics.confusion_metrics import (  # noqa: F401
    AUC,
    BinaryIoU,
    F1Score,
    FalseNegatives,
    FalsePositives,
    FBetaScore,
    IoU,
    MeanIoU,
    OneHotIoU,
    OneHotMeanIoU,
    Precision,
    PrecisionAtRecall,
    Recall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
    TrueNegatives,
    TruePositives,
)
from distflow.keras.metrics.metric import (  # noqa: F401
    EPSILON,
    Metric,
    MetricValue,
)
from distflow.keras.metrics.probabilistic_metrics import (  # noqa: F401
    KLD,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    KLDivergence,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    kl_divergence,
    kld,
    sparse_categorical_crossentropy,
)
from distflow.keras.metrics.reduction_metrics import (  # noqa: F401
    Mean,
    MeanMetricWrapper,
    Sum,
)
from distflow.keras.metrics.registry import (  # noqa: F401
    ShapeResolvedMetric,
    deserialize,
    get,
    resolve,
    serialize,
)
from distflow.keras.metrics.regression_metrics import (  # noqa: F401
    MAE,
    MAPE,
    MSE,
    MSLE,
    CategoricalHinge,
    ConcordanceCorrelation,
    CosineSimilarity,
    Hinge,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    PearsonCorrelation,
    Poisson,
    R2Score,
    RootMeanSquaredError,
    SquaredHinge,
    categorical_hinge,
    concordance_correlation,
    cosine_similarity,
    hinge,
    log_cosh,
    mae,
    mape,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    mse,
    msle,
    pearson_correlation,
    poisson,
    squared_hinge,
)
