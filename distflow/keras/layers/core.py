"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Embedding, Masking, Lambda,
Rescaling, Identity."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from distflow import nn, ops
from distflow.keras import activations, initializers, regularizers
from distflow.keras.layers.base import InputSpec, Layer
from distflow.math_ops import reduce_any
from distflow.ops import Primitive
from distflow.tensor import Tensor, graph_form

# x + bias on the last axis, with a fast VJP for the bias (a private primitive: the
# core's registry is left alone; covered by the layers' gradient checks).
_bias_add = Primitive("keras_bias_add", lambda x, b: (x + b, None),
                      (lambda g, _: g, lambda g, _: ops.channel_sum(g)), fresh=True,
                      in_place=lambda x, b: (np.add(x, b, out=x), None))


def bias_add(x: Tensor, bias: Any) -> Tensor:
    """x + bias, the 1-D bias broadcast on the last axis of x."""
    if bias.shape[-1:] != x.shape[-1:] or len(bias.shape) != 1 or x.dtype != bias.dtype:
        return ops.add(x, bias)
    return _bias_add(x, bias)


def positive_int(value: Any, name: str) -> int:
    """Validates a positive int argument with Keras's wording."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"Received an invalid value for `{name}`, expected a positive "
                         f"integer. Received: {name}={value!r}")
    return int(value)


def serialize_or_none(module: Any, obj: Any) -> Any:
    """`module.serialize(obj)`, or None when `obj` is None."""
    return None if obj is None else module.serialize(obj)


class Dense(Layer):
    """`activation(inputs @ kernel + bias)` on the last axis of inputs of any rank >= 2.

    Args:
        units: positive int, the output size.
        activation: activation name or callable (None: linear).
        use_bias: whether to add a bias vector.
        kernel_initializer: initializer of the (input_dim, units) kernel.
        bias_initializer: initializer of the bias.
        kernel_regularizer: optional penalty on the kernel (see `losses`).
        bias_regularizer: optional penalty on the bias.
        activity_regularizer: optional penalty on the output.
        **kwargs: base `Layer` arguments (`name`, `input_shape`, ...).
    """

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, **kwargs: Any):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.input_spec = InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        input_dim = input_shape[-1] if len(input_shape) else None
        if input_dim is None:
            raise ValueError(f'Layer "{self.name}": the last dimension of the inputs to a '
                             f"Dense layer should be defined. Received: input_shape="
                             f"{tuple(input_shape)}")
        self.kernel = self.add_weight("kernel", (input_dim, self.units),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.units,), self.bias_initializer,
                                     self.bias_regularizer) if self.use_bias else None)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.ndim == 2:
            out = ops.matmul(inputs, self.kernel)
        else:  # one 2-D matmul over all leading axes: cheaper VJPs than a batched matmul
            flat = ops.reshape(inputs, (-1, inputs.shape[-1]))
            out = ops.reshape(ops.matmul(flat, self.kernel), (*inputs.shape[:-1], self.units))
        if self.bias is not None:
            out = bias_add(out, self.bias)
        return self.activation(out)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": serialize_or_none(regularizers, self.kernel_regularizer),
                "bias_regularizer": serialize_or_none(regularizers, self.bias_regularizer)}


class Activation(Layer):
    """Applies an activation function (a name such as 'relu', or a callable)."""

    def __init__(self, activation: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Randomly zeroes a fraction `rate` of the inputs during training (scaling the rest
    by 1 / (1 - rate)); the identity at inference.

    Args:
        rate: float in [0, 1), the fraction to drop.
        noise_shape: optional mask shape broadcast against the input (None entries
            take the input's size), e.g. (batch, 1, features).
        seed: optional int; the layer then draws its masks from its own generator,
            so runs are reproducible. Without it masks come from distflow's global
            generator (seeded by `distflow.random.set_seed`).
    """

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError("Invalid value received for argument `rate`. Expected a float "
                             f"value in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(int(seed))
        self.supports_masking = True

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        noise = None
        if self.noise_shape is not None:
            noise = tuple(s if n is None else n for n, s in zip(self.noise_shape, inputs.shape))
        return nn.dropout(inputs, self.rate, noise_shape=noise, rng=self._rng)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
                "seed": self.seed}


