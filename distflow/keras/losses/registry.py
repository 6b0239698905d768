"""Loss names: `get`, `serialize` and `deserialize`.

Every built-in function is found by its name and aliases, with the class that
computes the same loss (`get("mse")` and `get(mean_squared_error)` give a
`MeanSquaredError`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distflow.keras._objects import class_and_config, serialize_object
from distflow.keras.losses import loss as loss_module
from distflow.keras.losses import probabilistic_losses, regression_losses, specialized_losses
from distflow.keras.losses.loss import Loss, LossFunctionWrapper, _function_by_name
from distflow.keras.losses.probabilistic_losses import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    KLDivergence,
    SparseCategoricalCrossentropy,
)
from distflow.keras.losses.regression_losses import (
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
)
from distflow.keras.losses.specialized_losses import (
    CTC,
    CategoricalGeneralizedCrossEntropy,
    Circle,
    Dice,
    Tversky,
)

# --------------------------------------------------------- name resolution

_CLASSES: dict[str, type[Loss]] = {cls.__name__: cls for cls in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, Huber, LogCosh, Poisson, CosineSimilarity, Hinge,
    SquaredHinge, CategoricalHinge, KLDivergence, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, BinaryFocalCrossentropy, CategoricalFocalCrossentropy,
    Dice, Tversky, CTC, CategoricalGeneralizedCrossEntropy, Circle, LossFunctionWrapper)}

_NAMESPACE = {**vars(regression_losses), **vars(probabilistic_losses),
              **vars(specialized_losses)}
# Function (and string) name -> (function, class computing the same loss).
_BUILTINS: dict[str, tuple[Callable, type[Loss]]] = {}
for _cls, _names in (
        (MeanSquaredError, ("mean_squared_error", "mse")),
        (MeanAbsoluteError, ("mean_absolute_error", "mae")),
        (MeanAbsolutePercentageError, ("mean_absolute_percentage_error", "mape")),
        (MeanSquaredLogarithmicError, ("mean_squared_logarithmic_error", "msle")),
        (Huber, ("huber", "huber_loss")),
        (LogCosh, ("log_cosh", "logcosh")),
        (Poisson, ("poisson",)),
        (CosineSimilarity, ("cosine_similarity",)),
        (Hinge, ("hinge",)),
        (SquaredHinge, ("squared_hinge",)),
        (CategoricalHinge, ("categorical_hinge",)),
        (KLDivergence, ("kl_divergence", "kld", "kullback_leibler_divergence")),
        (BinaryCrossentropy, ("binary_crossentropy", "bce")),
        (CategoricalCrossentropy, ("categorical_crossentropy", "cce")),
        (BinaryFocalCrossentropy, ("binary_focal_crossentropy",)),
        (CategoricalFocalCrossentropy, ("categorical_focal_crossentropy",)),
        (SparseCategoricalCrossentropy, ("sparse_categorical_crossentropy", "scce")),
        (Dice, ("dice",)), (Tversky, ("tversky",)), (CTC, ("ctc",)),
        (CategoricalGeneralizedCrossEntropy, ("categorical_generalized_cross_entropy",)),
        (Circle, ("circle",))):
    for _name in _names:
        _BUILTINS[_name] = (_NAMESPACE[_names[0]], _cls)

_FUNCTIONS: dict[str, Callable] = {name: fn for name, (fn, _) in _BUILTINS.items()}
_FUNCTION_NAMES: dict[Callable, str] = {}
for _name, (_fn, _) in _BUILTINS.items():
    _FUNCTION_NAMES.setdefault(_fn, _name)
loss_module.FUNCTIONS.update(_FUNCTIONS)
_CLASS_OF_FUNCTION: dict[Callable, type[Loss]] = {fn: cls for fn, cls in _BUILTINS.values()}


def _valid_names() -> list[str]:
    return sorted(_BUILTINS) + sorted(set(_CLASSES) - {"LossFunctionWrapper"})


def _from_string(name: str) -> Loss:
    cls = _CLASSES.get(name)
    if cls is None or cls is LossFunctionWrapper:
        entry = _BUILTINS.get(name) or _BUILTINS.get(name.lower())
        if entry is None:
            raise ValueError(f"Unknown loss: '{name}'. Use one of {_valid_names()}, a "
                             "callable `fn(y_true, y_pred)` or a `Loss` instance.")
        cls = entry[1]
    return cls()


def get(identifier: Any) -> Loss | None:
    """Resolves a loss identifier to a `Loss` object (None stays None).

    Args:
        identifier: a name ("mse", "mean_squared_error", "MeanSquaredError",
            "sparse_categorical_crossentropy", ...), a `{"class_name", "config"}` dict,
            a `Loss` instance (returned as is), a built-in loss function (its class
            with default arguments) or any callable `fn(y_true, y_pred)` returning
            per-sample losses (wrapped in `LossFunctionWrapper`).

    Raises:
        ValueError: for an unknown name, listing the valid ones, or an unusable type.
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        return _from_string(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        builtin = _CLASS_OF_FUNCTION.get(identifier)
        return builtin() if builtin is not None else LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Pass a name such "
                     "as 'mse', a `Loss` instance or a callable `fn(y_true, y_pred)`.")


def serialize(loss: Any) -> Any:
    """A JSON-safe description: `{"class_name", "config"}` for a `Loss`, a name for a function.

    Raises:
        ValueError: for a callable that is neither a `Loss` nor a named function.
    """
    if isinstance(loss, Loss):
        return serialize_object(loss, "loss")
    if loss in _FUNCTION_NAMES:
        return _FUNCTION_NAMES[loss]
    name = getattr(loss, "__name__", None)
    if callable(loss) and name and name != "<lambda>":
        return name
    raise ValueError(f"Cannot serialize loss {loss!r}: use a Loss subclass with get_config() "
                     "or a named function.")


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Loss:
    """Inverse of `serialize`; custom classes and functions come from `custom_objects`."""
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        custom = custom_objects.get(config)
        return get(custom) if custom is not None else _from_string(config)
    cls, cfg = class_and_config(config, _CLASSES, "loss", custom_objects)
    if cls is LossFunctionWrapper and isinstance(cfg.get("fn"), str):
        cfg["fn"] = _function_by_name(cfg["fn"], custom_objects)
    return cls.from_config(cfg)
