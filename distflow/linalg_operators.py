"""`tf.linalg.LinearOperator` and its basic real-valued subclasses.

An operator stands for a (batch of) matrices without necessarily building it: a
subclass states its shape and either its dense matrix (`_to_dense`) or its product
with a matrix (`_matmul`); everything else (solve, determinant, diagonal, trace)
falls back to the dense matrix and distflow.linalg's differentiable ops unless the
subclass knows a cheaper way (a diagonal, the identity, a triangular matrix).
Operators built from other operators live in distflow.linalg_operators_more.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import linalg as la
from distflow import math_ops, ops
from distflow.dtypes import as_dtype
from distflow.errors import InvalidArgumentError
from distflow.ops import _t
from distflow.tensor import Tensor
from distflow.tensor_shape import TensorShape


def _adj(x: Tensor) -> Tensor:
    return ops.swapaxes(x, -1, -2)


def _hint(value: bool | None, implied: bool, what: str, because: str) -> bool | None:
    if implied and value is False:
        raise ValueError(f"An operator that is {because} is always {what}. Received "
                         f"{what}=False; drop the hint or pass True.")
    return True if implied else value


class LinearOperator:
    """Base class of (batches of) linear operators, as `tf.linalg.LinearOperator`.

    Subclasses define `_shape()` (a tuple) and `_to_dense()` or `_matmul(x, adjoint,
    adjoint_arg)`; the other methods derive from those, and subclasses override them
    where their structure makes them cheaper.

    Args:
        dtype: the operator's dtype.
        graph_parents: accepted for TF compatibility and ignored.
        is_non_singular: hint that the operator is invertible.
        is_self_adjoint: hint that the operator equals its adjoint.
        is_positive_definite: hint that x^T A x > 0 for every real x != 0.
        is_square: hint that the operator is square.
        name: the operator's name.
        parameters: the constructor's arguments, returned by `parameters`.
    """

    def __init__(self, dtype: Any = None, graph_parents: Any = None,
                 is_non_singular: bool | None = None, is_self_adjoint: bool | None = None,
                 is_positive_definite: bool | None = None, is_square: bool | None = None,
                 name: str | None = None, parameters: dict | None = None):
        is_non_singular = _hint(is_non_singular, bool(is_positive_definite), "non-singular",
                                "positive definite")
        is_square = _hint(is_square, bool(is_non_singular or is_self_adjoint), "square",
                          "non-singular or self-adjoint")
        self._dtype = as_dtype(dtype if dtype is not None else np.float32)
        self._hints = (is_non_singular, is_self_adjoint, is_positive_definite, is_square)
        self._name = name or type(self).__name__
        self._parameters = dict(parameters or {})

    # ------------------------------------------------------------ hints and names
    dtype = property(lambda self: self._dtype)
    name = property(lambda self: self._name)
    parameters = property(lambda self: dict(self._parameters))
    is_non_singular = property(lambda self: self._hints[0])
    is_self_adjoint = property(lambda self: self._hints[1])
    is_positive_definite = property(lambda self: self._hints[2])

    @property
    def is_square(self) -> bool | None:
        """The hint, or whether the static shape is square when there is no hint."""
        if self._hints[3] is not None:
            return self._hints[3]
        return self.range_dimension == self.domain_dimension

    # ------------------------------------------------------------------ shapes
    def _shape(self) -> tuple:
        return tuple(self.to_dense().shape)

    def _static(self) -> tuple:
        """`_shape()` as a tuple (subclasses may return a tuple or a TensorShape)."""
        return tuple(self._shape())

    @property
    def shape(self) -> TensorShape:
        """The static shape, batch dimensions then [range_dimension, domain_dimension]."""
        return TensorShape(self._static())

    batch_shape = property(lambda self: TensorShape(self._static()[:-2]))
    range_dimension = property(lambda self: self._static()[-2])
    domain_dimension = property(lambda self: self._static()[-1])
    tensor_rank = property(lambda self: len(self._static()))

    def shape_tensor(self, name: str | None = None) -> Tensor:
        """The shape as an int32 tensor."""
        return Tensor._wrap(np.array(self._static(), dtype=np.int32))

    def batch_shape_tensor(self, name: str | None = None) -> Tensor:
        return Tensor._wrap(np.array(self._static()[:-2], dtype=np.int32))

    def range_dimension_tensor(self, name: str | None = None) -> Tensor:
        return Tensor._wrap(np.int32(self.range_dimension))

    def domain_dimension_tensor(self, name: str | None = None) -> Tensor:
        return Tensor._wrap(np.int32(self.domain_dimension))

    def tensor_rank_tensor(self, name: str | None = None) -> Tensor:
        return Tensor._wrap(np.int32(self.tensor_rank))

    # ------------------------------------------------------- derived behaviour
    def _to_dense(self) -> Tensor:
        eye = la.eye(self.domain_dimension, batch_shape=list(self._static()[:-2]),
                     dtype=self.dtype)
        return self._matmul(eye, False, False)

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return ops.matmul(self.to_dense(), x, transpose_a=adjoint, transpose_b=adjoint_arg)

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return la.solve(self.to_dense(), _adj(rhs) if adjoint_arg else rhs, adjoint=adjoint)

    def _determinant(self) -> Tensor:
        return la.det(self.to_dense())

    def _log_abs_determinant(self) -> Tensor:
        return la.slogdet(self.to_dense())[1]

    def _diag_part(self) -> Tensor:
        return la.diag_part(self.to_dense())

    def _trace(self) -> Tensor:
        return ops.reduce_sum(self.diag_part(), axis=-1)

    def _cholesky(self) -> LinearOperator:
        return LinearOperatorLowerTriangular(la.cholesky(self.to_dense()), is_non_singular=True)

    # ------------------------------------------------------------- public API
    def to_dense(self, name: str | None = None) -> Tensor:
        """The operator as a dense (batch of) matrices."""
        return self._to_dense()

    def matmul(self, x: Any, adjoint: bool = False, adjoint_arg: bool = False,
               name: str | None = None) -> Any:
        """A @ x (A^H @ x when adjoint; x^H when adjoint_arg); an operator x composes."""
        if isinstance(x, LinearOperator):
            left = self.adjoint() if adjoint else self
            right = x.adjoint() if adjoint_arg else x
            return _more().LinearOperatorComposition([left, right])
        x = self._operand(x, adjoint_arg, self._dims(not adjoint), "matmul")
        return self._matmul(x, adjoint, adjoint_arg)

    def matvec(self, x: Any, adjoint: bool = False, name: str | None = None) -> Tensor:
        """A @ x for a (batch of) vectors x."""
        return ops.squeeze(self.matmul(ops.expand_dims(_t(x), -1), adjoint=adjoint), -1)

    def solve(self, rhs: Any, adjoint: bool = False, adjoint_arg: bool = False,
              name: str | None = None) -> Any:
        """X with A @ X = rhs (A^H @ X = rhs when adjoint)."""
        if self.is_non_singular is False:
            raise NotImplementedError(f"{self.name} is singular (is_non_singular=False); it "
                                      "has no solve.")
        if isinstance(rhs, LinearOperator):
            left = self.inverse() if not adjoint else self.adjoint().inverse()
            return left.matmul(rhs, adjoint_arg=adjoint_arg)
        rhs = self._operand(rhs, adjoint_arg, self._dims(adjoint), "solve")
        return self._solve(rhs, adjoint, adjoint_arg)

    def solvevec(self, rhs: Any, adjoint: bool = False, name: str | None = None) -> Tensor:
        """x with A @ x = rhs for a (batch of) vectors rhs."""
        return ops.squeeze(self.solve(ops.expand_dims(_t(rhs), -1), adjoint=adjoint), -1)

    def determinant(self, name: str | None = None) -> Tensor:
        """det(A) for each matrix of the batch."""
        self._need_square("determinant")
        return self._determinant()

    def log_abs_determinant(self, name: str | None = None) -> Tensor:
        """log |det(A)| for each matrix of the batch."""
        self._need_square("log_abs_determinant")
        return self._log_abs_determinant()

    def diag_part(self, name: str | None = None) -> Tensor:
        """The main diagonal, shape batch_shape + [min(M, N)]."""
        return self._diag_part()

    def trace(self, name: str | None = None) -> Tensor:
        """The sum of the main diagonal."""
        return self._trace()

    def add_to_tensor(self, x: Any, name: str | None = None) -> Tensor:
        """A + x, as a dense tensor."""
        return ops.add(self.to_dense(), _t(x))

    def inverse(self, name: str | None = None) -> LinearOperator:
        """The inverse operator (an error when the operator is marked singular)."""
        if self.is_non_singular is False:
            raise ValueError(f"{self.name} is marked is_non_singular=False; it has no inverse.")
        if self.is_square is False:
            raise ValueError(f"{self.name} is not square (shape {self.shape}); it has no "
                             "inverse.")
        return self._inverse()

    def _inverse(self) -> LinearOperator:
        return _more().LinearOperatorInversion(self)

    def adjoint(self, name: str | None = None) -> LinearOperator:
        """A^H: the operator itself when it is self-adjoint."""
        return self if self.is_self_adjoint else self._adjoint()

    def _adjoint(self) -> LinearOperator:
        return _more().LinearOperatorAdjoint(self)

    H = property(lambda self: self.adjoint())

    def cholesky(self, name: str | None = None) -> LinearOperator:
        """The lower-triangular L with A = L L^H, for self-adjoint positive definite A."""
        if not (self.is_self_adjoint and self.is_positive_definite):
            raise ValueError("cholesky needs an operator with is_self_adjoint=True and "
                             f"is_positive_definite=True. Received {self.name} with "
                             f"{self.is_self_adjoint} and {self.is_positive_definite}.")
        return self._cholesky()

    def eigvals(self, name: str | None = None) -> Tensor:
        """The eigenvalues of a self-adjoint operator, ascending."""
        if not self.is_self_adjoint:
            raise NotImplementedError("eigvals needs is_self_adjoint=True (general "
                                      "eigenvalues are complex).")
        return la.eigvalsh(self.to_dense())

    def cond(self, name: str | None = None) -> Tensor:
        """The condition number: the largest over the smallest singular value."""
        s = la.svd(self.to_dense(), compute_uv=False)
        return ops.divide(ops.reduce_max(s, axis=-1), ops.reduce_min(s, axis=-1))

    def assert_non_singular(self, name: str | None = None) -> None:
        """Raises InvalidArgumentError when a matrix's condition number is not finite and
        below 1 / (100 eps), as TF."""
        s = np.linalg.svd(np.asarray(self.to_dense()), compute_uv=False)
        ratio = np.divide(s.max(-1), s.min(-1), out=np.full(s.shape[:-1], np.inf),
                          where=s.min(-1) > 0)
        if not (ratio < 100 / np.finfo(self.dtype).eps).all():
            raise InvalidArgumentError(f"Singular matrix up to precision epsilon "
                                       f"(condition numbers {ratio}).")

    def assert_self_adjoint(self, name: str | None = None) -> None:
        """Raises InvalidArgumentError unless the matrix equals its adjoint."""
        dense = np.asarray(self.to_dense())
        if not np.array_equal(dense, np.swapaxes(dense, -1, -2)):
            raise InvalidArgumentError(f"{self.name} is not equal to its adjoint.")

    def assert_positive_definite(self, name: str | None = None) -> None:
        """Raises InvalidArgumentError unless the (self-adjoint) operator is positive
        definite; as TF, only operators hinted self-adjoint can be checked."""
        if not self.is_self_adjoint:
            raise NotImplementedError("assert_positive_definite is not implemented.")
        try:
            np.linalg.cholesky(np.asarray(self.to_dense()))
        except np.linalg.LinAlgError as e:
            raise InvalidArgumentError(f"{self.name} is not positive definite: {e}.") from e

    def __matmul__(self, other: Any) -> Any:
        return self.matmul(other)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.name}' shape={self.shape} dtype={self.dtype}>"

    # ------------------------------------------------------------------ checks
    def _dims(self, domain: bool) -> int:
        return self.domain_dimension if domain else self.range_dimension

    def _operand(self, x: Any, adjoint_arg: bool, want: int, what: str) -> Tensor:
        x = _t(x)
        if x.ndim < 2:
            raise ValueError(f"{what} needs a matrix (rank >= 2) argument. Received shape "
                             f"{x.shape}; use {what}vec for vectors.")
        rows = x.shape[-1] if adjoint_arg else x.shape[-2]
        if rows != want:
            raise ValueError(f"{self.name}.{what}: the argument has {rows} rows where the "
                             f"operator (shape {self.shape}) needs {want}.")
        return x

    def _need_square(self, what: str) -> None:
        if not self.is_square:
            raise NotImplementedError(f"{what} needs a square operator. Received shape "
                                      f"{self.shape}.")


def _more():
    import importlib

    return importlib.import_module("distflow.linalg_operators_more")


class LinearOperatorFullMatrix(LinearOperator):
    """An operator backed by a dense (batch of) matrices, as TF's."""

    def __init__(self, matrix: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str = "LinearOperatorFullMatrix"):
        self._matrix = _t(matrix)
        if self._matrix.ndim < 2:
            raise ValueError(f"matrix must have rank >= 2. Received shape {self._matrix.shape}.")
        super().__init__(self._matrix.dtype, None, is_non_singular, is_self_adjoint,
                         is_positive_definite, is_square, name, {"matrix": matrix})

    def _shape(self) -> tuple:
        return tuple(self._matrix.shape)

    def _to_dense(self) -> Tensor:
        return self._matrix

    def _cholesky(self) -> LinearOperator:
        return LinearOperatorLowerTriangular(la.cholesky(self._matrix), is_non_singular=True)


