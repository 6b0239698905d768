"""TF's structured and composed linear operators over distflow.linalg_operators.

Composition, Adjoint, Inversion, BlockDiag, BlockLowerTriangular and Kronecker are
built from other operators; Toeplitz, Tridiag, Householder, Permutation and
LowRankUpdate from tensors. All real-valued; whatever has no cheaper structured
form goes through the dense matrix, so gradients flow through to_dense.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from distflow import linalg as la
from distflow import ops
from distflow.linalg_operators import LinearOperator, _adj
from distflow.ops import _t
from distflow.reorder_ops import broadcast_to
from distflow.tensor import Tensor


def _all(values: list, attribute: str) -> bool | None:
    hints = [getattr(v, attribute) for v in values]
    return True if all(h is True for h in hints) else None


def _product(values: list) -> Tensor:
    return functools.reduce(ops.multiply, values)


def _listed(operators: Any, what: str) -> list:
    operators = list(operators)
    if not operators or not all(isinstance(o, LinearOperator) for o in operators):
        raise TypeError(f"{what} needs a non-empty list of LinearOperators. Received "
                        f"{operators!r}.")
    return operators


class LinearOperatorComposition(LinearOperator):
    """operators[0] @ operators[1] @ ... applied right to left."""

    def __init__(self, operators: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str | None = None):
        self._ops = _listed(operators, "LinearOperatorComposition")
        for left, right in zip(self._ops, self._ops[1:]):
            if left.domain_dimension != right.range_dimension:
                raise ValueError(f"Composed operators must chain: {left.shape} @ "
                                 f"{right.shape} do not.")
        name = name or "_o_".join(o.name for o in self._ops)
        if is_non_singular is None:
            is_non_singular = _all(self._ops, "is_non_singular")
        super().__init__(self._ops[0].dtype, None, is_non_singular, is_self_adjoint,
                         is_positive_definite, is_square, name, {"operators": self._ops})

    operators = property(lambda self: list(self._ops))

    def _shape(self) -> tuple:
        batch = np.broadcast_shapes(*(tuple(o.batch_shape) for o in self._ops))
        return tuple(batch) + (self._ops[0].range_dimension, self._ops[-1].domain_dimension)

    def _to_dense(self) -> Tensor:
        return functools.reduce(ops.matmul, [o.to_dense() for o in self._ops])

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        x = _adj(x) if adjoint_arg else x
        for o in (self._ops if adjoint else self._ops[::-1]):
            x = o.matmul(x, adjoint=adjoint)
        return x

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        x = _adj(rhs) if adjoint_arg else rhs
        for o in (self._ops[::-1] if adjoint else self._ops):
            x = o.solve(x, adjoint=adjoint)
        return x

    def _determinant(self) -> Tensor:
        if all(o.is_square for o in self._ops):
            return _product([o.determinant() for o in self._ops])
        return la.det(self.to_dense())


def _inherited(operator: LinearOperator, *hints: bool | None) -> tuple:
    """(is_non_singular, is_self_adjoint, is_positive_definite): each given hint, else the
    wrapped operator's (its adjoint and inverse keep all three)."""
    own = (operator.is_non_singular, operator.is_self_adjoint, operator.is_positive_definite)
    return tuple(o if h is None else h for h, o in zip(hints, own, strict=True))


class LinearOperatorAdjoint(LinearOperator):
    """The adjoint (for real operators, the transpose) of `operator`."""

    def __init__(self, operator: LinearOperator, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str | None = None):
        self._op = operator
        super().__init__(operator.dtype, None,
                         *_inherited(operator, is_non_singular, is_self_adjoint,
                                     is_positive_definite),
                         is_square, name or operator.name + "_adjoint", {"operator": operator})

    operator = property(lambda self: self._op)

    def _shape(self) -> tuple:
        shape = tuple(self._op.shape)
        return shape[:-2] + (shape[-1], shape[-2])

    def _to_dense(self) -> Tensor:
        return _adj(self._op.to_dense())

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return self._op.matmul(x, adjoint=not adjoint, adjoint_arg=adjoint_arg)

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return self._op.solve(rhs, adjoint=not adjoint, adjoint_arg=adjoint_arg)

    def _determinant(self) -> Tensor:
        return self._op.determinant()

    def _log_abs_determinant(self) -> Tensor:
        return self._op.log_abs_determinant()

    def _diag_part(self) -> Tensor:
        return self._op.diag_part()

    def _adjoint(self) -> LinearOperator:
        return self._op


