"""TF1's functional layers (`tf.compat.v1.layers`): variables through `get_variable`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distflow import nn, ops
from distflow.compat.v1 import variables


def dense(inputs: Any, units: int, activation: Callable | None = None, use_bias: bool = True,
          kernel_initializer: Any = None, bias_initializer: Any = None, trainable: bool = True,
          name: str | None = None, reuse: Any = None, **_kwargs: Any) -> Any:
    """activation(inputs @ kernel + bias), with `name/kernel` and `name/bias` variables.

    Args:
        inputs: a tensor of shape [..., in_features] (the last dimension must be known).
        units: output features.
        activation: a function applied to the output, or None.
        use_bias: whether to add a bias.
        kernel_initializer: default Glorot-uniform.
        bias_initializer: default zeros.
        trainable: whether the variables are trainable.
        name: the variable scope (default "dense", made unique).
        reuse: reuse the variables of an existing scope of this name.
    """
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"`units` must be a positive int. Received: units={units!r}")
    inputs = ops.convert_to_tensor(inputs) if not hasattr(inputs, "shape") else inputs
    features = inputs.shape[-1]
    if features is None:
        raise ValueError(f"The last dimension of the inputs to `dense` should be defined. "
                         f"Found None (inputs shape {inputs.shape}).")
    with variables.variable_scope(name if name is not None else _unique("dense"), reuse=reuse):
        kernel = variables.get_variable("kernel", (features, units), inputs.dtype,
                                        kernel_initializer, trainable)
        return _finish(ops.matmul(inputs, kernel), units, inputs.dtype, use_bias,
                       bias_initializer, trainable, activation)


def _finish(out: Any, units: int, dtype: Any, use_bias: bool, bias_initializer: Any,
            trainable: bool, activation: Callable | None) -> Any:
    """Adds the scope's `bias` (when asked) and applies the activation."""
    if use_bias:
        bias = variables.get_variable("bias", (units,), dtype,
                                      bias_initializer or variables.zeros_initializer(),
                                      trainable)
        out = ops.add(out, bias)
    return activation(out) if activation is not None else out


def conv2d(inputs: Any, filters: int, kernel_size: Any, strides: Any = (1, 1),
           padding: str = "valid", activation: Callable | None = None, use_bias: bool = True,
           kernel_initializer: Any = None, bias_initializer: Any = None, trainable: bool = True,
           name: str | None = None, reuse: Any = None, **_kwargs: Any) -> Any:
    """2-D convolution of NHWC `inputs` with a `name/kernel` [kh, kw, in, filters] variable.

    Args:
        inputs: a tensor [batch, height, width, channels] (channels known).
        filters: output channels.
        kernel_size: an int or (kh, kw).
        strides: an int or (sh, sw).
        padding: "valid" or "same".
        activation / use_bias / initializers / trainable / name / reuse: as `dense`.
    """
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise ValueError(f"`filters` must be a positive int. Received: filters={filters!r}")
    kh, kw = nn._pair2(kernel_size, "kernel_size")
    channels = inputs.shape[-1]
    if channels is None:
        raise ValueError(f"The channel dimension of the inputs to `conv2d` should be defined. "
                         f"Found None (inputs shape {inputs.shape}).")
    with variables.variable_scope(name if name is not None else _unique("conv2d"), reuse=reuse):
        kernel = variables.get_variable("kernel", (kh, kw, channels, filters), inputs.dtype,
                                        kernel_initializer, trainable)
        out = nn.conv2d(inputs, kernel, strides=nn._pair2(strides, "strides"), padding=padding)
        return _finish(out, filters, inputs.dtype, use_bias, bias_initializer, trainable,
                       activation)


def max_pooling2d(inputs: Any, pool_size: Any, strides: Any, padding: str = "valid",
                  **_kwargs: Any) -> Any:
    """Max pooling over NHWC windows."""
    return nn.max_pool2d(inputs, pool_size, strides, padding)


def average_pooling2d(inputs: Any, pool_size: Any, strides: Any, padding: str = "valid",
                      **_kwargs: Any) -> Any:
    """Average pooling over NHWC windows."""
    return nn.avg_pool2d(inputs, pool_size, strides, padding)


def flatten(inputs: Any, **_kwargs: Any) -> Any:
    """[batch, ...] -> [batch, prod(...)] (the other dimensions must be known)."""
    rest = inputs.shape[1:]
    if None in tuple(rest):
        raise ValueError(f"flatten needs every dimension but the first known. Received "
                         f"shape {inputs.shape}.")
    n = 1
    for d in rest:
        n *= d
    return ops.reshape(inputs, (-1, n))


def dropout(inputs: Any, rate: float = 0.5, noise_shape: Any = None, seed: Any = None,
            training: Any = False, **_kwargs: Any) -> Any:
    """Dropout when `training` (a Python bool; for a fed flag use `cond`)."""
    if hasattr(training, "_symbolic") and training._symbolic:
        from distflow.graph.control_flow import cond

        return cond(training, lambda: nn.dropout(inputs, rate, noise_shape, seed),
                    lambda: ops.add(inputs, 0.0))
    return nn.dropout(inputs, rate, noise_shape, seed) if training else inputs


def _unique(base: str) -> str:
    """`base`, or `base_N` for the first N whose variables do not exist yet."""
    store, prefix = variables._store(), variables._current_scope()
    n = 0
    while f"{prefix}{base if n == 0 else f'{base}_{n}'}/kernel" in store:
        n += 1
    return base if n == 0 else f"{base}_{n}"
