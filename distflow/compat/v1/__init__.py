"""TensorFlow 1 compatibility: `import distflow.compat.v1 as tf` runs TF1 scripts.

Everything of `distflow` is here, plus TF1's graph API: `disable_eager_execution`,
`placeholder`, `Variable` / `get_variable` (graph variables with initializers),
`global_variables_initializer`, `Session` / `InteractiveSession` with
`run(fetches, feed_dict)`, `gradients`, `train.*Optimizer`, `losses`, `layers`,
and TF1's argument names (`reduction_indices`, `keep_dims`, `dimension`).

    import distflow.compat.v1 as tf
    tf.disable_eager_execution()
    x = tf.placeholder(tf.float32, [None, 1])
    ...
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train, feed_dict={x: xs, y: ys})

Without `disable_eager_execution()` ops run eagerly as in TF2, and `Session.run`
on eager tensors returns their values (what the seed tutorials rely on).
"""

from __future__ import annotations

import builtins as _builtins
import functools as _functools
from typing import Any

import numpy as np

import distflow as _df
from distflow import errors
from distflow import nn as _nn
from distflow import ops as _ops
from distflow import random as _random
from distflow.compat.v1 import layers, losses, summary, train
from distflow.compat.v1.variables import (
    AUTO_REUSE,
    GraphKeys,
    RefVariable,
    constant_initializer,
    get_variable,
    global_variables,
    global_variables_initializer,
    glorot_uniform_initializer,
    group,
    initialize_all_variables,
    is_variable_initialized,
    ones_initializer,
    random_normal_initializer,
    random_uniform_initializer,
    report_uninitialized_variables,
    trainable_variables,
    truncated_normal_initializer,
    variable_scope,
    variables_initializer,
    zeros_initializer,
)
from distflow.compat.v1.variables import Variable_ as Variable
from distflow.graph import core as _core
from distflow.graph.core import (
    Graph,
    Operation,
    executing_eagerly,
    get_default_graph,
    placeholder,
    reset_default_graph,
)
from distflow.graph.core import GraphTensor as Tensor
from distflow.graph.gradients import gradients
from distflow.graph.record import record_call as _record_call
from distflow.graph.session import InteractiveSession, Session, get_default_session
from distflow.tensor_shape import TensorShape


def _accepts_name(fn: Any) -> Any:
    """`fn` taking TF1's `name=` argument: in a graph, the operation it made is renamed."""
    @_functools.wraps(fn)
    def op(*args: Any, name: str | None = None, **kwargs: Any) -> Any:
        graph = _core.building_graph()
        if name is None or graph is None:
            return fn(*args, **kwargs)
        before = len(graph._ops)
        out = fn(*args, **kwargs)
        if isinstance(out, Tensor) and out.op._index >= before:
            _rename(graph, out.op, name)
        return out
    return op


def _rename(graph: Graph, op: Operation, name: str) -> None:
    del graph._names[op.name]
    op.name = graph.unique_name(graph._scope + name)
    graph._names[op.name] = op


def _is_op(value: Any) -> bool:
    return callable(value) and getattr(value, "__module__", "") in (
        "distflow.ops", "distflow.primitive", "distflow.shape_ops", "distflow.softmax_ops",
        "distflow.nn", "distflow.tensor") and not isinstance(value, type)


for _name in _df.__all__:  # the TF2 namespace (ops taking `name=`), then TF1's overrides
    if _name not in globals() and not _name.startswith("_"):
        _value = getattr(_df, _name)
        globals()[_name] = _accepts_name(_value) if _is_op(_value) else _value


class GPUOptions:
    """Accepted for compatibility: distflow runs on the CPU (`allow_growth` etc. are kept)."""

    def __init__(self, **options: Any):
        self.allow_growth = False
        self.__dict__.update(options)


class ConfigProto:
    """Accepted for compatibility (`Session(config=...)`): the options have no effect."""

    def __init__(self, **options: Any):
        self.gpu_options = GPUOptions()
        self.allow_soft_placement = self.log_device_placement = False
        self.__dict__.update(options)


def disable_eager_execution() -> None:
    """Ops build the default graph from now on (TF1 graph mode)."""
    _core.set_eager_disabled(True)


def enable_eager_execution(*_args: Any, **_kwargs: Any) -> None:
    """Ops run eagerly again."""
    _core.set_eager_disabled(False)


