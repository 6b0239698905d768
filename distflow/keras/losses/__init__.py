"""Loss functions and classes, as `keras.losses`.

Two forms, as in Keras:

- functions (`mean_squared_error`, `binary_crossentropy`, ...) return one loss
  per sample (the last axis is reduced), with no weighting and no reduction;
- classes (`MeanSquaredError()`, ...) are called as
  `loss(y_true, y_pred, sample_weight=None)` and return the weighted, reduced
  loss: `"sum_over_batch_size"` (default: the sum divided by the number of
  per-sample values), `"sum"`, or `"none"` (the weighted per-sample values).

Everything is built from differentiable `distflow` ops, so a loss computed
under a `GradientTape` gives gradients with respect to `y_pred` (and to
`y_true` when it is a watched tensor). Cross-entropies with
`from_logits=True` use the fused, numerically stable core ops; with
probabilities they clip to `[EPSILON, 1 - EPSILON]` as Keras does.

`get(identifier)` turns a name (`"mse"`, `"sparse_categorical_crossentropy"`,
...), a config dict, a function or a `Loss` into a `Loss` object, which is what
`Model.compile` needs: unlike Keras, which hands back the bare function for a
name, it always returns something that accepts `sample_weight` and reduces.

The package follows Keras 3's `keras/src/losses/`: `loss` (the `Loss` base class,
`LossFunctionWrapper`, reductions), `regression_losses` (errors, Huber, log-cosh,
Poisson, cosine, hinge), `probabilistic_losses` (cross-entropies, focal, KL),
`specialized_losses` (Dice, Tversky, CTC, Circle, generalized cross-entropy) and
`registry` (names: `get`, `serialize`, `deserialize`).
"""

from distflow.keras.losses.loss import (  # noqa: F401
    EPSILON,
    Loss,
    LossFunctionWrapper,
    Reduction,
    reduce_weighted_values,
)
from distflow.keras.losses.probabilistic_losses import (  # noqa: F401
    KLD,
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    KLDivergence,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    kl_divergence,
    kld,
    kullback_leibler_divergence,
    sparse_categorical_crossentropy,
)
from distflow.keras.losses.registry import (  # noqa: F401
    deserialize,
    get,
    serialize,
)
from distflow.keras.losses.regression_losses import (  # noqa: F401
    MAE,
    MAPE,
    MSE,
    MSLE,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SquaredHinge,
    categorical_hinge,
    cosine_similarity,
    hinge,
    huber,
    huber_loss,
    log_cosh,
    logcosh,
    mae,
    mape,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    mse,
    msle,
    poisson,
    squared_hinge,
)
from distflow.keras.losses.specialized_losses import (  # noqa: F401
    CTC,
    CategoricalGeneralizedCrossEntropy,
    Circle,
    Dice,
    Tversky,
    categorical_generalized_cross_entropy,
    circle,
    ctc,
    dice,
    tversky,
)
