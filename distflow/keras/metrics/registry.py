"""Metric names: `get`, `serialize`, `deserialize` and `resolve` (Keras's "accuracy" rule).

Every built-in class and per-sample function is listed here once, from the metric
modules below; `resolve` reads the compiled loss to pick the binary, categorical
or sparse variant of "accuracy" and "crossentropy".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras import losses
from distflow.keras._objects import class_and_config, serialize_object
from distflow.keras.metrics import confusion_metrics, metric, regression_metrics
from distflow.keras.metrics.accuracy_metrics import (
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
from distflow.keras.metrics.confusion_metrics import AUC, Precision, Recall
from distflow.keras.metrics.metric import Metric, _function_by_name, _np
from distflow.keras.metrics.probabilistic_metrics import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    KLDivergence,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    kl_divergence,
    sparse_categorical_crossentropy,
)
from distflow.keras.metrics.reduction_metrics import Mean, MeanMetricWrapper, Sum
from distflow.keras.metrics.regression_metrics import (
    Hinge,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    RootMeanSquaredError,
    SquaredHinge,
    hinge,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    squared_hinge,
)

# ------------------------------------------------------------ name resolution

_CLASSES: dict[str, type[Metric]] = {cls.__name__: cls for cls in (
    Mean, Sum, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy,
    SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, RootMeanSquaredError, BinaryCrossentropy,
    CategoricalCrossentropy, SparseCategoricalCrossentropy, KLDivergence, Hinge, SquaredHinge,
    Precision, Recall, AUC)}

# Lower-case names accepted by `get`; the metric is named by the string given (as in Keras).
_NAMES: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "kl_divergence": KLDivergence, "kld": KLDivergence,
    "hinge": Hinge, "squared_hinge": SquaredHinge,
    "precision": Precision, "recall": Recall, "auc": AUC,
}

_FUNCTIONS: dict[str, Callable] = {fn.__name__: fn for fn in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mean_squared_error,
    mean_absolute_error, mean_absolute_percentage_error, mean_squared_logarithmic_error,
    binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy,
    kl_divergence, hinge, squared_hinge)}
for _module in (confusion_metrics, regression_metrics):
    _CLASSES.update({cls.__name__: cls for cls in _module.CLASSES})
    _NAMES.update(_module.NAMES)
    _FUNCTIONS.update({fn.__name__: fn for fn in getattr(_module, "FUNCTIONS", ())})
metric.FUNCTIONS.update(_FUNCTIONS)


def _valid_names() -> list[str]:
    return (sorted([*_NAMES, *_ACCURACY_NAMES, *_CROSSENTROPY_NAMES])
            + sorted(_CLASSES))


def _from_string(identifier: str) -> Metric:
    cls = _CLASSES.get(identifier)
    if cls is not None and cls not in (MeanMetricWrapper,):
        return cls()
    key = identifier.lower()
    if key in _ACCURACY_NAMES + _CROSSENTROPY_NAMES:
        family = "accuracy" if key in _ACCURACY_NAMES else "crossentropy"
        return ShapeResolvedMetric(family, name=identifier)
    cls = _NAMES.get(key)
    if cls is None:
        raise ValueError(f"Unknown metric: '{identifier}'. Use one of {_valid_names()}, a "
                         "callable `fn(y_true, y_pred)` or a `Metric` instance.")
    return cls(name=identifier)


def _from_callable(fn: Callable) -> Metric:
    """Wraps a per-sample function; a built-in loss function uses its NumPy twin here."""
    name = getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", "")
    if module.startswith("distflow.keras.losses") and name in _FUNCTIONS:
        return MeanMetricWrapper(_FUNCTIONS[name], name=name)  # no tape, float64
    return MeanMetricWrapper(fn, name=name)


def get(identifier: Any) -> Metric | None:
    """Resolves a metric identifier to a `Metric` (None stays None).

    Args:
        identifier: a name ("mae", "binary_accuracy", "AUC", ...; the metric is named
            by that string), a `{"class_name", "config"}` dict, a `Metric` (returned as
            is) or class, or a callable `fn(y_true, y_pred)` returning per-sample values
            (wrapped in `MeanMetricWrapper`). "accuracy"/"acc" and "crossentropy"/"ce"
            pick their variant from the first batch's shapes (`ShapeResolvedMetric`);
            `resolve` also reads the loss. Exact-match accuracy is "Accuracy".

    Raises:
        ValueError: for an unknown name (listing the valid ones) or an unusable type.
    """
    if identifier is None or isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        return _from_string(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return _from_callable(identifier)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Pass a name "
                     "such as 'accuracy', a `Metric` instance or a callable.")


def serialize(metric: Metric) -> dict[str, Any]:
    """`{"class_name", "config"}` of a metric."""
    if not isinstance(metric, Metric):
        raise ValueError(f"Cannot serialize {metric!r}: it is not a Metric.")
    return serialize_object(metric, "metric")


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Metric:
    """Inverse of `serialize` (a plain name also works); custom classes via `custom_objects`."""
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        custom = custom_objects.get(config)
        return get(custom) if custom is not None else _from_string(config)
    cls, cfg = class_and_config(config, _CLASSES, "metric", custom_objects)
    if cls is MeanMetricWrapper and isinstance(cfg.get("fn"), str):
        cfg["fn"] = _function_by_name(cfg["fn"], custom_objects)
    return cls.from_config(cfg)


# --------------------------------------- "accuracy" and "crossentropy", as compile reads them

_ACCURACY_NAMES = ("accuracy", "acc")
_CROSSENTROPY_NAMES = ("crossentropy", "ce")


def _loss_families(losses: Any) -> tuple:
    """(kind, predictions are scores rather than probabilities, loss classes, loss functions)."""
    return (
        ("binary", False, (losses.BinaryCrossentropy, losses.BinaryFocalCrossentropy),
         (losses.binary_crossentropy, losses.binary_focal_crossentropy)),
        ("binary", True, (losses.Hinge, losses.SquaredHinge),  # margins: the sign decides
         (losses.hinge, losses.squared_hinge)),
        ("categorical", False, (losses.CategoricalCrossentropy,
                                losses.CategoricalFocalCrossentropy, losses.CategoricalHinge),
         (losses.categorical_crossentropy, losses.categorical_focal_crossentropy,
          losses.categorical_hinge)),
        ("sparse", False, (losses.SparseCategoricalCrossentropy,),
         (losses.sparse_categorical_crossentropy,)))


def _loss_kind(loss: Any) -> tuple[str, bool] | None:
    """("binary" | "categorical" | "sparse", scores_not_probabilities) implied by a loss."""
    if isinstance(loss, dict | list | tuple):
        return None  # one loss per output: the caller resolves per output
    try:
        obj = losses.get(loss)
    except (ValueError, TypeError):
        return None
    wrapped = isinstance(obj, losses.LossFunctionWrapper)
    fn, kwargs = (obj.fn, obj._fn_kwargs) if wrapped else (None, {})
    for kind, scores, classes, functions in _loss_families(losses):
        if isinstance(obj, classes):
            return kind, scores or bool(getattr(obj, "from_logits", False))
        if fn in functions:
            return kind, scores or bool(kwargs.get("from_logits", False))
    return None


def _shape_kind(y_true: Any, y_pred: Any) -> str:
    """Keras's fallback from shapes: one output -> binary; rank or trailing 1 -> sparse."""
    true_shape, pred_shape = np.shape(_np(y_true)), np.shape(_np(y_pred))
    if len(pred_shape) <= 1 or pred_shape[-1] == 1:
        return "binary"
    if len(true_shape) < len(pred_shape) or true_shape[-1] == 1:
        return "sparse"
    return "categorical"