disable_v2_behavior = disable_eager_execution
enable_v2_behavior = enable_eager_execution


def name_scope(name: str, default_name: str | None = None, values: Any = None):
    """Prefixes op names with `name/` in the default graph."""
    return get_default_graph().name_scope(name or default_name)


def control_dependencies(control_inputs: Any):
    """Ops created inside run after `control_inputs`."""
    return get_default_graph().control_dependencies(control_inputs)


def get_collection(key: str, scope: str | None = None) -> list:
    """A collection of the default graph."""
    return get_default_graph().get_collection(key, scope)


def add_to_collection(name: str, value: Any) -> None:
    """Appends to a collection of the default graph."""
    get_default_graph().add_to_collection(name, value)


def no_op(name: str | None = None) -> Operation:
    """An operation that does nothing (a target for control dependencies)."""
    return group(name=name or "NoOp")


def assign(ref: Any, value: Any, **_kwargs: Any) -> Any:
    """`ref.assign(value)`."""
    return ref.assign(value)


def assign_add(ref: Any, value: Any, **_kwargs: Any) -> Any:
    """`ref.assign_add(value)`."""
    return ref.assign_add(value)


def assign_sub(ref: Any, value: Any, **_kwargs: Any) -> Any:
    """`ref.assign_sub(value)`."""
    return ref.assign_sub(value)


def set_random_seed(seed: int) -> None:
    """TF1's name of `distflow.random.set_seed`."""
    _random.set_seed(seed)


# ----------------------------------------------------- TF1 argument names


def _axis(axis: Any, reduction_indices: Any, dimension: Any = None) -> Any:
    given = [a for a in (axis, reduction_indices, dimension) if a is not None]
    if len(given) > 1:
        raise ValueError("Cannot specify both 'axis' and 'reduction_indices' (or 'dimension').")
    return given[0] if given else None


def _keep(keepdims: Any, keep_dims: Any) -> bool:
    return _builtins.bool(keepdims if keepdims is not None else keep_dims)


def _reduction(op):
    def reduce(input_tensor: Any, axis: Any = None, keepdims: Any = None, name: Any = None,
               reduction_indices: Any = None, keep_dims: Any = None) -> Any:
        return op(input_tensor, axis=_axis(axis, reduction_indices),
                  keepdims=_keep(keepdims, keep_dims))
    reduce.__name__ = op.__name__
    reduce.__doc__ = f"{op.__doc__} (TF1 names `reduction_indices`, `keep_dims` accepted.)"
    return reduce


reduce_sum = _reduction(_ops.reduce_sum)
reduce_mean = _reduction(_ops.reduce_mean)
reduce_max = _reduction(_ops.reduce_max)
reduce_min = _reduction(_ops.reduce_min)
reduce_logsumexp = _reduction(_ops.reduce_logsumexp)


def argmax(input: Any, axis: Any = None, name: Any = None, dimension: Any = None,  # noqa: A002
           output_type: Any = np.int64) -> Any:
    """Index of the largest value along `axis` (TF1: default axis 0)."""
    axis = _axis(axis, None, dimension)
    return _ops.cast(_ops.argmax(input, axis=0 if axis is None else axis), output_type)


def argmin(input: Any, axis: Any = None, name: Any = None, dimension: Any = None,  # noqa: A002
           output_type: Any = np.int64) -> Any:
    """Index of the smallest value along `axis` (TF1: default axis 0)."""
    axis = _axis(axis, None, dimension)
    return _ops.cast(_ops.argmin(input, axis=0 if axis is None else axis), output_type)


def _draw(fn, *args: Any) -> Any:
    """An eager draw, or in graph mode a stateful operation drawing anew at every run."""
    if _core.building_graph() is None:
        return fn(*args)
    return _record_call(fn, "stateful", (), False, args, {})


def random_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = np.float32,
                  seed: Any = None, name: Any = None) -> Any:
    """Samples from N(mean, stddev**2) (a fresh draw at every run in graph mode)."""
    return _draw(_random.normal, shape, mean, stddev, dtype, seed)


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0,
                     dtype: Any = np.float32, seed: Any = None, name: Any = None) -> Any:
    """Normal samples within two standard deviations (fresh at every run in graph mode)."""
    return _draw(_random.truncated_normal, shape, mean, stddev, dtype, seed)


