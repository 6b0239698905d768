"""distflow: data-parallel deep learning with a NumPy autodiff core.

`import distflow as df` gives the TF2-style core: tensors, variables,
`GradientTape`, NumPy-named ops (with `reduce_*` aliases) and `df.nn`,
`df.random`, `df.keras`, `df.optimizers`, `df.data`, `df.distribute`.
"""

from distflow import nn, random, test_util
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
    name_scope,
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

float16, float32, float64 = "float16", "float32", "float64"
int32, int64, uint8, bool_ = "int32", "int64", "uint8", "bool"

__version__ = "0.1.0"

__all__ = [n for n in dir() if not n.startswith("_")]

_LAZY_SUBPACKAGES = ("keras", "optimizers", "data", "distribute", "compat")


def __getattr__(name: str):
    # Upper layers load on first use: `import distflow` stays light and the core
    # never imports them at import time (dependencies point down).
    if name in _LAZY_SUBPACKAGES:
        import importlib

        return importlib.import_module(f"distflow.{name}")
    raise AttributeError(f"module 'distflow' has no attribute {name!r}")
