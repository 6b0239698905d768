"""What a layer tracks: its variables, its sublayers, and the weight lists built from them.

Variables and layers assigned as attributes (directly or in lists, tuples and
dicts) are tracked, as Keras does, so `weights`, `trainable_weights` and
`non_trainable_weights` of a layer include its sublayers' (each variable once;
none below a frozen layer is trainable).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from distflow.keras.tree import flatten as _flat
from distflow.tensor import Variable

__all__ = ["TrackingMixin"]


# Attributes of a layer that never hold its sublayers: the tracking lists themselves,
# the functional graph's nodes and the constructor's arguments (Keras tracks attributes).
_NO_LAYERS = frozenset(("_tracked_layers", "_inbound_nodes", "_outbound_nodes",
                        "_auto_config", "_own_trainable", "_own_non_trainable",
                        "_regularized", "_call_losses"))
_CONTAINERS = (list, tuple, dict)
_SCALARS = (str, int, float, bool, type(None))


def _layers_in(value: list | tuple | dict, found: list) -> None:
    """Appends the layers in a plain list, tuple or dict (nested; dicts in sorted key order,
    as `nest.flatten` walks them) to `found`."""
    items = (value[k] for k in sorted(value)) if type(value) is dict else value
    for v in items:
        kind = type(v)
        if kind in _SCALARS:
            continue
        if kind in _CONTAINERS:
            _layers_in(v, found)
        elif isinstance(v, TrackingMixin):
            found.append(v)
        elif isinstance(v, list | tuple | dict):  # a subclass (OrderedDict, namedtuple)
            found.extend(x for x in _flat(v) if isinstance(x, TrackingMixin))


class TrackingMixin:
    """Variable and sublayer tracking of `Layer` (its `weights`, `trainable`, ...)."""

    def _init_tracking(self) -> None:
        d = self.__dict__
        d.setdefault("_own_trainable", [])
        d.setdefault("_own_non_trainable", [])
        d.setdefault("_regularized", [])
        d.setdefault("_call_losses", [])
        d.setdefault("_tracked_layers", [])

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Variable):  # Keras tracks variables assigned as attributes
            self._init_tracking()
            self._track_variable(value, value.trainable)
        object.__setattr__(self, name, value)

    def _track_variable(self, var: Variable, trainable: bool) -> None:
        known = {id(v) for v in self._own_trainable + self._own_non_trainable}
        if id(var) not in known:
            (self._own_trainable if trainable else self._own_non_trainable).append(var)

    @property
    def trainable(self) -> bool:
        """Whether training updates this layer's weights; setting it (un)freezes sublayers."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = bool(value)
        self._trainable = value
        for var in self._own_trainable:
            var.trainable = value
        for layer in self._sublayers():
            layer.trainable = value

    def _sublayers(self) -> list[TrackingMixin]:
        """Direct sublayers: explicitly tracked ones, then layers held in attributes."""
        found, seen = [], {id(self)}
        candidates = list(self._tracked_layers)
        for key, value in list(self.__dict__.items()):
            kind = type(value)
            if kind in _SCALARS:
                continue
            if kind in _CONTAINERS:
                if key not in _NO_LAYERS:
                    _layers_in(value, candidates)
            elif isinstance(value, TrackingMixin):
                candidates.append(value)
            elif isinstance(value, list | tuple | dict) and key not in _NO_LAYERS:
                candidates.extend(v for v in _flat(value) if isinstance(v, TrackingMixin))
        for layer in candidates:
            if id(layer) not in seen:
                seen.add(id(layer))
                found.append(layer)
        return found

    def _flatten_layers(self, include_self: bool = True, recursive: bool = True,
                        skip_frozen: bool = False) -> Iterator[TrackingMixin]:
        """This layer and its sublayers, depth first (pre-order), each once.

        Iterative with a seen-set, so layers that reference each other do not loop.
        `skip_frozen` leaves out frozen layers and everything below them.
        """
        seen: set[int] = set()
        stack = [self]
        while stack:
            layer = stack.pop()
            if id(layer) in seen or (skip_frozen and not layer.trainable):
                continue
            seen.add(id(layer))
            if layer is not self or include_self:
                yield layer
            if recursive or layer is self:
                stack.extend(reversed(layer._sublayers()))

    @staticmethod
    def _unique(variables: Iterator[Variable]) -> list[Variable]:
        out, seen = [], set()
        for var in variables:
            if id(var) not in seen:
                seen.add(id(var))
                out.append(var)
        return out

    @property
    def weights(self) -> list[Variable]:
        """All variables: this layer's (trainable first), then its sublayers', depth first."""
        return self._unique(v for layer in self._flatten_layers()
                            for v in (*layer._own_trainable, *layer._own_non_trainable))

    variables = weights

    @property
    def trainable_weights(self) -> list[Variable]:
        """Variables updated by training (none below a frozen layer)."""
        return self._unique(v for layer in self._flatten_layers(skip_frozen=True)
                            for v in layer._own_trainable)

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """Variables not updated by gradients (moving statistics, frozen weights)."""
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    non_trainable_variables = non_trainable_weights
