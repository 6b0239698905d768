"""A shard's small parameters in one buffer, laid out like the protocol's pack frame.

A push carries the tensors under `protocol.PACK_BYTES` back to back in one pack
frame (8-byte aligned, `protocol.pack_flags`). When the server keeps those parameters, and their
optimizer slots, in buffers with exactly that layout, a push whose pack frame
lists them in the same order is one flat gradient: the update rule (elementwise)
runs once over the whole buffer instead of once per tensor, and the reply's pack
frame is the parameter buffer itself instead of a fresh copy of every tensor. A
sync step's averaged gradients are gathered into the same layout (`gather`) for
the same single rule call.
`params[name]` and `slots[name][slot]` stay usable one by one: they are views
into the buffers, so checkpoints, pulls and the per-tensor path see the same
numbers.

The padding between tensors starts at zero and a zero gradient keeps it there
under every rule. A client that sends other bytes in its padding only changes
the store's padding: the rules are elementwise, so no parameter reads it;
replies carry it (as every pack frame carries padding) but a receiver reads
only the tensors' own ranges, and checkpoints hold the tensors alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from distflow.distribute import protocol


class PackedStore:
    """The packable parameters of one dtype, in wire order, in one buffer.

    Attributes:
        names: the parameters held, in the order a pack frame lists them.
        dtype: their dtype (None while empty).
        values: the parameter buffer, flat, padding included.
        slots: slot name -> flat buffer of the same layout.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.held: frozenset[str] = frozenset()
        self.dtype: np.dtype | None = None
        self.values = np.zeros(0, np.float32)
        self.slots: dict[str, np.ndarray] = {}
        self._gradient = np.zeros(0, np.float32)  # `gather`'s buffer: same layout, zero padding
        self._gradient_views: dict[str, np.ndarray] = {}

    def rebuild(self, params: dict[str, np.ndarray], slots: dict[str, dict[str, np.ndarray]],
                slot_names: tuple[str, ...], init_slot: Any) -> None:
        """Moves the packable parameters (and their slots) into fresh buffers.

        `params` and `slots` are updated in place to views into the buffers.

        Args:
            params: name -> value, in the order replies list them.
            slots: name -> {slot -> array}.
            slot_names: the slots the update rule needs.
            init_slot: (slot name, param) -> a fresh slot array, for missing slots.
        """
        floats = [n for n, p in params.items() if p.dtype.kind == "f"]
        self.dtype = params[floats[0]].dtype if floats else None
        # Exactly the parameters a message carrying all of them (a reply) packs.
        packed = dict(zip(params, protocol.pack_flags(p.nbytes for p in params.values())))
        self.names = [n for n in floats if params[n].dtype == self.dtype and packed[n]]
        self.held = frozenset(self.names)
        starts, total = _offsets([params[n].nbytes for n in self.names])
        offsets = dict(zip(self.names, starts))
        self.values = self._move({n: params[n] for n in self.names}, offsets, total)
        self.slots = {}
        for slot in slot_names:
            current = {n: slots[n].get(slot) for n in self.names}
            current = {n: a if a is not None else init_slot(slot, params[n])
                       for n, a in current.items()}
            self.slots[slot] = self._move(current, offsets, total)
        for name in self.names:
            params[name] = self._view(self.values, params[name], offsets[name])
            slots[name].update({s: self._view(self.slots[s], params[name], offsets[name])
                                for s in slot_names})
        self._gradient = np.zeros_like(self.values)
        self._gradient_views = {n: self._view(self._gradient, params[n], offsets[n]).reshape(-1)
                                for n in self.names}

    def gather(self, grads: Mapping[str, list[np.ndarray]]) -> np.ndarray | None:
        """The gradients of every held parameter laid out as the store, in one buffer.

        For a gradient that did not come as a pack frame (a sync step's averages):
        one rule call then updates them all. The buffer is reused; its padding
        stays zero.

        Args:
            grads: name -> the gradient as flat pieces.

        Returns:
            The flat buffer, or None when a held parameter has no gradient.
        """
        if not self.names or not self.held <= grads.keys():
            return None
        for name, view in self._gradient_views.items():
            protocol.copy_pieces(grads[name], view)
        return self._gradient

    def _move(self, arrays: Mapping[str, np.ndarray], offsets: dict[str, int],
              total: int) -> np.ndarray:
        raw = np.zeros(total, np.uint8)
        for name, array in arrays.items():
            raw[offsets[name]:offsets[name] + array.nbytes] = array.reshape(-1).view(np.uint8)
        return raw.view(self.dtype) if self.dtype is not None else raw

    @staticmethod
    def _view(buffer: np.ndarray, like: np.ndarray, offset: int) -> np.ndarray:
        start = offset // buffer.itemsize
        return buffer[start:start + like.size].reshape(like.shape)

    def matches(self, packed: list[str]) -> bool:
        """Whether a pack frame listing `packed` has this store's layout."""
        return bool(self.names) and packed == self.names

    def frame(self, copy_above: int) -> Any:
        """The parameters as a pack frame: a view when the transport copies it at
        send time (below `copy_above` bytes), else a private copy (a zero-copy
        send must not see the next update)."""
        view = memoryview(self.values).cast("B")
        return view if view.nbytes < copy_above else bytearray(view)


def _offsets(sizes: list[int]) -> tuple[list[int], int]:
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total += protocol.padded(size)
    return offsets, total
