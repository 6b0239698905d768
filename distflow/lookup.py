"""`tf.lookup`: immutable key -> value tables on the host, with TensorFlow's semantics.

    import distflow as tf
    init = tf.lookup.KeyValueTensorInitializer(["a", "b"], [7, 8])
    table = tf.lookup.StaticHashTable(init, default_value=-1)
    table.lookup(tf.constant(["b", "zzz"]))                        # [8, -1]
    tf.lookup.StaticVocabularyTable(init, num_oov_buckets=3)       # unknown keys -> 2..4

Keys and values are numbers or text (text as NumPy arrays of bytes, see
`distflow.strings`); numeric results are tensors, text results arrays of bytes.
Out-of-vocabulary keys hash with FarmHash's Fingerprint64, as TF does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.dtypes import as_dtype
from distflow.farmhash import fingerprint64
from distflow.primitive import constant, string_array
from distflow.strings import as_string
from distflow.tensor import Tensor


def _host(value: Any, dtype: Any = None) -> np.ndarray:
    """Keys or values as a NumPy array: bytes for text, else numbers of `dtype`."""
    arr = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if arr.dtype.kind in "OSU" or (dtype is not None and as_dtype(dtype).name == "string"):
        return string_array(arr)
    return arr if dtype is None else arr.astype(as_dtype(dtype).as_numpy_dtype)


def _result(arr: np.ndarray) -> Any:
    return arr if arr.dtype == object else constant(arr)


def _key(k: Any) -> Any:
    return k if isinstance(k, bytes) else k.item() if hasattr(k, "item") else k


class KeyValueTensorInitializer:
    """Table contents from parallel `keys` and `values` arrays."""

    def __init__(self, keys: Any, values: Any, key_dtype: Any = None, value_dtype: Any = None,
                 name: str | None = None):
        self.keys, self.values = _host(keys, key_dtype).reshape(-1), _host(
            values, value_dtype).reshape(-1)
        if len(self.keys) != len(self.values):
            raise ValueError(f"keys and values must have the same size. Received: "
                             f"{len(self.keys)} keys and {len(self.values)} values")
        self.key_dtype, self.value_dtype = _dtype(self.keys), _dtype(self.values)


def _dtype(arr: np.ndarray) -> Any:
    return as_dtype("string") if arr.dtype == object else as_dtype(arr.dtype)


class TextFileIndex:
    """Special column numbers of `TextFileInitializer`: the whole line or its number."""

    WHOLE_LINE = -2
    LINE_NUMBER = -1


class TextFileInitializer(KeyValueTensorInitializer):
    """Table contents from a text file: key and value are columns (split on `delimiter`),
    the whole line (`TextFileIndex.WHOLE_LINE`) or the line number (`LINE_NUMBER`)."""

    def __init__(self, filename: Any, key_dtype: Any, key_index: int, value_dtype: Any,
                 value_index: int, vocab_size: int | None = None, delimiter: str = "\t",
                 name: str | None = None, value_index_offset: int = 0):
        with open(filename if isinstance(filename, str) else bytes(filename), "rb") as f:
            lines = f.read().decode().splitlines()
        if vocab_size is not None:
            lines = lines[:vocab_size]
        keys = [_column(line, n, key_index, delimiter) for n, line in enumerate(lines)]
        values = [_column(line, n, value_index, delimiter) for n, line in enumerate(lines)]
        super().__init__(_parsed(keys, key_dtype), _parsed(values, value_dtype), key_dtype,
                         value_dtype)


def _column(line: str, number: int, index: int, delimiter: str) -> Any:
    if index == TextFileIndex.LINE_NUMBER:
        return number
    if index == TextFileIndex.WHOLE_LINE:
        return line
    return line.split(delimiter)[index]


def _parsed(column: list, dtype: Any) -> np.ndarray:
    if as_dtype(dtype).name == "string":
        return string_array([str(v) for v in column])
    return np.asarray([float(v) if as_dtype(dtype).is_floating else int(v) for v in column],
                      as_dtype(dtype).as_numpy_dtype)


class StaticHashTable:
    """An immutable hash table; keys not in it map to `default_value`."""

    def __init__(self, initializer: KeyValueTensorInitializer, default_value: Any,
                 name: str | None = None, experimental_is_anonymous: bool = False):
        self._init = initializer
        self._table = {_key(k): v for k, v in zip(initializer.keys, initializer.values)}
        self.default_value = _host(default_value, initializer.value_dtype)
        self.key_dtype, self.value_dtype = initializer.key_dtype, initializer.value_dtype

    def size(self, name: str | None = None) -> Tensor:
        """The number of entries (int64)."""
        return constant(np.int64(len(self._table)))

    def _check_keys(self, keys: Any) -> np.ndarray:
        arr = _host(keys)
        if (arr.dtype == object) != (self.key_dtype.name == "string"):
            raise TypeError(f"The table's keys are {self.key_dtype.name}; lookup received "
                            f"{'text' if arr.dtype == object else arr.dtype.name} keys.")
        return arr

    def lookup(self, keys: Any, name: str | None = None) -> Any:
        """The value of each key (`default_value` for keys not in the table)."""
        arr = self._check_keys(keys)
        out = np.empty(arr.shape, object if self.value_dtype.name == "string"
                       else self.value_dtype.as_numpy_dtype)
        default = self.default_value.reshape(-1)[0] if self.default_value.size == 1 else None
        for idx in np.ndindex(arr.shape):
            out[idx] = self._table.get(_key(arr[idx]),
                                       default if default is not None else
                                       self.default_value[idx])
        return _result(out)

    __getitem__ = lookup

    def export(self, name: str | None = None) -> tuple[Any, Any]:
        """All `(keys, values)` of the table."""
        return _result(self._init.keys.copy()), _result(self._init.values.copy())


class StaticVocabularyTable(StaticHashTable):
    """A vocabulary: keys in the initializer map to their (int64) ids, any other key to
    one of `num_oov_buckets` ids after them, `vocab_size + Fingerprint64(key) % buckets`
    (integer keys are hashed as their decimal text)."""

    def __init__(self, initializer: KeyValueTensorInitializer, num_oov_buckets: int,
                 lookup_key_dtype: Any = None, name: str | None = None,
                 experimental_is_anonymous: bool = False):
        if num_oov_buckets < 1:
            raise ValueError(f"num_oov_buckets must be > 0. Received: {num_oov_buckets}")
        super().__init__(initializer, -1)
        self.num_oov_buckets = int(num_oov_buckets)
        self.value_dtype = as_dtype("int64")

    def size(self, name: str | None = None) -> Tensor:
        """Vocabulary size plus the out-of-vocabulary buckets (int64)."""
        return constant(np.int64(len(self._table) + self.num_oov_buckets))

    def lookup(self, keys: Any, name: str | None = None) -> Tensor:
        """Each key's id; out-of-vocabulary keys get a hashed bucket id."""
        arr = self._check_keys(keys)
        text = arr if arr.dtype == object else as_string(arr)
        out = np.empty(arr.shape, np.int64)
        for idx in np.ndindex(arr.shape):
            hit = self._table.get(_key(arr[idx]))
            out[idx] = hit if hit is not None else len(self._table) + (
                fingerprint64(text[idx]) % self.num_oov_buckets)
        return constant(out)

    __getitem__ = lookup
