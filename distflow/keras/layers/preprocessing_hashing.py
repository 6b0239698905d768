"""The Hashing layer, with the hash Keras uses: FarmHash's Fingerprint64.

`fingerprint64(data)` is FarmHash's `Fingerprint64` (farmhashna::Hash64), the
hash behind TensorFlow's `tf.strings.to_hash_bucket_fast`, written in pure
Python over 64-bit wrap-around arithmetic. Keras's salted hashing (SipHash,
`to_hash_bucket_strong`) is not implemented: `salt=` raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.keras.layers.preprocessing_lookup import HostLayer, encode_ids, host_array

__all__ = ["Hashing", "HashedCrossing"]

_M = (1 << 64) - 1
_K0, _K1, _K2 = 0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F


def _f64(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 8], "little")


def _f32(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 4], "little")


def _rot(v: int, shift: int) -> int:
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & _M


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _M
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M
    b ^= b >> 47
    return (b * mul) & _M


def _len0to16(s: bytes) -> int:
    n = len(s)
    if n >= 8:
        mul = _K2 + n * 2
        a = (_f64(s, 0) + _K2) & _M
        b = _f64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M
        d = ((_rot(a, 25) + b) * mul) & _M
        return _len16(c, d, mul)
    if n >= 4:
        return _len16(n + (_f32(s, 0) << 3), _f32(s, n - 4), _K2 + n * 2)
    if n > 0:
        y = (s[0] + (s[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (s[n - 1] << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * _K2) ^ (z * _K0)) & _M) * _K2) & _M
    return _K2


def _len17to32(s: bytes) -> int:
    n = len(s)
    mul = _K2 + n * 2
    a, b = (_f64(s, 0) * _K1) & _M, _f64(s, 8)
    c, d = (_f64(s, n - 8) * mul) & _M, (_f64(s, n - 16) * _K2) & _M
    return _len16((_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M,
                  (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)


def _len33to64(s: bytes) -> int:
    n = len(s)
    mul = _K2 + n * 2
    a, b = (_f64(s, 0) * _K2) & _M, _f64(s, 8)
    c, d = (_f64(s, n - 8) * mul) & _M, (_f64(s, n - 16) * _K2) & _M
    y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
    z = _len16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
    e, f = (_f64(s, 16) * mul) & _M, _f64(s, 24)
    g = ((y + _f64(s, n - 32)) * mul) & _M
    h = ((z + _f64(s, n - 24)) * mul) & _M
    return _len16((_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M,
                  (e + _rot((f + a) & _M, 18) + g) & _M, mul)


def _weak32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _f64(s, i), _f64(s, i + 8), _f64(s, i + 16), _f64(s, i + 24)
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def _round(s: bytes, i: int, state: list, mul: int, scale: int) -> None:
    """One 64-byte step of the long-input loop (`scale` is 9 in the final step, else 1)."""
    x, y, z, v, w = state
    x = (_rot((x + y + v[0] + _f64(s, i + 8)) & _M, 37) * mul) & _M
    y = (_rot((y + v[1] + _f64(s, i + 48)) & _M, 42) * mul) & _M
    x ^= (w[1] * scale) & _M
    y = (y + v[0] * scale + _f64(s, i + 40)) & _M
    z = (_rot((z + w[0]) & _M, 33) * mul) & _M
    v = _weak32(s, i, (v[1] * mul) & _M, (x + w[0]) & _M)
    w = _weak32(s, i + 32, (z + w[1]) & _M, (y + _f64(s, i + 16)) & _M)
    state[:] = [z, y, x, v, w]  # x and z swap


def fingerprint64(data: bytes) -> int:
    """FarmHash Fingerprint64 of `data`, an unsigned 64-bit int (TF's string hash)."""
    n = len(data)
    if n <= 16:
        return _len0to16(data)
    if n <= 32:
        return _len17to32(data)
    if n <= 64:
        return _len33to64(data)
    seed = 81
    y = (seed * _K1 + 113) & _M
    z = (_shift_mix((y * _K2 + 113) & _M) * _K2) & _M
    x = (seed * _K2 + _f64(data, 0)) & _M
    state = [x, y, z, (0, 0), (0, 0)]
    end = ((n - 1) // 64) * 64
    for i in range(0, end, 64):
        _round(data, i, state, _K1, 1)
    x, y, z, v, w = state
    mul = (_K1 + ((z & 0xFF) << 1)) & _M
    w0 = (w[0] + ((n - 1) & 63)) & _M
    v0 = (v[0] + w0) & _M
    w0 = (w0 + v0) & _M
    state = [x, y, z, (v0, v[1]), (w0, w[1])]
    _round(data, end + ((n - 1) & 63) - 63, state, mul, 9)
    x, y, z, v, w = state
    return _len16((_len16(v[0], w[0], mul) + _shift_mix(y) * _K0 + z) & _M,
                  (_len16(v[1], w[1], mul) + x) & _M, mul)


def _as_text(value: Any) -> bytes:
    """TF's `as_string` of one value (floats are cast to int64 first, as Keras does)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool | np.bool_):
        return b"1" if value else b"0"
    return str(int(value)).encode()


class Hashing(HostLayer):
    """Hashes strings or integers into `num_bins` bins with FarmHash64, as Keras.

    Args:
        num_bins: number of bins (one of them the mask bin when `mask_value` is set).
        mask_value: a value sent to bin 0; the others then hash into bins 1..num_bins-1.
        salt: must be None (Keras's salted SipHash is not implemented).
        output_mode: "int", "one_hot", "multi_hot" or "count".
        sparse: must be False.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, num_bins: int, mask_value: Any = None, salt: Any = None,
                 output_mode: str = "int", sparse: bool = False, **kwargs: Any):
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        if num_bins is None or num_bins <= 0:
            raise ValueError("The `num_bins` for `Hashing` cannot be `None` or non-positive "
                             f"values. Received: num_bins={num_bins}.")
        if output_mode not in ("int", "one_hot", "multi_hot", "count"):
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             "('int', 'one_hot', 'multi_hot', 'count'). Received: "
                             f"output_mode={output_mode}")
        if salt is not None:
            raise ValueError("distflow's Hashing implements Keras's unsalted FarmHash64 only; "
                             f"salted hashing (SipHash) is not available. Received: salt={salt}")
        if sparse:
            raise ValueError("distflow has no sparse tensors: use sparse=False.")
        self.num_bins, self.mask_value, self.output_mode = int(num_bins), mask_value, output_mode

    def host_call(self, inputs: np.ndarray) -> Any:
        if self.output_mode == "one_hot" and inputs.ndim and inputs.shape[-1] == 1:
            inputs = inputs[..., 0]
        bins = self.num_bins
        flat = inputs.ravel().tolist()
        masked = np.zeros(len(flat), bool)
        if self.mask_value is not None and bins > 1:
            bins -= 1
            masked = np.array([v == self.mask_value for v in flat], bool)
        ids = np.array([fingerprint64(_as_text(v)) % bins for v in flat], np.int64)
        if self.mask_value is not None and self.num_bins > 1:
            ids = np.where(masked, 0, ids + 1)
        ids = ids.reshape(inputs.shape)
        if self.output_mode == "int":
            from distflow.tensor import Tensor
            return Tensor._wrap(ids)
        return encode_ids(ids, self.output_mode, self.num_bins, np.float32)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        if self.output_mode == "int":
            return tuple(input_shape)
        return (*tuple(input_shape)[:-1], self.num_bins) if input_shape else (self.num_bins,)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_bins": self.num_bins,
                "mask_value": self.mask_value, "salt": None, "output_mode": self.output_mode,
                "sparse": False}


