"""TF's `distribute.experimental`: the coordinator-driven parameter-server strategy.

`ParameterServerStrategy(cluster_resolver, variable_partitioner=None)` is TF's
parameter-server training: the resolver's `ps` tasks are asynchronous
distflow parameter servers (`tcp://<ps address>`, started in their own
processes or threads with `distflow.distribute.Server`), the `worker` tasks
count the asynchronous workers, and the process that builds the strategy (the
`chief`, or a process with no task type) is the coordinator. Training runs
through `distribute.coordinator.ClusterCoordinator(strategy)`.

distflow never ships code or pickles across the network, so the coordinator
runs the scheduled functions itself: one thread per `worker` task, each with
its own PS client (worker id = task index), so the servers see as many
asynchronous workers as the cluster lists. Model computation in these threads
is serialized by one lock (NumPy and the Keras objects are shared); it is
released while a thread waits for the servers, so the workers' round trips
overlap each other's computation. `worker` tasks only idle (`Server.join()`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from distflow import process_env
from distflow.distribute import coordinator, partitioners  # noqa: F401  (TF's names)
from distflow.distribute import strategy as strategy_module
from distflow.distribute.cluster import ClusterSpec
from distflow.distribute.strategy import (  # noqa: F401
    MultiWorkerMirroredStrategy,
    _ParameterServerBacked,
    serving_address,
)
from distflow.keras import training_context
from distflow.optimizers import base as optimizer_base

log = logging.getLogger("distflow.strategy")

__all__ = ["MultiWorkerMirroredStrategy", "ParameterServerStrategy", "Server", "coordinator",
           "partitioners"]


def _jobs(cluster_resolver: Any) -> dict[str, list[str]]:
    spec = cluster_resolver.cluster_spec()
    jobs = spec.as_dict() if hasattr(spec, "as_dict") else dict(spec)
    if not jobs.get("ps") or not jobs.get("worker"):
        raise ValueError(f"ParameterServerStrategy needs `ps` and `worker` tasks in the "
                         f"cluster. Received: {jobs!r}")
    return jobs


def _cluster_of(jobs: Mapping[str, list[str]]) -> ClusterSpec:
    return ClusterSpec(ps_addrs=tuple(f"tcp://{a}" for a in jobs["ps"]),
                       num_workers=len(jobs["worker"]), worker_index=0, strategy="async",
                       keys_dir=process_env.read("DISTFLOW_KEYS"),
                       timeout=process_env.read("DISTFLOW_REQUEST_TIMEOUT", checked=False),
                       heartbeat_timeout=process_env.read("DISTFLOW_HEARTBEAT_TIMEOUT",
                                                          checked=False))


class ParameterServerStrategy(_ParameterServerBacked, coordinator.CoordinatedStrategy):
    """TF's coordinator-driven parameter-server strategy (asynchronous).

    Build it on the coordinator (the `chief` task, or a process without a task
    type), create the model and optimizer in its `scope()`, and train with
    `ClusterCoordinator(strategy).schedule(step_fn, args=...)`. Each gradient
    is applied by the servers as it arrives (no global batch, no barrier).

    Args:
        cluster_resolver: a resolver whose cluster has `ps` and `worker` tasks.
        variable_partitioner: a `partitioners` object (or any callable
            `(shape, dtype) -> partitions per axis`): the servers store each
            variable as that many row ranges; None: split by size only.

    Raises:
        ValueError: no `ps` or `worker` tasks, or this task is a `ps`/`worker`
            task (those run `distflow.distribute.Server(...).join()`).
    """

    mode = "async"

    def __init__(self, cluster_resolver: Any, variable_partitioner: Any = None):
        jobs = _jobs(cluster_resolver)
        task_type = getattr(cluster_resolver, "task_type", None)
        if task_type not in (None, "chief"):
            raise ValueError(
                f"ParameterServerStrategy is built by the coordinator (the 'chief' task or a "
                f"process with no task type). Received: task_type={task_type!r}. A "
                f"{task_type!r} task runs `distflow.distribute.Server(cluster_spec, "
                f"job_name={task_type!r}, task_index=i).join()` instead.")
        if variable_partitioner is not None and not callable(variable_partitioner):
            raise TypeError(f"`variable_partitioner` must be a partitioner (a callable of "
                            f"shape and dtype). Received: {variable_partitioner!r}")
        super().__init__(cluster=_cluster_of(jobs))
        self.cluster_resolver = cluster_resolver
        self.variable_partitioner = variable_partitioner
        self._thread = threading.local()  # .worker: the scheduled function's worker
        self._workers: list[coordinator.Worker] = []
        self._compute = threading.Lock()  # the model's computation, one thread at a time
        self._coordinator: Any = None  # the ClusterCoordinator driving it (one)

    # ------------------------------------------------------------ replicas

    @property
    def num_replicas_in_sync(self) -> int:
        """Replicas per step: 1 (each worker applies its own gradients), as TF on CPUs."""
        return 1

    @property
    def worker_index(self) -> int:
        """The worker running the current scheduled function (0 on the coordinator)."""
        worker = getattr(self._thread, "worker", None)
        return 0 if worker is None else worker.index

    def _all_sum(self, array: np.ndarray) -> np.ndarray:
        return array  # `reduce` combines the one replica of this worker, as TF

    def _all_gather(self, array: np.ndarray) -> np.ndarray:
        return array

    def experimental_distribute_dataset(self, dataset: Any, options: Any = None) -> Any:
        """The dataset itself: every worker iterates its own copy (TF does not shard here)."""
        return dataset

    def distribute_datasets_from_function(self, dataset_fn: Callable, options: Any = None) -> Any:
        """`dataset_fn(InputContext)` with this worker's pipeline id (one per worker)."""
        from distflow.distribute import replica

        return dataset_fn(replica.InputContext(self.cluster.num_workers, self.worker_index, 1))

    # ------------------------------------------------------------ workers

    def _enter_scope(self, stack: contextlib.ExitStack) -> None:
        stack.enter_context(optimizer_base.apply_override(self._apply_gradients))
        stack.enter_context(training_context.use_training_context(_CoordinatedFit(self)))

    def _worker_states(self) -> list[coordinator.Worker]:
        """One PS client per `worker` task (created once, on first use)."""
        if not self._workers:
            self._workers = [coordinator.Worker(self, i)
                             for i in range(self.cluster.num_workers)]
        return self._workers

    @contextlib.contextmanager
    def _as_worker(self, worker: Any) -> Iterator[None]:
        outer = getattr(self._thread, "worker", None)
        self._thread.worker = worker
        try:
            yield
        finally:
            self._thread.worker = outer

    def _apply_gradients(self, optimizer: Any, grads_and_vars: list) -> None:
        worker = getattr(self._thread, "worker", None)
        if worker is None:
            raise RuntimeError(
                "Under distribute.experimental.ParameterServerStrategy, "
                "`optimizer.apply_gradients` runs inside a function scheduled with "
                "`ClusterCoordinator(strategy).schedule(fn)`: the coordinator has no worker "
                "of its own to push gradients from.")
        worker.push(optimizer, [(g, v) for g, v in grads_and_vars if g is not None])

    def _registered_variables(self) -> list:
        """The variables the workers have pushed gradients for (held by the servers)."""
        return list(self._variables.values())

    def close(self) -> None:
        """Closes every worker's PS client."""
        for worker in self._workers:
            worker.close()
        super().close()

    def __repr__(self) -> str:
        return (f"ParameterServerStrategy(ps={list(self.cluster.ps_addrs)}, "
                f"workers={self.cluster.num_workers})")


