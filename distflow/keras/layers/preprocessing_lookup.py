"""Vocabulary lookup layers: StringLookup and IntegerLookup, as Keras 3's.

They run on the host, in NumPy: inputs are arrays, lists or tensors of strings
(str or UTF-8 bytes) or integers, never differentiated. String outputs
(`invert=True`) are NumPy bytes arrays with TF's `.numpy()`, as the tokens of
`tf.data` are. Index layout (Keras's): with `output_mode="int"` and a
`mask_token`, index 0 is the mask; then come `num_oov_indices` OOV indices, then
the vocabulary. `adapt()` sorts tokens by count, ties by the token, both
descending, exactly as Keras does.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import numpy as np

from distflow.data.dataset import StringArray
from distflow.keras.layers.base import Layer, _flat, _is_symbolic
from distflow.tensor import Tensor

__all__ = ["StringLookup", "IntegerLookup"]

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def host_array(value: Any) -> np.ndarray:
    """An input as a NumPy array; strings (str or bytes) become an object array of str."""
    value = getattr(value, "value", value) if isinstance(value, Tensor) else value
    arr = np.asarray(value)  # a scalar token stays 0-d: its index is a scalar, as Keras's
    if arr.dtype.kind in "SUO":
        flat = [x.decode("utf-8") if isinstance(x, bytes) else x for x in arr.ravel().tolist()]
        arr = np.array(flat, dtype=object).reshape(arr.shape)
    return arr


def string_output(arr: np.ndarray) -> StringArray:
    """str values -> a NumPy bytes array with `.numpy()` (TF returns bytes)."""
    encoded = [str(x).encode("utf-8") for x in arr.ravel().tolist()]
    return np.array(encoded, dtype=object).reshape(arr.shape).view(StringArray)


def batches_of(data: Any, steps: int | None) -> list[np.ndarray]:
    """`adapt()` data (array, list or an iterable of batches) as host arrays."""
    if isinstance(data, np.ndarray | Tensor | list | tuple | str | bytes):
        return [host_array(data)]
    out = []
    for i, batch in enumerate(data):
        if steps is not None and i >= steps:
            break
        out.append(host_array(batch))
    return out


class HostLayer(Layer):
    """A layer computed in NumPy on the host (no gradient), taking any array-like input.

    Subclasses implement `host_call(array, **kwargs)`; strings stay NumPy arrays (distflow
    tensors hold numbers), so eager calls bypass the tensor conversion of `Layer.__call__`.
    """

    _autocast_inputs = False

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if any(_is_symbolic(x) for x in _flat(inputs)):
            return super().__call__(inputs, *args, **kwargs)
        arr = host_array(inputs)
        if not self.built:
            self.build(arr.shape)
            self.built = True
        return self.call(arr, *args, **self.call_kwargs(kwargs))

    def call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments `host_call` takes (by default none: `training` is dropped)."""
        kwargs.pop("training", None)
        return kwargs

    def call(self, inputs: Any, **kwargs: Any) -> Any:
        return self.host_call(host_array(inputs), **self.call_kwargs(dict(kwargs)))

    def host_call(self, inputs: np.ndarray, **kwargs: Any) -> Any:
        """The computation on a NumPy array; subclasses override it."""
        raise NotImplementedError


def encode_ids(ids: np.ndarray, mode: str, depth: int, dtype: Any,
               idf: np.ndarray | None = None) -> Tensor:
    """Integer ids -> one_hot / multi_hot / count / tf_idf vectors (Keras's bincount rules)."""
    if ids.ndim == 0:
        ids = ids[None]
    if mode == "one_hot" and ids.shape[-1] != 1:
        ids = ids[..., None]
    if ids.ndim > 2:
        raise ValueError("When output_mode is not `'int'`, maximum supported output rank is 2. "
                         f"Received output_mode {mode} and input shape {ids.shape}.")
    rows = ids.reshape(-1, ids.shape[-1])
    counts = np.zeros((rows.shape[0], depth), np.float64)
    np.add.at(counts, (np.arange(rows.shape[0])[:, None], rows), 1)
    if mode in ("one_hot", "multi_hot"):
        counts = np.minimum(counts, 1)
    if mode == "tf_idf":
        counts = counts * idf[:depth]
    counts = counts.reshape((depth,) if ids.ndim == 1 else (ids.shape[0], depth))
    return Tensor._wrap(counts.astype(dtype))


