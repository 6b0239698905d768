"""BatchNormalization, LayerNormalization and the preprocessing Normalization."""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import intra_op, nn, ops
from distflow.keras import initializers, regularizers
from distflow.keras.layers.base import InputSpec, Layer
from distflow.keras.layers.core import serialize_or_none
from distflow.ops import Primitive
from distflow.tensor import Tensor, graph_form
from distflow.workspace import scratch

__all__ = ["BatchNormalization", "LayerNormalization", "Normalization"]


def _axes(axis: Any) -> list[int]:
    values = [axis] if isinstance(axis, int | np.integer) else list(axis)
    if not values or not all(isinstance(a, int | np.integer) for a in values):
        raise TypeError(f"`axis` must be an int or a list of ints. Received: axis={axis!r}")
    return [int(a) for a in values]


def _resolve_axes(axes: list[int], rank: int, layer: str) -> list[int]:
    resolved = sorted({a % rank if -rank <= a < rank else a for a in axes})
    if any(a < 0 or a >= rank for a in resolved):
        raise ValueError(f'Layer "{layer}": invalid axis {axes} for inputs of rank {rank}.')
    return resolved


def _constant(value: float, like: Tensor) -> Tensor:
    return Tensor._wrap(np.asarray(value, dtype=like.dtype).reshape((1,) * like.ndim))


def _axes_sum(a: np.ndarray, axes: tuple) -> np.ndarray:
    """a.sum(axes, keepdims=True); a matrix-vector product when the kept axis is the last
    (channels last: several times faster than NumPy's strided reduction)."""
    if axes != tuple(range(a.ndim - 1)):
        return a.sum(axis=axes, keepdims=True)
    return ops.channel_sum(a).reshape((1,) * (a.ndim - 1) + (a.shape[-1],))


def _axes_dot(a: np.ndarray, b: np.ndarray, axes: tuple) -> np.ndarray:
    """(a * b).sum(axes, keepdims=True) without the product's temporary when the kept
    axis is the last (one einsum pass)."""
    if axes != tuple(range(a.ndim - 1)):
        return (a * b).sum(axis=axes, keepdims=True)
    rows_a, rows_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return np.einsum("ij,ij->j", rows_a, rows_b).reshape((1,) * (a.ndim - 1) + (-1,))


def _rows(a: np.ndarray, b0: int, b1: int) -> np.ndarray:
    """Rows b0:b1 of an operand that broadcasts against the batch (all of it when its
    first axis is broadcast)."""
    return a[b0:b1] if a.ndim and a.shape[0] > 1 else a


def _by_rows(out: np.ndarray, fn) -> np.ndarray:
    """fn(b0, b1) for the first-axis ranges of a pass writing `out` (on the intra-op
    threads when it is large); returns out."""
    intra_op.over_rows(out.shape[0] if out.ndim else 1, out.size, fn)
    return out


