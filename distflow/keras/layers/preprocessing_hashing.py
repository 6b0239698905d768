"""The Hashing layer, with the hash Keras uses: FarmHash's Fingerprint64.

`farmhash.fingerprint64(data)` is FarmHash's `Fingerprint64`, the hash behind
TensorFlow's `tf.strings.to_hash_bucket_fast`. Keras's salted hashing (SipHash,
`to_hash_bucket_strong`) is not implemented: `salt=` raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distflow.farmhash import _M, _shift_mix, fingerprint64
from distflow.keras.layers.preprocessing_lookup import HostLayer, encode_ids, host_array

__all__ = ["Hashing", "HashedCrossing"]

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
