"""Jacobians from a recorded tape: one backward pass per output element.

`GradientTape.jacobian`, `batch_jacobian`, `stop_recording` and `reset`
delegate here. A backward pass seeded with a one-hot cotangent gives one row
of the Jacobian, so a target of n elements costs n passes over the tape (TF
vectorises these passes with pfor; the results are the same).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from distflow.tensor import Tensor, _flatten, _tape_stack, _unflatten


def _check_mode(unconnected_gradients: str) -> None:
    if unconnected_gradients not in ("none", "zero"):
        raise ValueError("`unconnected_gradients` must be 'none' or 'zero'. "
                         f"Received: unconnected_gradients={unconnected_gradients!r}")


def _rows(tape, target: Tensor, seeds: Iterator[np.ndarray], sources: list) -> list[list]:
    """Runs one backward pass per seed; returns per-source lists of gradients (or None)."""
    if tape._used:
        raise RuntimeError("A non-persistent GradientTape can only be used to compute one set "
                           "of gradients. Use GradientTape(persistent=True).")
    nodes = [tape._source_node(s) for s in sources]
    wanted = {n for n in nodes if n is not None}
    target_node = tape._source_node(target)
    rows: list[list] = [[] for _ in sources]
    for seed in seeds:
        grads = tape._backprop([(target_node, seed)], wanted) if target_node else {}
        for i, node in enumerate(nodes):
            rows[i].append(grads.get(node))
    return rows


def _assemble(rows: list, shape: tuple, src: Tensor, zero: bool) -> Tensor | None:
    if all(r is None for r in rows) and not zero:
        return None
    full = [np.zeros(src.shape, src.dtype) if r is None else r for r in rows]
    out = np.stack(full).reshape(shape) if full else np.zeros(shape, src.dtype)
    return Tensor._wrap(out.astype(src.dtype, copy=False))


def jacobian(tape, target: Any, sources: Any, unconnected_gradients: str = "none") -> Any:
    """d target[i...] / d source[j...], shaped target.shape + source.shape per source."""
    _check_mode(unconnected_gradients)
    target = target if isinstance(target, Tensor) else Tensor(target)
    flat = _flatten(sources)
    n = target.size

    def seeds():
        for k in range(n):
            seed = np.zeros(n, target.dtype)
            seed[k] = 1
            yield seed.reshape(target.shape)

    rows = _rows(tape, target, seeds(), flat)
    out = [_assemble(r, target.shape + s.shape, s, unconnected_gradients == "zero")
           for r, s in zip(rows, flat)]
    _finish(tape)
    return _unflatten(sources, iter(out))


def batch_jacobian(tape, target: Tensor, source: Tensor,
                   unconnected_gradients: str = "none") -> Tensor | None:
    """Per-example Jacobians: [b, *target.shape[1:], *source.shape[1:]].

    Assumes example i of `target` depends only on example i of `source`, as TF does.
    """
    _check_mode(unconnected_gradients)
    if target.ndim < 1 or source.ndim < 1 or target.shape[0] != source.shape[0]:
        raise ValueError(f"batch_jacobian needs target and source with the same first "
                         f"(batch) dimension. Received shapes {target.shape} and {source.shape}.")
    b, inner = target.shape[0], int(np.prod(target.shape[1:], dtype=np.int64))

    def seeds():
        for k in range(inner):
            seed = np.zeros((b, inner), target.dtype)
            seed[:, k] = 1
            yield seed.reshape(target.shape)

    rows = _rows(tape, target, seeds(), [source])[0]
    _finish(tape)
    if all(r is None for r in rows) and unconnected_gradients != "zero":
        return None
    full = [np.zeros(source.shape, source.dtype) if r is None else r for r in rows]
    per = np.stack(full, axis=1) if full else np.zeros((b, 0) + source.shape[1:], source.dtype)
    return Tensor._wrap(per.reshape((b,) + target.shape[1:] + source.shape[1:]).astype(
        source.dtype, copy=False))


def _finish(tape) -> None:
    if not tape.persistent:
        tape._release()


@contextlib.contextmanager
def stop_recording(tape) -> Iterator[None]:
    """Ops inside the block are not recorded on `tape` (it must be active)."""
    stack = _tape_stack()
    if tape not in stack:
        raise ValueError("Tape must be recording to call stop_recording(): use it inside the "
                         "tape's `with` block.")
    i = stack.index(tape)
    stack.remove(tape)
    try:
        yield
    finally:
        stack.insert(i, tape)


def reset(tape) -> None:
    """Forgets everything recorded so far; the tape keeps recording if active."""
    tape._nodes = []
    tape._leaves = {}
    tape._touched = {}
    tape._used = False
