"""The primitive registry and argument conversion, below every op module.

`Primitive` is one op whose forward (NumPy arrays in, `(output, residuals)` out) is
declared beside its vector-Jacobian products; `defop` registers one in `REGISTRY`.
`unbroadcast` undoes broadcasting in a VJP. The conversions (`convert_to_tensor`,
`constant`, the weak typing of Python operands, `cast`) are what every op module
calls on its arguments. `distflow.ops` re-exports all of it.
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distflow.errors import DTypeMismatchError
from distflow.tensor import CONVERSIONS, GRAPH, Tensor, as_array, record, registered_conversion


class Primitive:
    """A registered primitive op: a forward and one VJP per differentiable input.

    Attributes:
        name: op name (the registry key, used in error messages).
        forward: `(*arrays, **params) -> (output, residuals)`.
        vjps: one `(g, residuals) -> grad` per input (None: no gradient defined).
        variadic: one VJP `(i, g, residuals)` shared by a list of inputs.
        fresh: the forward's output is a new array that its residuals do not hold, so
            a compiled plan may let the next operation overwrite it.
        in_place: the forward writing its output into its first input's buffer (the
            same output and residuals as `forward`), or None; a compiled plan uses it
            when that input is fresh and read by nothing else.
    """

    __slots__ = ("name", "forward", "vjps", "variadic", "fresh", "in_place")

    def __init__(self, name: str, forward: Callable[..., tuple[np.ndarray, Any]],
                 vjps: tuple[Callable | None, ...], variadic: bool = False,
                 fresh: bool = False, in_place: Callable | None = None):
        self.name, self.forward, self.vjps, self.variadic = name, forward, tuple(vjps), variadic
        self.fresh, self.in_place = fresh, in_place

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"

    def __call__(self, *inputs: Tensor, **params: Any) -> Tensor:
        if GRAPH.active:  # building a graph: record an operation instead of running
            out = GRAPH.primitive(self, inputs, params)
            if out is not NotImplemented:
                return out
        out, res = self.forward(*map(_VALUE, inputs), **params)
        if self.variadic:
            vjp = self.vjps[0]
            vjps = tuple(_bind_index(vjp, i) for i in builtins.range(len(inputs)))
            return record(self.name, out, inputs, vjps, res)
        return record(self.name, out, inputs, self.vjps, res)


_VALUE = operator.attrgetter("value")  # map() over it needs no Python frame per input


def _bind_index(vjp: Callable, i: int) -> Callable:
    return lambda g, res: vjp(i, g, res)


REGISTRY: dict[str, Primitive] = {}


def defop(name: str, forward: Callable, *vjps: Callable | None, variadic: bool = False,
          fresh: bool = False, in_place: Callable | None = None):
    """Registers a primitive and returns it (callable on tensors); `fresh` and `in_place`
    as in `Primitive`."""
    if name in REGISTRY:
        raise ValueError(f"Op '{name}' is already registered.")
    prim = REGISTRY[name] = Primitive(name, forward, vjps, variadic, fresh, in_place)
    return prim


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sums `g` over the axes that broadcasting added or stretched to reach `shape`."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if shape and g.shape[extra:] == shape:  # only leading axes were added (a bias): no reshape
        return np.add.reduce(g, axis=0 if extra == 1 else tuple(builtins.range(extra)))
    axes = tuple(builtins.range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and g.shape[i + extra] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


# ----------------------------------------------------------------- conversion


def convert_to_tensor(value: Any, dtype: Any = None) -> Tensor:
    """Returns `value` as a Tensor (tensors pass through unless a cast is asked)."""
    if isinstance(value, Tensor):
        if dtype is None or value.dtype == np.dtype(dtype):
            return value
        return cast(value, dtype)
    if CONVERSIONS and (converted := registered_conversion(value, dtype)) is not None:
        return convert_to_tensor(converted, dtype)  # keeps the function's gradient path
    return Tensor(value, dtype)


def _to_bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


_BYTES = np.vectorize(_to_bytes, otypes=[object])


def string_array(value: Any) -> np.ndarray:
    """`value` (str, bytes, or nested lists / arrays of them) as an object array of bytes:
    distflow's string values (tensors hold numbers), what TF's `.numpy()` gives."""
    arr = np.asarray(value, dtype=object)
    return _BYTES(arr) if arr.size else arr.astype(object)


def _is_text(value: Any, dtype: Any) -> bool:
    if dtype is not None:
        return getattr(dtype, "name", dtype) in ("string", object, "object")
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "SU"
    while isinstance(value, list | tuple) and value:  # the first leaf decides (no copy)
        value = value[0]
    return isinstance(value, str | bytes | np.str_ | np.bytes_)


def constant(value: Any, dtype: Any = None, shape: Sequence[int] | None = None) -> Tensor:
    """Creates a constant tensor (a copy of `value`), as `tf.constant`.

    Text (str/bytes values, or `dtype=tf.string`) gives a NumPy array of bytes
    instead, as distflow keeps strings on the host.
    """
    if _is_text(value, dtype):
        text = string_array(value)
        return np.broadcast_to(text, tuple(shape)).copy() if shape is not None else text
    arr = np.array(as_array(value, dtype), copy=True)
    if shape is not None:
        arr = np.broadcast_to(arr, tuple(shape)).copy() if arr.size == 1 else arr.reshape(shape)
    return Tensor._wrap(arr)


def _promote(a: np.dtype, b: np.dtype) -> np.dtype:
    if a.kind == "f" and b.kind != "f":
        return a
    if b.kind == "f" and a.kind != "f":
        return b
    return np.result_type(a, b)


def _weak(value: Any, like: np.dtype) -> Tensor:
    """Converts a non-tensor operand to the other operand's dtype, as TF does.

    NumPy values are cast (`np.float64(2.5)` times an int32 tensor is 2 * 2);
    a Python float refused by an integer tensor is an error, as TF's.
    """
    if type(value) is np.ndarray and value.dtype == like:  # the common case: no conversion
        return Tensor._wrap(value)
    if isinstance(value, np.ndarray | np.generic):
        return Tensor(as_array(value).astype(like, copy=False))
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and like.kind in "iu":
        raise TypeError(f"Cannot convert {value!r} to EagerTensor of dtype {like.name}. Write the "
                        f"constant as an int, or cast the tensor first: "
                        f"tf.cast(x, tf.float32).")
    if arr.dtype.kind == "f" and like.kind == "b":
        return Tensor(arr, np.float32)  # bool masks times floats (distflow's own layers)
    return Tensor(arr, like)


def _mixed(x: Tensor, y: Tensor) -> None:
    raise DTypeMismatchError(
        f"An operation on tensors of different dtypes: {x.dtype.name} and {y.dtype.name}. "
        f"TensorFlow "
        f"does not promote between tensors: cast one first, e.g. tf.cast(y, {x.dtype.name}).")


def _pair(x: Any, y: Any) -> tuple[Tensor, Tensor]:
    xt, yt = isinstance(x, Tensor), isinstance(y, Tensor)
    if xt and yt:
        if x.array_dtype != y.array_dtype:
            _mixed(x, y)
        return x, y
    if xt:
        return _pair(x, _weak(y, x.dtype))
    if yt:
        return _pair(_weak(x, y.dtype), y)
    return _pair(Tensor(x), Tensor(y))


def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _norm_axis(axis: Any) -> Any:
    if isinstance(axis, Tensor):
        axis = axis.value.tolist()
    return tuple(axis) if isinstance(axis, list) else axis


_cast = defop("cast", lambda x, dtype: (x.astype(dtype), x.dtype),
              lambda g, src_dtype: g.astype(src_dtype))


def cast(x: Any, dtype: Any) -> Tensor:
    """Converts to `dtype`; the gradient is cast back (none into integers)."""
    x = _t(x)
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return _cast(x, dtype=dtype)