class LinearOperatorInversion(LinearOperator):
    """The inverse of a non-singular square `operator`: matmul is its solve."""

    def __init__(self, operator: LinearOperator, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str | None = None):
        if operator.is_non_singular is False or is_non_singular is False:
            raise ValueError(f"Only a non-singular operator has an inverse. Received "
                             f"{operator.name} with is_non_singular=False.")
        if operator.is_square is False:
            raise ValueError(f"Only a square operator has an inverse. Received shape "
                             f"{operator.shape}.")
        self._op = operator
        super().__init__(operator.dtype, None,
                         *_inherited(operator, is_non_singular, is_self_adjoint,
                                     is_positive_definite),
                         True, name or operator.name + "_inv", {"operator": operator})

    operator = property(lambda self: self._op)

    def _shape(self) -> tuple:
        return tuple(self._op.shape)

    def _to_dense(self) -> Tensor:
        eye = la.eye(self.domain_dimension, batch_shape=list(self._shape()[:-2]),
                     dtype=self.dtype)
        return self._op.solve(eye)

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return self._op.solve(x, adjoint=adjoint, adjoint_arg=adjoint_arg)

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return self._op.matmul(rhs, adjoint=adjoint, adjoint_arg=adjoint_arg)

    def _determinant(self) -> Tensor:
        return ops.divide(1.0, self._op.determinant())

    def _log_abs_determinant(self) -> Tensor:
        return ops.negative(self._op.log_abs_determinant())

    def _inverse(self) -> LinearOperator:
        return self._op


def _zeros(batch: tuple, rows: int, cols: int, dtype: Any) -> Tensor:
    return ops.zeros(batch + (rows, cols), dtype)


def _batched(dense: Tensor, batch: tuple) -> Tensor:
    return broadcast_to(dense, batch + tuple(dense.shape[-2:]))


def _block_rows(rows: list[list], batch: tuple, widths: list[int], dtype: Any) -> Tensor:
    """Dense blocks (None: zeros) assembled into one matrix."""
    out = []
    for row in rows:
        height = next(b.shape[-2] for b in row if b is not None)
        blocks = [_batched(b, batch) if b is not None else _zeros(batch, height, w, dtype)
                  for b, w in zip(row, widths)]
        out.append(ops.concat(blocks, axis=-1))
    return ops.concat(out, axis=-2)


def _split(x: Tensor, sizes: list[int]) -> list[Tensor]:
    bounds = np.cumsum([0] + sizes)
    return [x[..., int(a):int(b), :] for a, b in zip(bounds, bounds[1:])]


