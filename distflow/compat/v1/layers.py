"""TF1's functional layers (`tf.compat.v1.layers`): variables through `get_variable`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distflow import ops
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
    scope = name if name is not None else _unique("dense")
    with variables.variable_scope(scope, reuse=reuse):
        kernel = variables.get_variable("kernel", (features, units), inputs.dtype,
                                        kernel_initializer, trainable)
        out = ops.matmul(inputs, kernel)
        if use_bias:
            bias = variables.get_variable("bias", (units,), inputs.dtype,
                                          bias_initializer or variables.zeros_initializer(),
                                          trainable)
            out = ops.add(out, bias)
        return activation(out) if activation is not None else out


def _unique(base: str) -> str:
    """`base`, or `base_N` for the first N whose variables do not exist yet."""
    store, prefix = variables._store(), variables._current_scope()
    n = 0
    while f"{prefix}{base if n == 0 else f'{base}_{n}'}/kernel" in store:
        n += 1
    return base if n == 0 else f"{base}_{n}"
