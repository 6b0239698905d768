"""TensorFlow's cluster resolvers: who is in the job and which task this process is.

`TFConfigClusterResolver` reads `TF_CONFIG`, `SlurmClusterResolver` an `srun`
step's variables and `SimpleClusterResolver` takes them as given. Each offers
`cluster_spec()` (`distflow.train.ClusterSpec`, TF's `tf.train.ClusterSpec`: job
name -> task addresses), `task_type`, `task_id`, `num_accelerators()` and `master()`.
Strategies read them to find the workers and the parameter servers; the
parsing itself is `cluster_env`'s (shared with the launcher).
"""

from __future__ import annotations

import json
import os
from typing import Any

from distflow.distribute import cluster_env
from distflow.train import ClusterSpec

__all__ = ["ClusterResolver", "ClusterSpec", "SimpleClusterResolver",
           "SlurmClusterResolver", "TFConfigClusterResolver"]


class ClusterResolver:
    """Base: a cluster, this task's type and index, and the RPC layer (unused here)."""

    task_type: str | None = None
    task_id: int | None = None
    rpc_layer: str | None = None

    def cluster_spec(self) -> ClusterSpec:
        raise NotImplementedError

    def num_accelerators(self, task_type: Any = None, task_id: Any = None,
                         config_proto: Any = None) -> dict[str, int]:
        """No accelerators: distflow computes on CPUs."""
        return {}

    def master(self, task_type: str | None = None, task_id: int | None = None,
               rpc_layer: str | None = None) -> str:
        """The address of a task (default: this one), with the RPC layer prefix if any."""
        task_type = self.task_type if task_type is None else task_type
        task_id = self.task_id if task_id is None else task_id
        if task_type is None or task_id is None:
            return ""
        address = self.cluster_spec().task_address(task_type, task_id)
        layer = rpc_layer or self.rpc_layer
        return f"{layer}://{address}" if layer else address

    def worker_addresses(self) -> list[str]:
        """The training tasks in rank order: the chief first, then the workers."""
        spec = self.cluster_spec().as_dict()
        return spec.get("chief", []) + spec.get("worker", [])

    def worker_rank(self) -> int | None:
        """This task's rank among `worker_addresses()` (None for a ps or evaluator task)."""
        chiefs = len(self.cluster_spec().as_dict().get("chief", []))
        if self.task_type == "chief":
            return self.task_id
        if self.task_type == "worker":
            return chiefs + (self.task_id or 0)
        return None


class SimpleClusterResolver(ClusterResolver):
    """A cluster given by hand, as TF's `SimpleClusterResolver`."""

    def __init__(self, cluster_spec: Any, master: str = "", task_type: str | None = None,
                 task_id: int | None = None, environment: str = "",
                 num_accelerators: Any = None, rpc_layer: str | None = None):
        self._spec = ClusterSpec(cluster_spec)
        self.task_type, self.task_id, self.rpc_layer = task_type, task_id, rpc_layer
        self.environment = environment

    def cluster_spec(self) -> ClusterSpec:
        return self._spec


class TFConfigClusterResolver(ClusterResolver):
    """The cluster of the `TF_CONFIG` environment variable (TF's resolver of that name).

    Args:
        task_type, task_id: override TF_CONFIG's task.
        rpc_layer: TF_CONFIG's `rpc_layer` unless given.
        environment: TF_CONFIG's `environment` unless given.
    """

    def __init__(self, task_type: str | None = None, task_id: int | None = None,
                 rpc_layer: str | None = None, environment: str | None = None):
        config = _tf_config()
        task = config.get("task", {}) if isinstance(config.get("task"), dict) else {}
        self._spec = ClusterSpec(config.get("cluster", {}))
        self.task_type = task_type if task_type is not None else task.get("type")
        self.task_id = task_id if task_id is not None else task.get("index")
        self.rpc_layer = rpc_layer if rpc_layer is not None else config.get("rpc_layer")
        self.environment = environment if environment is not None else \
            config.get("environment", "")

    def cluster_spec(self) -> ClusterSpec:
        return self._spec


def _tf_config() -> dict:
    """TF_CONFIG parsed and checked ({} when unset)."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    cluster_env.parse_tf_config(text)  # raises ClusterError naming what is wrong
    return json.loads(text)


class SlurmClusterResolver(ClusterResolver):
    """The cluster of an `srun` step: one task per Slurm task, as TF's resolver of that name.

    Args:
        jobs: {job name: tasks}; default {"worker": all tasks of the step}.
        port_base: the first port of each node's tasks (TF's default 8888).
    """

    def __init__(self, jobs: dict[str, int] | None = None, port_base: int = 8888,
                 gpus_per_node: int | None = None, gpus_per_task: int | None = None,
                 tasks_per_node: Any = None, auto_set_gpu: bool = True,
                 rpc_layer: str = "grpc"):
        info = cluster_env.detect_slurm(os.environ)
        if info is None:
            raise RuntimeError("SlurmClusterResolver: this process is not a task of an srun "
                               "step (SLURM_STEP_NODELIST and SLURM_PROCID are unset).")
        jobs = jobs or {"worker": info.ntasks}
        if sum(jobs.values()) != info.ntasks:
            raise ValueError(f"`jobs` must add up to the step's {info.ntasks} tasks. "
                             f"Received: jobs={jobs}")
        per_node = -(-info.ntasks // len(info.nodes))
        addresses = [f"{info.nodes[i // per_node]}:{port_base + i % per_node}"
                     for i in range(info.ntasks)]
        spec, start = {}, 0
        for job, count in jobs.items():
            spec[job], start = addresses[start:start + count], start + count
        self._spec = ClusterSpec(spec)
        self.task_type, self.task_id = _task_of(jobs, info.procid)
        self.rpc_layer = rpc_layer

    def cluster_spec(self) -> ClusterSpec:
        return self._spec


def _task_of(jobs: dict[str, int], procid: int) -> tuple[str, int]:
    start = 0
    for job, count in jobs.items():
        if procid < start + count:
            return job, procid - start
        start += count
    raise ValueError(f"SLURM_PROCID {procid} is beyond the jobs {jobs}")