class LinearOperatorDiag(LinearOperator):
    """A (batch of) diagonal matrices given by their diagonal, shape [..., N]."""

    def __init__(self, diag: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool = True, name: str = "LinearOperatorDiag"):
        self._diag = _t(diag)
        if self._diag.ndim < 1:
            raise ValueError(f"diag must have rank >= 1. Received shape {self._diag.shape}.")
        if is_square is False:
            raise ValueError("A diagonal operator is always square; received is_square=False.")
        super().__init__(self._diag.dtype, None, is_non_singular,
                         True if is_self_adjoint is None else is_self_adjoint,
                         is_positive_definite, True, name, {"diag": diag})

    diag = property(lambda self: self._diag)

    def _shape(self) -> tuple:
        return tuple(self._diag.shape) + (self._diag.shape[-1],)

    def _to_dense(self) -> Tensor:
        return la.diag(self._diag)

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return ops.multiply(ops.expand_dims(self._diag, -1), _adj(x) if adjoint_arg else x)

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return ops.divide(_adj(rhs) if adjoint_arg else rhs, ops.expand_dims(self._diag, -1))

    def _determinant(self) -> Tensor:
        return math_ops.reduce_prod(self._diag, axis=-1)

    def _log_abs_determinant(self) -> Tensor:
        return ops.reduce_sum(ops.log(ops.abs(self._diag)), axis=-1)

    def _diag_part(self) -> Tensor:
        return self._diag

    def _inverse(self) -> LinearOperator:
        return LinearOperatorDiag(ops.divide(1.0, self._diag), self.is_non_singular,
                                  self.is_self_adjoint, self.is_positive_definite)

    def _cholesky(self) -> LinearOperator:
        return LinearOperatorDiag(ops.sqrt(self._diag), True, True, True)


