"""`tf.linalg` over NumPy's LAPACK bindings, batched over leading axes.

inv, det, slogdet, solve, cholesky and triangular_solve are primitives with
VJPs; trace, diag, diag_part, band_part, norm, matvec, tensordot, cross and
friends are composites. eigh, eigvalsh, svd, qr and pinv compute forward
values only: differentiating through them raises a clear error.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

import numpy as np

from distflow import ops
from distflow.array_ops import einsum, tensordot  # noqa: F401  (tf.linalg names)
from distflow.array_ops import eye as _eye
from distflow.ops import _t, defop, matmul  # noqa: F401
from distflow.primitive import Primitive
from distflow.tensor import Tensor, as_array


def _mt(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _square(x: Tensor, what: str) -> Tensor:
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{what} needs square matrices in the last two axes. "
                         f"Received shape {x.shape}.")
    return x


def _lapack(fn, what: str):
    def call(*xs):
        try:
            return fn(*xs)
        except np.linalg.LinAlgError as e:
            raise ValueError(f"{what}: {e} (the input matrix is not invertible or not "
                             "positive definite).") from None
    return call


def _inv_fwd(a):
    out = _lapack(np.linalg.inv, "linalg.inv")(a)
    return out, out


_inv = defop("matrix_inverse", _inv_fwd, lambda g, inv: -_mt(inv) @ g @ _mt(inv))


def inv(input: Any, adjoint: bool = False) -> Tensor:  # noqa: A002
    """Inverse of each square matrix (of its transpose with `adjoint=True`)."""
    x = _square(_t(input), "linalg.inv")
    return _inv(matrix_transpose(x) if adjoint else x)


def _det_fwd(a):
    out = np.linalg.det(a)
    return out, (a, out)


def _det_vjp(g, r):
    a, det = r
    return (g * det)[..., None, None] * _mt(_lapack(np.linalg.inv, "linalg.det gradient")(a))


_det = defop("matrix_determinant", _det_fwd, _det_vjp)


def det(input: Any) -> Tensor:  # noqa: A002
    """Determinant of each square matrix."""
    return _det(_square(_t(input), "linalg.det"))


def _slogdet_fwd(a):
    sign, logabs = np.linalg.slogdet(a)
    return logabs.astype(a.dtype), (a, sign)


_logabsdet = defop("log_abs_determinant", _slogdet_fwd,
                   lambda g, r: g[..., None, None] * _mt(np.linalg.inv(r[0])))


# The sign of the determinant, piecewise constant: a zero gradient, as TF (a private
# primitive, so that a graph computes it when it runs, not when it is built).
_det_sign = Primitive("linalg_slogdet_sign",
                      lambda a: (np.linalg.slogdet(a)[0].astype(a.dtype), a.shape),
                      (lambda g, shape: np.zeros(shape, g.dtype),))


def slogdet(input: Any) -> tuple[Tensor, Tensor]:  # noqa: A002
    """(sign, log|det|) of each square matrix."""
    x = _square(_t(input), "linalg.slogdet")
    return _det_sign(x), _logabsdet(x)


def logdet(matrix: Any) -> Tensor:
    """log(det) of Hermitian positive-definite matrices (via log|det|)."""
    return slogdet(matrix)[1]


def _solve_fwd(a, b):
    out = _lapack(np.linalg.solve, "linalg.solve")(a, b)
    return out, (a, out)


def _solve_vjp_a(g, r):
    a, x = r
    gb = np.linalg.solve(_mt(a), g)
    return -gb @ _mt(x)


_solve = defop("matrix_solve", _solve_fwd, _solve_vjp_a,
               lambda g, r: np.linalg.solve(_mt(r[0]), g))


def solve(matrix: Any, rhs: Any, adjoint: bool = False) -> Tensor:
    """X with matrix @ X = rhs (rhs is [..., M, K])."""
    a, b = ops._pair(matrix, rhs)
    _square(a, "linalg.solve")
    if b.ndim < 2 or b.shape[-2] != a.shape[-1]:
        raise ValueError(f"linalg.solve: `rhs` must be [..., {a.shape[-1]}, K]. "
                         f"Received shape {b.shape}.")
    return _solve(matrix_transpose(a) if adjoint else a, b)


def _phi(x: np.ndarray) -> np.ndarray:
    """Lower triangle with the diagonal halved."""
    out = np.tril(x)
    d = np.einsum("...ii->...i", out)
    d *= 0.5
    return out


def _cholesky_fwd(a):
    low = _lapack(np.linalg.cholesky, "linalg.cholesky")(a)
    return low, low


def _cholesky_vjp(g, low):
    linv = np.linalg.inv(low)
    s = _mt(linv) @ _phi(_mt(low) @ g) @ linv
    return 0.5 * (s + _mt(s))


_cholesky = defop("cholesky", _cholesky_fwd, _cholesky_vjp)


def cholesky(input: Any) -> Tensor:  # noqa: A002
    """Lower-triangular L with L @ L^T = input (symmetric positive definite)."""
    return _cholesky(_square(_t(input), "linalg.cholesky"))


def _tri_solve_fwd(a, b, lower):
    tri = np.tril(a) if lower else np.triu(a)
    out = np.linalg.solve(tri, b)
    return out, (tri, out, lower)


def _tri_vjp_a(g, r):
    tri, x, lower = r
    gb = np.linalg.solve(_mt(tri), g)
    full = -gb @ _mt(x)
    return np.tril(full) if lower else np.triu(full)


_tri_solve = defop("matrix_triangular_solve", _tri_solve_fwd, _tri_vjp_a,
                   lambda g, r: np.linalg.solve(_mt(r[0]), g))


def triangular_solve(matrix: Any, rhs: Any, lower: bool = True, adjoint: bool = False) -> Tensor:
    """Solves with the lower (or upper) triangle of `matrix`."""
    a, b = ops._pair(matrix, rhs)
    if adjoint:
        a, lower = matrix_transpose(a), not lower
    return _tri_solve(_square(a, "linalg.triangular_solve"), b, lower=bool(lower))


def cholesky_solve(chol: Any, rhs: Any) -> Tensor:
    """X with (chol @ chol^T) X = rhs, from a Cholesky factor."""
    y = triangular_solve(chol, rhs, lower=True)
    return triangular_solve(chol, y, lower=True, adjoint=True)


# ----------------------------------------------------------- composites


def matrix_transpose(a: Any, conjugate: bool = False) -> Tensor:
    """Swaps the last two axes."""
    a = _t(a)
    if a.ndim < 2:
        raise ValueError(f"matrix_transpose needs rank >= 2. Received shape {a.shape}.")
    return ops.swapaxes(a, -1, -2)


adjoint = matrix_transpose


def matvec(a: Any, b: Any, transpose_a: bool = False) -> Tensor:
    """Matrix-vector product over the last axes: a @ b[..., None]."""
    return ops.squeeze(ops.matmul(a, ops.expand_dims(b, -1), transpose_a=transpose_a), -1)


def diag_part(input: Any, k: int = 0) -> Tensor:  # noqa: A002
    """The main diagonal of each matrix in the last two axes."""
    x = _t(input)
    n = builtins.min(x.shape[-2], x.shape[-1])
    i = np.arange(n)
    return ops.getitem(x, (Ellipsis, i, i))


def diag(diagonal: Any) -> Tensor:
    """A (batch of) square matrices with `diagonal` on the diagonal."""
    d = _t(diagonal)
    return ops.multiply(ops.expand_dims(d, -1), np.eye(d.shape[-1], dtype=d.dtype))


def set_diag(input: Any, diagonal: Any) -> Tensor:  # noqa: A002
    """`input` with its main diagonal replaced by `diagonal`."""
    x = _t(input)
    mask = np.eye(x.shape[-2], x.shape[-1], dtype=x.dtype)
    return ops.add(ops.multiply(x, 1 - mask), diag(diagonal)[..., :x.shape[-2], :x.shape[-1]])


def trace(x: Any) -> Tensor:
    """Sum of the main diagonal of each matrix."""
    return ops.reduce_sum(diag_part(x), axis=-1)


def band_part(input: Any, num_lower: int, num_upper: int) -> Tensor:  # noqa: A002
    """Keeps the band num_lower below and num_upper above the diagonal (-1: all)."""
    x = _t(input)
    m, n = x.shape[-2:]
    i, j = np.arange(m)[:, None], np.arange(n)[None, :]
    keep = ((int(num_lower) < 0) | (i - j <= int(num_lower))) & (
        (int(num_upper) < 0) | (j - i <= int(num_upper)))
    return ops.multiply(x, keep.astype(x.dtype))


def norm(tensor: Any, ord: Any = "euclidean", axis: Any = None,  # noqa: A002
         keepdims: bool = False) -> Tensor:
    """Vector norms (1, 2, inf, p) and matrix norms ('fro', 1, inf over two axes)."""
    x = _t(tensor)
    axis = ops._norm_axis(axis)
    if ord in ("euclidean", "fro") or (ord == 2 and not isinstance(axis, tuple)):
        return ops.sqrt(ops.reduce_sum(ops.square(x), axis=axis, keepdims=keepdims))
    if isinstance(axis, tuple) and len(axis) == 2 and ord in (1, np.inf):
        rows, cols = axis if ord == 1 else axis[::-1]
        inner = ops.reduce_sum(ops.abs(x), axis=rows, keepdims=True)
        return _squeeze_axes(ops.reduce_max(inner, axis=cols, keepdims=True), axis, keepdims)
    if ord == np.inf:
        return ops.reduce_max(ops.abs(x), axis=axis, keepdims=keepdims)
    if isinstance(ord, int | float) and ord > 0:
        p = float(ord)
        total = ops.reduce_sum(ops.power(ops.abs(x), p), axis=axis, keepdims=keepdims)
        return ops.power(total, 1.0 / p)
    raise ValueError(f"linalg.norm: unsupported `ord`={ord!r} for axis={axis!r}. Use "
                     "'euclidean', 'fro', a positive p, or np.inf.")


def _squeeze_axes(x: Tensor, axis: tuple, keepdims: bool) -> Tensor:
    return x if keepdims else ops.squeeze(x, tuple(a % x.ndim for a in axis))


def l2_normalize(x: Any, axis: Any = None, epsilon: float = 1e-12) -> Tensor:
    """x / sqrt(max(sum(x ** 2, axis), epsilon))."""
    from distflow.math_ops import l2_normalize as impl

    return impl(x, axis, epsilon)


def cross(a: Any, b: Any) -> Tensor:
    """Cross product of 3-vectors in the last axis."""
    a, b = ops._pair(a, b)
    ax, ay, az = (a[..., i] for i in builtins.range(3))
    bx, by, bz = (b[..., i] for i in builtins.range(3))
    return ops.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def eye(num_rows: int, num_columns: int | None = None, batch_shape: Any = None,
        dtype: Any = np.float32) -> Tensor:
    """Identity matrices (same as the top-level `eye`)."""
    return _eye(num_rows, num_columns, batch_shape, dtype)


# ---------------------------------------------------- forward-only decompositions


_decomposition = defop("linalg_decomposition",
                      lambda a, fn, index: (np.asarray(fn(a)[index]), None), None)


def _no_gradient_outputs(x: Tensor, fn: Any, count: int) -> list[Tensor]:
    """The outputs of `fn(x)` as tensors through which differentiating raises (no VJP)."""
    return [_decomposition(x, fn=fn, index=i) for i in builtins.range(count)]


def _eigvals_fwd(a):
    w, v = np.linalg.eigh(a)
    return w, v


def _eigvals_vjp(g, v):
    """V diag(g) V^T on the lower triangle (eigh reads only that one, as LAPACK and TF)."""
    full = (v * g[..., None, :]) @ _mt(v)
    return _phi(full + _mt(full))


_eigvals = defop("self_adjoint_eigvals", _eigvals_fwd, _eigvals_vjp)


def eigh(tensor: Any) -> tuple[Tensor, Tensor]:
    """(eigenvalues ascending, eigenvectors in columns) of symmetric matrices.

    The eigenvalues are differentiable (V diag(g) V^T, on the lower triangle that
    eigh reads, as TF); the eigenvectors are not here
    (TF's eigenvector gradient is not implemented: differentiating them raises).
    """
    x = _square(_t(tensor), "linalg.eigh")
    return _eigvals(x), _no_gradient_outputs(x, np.linalg.eigh, 2)[1]


def eigvalsh(tensor: Any) -> Tensor:
    """Eigenvalues of symmetric matrices (from the lower triangle), ascending."""
    return _eigvals(_square(_t(tensor), "linalg.eigvalsh"))


def _svd_values_fwd(a):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return s, (u, vt)


_svd_values = defop("svd_values", _svd_values_fwd,
                    lambda g, r: (r[0] * g[..., None, :]) @ r[1])  # U diag(g) V^T


def svd(tensor: Any, full_matrices: bool = False, compute_uv: bool = True) -> Any:
    """(s, u, v) as TF orders them (tensor = u @ diag(s) @ v^T); s only without uv.

    The singular values are differentiable (U diag(g) V^T); u and v are not here
    (differentiating them raises).
    """
    x = _t(tensor)
    s = _svd_values(x)
    if not compute_uv:
        return s
    u, vt = _no_gradient_outputs(
        x, lambda a: np.linalg.svd(a, full_matrices=full_matrices)[::2], 2)
    return s, u, matrix_transpose(vt)


Qr = namedtuple("Qr", ["q", "r"])


def qr(input: Any, full_matrices: bool = False) -> Qr:  # noqa: A002
    """QR decomposition (no gradient: differentiating it raises)."""
    mode = "complete" if full_matrices else "reduced"
    q, r = _no_gradient_outputs(_t(input), lambda a: np.linalg.qr(a, mode=mode), 2)
    return Qr(q, r)


def pinv(a: Any, rcond: Any = None) -> Tensor:
    """Moore-Penrose pseudo-inverse (no gradient: differentiating it raises)."""
    x = _t(a)
    if rcond is None:
        rcond = 10 * builtins.max(x.shape[-2:]) * np.finfo(x.dtype).eps
    return _no_gradient_outputs(
        x, lambda m: (np.linalg.pinv(m, rcond=rcond).astype(m.dtype),), 1)[0]


def lstsq(matrix: Any, rhs: Any, l2_regularizer: float = 0.0, fast: bool = True) -> Tensor:
    """Least-squares solution of matrix @ X = rhs (normal equations, differentiable)."""
    a, b = ops._pair(matrix, rhs)
    gram = ops.matmul(a, a, transpose_a=True)
    if l2_regularizer:
        gram = ops.add(gram, l2_regularizer * np.eye(a.shape[-1], dtype=a.dtype))
    return solve(gram, ops.matmul(a, b, transpose_a=True))


# ------------------------------------------------------------ more tf.linalg


def global_norm(t_list: list) -> Tensor:
    """sqrt of the sum of squares of every entry of every tensor (None skipped)."""
    from distflow.array_ops import global_norm as impl

    return impl(t_list)


def normalize(tensor: Any, ord: Any = "euclidean", axis: Any = None,  # noqa: A002
              name: str | None = None) -> tuple[Tensor, Tensor]:
    """(tensor / norm, norm) with the norm kept for broadcasting."""
    n = norm(tensor, ord=ord, axis=axis, keepdims=True)
    return ops.divide(tensor, n), n


def matrix_rank(a: Any, tol: Any = None, validate_args: bool = False) -> Tensor:
    """Number of singular values above `tol` (default eps * max(m, n) * max singular value)."""
    x = as_array(a)
    s = np.linalg.svd(x, compute_uv=False)
    if tol is None:
        tol = s.max(axis=-1, keepdims=True) * builtins.max(x.shape[-2:]) * np.finfo(x.dtype).eps
    return Tensor._wrap((s > tol).sum(axis=-1).astype(np.int32))


def tensor_diag(diagonal: Any) -> Tensor:
    """A tensor of rank 2k with `diagonal` (rank k) on its diagonal."""
    d = _t(diagonal)
    n = d.size
    flat = diag(ops.reshape(d, [n]))
    return ops.reshape(flat, list(d.shape) * 2)


def tensor_diag_part(input: Any) -> Tensor:  # noqa: A002
    """The diagonal of a rank-2k tensor whose shape is s + s."""
    x = _t(input)
    half = x.ndim // 2
    if x.ndim % 2 or x.shape[:half] != x.shape[half:]:
        raise ValueError(f"tensor_diag_part needs a shape of the form s + s. Received {x.shape}.")
    n = int(np.prod(x.shape[:half], dtype=np.int64))
    return ops.reshape(diag_part(ops.reshape(x, [n, n])), list(x.shape[:half]))


def tridiagonal_matmul(diagonals: Any, rhs: Any, diagonals_format: str = "compact") -> Tensor:
    """Product of a tridiagonal matrix ([..., 3, M]: super, main, sub) with rhs [..., M, N]."""
    if diagonals_format != "compact":
        raise ValueError("tridiagonal_matmul supports diagonals_format='compact' only.")
    d = _t(diagonals)
    sup, main, sub = d[..., 0, :], d[..., 1, :], d[..., 2, :]
    m = d.shape[-1]
    upper = ops.multiply(ops.expand_dims(sup, -1), np.eye(m, k=1, dtype=d.dtype))
    middle = ops.multiply(ops.expand_dims(main, -1), np.eye(m, dtype=d.dtype))
    lower = ops.multiply(ops.expand_dims(sub, -1), np.eye(m, k=-1, dtype=d.dtype))
    return ops.matmul(ops.add(ops.add(upper, middle), lower), rhs)


def tridiagonal_solve(diagonals: Any, rhs: Any, diagonals_format: str = "compact",
                      transpose_rhs: bool = False, conjugate_rhs: bool = False,
                      partial_pivoting: bool = True) -> Tensor:
    """Solves a tridiagonal system given in compact form ([..., 3, M])."""
    if diagonals_format != "compact":
        raise ValueError("tridiagonal_solve supports diagonals_format='compact' only.")
    d = _t(diagonals)
    m = d.shape[-1]
    rows = np.arange(m)
    a = np.zeros(d.shape[:-2] + (m, m), d.dtype)
    a[..., rows[:-1], rows[1:]] = d.value[..., 0, :-1]
    a[..., rows, rows] = d.value[..., 1, :]
    a[..., rows[1:], rows[:-1]] = d.value[..., 2, 1:]
    b = _t(rhs)
    if transpose_rhs:
        b = matrix_transpose(b)
    out = solve(Tensor._wrap(a), b)
    return matrix_transpose(out) if transpose_rhs else out


def _lu_np(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed LU with partial pivoting: rows p of a = L @ U (batched)."""
    lu = np.array(a, copy=True)
    n = lu.shape[-1]
    perm = np.broadcast_to(np.arange(n), lu.shape[:-1]).copy()
    flat, fperm = lu.reshape(-1, n, n), perm.reshape(-1, n)
    for k in builtins.range(n):
        piv = k + np.argmax(np.abs(flat[:, k:, k]), axis=1)
        idx = np.arange(flat.shape[0])
        rows_k, rows_p = flat[idx, k].copy(), flat[idx, piv].copy()
        flat[idx, k], flat[idx, piv] = rows_p, rows_k
        pk, pp = fperm[idx, k].copy(), fperm[idx, piv].copy()
        fperm[idx, k], fperm[idx, piv] = pp, pk
        pivot = flat[:, k, k][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            flat[:, k + 1:, k] /= pivot
        flat[:, k + 1:, k + 1:] -= flat[:, k + 1:, k:k + 1] * flat[:, k:k + 1, k + 1:]
    return flat.reshape(lu.shape), fperm.reshape(perm.shape)


def lu(input: Any, output_idx_type: Any = np.int32) -> tuple[Tensor, Tensor]:  # noqa: A002
    """(lu, p): L (unit lower, below the diagonal) and U packed in one matrix, and the row
    permutation p with input[p] = L @ U (no gradient)."""
    x = _t(input)
    packed, perm = _no_gradient_outputs(x, _lu_np, 2)
    Lu = namedtuple("Lu", ["lu", "p"])
    return Lu(packed, ops.cast(perm, output_idx_type))


def _unpack_lu(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = packed.shape[-1]
    lower = np.tril(packed, -1) + np.eye(n, dtype=packed.dtype)
    return lower, np.triu(packed)


def lu_reconstruct(lower_upper: Any, perm: Any, validate_args: bool = False) -> Tensor:
    """The matrix whose `lu` gave (lower_upper, perm)."""
    lower, upper = _unpack_lu(as_array(lower_upper))
    prod = lower @ upper
    p = as_array(perm)
    out = np.empty_like(prod)
    np.put_along_axis(out, p[..., None].astype(np.int64), prod, axis=-2)
    return Tensor._wrap(out)


def lu_solve(lower_upper: Any, perm: Any, rhs: Any, validate_args: bool = False) -> Tensor:
    """X with A @ X = rhs, from A's `lu` factors."""
    lower, upper = _unpack_lu(as_array(lower_upper))
    b = np.take_along_axis(as_array(rhs), as_array(perm)[..., None].astype(np.int64), axis=-2)
    return Tensor._wrap(np.linalg.solve(upper, np.linalg.solve(lower, b)))


def lu_matrix_inverse(lower_upper: Any, perm: Any, validate_args: bool = False) -> Tensor:
    """A^-1 from A's `lu` factors."""
    lu_arr = as_array(lower_upper)
    eye_b = np.broadcast_to(np.eye(lu_arr.shape[-1], dtype=lu_arr.dtype), lu_arr.shape)
    return lu_solve(lu_arr, perm, eye_b)


_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)


def _expm_scale(a: np.ndarray) -> int:
    """Squarings needed so that the 1-norm is within the Pade(13) range (Higham 2005)."""
    norm1 = float(np.abs(a.astype(np.float64)).sum(axis=-2).max()) if a.size else 0.0
    return builtins.max(0, int(np.ceil(np.log2(norm1 / 5.371920351148152)))) if norm1 > 0 else 0


def _poly(terms: list[tuple[float, Any]]) -> Tensor:
    total = None
    for coeff, m in terms:
        term = ops.multiply(m, coeff)
        total = term if total is None else ops.add(total, term)
    return total


def expm(input: Any) -> Tensor:  # noqa: A002
    """The matrix exponential of each square matrix: scaling and squaring with the
    degree-13 Pade approximant (Higham 2005), built from differentiable ops."""
    a = _square(_t(input), "linalg.expm")
    s = _expm_scale(a.value)
    b = _PADE13
    x = ops.multiply(a, a.dtype.type(2.0 ** -s))
    ident = np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape)
    x2 = ops.matmul(x, x)
    x4 = ops.matmul(x2, x2)
    x6 = ops.matmul(x4, x2)
    u = ops.matmul(x, ops.add(ops.matmul(x6, _poly([(b[13], x6), (b[11], x4), (b[9], x2)])),
                              _poly([(b[7], x6), (b[5], x4), (b[3], x2), (b[1], ident)])))
    v = ops.add(ops.matmul(x6, _poly([(b[12], x6), (b[10], x4), (b[8], x2)])),
                _poly([(b[6], x6), (b[4], x4), (b[2], x2), (b[0], ident)]))
    r = solve(ops.subtract(v, u), ops.add(v, u))
    for _ in builtins.range(s):
        r = ops.matmul(r, r)
    return r



def _sqrtm_steps(a: np.ndarray, limit: int = 60) -> int:
    """How many Denman-Beavers steps bring the iteration to float precision."""
    y, z = a.astype(np.float64), np.broadcast_to(np.eye(a.shape[-1]), a.shape).copy()
    for k in builtins.range(1, limit + 1):
        y, z = 0.5 * (y + np.linalg.inv(z)), 0.5 * (z + np.linalg.inv(y))
        if np.max(np.abs(y @ y - a)) <= 1e-12 * builtins.max(1.0, float(np.max(np.abs(a)))):
            return k
    raise ValueError("linalg.sqrtm did not converge: the matrix needs eigenvalues off the "
                     "closed negative real axis.")


def sqrtm(input: Any) -> Tensor:  # noqa: A002
    """The principal square root of each square matrix (Denman-Beavers iteration,
    differentiable: the gradient follows the iteration)."""
    a = _square(_t(input), "linalg.sqrtm")
    y, z = a, _t(np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape).copy())
    for _ in builtins.range(_sqrtm_steps(a.value)):
        y, z = ops.multiply(ops.add(y, inv(z)), 0.5), ops.multiply(ops.add(z, inv(y)), 0.5)
    return y


matrix_square_root = sqrtm


from distflow._naming import accept_names as _accept_names  # noqa: E402

_accept_names(globals())  # every op takes TF's name= keyword


def eigh_tridiagonal(alpha: Any, beta: Any, eigvals_only: bool = True, select: str = "a",
                     select_range: Any = None, tol: Any = None,
                     name: str | None = None) -> Any:
    """Eigenvalues (ascending), and with `eigvals_only=False` eigenvectors (columns), of the
    symmetric tridiagonal matrix with diagonal `alpha` and off-diagonal `beta`.

    `select`: `"a"` all, `"v"` those in the half-open interval `(lo, hi]`, `"i"` those
    of indices `lo..hi`, with `select_range = (lo, hi)`.
    """
    a, b = ops._pair(alpha, beta)
    if a.ndim != 1 or b.ndim != 1 or b.shape[0] != a.shape[0] - 1:
        raise ValueError(f"alpha must be [n] and beta [n - 1]. Received: {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    upper = ops.pad(diag(b), [[0, 1], [1, 0]])
    dense = diag(a) + upper + ops.transpose(upper)
    values, vectors = eigh(dense) if not eigvals_only else (eigvalsh(dense), None)
    keep = _selected(values.numpy(), select, select_range)
    if keep is not None:
        values = ops.gather(values, keep)
        vectors = None if vectors is None else ops.gather(vectors, keep, axis=1)
    return values if eigvals_only else (values, vectors)


def _selected(values: np.ndarray, select: str, select_range: Any) -> np.ndarray | None:
    if select == "a":
        return None
    lo, hi = (float(v) for v in np.asarray(select_range).reshape(2))
    if select == "v":
        return np.flatnonzero((values > lo) & (values <= hi))
    if select == "i":
        return np.arange(int(lo), int(hi) + 1)
    raise ValueError(f"select must be 'a', 'v' or 'i'. Received: select={select!r}")


# The LinearOperator family lives in its own modules (they build on this one).
_OPERATORS = {name: "linalg_operators" for name in (
    "LinearOperator", "LinearOperatorFullMatrix", "LinearOperatorDiag", "LinearOperatorIdentity",
    "LinearOperatorScaledIdentity", "LinearOperatorLowerTriangular", "LinearOperatorZeros")}
_OPERATORS.update({name: "linalg_operators_more" for name in (
    "LinearOperatorComposition", "LinearOperatorAdjoint", "LinearOperatorInversion",
    "LinearOperatorBlockDiag", "LinearOperatorBlockLowerTriangular", "LinearOperatorKronecker",
    "LinearOperatorToeplitz", "LinearOperatorTridiag", "LinearOperatorHouseholder",
    "LinearOperatorPermutation", "LinearOperatorLowRankUpdate", "banded_triangular_solve")})
_OPERATORS.update({name: "linalg_circulant" for name in (
    "LinearOperatorCirculant", "LinearOperatorCirculant2D", "LinearOperatorCirculant3D")})


def __getattr__(name: str) -> Any:
    module = _OPERATORS.get(name)
    if module is None:
        raise AttributeError(f"module 'distflow.linalg' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"distflow.{module}"), name)
