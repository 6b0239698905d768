"""`tf.config` and `tf.device` for a CPU-only, NumPy-backed runtime.

There is exactly one device, the CPU. `list_physical_devices("GPU")` is
empty, so TF scripts that branch on it take their CPU path. Memory growth and
logical-device settings are accepted and change nothing. The intra-op thread
count is the BLAS thread count (OpenBLAS, as NumPy's wheels ship it), set
through the library's own `openblas_set_num_threads` (`distflow.intra_op`), and the
size of the pool that runs a convolution's batch slices in parallel.
"""

from __future__ import annotations

import contextlib
import re
from collections import namedtuple
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from distflow import intra_op

PhysicalDevice = namedtuple("PhysicalDevice", ["name", "device_type"])
LogicalDevice = namedtuple("LogicalDevice", ["name", "device_type"])
LogicalDeviceConfiguration = namedtuple(
    "LogicalDeviceConfiguration", ["memory_limit", "experimental_priority",
                                   "experimental_device_ordinal"], defaults=(None, None, 0))

_CPU = PhysicalDevice("/physical_device:CPU:0", "CPU")
_LOGICAL_CPU = LogicalDevice("/device:CPU:0", "CPU")
_settings: dict[str, Any] = {"visible": [_CPU], "intra": 0, "inter": 0, "soft": True,
                             "eager_functions": False, "determinism": False, "jit": False,
                             "tf32": True, "growth": {}}


def _check_type(device_type: str | None) -> str | None:
    if device_type is None:
        return None
    kind = str(device_type).upper()
    if kind not in ("CPU", "GPU", "TPU", "XLA_CPU", "XLA_GPU"):
        raise ValueError(f"Unknown device type {device_type!r}; use 'CPU', 'GPU' or 'TPU'.")
    return kind


def list_physical_devices(device_type: str | None = None) -> list[PhysicalDevice]:
    """The devices of this host: one CPU (no GPUs or TPUs)."""
    kind = _check_type(device_type)
    return [d for d in [_CPU] if kind in (None, d.device_type)]


def list_logical_devices(device_type: str | None = None) -> list[LogicalDevice]:
    """The devices ops run on: one CPU."""
    kind = _check_type(device_type)
    return [d for d in [_LOGICAL_CPU] if kind in (None, d.device_type)]


def get_visible_devices(device_type: str | None = None) -> list[PhysicalDevice]:
    """The visible physical devices (the CPU)."""
    kind = _check_type(device_type)
    return [d for d in _settings["visible"] if kind in (None, d.device_type)]


def set_visible_devices(devices: Any, device_type: str | None = None) -> None:
    """Accepts the CPU (or an empty list of GPUs); other devices do not exist here."""
    devices = [devices] if isinstance(devices, PhysicalDevice) else list(devices)
    for d in devices:
        if d != _CPU:
            raise ValueError(f"Unrecognized device: {d!r}. distflow runs on the CPU only; "
                             f"the devices are {list_physical_devices()}.")
    if _check_type(device_type) in (None, "CPU") and not devices:
        raise ValueError("The CPU cannot be hidden: distflow has no other device.")


def _set_memory_growth(device: Any, enable: bool) -> None:
    """Accepted for compatibility: there is no device memory to grow on the CPU."""
    _settings["growth"][getattr(device, "name", str(device))] = bool(enable)


def _get_memory_growth(device: Any) -> bool:
    return _settings["growth"].get(getattr(device, "name", str(device)), False)


def _set_logical_config(device: Any, logical_devices: Any) -> None:
    """Accepted; the CPU stays one logical device."""


def _get_logical_config(device: Any) -> None:
    return None


def _get_memory_info(device: str) -> dict:
    raise ValueError(f"No memory information for {device!r}: distflow has no accelerator "
                     "memory (CPU only).")


# -------------------------------------------------------------- threading


def blas_num_threads() -> int | None:
    """The BLAS library's configured thread count (None if no OpenBLAS is loaded)."""
    return intra_op.blas_threads()


