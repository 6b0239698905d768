"""The fields of a request, validated: what a push, an init or a pull carries.

Functions of a decoded `protocol.Message` (and the shard it is checked against);
they raise `Reject` with the reason code of docs/protocol.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow.distribute.protocol import Message
from distflow.distribute.server.errors import Reject
from distflow.distribute.server.shard import Shard

FINITE_CHUNK = 256 * 1024  # elements per dot product: the zeros stay in the CPU cache
_ZEROS: dict[np.dtype, np.ndarray] = {}


def position(msg: Message) -> dict | None:
    """The training position a request carries (a small map of plain values), or None."""
    value = msg.header.get("position")
    if isinstance(value, dict) and len(value) <= 16:
        return {str(k): v for k, v in value.items() if isinstance(v, int | float | str | bool)}
    return None


def seed_version(msg: Message) -> int | None:
    """An `init`'s `version` (the chief re-seeding a restarted server), validated."""
    version = msg.header.get("version")
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**63:
        raise Reject("bad_field", f"`version` of an `init` must be an int in [0, 2**63). "
                     f"Received: version={version!r:.50}")
    return version


def learning_rate(msg: Message) -> float | None:
    """The optional `learning_rate` of a push, validated (finite, >= 0)."""
    value = msg.header.get("learning_rate")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value < 0:
        raise Reject("bad_learning_rate", f"`learning_rate` must be a finite number >= 0. "
                     f"Received: learning_rate={value!r:.100}")
    return float(value)


def check_tensor(shard: Shard, msg: Message, name: str) -> None:
    """Refuses a tensor of `msg` that does not fit the shard's parameter `name`."""
    shard.check_spec(name, *msg.spec(name))


def require_initialized(shard: Shard) -> None:
    """Refuses requests that need parameters before the chief's `init`."""
    if not shard.initialized:
        raise Reject("not_initialized", "The parameters are not initialized yet: "
                     "the chief must send `init` first.")


def check_gradients(shard: Shard, msg: Message, nonfinite: str) -> bool:
    """Validates a push; returns False when it must be skipped (non-finite, skip policy)."""
    require_initialized(shard)
    if not shard.layout_checked(msg.layout):
        for name in msg.names:
            check_tensor(shard, msg, name)
        shard.remember_layout(msg.layout)
    if all_finite(msg):
        return True
    bad = [n for n in msg.names if not finite(msg.pieces(n))]  # name the culprits
    if not bad:
        return True  # only the pack frame's padding was not finite
    if nonfinite == "reject":
        raise Reject("non_finite", f"Gradient of {bad[0]!r} contains NaN or inf "
                     f"({len(bad)} tensor(s) affected); nothing was applied.")
    return False


def gradients(shard: Shard, msg: Message) -> tuple[dict[str, list[np.ndarray]], Any]:
    """A push's gradients: name -> flat pieces, and the pack frame as the packed
    store's whole gradient when its layout is the store's (else None)."""
    if not shard.packs_like_store(msg.layout):
        return {name: msg.pieces(name) for name in msg.names}, None
    held = shard.store.held
    return ({name: msg.pieces(name) for name in msg.names if name not in held},
            msg.pack_array(shard.store.dtype))


def all_finite(msg: Message) -> bool:
    """True when no tensor of `msg` (nor the pack frame's padding) holds NaN or inf."""
    return all(finite(arrays) for _, arrays in msg.groups())


def finite(pieces: list[np.ndarray]) -> bool:
    """True when no piece holds NaN or inf (pieces are <= one frame long).

    The caller silences NumPy's "invalid" warnings (the service's loop does).
    """
    for piece in pieces:
        if piece.dtype.kind != "f" or not piece.size:
            continue
        if piece.dtype.itemsize < 4:
            if not np.isfinite(piece).all():
                return False
            continue
        # x * 0 is 0 for every finite x and NaN for NaN/inf: a BLAS pass, no mask. In
        # chunks against one cached block of zeros, so only the gradient is read from
        # main memory (a zeros array as long as the gradient doubled the traffic).
        zeros = _ZEROS.get(piece.dtype)
        if zeros is None:
            zeros = _ZEROS[piece.dtype] = np.zeros(FINITE_CHUNK, piece.dtype)
        for start in range(0, piece.size, FINITE_CHUNK):
            part = piece[start:start + FINITE_CHUNK]
            if not math.isfinite(np.dot(part, zeros[:part.size])):
                return False
    return True
