"""The distflow parameter-server wire protocol (version 2), documented in docs/protocol.md.

A message is a list of frames: one msgpack header frame (its `tensors` field
is the spec list packed as msgpack bytes, so a receiver looks a known list up
by those bytes instead of rebuilding it), then one pack frame
holding the tensors under `PACK_BYTES` back to back (8-byte aligned, at most
`FRAME_BYTES` in all: `pack_flags`), then the
raw bytes of each larger tensor, cut into frames of at most `FRAME_BYTES`
(large single frames are slow to receive). Data is little-endian, C order.
This module is pure: it turns headers and NumPy arrays into frames and back,
and validates what it decodes. It never imports zmq; the transport hands it
objects exposing the buffer protocol, and decoded arrays are `np.frombuffer`
views on them (no copy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack
import numpy as np

from distflow.distribute.cache import LRU

PROTOCOL_VERSION = 2
FRAME_BYTES = 8 * 1024 * 1024
# Tensors under PACK_BYTES travel in the pack frame while it stays within FRAME_BYTES
# (`pack_flags`): every frame sent without copying costs a wakeup of pyzmq's garbage
# collector thread, which on 2 cores costs more than copying a quarter megabyte.
PACK_BYTES = 512 * 1024
PACK_ALIGN = 8
MAX_HEADER_BYTES = 1024 * 1024
DEFAULT_MAX_TENSORS = 4096
# The most bytes the tensors of one message may declare when the receiver gives no limit
# (a server passes its `max_message_bytes`): declared sizes are checked against it before
# anything is built for them.
DEFAULT_MAX_BYTES = 1 << 40
MAX_STEP = 2**63 - 1  # steps and epochs are int64 >= 0

REQUEST_OPS = frozenset({
    "hello", "init", "pull", "push", "push_pull", "heartbeat", "stats", "save", "shutdown",
    "bye", "epoch_end", "collective",
})
REPLY_OPS = frozenset({"ok", "error"})
DTYPES = frozenset({
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool",
})


_ITEMSIZE = {name: np.dtype(name).itemsize for name in DTYPES}
_NAMES = {np.dtype(name): name for name in DTYPES}


def dtype_name(dtype: np.dtype) -> str:
    """The protocol name of a NumPy dtype (cached: `dtype.name` is slow)."""
    name = _NAMES.get(dtype)
    return name if name is not None else np.dtype(dtype).name


class ProtocolError(ValueError):
    """A message that does not follow the protocol.

    Attributes:
        reason: short machine-readable cause, used as the stats counter key.
    """

    def __init__(self, reason: str, message: str, req: Any = None):
        super().__init__(message)
        self.reason = reason
        self.req = req


class Message:
    """A decoded message: the header map and its tensors.

    Tensors are kept as the received frame buffers until asked for: `tensor(name)`
    returns a read-only `np.frombuffer` view when the tensor came in one frame
    (no copy) and joins the frames otherwise; `copy_into(name, out)` writes the
    frames straight into an existing array. Where each tensor lies comes from
    the (cached) layout of the spec list, so decoding builds nothing per tensor.

    Attributes:
        header: the msgpack header (`v`, `op`, `sender`, `req`, `step`, ...).
        layout: the layout of the header's spec list (see `decode`).
    """

    def __init__(self, header: dict[str, Any], layout: _Layout | None = None,
                 frames: Sequence[Any] = (), pack: memoryview | None = None):
        self.header = header
        self.layout = layout if layout is not None else _EMPTY
        self._frames = frames
        self._pack = pack if pack is not None else self.layout.pack_view(frames)
        self._joined: dict[str, np.ndarray] = {}

    @property
    def op(self) -> str:
        return self.header["op"]

    @property
    def req(self) -> Any:
        return self.header.get("req", 0)

    @property
    def sender(self) -> int | None:
        return self.header.get("sender")

    @property
    def names(self) -> list[str]:
        """Tensor names in wire order."""
        return list(self.layout.names)

    @property
    def packed(self) -> list[str]:
        """The names of the tensors in the pack frame, in order."""
        return self.layout.packed

    def spec(self, name: str) -> tuple[str, tuple[int, ...]]:
        """(dtype name, shape) of tensor `name`."""
        entry = self.layout.index[name]
        return entry[1], entry[2]

    def tensor(self, name: str) -> np.ndarray:
        """The tensor as an array (a zero-copy view for single-frame tensors)."""
        if name not in self._joined:
            _, dtype, shape, *_ = self.layout.index[name]
            self._joined[name] = _join(self.pieces(name), dtype, shape)
        return self._joined[name]

    @property
    def tensors(self) -> dict[str, np.ndarray]:
        """All tensors, name -> array, in wire order."""
        return {name: self.tensor(name) for name in self.layout.names}

    def pieces(self, name: str) -> list[np.ndarray]:
        """The tensor's frames as flat arrays of its dtype (no copy)."""
        _, dtype, shape, index, a, b = self.layout.index[name]
        if index < 0:  # packed: b bytes at offset a of the pack frame
            return [np.frombuffer(self._pack, dtype, b // _ITEMSIZE[dtype], a)]
        return [np.frombuffer(f, dtype) for f in self._frames[index:index + a]]

    def pack_array(self, dtype: Any) -> np.ndarray:
        """The whole pack frame viewed as one flat array of `dtype` (no copy)."""
        return np.frombuffer(self._pack, dtype=dtype)

    def groups(self) -> list[tuple[list[str], list[np.ndarray]]]:
        """The data as (names, flat arrays) groups, for checks that need one pass each.

        The packed tensors form one group viewed as their common dtype when they
        all share one (the zero padding reads as zeros); every other tensor is a
        group of its own frames.
        """
        layout = self.layout
        dtype = layout.pack_dtype
        if dtype is None:
            return [([n], self.pieces(n)) for n in layout.names]
        usable = self._pack.nbytes - self._pack.nbytes % _ITEMSIZE[dtype]
        out = [(layout.packed, [np.frombuffer(self._pack[:usable], dtype=dtype)])]
        out.extend(([n], self.pieces(n)) for n in layout.unpacked)
        return out

    def copy_all_into(self, targets: Mapping[str, np.ndarray]) -> None:
        """Writes each tensor named in `targets` into its array (others are skipped).

        What a reply to a worker needs, with the packed tensors read as slices of
        one view of the pack frame (`copy_into` makes a view per tensor).
        """
        layout = self.layout
        if layout.pack_slices:
            whole = np.frombuffer(self._pack, layout.pack_dtype)
            for name, start, stop in layout.pack_slices:
                out = targets.get(name)
                if out is None:
                    continue
                _check_target(name, stop - start, out)
                if out.flags.c_contiguous:
                    out.reshape(-1)[:] = whole[start:stop]  # (np.copyto dispatches in Python)
                else:
                    np.copyto(out, whole[start:stop].reshape(out.shape))
        for name in layout.unpacked if layout.pack_slices else layout.names:
            if name in targets:
                self.copy_into(name, targets[name])

    def copy_into(self, name: str, out: np.ndarray) -> None:
        """Writes tensor `name` into the array `out` (frame by frame when C-contiguous).

        Raises:
            ValueError: `out` does not have the tensor's number of elements.
        """
        _check_target(name, math.prod(self.layout.index[name][2]), out)
        if not out.flags.c_contiguous:  # reshape(-1) would be a copy: write through copyto
            np.copyto(out, self.tensor(name).reshape(out.shape))
            return
        copy_pieces(self.pieces(name), out.reshape(-1))


def copy_pieces(pieces: Sequence[np.ndarray], flat: np.ndarray) -> None:
    """Writes flat `pieces` (a tensor's frames) back to back into the flat array `flat`."""
    offset = 0
    for piece in pieces:
        flat[offset:offset + piece.size] = piece
        offset += piece.size


def _check_target(name: str, size: int, out: np.ndarray) -> None:
    """Refuses a target array that would take a tensor partly or by broadcasting."""
    if out.size != size:
        raise ValueError(f"Tensor {name!r} has {size} elements; the target array has "
                         f"{out.size}. Pass an array of the tensor's size (its variable's "
                         f"shape); a reply naming it with another size is malformed.")


def pack_flags(sizes: Iterable[int]) -> list[bool]:
    """Which tensors of a message (their byte sizes, in order) a sender packs: those
    under `PACK_BYTES`, while the pack frame stays within `FRAME_BYTES`."""
    flags, total = [], 0
    for nbytes in sizes:
        packs = nbytes < PACK_BYTES and total + padded(nbytes) <= FRAME_BYTES
        total += padded(nbytes) if packs else 0
        flags.append(packs)
    return flags


def nframes_for(nbytes: int) -> int:
    """How many frames a tensor of `nbytes` bytes occupies (at least one; exact integer
    arithmetic for any size)."""
    return max(1, -(-nbytes // FRAME_BYTES))


def encode(header: Mapping[str, Any], tensors: Iterable[tuple[str, np.ndarray]] = ()) -> list:
    """Builds the frames of a message.

    Tensors smaller than `PACK_BYTES` are copied back to back (each start
    aligned to `PACK_ALIGN` bytes) into one pack frame of at most `FRAME_BYTES`
    (`pack_flags`), sent first: a frame costs more than copying a few hundred
    kilobytes. Larger tensors get their own frames, at most `FRAME_BYTES`
    each, sent without copying.

    Args:
        header: op-specific fields; `v` and `tensors` are filled in here.
        tensors: (name, array) pairs.

    Returns:
        The frames: header bytes, the pack frame if any, then memoryviews on
        the large arrays' data.
    """
    pairs = [(name, _wire_array(name, array)) for name, array in tensors]
    if not pairs:  # most replies: a header alone, no layout to build
        return [pack_header(header)]
    return Encoder(pairs).encode(header, [array for _, array in pairs])


class Encoder:
    """Encodes message after message carrying tensors of the same names, dtypes and shapes.

    A worker pushes the same tensors at every step: the spec list and the pack
    frame's layout are worked out once, from the first list of (name, array),
    and `encode` then only copies the small tensors into a fresh pack frame and
    references the large ones, as `encode` would.

    Args:
        tensors: (name, array) pairs, in wire order.
    """

    def __init__(self, tensors: Sequence[tuple[str, np.ndarray]]):
        specs, self.nbytes = [], 0
        packs = pack_flags(array.nbytes for _, array in tensors)
        for (name, array), packed in zip(tensors, packs):
            if array.dtype not in _NAMES:
                _wire_array(name, array)  # refuses a dtype the protocol does not carry
            nbytes = array.nbytes
            count = 0 if packed else nframes_for(nbytes)
            specs.append([name, dtype_name(array.dtype), list(array.shape), count])
            self.nbytes += nbytes  # the tensors' bytes, without padding
        self.specs = specs
        self.packed_specs = msgpack.packb(specs)  # the header's `tensors` field
        self.layout = _Layout(specs)
        self._packed = [(i, *self.layout.index[s[0]][4:]) for i, s in enumerate(specs)
                        if s[3] == 0]
        self._framed = [(i, s[3]) for i, s in enumerate(specs) if s[3] != 0]

    @classmethod
    def for_specs(cls, specs: Iterable[tuple[str, Sequence[int], Any]]) -> Encoder:
        """An encoder for tensors of these (name, shape, dtype), built without their values
        (e.g. from registered variables: a worker's push plan)."""
        return cls([(name, np.broadcast_to(np.zeros((), dtype), tuple(shape)))
                    for name, shape, dtype in specs])

    def encode(self, header: Mapping[str, Any], arrays: Sequence[np.ndarray],
               pack: Any = None) -> list:
        """The frames of a message.

        Args:
            header: op-specific fields, as for `encode`.
            arrays: the tensors' values, matching the tensors of construction in
                order, dtype and shape (the caller checks that, e.g. against
                registered variables).
            pack: a ready pack frame holding the small tensors laid out as
                `layout` says (e.g. a server's packed store), used instead of
                copying them from `arrays`.
        """
        frames: list = [pack_header({**header, "tensors": self.packed_specs})]
        if pack is not None and self._packed:
            frames.append(pack)
        elif self._packed:
            pack = bytearray(self.layout.pack_bytes)
            view = memoryview(pack)
            for i, offset, nbytes in self._packed:
                if nbytes:
                    view[offset:offset + nbytes] = _raw(arrays[i])
            frames.append(pack)
        for i, count in self._framed:
            raw = _raw(arrays[i])
            frames.extend([raw] if count == 1 else
                          [raw[k * FRAME_BYTES:(k + 1) * FRAME_BYTES] for k in range(count)])
        return frames


def _raw(array: np.ndarray) -> memoryview:
    """The bytes of an array of a protocol dtype as sent (C order, little-endian)."""
    if array.dtype not in _NAMES or not array.flags.c_contiguous:
        array = _wire_array("tensor", array)
    return array.data.cast("B")


def padded(nbytes: int) -> int:
    """The bytes a packed tensor of `nbytes` takes in the pack frame (aligned)."""
    return -(-nbytes // PACK_ALIGN) * PACK_ALIGN


def _wire_array(name: str, array: np.ndarray) -> np.ndarray:
    """`array` as C-contiguous little-endian data of a protocol dtype (no copy if it is)."""
    if array.dtype not in _NAMES:
        if array.dtype.kind not in "fiub" or array.dtype.name not in DTYPES:
            raise ValueError(f"Tensor {name!r}: dtype must be one of {sorted(DTYPES)}. "
                             f"Received: dtype={array.dtype}")
        array = array.astype(array.dtype.newbyteorder("<"))  # big-endian input
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


def pack_header(header: Mapping[str, Any]) -> bytes:
    """Packs a header map (adding the protocol version) into a header frame."""
    return msgpack.packb({**header, "v": PROTOCOL_VERSION}, use_bin_type=True)


def error_frames(req: Any, reason: str, message: str) -> list:
    """The frames of an error reply naming the problem."""
    return encode({"op": "error", "req": req, "reason": reason, "message": message})


def decode(frames: Sequence[Any], max_tensors: int = DEFAULT_MAX_TENSORS,
           expect_ops: frozenset[str] = REQUEST_OPS,
           max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Parses and validates a message.

    Every declared size is checked (with Python's unbounded ints) against
    `max_bytes` and the frames received before anything is allocated for it:
    a small message declaring a huge tensor costs only its own parsing.

    Args:
        frames: the received frames (bytes, memoryviews or buffer-protocol objects).
        max_tensors: the most tensor specs a message may carry.
        expect_ops: the ops accepted (requests on a server, replies on a client).
        max_bytes: the most bytes the message's tensors may declare in all.

    Returns:
        The decoded `Message`.

    Raises:
        ProtocolError: naming the first problem found.
    """
    if not frames:
        raise ProtocolError("bad_header", "Empty message: expected a msgpack header frame.")
    header = _unpack_header(frames[0])
    try:
        _check_envelope(header, expect_ops)
        layout = _layout_of(header.get("tensors"), max_tensors, max_bytes, len(frames))
        if len(frames) != layout.frame_count:  # (a cached layout: checked here)
            _wrong_frame_count(layout.frame_count, len(frames))
        return Message(header, layout, frames, layout.check_sizes(frames))
    except ProtocolError as exc:
        req = header.get("req")
        exc.req = req if isinstance(req, int) and not isinstance(req, bool) else None
        raise


class _Layout:
    """Where each tensor of a validated spec list lies in the frames.

    Validating a spec list costs a few microseconds per tensor; a worker sends
    the same list at every step, so layouts are cached by the list's packed
    bytes (the header's `tensors` field: exact, and hashed without unpacking).

    `index[name]` is `(name, dtype, shape, -1, offset, nbytes)` for a packed
    tensor (its bytes in the pack frame) and `(name, dtype, shape, first frame,
    frame count, [bytes per frame])` for the others.
    """

    __slots__ = ("names", "packed", "unpacked", "pack_dtype", "frame_count", "pack_bytes",
                 "index", "pack_slices", "nbytes", "_framed", "__weakref__")

    def __init__(self, specs: list[list]):
        self.names = [spec[0] for spec in specs]
        self.packed = [spec[0] for spec in specs if spec[3] == 0]
        self.unpacked = [spec[0] for spec in specs if spec[3] != 0]
        dtypes = {spec[1] for spec in specs if spec[3] == 0}
        self.pack_dtype = dtypes.pop() if len(dtypes) == 1 else None  # one pass in `groups`
        index = 2 if self.packed else 1
        offset, entries, self.nbytes = 0, {}, 0
        for name, dtype, shape, count in specs:
            nbytes = math.prod(shape) * _ITEMSIZE[dtype]
            self.nbytes += nbytes
            if count == 0:
                entries[name] = (name, dtype, tuple(shape), -1, offset, nbytes)
                offset += padded(nbytes)
                continue
            want = [min(FRAME_BYTES, nbytes - i * FRAME_BYTES) for i in range(count)]
            entries[name] = (name, dtype, tuple(shape), index, count, [0] if not nbytes else want)
            index += count
        self.frame_count, self.pack_bytes, self.index = index, offset, entries
        self._framed = [entries[n] for n in self.unpacked]
        # With one pack dtype: each packed tensor as an element range of the whole pack.
        size = _ITEMSIZE[self.pack_dtype] if self.pack_dtype else 0
        self.pack_slices = [(n, entries[n][4] // size, (entries[n][4] + entries[n][5]) // size)
                            for n in self.packed] if size else []

    def pack_view(self, frames: Sequence[Any]) -> memoryview | None:
        if not self.packed:
            return None
        pack = memoryview(frames[1])
        if pack.nbytes != self.pack_bytes:
            raise ProtocolError("frame_size", f"The pack frame must hold {self.pack_bytes} bytes "
                                f"for the tensors with nframes 0 (each padded to {PACK_ALIGN} "
                                f"bytes). Received: {pack.nbytes}")
        return pack

    def check_sizes(self, frames: Sequence[Any]) -> memoryview | None:
        """Checks every frame's size against the specs; returns the pack frame's view."""
        pack = self.pack_view(frames)
        for name, dtype, shape, index, count, want in self._framed:
            sizes = [memoryview(f).nbytes for f in frames[index:index + count]]
            if sizes != want:
                raise ProtocolError("frame_size", f"Tensor {name!r} ({dtype}, shape "
                                    f"{list(shape)}) needs frames of {want[:4]} bytes. "
                                    f"Received: {sizes[:4]}")
        return pack


_EMPTY = _Layout([])
_LAYOUTS: LRU[bytes, _Layout] = LRU(256)  # layouts by packed spec list (a fuzzer's too)
_MAX_LAYOUT_KEY = 64 * 1024  # longer packed spec lists are validated every time


def _layout_of(packed: Any, max_tensors: int, max_bytes: int = DEFAULT_MAX_BYTES,
               nframes: int | None = None) -> _Layout:
    """The layout of a header's `tensors` field (msgpack bytes of the spec list).

    A spec list is built into a layout only once its declared sizes fit
    `max_bytes` and its frame count is `nframes` (the frames received).
    """
    if packed is None:
        return _EMPTY
    if not isinstance(packed, bytes):
        raise ProtocolError("bad_header", f"`tensors` must be msgpack bytes (bin) of a list "
                            f"of [name, dtype, shape, nframes]. Received: "
                            f"{type(packed).__name__}")
    layout = _LAYOUTS.get(packed)
    if layout is None:
        specs = _check_specs(_unpack_specs(packed, max_tensors), max_bytes, nframes)
        layout = _Layout(specs)
        if len(packed) <= _MAX_LAYOUT_KEY:
            _LAYOUTS.put(packed, layout)
    if len(layout.names) > max_tensors:  # the cache is shared by servers of any limit
        _too_many_tensors(len(layout.names), max_tensors)
    if layout.nbytes > max_bytes:
        _too_large("The message's tensors", layout.nbytes, max_bytes)
    return layout


def _unpack_specs(packed: bytes, max_tensors: int) -> list:
    count = _array_length(packed)
    if count is not None and count > max_tensors:  # refused before unpacking a single spec
        _too_many_tensors(count, max_tensors)
    # Shapes have at most 32 dimensions (`_check_spec`); specs hold no maps.
    return _unpack(packed, "`tensors`", list, "list of [name, dtype, shape, nframes]",
                   max_array_len=max(max_tensors, 32), max_map_len=0)


def _array_length(packed: bytes) -> int | None:
    """The length of the msgpack array `packed` starts with (None: not an array)."""
    first = packed[0] if packed else None
    if first is not None and 0x90 <= first <= 0x9F:  # fixarray
        return first & 0x0F
    if first in (0xDC, 0xDD):  # array 16 / array 32, big-endian length
        width = 2 if first == 0xDC else 4
        return int.from_bytes(packed[1:1 + width], "big") if len(packed) > width else None
    return None


def _too_many_tensors(count: int, max_tensors: int) -> None:
    raise ProtocolError("too_many_tensors", f"A message may carry at most {max_tensors} "
                        f"tensors. Received: {count}")


def _unpack_header(frame: Any) -> dict[str, Any]:
    raw = memoryview(frame)
    if raw.nbytes > MAX_HEADER_BYTES:
        raise ProtocolError("header_too_large", f"The header frame has {raw.nbytes} bytes; "
                            f"the limit is {MAX_HEADER_BYTES}.")
    return _unpack(raw, "The header", dict, "map", strict_map_key=True,
                   max_array_len=1 << 20, max_map_len=1024)


def _unpack(data: Any, what: str, kind: type, kind_name: str, **limits: Any) -> Any:
    """Unpacks msgpack `data` that must hold a `kind`; a `bad_header` error otherwise."""
    try:
        value = msgpack.unpackb(data, raw=False, **limits)
    except Exception as exc:  # msgpack raises many unrelated exception types
        raise ProtocolError("bad_header", f"{what} is not valid msgpack: "
                            f"{type(exc).__name__}: {exc}") from None
    if not isinstance(value, kind):
        raise ProtocolError("bad_header", f"{what} must be a msgpack {kind_name}. "
                            f"Received: {type(value).__name__}")
    return value


def _check_envelope(header: dict[str, Any], expect_ops: frozenset[str]) -> None:
    version = header.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:  # not 2.0, not True
        raise ProtocolError("unsupported_version", f"Protocol version must be "
                            f"{PROTOCOL_VERSION}. Received: v={version!r:.100} (run the same "
                            f"distflow version on workers and servers)")
    op = header.get("op")
    if not isinstance(op, str) or op not in expect_ops:
        raise ProtocolError("unknown_op", f"`op` must be one of {sorted(expect_ops)}. "
                            f"Received: op={op!r:.100}")
    for key in ("req", "step", "sender", "epoch"):
        value = header.get(key)
        if value is None and (key in ("req", "sender") or key not in header):
            continue  # absent, or a nil req or sender (an anonymous tool); nil step/epoch: no
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError("bad_field", f"`{key}` must be an int. Received: "
                                f"{key}={value!r:.100}")
        if key in ("step", "epoch") and not 0 <= value <= MAX_STEP:
            raise ProtocolError("bad_field", f"`{key}` must be an int in [0, 2**63). "
                                f"Received: {key}={value!r}")


def _check_specs(specs: list, max_bytes: int = DEFAULT_MAX_BYTES,
                 nframes: int | None = None) -> list[list]:
    """Each spec's fields, unique names, the declared bytes in all (at most `max_bytes`)
    and the declared frames (exactly `nframes`, when given); `_layout_of` checked the
    list and its length. Nothing is allocated per declared byte or frame."""
    seen, total, frames = set(), 0, 1
    for spec in specs:
        nbytes = _check_spec(spec, max_bytes)
        if spec[0] in seen:
            raise ProtocolError("duplicate_tensor", f"Tensor {spec[0]!r:.100} appears twice.")
        seen.add(spec[0])
        total += nbytes
        if total > max_bytes:
            _too_large("The message's tensors", total, max_bytes)
        frames += spec[3]
    frames += any(spec[3] == 0 for spec in specs)  # the pack frame
    if nframes is not None and frames != nframes:
        _wrong_frame_count(frames, nframes)
    return specs


def _wrong_frame_count(described: int, received: int) -> None:
    raise ProtocolError("frame_count", f"The header describes {described - 1} data frames but "
                        f"the message has {received - 1}. Send one pack frame for the tensors "
                        f"with nframes 0, then one frame per {FRAME_BYTES} bytes of each other "
                        f"tensor, in header order.")


def _check_spec(spec: Any, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Checks one spec's fields; returns its declared bytes (at most `max_bytes`)."""
    if not (isinstance(spec, list) and len(spec) == 4 and isinstance(spec[0], str)):
        raise ProtocolError("bad_spec", f"A tensor spec must be [name, dtype, shape, "
                            f"nframes]. Received: {spec!r:.200}")
    name, dtype, shape, count = spec
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ProtocolError("bad_dtype", f"Tensor {name!r:.100}: dtype must be one of "
                            f"{sorted(DTYPES)}. Received: {dtype!r:.100}")
    if not (isinstance(shape, list) and len(shape) <= 32 and all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in shape)):
        raise ProtocolError("bad_shape", f"Tensor {name!r:.100}: shape must be a list of at "
                            f"most 32 ints in [0, 2**40). Received: {shape!r:.200}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ProtocolError("bad_spec", f"Tensor {name!r:.100}: nframes must be an int >= 0. "
                            f"Received: nframes={count!r:.50}")
    nbytes = math.prod(shape) * _ITEMSIZE[dtype]  # Python ints: no overflow
    if nbytes > max_bytes:
        _too_large(f"Tensor {name!r:.100} ({dtype}, shape {shape!r:.200})", nbytes, max_bytes)
    if count != 0 and count != nframes_for(nbytes):
        raise ProtocolError("frame_count", f"Tensor {name!r:.100} has {nbytes} bytes, so it "
                            f"needs {nframes_for(nbytes)} frames (or 0: packed). "
                            f"Received: nframes={count!r}")
    return nbytes


def _too_large(what: str, nbytes: int, max_bytes: int) -> None:
    raise ProtocolError("tensor_too_large", f"{what} declares {nbytes} bytes; this receiver "
                        f"accepts at most {max_bytes} bytes in a message.")


def _join(parts: list[memoryview], dtype: str, shape: list[int]) -> np.ndarray:
    if len(parts) == 1:
        return np.frombuffer(parts[0], dtype=dtype).reshape(shape)
    out = np.empty(shape, dtype=dtype)
    flat = out.reshape(-1).view(np.uint8)
    offset = 0
    for part in parts:
        flat[offset:offset + part.nbytes] = np.frombuffer(part, dtype=np.uint8)
        offset += part.nbytes
    return out


def message_bytes(frames: Sequence[Any]) -> int:
    """Total payload size of a list of frames."""
    total = 0
    for frame in frames:  # (received frames are memoryviews already)
        total += frame.nbytes if type(frame) is memoryview else memoryview(frame).nbytes
    return total


def reheader(frames: Sequence[Any], **fields: Any) -> list:
    """The same message with header fields replaced (data frames shared, not copied)."""
    header = msgpack.unpackb(frames[0], raw=False)
    header.update(fields)
    return [msgpack.packb(header, use_bin_type=True), *frames[1:]]
