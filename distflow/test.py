"""`tf.test`: TF's `TestCase` assertions over NumPy, `compute_gradient`, and the
build queries (distflow is a CPU-only NumPy build: no CUDA, ROCm, GPU or XLA)."""

from __future__ import annotations

import unittest
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distflow.tensor import GradientTape, Tensor, as_array

main = unittest.main


def _np(x: Any) -> np.ndarray:
    return np.asarray(as_array(x)) if isinstance(x, Tensor) else np.asarray(x)


class TestCase(unittest.TestCase):
    """`unittest.TestCase` with TF's array assertions (tensors or array-likes)."""

    def evaluate(self, tensors: Any) -> Any:
        """NumPy values of a tensor or a nest of tensors."""
        from distflow import nest

        return nest.map_structure(_np, tensors)

    def assertAllClose(self, a: Any, b: Any, rtol: float = 1e-6, atol: float = 1e-6,  # noqa: N802
                       msg: str | None = None) -> None:
        """Elementwise |a - b| <= atol + rtol * |b| (TF's defaults), shapes equal."""
        np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol, err_msg=msg or "")

    def assertAllEqual(self, a: Any, b: Any, msg: str | None = None) -> None:  # noqa: N802
        """Same shape and values."""
        np.testing.assert_array_equal(_np(a), _np(b), err_msg=msg or "", strict=False)
        self.assertEqual(_np(a).shape, _np(b).shape, msg)

    def assertAllGreater(self, a: Any, comparison_target: Any) -> None:  # noqa: N802
        """Every element of `a` is greater than `comparison_target`."""
        self.assertTrue(np.all(_np(a) > _np(comparison_target)), f"{_np(a)} not all > "
                        f"{_np(comparison_target)}")

    def assertAllLess(self, a: Any, comparison_target: Any) -> None:  # noqa: N802
        """Every element of `a` is less than `comparison_target`."""
        self.assertTrue(np.all(_np(a) < _np(comparison_target)), f"{_np(a)} not all < "
                        f"{_np(comparison_target)}")

    def assertShapeEqual(self, a: Any, b: Any, msg: str | None = None) -> None:  # noqa: N802
        """`a` (an array) and `b` (a tensor) have the same shape."""
        self.assertEqual(tuple(np.shape(_np(a))), tuple(_np(b).shape), msg)

    def assertDTypeEqual(self, target: Any, expected_dtype: Any) -> None:  # noqa: N802
        """`target`'s dtype is `expected_dtype`."""
        self.assertEqual(_np(target).dtype, np.dtype(expected_dtype))


def compute_gradient(f: Callable, x: Sequence[Any], delta: float | None = None
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The theoretical (from the VJPs) and numerical (central differences) Jacobians of
    `f` at `x`, one [y.size, x_i.size] matrix per argument, as TF's."""
    xs = [np.array(_np(v), dtype=np.float64) for v in x]
    delta = 1e-3 if delta is None else delta
    y = _np(f(*[Tensor._wrap(v) for v in xs]))
    return _theoretical(f, xs, y.size), _numerical(f, xs, y.size, delta)


def _theoretical(f: Callable, xs: list, ny: int) -> list[np.ndarray]:
    jac = [np.zeros((ny, v.size)) for v in xs]
    for row in range(ny):
        ts = [Tensor._wrap(v.copy()) for v in xs]
        with GradientTape() as tape:
            tape.watch(ts)
            y = f(*ts)
        seed = np.zeros(ny)
        seed[row] = 1.0
        grads = tape.gradient(y, ts, output_gradients=seed.reshape(_np(y).shape))
        for j, g in enumerate(grads):
            if g is not None:
                jac[j][row] = _np(g).ravel()
    return jac


def _numerical(f: Callable, xs: list, ny: int, delta: float) -> list[np.ndarray]:
    jac = [np.zeros((ny, v.size)) for v in xs]
    for j, v in enumerate(xs):
        for col in range(v.size):
            up, down = [a.copy() for a in xs], [a.copy() for a in xs]
            up[j].flat[col] += delta
            down[j].flat[col] -= delta
            diff = _np(f(*map(Tensor._wrap, up))) - _np(f(*map(Tensor._wrap, down)))
            jac[j][:, col] = diff.ravel() / (2 * delta)
    return jac


def is_gpu_available(cuda_only: bool = False, min_cuda_compute_capability: Any = None) -> bool:
    """False: distflow runs on the CPU only."""
    return False


def gpu_device_name() -> str:
    """'' (no GPU)."""
    return ""


def is_built_with_cuda() -> bool:
    """False (a NumPy build)."""
    return False


is_built_with_gpu_support = is_built_with_rocm = is_built_with_xla = is_built_with_cuda
