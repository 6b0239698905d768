"""Activation functions, as `keras.activations`.

Each function takes a tensor (or anything `distflow.convert_to_tensor` accepts)
and returns a tensor built from differentiable core ops. `get` resolves the
`activation=` argument of layers: a name, a callable, or None (linear).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distflow import nn, ops
from distflow.tensor import Tensor


def _t(x: Any) -> Tensor:
    return ops.convert_to_tensor(x)


def linear(x: Any) -> Tensor:
    """Identity: returns `x` unchanged."""
    return _t(x)


def relu(x: Any, negative_slope: float = 0.0, max_value: float | None = None,
         threshold: float = 0.0, alpha: float | None = None) -> Tensor:
    """Rectified linear unit with Keras's optional slope, cap and threshold.

    Args:
        x: input tensor.
        negative_slope: slope below the threshold (0 gives the plain ReLU).
        max_value: upper bound of the output, None for no bound.
        threshold: values below it are zeroed (or scaled by `negative_slope`).
        alpha: tf.keras 2 name of `negative_slope`.
    """
    x = _t(x)
    negative_slope = negative_slope if alpha is None else alpha
    if negative_slope == 0 and max_value is None and threshold == 0:
        return ops.relu(x)
    if threshold != 0:
        below = ops.multiply(ops.subtract(x, threshold), negative_slope)
        out = ops.where(ops.greater_equal(x, threshold), x, below)
    elif negative_slope != 0:
        out = ops.where(ops.greater_equal(x, 0), x, ops.multiply(x, negative_slope))
    else:
        out = ops.relu(x)
    if max_value is not None:
        out = ops.minimum(out, float(max_value))
    return out


def relu6(x: Any) -> Tensor:
    """min(max(x, 0), 6)."""
    return ops.minimum(ops.relu(_t(x)), 6.0)


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow."""
    return ops.sigmoid(_t(x))


def hard_sigmoid(x: Any) -> Tensor:
    """Piecewise-linear sigmoid: relu6(x + 3) / 6, as Keras 3."""
    return ops.divide(relu6(ops.add(_t(x), 3.0)), 6.0)


def tanh(x: Any) -> Tensor:
    """Hyperbolic tangent."""
    return ops.tanh(_t(x))


def softmax(x: Any, axis: int = -1) -> Tensor:
    """Softmax along `axis` (the last by default)."""
    x = _t(x)
    if x.ndim == 0:
        raise ValueError("softmax needs at least a 1-D input. Received a scalar.")
    return ops.softmax(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """Logarithm of the softmax along `axis`."""
    return ops.log_softmax(_t(x), axis=axis)


def gelu(x: Any, approximate: bool = False) -> Tensor:
    """Gaussian error linear unit (exact erf form unless `approximate`)."""
    return ops.gelu(_t(x), approximate=approximate)


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return ops.elu(_t(x), alpha=alpha)


def selu(x: Any) -> Tensor:
    """Scaled exponential linear unit (self-normalising constants)."""
    return ops.selu(_t(x))


def softplus(x: Any) -> Tensor:
    """log(1 + exp(x)), stable for large |x|."""
    return ops.softplus(_t(x))


def softsign(x: Any) -> Tensor:
    """x / (1 + |x|)."""
    x = _t(x)
    return ops.divide(x, ops.add(ops.abs(x), 1.0))


def leaky_relu(x: Any, negative_slope: float = 0.2, alpha: float | None = None) -> Tensor:
    """x if x > 0 else negative_slope * x (`alpha` is the tf.keras 2 name)."""
    return ops.leaky_relu(_t(x), alpha=negative_slope if alpha is None else alpha)


def silu(x: Any) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    x = _t(x)
    return ops.multiply(x, ops.sigmoid(x))


swish = silu


def mish(x: Any) -> Tensor:
    """x * tanh(softplus(x))."""
    x = _t(x)
    return ops.multiply(x, ops.tanh(ops.softplus(x)))


def exponential(x: Any) -> Tensor:
    """exp(x)."""
    return ops.exp(_t(x))


_BY_NAME: dict[str, Callable[..., Tensor]] = {
    "linear": linear, "relu": relu, "relu6": relu6, "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid, "tanh": tanh, "softmax": softmax,
    "log_softmax": log_softmax, "gelu": gelu, "elu": elu, "selu": selu,
    "softplus": softplus, "softsign": softsign, "leaky_relu": leaky_relu,
    "silu": silu, "swish": swish, "mish": mish, "exponential": exponential,
}
_NAME_OF = {id(fn): name for name, fn in _BY_NAME.items() if name != "swish"}
_NAME_OF[id(nn.relu)] = "relu"


def get(identifier: Any) -> Callable[..., Tensor]:
    """Resolves an activation: None (linear), a name, a `{"class_name": ...}` dict or a callable.

    Raises:
        ValueError: for an unknown name or an unsupported type.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, dict):
        identifier = identifier.get("config", identifier.get("class_name"))
        if isinstance(identifier, dict):
            identifier = identifier.get("name")
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier.lower())
        if fn is None:
            raise ValueError(
                f"Unknown activation function: '{identifier}'. Use one of "
                f"{sorted(_BY_NAME)} or pass a callable.")
        return fn
    if callable(identifier):
        return identifier
    raise ValueError(
        "Could not interpret activation function identifier: "
        f"{identifier!r} (expected a name, a callable or None).")


def serialize(activation: Callable[..., Tensor] | None) -> Any:
    """The name of a built-in activation; custom callables give their config or `__name__`."""
    if activation is None:
        return "linear"
    name = _NAME_OF.get(id(activation))
    if name is not None:
        return name
    if hasattr(activation, "get_config"):
        return {"class_name": type(activation).__name__, "config": activation.get_config()}
    return getattr(activation, "__name__", repr(activation))


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Callable:
    """Inverse of `serialize` (custom names are looked up in `custom_objects`)."""
    if isinstance(config, str) and custom_objects and config in custom_objects:
        return custom_objects[config]
    return get(config)


__all__ = [*sorted(_BY_NAME), "get", "serialize", "deserialize"]


# Keras 3's newer activations (distflow.keras.activations_extra).
from distflow.keras import activations_extra as _extra  # noqa: E402

for _name in _extra.__all__:
    globals()[_name] = getattr(_extra, _name)
    _BY_NAME[_name] = getattr(_extra, _name)
    if _name != "hard_swish":
        _NAME_OF[id(_BY_NAME[_name])] = _name
__all__ += _extra.__all__
