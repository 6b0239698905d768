"""TF1 session configuration protos accepted for compatibility: `ConfigProto`,
`GPUOptions`, `GraphOptions`, `RunOptions`, `OptimizerOptions`.

They store what a script sets (keyword arguments or attributes, nested
options included) and change nothing: distflow has no GPU and no session
thread pools. `compat.v1` re-exports them.
"""

from __future__ import annotations

from typing import Any


class _Options:
    """A message-like bag of fields with TF's defaults; unknown fields raise, as protobuf."""

    _fields: dict[str, Any] = {}

    def __init__(self, **kwargs: Any):
        for key, default in self._fields.items():
            object.__setattr__(self, key, default() if callable(default) else default)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        if key not in self._fields:
            raise AttributeError(f"{type(self).__name__} has no field {key!r}. Fields: "
                                 f"{sorted(self._fields)}")
        object.__setattr__(self, key, value)

    def __repr__(self) -> str:
        set_fields = {k: getattr(self, k) for k in self._fields}
        return f"{type(self).__name__}({set_fields})"

    def CopyFrom(self, other: _Options) -> None:  # noqa: N802  (protobuf's name)
        for key in self._fields:
            object.__setattr__(self, key, getattr(other, key))


class GPUOptions(_Options):
    """GPU options (accepted; there is no GPU)."""

    _fields = {"allow_growth": False, "per_process_gpu_memory_fraction": 0.0,
               "visible_device_list": "", "allocator_type": "", "force_gpu_compatible": False,
               "experimental": None}


class OptimizerOptions(_Options):
    _fields = {"do_common_subexpression_elimination": False, "do_constant_folding": False,
               "opt_level": 0, "global_jit_level": 0}


class GraphOptions(_Options):
    _fields = {"optimizer_options": OptimizerOptions, "build_cost_model": 0,
               "infer_shapes": False, "place_pruned_graph": False,
               "enable_bfloat16_sendrecv": False, "rewrite_options": None}


class ConfigProto(_Options):
    """Session configuration (accepted; distflow uses the CPU and NumPy's BLAS threads)."""

    _fields = {"device_count": dict, "intra_op_parallelism_threads": 0,
               "inter_op_parallelism_threads": 0, "use_per_session_threads": False,
               "allow_soft_placement": False, "log_device_placement": False,
               "gpu_options": GPUOptions, "graph_options": GraphOptions,
               "operation_timeout_in_ms": 0, "isolate_session_state": False,
               "experimental": None}


class RunOptions(_Options):
    _fields = {"trace_level": 0, "timeout_in_ms": 0, "inter_op_thread_pool": 0,
               "output_partition_graphs": False, "report_tensor_allocations_upon_oom": False}

    NO_TRACE, SOFTWARE_TRACE, HARDWARE_TRACE, FULL_TRACE = 0, 1, 2, 3