class _IndexLookup(HostLayer):
    """Maps tokens to indices (or back with `invert=True`) through a fixed vocabulary."""

    _default_oov_token: Any = None

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1,
                 mask_token: Any = None, oov_token: Any = None, vocabulary: Any = None,
                 idf_weights: Any = None, invert: bool = False, output_mode: str = "int",
                 pad_to_max_tokens: bool = False, sparse: bool = False, **kwargs: Any):
        kwargs.pop("vocabulary_dtype", None)
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        self._check_args(max_tokens, num_oov_indices, invert, output_mode, sparse)
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.invert, self.output_mode = mask_token, bool(invert), output_mode
        self.oov_token = self._default_oov_token if oov_token is None else oov_token
        self.pad_to_max_tokens, self.sparse = bool(pad_to_max_tokens), False
        self._tokens: list[Any] = []
        self._index: dict[Any, int] = {}
        self._idf: np.ndarray | None = None
        self._has_input_vocabulary = vocabulary is not None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        elif idf_weights is not None:
            raise ValueError("`idf_weights` needs a `vocabulary`: pass both, or adapt() the "
                             f"layer instead. Received: idf_weights={idf_weights!r}")

    def _check_args(self, max_tokens: Any, num_oov: Any, invert: bool, mode: str,
                    sparse: bool) -> None:
        if mode not in _MODES:
            raise ValueError(f"Unknown `output_mode`: {mode!r}. Use one of {list(_MODES)}.")
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError("If set, `max_tokens` must be greater than 1. "
                             f"Received: max_tokens={max_tokens}")
        if int(num_oov) < 0:
            raise ValueError("`num_oov_indices` must be greater than or equal to 0. "
                             f"Received: num_oov_indices={num_oov}")
        if invert and mode != "int":
            raise ValueError("`output_mode` must be `'int'` when `invert` is true. "
                             f"Received: output_mode={mode}")
        if sparse:
            raise ValueError("distflow has no sparse tensors: use sparse=False (the dense "
                             "output holds the same values).")

    # ------------------------------------------------------------ vocabulary

    def _oov_start(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self) -> int:
        return self._oov_start() + self.num_oov_indices

    def _convert_token(self, token: Any) -> Any:
        return token

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The vocabulary; with the special tokens, position == index returned by the layer."""
        if not include_special_tokens:
            return list(self._tokens)
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        return special + list(self._tokens)

    def vocabulary_size(self) -> int:
        """Number of indices the layer can return (mask and OOV included)."""
        return len(self._tokens) + self._token_start()

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Sets the vocabulary (a list, an array or a text file with one token per line).

        Raises:
            ValueError: repeated tokens, misplaced special tokens, a vocabulary larger than
                `max_tokens`, or tf_idf without `idf_weights`.
        """
        if isinstance(vocabulary, str | os.PathLike) and os.path.isfile(vocabulary):
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = [line.rstrip("\n") for line in f]
        tokens = [self._convert_token(t) for t in host_array(vocabulary).ravel().tolist()]
        start = self._token_start()
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        if special and tokens[:start] == special:
            tokens = tokens[start:]
        self._check_vocabulary(tokens)
        self._set_tokens(tokens)
        self._idf = self._idf_for(idf_weights)

    def _check_vocabulary(self, tokens: list) -> None:
        repeated = sorted({str(t) for t, n in Counter(tokens).items() if n > 1})
        if repeated:
            raise ValueError(f"The passed vocabulary has at least one repeated term. Please "
                             f"uniquify your dataset. The repeated terms are: {repeated}")
        for name, token in (("mask_token", self.mask_token), ("oov_token", self.oov_token)):
            if token is not None and token in tokens and not (name == "oov_token" and
                                                              self.num_oov_indices == 0):
                raise ValueError(f"Found reserved {name} {token!r} in the passed vocabulary at "
                                 f"index {tokens.index(token)}. Remove it from the vocabulary.")
        if self.max_tokens is not None and len(tokens) + self._token_start() > self.max_tokens:
            raise ValueError(f"Attempted to set a vocabulary larger than the maximum vocab size. "
                             f"Received vocabulary size is {len(tokens) + self._token_start()}; "
                             f"`max_tokens` is {self.max_tokens}.")

    def _idf_for(self, idf_weights: Any) -> np.ndarray | None:
        if self.output_mode != "tf_idf":
            if idf_weights is not None:
                raise ValueError("`idf_weights` should only be set if output_mode is "
                                 f"`'tf_idf'`. Received: output_mode={self.output_mode}")
            return None
        if idf_weights is None:
            raise ValueError("`idf_weights` must be set if output_mode is `'tf_idf'`. Pass "
                             "them with the vocabulary, or adapt() the layer.")
        idf = np.asarray(idf_weights, np.float64).ravel()
        if len(idf) == len(self._tokens):  # no entries for the OOV indices: their mean
            idf = np.concatenate([np.full(self._token_start(), idf.mean()), idf])
        return idf

    def _set_tokens(self, tokens: list) -> None:
        self._tokens = tokens
        start = self._token_start()
        self._index = {t: start + i for i, t in enumerate(tokens)}

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Learns the vocabulary (and tf_idf's document frequencies) from `data`.

        Args:
            data: an array or list of tokens, or an iterable of batches (e.g. a Dataset).
            batch_size: accepted for Keras compatibility (the data is read whole).
            steps: number of batches to read from an iterable.
        """
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static "
                             "vocabulary via `vocabulary` argument or `set_vocabulary()` method.")
        docs: list[list] = []
        for batch in batches_of(data, steps):
            rows = batch.reshape(1, -1) if batch.ndim <= 1 else batch.reshape(batch.shape[0], -1)
            docs.extend(rows.tolist())
        self.learn_vocabulary(docs)

    def learn_vocabulary(self, documents: list[list]) -> None:
        """Sets the vocabulary (and tf_idf weights) from documents given as token lists."""
        counts: Counter = Counter()
        doc_counts: Counter = Counter()
        for doc in documents:
            doc = [self._convert_token(t) for t in doc]
            counts.update(doc)
            doc_counts.update(set(doc))
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        tokens = self._ranked(counts)
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            df_counts = np.array([doc_counts[t] for t in tokens], np.float64)
            idf = np.log(1 + len(documents) / (1 + df_counts)).astype(np.float32)
            self._idf = self._idf_for(idf)

    def _ranked(self, counts: Counter) -> list:
        """Tokens by count, ties by the token itself, both descending; cut to max_tokens."""
        tokens = sorted(counts, key=lambda t: (counts[t], t), reverse=True)
        if self.max_tokens:
            tokens = tokens[: max(self.max_tokens - self._token_start(), 0)]
        return tokens

    # ------------------------------------------------------------------ call

    def _oov_ids(self, flat: list, missing: np.ndarray) -> np.ndarray:
        """OOV index of each token in `flat` (used where `missing`), for num_oov_indices > 1."""
        raise ValueError(f"{type(self).__name__} with num_oov_indices={self.num_oov_indices} "
                         "spreads OOV tokens by a hash distflow does not compute; use "
                         "num_oov_indices=1.")

    def _lookup(self, arr: np.ndarray) -> np.ndarray:
        flat = [self._convert_token(t) for t in arr.ravel().tolist()]
        ids = np.fromiter((self._index.get(t, -1) for t in flat), np.int64, len(flat))
        missing = ids < 0
        if self.mask_token is not None:
            masked = np.array([t == self.mask_token for t in flat], bool)
            ids[masked] = 0
            missing &= ~masked
        if missing.any():
            if self.num_oov_indices == 0:
                found = [flat[i] for i in np.flatnonzero(missing)]
                raise ValueError("When `num_oov_indices=0` all inputs should be in vocabulary, "
                                 f"found OOV values {found}, consider setting "
                                 "`num_oov_indices=1`.")
            ids[missing] = (self._oov_start() if self.num_oov_indices == 1 else
                            self._oov_ids(flat, missing)[missing] + self._oov_start())
        return ids.reshape(arr.shape)

    def _invert(self, arr: np.ndarray) -> Any:
        ids = arr.astype(np.int64).ravel().tolist()
        start = self._token_start()
        out = []
        for i in ids:
            token = self._tokens[i - start] if start <= i < start + len(self._tokens) else None
            if token is None:
                token = self.mask_token if self.mask_token is not None and i == 0 else \
                    self.oov_token
            out.append(token)
        return self._output_tokens(np.array(out, dtype=object).reshape(arr.shape))

    def _output_tokens(self, tokens: np.ndarray) -> Any:
        return Tensor._wrap(tokens.astype(np.int64))

    def host_call(self, inputs: np.ndarray) -> Any:
        if self.invert:
            return self._invert(inputs)
        if self.output_mode != "int" and not self.pad_to_max_tokens and not self._tokens:
            raise RuntimeError(f"When using `output_mode={self.output_mode}` and "
                               "`pad_to_max_tokens=False`, you must set the layer's vocabulary "
                               "before calling it. Either pass a `vocabulary` argument to the "
                               "layer, or call `adapt` with some sample data.")
        ids = self._lookup(inputs)
        if self.output_mode == "int":
            return Tensor._wrap(ids)
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        return encode_ids(ids, self.output_mode, depth, self._encoded_dtype(), self._idf)

    def _encoded_dtype(self) -> Any:
        return np.float32 if self.output_mode == "tf_idf" else np.int64

    def compute_output_shape(self, input_shape: Any) -> tuple:
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        shape = tuple(input_shape)
        if self.output_mode == "one_hot" and shape[-1] != 1:
            shape = (*shape, 1)
        return (*shape[:-1], depth)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "mask_token": self.mask_token,
                "oov_token": self.oov_token, "invert": self.invert,
                "output_mode": self.output_mode, "pad_to_max_tokens": self.pad_to_max_tokens,
                "sparse": False, "vocabulary": self.get_vocabulary(False) or None,
                "idf_weights": None if self._idf is None else self._idf.tolist()}


class StringLookup(_IndexLookup):
    """Maps strings to integer indices (or indices back to strings with `invert=True`).

    Args:
        max_tokens: maximum vocabulary size (mask and OOV indices included), None for none.
        num_oov_indices: indices for out-of-vocabulary tokens (0 makes them an error;
            more than 1 is not supported: Keras spreads them with FarmHash).
        mask_token: token mapped to index 0 in "int" mode (None: no mask).
        oov_token: the token `invert=True` returns for OOV indices ("[UNK]").
        vocabulary: a list/array of tokens or a text file path, one token per line.
        idf_weights: tf_idf weights matching `vocabulary`.
        invert: map indices to tokens instead.
        output_mode: "int", "one_hot", "multi_hot", "count" or "tf_idf".
        pad_to_max_tokens: encoded outputs are `max_tokens` wide.
        sparse: must be False (distflow has no sparse tensors).
        encoding: text encoding of bytes inputs (only "utf-8").
        **kwargs: base `Layer` arguments.
    """

    _default_oov_token = "[UNK]"

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1,
                 mask_token: str | None = None, oov_token: str = "[UNK]",
                 vocabulary: Any = None, idf_weights: Any = None, invert: bool = False,
                 output_mode: str = "int", pad_to_max_tokens: bool = False,
                 sparse: bool = False, encoding: str = "utf-8", **kwargs: Any):
        if str(encoding).lower().replace("-", "") != "utf8":
            raise ValueError(f"StringLookup supports encoding='utf-8' only. Received: "
                             f"encoding={encoding!r}")
        kwargs.pop("salt", None)
        self.encoding = "utf-8"
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary,
                         idf_weights, invert, output_mode, pad_to_max_tokens, sparse, **kwargs)

    def _convert_token(self, token: Any) -> Any:
        return token.decode("utf-8") if isinstance(token, bytes) else str(token)

    def _oov_ids(self, flat: list, missing: np.ndarray) -> np.ndarray:
        from distflow.farmhash import fingerprint64
        return np.array([fingerprint64(t.encode("utf-8")) % self.num_oov_indices if m else 0
                         for t, m in zip(flat, missing)], np.int64)

    def _output_tokens(self, tokens: np.ndarray) -> Any:
        return string_output(tokens)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "encoding": self.encoding}


class IntegerLookup(_IndexLookup):
    """Maps integers to contiguous indices (or back with `invert=True`).

    Args as `StringLookup`, with integer `mask_token` / `oov_token` (-1 by default), and
        oov_method: how `num_oov_indices > 1` spreads OOV values: "floormod" (Keras's
            default, value mod num_oov_indices) or "farmhash" (FarmHash64 of the decimal
            string, as Keras).
    """

    _default_oov_token = -1

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1,
                 mask_token: int | None = None, oov_token: int = -1, vocabulary: Any = None,
                 vocabulary_dtype: str = "int64", idf_weights: Any = None,
                 invert: bool = False, output_mode: str = "int", sparse: bool = False,
                 pad_to_max_tokens: bool = False, oov_method: str = "floormod",
                 **kwargs: Any):
        if vocabulary_dtype != "int64":
            raise ValueError("Only `vocabulary_dtype='int64'` is supported at this time. "
                             f"Received: vocabulary_dtype={vocabulary_dtype}")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError("`oov_method` must be 'floormod' or 'farmhash'. Received: "
                             f"oov_method={oov_method!r}")
        if kwargs.pop("salt", None) is not None:
            raise ValueError("distflow's IntegerLookup has no `salt` (Keras hashes salted OOV "
                             "values with SipHash); leave salt=None.")
        self.oov_method = oov_method
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary,
                         idf_weights, invert, output_mode, pad_to_max_tokens, sparse, **kwargs)

    def _convert_token(self, token: Any) -> Any:
        return int(token)

    def _oov_ids(self, flat: list, missing: np.ndarray) -> np.ndarray:
        if self.oov_method == "floormod":
            return np.mod(np.array(flat, np.int64), self.num_oov_indices)
        from distflow.farmhash import fingerprint64
        return np.array([fingerprint64(str(t).encode()) % self.num_oov_indices if m else 0
                         for t, m in zip(flat, missing)], np.int64)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary_dtype": "int64",
                "oov_method": self.oov_method}