class LinearOperatorScaledIdentity(LinearOperator):
    """multiplier * I for a (batch of) multipliers: batch_shape = multiplier's shape."""

    def __init__(self, num_rows: int, multiplier: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool = True, assert_proper_shapes: bool = False,
                 name: str = "LinearOperatorScaledIdentity"):
        self._num_rows = _rows(num_rows)
        self._multiplier = _t(multiplier)
        super().__init__(self._multiplier.dtype, None, is_non_singular,
                         True if is_self_adjoint is None else is_self_adjoint,
                         is_positive_definite, True, name,
                         {"num_rows": num_rows, "multiplier": multiplier})

    multiplier = property(lambda self: self._multiplier)

    def _shape(self) -> tuple:
        return tuple(self._multiplier.shape) + (self._num_rows, self._num_rows)

    def _scale(self) -> Tensor:
        return ops.expand_dims(ops.expand_dims(self._multiplier, -1), -1)

    def _to_dense(self) -> Tensor:
        return ops.multiply(self._scale(), np.eye(self._num_rows, dtype=self.dtype))

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return ops.multiply(self._scale(), _adj(x) if adjoint_arg else x)

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return ops.divide(_adj(rhs) if adjoint_arg else rhs, self._scale())

    def _determinant(self) -> Tensor:
        return ops.power(self._multiplier, float(self._num_rows))

    def _log_abs_determinant(self) -> Tensor:
        return ops.multiply(float(self._num_rows), ops.log(ops.abs(self._multiplier)))

    def _diag_part(self) -> Tensor:
        return ops.multiply(ops.expand_dims(self._multiplier, -1),
                            np.ones(self._num_rows, self.dtype))

    def _trace(self) -> Tensor:
        return ops.multiply(float(self._num_rows), self._multiplier)


