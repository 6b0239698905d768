"""TensorFlow's top-level control and checking helpers over distflow's core and graph mode.

`case` / `switch_case` pick a branch (nested `cond`s, so a graph decides when it
runs); `group`, `no_op`, `tuple`, `guarantee_const`, `init_scope` and
`recompute_grad` are what TF's are in eager code; `Assert`, `assert_*` and
`ensure_shape` raise `errors.InvalidArgumentError` as TF does; the enums
(`UnconnectedGradients`, `AggregationMethod`, `VariableAggregation`,
`VariableSynchronization`) carry TF's names and values.
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from distflow import composite, nest, ops, sparse
from distflow.errors import InvalidArgumentError
from distflow.graph.control_flow import cond
from distflow.graph.core import GraphTensor, building_graph
from distflow.reorder_ops import identity
from distflow.tensor import Tensor, as_array, current_tape, graph_form, record, stop_gradient
from distflow.tensor_shape import TensorShape, TensorSpec, TypeSpec

# ------------------------------------------------------------------ branches


def case(pred_fn_pairs: Sequence[tuple[Any, Callable]], default: Callable | None = None,
         exclusive: bool = False, strict: bool = False, name: str = "case") -> Any:
    """The function of the first true predicate is called (TF's `tf.case`).

    Args:
        pred_fn_pairs: (boolean scalar, zero-argument function) pairs, tried in order.
        default: called when no predicate holds; without it the last pair's
            function is the default, as TF.
        exclusive: accepted; like TF's eager `tf.case`, the first true predicate wins.

    Returns:
        The chosen function's result.
    """
    pairs = list(pred_fn_pairs.items() if isinstance(pred_fn_pairs, dict) else pred_fn_pairs)
    if not pairs:
        raise ValueError("`pred_fn_pairs` must hold at least one (predicate, function) pair. "
                         f"Received: pred_fn_pairs={pred_fn_pairs!r}")
    if default is None:
        pairs, default = pairs[:-1], pairs[-1][1]
    return _chain(pairs, default)


def _chain(pairs: list, default: Callable) -> Any:
    if not pairs:
        return default()
    (pred, fn), rest = pairs[0], pairs[1:]
    return cond(pred, fn, lambda: _chain(rest, default))


def switch_case(branch_index: Any, branch_fns: Any, default: Callable | None = None,
                name: str = "switch_case") -> Any:
    """`branch_fns[branch_index]()`; an index out of range calls `default` (else the last).

    Args:
        branch_index: an int32 scalar (a tensor in a graph: chosen when it runs).
        branch_fns: a list of zero-argument functions, or a dict {int: function}.
        default: called for an index with no branch; the last branch if None.
    """
    fns = dict(branch_fns) if isinstance(branch_fns, dict) else dict(enumerate(branch_fns))
    if not fns:
        raise ValueError(f"`branch_fns` must not be empty. Received: branch_fns={branch_fns!r}")
    keys = sorted(fns)
    default = default or fns[keys[-1]]
    pairs = [(ops.equal(branch_index, k) if isinstance(branch_index, GraphTensor)
              else int(as_array(branch_index)) == k, fns[k]) for k in keys]
    return _chain(pairs, default)


# ------------------------------------------------------- eager-mode helpers


def no_op(name: str | None = None) -> None:
    """Does nothing (an op with no effect in TF's graphs); returns None."""
    return None


def group(*inputs: Any, name: str | None = None) -> None:
    """Groups ops to run together; eager ops already ran, so this returns None."""
    return None


def tuple(tensors: Sequence[Any], name: str | None = None,  # noqa: A001  (TF's name)
          control_inputs: Any = None) -> list:
    """The tensors, as a list, each passed through `identity` (None stays None)."""
    return [None if t is None else identity(t) for t in tensors]


@graph_form()
def guarantee_const(input: Any, name: str | None = None) -> Tensor:  # noqa: A002
    """`input` unchanged (TF's hint that it is constant); gradients pass through."""
    return identity(input)


def recompute_grad(f: Callable) -> Callable:
    """`f` itself: TF recomputes its forward pass in the backward to save memory;
    distflow keeps the forward values, with the same gradients."""
    return f


@contextlib.contextmanager
def init_scope() -> Iterator[None]:
    """Lifts code out of function-building graphs; eager code runs unchanged."""
    yield


def inside_function() -> bool:
    """True while a graph is being built (inside `tf.function` tracing or a v1 graph)."""
    return building_graph() is not None


def is_symbolic_tensor(tensor: Any) -> bool:
    """True for a graph tensor (its value exists when the graph runs)."""
    return isinstance(tensor, GraphTensor)


def get_static_value(tensor: Any, partial: bool = False) -> np.ndarray | None:
    """The NumPy value of an eager tensor; None for a graph tensor (known when it runs)."""
    if isinstance(tensor, GraphTensor):
        return None
    return np.asarray(as_array(tensor))


def type_spec_from_value(value: Any) -> TypeSpec:
    """The spec of a value: `TensorSpec` (shape and dtype) of a tensor or array-like,
    and the matching spec of None, a SparseTensor, IndexedSlices or a TensorArray."""
    if value is None:
        return composite.NoneTensorSpec()
    if isinstance(value, sparse.SparseTensor):
        return sparse.SparseTensorSpec.from_value(value)
    if isinstance(value, composite.IndexedSlices):
        return composite.IndexedSlicesSpec(value.shape, value.dtype)
    if isinstance(value, composite.TensorArray):
        return composite.TensorArraySpec.from_value(value)
    t = value if isinstance(value, Tensor) else ops.convert_to_tensor(value)
    return TensorSpec(t.shape, t.dtype)


# ------------------------------------------------------------- gradients


def custom_gradient(f: Callable | None = None) -> Callable:
    """Decorates `f(*args) -> (y, grad_fn)` so the tape uses `grad_fn(dy)` as its VJP.

    `grad_fn` takes the upstream gradient of `y` (one tensor) and returns one
    gradient per tensor argument of `f` (a single value when there is one).
    `f` runs unrecorded, so variables it reads get no gradient unless they are
    passed as arguments. In a graph the call is recorded as one operation.
    """
    if f is None:  # @custom_gradient()
        return custom_gradient

    @graph_form()  # in a graph: one call whose gradient re-runs this under a tape
    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Tensor:
        tape = current_tape()
        with tape.stop_recording() if tape is not None else contextlib.nullcontext():
            y, grad_fn = f(*args, **kwargs)
        inputs = builtins.tuple(a for a in nest.flatten(list(args)) if isinstance(a, Tensor))
        cache: dict = {}
        vjps = builtins.tuple(_custom_vjp(grad_fn, i, cache) for i in range(len(inputs)))
        return record("custom_gradient", as_array(y), inputs, vjps, None)

    return wrapped


def _custom_vjp(grad_fn: Callable, index: int, cache: dict) -> Callable:
    def vjp(g: np.ndarray, _residuals: Any) -> np.ndarray | None:
        if cache.get("g") is not g:  # one grad_fn call serves every input
            grads = grad_fn(Tensor._wrap(g))
            cache["g"] = g
            cache["grads"] = list(grads) if isinstance(grads, (list, builtins.tuple)) else [grads]
        out = cache["grads"][index]
        return None if out is None else np.asarray(as_array(out))
    return vjp


def grad_pass_through(f: Callable) -> Callable:
    """`f(x)` forward, the identity backward: the upstream gradient reaches `x` unchanged
    (TF's straight-through estimator, e.g. around a rounding step)."""
    @functools.wraps(f)
    def wrapped(x: Any) -> Tensor:
        return custom_gradient(lambda v: (f(v), lambda dy: dy))(ops.convert_to_tensor(x))
    return wrapped


# ------------------------------------------------------------------ checks


def Assert(condition: Any, data: Sequence[Any], summarize: int | None = None,  # noqa: N802
           name: str | None = None) -> None:
    """Raises `InvalidArgumentError` listing `data` when `condition` is false."""
    if not bool(np.all(as_array(condition))):
        shown = ", ".join(str(np.asarray(as_array(d))) for d in data)
        raise InvalidArgumentError(f"assertion failed: [{shown}]")


def _assert(ok: np.ndarray, what: str, x: Any, y: Any, message: str | None) -> None:
    if not bool(np.all(ok)):
        prefix = f"{message} " if message else ""
        raise InvalidArgumentError(
            f"{prefix}Condition x {what} y did not hold element-wise. Received: "
            f"x={np.asarray(as_array(x))!r}, y={np.asarray(as_array(y))!r}")


def assert_equal(x: Any, y: Any, message: str | None = None, summarize: int | None = None,
                 name: str | None = None) -> None:
    """Raises `InvalidArgumentError` unless `x == y` everywhere (broadcasting)."""
    _assert(np.equal(as_array(x), as_array(y)), "==", x, y, message)


def assert_greater(x: Any, y: Any, message: str | None = None,
                   summarize: int | None = None, name: str | None = None) -> None:
    """Raises `InvalidArgumentError` unless `x > y` everywhere (broadcasting)."""
    _assert(np.greater(as_array(x), as_array(y)), ">", x, y, message)


def assert_less(x: Any, y: Any, message: str | None = None, summarize: int | None = None,
                name: str | None = None) -> None:
    """Raises `InvalidArgumentError` unless `x < y` everywhere (broadcasting)."""
    _assert(np.less(as_array(x), as_array(y)), "<", x, y, message)


def assert_rank(x: Any, rank: int, message: str | None = None, name: str | None = None) -> None:
    """Raises `ValueError` (TF's static check) unless `x` has rank `rank`."""
    got = len(x.shape) if hasattr(x, "shape") else np.ndim(x)
    if got != int(as_array(rank)):
        prefix = f"{message} " if message else ""
        raise ValueError(f"{prefix}Tensor must have rank {int(as_array(rank))}. "
                         f"Received: a tensor of rank {got} (shape {builtins.tuple(np.shape(x))})")


@graph_form()
def ensure_shape(x: Any, shape: Any, name: str | None = None) -> Tensor:
    """`x` unchanged if its shape is compatible with `shape` (None dims match any);
    else `InvalidArgumentError`, as TF."""
    t = x if isinstance(x, Tensor) else ops.convert_to_tensor(x)
    if not TensorShape(t.shape).is_compatible_with(TensorShape(shape)):
        raise InvalidArgumentError(f"Shape of tensor {builtins.tuple(t.shape)} is not "
                                   f"compatible with expected shape {TensorShape(shape)}.")
    return identity(t)


# ------------------------------------------------------------------- enums


class UnconnectedGradients(str, enum.Enum):
    """What `GradientTape.gradient` returns for a source the target does not depend on."""

    NONE = "none"
    ZERO = "zero"


class AggregationMethod:
    """TF's ways of summing gradients; distflow always adds them (`ADD_N`)."""

    ADD_N = 0
    DEFAULT = ADD_N
    EXPERIMENTAL_TREE = 1
    EXPERIMENTAL_ACCUMULATE_N = 2


class VariableAggregation(enum.Enum):
    """How a mirrored variable's per-replica updates combine (TF's enum)."""

    NONE = 0
    SUM = 1
    MEAN = 2
    ONLY_FIRST_REPLICA = 3


class VariableSynchronization(enum.Enum):
    """When a distributed variable synchronizes (TF's enum)."""

    AUTO = 0
    NONE = 1
    ON_WRITE = 2
    ON_READ = 3


class CriticalSection:
    """Runs functions one at a time (TF's `tf.CriticalSection`; eager: a re-entrant lock)."""

    def __init__(self, name: str | None = None, shared_name: str | None = None,
                 critical_section_def: Any = None, import_scope: Any = None):
        import threading

        self.name = name or "CriticalSection"
        self._lock = threading.RLock()

    def execute(self, fn: Callable, exclusive_resource_access: bool = True,
                name: str | None = None) -> Any:
        """`fn()` while no other `execute` of this section runs; returns its result."""
        with self._lock:
            return fn()


def nondifferentiable_batch_function(num_batch_threads: int, max_batch_size: int,
                                     batch_timeout_micros: int,
                                     allowed_batch_sizes: Sequence[int] | None = None,
                                     max_enqueued_batches: int = 10, autograph: bool = True,
                                     enable_large_batch_splitting: bool = True) -> Callable:
    """Decorates a function whose calls TF may batch together across threads.

    Batching calls is a serving throughput optimisation that leaves every result
    unchanged; here each call runs at once, as a batch of its own. As in TF, the
    results carry no gradient.
    """
    sizes = list(allowed_batch_sizes or [])
    if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != max_batch_size):
        raise ValueError(f"allowed_batch_sizes must increase and end with max_batch_size "
                         f"({max_batch_size}). Received: {sizes}")

    def decorator(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def batched(*args: Any) -> Any:
            return nest.map_structure(stop_gradient, fn(*args))
        return batched
    return decorator
