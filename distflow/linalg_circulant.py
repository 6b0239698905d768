"""TF's circulant operators (1-, 2- and 3-D) for real spectra and real inputs/outputs.

TF defines a circulant operator by its spectrum: A = F^H diag(spectrum) F / N with F the
(block-)DFT. distflow's tensors are real, so the operators here are TF's with a real
`input_output_dtype` (float32, float64): TF then keeps the real part of each result.
For a real spectrum s that real part is the symmetric circulant matrix whose first
column is c = Re(ifftn(s)) = s @ K, K[k, m] = cos(2 pi <k, m / n>) / N; solve uses the
same construction with 1 / s, as TF's FFT-based solve does. Both are a product with a
constant matrix and a gather, so they differentiate in the spectrum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow import linalg as la
from distflow import math_ops, ops
from distflow.linalg_operators import LinearOperator, _adj
from distflow.ops import _t
from distflow.tensor import Tensor

_REAL = ("float16", "float32", "float64")


def _dtype_name(dtype: Any) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(getattr(dtype, "name", dtype))


def _grid(block: tuple) -> np.ndarray:
    """Every multi-index of `block`, shape [N, d], in C order."""
    return np.indices(block).reshape(len(block), -1).T


def _kernel(block: tuple, dtype: Any) -> np.ndarray:
    """K with Re(ifftn(s)).ravel() = s.ravel() @ K."""
    k = _grid(block)
    phase = 2 * np.pi * (k / np.array(block)) @ k.T
    return (np.cos(phase) / k.shape[0]).astype(dtype)


def _wrap_index(block: tuple) -> np.ndarray:
    """I[i, j] = the flat index of (i - j) mod block, for flat multi-indices i and j."""
    k = _grid(block)
    diff = (k[:, None, :] - k[None, :, :]) % np.array(block)
    return np.ravel_multi_index(tuple(np.moveaxis(diff, -1, 0)), block)


class _Circulant(LinearOperator):
    """A (block-)circulant operator of `rank` block dimensions given by its spectrum."""

    rank = 1

    def __init__(self, spectrum: Any, input_output_dtype: Any = "complex64",
                 is_non_singular: bool | None = None, is_self_adjoint: bool | None = None,
                 is_positive_definite: bool | None = None, is_square: bool = True,
                 name: str | None = None):
        if _dtype_name(input_output_dtype) not in _REAL:
            raise TypeError(f"{type(self).__name__}: distflow's tensors are real, so "
                            f"input_output_dtype must be float16, float32 or float64 (TF "
                            f"then keeps the real part). Received {input_output_dtype!r}; "
                            "pass input_output_dtype=tf.float32.")
        self._spectrum = _t(spectrum)
        if self._spectrum.ndim < self.rank or self._spectrum.dtype.kind != "f":
            raise ValueError(f"spectrum must be a real tensor of rank >= {self.rank}. Received "
                             f"shape {self._spectrum.shape}, dtype {self._spectrum.dtype}.")
        if is_self_adjoint is False:
            raise ValueError("A real spectrum makes a self-adjoint operator; received "
                             "is_self_adjoint=False.")
        super().__init__(_dtype_name(input_output_dtype), None, is_non_singular, True,
                         is_positive_definite, is_square, name or type(self).__name__,
                         {"spectrum": spectrum, "input_output_dtype": input_output_dtype})

    spectrum = property(lambda self: self._spectrum)
    block_shape = property(lambda self: tuple(self._spectrum.shape[-self.rank:]))

    def _batch(self) -> tuple:
        return tuple(self._spectrum.shape[:-self.rank])

    def _shape(self) -> tuple:
        n = int(np.prod(self.block_shape))
        return self._batch() + (n, n)

    def _circulant(self, spectrum: Tensor) -> Tensor:
        block = self.block_shape
        flat = ops.reshape(spectrum, self._batch() + (int(np.prod(block)),))
        column = ops.matmul(flat, _kernel(block, flat.dtype))
        return ops.cast(column[..., _wrap_index(block)], self.dtype)

    def _to_dense(self) -> Tensor:
        return self._circulant(self._spectrum)

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        inverse = self._circulant(ops.divide(1.0, self._spectrum))
        return ops.matmul(inverse, _adj(rhs) if adjoint_arg else rhs)

    def _axes(self) -> list[int]:
        return list(range(-self.rank, 0))

    def _determinant(self) -> Tensor:
        return ops.cast(math_ops.reduce_prod(self._spectrum, axis=self._axes()), self.dtype)

    def _log_abs_determinant(self) -> Tensor:
        logs = ops.log(ops.abs(self._spectrum))
        return ops.cast(ops.reduce_sum(logs, axis=self._axes()), self.dtype)

    def _trace(self) -> Tensor:
        return ops.cast(ops.reduce_sum(self._spectrum, axis=self._axes()), self.dtype)

    def _diag_part(self) -> Tensor:
        return la.diag_part(self.to_dense())


class LinearOperatorCirculant(_Circulant):
    """A circulant operator with spectrum [..., N] (real input/output dtype only)."""

    rank = 1


class LinearOperatorCirculant2D(_Circulant):
    """A block-circulant operator with circulant blocks, spectrum [..., N0, N1]."""

    rank = 2


class LinearOperatorCirculant3D(_Circulant):
    """A doubly block-circulant operator with spectrum [..., N0, N1, N2]."""

    rank = 3