# --------------------------------------------------------------- crossing

_CROSS_KEY = 0xDECAFCAFFE  # tf.sparse.cross_hashed's default hash key
_MUL = 0xC6A4A7935BD1E995


def _fingerprint_cat64(fp1: int, fp2: int) -> int:
    """TF's FingerprintCat64: combines two 64-bit fingerprints."""
    result = fp1 ^ _MUL
    result ^= (_shift_mix((fp2 * _MUL) & _M) * _MUL) & _M
    result = (result * _MUL) & _M
    result = (_shift_mix(result) * _MUL) & _M
    return _shift_mix(result)


def _feature_hash(value: Any) -> int:
    """A feature's hash in tf.sparse.cross_hashed: FarmHash64 of strings, ints as themselves."""
    if isinstance(value, str | bytes):
        return fingerprint64(_as_text(value))
    return int(value) & _M


def cross_hash(values: list, num_bins: int) -> int:
    """The bin of one crossed feature tuple, as `tf.sparse.cross_hashed`."""
    hashed = _CROSS_KEY
    for value in values:
        hashed = _fingerprint_cat64(hashed, _feature_hash(value))
    return hashed % num_bins


class HashedCrossing(HostLayer):
    """Crosses two or more categorical features (same shape) and hashes them into bins.

    Args:
        num_bins: number of hash bins.
        output_mode: "int" or "one_hot".
        sparse: must be False.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, num_bins: int, output_mode: str = "int", sparse: bool = False,
                 **kwargs: Any):
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        if output_mode not in ("int", "one_hot"):
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             f"('int', 'one_hot'). Received: output_mode={output_mode}")
        if sparse:
            raise ValueError("distflow has no sparse tensors: use sparse=False.")
        self.num_bins, self.output_mode = int(num_bins), output_mode

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(inputs, list | tuple) or len(inputs) < 2:
            raise ValueError("`HashedCrossing` should be called on a list or tuple of at least "
                             f"two inputs. Received: inputs={inputs!r}")
        return self.host_call([host_array(x) for x in inputs])

    def host_call(self, inputs: list) -> Any:
        shape = inputs[0].shape
        if any(x.shape != shape for x in inputs):
            raise ValueError("All `HashedCrossing` inputs should have the same shape. "
                             f"Received: shapes {[x.shape for x in inputs]}")
        flat = [x.ravel().tolist() for x in inputs]
        ids = np.array([cross_hash(list(row), self.num_bins) for row in zip(*flat)],
                       np.int64).reshape(shape)
        if self.output_mode == "int":
            from distflow.tensor import Tensor
            return Tensor._wrap(ids)
        return encode_ids(ids, "one_hot", self.num_bins, np.float32)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape[0])
        return shape if self.output_mode == "int" else (*shape, self.num_bins)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_bins": self.num_bins,
                "output_mode": self.output_mode, "sparse": False}
