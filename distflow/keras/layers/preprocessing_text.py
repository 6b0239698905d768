"""TextVectorization: strings -> token indices or bag-of-words vectors, as Keras 3.

Standardization and splitting follow TensorFlow's string ops: "lower" lowercases
ASCII letters only (`tf.strings.lower`), punctuation is Keras's regular
expression, "whitespace" splits on runs of ASCII whitespace and drops empty
tokens. The vocabulary is a `StringLookup` with mask token "" and OOV "[UNK]".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow.keras.layers.preprocessing_lookup import (
    HostLayer,
    StringLookup,
    batches_of,
    encode_ids,
)
from distflow.tensor import Tensor

__all__ = ["TextVectorization"]

_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_WHITESPACE = re.compile(r"[ \t\n\r\v\f]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_STANDARDIZE = (None, "lower", "strip_punctuation", "lower_and_strip_punctuation")


class TextVectorization(HostLayer):
    """Turns strings into token-index sequences or encoded vectors.

    Args:
        max_tokens: maximum vocabulary size (mask and OOV included).
        standardize: None, "lower", "strip_punctuation", "lower_and_strip_punctuation"
            or a callable str -> str.
        split: None, "whitespace", "character" or a callable str -> list of tokens.
        ngrams: None, an int n (1..n-grams) or a tuple of widths.
        output_mode: "int", "multi_hot", "count" or "tf_idf".
        output_sequence_length: in "int" mode, pad or cut each sequence to this length
            (None: pad to the longest in the batch).
        pad_to_max_tokens: encoded outputs are `max_tokens` wide.
        vocabulary: a list of tokens or a file path (one per line).
        idf_weights: tf_idf weights matching `vocabulary`.
        sparse: must be False.
        ragged: must be False (distflow has no ragged tensors).
        encoding: only "utf-8".
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, max_tokens: int | None = None,
                 standardize: str | Callable | None = "lower_and_strip_punctuation",
                 split: str | Callable | None = "whitespace", ngrams: Any = None,
                 output_mode: str = "int", output_sequence_length: int | None = None,
                 pad_to_max_tokens: bool = False, vocabulary: Any = None,
                 idf_weights: Any = None, sparse: bool = False, ragged: bool = False,
                 encoding: str = "utf-8", **kwargs: Any):
        kwargs.pop("vocabulary_size", None)
        super().__init__(**kwargs)
        self._check_args(standardize, split, output_mode, output_sequence_length, ragged)
        self.standardize, self.split, self.output_mode = standardize, split, output_mode
        self.ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else \
            None if ngrams is None else tuple(ngrams)
        self.output_sequence_length = output_sequence_length
        self._lookup = StringLookup(max_tokens=max_tokens, vocabulary=vocabulary,
                                    idf_weights=idf_weights, mask_token="",
                                    output_mode=output_mode, pad_to_max_tokens=pad_to_max_tokens,
                                    sparse=sparse, encoding=encoding)

    def _check_args(self, standardize: Any, split: Any, mode: str, length: Any,
                    ragged: bool) -> None:
        if not callable(standardize) and standardize not in _STANDARDIZE:
            raise ValueError(f"Unknown `standardize` value {standardize!r}: use one of "
                             f"{list(_STANDARDIZE)} or a callable.")
        if not callable(split) and split not in (None, "whitespace", "character"):
            raise ValueError(f"Unknown `split` value {split!r}: use None, 'whitespace', "
                             "'character' or a callable.")
        if mode not in ("int", "multi_hot", "count", "tf_idf"):
            raise ValueError(f"Unknown `output_mode` {mode!r}: use 'int', 'multi_hot', "
                             "'count' or 'tf_idf'.")
        if length is not None and mode != "int":
            raise ValueError("`output_sequence_length` must not be set if `output_mode` is "
                             f"not 'int'. Received output_sequence_length={length}.")
        if ragged:
            raise ValueError("distflow has no ragged tensors: use ragged=False (int outputs "
                             "are padded with 0).")

    # ------------------------------------------------------------- pipeline

    def _standardized(self, text: str) -> str:
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.translate(_ASCII_LOWER)
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = _PUNCTUATION.sub("", text)
        if callable(self.standardize):
            text = self.standardize(text)
        return text

    def _tokens(self, text: str) -> list[str]:
        text = self._standardized(text)
        if self.split is None:
            tokens = [text]
        elif self.split == "whitespace":
            tokens = [t for t in _WHITESPACE.split(text) if t]
        elif self.split == "character":
            tokens = list(text)
        else:
            tokens = list(self.split(text))
        if self.ngrams is None:
            return tokens
        return [" ".join(tokens[i:i + n]) for n in self.ngrams
                for i in range(len(tokens) - n + 1)]

    def _documents(self, arr: np.ndarray) -> list[list[str]]:
        if arr.ndim > 1:
            if arr.shape[-1] != 1:
                raise ValueError("When using `TextVectorization` to tokenize strings, the input "
                                 "rank must be 1 or the last shape dimension must be 1. "
                                 f"Received: inputs.shape={arr.shape} with rank={arr.ndim}")
            arr = arr.reshape(arr.shape[:-1])
        return [self._tokens(str(t)) for t in arr.reshape(-1).tolist()]

    # ------------------------------------------------------------ vocabulary

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Learns the vocabulary from strings (an array, a list or batches of them)."""
        documents = [doc for batch in batches_of(data, steps) for doc in self._documents(batch)]
        self._lookup.learn_vocabulary(documents)

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[str]:
        """The vocabulary, "" and "[UNK]" first in "int" mode."""
        return self._lookup.get_vocabulary(include_special_tokens)

    def vocabulary_size(self) -> int:
        """Number of indices the layer can return."""
        return self._lookup.vocabulary_size()

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Sets the vocabulary (and tf_idf weights), as `StringLookup.set_vocabulary`."""
        self._lookup.set_vocabulary(vocabulary, idf_weights)

    # ------------------------------------------------------------------ call

    def host_call(self, inputs: np.ndarray) -> Tensor:
        documents = self._documents(inputs)
        flat = np.array([t for doc in documents for t in doc] or [""], dtype=object)
        ids = self._lookup._lookup(flat)
        rows, start = [], 0
        for doc in documents:
            rows.append(ids[start:start + len(doc)])
            start += len(doc)
        if self.output_mode == "int":
            width = self.output_sequence_length
            width = max((len(r) for r in rows), default=0) if width is None else width
            out = np.zeros((len(rows), width), np.int64)
            for i, row in enumerate(rows):
                out[i, :min(len(row), width)] = row[:width]
            return Tensor._wrap(out)
        lookup = self._lookup
        depth = lookup.max_tokens if lookup.pad_to_max_tokens else lookup.vocabulary_size()
        dtype = np.float32 if self.output_mode == "tf_idf" else np.int64
        encoded = [encode_ids(r, self.output_mode, depth, dtype, lookup._idf).value
                   if len(r) else np.zeros(depth, dtype) for r in rows]
        return Tensor._wrap(np.stack(encoded) if encoded else np.zeros((0, depth), dtype))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        batch = tuple(input_shape)[0] if input_shape else None
        if self.output_mode == "int":
            return (batch, self.output_sequence_length)
        lookup = self._lookup
        depth = lookup.max_tokens if lookup.pad_to_max_tokens else lookup.vocabulary_size()
        return (batch, depth)

    def get_config(self) -> dict[str, Any]:
        lookup = self._lookup.get_config()
        return {**super().get_config(), "max_tokens": lookup["max_tokens"],
                "standardize": self.standardize, "split": self.split,
                "ngrams": None if self.ngrams is None else list(self.ngrams),
                "output_mode": self.output_mode,
                "output_sequence_length": self.output_sequence_length,
                "pad_to_max_tokens": lookup["pad_to_max_tokens"], "sparse": False,
                "ragged": False, "vocabulary": lookup["vocabulary"],
                "idf_weights": lookup["idf_weights"], "encoding": "utf-8"}