class LinearOperatorBlockDiag(LinearOperator):
    """Operators on the diagonal of a block matrix, zeros elsewhere."""

    def __init__(self, operators: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool = True, name: str | None = None):
        self._ops = _listed(operators, "LinearOperatorBlockDiag")
        super().__init__(self._ops[0].dtype, None,
                         _all(self._ops, "is_non_singular") if is_non_singular is None
                         else is_non_singular,
                         _all(self._ops, "is_self_adjoint") if is_self_adjoint is None
                         else is_self_adjoint,
                         _all(self._ops, "is_positive_definite") if is_positive_definite is None
                         else is_positive_definite, is_square,
                         name or "_ds_".join(o.name for o in self._ops), {"operators": self._ops})

    operators = property(lambda self: list(self._ops))

    def _batch(self) -> tuple:
        return tuple(np.broadcast_shapes(*(tuple(o.batch_shape) for o in self._ops)))

    def _sizes(self, domain: bool) -> list[int]:
        return [o.domain_dimension if domain else o.range_dimension for o in self._ops]

    def _shape(self) -> tuple:
        return self._batch() + (sum(self._sizes(False)), sum(self._sizes(True)))

    def _to_dense(self) -> Tensor:
        k = len(self._ops)
        rows = [[o.to_dense() if i == j else None for j in range(k)]
                for i, o in enumerate(self._ops)]
        return _block_rows(rows, self._batch(), self._sizes(True), self.dtype)

    def _blockwise(self, x: Tensor, adjoint_arg: bool, domain: bool, apply: Any) -> Tensor:
        x = _adj(x) if adjoint_arg else x
        parts = _split(x, self._sizes(domain))
        outs = [apply(o, p) for o, p in zip(self._ops, parts)]
        batch = tuple(np.broadcast_shapes(*(tuple(y.shape[:-2]) for y in outs)))
        return ops.concat([_batched(y, batch) for y in outs], axis=-2)

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return self._blockwise(x, adjoint_arg, not adjoint,
                               lambda o, p: o.matmul(p, adjoint=adjoint))

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return self._blockwise(rhs, adjoint_arg, adjoint,
                               lambda o, p: o.solve(p, adjoint=adjoint))

    def _determinant(self) -> Tensor:
        return _product([o.determinant() for o in self._ops])

    def _log_abs_determinant(self) -> Tensor:
        return functools.reduce(ops.add, [o.log_abs_determinant() for o in self._ops])

    def _diag_part(self) -> Tensor:
        if not all(o.is_square for o in self._ops):
            raise NotImplementedError("diag_part of a block-diagonal operator needs square "
                                      f"blocks. Received shapes "
                                      f"{[tuple(o.shape) for o in self._ops]}.")
        parts = [o.diag_part() for o in self._ops]
        batch = self._batch()
        return ops.concat([broadcast_to(p, batch + tuple(p.shape[-1:])) for p in parts], -1)


def _check_blocks(rows: list[list], diagonal: list) -> None:
    """Block (i, j) must have the rows of diagonal block i and the columns of block j."""
    for i, row in enumerate(rows):
        for j, block in enumerate(row):
            want = (diagonal[i].range_dimension, diagonal[j].domain_dimension)
            if (block.range_dimension, block.domain_dimension) != want:
                raise ValueError(f"Block ({i}, {j}) of LinearOperatorBlockLowerTriangular "
                                 f"has shape {tuple(block.shape)}; its row and column of "
                                 f"blocks need {want} in the last two dimensions.")


class LinearOperatorBlockLowerTriangular(LinearOperator):
    """A block lower-triangular matrix: row i of `operators` holds blocks (i, 0..i)."""

    def __init__(self, operators: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str = "LinearOperatorBlockLowerTriangular"):
        self._rows = [_listed(row, "LinearOperatorBlockLowerTriangular") for row in operators]
        if [len(r) for r in self._rows] != list(range(1, len(self._rows) + 1)):
            raise ValueError("operators must be a lower-triangular list of lists: row i holds "
                             f"i + 1 operators. Received row lengths "
                             f"{[len(r) for r in self._rows]}.")
        diagonal = [r[-1] for r in self._rows]
        _check_blocks(self._rows, diagonal)
        super().__init__(diagonal[0].dtype, None,
                         _all(diagonal, "is_non_singular") if is_non_singular is None
                         else is_non_singular, is_self_adjoint, is_positive_definite,
                         True if is_square is None else is_square, name,
                         {"operators": self._rows})

    operators = property(lambda self: [list(r) for r in self._rows])

    def _batch(self) -> tuple:
        every = [tuple(o.batch_shape) for r in self._rows for o in r]
        return tuple(np.broadcast_shapes(*every))

    def _shape(self) -> tuple:
        n = sum(r[-1].domain_dimension for r in self._rows)
        return self._batch() + (n, n)

    def _to_dense(self) -> Tensor:
        k = len(self._rows)
        rows = [[r[j].to_dense() if j < len(r) else None for j in range(k)] for r in self._rows]
        return _block_rows(rows, self._batch(), [r[-1].domain_dimension for r in self._rows],
                           self.dtype)

    def _determinant(self) -> Tensor:
        return _product([r[-1].determinant() for r in self._rows])

    def _log_abs_determinant(self) -> Tensor:
        return functools.reduce(ops.add, [r[-1].log_abs_determinant() for r in self._rows])