class _CoordinatedFit(training_context.TrainingContext):
    """`model.fit` under the coordinator strategy: its steps are scheduled on the workers."""

    def __init__(self, strategy: ParameterServerStrategy):
        super().__init__()
        self.strategy = strategy

    def coordinated_fit(self, model: Any, x: Any, epochs: int, verbose: Any, callbacks: Any,
                        steps_per_epoch: int | None, initial_epoch: int,
                        **unsupported: Any) -> Any:
        """See `coordinator.fit`."""
        given = sorted(k for k, v in unsupported.items() if v is not None)
        if given:
            raise ValueError(
                f"`fit` under ParameterServerStrategy takes a dataset function "
                f"(`keras.utils.experimental.DatasetCreator(dataset_fn)`) or a dataset of "
                f"(x, y[, sample_weight]) batches as `x`, with `steps_per_epoch`; {given} "
                f"cannot be given. Build them into the dataset instead.")
        return coordinator.fit(self.strategy, model, x, epochs, verbose, callbacks,
                               steps_per_epoch, initial_epoch)


class Server:
    """TF's `tf.distribute.Server`: one task of a cluster.

    A `ps` task runs an asynchronous distflow parameter server on its address
    from the cluster spec, in a thread of this process; `join()` blocks until it
    is shut down, SIGTERM or SIGINT (a final checkpoint, if configured, is
    written). A `worker` task has nothing to run: distflow never ships code
    across the network, so the coordinator runs the workers' steps in its own
    threads; `join()` idles until SIGTERM/SIGINT or `stop()`, as TF's worker
    servers do. Addresses beyond loopback need CURVE keys (`DISTFLOW_KEYS`) or
    `DISTFLOW_INSECURE=1`.

    Args:
        server_or_cluster_def: a cluster spec (resolver's `cluster_spec()`, or a
            dict job -> addresses).
        job_name: "ps" or "worker" (also "chief"/"evaluator": idle like a worker).
        task_index: this task's index in its job.
        protocol, config: accepted for TF compatibility (ZeroMQ is the protocol).
        start: start at once (else call `start()`).
    """

    def __init__(self, server_or_cluster_def: Any, job_name: str | None = None,
                 task_index: int | None = None, protocol: str | None = None,
                 config: Any = None, start: bool = True):
        jobs = _jobs_of(server_or_cluster_def)
        if job_name not in jobs:
            raise ValueError(f"`job_name` must be one of the cluster's jobs {sorted(jobs)}. "
                             f"Received: job_name={job_name!r}")
        index = 0 if task_index is None else task_index
        if isinstance(index, bool) or not isinstance(index, int) or \
                not 0 <= index < len(jobs[job_name]):
            raise ValueError(f"`task_index` must be in [0, {len(jobs[job_name])}) for job "
                             f"{job_name!r}. Received: task_index={task_index!r}")
        self.job_name, self.task_index = job_name, index
        self.target = f"tcp://{jobs[job_name][index]}"
        self._num_workers = max(1, len(jobs.get("worker", [])))
        self._stopped = threading.Event()
        self._ps = None
        if start:
            self.start()

    def start(self) -> None:
        """Starts serving (a `ps` task) or marks the task ready (any other)."""
        if self.job_name != "ps":
            log.info("%s task %d is ready: distflow runs the workers' steps in the "
                     "coordinator's threads (it does not ship code across the network), so "
                     "this task only waits", self.job_name, self.task_index)
            return
        if self._ps is None:
            from distflow.distribute.server import ParameterServer, ServerConfig

            keys = process_env.read("DISTFLOW_KEYS")
            bind = serving_address(self.target, keys, f"ps task {self.task_index}")
            self._ps = ParameterServer(ServerConfig(
                address=bind, shard=self.task_index, mode="async",
                num_workers=self._num_workers, keys_dir=keys, stats_interval=0,
                heartbeat_timeout=process_env.read("DISTFLOW_HEARTBEAT_TIMEOUT"),
                checkpoint_dir=process_env.read("DISTFLOW_CHECKPOINT_DIR"),
                checkpoint_every=process_env.read("DISTFLOW_CHECKPOINT_EVERY")))
            self._ps.start()

    @property
    def parameter_server(self) -> Any:
        """The running `ParameterServer` of a `ps` task (None for other tasks)."""
        return self._ps

    def join(self) -> None:
        """Blocks until this task ends: shutdown request, `stop()`, SIGTERM or SIGINT."""
        restore = _on_signals(self._stopped.set)
        try:
            while not self._stopped.wait(0.2):
                if self._ps is not None and not self._ps.running:
                    break  # a `shutdown` request ended the server
        finally:
            restore()
            self.stop()

    def stop(self) -> None:
        """Ends the task (a `ps` task's server writes its final checkpoint)."""
        self._stopped.set()
        if self._ps is not None:
            self._ps.stop()


def _jobs_of(cluster: Any) -> dict[str, list[str]]:
    if hasattr(cluster, "cluster_spec"):
        cluster = cluster.cluster_spec()
    if hasattr(cluster, "as_dict"):
        cluster = cluster.as_dict()
    if not isinstance(cluster, Mapping):
        raise TypeError(f"`server_or_cluster_def` must be a cluster spec or a dict of job "
                        f"name -> addresses. Received: {cluster!r}")
    return {str(job): list(tasks) for job, tasks in cluster.items()}


def _on_signals(handler: Callable[[], None]) -> Callable[[], None]:
    """Makes SIGTERM/SIGINT call `handler` (main thread only); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, lambda *_: handler())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]


strategy_module._RESOLVER_STRATEGY[:] = [ParameterServerStrategy]