def centered_moments(x: np.ndarray, axes: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, biased variance (kept axes) and x - mean: one pass for the mean, one writing
    the centred values, one reading them for the variance."""
    count = x.dtype.type(max(int(np.prod([x.shape[a] for a in axes])), 1))
    mean = _axes_sum(x, axes) / count
    centered = np.empty(np.broadcast_shapes(x.shape, mean.shape), np.result_type(x, mean))
    _by_rows(centered, lambda b0, b1: np.subtract(x[b0:b1], _rows(mean, b0, b1),
                                                  out=centered[b0:b1]))
    return mean, _axes_dot(centered, centered, axes) / count, centered


def _batch_norm_forward(x, gamma, beta, centered, variance, epsilon, axes):
    """gamma * centered / sqrt(variance + eps) + beta: one multiply, one add in place."""
    inv = (1.0 / np.sqrt(variance + epsilon)).astype(x.dtype, copy=False)
    scale = gamma * inv
    out = np.empty(np.broadcast_shapes(centered.shape, scale.shape),
                   np.result_type(centered, scale))

    def piece(b0: int, b1: int) -> None:
        np.multiply(centered[b0:b1], _rows(scale, b0, b1), out=out[b0:b1])
        out[b0:b1] += _rows(beta, b0, b1)
    return _by_rows(out, piece), [centered, inv, gamma, axes,
                                  x.dtype.type(x.size // inv.size), None, None]


def _batch_norm_sums(g: np.ndarray, r: list) -> tuple[np.ndarray, np.ndarray]:
    """sum(g) and sum(g * centered) over the batch axes, once per upstream gradient."""
    if r[5] is not g:
        centered, axes = r[0], r[3]
        r[5], r[6] = g, (_axes_sum(g, axes), _axes_dot(g, centered, axes))
    return r[6]


def _batch_norm_vjp_x(g, r):
    # d/dx of gamma * (x - mean(x)) / sqrt(var(x) + eps), the batch statistics included:
    # gamma * inv * (g - sum(g) / m - (x - mean) * inv^2 * sum(g * (x - mean)) / m).
    centered, inv, gamma, _, count = r[:5]
    sum_g, sum_gc = _batch_norm_sums(g, r)
    a = gamma * inv
    coef, shift = a * inv * inv * sum_gc / count, a * sum_g / count
    out = np.empty(np.broadcast_shapes(g.shape, a.shape), np.result_type(g, a))
    term = scratch("batch_norm_term", centered.shape, centered.dtype)

    def piece(b0: int, b1: int) -> None:
        np.multiply(g[b0:b1], _rows(a, b0, b1), out=out[b0:b1])
        out[b0:b1] -= np.multiply(centered[b0:b1], _rows(coef, b0, b1), out=term[b0:b1])
        out[b0:b1] -= _rows(shift, b0, b1)
    return _by_rows(out, piece)


def _batch_norm_vjp_gamma(g, r):
    return ops.unbroadcast(_batch_norm_sums(g, r)[1] * r[1], r[2].shape)


def _batch_norm_vjp_beta(g, r):
    return ops.unbroadcast(_batch_norm_sums(g, r)[0], r[2].shape)


# A fused primitive for the training pass: one forward and three short VJPs instead of
# a dozen composite ops; the VJPs share the two batch sums. Not put in ops.REGISTRY
# (the core's list); tested through BatchNormalization by central differences.
_batch_norm_train = Primitive("keras_batch_norm_train", _batch_norm_forward,
                              (_batch_norm_vjp_x, _batch_norm_vjp_gamma, _batch_norm_vjp_beta))


class _Normalization(Layer):
    """Shared parameters (gamma, beta) and config of both normalizations."""

    _autocast_variables = False  # float32 under 'mixed_float16', as Keras (no overflow)

    def __init__(self, axis: Any, epsilon: float, center: bool, scale: bool,
                 beta_initializer: Any, gamma_initializer: Any, beta_regularizer: Any,
                 gamma_regularizer: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = _axes(axis)
        if epsilon <= 0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon}")
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.supports_masking = True

    def _build_params(self, input_shape: Any) -> None:
        rank = len(input_shape)
        self._axes = _resolve_axes(self.axis, rank, self.name)
        sizes = [input_shape[a] for a in self._axes]
        if any(s is None for s in sizes):
            raise ValueError(f'Layer "{self.name}": axis {self.axis} of the input must have a '
                             f"known size. Received: input_shape={tuple(input_shape)}")
        # Parameters broadcast against the input: size on the normalised axes, 1 elsewhere.
        self._broadcast = tuple(input_shape[i] if i in self._axes else 1 for i in range(rank))
        shape = tuple(sizes)
        self.gamma = (self.add_weight("gamma", shape, self.gamma_initializer,
                                      self.gamma_regularizer) if self.scale else None)
        self.beta = (self.add_weight("beta", shape, self.beta_initializer,
                                     self.beta_regularizer) if self.center else None)
        self.input_spec = InputSpec(ndim=rank, axes={a: input_shape[a] for a in self._axes})

    def _param(self, var: Any) -> Any:
        if var is None or var.ndim == len(self._broadcast):
            return var
        return ops.reshape(var, self._broadcast)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "axis": self.axis[0] if len(self.axis) == 1 else list(self.axis),
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": serialize_or_none(regularizers, self.beta_regularizer),
                "gamma_regularizer": serialize_or_none(regularizers, self.gamma_regularizer)}


class BatchNormalization(_Normalization):
    """Normalises each feature with batch statistics in training, moving statistics otherwise.

    In training the output is `gamma * (x - mean_b) / sqrt(var_b + epsilon) + beta`
    with the batch mean and (biased) variance over every axis but `axis`, and the
    non-trainable `moving_mean` / `moving_variance` are updated in place as
    `moving = moving * momentum + batch * (1 - momentum)` (not recorded by any
    tape). At inference, and whenever the layer is frozen (`trainable=False`), the
    moving statistics are used.

    Args:
        axis: the feature axis (or axes), -1 (channels last) by default.
        momentum: moving-average momentum.
        epsilon: added to the variance.
        center: learn an offset `beta`.
        scale: learn a scale `gamma`.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: initializers.
        beta_regularizer, gamma_regularizer: optional penalties.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, axis: Any = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, **kwargs: Any):
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         beta_regularizer, gamma_regularizer, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be in [0, 1]. Received: momentum={momentum}")
        self.momentum = float(momentum)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape: Any) -> None:
        self._build_params(input_shape)
        shape = tuple(input_shape[a] for a in self._axes)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               self.moving_variance_initializer,
                                               trainable=False)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if training and self.trainable:
            return self._train_step(inputs)
        mean, variance = self._param(self.moving_mean), self._param(self.moving_variance)
        return nn.batch_normalization(inputs, mean, variance, self._param(self.beta),
                                      self._param(self.gamma), self.epsilon)

    def _train_step(self, inputs: Tensor) -> Tensor:
        """Normalises with the batch statistics (one fused op) and updates the moving ones."""
        gamma = self._param(self.gamma) if self.gamma is not None else _constant(1, inputs)
        beta = self._param(self.beta) if self.beta is not None else _constant(0, inputs)
        return _batch_norm_training(self, inputs, gamma, beta)

    def _update_moving(self, mean: np.ndarray, variance: np.ndarray) -> None:
        shape = self.moving_mean.shape
        decay = 1.0 - self.momentum
        for var, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            # In place on the variable's array, outside any tape: not a differentiable op.
            var.assign_sub((var.value - batch.reshape(shape)) * decay)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum,
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(
                    self.moving_variance_initializer)}