def _kron(a: Tensor, b: Tensor) -> Tensor:
    m, n = a.shape[-2:]
    p, q = b.shape[-2:]
    outer = ops.multiply(a[..., :, None, :, None], b[..., None, :, None, :])
    return ops.reshape(outer, tuple(outer.shape[:-4]) + (m * p, n * q))


def _along(y: Tensor, k: int, i: int, apply: Any) -> Tensor:
    """Applies a matrix function to axis i of y's k factor axes (before its column axis)."""
    lead = y.ndim - k - 1
    axis = lead + i
    order = list(range(lead)) + [axis] + [a for a in range(lead, y.ndim) if a != axis]
    moved = ops.transpose(y, order)
    rest = tuple(moved.shape[lead + 1:])
    out = apply(ops.reshape(moved, tuple(moved.shape[:lead]) + (moved.shape[lead],
                                                                   int(np.prod(rest)))))
    lead = out.ndim - 2
    out = ops.reshape(out, tuple(out.shape[:-1]) + rest)
    back = list(range(lead)) + [lead + 1 + a for a in range(i)] + [lead] + [
        lead + 1 + a for a in range(i, k)]
    return ops.transpose(out, back)


class LinearOperatorKronecker(LinearOperator):
    """The Kronecker product operators[0] (x) operators[1] (x) ..."""

    def __init__(self, operators: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str | None = None):
        self._ops = _listed(operators, "LinearOperatorKronecker")
        super().__init__(self._ops[0].dtype, None,
                         _all(self._ops, "is_non_singular") if is_non_singular is None
                         else is_non_singular,
                         _all(self._ops, "is_self_adjoint") if is_self_adjoint is None
                         else is_self_adjoint, is_positive_definite, is_square,
                         name or "_x_".join(o.name for o in self._ops), {"operators": self._ops})

    operators = property(lambda self: list(self._ops))

    def _shape(self) -> tuple:
        batch = np.broadcast_shapes(*(tuple(o.batch_shape) for o in self._ops))
        rows = int(np.prod([o.range_dimension for o in self._ops]))
        cols = int(np.prod([o.domain_dimension for o in self._ops]))
        return tuple(batch) + (rows, cols)

    def _to_dense(self) -> Tensor:
        return functools.reduce(_kron, [o.to_dense() for o in self._ops])

    def _factorwise(self, x: Tensor, sizes: list[int], apply: Any) -> Tensor:
        """(A_1 (x) ... (x) A_k) x by applying each factor along its own axis of x."""
        columns = x.shape[-1]
        y = ops.reshape(x, tuple(x.shape[:-2]) + tuple(sizes) + (columns,))
        for i, o in enumerate(self._ops):
            y = _along(y, len(self._ops), i, lambda flat, o=o: apply(o, flat))
        batch = tuple(y.shape[:-len(self._ops) - 1])
        return ops.reshape(y, batch + (int(np.prod(y.shape[len(batch):-1])), columns))

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        x = _adj(x) if adjoint_arg else x
        sizes = [o.range_dimension if adjoint else o.domain_dimension for o in self._ops]
        return self._factorwise(x, sizes, lambda o, f: o.matmul(f, adjoint=adjoint))

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        rhs = _adj(rhs) if adjoint_arg else rhs
        if not all(o.is_square for o in self._ops):
            return la.solve(self.to_dense(), rhs, adjoint=adjoint)
        sizes = [o.domain_dimension for o in self._ops]
        return self._factorwise(rhs, sizes, lambda o, f: o.solve(f, adjoint=adjoint))

    def _powers(self) -> list[float]:
        n = self.domain_dimension
        return [float(n // o.domain_dimension) for o in self._ops]

    def _determinant(self) -> Tensor:
        if not all(o.is_square for o in self._ops):
            return la.det(self.to_dense())
        return _product([ops.power(o.determinant(), p) for o, p in zip(self._ops, self._powers())])

    def _log_abs_determinant(self) -> Tensor:
        if not all(o.is_square for o in self._ops):
            return la.slogdet(self.to_dense())[1]
        terms = [ops.multiply(p, o.log_abs_determinant())
                 for o, p in zip(self._ops, self._powers())]
        return functools.reduce(ops.add, terms)

    def _diag_part(self) -> Tensor:
        # As TF, the Kronecker product of the factors' diagonals, square factors or not.
        parts = [ops.expand_dims(o.diag_part(), -2) for o in self._ops]
        return ops.squeeze(functools.reduce(_kron, parts), -2)

    def _trace(self) -> Tensor:
        return _product([o.trace() for o in self._ops])


class LinearOperatorToeplitz(LinearOperator):
    """T[i, j] = col[i - j] on and below the diagonal, row[j - i] above (row[0] ignored)."""

    def __init__(self, col: Any, row: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str = "LinearOperatorToeplitz"):
        self._col, self._row = _t(col), _t(row)
        if self._col.shape[-1] != self._row.shape[-1]:
            raise ValueError(f"col and row must have the same length. Received shapes "
                             f"{self._col.shape} and {self._row.shape}.")
        super().__init__(self._col.dtype, None, is_non_singular, is_self_adjoint,
                         is_positive_definite, True if is_square is None else is_square, name,
                         {"col": col, "row": row})

    col = property(lambda self: self._col)
    row = property(lambda self: self._row)

    def _shape(self) -> tuple:
        batch = np.broadcast_shapes(tuple(self._col.shape[:-1]), tuple(self._row.shape[:-1]))
        n = self._col.shape[-1]
        return tuple(batch) + (n, n)

    def _to_dense(self) -> Tensor:
        n = self._col.shape[-1]
        batch = self._shape()[:-2]
        row = broadcast_to(self._row, batch + (n,))
        col = broadcast_to(self._col, batch + (n,))
        values = ops.concat([row[..., :0:-1], col], axis=-1)
        i = np.arange(n)
        return values[..., i[:, None] - i[None, :] + n - 1]


class LinearOperatorTridiag(LinearOperator):
    """A (batch of) tridiagonal matrices in TF's 'compact', 'sequence' or 'matrix' format."""

    def __init__(self, diagonals: Any, diagonals_format: str = "compact",
                 is_non_singular: bool | None = None, is_self_adjoint: bool | None = None,
                 is_positive_definite: bool | None = None, is_square: bool | None = None,
                 name: str = "LinearOperatorTridiag"):
        self._format = diagonals_format
        self._diagonals = diagonals
        self._sup, self._main, self._sub = _tridiag_parts(diagonals, diagonals_format)
        self._matrix = _t(diagonals) if diagonals_format == "matrix" else None
        super().__init__(self._main.dtype, None, is_non_singular, is_self_adjoint,
                         is_positive_definite, True if is_square is None else is_square, name,
                         {"diagonals": diagonals, "diagonals_format": diagonals_format})

    diagonals = property(lambda self: self._diagonals)
    diagonals_format = property(lambda self: self._format)

    def _shape(self) -> tuple:
        return tuple(self._main.shape) + (self._main.shape[-1],)

    def _band(self) -> Tensor:
        n = self._main.shape[-1]
        terms = [(self._main, 0), (self._sup, 1), (self._sub, -1)]
        return functools.reduce(ops.add, [
            ops.multiply(ops.expand_dims(d, -1), np.eye(n, k=k, dtype=self.dtype))
            for d, k in terms])

    def _to_dense(self) -> Tensor:
        # As TF: in 'matrix' format to_dense (and what derives from it: determinant,
        # trace, add_to_tensor) keeps the whole matrix, matmul and solve its three bands.
        return self._band() if self._matrix is None else self._matrix

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return ops.matmul(self._band(), x, transpose_a=adjoint, transpose_b=adjoint_arg)

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return la.solve(self._band(), _adj(rhs) if adjoint_arg else rhs, adjoint=adjoint)

    def _diag_part(self) -> Tensor:
        return self._main


def _tridiag_parts(diagonals: Any, layout: str) -> tuple[Tensor, Tensor, Tensor]:
    if layout == "compact":
        d = _t(diagonals)
        return d[..., 0, :], d[..., 1, :], d[..., 2, :]
    if layout == "sequence":
        return tuple(_t(d) for d in diagonals)
    if layout == "matrix":
        m = _t(diagonals)
        n = m.shape[-1]
        main = la.diag_part(m)
        pad = np.zeros(tuple(m.shape[:-2]) + (1,), m.dtype)
        sup = ops.concat([m[..., np.arange(n - 1), np.arange(1, n)], pad], -1)
        sub = ops.concat([pad, m[..., np.arange(1, n), np.arange(n - 1)]], -1)
        return sup, main, sub
    raise ValueError(f"diagonals_format must be 'compact', 'sequence' or 'matrix'. Received "
                     f"{layout!r}.")


class LinearOperatorHouseholder(LinearOperator):
    """The reflection I - 2 v v^T / (v^T v) about the hyperplane orthogonal to v."""

    def __init__(self, reflection_axis: Any, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str = "LinearOperatorHouseholder"):
        if is_self_adjoint is False or is_positive_definite or is_non_singular is False:
            raise ValueError("A Householder reflection is self-adjoint, non-singular and not "
                             "positive definite.")
        self._v = _t(reflection_axis)
        super().__init__(self._v.dtype, None, True, True, is_positive_definite, True, name,
                         {"reflection_axis": reflection_axis})

    reflection_axis = property(lambda self: self._v)

    def _shape(self) -> tuple:
        return tuple(self._v.shape) + (self._v.shape[-1],)

    def _unit(self) -> Tensor:
        return ops.divide(self._v, ops.sqrt(ops.reduce_sum(ops.square(self._v), -1,
                                                           keepdims=True)))

    def _matmul(self, x: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        x = _adj(x) if adjoint_arg else x
        u = ops.expand_dims(self._unit(), -1)
        return ops.subtract(x, ops.multiply(2.0, ops.matmul(u, ops.matmul(u, x, transpose_a=True))))

    def _solve(self, rhs: Tensor, adjoint: bool, adjoint_arg: bool) -> Tensor:
        return self._matmul(rhs, adjoint, adjoint_arg)

    def _determinant(self) -> Tensor:
        return ops.fill(self._shape()[:-2], np.array(-1.0, self.dtype))

    def _log_abs_determinant(self) -> Tensor:
        return ops.zeros(self._shape()[:-2], self.dtype)


class LinearOperatorPermutation(LinearOperator):
    """P with P[i, perm[i]] = 1: (P @ x)[i] = x[perm[i]]."""

    def __init__(self, perm: Any, dtype: Any = np.float32, is_non_singular: bool | None = None,
                 is_self_adjoint: bool | None = None, is_positive_definite: bool | None = None,
                 is_square: bool | None = None, name: str = "LinearOperatorPermutation"):
        self._perm = np.asarray(perm.value if isinstance(perm, Tensor) else perm)
        if self._perm.dtype.kind not in "iu":
            raise TypeError(f"perm must hold integers. Received dtype {self._perm.dtype}.")
        if not (np.sort(self._perm, -1) == np.arange(self._perm.shape[-1])).all():
            raise ValueError(f"perm must be a permutation of 0..n-1. Received {self._perm}.")
        super().__init__(dtype, None, True, is_self_adjoint, is_positive_definite, True, name,
                         {"perm": perm, "dtype": dtype})

    perm = property(lambda self: Tensor._wrap(self._perm))

    def _shape(self) -> tuple:
        return self._perm.shape + (self._perm.shape[-1],)

    def _to_dense(self) -> Tensor:
        n = self._perm.shape[-1]
        return Tensor._wrap((self._perm[..., None] == np.arange(n)).astype(self.dtype))

    def _determinant(self) -> Tensor:
        signs = np.linalg.det(self._to_dense().value.astype(np.float64))
        return Tensor._wrap(np.round(signs).astype(self.dtype))

    def _log_abs_determinant(self) -> Tensor:
        return ops.zeros(self._shape()[:-2], self.dtype)


class LinearOperatorLowRankUpdate(LinearOperator):
    """base_operator + u diag(diag_update) v^T (v = u when not given)."""

    def __init__(self, base_operator: LinearOperator, u: Any, diag_update: Any = None,
                 v: Any = None, is_diag_update_positive: bool | None = None,
                 is_non_singular: bool | None = None, is_self_adjoint: bool | None = None,
                 is_positive_definite: bool | None = None, is_square: bool | None = None,
                 name: str = "LinearOperatorLowRankUpdate"):
        self._base, self._u = base_operator, _t(u)
        self._v = self._u if v is None else _t(v)
        self._d = None if diag_update is None else _t(diag_update)
        if is_self_adjoint is None and v is None and base_operator.is_self_adjoint:
            is_self_adjoint = True
        super().__init__(base_operator.dtype, None, is_non_singular, is_self_adjoint,
                         is_positive_definite, is_square, name,
                         {"base_operator": base_operator, "u": u, "diag_update": diag_update,
                          "v": v, "is_diag_update_positive": is_diag_update_positive})

    base_operator = property(lambda self: self._base)
    u = property(lambda self: self._u)
    v = property(lambda self: self._v)
    diag_update = property(lambda self: self._d)

    def _shape(self) -> tuple:
        batch = np.broadcast_shapes(tuple(self._base.batch_shape), tuple(self._u.shape[:-2]))
        return tuple(batch) + tuple(self._base.shape[-2:])

    def _scaled_u(self) -> Tensor:
        return self._u if self._d is None else ops.multiply(self._u,
                                                            ops.expand_dims(self._d, -2))

    def _to_dense(self) -> Tensor:
        update = ops.matmul(self._scaled_u(), self._v, transpose_b=True)
        return ops.add(self._base.to_dense(), update)


def banded_triangular_solve(bands: Any, rhs: Any, lower: bool = True, adjoint: bool = False,
                            name: str | None = None) -> Tensor:
    """Solves a triangular system whose matrix is given by its K bands, as TF.

    Args:
        bands: shape [..., K, M]. With lower=True row 0 is the diagonal and row k the k-th
            subdiagonal; with lower=False the last row is the diagonal and row K-1-k the k-th
            superdiagonal. Column i holds the entries of the matrix's row i.
        rhs: shape [..., M, N].
        lower: whether the matrix is lower triangular.
        adjoint: solve with the matrix's adjoint instead.
        name: accepted for TF compatibility.

    Returns:
        The solution, shape [..., M, N]; differentiable in both arguments.
    """
    bands, rhs = _t(bands), _t(rhs)
    if bands.ndim < 2 or rhs.ndim < 2 or bands.shape[-1] != rhs.shape[-2]:
        raise ValueError(f"banded_triangular_solve needs bands [..., K, M] and rhs [..., M, N]."
                         f" Received shapes {bands.shape} and {rhs.shape}.")
    k, m = bands.shape[-2:]
    i, j = np.arange(m)[:, None], np.arange(m)[None, :]
    offset = (i - j) if lower else (k - 1 - (j - i))
    inside = (offset >= 0) & (offset < k) & ((i >= j) if lower else (j >= i))
    padded = ops.concat([bands, ops.zeros(tuple(bands.shape[:-1]) + (1,), bands.dtype)], -1)
    flat = ops.reshape(padded, tuple(bands.shape[:-2]) + (k * (m + 1),))
    index = np.where(inside, np.clip(offset, 0, k - 1) * (m + 1) + i, m)
    matrix = flat[..., index]
    return la.triangular_solve(matrix, rhs, lower=lower, adjoint=adjoint)

