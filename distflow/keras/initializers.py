"""Weight initializers, as `keras.initializers`.

An initializer is called as `init(shape, dtype=None)` and returns a tensor.
Random initializers without a `seed` draw from distflow's global generator, so
`distflow.random.set_seed(s)` (or `keras.utils.set_random_seed`) before a model
is built makes its initial weights reproducible; with a `seed` an initializer
returns the same values at every call, as in Keras 3.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distflow import random
from distflow.keras._objects import class_and_config, serialize_object
from distflow.tensor import Tensor


def _dtype(dtype: Any) -> np.dtype:
    return np.dtype("float32" if dtype is None else dtype)


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int | np.integer):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def compute_fans(shape: Any) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight shape, as Keras computes them.

    Dense kernels are (in, out); convolution kernels are (*spatial, in, out), whose
    fans are multiplied by the receptive-field size prod(spatial).
    """
    shape = _shape(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


class Initializer:
    """Base class: subclasses implement `__call__(shape, dtype=None)` and `get_config()`."""

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__.")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-safe)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Recreates the initializer from `get_config()`."""
        return cls(**config)

    def clone(self) -> Initializer:
        """A new initializer with the same config."""
        return type(self).from_config(self.get_config())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """Fills with 0."""

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        return Tensor._wrap(np.zeros(_shape(shape), dtype=_dtype(dtype)))


class Ones(Initializer):
    """Fills with 1."""

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        return Tensor._wrap(np.ones(_shape(shape), dtype=_dtype(dtype)))


class Constant(Initializer):
    """Fills with `value` (a scalar)."""

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        return Tensor._wrap(np.full(_shape(shape), self.value, dtype=_dtype(dtype)))

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


def _window(name: str, length: int, periodic: bool) -> np.ndarray:
    """`scipy.signal.get_window(name, length, fftbins=periodic)`, for the common windows
    without SciPy (any SciPy window when it is installed)."""
    try:
        from scipy.signal import get_window
    except ImportError:
        get_window = None
    if get_window is not None:
        return np.asarray(get_window(name, length, periodic), np.float64)
    size = length + 1 if periodic and length > 1 else length
    n, span = np.arange(size), max(size - 1, 1)
    cosine = {"hann": (0.5, 0.5, 0.0), "hamming": (0.54, 0.46, 0.0),
              "blackman": (0.42, 0.5, 0.08)}
    if name in cosine:
        a, b, c = cosine[name]
        window = a - b * np.cos(2 * np.pi * n / span) + c * np.cos(4 * np.pi * n / span)
    elif name in ("boxcar", "rectangular", "ones"):
        window = np.ones(size)
    elif name == "bartlett":
        window = 1 - np.abs(2 * n / span - 1)
    else:
        raise ValueError(f"Window {name!r} needs SciPy (pip install scipy); without it the "
                         "windows are 'hann', 'hamming', 'blackman', 'bartlett', 'boxcar', or "
                         "an array of length frame_length.")
    return window[:length] if size != length else window


class STFT(Initializer):
    """The real or imaginary part of a windowed DFT matrix, as Keras's STFT initializer.

    For a shape `(frame_length, input_channels, fft_bins)`: kernel[t, 0, k] =
    cos(-2 pi t k / (2 (fft_bins - 1))) (sin for side="imag"), times the window and
    divided by sqrt(sum(window**2)) ("density") or sum(|window|) ("spectrum").

    Args:
        side: "real" or "imag".
        window: a window name ("hann", ...; SciPy's names when SciPy is installed), an
            array of length frame_length, or None.
        scaling: "density", "spectrum" or None.
        periodic: a periodic (DFT-even) window instead of a symmetric one.
    """

    def __init__(self, side: str = "real", window: Any = "hann", scaling: str | None = "density",
                 periodic: bool = False):
        if side not in ("real", "imag"):
            raise ValueError(f"side should be 'real' or 'imag', not {side!r}")
        if isinstance(window, str):
            _window(window, 1, periodic)
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError("Scaling is invalid, it must be `None`, 'density' or 'spectrum'. "
                             f"Received scaling={scaling!r}")
        self.side, self.window, self.scaling, self.periodic = side, window, scaling, periodic

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        dtype = _dtype(dtype)
        frame_length, _, bins = _shape(shape)
        time = np.arange(frame_length, dtype=dtype).reshape(-1, 1, 1)
        freq = np.arange(bins, dtype=dtype).reshape(1, 1, -1) / dtype.type((bins - 1) * 2)
        args = (dtype.type(-2) * time * freq) * dtype.type(np.pi)
        kernel = (np.cos(args) if self.side == "real" else np.sin(args)).astype(dtype)
        if self.window is None:
            return Tensor._wrap(kernel)
        win = _window(self.window, frame_length, self.periodic) if isinstance(
            self.window, str) else np.asarray(self.window)
        if win.shape != (frame_length,):
            raise ValueError("The shape of `window` must be equal to [frame_length]. "
                             f"Received: window shape={win.shape}")
        win = win.astype(dtype).reshape(-1, 1, 1)
        scale = {"density": np.sqrt(np.sum(np.square(win))),
                 "spectrum": np.sum(np.abs(win))}.get(self.scaling, dtype.type(1))
        return Tensor._wrap((kernel * win / scale).astype(dtype))

    def get_config(self) -> dict[str, Any]:
        return {"side": self.side, "window": self.window, "periodic": self.periodic,
                "scaling": self.scaling}


class _Seeded(Initializer):
    def __init__(self, seed: int | None = None):
        if seed is not None and (not isinstance(seed, int | np.integer) or seed < 0):
            raise ValueError(f"`seed` must be a non-negative int or None. Received: seed={seed!r}")
        self.seed = None if seed is None else int(seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


class RandomNormal(_Seeded):
    """Normal samples with `mean` and `stddev`."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        return random.normal(_shape(shape), self.mean, self.stddev, _dtype(dtype), self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """Normal samples redrawn until within two standard deviations of the mean."""

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        return random.truncated_normal(_shape(shape), self.mean, self.stddev, _dtype(dtype),
                                       self.seed)


class RandomUniform(_Seeded):
    """Uniform samples in [minval, maxval)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        return random.uniform(_shape(shape), self.minval, self.maxval, _dtype(dtype), self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
# std of a unit normal truncated to [-2, 2]: dividing by it restores the wanted variance.
_TRUNCATED_STD = 0.87962566103423978


class VarianceScaling(_Seeded):
    """Samples with variance `scale / fan`, fan chosen by `mode`.

    Args:
        scale: positive scaling factor.
        mode: 'fan_in', 'fan_out' or 'fan_avg'.
        distribution: 'truncated_normal', 'untruncated_normal' or 'uniform'.
        seed: optional int seed.
    """

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None):
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"`scale` must be positive. Received: scale={scale}")
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}. Received: mode={mode!r}")
        distribution = "untruncated_normal" if distribution == "normal" else distribution
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"`distribution` must be one of {_DISTRIBUTIONS}. "
                             f"Received: distribution={distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        shape, dtype = _shape(shape), _dtype(dtype)
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return random.uniform(shape, -limit, limit, dtype, self.seed)
        if self.distribution == "untruncated_normal":
            return random.normal(shape, 0.0, math.sqrt(variance), dtype, self.seed)
        stddev = math.sqrt(variance) / _TRUNCATED_STD
        return random.truncated_normal(shape, 0.0, stddev, dtype, self.seed)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


