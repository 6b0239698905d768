"""Folds a plain SGD update into the product that computes its gradient.

A traced training step computes a Dense kernel's gradient `dW = x.T @ g` (the
gradient of `x @ W` for `W`) and later `W -= lr * dW`: a product into a new array,
then a second pass over W's size. When the update is plain SGD the two are one GEMM
of the loaded BLAS with `beta = 1` (`blas.gemm_accumulate`): W is written once and the
gradient never exists. The result equals the unfolded update up to one rounding (BLAS
adds with a fused multiply-add).

`folded_steps` picks the product steps it may fold, at plan-build time:

- the update kernel offers a fold for that gradient (`gradient_fold`, see
  `distflow.update_fold`);
- the gradient is the second-input gradient of a 2-D `matmul` whose second input is
  that variable's read, and nothing but the update uses it or fetches it;
- nothing after the product reads a value that may share the variable's buffer (its
  read, a residual holding it, the output of an op that may return a view of it);
- only primitive and gradient kernels run between the product and the update (no host
  call that could read the variable).

At run time the folded kernel asks the fold for this step's factor: None (not plain
SGD this step, a strategy's override, no such BLAS) computes the gradient as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distflow import blas, intra_op
from distflow.graph import core
from distflow.update_fold import APPLIED, GradientFold

_BETWEEN = ("primitive", "vjp", "variable")  # kernels that cannot read a variable


def folded_steps(steps: list, fetched: list, fresh: Callable[[core.Operation], bool]
                 ) -> dict[int, Callable]:
    """{product step index: folded kernel} for the plan's `steps` (op, ins, outs)."""
    producer = {name: j for j, (_, _, outs) in enumerate(steps) for name in outs}
    uses: dict[str, int] = {}
    for _, ins, _ in steps:
        for s in ins:
            uses[s] = uses.get(s, 0) + 1
    chosen: dict[int, Callable] = {}
    for j_update, (op, ins, _) in enumerate(steps):
        offer = getattr(op._kernel, "gradient_fold", None)
        if offer is None:
            continue
        for i, slot in enumerate(ins):
            j = producer.get(slot)
            fold = offer(i) if j is not None else None
            if fold is not None and uses[slot] == 1 and slot not in fetched and \
                    _foldable(steps, j, j_update, fold, fetched, fresh):
                chosen[j] = _folded_kernel(steps[j][0], fold)
    return chosen


def _foldable(steps: list, j: int, j_update: int, fold: GradientFold, fetched: list,
              fresh: Callable) -> bool:
    op, ins, _ = steps[j]
    forward = op.attrs.get("forward") if op.kind == "vjp" else None
    if forward is None or op.type != "matmul_grad" or op.attrs.get("input") != 1:
        return False
    a, w = forward.inputs
    if w.op.kind != "variable" or w.op.attrs.get("variable") is not fold.variable or \
            a.shape.rank != 2 or w.shape.rank != 2 or a.dtype != w.dtype:
        return False
    if any(steps[k][0].kind not in _BETWEEN for k in range(j + 1, j_update)):
        return False
    shared = _sharing(steps, w, fresh)
    return not shared & set(fetched) and not any(
        shared.intersection(steps[k][1]) for k in range(j + 1, len(steps)))


def _sharing(steps: list, read: core.GraphTensor, fresh: Callable) -> set:
    """The slots whose values may share the variable's buffer: its read, then every output
    of a step taking one of them, but the main outputs of a fresh op (new arrays)."""
    shared: set = set()
    for op, ins, outs in steps:
        if op is read.op:
            shared.update(outs)
        elif shared.intersection(ins):
            shared.update(outs[len(op.outputs):] if fresh(op) else outs)
    return shared


def _folded_kernel(op: core.Operation, fold: GradientFold) -> Callable:
    """The product's kernel that writes `variable += alpha * a.T @ g` itself when the
    update asks for it this step (returning APPLIED), else the gradient as before."""
    kernel, variable = op._kernel, fold.variable

    def folded(g: Any, residual: tuple) -> tuple:
        alpha = fold.factor()
        if alpha is not None:
            a, w = residual
            if w is variable.value and intra_op.product(
                    blas.gemm_accumulate, a.size * w.shape[1], a, g, w, alpha):
                return (APPLIED,)
        return kernel(g, residual)
    return folded