def _rows(n: Any) -> int:
    value = int(np.asarray(n.value if isinstance(n, Tensor) else n))
    if value < 0:
        raise ValueError(f"num_rows must be >= 0. Received {value}.")
    return value


class LinearOperatorIdentity(LinearOperatorScaledIdentity):
    """The identity, optionally batched: TF's LinearOperatorIdentity."""

    def __init__(self, num_rows: int, batch_shape: Any = None, dtype: Any = None,
                 is_non_singular: bool = True, is_self_adjoint: bool = True,
                 is_positive_definite: bool = True, is_square: bool = True,
                 assert_proper_shapes: bool = False, name: str = "LinearOperatorIdentity"):
        if not (is_non_singular and is_self_adjoint and is_positive_definite and is_square):
            raise ValueError("The identity is non-singular, self-adjoint, positive definite "
                             "and square; every hint must be True.")
        shape = tuple(int(d) for d in (batch_shape if batch_shape is not None else ()))
        ones = np.ones(shape, np.dtype(dtype) if dtype is not None else np.float32)
        super().__init__(num_rows, ones, True, True, True, True, name=name)
        self._parameters = {"num_rows": num_rows, "batch_shape": batch_shape, "dtype": dtype}

    def _log_abs_determinant(self) -> Tensor:
        return ops.zeros_like(self._multiplier)


