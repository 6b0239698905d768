"""A worker's registered variables and its push plans: what goes to which shard, how.

`Variables` holds what a client registered: each variable's shape and dtype and
its pieces on the shards (`sharding.place`, run once per registration, so every
process computes the same placement). It groups arrays by shard for `init`,
names the keys a `pull` asks each shard for, and copies replies into arrays.

A `PushPlan` says how a push of one list of gradient names is sent. It is built
once (at registration for the registered names, on first use for another list)
and holds, per shard, the tensors that shard gets in wire order (whole
variables, or row ranges of a split one) and the cached `protocol.Encoder` of
each message. Every push takes one of three shapes per shard, all of the same
plan: an empty push (a header alone: a shard that holds none of the gradients
still takes part in the step), one message, or several messages (the parts of
a pipelined push to an asynchronous server whose tensors exceed
`pipeline_bytes`: docs/protocol.md, Pipelining). No other code builds a push.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from distflow.distribute import protocol, sharding
from distflow.distribute.protocol import Message

Spec = tuple[tuple[int, ...], np.dtype]


class Variables:
    """The variables a client registered and where their pieces live.

    Args:
        num_shards: number of parameter servers.
        split: allow row-splitting of large variables across shards.
        split_bytes: split threshold (None: fair share, see `sharding.place`).
        partitions: `fn(name, shape, dtype)` -> number of row ranges for that
            variable (overrides `split_bytes`); None: the size rule only.
    """

    def __init__(self, num_shards: int, split: bool = True, split_bytes: int | None = None,
                 partitions: Callable[[str, tuple, np.dtype], int] | None = None):
        self.num_shards = num_shards
        self._split, self._split_bytes, self._partitions = split, split_bytes, partitions
        self.specs: dict[str, Spec] = {}  # name -> (shape, dtype), registration order
        self._pieces: dict[str, list[sharding.Piece]] = {}
        self._by_key: dict[str, sharding.Piece] = {}
        self.split_any = False  # some variable is split by rows across shards

    @property
    def names(self) -> list[str]:
        """Every registered variable, in registration order."""
        return list(self.specs)

    def register(self, params: Mapping[str, np.ndarray]) -> bool:
        """Places the variables not registered yet; returns whether there were any.

        Raises:
            ValueError: a variable registered before with another shape or dtype.
        """
        for name, arr in params.items():
            known = self.specs.get(name)
            if known is not None and known != (tuple(arr.shape), np.dtype(arr.dtype)):
                raise ValueError(f"Variable {name!r} was registered with shape {known[0]} and "
                                 f"dtype {known[1]}. Received: shape={arr.shape}, "
                                 f"dtype={arr.dtype}")
        new = {n: a for n, a in params.items() if n not in self.specs}
        if new:
            self._place(new)
        return bool(new)

    def _place(self, new: Mapping[str, np.ndarray]) -> None:
        wanted = None if self._partitions is None else {
            n: self._partitions(n, tuple(a.shape), np.dtype(a.dtype)) for n, a in new.items()}
        placement = sharding.place(sharding.specs_of(new), self.num_shards, split=self._split,
                                   split_bytes=self._split_bytes, partitions=wanted)
        for piece in placement.pieces:
            self._pieces.setdefault(piece.var, []).append(piece)
            self._by_key[piece.key] = piece
            self.split_any |= piece.split
        for name, arr in new.items():
            self.specs[name] = (tuple(arr.shape), np.dtype(arr.dtype))
            self._pieces[name].sort(key=lambda p: p.start)

    def pieces_of(self, name: str) -> list[sharding.Piece]:
        """The pieces of variable `name` in row order (one when it is not split).

        Raises:
            ValueError: `name` is not registered.
        """
        pieces = self._pieces.get(name)
        if pieces is None:
            raise ValueError(f"Unknown variable {name!r}: call `init` with it first. "
                             f"Known: {sorted(self.specs)[:20]}")
        return pieces

    def checked(self, name: str, array: Any) -> np.ndarray:
        """`array` as an ndarray of `name`'s registered shape and dtype (no copy if it is).

        Raises:
            ValueError: another shape or dtype.
        """
        array = np.asarray(array)
        shape, dtype = self.specs.get(name, (None, None))
        if shape is not None and (array.shape != shape or array.dtype != dtype):
            raise ValueError(f"Gradient of {name!r} must have shape {shape} and dtype "
                             f"{dtype}. Received: shape={array.shape}, dtype={array.dtype}")
        return array

    def by_shard(self, arrays: Mapping[str, Any]) -> list[list[tuple[str, np.ndarray]]]:
        """Per shard, the (wire key, array or row range) pairs of `arrays` it holds."""
        per_shard: list[list] = [[] for _ in range(self.num_shards)]
        for name, arr in arrays.items():
            arr = self.checked(name, arr)
            for piece in self.pieces_of(name):
                per_shard[piece.shard].append((piece.key, piece.view(arr)))
        return per_shard

    def keys_by_shard(self, names: Iterable[str]) -> list[list[str]]:
        """Per shard, the wire keys of `names` it holds."""
        keys: list[list[str]] = [[] for _ in range(self.num_shards)]
        for name in names:
            for piece in self.pieces_of(name):
                keys[piece.shard].append(piece.key)
        return keys

    def collect(self, replies: Iterable[Message], names: Sequence[str],
                out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The values of `names` the replies carry, written into `out`'s arrays (or new)."""
        result = {}
        for name in names:
            shape, dtype = self.specs[name]
            target = out.get(name) if out is not None else None
            result[name] = target if target is not None else np.empty(shape, dtype)
        for msg in replies:
            if self.split_any:
                msg.copy_all_into(self._targets(msg, result))
            else:  # every key is its variable's name
                msg.copy_all_into(result)
        return result

    def _targets(self, msg: Message, result: Mapping[str, np.ndarray]) -> dict:
        """The row ranges of `result`'s arrays that `msg`'s keys name."""
        targets = {}
        for key in msg.layout.names:
            piece = self._by_key.get(key)
            if piece is not None and piece.var in result:
                targets[key] = piece.view(result[piece.var])
        return targets