def _set_intra(num_threads: int) -> None:
    """Sets the BLAS thread count (0: leave the library's default)."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 0:
        raise ValueError(f"`num_threads` must be a non-negative int. Received: "
                         f"num_threads={num_threads!r}")
    _settings["intra"] = num_threads
    if num_threads:
        intra_op.set_blas_threads(num_threads)


def _set_inter(num_threads: int) -> None:
    """Recorded only: distflow runs one op at a time."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 0:
        raise ValueError(f"`num_threads` must be a non-negative int. Received: "
                         f"num_threads={num_threads!r}")
    _settings["inter"] = num_threads


threading = SimpleNamespace(
    set_intra_op_parallelism_threads=_set_intra,
    get_intra_op_parallelism_threads=lambda: _settings["intra"],
    set_inter_op_parallelism_threads=_set_inter,
    get_inter_op_parallelism_threads=lambda: _settings["inter"],
)

experimental = SimpleNamespace(
    set_memory_growth=_set_memory_growth,
    get_memory_growth=_get_memory_growth,
    list_physical_devices=list_physical_devices,
    list_logical_devices=list_logical_devices,
    get_visible_devices=get_visible_devices,
    set_visible_devices=set_visible_devices,
    set_virtual_device_configuration=_set_logical_config,
    get_virtual_device_configuration=_get_logical_config,
    VirtualDeviceConfiguration=LogicalDeviceConfiguration,
    get_memory_info=_get_memory_info,
    enable_op_determinism=lambda: _settings.__setitem__("determinism", True),
    enable_tensor_float_32_execution=lambda enabled: _settings.__setitem__("tf32", bool(enabled)),
    tensor_float_32_execution_enabled=lambda: _settings["tf32"],
    get_device_details=lambda device: {},
)

optimizer = SimpleNamespace(
    set_jit=lambda enabled: _settings.__setitem__("jit", enabled),
    get_jit=lambda: _settings["jit"],
    set_experimental_options=lambda options: None,
    get_experimental_options=lambda: {},
)


def set_logical_device_configuration(device: Any, logical_devices: Any) -> None:
    """Accepted; the CPU stays one logical device."""
    _set_logical_config(device, logical_devices)


def get_logical_device_configuration(device: Any) -> None:
    """None: no logical-device split is configured."""
    return None


def set_soft_device_placement(enabled: bool) -> None:
    """Recorded; every op runs on the CPU anyway."""
    _settings["soft"] = bool(enabled)


def get_soft_device_placement() -> bool:
    return _settings["soft"]


def run_functions_eagerly(run_eagerly: bool) -> None:
    """With True, every `distflow.function` (Keras's compiled steps too) runs its Python
    function eagerly instead of its traces, as TF's, until set back to False."""
    _settings["eager_functions"] = bool(run_eagerly)


def functions_run_eagerly() -> bool:
    return _settings["eager_functions"]


# ------------------------------------------------------------------ tf.device

_DEVICE = re.compile(r"^/?(?:job:[^/]+/?)?(?:replica:\d+/?)?(?:task:\d+/?)?"
                     r"(?:device:)?(?P<kind>[A-Za-z_]+)?(?::(?P<index>\d+|\*))?$")


def _device_kind(name: str) -> str | None:
    m = _DEVICE.match(name.strip())
    if m is None:
        raise ValueError(f"Invalid device name {name!r}. Expected e.g. '/CPU:0' or "
                         "'/job:worker/task:0/device:CPU:0'.")
    return m.group("kind").upper() if m.group("kind") else None


@contextlib.contextmanager
def device(device_name: Any) -> Iterator[None]:
    """`tf.device`: accepted for CPU names (a no-op); GPU/TPU names raise a clear error."""
    name = "" if device_name is None else str(getattr(device_name, "name", device_name))
    kind = _device_kind(name) if name else None
    if kind in ("GPU", "TPU", "XLA_GPU"):
        raise RuntimeError(f"Device {name!r} is not available: distflow runs on the CPU only. "
                           "Use '/CPU:0' (or remove the tf.device block).")
    if kind not in (None, "CPU", "XLA_CPU"):
        raise ValueError(f"Unknown device type in {name!r}; use '/CPU:0'.")
    yield


experimental_run_functions_eagerly = run_functions_eagerly
experimental_functions_run_eagerly = functions_run_eagerly