class LinearOperatorLowerTriangular(LinearOperator):
    """A (batch of) lower-triangular matrices; the strictly upper part of tril is ignored."""

    def __init__(self, tril: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str = "LinearOperatorLowerTriangular"):
        tril = _t(tril)
        if tril.ndim < 2 or tril.shape[-1] != tril.shape[-2]:
            raise ValueError(f"tril must be a (batch of) square matrices. Received shape "
                             f"{tril.shape}.")
        self._tril = la.band_part(tril, -1, 0)
        super().__init__(tril.dtype, None, is_non_singular, is_self_adjoint,
                         is_positive_definite, True if is_square is None else is_square, name,
                         {"tril": tril})

    def _shape(self) -> tuple:
        return tuple(self._tril.shape)

    def _to_dense(self) -> Tensor:
        return self._tril

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        rhs = _adj(rhs) if adjoint_arg else rhs
        return la.triangular_solve(self._tril, rhs, lower=True, adjoint=adjoint)

    def _determinant(self) -> Tensor:
        return math_ops.reduce_prod(la.diag_part(self._tril), axis=-1)

    def _log_abs_determinant(self) -> Tensor:
        return ops.reduce_sum(ops.log(ops.abs(la.diag_part(self._tril))), axis=-1)


class LinearOperatorZeros(LinearOperator):
    """The zero operator, num_rows x num_columns, optionally batched."""

    def __init__(self, num_rows: int, num_columns: int | None = None, batch_shape: Any = None,
                 dtype: Any = None, is_non_singular: bool = False, is_self_adjoint: bool = True,
                 is_positive_definite: bool = False, is_square: bool = True,
                 assert_proper_shapes: bool = False, name: str = "LinearOperatorZeros"):
        if is_non_singular or is_positive_definite:
            raise ValueError("The zero operator is singular and not positive definite.")
        cols = num_rows if num_columns is None else num_columns
        self._size = (_rows(num_rows), _rows(cols))
        self._batch = tuple(int(d) for d in (batch_shape if batch_shape is not None else ()))
        square = self._size[0] == self._size[1]
        if is_square and not square:
            raise ValueError(f"LinearOperatorZeros with is_square=True needs num_rows == "
                             f"num_columns. Received {self._size}; pass is_square=False.")
        super().__init__(dtype, None, False, is_self_adjoint, False, is_square, name,
                         {"num_rows": num_rows, "num_columns": num_columns,
                          "batch_shape": batch_shape, "dtype": dtype})

    def _shape(self) -> tuple:
        return self._batch + self._size

    def _to_dense(self) -> Tensor:
        return ops.zeros(self._shape(), self.dtype)

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        rows = self._size[1] if adjoint else self._size[0]
        cols = x.shape[-2] if adjoint_arg else x.shape[-1]
        batch = np.broadcast_shapes(self._batch, tuple(x.shape[:-2]))
        return ops.zeros(tuple(batch) + (rows, cols), self.dtype)

    def _determinant(self) -> Tensor:
        return ops.zeros(self._batch, self.dtype)

    def _log_abs_determinant(self) -> Tensor:
        return ops.fill(self._batch, np.array(-math.inf, self.dtype))

    def _diag_part(self) -> Tensor:
        return ops.zeros(self._batch + (min(self._size),), self.dtype)