def _family_metric(family: str, kind: str, from_logits: bool, name: str) -> Metric:
    if family == "accuracy":
        if kind == "binary":
            # Logits are positive exactly when the probability is above 0.5.
            return BinaryAccuracy(name=name, threshold=0.0 if from_logits else 0.5)
        cls = CategoricalAccuracy if kind == "categorical" else SparseCategoricalAccuracy
        return cls(name=name)
    cls = {"binary": BinaryCrossentropy, "categorical": CategoricalCrossentropy,
           "sparse": SparseCategoricalCrossentropy}[kind]
    return cls(name=name, from_logits=from_logits)


class ShapeResolvedMetric(MeanMetricWrapper):
    """"accuracy" or "crossentropy" whose variant is chosen from the first batch's shapes.

    Used by `resolve` when the loss does not say whether labels are binary, one-hot or
    sparse. After the first `update_state` it behaves as the chosen metric.

    Args:
        family: "accuracy" or "crossentropy".
        name, dtype: see `Metric`.
        from_logits: whether predictions are logits.
    """

    def __init__(self, family: str = "accuracy", name: str | None = None, dtype: Any = None,
                 from_logits: bool = False):
        if family not in ("accuracy", "crossentropy"):
            raise ValueError("`family` must be 'accuracy' or 'crossentropy'. "
                             f"Received: family={family!r}")
        Mean.__init__(self, name or family, dtype)
        self.family, self.from_logits = family, bool(from_logits)
        self._fn, self._fn_kwargs = None, {}
        self.kind: str | None = None

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Picks the variant on the first batch, then accumulates as it does."""
        if self._fn is None:
            self.kind = _shape_kind(y_true, y_pred)
            chosen = _family_metric(self.family, self.kind, self.from_logits, self.name)
            self._fn, self._fn_kwargs = chosen._fn, chosen._fn_kwargs
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        """Name, dtype, family and from_logits."""
        return {"name": self.name, "dtype": self.dtype, "family": self.family,
                "from_logits": self.from_logits}


_CLASSES[ShapeResolvedMetric.__name__] = ShapeResolvedMetric


def resolve(identifier: Any, loss: Any = None, y_true: Any = None, y_pred: Any = None) -> Metric:
    """Resolves a `compile(metrics=...)` entry, reading "accuracy" as Keras does.

    "accuracy"/"acc" (and "crossentropy"/"ce") become the binary, categorical or sparse
    categorical variant implied by `loss` (a name, function or `Loss`): binary (focal)
    cross-entropy and hinge losses -> binary (threshold 0 for logits and hinge margins),
    categorical cross-entropy -> categorical, sparse categorical cross-entropy ->
    sparse. Otherwise the shapes decide (Keras's fallback): a last output axis of 1 ->
    binary; labels of lower rank or with a trailing axis of 1 -> sparse; else
    categorical. Without `y_true`/`y_pred` the choice waits for the first batch.
    The metric keeps the name it was asked by ("acc" stays "acc").

    Args:
        identifier: anything `get` accepts.
        loss: the compiled loss, or None.
        y_true: optional example labels (used only when the loss does not decide).
        y_pred: optional example predictions (same).

    Raises:
        ValueError: for an unknown name.
    """
    if not isinstance(identifier, str) or \
            identifier.lower() not in _ACCURACY_NAMES + _CROSSENTROPY_NAMES:
        return get(identifier)
    family = "accuracy" if identifier.lower() in _ACCURACY_NAMES else "crossentropy"
    implied = _loss_kind(loss)
    if implied is not None:
        return _family_metric(family, implied[0], implied[1], identifier)
    if y_true is not None and y_pred is not None:
        return _family_metric(family, _shape_kind(y_true, y_pred), False, identifier)
    return ShapeResolvedMetric(family, name=identifier)
