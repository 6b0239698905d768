"""`keras.utils.pad_sequences` (also `keras.preprocessing.sequence.pad_sequences`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def pad_sequences(sequences: Sequence[Any], maxlen: int | None = None, dtype: Any = "int32",
                  padding: str = "pre", truncating: str = "pre", value: Any = 0.0
                  ) -> np.ndarray:
    """Pads (or truncates) sequences to a common length, as Keras does.

    Args:
        sequences: a list of sequences (lists or arrays; each item may itself be an
            array, all of one shape).
        maxlen: the length of the result (default: the longest sequence).
        dtype: dtype of the result (`object` or a string dtype for strings).
        padding: "pre" or "post": where the padding goes.
        truncating: "pre" or "post": which end of a longer sequence is dropped.
        value: the padding value.

    Returns:
        An array of shape `(len(sequences), maxlen) + item_shape`.

    Raises:
        ValueError: for a non-iterable sequence, unknown `padding`/`truncating`, a
            string `value` with a numeric dtype, or items of different shapes.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"`sequences` must be iterable. Received: {sequences!r}")
    lengths, item_shape = _lengths_and_item_shape(sequences)
    if maxlen is None:
        maxlen = int(np.max(lengths)) if lengths else 0
    _check_value(value, dtype)
    out = np.full((len(sequences), maxlen) + item_shape, value, dtype=dtype)
    for index, seq in enumerate(sequences):
        if len(seq):
            _place(out, index, _truncate(seq, maxlen, truncating, dtype, item_shape, index),
                   padding)
    return out


def _lengths_and_item_shape(sequences: Sequence[Any]) -> tuple[list[int], tuple[int, ...]]:
    lengths, item_shape = [], None
    for seq in sequences:
        try:
            lengths.append(len(seq))
        except TypeError as err:
            raise ValueError("`sequences` must be a list of iterables. Found non-iterable: "
                             f"{seq!r}") from err
        if item_shape is None and len(seq):
            item_shape = np.asarray(seq).shape[1:]
    return lengths, item_shape or ()


def _check_value(value: Any, dtype: Any) -> None:
    is_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_str:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: "
                         f"{type(value)}. Set `dtype=object` for variable length strings.")


def _truncate(seq: Any, maxlen: int, truncating: str, dtype: Any,
              item_shape: tuple[int, ...], index: int) -> np.ndarray:
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood: use "pre" or "post".')
    kept = np.asarray(seq[-maxlen:] if truncating == "pre" else seq[:maxlen], dtype=dtype)
    if maxlen == 0:
        kept = kept[:0]
    if kept.shape[1:] != item_shape:
        raise ValueError(f"Shape of sample {kept.shape[1:]} of sequence at position {index} "
                         f"is different from expected shape {item_shape}")
    return kept


def _place(out: np.ndarray, index: int, kept: np.ndarray, padding: str) -> None:
    if padding == "post":
        out[index, :len(kept)] = kept
    elif padding == "pre":
        out[index, out.shape[1] - len(kept):] = kept
    else:
        raise ValueError(f'Padding type "{padding}" not understood: use "pre" or "post".')