def _preset(name: str, scale: float, mode: str, distribution: str, doc: str) -> type:
    def __init__(self, seed: int | None = None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": doc, "__module__": __name__})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "Uniform in ±sqrt(6 / (fan_in + fan_out)) (Xavier uniform).")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Truncated normal with stddev sqrt(2 / (fan_in + fan_out)).")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "Truncated normal with stddev sqrt(2 / fan_in).")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform",
                    "Uniform in ±sqrt(6 / fan_in).")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "Truncated normal with stddev sqrt(1 / fan_in).")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform",
                       "Uniform in ±sqrt(3 / fan_in).")


class Orthogonal(_Seeded):
    """A (semi-)orthogonal matrix times `gain`; shapes above 2-D are flattened to
    (prod(shape[:-1]), shape[-1])."""

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2. Received: shape={shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        normal = random.normal((max(rows, cols), min(rows, cols)), dtype=np.float64,
                               seed=self.seed).value
        q, r = np.linalg.qr(normal)
        q *= np.sign(np.diag(r))  # makes the decomposition unique (uniform over O(n))
        if rows < cols:
            q = q.T
        return Tensor._wrap((self.gain * q).reshape(shape).astype(_dtype(dtype)))

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """`gain` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def __call__(self, shape: Any, dtype: Any = None) -> Tensor:
        shape = _shape(shape)
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D shape. Received: shape={shape}")
        return Tensor._wrap(self.gain * np.eye(*shape, dtype=_dtype(dtype)))

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


_CLASSES = {cls.__name__: cls for cls in (
    Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
    GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform,
    Orthogonal, Identity)}
_CLASSES.update(OrthogonalInitializer=Orthogonal, IdentityInitializer=Identity,  # Keras 3's
                STFT=STFT, STFTInitializer=STFT)
_ALIASES = {
    "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
    "random_normal": RandomNormal, "normal": RandomNormal, "random_uniform": RandomUniform,
    "uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "xavier_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "xavier_normal": GlorotNormal, "he_normal": HeNormal, "he_uniform": HeUniform,
    "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform, "orthogonal": Orthogonal,
    "identity": Identity, "stft": STFT,
}

# snake_case aliases of the classes, as Keras exports them (keras.initializers.glorot_uniform)
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal, identity = VarianceScaling, Orthogonal, Identity
# Keras 3's longer names of the same classes (keras.initializers.OrthogonalInitializer)
OrthogonalInitializer, IdentityInitializer = Orthogonal, Identity
STFTInitializer = stft = STFT
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_normal, he_uniform, lecun_normal, lecun_uniform = HeNormal, HeUniform, LecunNormal, LecunUniform


def serialize(initializer: Initializer) -> dict[str, Any]:
    """`{"class_name": ..., "config": ...}` of an initializer."""
    return serialize_object(initializer, "initializer")


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None):
    """Inverse of `serialize` (a plain name also works; custom classes via `custom_objects`)."""
    if isinstance(config, str):
        return get(config)
    cls, cfg = class_and_config(config, _CLASSES, "initializer", custom_objects, _ALIASES)
    return cls.from_config(cfg)


def get(identifier: Any) -> Any:
    """Resolves an initializer from a name, a config dict, an instance, a class or a callable.

    Returns None for None. Raises ValueError for anything else.
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown initializer: '{identifier}'. Use one of "
                             f"{sorted(_ALIASES)}.")
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}")