@graph_form("stateful", ("inputs",))  # in a traced step: batch statistics at every run
def _batch_norm_training(layer: BatchNormalization, inputs: Tensor, gamma: Tensor,
                         beta: Tensor) -> Tensor:
    """`layer`'s training-mode output, updating its moving statistics from the batch."""
    axes = tuple(i for i in range(inputs.ndim) if i not in layer._axes)
    mean, variance, centered = centered_moments(inputs.value, axes)
    layer._update_moving(mean, variance)
    return _batch_norm_train(inputs, gamma, beta, centered=centered, variance=variance,
                             epsilon=layer.epsilon, axes=axes)


class LayerNormalization(_Normalization):
    """Normalises each example over `axis` (the last by default), then scales and shifts.

    Args:
        axis: axis or axes to normalise over.
        epsilon: added to the variance.
        center: learn an offset `beta`.
        scale: learn a scale `gamma`.
        beta_initializer, gamma_initializer: initializers.
        beta_regularizer, gamma_regularizer: optional penalties.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, axis: Any = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, **kwargs: Any):
        if kwargs.pop("rms_scaling", False):
            raise NotImplementedError("LayerNormalization(rms_scaling=True) is not supported.")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         beta_regularizer, gamma_regularizer, **kwargs)

    def build(self, input_shape: Any) -> None:
        self._build_params(input_shape)

    def call(self, inputs: Tensor) -> Tensor:
        mean, variance = nn.moments(inputs, self._axes, keepdims=True)
        return nn.batch_normalization(inputs, mean, variance, self._param(self.beta),
                                      self._param(self.gamma), self.epsilon)


class Normalization(Layer):
    """Feature-wise standardisation with statistics from `adapt(data)` or given constants.

    Output is `(x - mean) / max(sqrt(variance), 1e-7)` (or the inverse with
    `invert=True`). `mean` and `variance` are non-trainable weights set by `adapt`.

    Args:
        axis: axis or axes that keep separate statistics (default -1, the features);
            None for one scalar mean and variance.
        mean: optional constant mean (then `variance` is required and `adapt` is not).
        variance: optional constant variance.
        invert: undo the normalisation instead.
        **kwargs: base `Layer` arguments.
    """

    _EPSILON = 1e-7

    def __init__(self, axis: Any = -1, mean: Any = None, variance: Any = None,
                 invert: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if (mean is None) != (variance is None):
            raise ValueError("When setting values directly, both `mean` and `variance` must "
                             f"be set. Received: mean={mean} and variance={variance}")
        self.axis = [] if axis is None else _axes(axis)
        self.invert = bool(invert)
        self.input_mean, self.input_variance = mean, variance
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        rank = len(input_shape)
        self._axes = _resolve_axes(self.axis, rank, self.name) if self.axis else []
        if any(input_shape[a] is None for a in self._axes):
            raise ValueError(f'Layer "{self.name}": the kept axes {self.axis} need known sizes. '
                             f"Received: input_shape={tuple(input_shape)}")
        self._broadcast = tuple(input_shape[i] if i in self._axes else 1 for i in range(rank))
        shape = tuple(input_shape[a] for a in self._axes)
        if self.input_mean is not None:
            self.mean = self._constant(self.input_mean, shape)
            self.variance = self._constant(self.input_variance, shape)
        else:
            self.mean = self.add_weight("mean", shape, "zeros", trainable=False)
            self.variance = self.add_weight("variance", shape, "ones", trainable=False)

    def _constant(self, value: Any, shape: tuple) -> Tensor:
        arr = np.broadcast_to(np.asarray(value, dtype=self.dtype), shape)
        return Tensor._wrap(np.array(arr))

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Computes `mean` and `variance` from `data` (an array or an iterable of batches)."""
        if self.input_mean is not None:
            raise ValueError(f'Layer "{self.name}" was given mean and variance: adapt() would '
                             "overwrite them. Create it without mean/variance to adapt.")
        batches = [np.asarray(data)] if hasattr(data, "shape") or isinstance(
            data, list) else (np.asarray(getattr(b, "value", b)) for b in data)
        total = total_sq = None
        count = 0
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            batch = batch.astype(np.float64)
            if not self.built:
                self.build((None, *batch.shape[1:]))
            reduce = tuple(a for a in range(batch.ndim) if a not in self._axes)
            part, part_sq = batch.sum(axis=reduce), np.square(batch).sum(axis=reduce)
            total = part if total is None else total + part
            total_sq = part_sq if total_sq is None else total_sq + part_sq
            count += batch.size // max(part.size, 1)
        if not count:
            raise ValueError(f'Layer "{self.name}": adapt() received no data.')
        mean = total / count
        self.mean.assign(mean.reshape(self.mean.shape))
        self.variance.assign(np.maximum(total_sq / count - mean ** 2, 0).reshape(
            self.variance.shape))

    def call(self, inputs: Tensor) -> Tensor:
        mean = ops.reshape(self.mean, self._broadcast)
        std = ops.maximum(ops.sqrt(ops.reshape(self.variance, self._broadcast)), self._EPSILON)
        if inputs.dtype.kind != "f":
            inputs = ops.cast(inputs, self.dtype)
        if self.invert:
            return ops.add(ops.multiply(inputs, std), mean)
        return ops.divide(ops.subtract(inputs, mean), std)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            return None if value is None else np.asarray(value, dtype=np.float64).tolist()
        axis = None if not self.axis else self.axis[0] if len(self.axis) == 1 else self.axis
        return {**super().get_config(), "axis": axis, "invert": self.invert,
                "mean": plain(self.input_mean), "variance": plain(self.input_variance)}
