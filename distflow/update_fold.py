"""The contract by which a traced optimizer update lets the graph executor fold it into
the matrix product that computes its gradient (`distflow.graph.fold_updates`).

An update kernel (made by `graph_form(specialize=...)`) may carry
`gradient_fold(i) -> GradientFold | None` for its i-th gradient input. When the
executor folds, the product's kernel asks `factor()` at every run: a float `alpha`
means "this step's update of `variable` is `variable += alpha * gradient`", and the
kernel then writes the update itself and hands the update kernel `APPLIED` in place of
the gradient; None means "not this step" and the gradient is computed as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class _Applied:
    def __repr__(self) -> str:
        return "APPLIED"


APPLIED = _Applied()  # a gradient whose update the product already wrote


@dataclass(frozen=True)
class GradientFold:
    """A gradient the update could take from its product: the variable it updates and
    this step's factor (called at every run; None when the update is not a scaled add)."""

    variable: Any
    factor: Callable[[], float | None]