def random_uniform(shape: Any, minval: float = 0, maxval: Any = None, dtype: Any = np.float32,
                   seed: Any = None, name: Any = None) -> Any:
    """Samples from [minval, maxval) (fresh at every run in graph mode)."""
    return _draw(_random.uniform, shape, minval, maxval, dtype, seed)


def to_float(x: Any, name: Any = None) -> Any:
    """Cast to float32."""
    return _ops.cast(x, np.float32)


def to_int32(x: Any, name: Any = None) -> Any:
    """Cast to int32."""
    return _ops.cast(x, np.int32)


def identity(x: Any, name: Any = None) -> Any:
    """x itself (an eager tensor) or x + 0 in a graph."""
    return x if _core.building_graph() is None else _ops.add(x, _ops.zeros_like(x))


def log(x: Any, name: Any = None) -> Any:
    """Elementwise natural logarithm."""
    return _ops.log(x)


def _keep_mask(x: Any, keep_prob: Any, noise_shape: Any, seed: Any) -> Any:
    """1 / keep_prob where an element is kept (probability keep_prob), else 0."""
    keep = float(np.asarray(keep_prob.value if isinstance(keep_prob, _df.Tensor) else keep_prob))
    if not 0 < keep <= 1:
        raise ValueError(f"`keep_prob` must be in (0, 1]. Received: keep_prob={keep}")
    shape = np.shape(x.value) if noise_shape is None else tuple(noise_shape)
    rng = np.random.default_rng(seed) if seed is not None else _random.get_global_generator()
    dtype = x.value.dtype
    return _df.Tensor((rng.random(shape) < keep).astype(dtype) / dtype.type(keep))


class _NN:
    """`tf.compat.v1.nn`: distflow.nn plus TF1 names."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(_nn, name)
        return _accepts_name(value) if _is_op(value) else value

    @staticmethod
    def l2_loss(t: Any, name: Any = None) -> Any:
        """sum(t ** 2) / 2."""
        return _ops.multiply(_ops.reduce_sum(_ops.square(t)), 0.5)

    @staticmethod
    def dropout(x: Any, keep_prob: Any = None, noise_shape: Any = None, seed: Any = None,
                name: Any = None, rate: Any = None) -> Any:
        """TF1's dropout: keeps each element with probability `keep_prob` (or drops `rate`)."""
        if (keep_prob is None) == (rate is None):
            raise ValueError("dropout: give exactly one of `keep_prob` and `rate`. Received: "
                             f"keep_prob={keep_prob!r}, rate={rate!r}")
        if isinstance(keep_prob, _df.Tensor) or isinstance(rate, _df.Tensor):  # e.g. fed
            keep = keep_prob if rate is None else _ops.subtract(1.0, rate)
            mask = _draw(_keep_mask, x, keep, noise_shape, seed)
            return _ops.multiply(x, mask)
        return _nn.dropout(x, 1.0 - keep_prob if rate is None else rate, noise_shape, seed)

    @staticmethod
    def softmax_cross_entropy_with_logits_v2(labels: Any = None, logits: Any = None,
                                             axis: int = -1, **_kwargs: Any) -> Any:
        return _nn.softmax_cross_entropy_with_logits(labels, logits, axis)

    @staticmethod
    def softmax_cross_entropy_with_logits(labels: Any = None, logits: Any = None,
                                          dim: int = -1, **_kwargs: Any) -> Any:
        return _nn.softmax_cross_entropy_with_logits(labels, logits, dim)

    @staticmethod
    def sparse_softmax_cross_entropy_with_logits(labels: Any = None, logits: Any = None,
                                                 **_kwargs: Any) -> Any:
        return _nn.sparse_softmax_cross_entropy_with_logits(labels, logits)


nn = _NN()
bool = "bool"  # noqa: A001  (tf.bool; this module calls builtins.bool explicitly)
int8, int16, uint16, float16 = "int8", "int16", "uint16", "float16"

for _name in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_logsumexp",
              "argmax", "argmin", "random_normal", "truncated_normal", "random_uniform",
              "to_float", "to_int32", "identity", "log"):
    globals()[_name] = _accepts_name(globals()[_name])


def __getattr__(name: str) -> Any:
    return getattr(_df, name)  # keras, optimizers, data, ... (loaded lazily)


__all__ = [n for n in globals() if not n.startswith("_")]
