"""distflow: data-parallel deep learning with a NumPy autodiff core.

`import distflow as df` gives the TF2-style core: tensors, variables,
`GradientTape`, NumPy-named ops (with `reduce_*` aliases) and `df.nn`,
`df.random`, `df.keras`, `df.optimizers`, `df.data`, `df.distribute`.
"""

from distflow import dtypes, nest, nn, process_env, random, test_util  # tf.dtypes.float32
from distflow.dtypes import (
    DType,
    as_dtype,
    bool_,
    complex64,
    complex128,
    double,
    float16,
    float32,
    float64,
    half,
    int8,
    int16,
    int32,
    int64,
    string,
    uint8,
    uint16,
    uint32,
    uint64,
)
from distflow.graph import (  # graph mode: the IR, `function`, TF1's Session
    Graph,
    InteractiveSession,
    Session,
    TensorShape,
    TensorSpec,
    cond,
    control_dependencies,
    executing_eagerly,
    function,
    get_default_graph,
    placeholder,
    reset_default_graph,
    while_loop,
)
from distflow.ops import (
    REGISTRY,
    abs,
    add,
    add_n,
    argmax,
    argmin,
    cast,
    clip,
    clip_by_value,
    concat,
    concatenate,
    constant,
    convert_to_tensor,
    divide,
    embedding_lookup,
    equal,
    exp,
    expand_dims,
    fill,
    gather,
    getitem,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    logical_and,
    logical_or,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    multiply,
    negative,
    norm,
    not_equal,
    one_hot,
    ones,
    ones_like,
    pad,
    power,
    range,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_std,
    reduce_sum,
    reduce_variance,
    relu,
    reshape,
    round,
    rsqrt,
    shape,
    sigmoid,
    sign,
    softplus,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    subtract,
    sum,
    swapaxes,
    tanh,
    tile,
    transpose,
    unbroadcast,
    var,
    where,
    zeros,
    zeros_like,
)
from distflow.tensor import GradientTape, Tensor, Variable, stop_gradient

# isort: split
# tf.math / tf.linalg namespaces and the TF top-level ops built on the core
from distflow import audio, image, linalg, lookup, math, ragged, sets, signal, sparse, strings
from distflow.array_ops import (
    TensorArray,
    approx_top_k,
    argsort,
    batch_to_space,
    boolean_mask,
    broadcast_dynamic_shape,
    broadcast_static_shape,
    broadcast_to,
    clip_by_global_norm,
    clip_by_norm,
    dynamic_partition,
    dynamic_stitch,
    einsum,
    eye,
    foldl,
    foldr,
    gather_nd,
    histogram_fixed_width,
    histogram_fixed_width_bins,
    identity,
    identity_n,
    is_tensor,
    linspace,
    map_fn,
    meshgrid,
    numpy_function,
    parallel_stack,
    print,
    py_function,
    rank,
    realdiv,
    repeat,
    required_space_to_batch_paddings,
    reverse,
    reverse_sequence,
    roll,
    scan,
    scatter_nd,
    searchsorted,
    sequence_mask,
    shape_n,
    size,
    slice,
    sort,
    space_to_batch,
    space_to_batch_nd,
    strided_slice,
    tensor_scatter_nd_add,
    tensor_scatter_nd_max,
    tensor_scatter_nd_min,
    tensor_scatter_nd_sub,
    tensor_scatter_nd_update,
    tensordot,
    timestamp,
    unique,
    unique_with_counts,
    unravel_index,
    unstack,
    vectorized_map,
)
from distflow.math_ops import (
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    cos,
    cosh,
    cumsum,
    floor,
    logical_not,
    pow,
    reduce_all,
    reduce_any,
    reduce_prod,
    scalar_mul,
    sin,
    sinh,
    tan,
    truncatediv,
    truncatemod,
)