class Flatten(Layer):
    """Flattens every axis but the batch axis: (batch, ...) -> (batch, prod(...))."""

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError("`data_format` must be 'channels_last' or 'channels_first'. "
                             f"Received: data_format={data_format!r}")
        self.data_format = data_format or "channels_last"
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs: Tensor) -> Tensor:
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = ops.transpose(inputs, (0, *range(2, inputs.ndim), 1))
        if inputs.ndim == 1:
            return ops.expand_dims(inputs, 1)
        return ops.reshape(inputs, (inputs.shape[0], -1))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        rest = tuple(input_shape)[1:]
        size = None if any(s is None for s in rest) else math.prod(rest)
        return (tuple(input_shape)[0], size)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes every example to `target_shape` (batch axis kept; one entry may be -1)."""

    def __init__(self, target_shape: Any, **kwargs: Any):
        super().__init__(**kwargs)
        target = tuple(s if isinstance(s, int | np.integer) else 0 for s in target_shape)
        if sum(s == -1 for s in target) > 1 or any(s == 0 or s < -1 for s in target):
            raise ValueError("`target_shape` must hold positive ints and at most one -1 "
                             "(without the batch dimension). "
                             f"Received: target_shape={tuple(target_shape)}")
        self.target_shape = tuple(int(s) for s in target)

    def call(self, inputs: Tensor) -> Tensor:
        out_shape = self.compute_output_shape(inputs.shape)
        return ops.reshape(inputs, (inputs.shape[0], *out_shape[1:]))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        rest = input_shape[1:]
        if -1 not in self.target_shape:
            known = math.prod(self.target_shape)
            if None not in rest and math.prod(rest) != known:
                raise ValueError(self._mismatch(input_shape))
            return (input_shape[0], *self.target_shape)
        if None in rest:
            return (input_shape[0], *(None if s == -1 else s for s in self.target_shape))
        known = -math.prod(self.target_shape)
        if math.prod(rest) % known:
            raise ValueError(self._mismatch(input_shape))
        missing = math.prod(rest) // known
        return (input_shape[0], *(missing if s == -1 else s for s in self.target_shape))

    def _mismatch(self, input_shape: tuple) -> str:
        return (f'Layer "{self.name}": cannot reshape inputs of shape {input_shape} into '
                f"target_shape={self.target_shape} (the element counts per example differ).")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


@graph_form(differentiable=False)  # in a traced step: checked at every run
def _checked_ids(layer: Embedding, inputs: Tensor) -> Tensor:
    """`inputs` as integer ids in [0, input_dim), else a Keras-style error."""
    ids = inputs
    if ids.dtype.kind not in "iu":
        if not np.all(np.mod(ids.value, 1) == 0):
            raise ValueError(f'Layer "{layer.name}" expects integer ids. Received '
                             f"non-integer values of dtype {ids.dtype}.")
        ids = Tensor._wrap(ids.value.astype(np.int64))
    if ids.size and (ids.value.min() < 0 or ids.value.max() >= layer.input_dim):
        raise ValueError(
            f'Layer "{layer.name}": ids must be in [0, {layer.input_dim}) (input_dim). '
            f"Received ids in [{ids.value.min()}, {ids.value.max()}]; raise input_dim "
            "or fix the data.")
    return ids


class Embedding(Layer):
    """Maps integer ids in [0, input_dim) to rows of a learned (input_dim, output_dim) table.

    Args:
        input_dim: vocabulary size.
        output_dim: embedding size.
        embeddings_initializer: initializer of the table (default 'uniform', ±0.05).
        embeddings_regularizer: optional penalty on the table.
        mask_zero: whether id 0 is padding; `compute_mask` then marks it.
        **kwargs: base `Layer` arguments (`input_length` is accepted and ignored).
    """

    _autocast_inputs = False

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 embeddings_regularizer: Any = None, mask_zero: bool = False, **kwargs: Any):
        kwargs.pop("input_length", None)
        super().__init__(**kwargs)
        self.input_dim = positive_int(input_dim, "input_dim")
        self.output_dim = positive_int(output_dim, "output_dim")
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero

    def build(self, input_shape: Any = None) -> None:
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          self.embeddings_regularizer)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.gather(self.embeddings, _checked_ids(self, inputs))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if not self.mask_zero:
            return None
        return ops.not_equal(ops.convert_to_tensor(inputs), 0)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (*tuple(input_shape), self.output_dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": serialize_or_none(regularizers,
                                                            self.embeddings_regularizer),
                "mask_zero": self.mask_zero}


class Masking(Layer):
    """Marks time steps whose features all equal `mask_value` as padding.

    The output is the input with masked steps zeroed; the mask reaches the next
    layers that accept one (e.g. an LSTM skips those steps).
    """

    def __init__(self, mask_value: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)
        self.supports_masking = True

    def _keep(self, inputs: Tensor) -> Tensor:
        """(batch, steps) bool: the steps with a feature other than `mask_value`."""
        return reduce_any(ops.not_equal(inputs, self.mask_value), axis=-1)

    def call(self, inputs: Tensor) -> Tensor:
        keep = ops.cast(ops.expand_dims(self._keep(inputs), -1), inputs.dtype)
        return ops.multiply(inputs, keep)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self._keep(ops.convert_to_tensor(inputs))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


class Lambda(Layer):
    """Wraps a function of tensors as a layer: `Lambda(lambda x: x * 2)`.

    Saving needs a named function (not a `lambda`), given back to `load_model` /
    `layers.deserialize` through `custom_objects={name: function}`: code is never
    serialized.

    Args:
        function: callable `function(inputs, **arguments)` built from distflow ops.
        output_shape: optional output shape without the batch dim (tuple or a
            callable of the full input shape); inferred by running the function otherwise.
        arguments: optional dict of extra keyword arguments for `function`.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, function: Any, output_shape: Any = None, mask: Any = None,
                 arguments: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not callable(function):
            raise ValueError(f"`function` must be callable. Received: function={function!r}")
        if mask is not None:
            raise NotImplementedError("Lambda(mask=...) is not supported.")
        self.function = function
        self.output_shape_arg = output_shape
        self.arguments = dict(arguments or {})

    def call(self, inputs: Any) -> Any:
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if callable(self.output_shape_arg):
            return tuple(self.output_shape_arg(input_shape))
        if self.output_shape_arg is not None:
            return (tuple(input_shape)[0], *self.output_shape_arg)
        return super().compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        name = getattr(self.function, "__name__", "<lambda>")
        if name == "<lambda>" or callable(self.output_shape_arg):
            raise ValueError(
                f'Lambda layer "{self.name}" wraps an anonymous function and cannot be saved '
                "(distflow never serializes code). Use a named function and pass it back "
                "with custom_objects={name: function}, or write a Layer subclass.")
        shape = None if self.output_shape_arg is None else list(self.output_shape_arg)
        return {**super().get_config(), "function": name, "output_shape": shape,
                "arguments": self.arguments}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> Lambda:
        config = dict(config)
        name = config["function"]
        function = (custom_objects or {}).get(name) if isinstance(name, str) else name
        if function is None:
            raise ValueError(f"Lambda layer function '{name}' is unknown: pass it in "
                             f"custom_objects={{'{name}': {name}}}.")
        return super().from_config({**config, "function": function})


class Rescaling(Layer):
    """inputs * scale + offset (e.g. `Rescaling(1 / 255)` for images)."""

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.dtype.kind != "f":
            inputs = ops.cast(inputs, self.dtype)
        return ops.add(ops.multiply(inputs, self.scale), self.offset)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Identity(Layer):
    """Returns its input unchanged (a placeholder in layer lists)."""

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape
