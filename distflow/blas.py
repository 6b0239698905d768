"""Direct calls into the BLAS library NumPy loaded (OpenBLAS, as NumPy's wheels ship it).

NumPy exposes no BLAS call with GEMM's `beta`, so `c += alpha * a.T @ b` costs a
product into a new array and a second pass over `c`. `gemm_accumulate` makes it one
call of the loaded library's `cblas_?gemm` through ctypes (no compiled code of our
own). Without such a library (another BLAS, or none found) it returns False and the
caller takes its NumPy path.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_found: dict[str, Callable | None] = {}
_KINDS = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


def loaded_libraries(word: str = "blas") -> list[str]:
    """Paths of the shared libraries loaded in this process whose path contains `word`."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            return sorted({line.split()[-1] for line in f
                           if word in line.lower() and "/" in line})
    except OSError:
        return []


def library_symbol(names: list[str]) -> Callable | None:
    """The first of `names` that a loaded BLAS library exports, or None."""
    for path in loaded_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                return fn
    return None


def _gemm(kind: str) -> Callable | None:
    """`cblas_{kind}gemm` of the loaded OpenBLAS (64-bit integers), found once."""
    if kind not in _found:
        fn = library_symbol([f"scipy_cblas_{kind}gemm64_", f"cblas_{kind}gemm64_"])
        if fn is not None:
            real = ctypes.c_float if kind == "s" else ctypes.c_double
            i64, ptr = ctypes.c_int64, ctypes.c_void_p
            fn.restype = None
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64, real,
                           ptr, i64, ptr, i64, real, ptr, i64]
        _found[kind] = fn
    return _found[kind]


def _rows(x: np.ndarray) -> int | None:
    """The row stride of a 2-D array in elements when its rows are contiguous, else None."""
    if x.ndim != 2 or x.strides[1] != x.itemsize or x.strides[0] % x.itemsize:
        return None
    return max(x.strides[0] // x.itemsize, x.shape[1], 1)


def gemm_accumulate(a: np.ndarray, b: np.ndarray, c: np.ndarray, alpha: float) -> bool:
    """`c += alpha * a.T @ b` in place, as one GEMM of the loaded BLAS (`beta = 1`).

    `a` is (k, m), `b` (k, n), `c` (m, n) C-contiguous, all float32 or all float64,
    rows contiguous. The result equals `c - lr * (a.T @ b)` (alpha = -lr) up to one
    rounding: BLAS adds the scaled product to `c` with a fused multiply-add.

    Returns:
        True when it ran; False (nothing written) when the arrays do not qualify or no
        such BLAS is loaded.
    """
    kind = _KINDS.get(c.dtype)
    if kind is None or a.dtype != c.dtype or b.dtype != c.dtype or not c.flags.c_contiguous \
            or not c.flags.writeable or c.ndim != 2 or a.shape[1:] != c.shape[:1] \
            or b.shape != (a.shape[0], c.shape[1]):
        return False
    lda, ldb, gemm = _rows(a), _rows(b), _gemm(kind)
    if lda is None or ldb is None or gemm is None or 0 in c.shape:
        return False
    (k, m), n = a.shape, c.shape[1]
    gemm(_ROW_MAJOR, _TRANS, _NO_TRANS, m, n, k, alpha, a.ctypes.data, lda,
         b.ctypes.data, ldb, 1.0, c.ctypes.data, max(n, 1))
    return True