# isort: split
# training infrastructure: tf.Module, tf.train, tf.summary, tf.config, tf.io, ...
from distflow import autograph, config, io, saved_model, summary, train, version
from distflow.config import device

# isort: split
# tf.debugging, tf.bitwise, tf.errors and the top-level control and checking helpers
from distflow import autodiff, bitwise, debugging, errors, queue, test
from distflow import strategy_stack as _strategy_stack
from distflow.composite import (
    IndexedSlices,
    IndexedSlicesSpec,
    NoneTensorSpec,
    TensorArraySpec,
    register_tensor_conversion_function,
)
from distflow.control_ops import (
    AggregationMethod,
    Assert,
    CriticalSection,
    UnconnectedGradients,
    VariableAggregation,
    VariableSynchronization,
    assert_equal,
    assert_greater,
    assert_less,
    assert_rank,
    case,
    custom_gradient,
    ensure_shape,
    get_static_value,
    grad_pass_through,
    group,
    guarantee_const,
    init_scope,
    inside_function,
    is_symbolic_tensor,
    no_op,
    nondifferentiable_batch_function,
    recompute_grad,
    switch_case,
    tuple,
    type_spec_from_value,
)
from distflow.conv_ops import (
    conv,
    conv2d_backprop_filter_v2,
    conv2d_backprop_input_v2,
    extract_volume_patches,
)
from distflow.device_spec import DeviceSpec
from distflow.graph import Operation, gradients
from distflow.linalg import matrix_square_root
from distflow.math_ops import bitcast, saturate_cast
from distflow.module import Module, get_current_name_scope, name_scope
from distflow.ragged import RaggedTensor, RaggedTensorSpec
from distflow.sets import edit_distance
from distflow.sparse import SparseTensor, SparseTensorSpec
from distflow.strings import as_string, fingerprint
from distflow.tensor_shape import TypeSpec

truediv = divide


def get_logger():
    """The `logging` logger distflow writes to (TF's `tf.get_logger()`)."""
    import logging

    return logging.getLogger("distflow")



newaxis = None  # x[:, tf.newaxis]
globals()["bool"] = bool_  # tf.bool (not in __all__: `import *` must keep Python's bool)

__version__ = "0.1.0"

if process_env.is_set("DISTFLOW_ROLE"):  # a process started by the launcher
    from distflow import _launched

    _launched.install()

__all__ = [n for n in dir() if not n.startswith("_")]
# `from distflow import *` must not replace Python's print, slice or pow (use df.print, ...)
__all__ = [n for n in __all__ if n not in ("print", "slice", "pow", "bool", "tuple")]

def _default_strategy() -> object:
    """The local strategy, loaded on first use (the distribute package sits above the core)."""
    import importlib

    return importlib.import_module("distflow.distribute.strategy").default_strategy()


_strategy_stack.provide_default(_default_strategy)

_LAZY_SUBPACKAGES = ("keras", "optimizers", "data", "distribute", "compat", "initializers")
_LAZY_FROM_KERAS = ("losses", "metrics")  # tf.losses / tf.metrics are Keras's, as in TF 2.21
_LAZY_FROM_INITIALIZERS = ("constant_initializer", "zeros_initializer", "ones_initializer",
                           "random_normal_initializer", "random_uniform_initializer")


def __getattr__(name: str):
    # Upper layers load on first use: `import distflow` stays light and the core
    # never imports them at import time (dependencies point down).
    if name in _LAZY_SUBPACKAGES:
        import importlib

        return importlib.import_module(f"distflow.{name}")
    if name in _LAZY_FROM_KERAS:
        import importlib

        return importlib.import_module(f"distflow.keras.{name}")
    if name in _LAZY_FROM_INITIALIZERS:  # tf.zeros_initializer() etc. (Keras initializers)
        import importlib

        return getattr(importlib.import_module("distflow.initializers"), name)
    raise AttributeError(f"module 'distflow' has no attribute {name!r}")
