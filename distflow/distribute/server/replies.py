"""Replies: encoding the answers to requests and sending them without needless copies.

A large parameter goes out zero-copy; `Replies` tells the shard which buffers
a send still reads (`Shard.track`), so an update moves such a parameter instead
of overwriting it. A reply with every parameter reuses one cached encoder and,
when the packed store is exactly its pack frame, the store's buffer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.distribute import protocol, transport
from distflow.distribute.protocol import Message
from distflow.distribute.server.shard import Shard
from distflow.distribute.server.stats import Stats


class Replies:
    """The reply channel of one server.

    Args:
        socket: its `transport.ServerSocket`.
        shard: the parameters replies carry.
        stats: counts bytes out and refusals.
        rate_limited: logs refusals (one line per reason per interval).
    """

    def __init__(self, socket: transport.ServerSocket, shard: Shard, stats: Stats,
                 rate_limited: transport.RateLimitedLog):
        self.socket, self.shard, self.stats = socket, shard, stats
        self._rate_limited = rate_limited
        self._all_encoder: protocol.Encoder | None = None  # replies with every parameter
        self._generation = -1  # the shard's parameter set the encoder was built for
        self._zero_copy: list[str] = []  # parameters such replies send without copying
        self._store_is_pack = False  # the packed store is such replies' pack frame

    def send(self, identity: bytes, frames: list, track: Any = None) -> None:
        """Sends frames; `track`: the parameter names whose buffers they share."""
        self.stats.bytes_out += protocol.message_bytes(frames)
        tracker = self.socket.send(identity, frames, track=bool(track))
        if track and tracker is not None:
            self.shard.track(track, tracker)

    def reject(self, identity: bytes, req: Any, reason: str, message: str) -> None:
        """An error reply (docs/protocol.md), counted and logged at most every 10 s."""
        self.stats.rejected[reason] += 1
        self._rate_limited.warning(reason, "Refused a request (%s, %d so far): %.300s",
                                   reason, self.stats.rejected[reason], message)
        self.send(identity, protocol.error_frames(req, reason, message))

    def reply(self, identity: bytes, msg: Message, with_params: bool = False,
              names: list[str] | None = None, **fields: Any) -> None:
        """An `ok` reply to `msg` at the current version, with `fields`.

        Args:
            with_params: carry parameters: `names`, or every one when None.
        """
        header = {"op": "ok", "req": msg.req, "version": self.shard.version, **fields}
        if with_params and names is None:
            self.send(identity, self._encode_all(header), track=self._zero_copy)
            return
        tensors, shared = self.sendable(self.tensors(names) if with_params else [])
        self.send(identity, protocol.encode(header, tensors), track=shared)

    def step_reply(self, identity: bytes, req: Any, op: str, frames: list | None
                   ) -> list | None:
        """Answers a push of a completed sync step; every push_pull of the step shares
        the `frames` of the first one (returned), only its header differs."""
        header = {"op": "ok", "req": req, "version": self.shard.version, "staleness": 0,
                  "dropped": False, "skipped": False}
        if op != "push_pull":
            self.send(identity, protocol.encode(header))
            return frames
        if frames is None:
            frames = self._encode_all(header)
            self.send(identity, frames, track=self._zero_copy)
            return frames
        self.send(identity, protocol.reheader(frames, req=req), track=self._zero_copy)
        return frames

    def values(self, identity: bytes, msg: Message, value: np.ndarray) -> None:
        """An `ok` reply carrying one tensor named 'value' (a collective's result)."""
        header = {"op": "ok", "req": msg.req, "version": self.shard.version}
        self.send(identity, protocol.encode(header, [("value", value)]))

    def tensors(self, names: list[str] | None) -> list[tuple[str, np.ndarray]]:
        """(name, parameter) of `names`, or of every parameter when None."""
        params = self.shard.params
        keys = params if names is None else names
        return [(name, params[name]) for name in keys]

    def sendable(self, tensors: list[tuple[str, np.ndarray]]
                 ) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
        """A reply's tensors, and the parameters it will send zero-copy (framed, not
        packed, and not copied by the transport), which updates must then not write
        in place (copy-on-write).

        A packed-store parameter that this message frames (another subset or order
        packs differently) goes as a copy instead: whole-store updates write in place
        without looking for sends in flight, so no send may share the store.
        """
        packs = protocol.pack_flags(a.nbytes for _, a in tensors)
        held = self.shard.store.held
        sendable, shared = [], []
        for (name, array), packed in zip(tensors, packs):
            if not packed and _sent_zero_copy(array):
                if name in held:
                    array = array.copy()
                else:
                    shared.append(name)
            sendable.append((name, array))
        return sendable, shared

    def _encode_all(self, header: dict[str, Any]) -> list:
        """A reply carrying every parameter: a cached encoder, and the packed store
        as its pack frame when the store holds exactly the packed parameters."""
        shard = self.shard
        if self._generation != shard.generation:
            self._generation = shard.generation
            self._all_encoder = protocol.Encoder(self.tensors(None))
            # (The store holds packed parameters of this very reply: never among these.)
            self._zero_copy = [n for n in self._all_encoder.layout.unpacked
                               if _sent_zero_copy(shard.params[n])]
            self._store_is_pack = bool(shard.store.names) and \
                shard.store.names == self._all_encoder.layout.packed
        pack = shard.store.frame(transport.COPY_THRESHOLD) if self._store_is_pack else None
        return self._all_encoder.encode(header, list(shard.params.values()), pack=pack)


def _sent_zero_copy(param: np.ndarray) -> bool:
    """Whether the transport sends a framed `param` (a frame of it) without copying."""
    return param.nbytes >= transport.COPY_THRESHOLD