@dataclass(frozen=True)
class ShardPush:
    """One shard's share of a push.

    Attributes:
        slots: per tensor sent, in wire order: the index of its gradient in the
            plan's `names` and its row range (None: the whole gradient).
        encoders: one per message (none: an empty push, a header alone).
        bounds: the slots each message carries, as (start, stop), beside `encoders`.
        pipelined: the messages are the parts of a pipelined push (each header
            says `part: [index, count]`, even when there is one part).
    """

    slots: tuple[tuple[int, slice | None], ...]
    encoders: tuple[protocol.Encoder, ...]
    bounds: tuple[tuple[int, int], ...]
    pipelined: bool = False

    def messages(self, header: dict[str, Any], values: Sequence[np.ndarray]) -> list[list]:
        """The frames of each message this shard gets, `values` being the plan's gradients."""
        if not self.encoders:
            return [protocol.encode(header)]
        arrays = [values[i] if rows is None else values[i][rows] for i, rows in self.slots]
        if not self.pipelined:
            return [self.encoders[0].encode(header, arrays)]
        count = len(self.encoders)
        return [encoder.encode({**header, "part": [i, count]}, arrays[start:stop])
                for i, (encoder, (start, stop)) in enumerate(zip(self.encoders, self.bounds))]


@dataclass(frozen=True)
class PushPlan:
    """How a push of one list of gradient names is sent to every shard.

    Attributes:
        names: the gradients' names, in the order a push lists them.
        specs: (shape, dtype) of each, as registered.
        shards: each shard's `ShardPush`, by shard id.
    """

    names: tuple[str, ...]
    specs: tuple[Spec, ...]
    shards: tuple[ShardPush, ...]

    @classmethod
    def build(cls, variables: Variables, names: Sequence[str], modes: Sequence[str | None],
              pipeline_bytes: int | None) -> PushPlan:
        """The plan for `names`; a shard in `async` mode whose tensors exceed
        `pipeline_bytes` (if set) gets them in parts of at least that size.

        Raises:
            ValueError: a name is not registered.
        """
        names = tuple(names)
        tensors: list[list] = [[] for _ in range(variables.num_shards)]
        for index, name in enumerate(names):
            for piece in variables.pieces_of(name):
                rows = slice(piece.start, piece.stop) if piece.split else None
                tensors[piece.shard].append((index, rows, piece))
        limits = [pipeline_bytes if mode == "async" and pipeline_bytes else None
                  for mode in modes]
        shards = tuple(_shard_push(mine, limit) for mine, limit in zip(tensors, limits))
        return cls(names, tuple(variables.specs[n] for n in names), shards)

    def values(self, grads: Mapping[str, Any], variables: Variables) -> list[np.ndarray]:
        """The gradients in plan order, each an ndarray of its registered shape and dtype.

        Raises:
            ValueError: a gradient of another shape or dtype (from `variables.checked`).
        """
        values = [grads[name] for name in self.names]
        for i, (shape, dtype) in enumerate(self.specs):
            array = values[i]
            if type(array) is not np.ndarray or array.shape != shape or array.dtype != dtype:
                values[i] = variables.checked(self.names[i], array)
        return values

    def messages(self, headers: Sequence[dict[str, Any]], values: Sequence[np.ndarray]
                 ) -> dict[int, list[list]]:
        """Per shard, the frames of its messages (`headers[shard]` is its header)."""
        return {shard: push.messages(headers[shard], values)
                for shard, push in enumerate(self.shards)}


def _shard_push(tensors: list[tuple[int, slice | None, sharding.Piece]],
                limit: int | None) -> ShardPush:
    """A shard's push of `tensors`, in parts of >= `limit` bytes when they exceed it."""
    slots = tuple((index, rows) for index, rows, _ in tensors)
    specs = [(piece.key, piece.shape, piece.dtype) for _, _, piece in tensors]
    if not specs:
        return ShardPush(slots, (), ())
    sizes = [piece.nbytes for _, _, piece in tensors]
    pipelined = bool(limit) and sum(sizes) > limit
    bounds = _cut(sizes, limit) if pipelined else [(0, len(specs))]
    encoders = tuple(protocol.Encoder.for_specs(specs[a:b]) for a, b in bounds)
    return ShardPush(slots, encoders, tuple(bounds), pipelined)


def _cut(sizes: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """Cuts tensors of these byte sizes, at tensor boundaries, into runs of >= `limit`
    bytes (the last run may be smaller); returns each run's (start, stop)."""
    bounds, start, size = [], 0, 0
    for i, nbytes in enumerate(sizes):
        size += nbytes
        if size >= limit:
            bounds.append((start, i + 1))
            start, size = i + 1, 0
    if start < len(sizes):
        bounds.append((start, len(sizes)))
    return bounds
