"""TensorFlow's `DType` objects (`tf.float32`, `tf.as_dtype`) over NumPy dtypes.

A `DType` names one NumPy dtype and is interchangeable with it: it compares
equal to the NumPy dtype, its scalar type and its name (`tf.float32 ==
np.float32 == "float32"`), hashes as the NumPy dtype, and anything NumPy
accepts as a dtype accepts it (`np.zeros(3, tf.float32)`; NumPy reads its
`dtype` attribute). Attributes TF does not define (`kind`, `itemsize`, ...)
are the NumPy dtype's, so library code written against NumPy dtypes keeps
working on `Tensor.dtype`. `tf.string` exists for signatures and lookups;
distflow tensors hold numbers and booleans only. NumPy has no bfloat16, so
neither does distflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# TF's DataType enum values (types.proto), so `as_datatype_enum` and `as_dtype(3)` agree.
_ENUMS = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6,
          "string": 7, "complex64": 8, "int64": 9, "bool": 10, "uint16": 17,
          "complex128": 18, "float16": 19, "uint32": 22, "uint64": 23}
_ALIASES = {"float": "float32", "double": "float64", "half": "float16"}


class DType:
    """One element type, as `tf.DType`: `name`, `as_numpy_dtype`, kind flags, limits.

    Args:
        name: the TF name (`"float32"`, `"bool"`, `"string"`, ...).
    """

    __slots__ = ("_name", "_np")

    def __init__(self, name: str):
        self._name = name
        self._np = np.dtype(object) if name == "string" else np.dtype(name)

    name = property(lambda self: self._name, doc="The TF name, e.g. 'float32'.")
    dtype = property(lambda self: self._np, doc="The NumPy dtype (NumPy's dtype protocol).")
    as_numpy_dtype = property(lambda self: self._np.type, doc="The NumPy scalar type.")
    as_datatype_enum = property(lambda self: _ENUMS[self._name], doc="TF's DataType enum.")
    base_dtype = property(lambda self: self, doc="Itself (distflow has no reference dtypes).")
    is_floating = property(lambda self: self._np.kind == "f", doc="A float type.")
    is_integer = property(lambda self: self._np.kind in "iu", doc="A signed/unsigned int.")
    is_unsigned = property(lambda self: self._np.kind == "u", doc="An unsigned int.")
    is_bool = property(lambda self: self._np.kind == "b", doc="Boolean.")
    is_complex = property(lambda self: self._np.kind == "c", doc="A complex type.")
    is_numeric = property(lambda self: self._np.kind in "fiuc", doc="Numbers (no bool).")
    is_quantized = property(lambda self: False, doc="Always False (no quantized types).")
    is_numpy_compatible = property(lambda self: True, doc="Always True.")

    @property
    def size(self) -> int:
        """Bytes per element (0 for string, as TF)."""
        return 0 if self._name == "string" else self._np.itemsize

    @property
    def real_dtype(self) -> DType:
        """The type of the real part: float32 for complex64, itself otherwise."""
        if self.is_complex:
            return as_dtype(np.finfo(self._np).dtype)
        return self

    @property
    def min(self) -> int | float:
        """The smallest value of this type; TypeError for bool, complex and string."""
        return self._limits()[0]

    @property
    def max(self) -> int | float:
        """The largest value of this type; TypeError for bool, complex and string."""
        return self._limits()[1]

    @property
    def limits(self) -> tuple[int | float, int | float]:
        """(min, max)."""
        return self._limits()

    def _limits(self) -> tuple[int | float, int | float]:
        if self.is_floating:
            info = np.finfo(self._np)
            return float(info.min), float(info.max)
        if self.is_integer:
            info = np.iinfo(self._np)
            return int(info.min), int(info.max)
        raise TypeError(f"Cannot find minimum value of {self} with type {self}.")

    def is_compatible_with(self, other: Any) -> bool:
        """True when `other` names the same type."""
        return self == other

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, DType):
            return other._name == self._name
        if isinstance(other, str):
            return _ALIASES.get(other, other) == self._name
        if other is None:  # np.dtype(None) is float64
            return False
        try:
            return self._name != "string" and np.dtype(other) == self._np
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self._np)

    def __getattr__(self, attr: str) -> Any:
        # kind, itemsize, type, char, str... as on the NumPy dtype.
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._np, attr)

    def __repr__(self) -> str:
        return f"tf.{self._name}"

    def __str__(self) -> str:
        return f"<dtype: '{self._name}'>"

    def __reduce__(self) -> tuple:
        return as_dtype, (self._name,)


_BY_NAME = {name: DType(name) for name in _ENUMS}
_BY_NUMPY = {d._np: d for d in _BY_NAME.values() if d._name != "string"}
_BY_ENUM = {enum: _BY_NAME[name] for name, enum in _ENUMS.items()}


def from_numpy(dtype: np.dtype) -> DType:
    """The DType of a NumPy dtype (fast path for `Tensor.dtype`)."""
    return _BY_NUMPY[dtype]


def as_dtype(type_value: Any) -> DType:
    """Converts a DType, NumPy dtype or type, TF name, `float`/`bool` or enum to a DType.

    Raises:
        TypeError: what TF raises for a value that names no type (`int` and `str`
            included, as in TF).
    """
    if isinstance(type_value, DType):
        return type_value
    if isinstance(type_value, str):
        found = _BY_NAME.get(_ALIASES.get(type_value, type_value))
    elif isinstance(type_value, int) and not isinstance(type_value, bool):
        found = _BY_ENUM.get(type_value)
    elif type_value is float or type_value is bool:
        found = _BY_NAME["float32" if type_value is float else "bool"]
    elif type_value is int or type_value is str:  # identity: np.dtype("int64") == int
        found = None
    else:
        found = _from_numpy_like(type_value)
    if found is None:
        raise TypeError(f"Cannot convert the argument `type_value`: {type_value!r} "
                        "to a TensorFlow DType.")
    return found


def _from_numpy_like(value: Any) -> DType | None:
    try:
        return _BY_NUMPY.get(np.dtype(value))
    except TypeError:
        return None


float16, float32, float64 = _BY_NAME["float16"], _BY_NAME["float32"], _BY_NAME["float64"]
half, double = float16, float64
int8, int16, int32, int64 = (_BY_NAME[n] for n in ("int8", "int16", "int32", "int64"))
uint8, uint16, uint32, uint64 = (_BY_NAME[n] for n in ("uint8", "uint16", "uint32", "uint64"))
complex64, complex128 = _BY_NAME["complex64"], _BY_NAME["complex128"]
bool_, string = _BY_NAME["bool"], _BY_NAME["string"]
