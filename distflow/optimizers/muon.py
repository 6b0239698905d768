"""`Muon`: orthogonalized momentum for matrices, Adam for everything else (Keras 3's)."""

from __future__ import annotations

import re
from typing import Any

from distflow.optimizers.optimizers import _WholeTensor
from distflow.tensor import Variable


class Muon(_WholeTensor):
    """Muon (see `rules._muon`): each rank-2 variable's momentum is orthogonalized by a
    Newton-Schulz iteration; other variables take an Adam step.

    A variable takes the Adam step when it is not rank 2, when `exclude_embeddings` and
    its name contains "embedding", or when one of `exclude_layers` (regular
    expressions) matches its name; Adam's variables decay by `adam_weight_decay`, the
    others by `weight_decay`. One process only: the iteration reads whole matrices.

    Args:
        learning_rate: default 0.001.
        adam_beta_1, adam_beta_2, epsilon: Adam's parameters.
        adam_weight_decay: decoupled decay of the Adam variables (default 0.004).
        weight_decay: decoupled decay of the Muon variables (default 0.004).
        exclude_layers: regular expressions of variable names that take the Adam step.
        exclude_embeddings: embeddings take the Adam step (default True).
        muon_a, muon_b, muon_c: the Newton-Schulz coefficients.
        adam_lr_ratio: Adam's learning rate relative to `learning_rate`.
        momentum: Muon's momentum.
        ns_steps: Newton-Schulz iterations.
        nesterov: Nesterov momentum.
        rms_rate: scale updates by `sqrt(max(rows, cols)) * rms_rate` (None: no scaling).
    """

    rule_name = "muon"

    def __init__(self, learning_rate: Any = 0.001, adam_beta_1: float = 0.9,
                 adam_beta_2: float = 0.999, adam_weight_decay: float | None = 0.004,
                 epsilon: float = 1e-7, weight_decay: float | None = 0.004,
                 name: str = "Muon", exclude_layers: list[str] | None = None,
                 exclude_embeddings: bool = True, muon_a: float = 3.4445,
                 muon_b: float = -4.7750, muon_c: float = 2.0315, adam_lr_ratio: float = 1.0,
                 momentum: float = 0.95, ns_steps: int = 5, nesterov: bool = True,
                 rms_rate: float | None = 0.2, **kwargs: Any):
        if isinstance(exclude_layers, str):
            raise ValueError("`exclude_layers` must be a list of strings (regular expressions). "
                             f"Received: exclude_layers={exclude_layers!r}")
        self.exclude_layers = list(exclude_layers or [])
        self.exclude_embeddings = bool(exclude_embeddings)
        super().__init__(learning_rate, name=name, weight_decay=weight_decay,
                         adam_beta_1=float(adam_beta_1), adam_beta_2=float(adam_beta_2),
                         adam_weight_decay=adam_weight_decay, epsilon=float(epsilon),
                         muon_a=float(muon_a), muon_b=float(muon_b), muon_c=float(muon_c),
                         adam_lr_ratio=float(adam_lr_ratio), momentum=float(momentum),
                         ns_steps=int(ns_steps), nesterov=bool(nesterov),
                         rms_rate=None if rms_rate is None else float(rms_rate), **kwargs)

    def _should_use_adamw(self, var: Variable) -> bool:
        """Keras's choice: not a matrix, an embedding, or an excluded name."""
        if len(var.shape) != 2:
            return True
        if self.exclude_embeddings and "embedding" in var.name.lower():
            return True
        return any(re.search(pattern, var.name) for pattern in self.exclude_layers)

    def _apply_locally(self, pairs: list) -> None:
        hp = self.hyperparameters()
        step = self._step_count() + 1
        for grad, var in pairs:
            adamw = self._should_use_adamw(var)
            decay = self.hyper["adam_weight_decay"] if adamw else self.weight_decay
            var_hp = {**hp, "adamw_variable": adamw,
                      "weight_decay": (decay or 0.0) if self._use_weight_decay(var) else 0.0}
            state = self._slots.get(var.name)
            if state is None:
                state = self._slots[var.name] = self.rule.init(var.value, var_hp)
            self.rule.update(var.value, grad, state, step, var_hp)

    def get_config(self) -> dict:
        return {**super().get_config(), "exclude_layers": list(self.exclude_layers),
                "exclude_embeddings": self.exclude_embeddings}
