"""`Session` for TF1-style scripts: distflow is eager, so `run` only fetches values.

    with df.compat.v1.Session() as sess:
        print(sess.run(df.matmul(a, b)))      # same as df.matmul(a, b).numpy()

There are no graphs, placeholders or feed dicts: every op already ran when it
was called. `run` converts tensors (and lists, tuples and dicts of them) to
NumPy, as TF1's `Session.run` returned NumPy values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.tensor import Tensor


class Session:
    """A stand-in for `tf.compat.v1.Session` over eager tensors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._closed = False

    def run(self, fetches: Any, feed_dict: Any = None, **kwargs: Any) -> Any:
        """The NumPy value of `fetches` (a tensor or a nested list/tuple/dict of them)."""
        if feed_dict:
            raise NotImplementedError(
                "distflow is eager: there are no placeholders to feed. Compute the tensor "
                "from the NumPy arrays directly instead of passing feed_dict.")
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        return _fetch(fetches)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fetch(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: _fetch(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_fetch(v) for v in value)
    return np.asarray(value) if value is not None else None
