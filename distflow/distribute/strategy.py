"""Distribution strategies: where `optimizer.apply_gradients` sends its gradients.

Inside `strategy.scope()` two hooks are installed, so user code does not change:

* the optimizers' apply override: `apply_gradients` pushes the gradients to the
  parameter servers (`PSClient.push_pull`) and writes the parameters they send
  back into the variables, instead of updating locally;
* the Keras training context: `model.fit` shards each global batch by worker,
  shuffles with a seed shared by all workers, lets only the chief print and
  write files, and syncs the initial parameters before the first step.

`MirroredStrategy` is synchronous (the servers average one gradient per live
worker per step); `ParameterServerStrategy` is asynchronous (each gradient is
applied as it arrives). Both keep one replica per process.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from distflow import process_env, random, strategy_stack
from distflow.data import Dataset, auto_shard
from distflow.distribute import replica
from distflow.distribute.client import PSError
from distflow.distribute.cluster import ClusterSpec
from distflow.distribute.exchange import STARTUP_TIMEOUT
from distflow.distribute.optimizer_wire import (  # noqa: F401  (their old home)
    _array,
    learning_rate_change,
    optimizer_config,
)
from distflow.keras import training_context
from distflow.optimizers import base as optimizer_base
from distflow.tensor import Tensor, Variable

log = logging.getLogger("distflow.strategy")


class Strategy:
    """The default: one process, local updates. Base of the distributed strategies."""

    def __init__(self) -> None:
        self.cluster: ClusterSpec | None = None

    @property
    def num_replicas_in_sync(self) -> int:
        """Workers whose gradients are combined per step (1 locally)."""
        return 1

    @property
    def worker_index(self) -> int:
        return 0

    @property
    def is_chief(self) -> bool:
        """Whether this process prints progress, evaluates and writes files."""
        return True

    @contextlib.contextmanager
    def scope(self) -> Iterator[Strategy]:
        """Context in which models are built, compiled and trained under this strategy.

        Variables, models and optimizers created inside belong to this strategy:
        `fit`, `evaluate`, `predict` and `apply_gradients` use it wherever they are
        called later, as in TensorFlow.
        """
        with contextlib.ExitStack() as stack:
            strategy_stack.push(self)
            stack.callback(strategy_stack.pop, self)
            self._enter_scope(stack)
            yield self

    def _enter_scope(self, stack: contextlib.ExitStack) -> None:
        """Installs what this strategy changes inside its scope (nothing locally)."""

    # ------------------------------------------------ custom loops (distribute/replica.py)

    def _summed_replicas(self) -> int:
        """Replicas whose gradients a step sums inside `run` (1: each applies its own)."""
        return 1

    def run(self, fn: Callable, args: Sequence[Any] = (), kwargs: dict | None = None) -> Any:
        """Runs `fn(*args, **kwargs)` on this process's replica, in its replica context.

        There is one replica per process, so per-replica values are this process's
        values; combine them with `reduce` or `gather`.
        """
        context = replica.ReplicaContext(self, self.worker_index, self._summed_replicas())
        entered = contextlib.nullcontext() if strategy_stack.current() is self else self.scope()
        with entered, strategy_stack.in_replica(context):
            return fn(*args, **(kwargs or {}))

    def reduce(self, reduce_op: Any, value: Any, axis: int | None = None) -> Tensor:
        """`value` combined over the replicas (and along `axis` first, when given).

        Args:
            reduce_op: `ReduceOp.SUM` or `ReduceOp.MEAN` (or their names).
            value: this replica's value (a tensor, array or number).
            axis: also reduce along this axis of each replica's value (None: not).

        Returns:
            The same tensor on every worker.
        """
        return replica.reduce_local(replica.reduce_op(reduce_op), value, axis, self._all_sum)

    def gather(self, value: Any, axis: int) -> Tensor:
        """The replicas' values concatenated along `axis`, in worker order."""
        array = np.asarray(value.value if isinstance(value, Tensor) else value)
        front = np.moveaxis(array, axis, 0)
        return Tensor._wrap(np.moveaxis(self._all_gather(np.ascontiguousarray(front)), 0, axis))

    def experimental_local_results(self, value: Any) -> tuple:
        """This process's values of a per-replica value (one replica per process)."""
        return (value,)

    def experimental_distribute_dataset(self, dataset: Any, options: Any = None) -> Any:
        """`dataset`'s elements (global batches) split into this replica's rows.

        Every worker must iterate the same elements in the same order (an unseeded
        shuffle is seeded equally in every worker started by the launcher).
        """
        if self._summed_replicas() == 1:
            n = self.num_replicas_in_sync  # asynchronous: each worker its own batches
            return auto_shard(dataset, n, self.worker_index) if isinstance(dataset, Dataset) \
                else dataset if n == 1 else dataset.shard(n, self.worker_index)
        return replica.DistributedDataset(dataset, self.worker_index, self.num_replicas_in_sync)

    def distribute_datasets_from_function(self, dataset_fn: Callable, options: Any = None) -> Any:
        """`dataset_fn(InputContext)`: the function shards and batches per replica itself."""
        context = replica.InputContext(self.num_replicas_in_sync, self.worker_index,
                                       self._summed_replicas())
        return dataset_fn(context)

    def _all_sum(self, array: np.ndarray) -> np.ndarray:
        return array  # one replica

    def _all_gather(self, array: np.ndarray) -> np.ndarray:
        return array

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LocalStrategy(Strategy):
    """Single-process training; what `get_strategy()` returns without a launcher."""


class _ParameterServerBacked(Strategy):
    """Shared machinery of the mirrored and asynchronous strategies."""

    mode = "mirrored"

    def __init__(self, cluster: ClusterSpec | None = None, client_factory: Callable | None = None,
                 allow_local: bool = False):
        super().__init__()
        if cluster is None:
            cluster = ClusterSpec.from_env()
            if cluster is not None and cluster.strategy != self.mode:
                raise ValueError(
                    f"The launcher started {cluster.strategy!r} parameter servers "
                    f"(DISTFLOW_STRATEGY={cluster.strategy}) but the script builds "
                    f"{type(self).__name__}, which needs {self.mode!r} ones. Launch with "
                    f"`--strategy {self.mode}`, or use `distflow.distribute.get_strategy()`.")
        if cluster is None and not allow_local:
            raise ValueError(
                f"{type(self).__name__} needs parameter servers: start the script with "
                "`python -m distflow.launch --workers N --ps M ...`, or pass "
                "cluster=ClusterSpec(ps_addrs=[...], num_workers=N, worker_index=i).")
        self.cluster = cluster
        self._client_factory = client_factory
        self._client = None
        self._version = 0
        self.position: dict[str, int] = {}  # sent with every push (recorded in checkpoints)
        # The plain-number learning rate the servers were last told by (or reported to)
        # this worker; None: they run a schedule, or nothing was said yet.
        self._told_learning_rate: float | None = None
        self.fitted = False  # a `fit` ran in this process (the next one does not resume)
        self._collectives = 0  # reductions and gathers run so far (their keys)
        self._variables: dict[str, Variable] = {}  # registered with the servers, by name

    @property
    def num_replicas_in_sync(self) -> int:
        return self.cluster.num_workers if self.cluster else 1

    @property
    def worker_index(self) -> int:
        return self.cluster.worker_index if self.cluster else 0

    @property
    def is_chief(self) -> bool:
        return self.cluster.is_chief if self.cluster else True

    @property
    def client(self):
        """The PS client, connected on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self):
        if self._client_factory is not None:
            return self._client_factory(self.cluster)
        from distflow.distribute.client import PSClient

        c = self.cluster
        # In sync mode a request legitimately waits for the slowest live worker;
        # the servers bound that wait by declaring silent workers dead after
        # heartbeat_timeout, so the client's own bound sits well above it.
        timeout = max(c.timeout, 3 * c.heartbeat_timeout + 30)
        client = PSClient(list(c.ps_addrs), worker_id=c.worker_index, timeout=timeout,
                          keys_dir=c.keys_dir)
        # Heartbeats from a thread keep this worker alive on the servers while it
        # evaluates, loads data or waits in a long step.
        client.start_heartbeats(interval=max(0.5, c.heartbeat_timeout / 4))
        return client

    def _enter_scope(self, stack: contextlib.ExitStack) -> None:
        if self.cluster is None:
            return  # one local replica (a plain process): local updates
        stack.enter_context(optimizer_base.apply_override(self._apply_gradients))
        stack.enter_context(training_context.use_training_context(_FitContext(self)))

    # ------------------------------------------------------------ parameters

    def _summed_replicas(self) -> int:
        return self.num_replicas_in_sync if self.mode == "mirrored" else 1

    def _all_sum(self, array: np.ndarray) -> np.ndarray:
        return array if self.cluster is None else self._collective("sum", array)

    def _all_gather(self, array: np.ndarray) -> np.ndarray:
        return array if self.cluster is None else self._collective("gather", array)

    def _collective(self, kind: str, array: np.ndarray) -> np.ndarray:
        self._collectives += 1  # the same count on every worker: the key of this one
        return self.client.collective(kind, self._collectives, array)

    def sync_variables(self, variables: Sequence[Variable], optimizer: Any) -> None:
        """Registers variables with the servers (the chief's values win) and loads them.

        Every worker calls this before its first step; the chief's values (or, in a
        restarted run, the servers' current ones) end up in every worker's variables.
        """
        fresh = [v for v in variables if v.name not in self._variables]
        if not fresh:
            return
        first = not self._variables
        with _patient(self.client, getattr(self.cluster, "startup_timeout", None)
                      if first else None):
            params = self.client.init({v.name: v.value for v in fresh},
                                      optimizer_config(optimizer))
        self._write(fresh, params)
        self._variables.update((v.name, v) for v in fresh)
        if first:
            self._adopt_server_learning_rate(optimizer)
            if self.worker_index > 0:
                # Each replica draws its own dropout noise, as in TF's strategies:
                # with the seed every worker set, they would all drop the same units
                # at the same step. The chief keeps the stream of a one-process run.
                random.fold_in(self.worker_index)

    def pull_variables(self, variables: Sequence[Variable]) -> None:
        """Loads the servers' current values into `variables` (registered ones)."""
        registered = [v for v in variables if v.name in self._variables]
        params = self.client.pull([v.name for v in registered])
        self._write(registered, params)

    def _adopt_server_learning_rate(self, optimizer: Any) -> None:
        """Takes the servers' learning rate when it is a number.

        It differs from this optimizer's when another worker initialised the
        servers, or when they resumed from a checkpoint taken after a callback
        changed the rate: the local optimizer (and the callbacks reading it) then
        show the rate really in use.
        """
        reported = [h.get("learning_rate") for h in self.client.last_replies]
        numbers = [r for r in reported if isinstance(r, int | float) and not isinstance(r, bool)]
        if not numbers:
            return
        self._told_learning_rate = float(numbers[0])
        if hasattr(optimizer, "_learning_rate_source") and \
                optimizer._learning_rate_source() != self._told_learning_rate:
            optimizer.learning_rate = self._told_learning_rate

    def _learning_rate_change(self, optimizer: Any) -> float | None:
        """The optimizer's rate if it is a number the servers have not been told yet."""
        return learning_rate_change(optimizer, self._told_learning_rate)

    def _write(self, variables: Sequence[Variable], params: dict[str, np.ndarray]) -> None:
        for v in variables:
            np.copyto(v.value, params[v.name], casting="same_kind")

    def _apply_gradients(self, optimizer: Any, grads_and_vars: list) -> None:
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        variables = [v for _, v in pairs]
        self.sync_variables(variables, optimizer)
        grads = {v.name: _array(g, v) for g, v in pairs}
        if strategy_stack.current_replica() is not None and self._summed_replicas() > 1:
            # Inside `run` the replicas' gradients are summed, as in TF; the servers average.
            scale = self._summed_replicas()
            grads = {name: g * g.dtype.type(scale) for name, g in grads.items()}
        learning_rate = self._learning_rate_change(optimizer)
        if "step" in self.position:
            self.position["step"] += 1  # steps of the epoch done once this one is applied
        # The reply is written straight into the variables' arrays (no new array and
        # second copy per step).
        targets = {v.name: v.value for v in variables}
        try:
            self.client.push_pull(grads, version=self._version, out=targets,
                                  position=self.position or None, learning_rate=learning_rate)
        except PSError as error:
            self._recover(error, optimizer, targets)
        if learning_rate is not None:
            self._told_learning_rate = learning_rate
        self._version = self.client.last_version

    def _recover(self, error: PSError, optimizer: Any, targets: dict) -> None:
        """Handles a refused step: a restarted empty server is re-seeded, then the step is
        sent again (servers that applied it do not apply it twice); the end of the
        chief's fit stops this worker's `fit`. Anything else is raised."""
        for _ in range(self.client.num_shards):
            if error.reason == "run_finished":
                raise training_context.StopTraining(
                    f"Worker {self.worker_index} stops: the chief's fit is over, so no step "
                    f"can follow ({error.address}).") from None
            if error.reason != "not_initialized":
                raise error
            self._reseed(optimizer, error.address)
            try:
                self.client.repeat_push_pull(out=targets)
                return
            except PSError as again:
                error = again
        raise error

    def _reseed(self, optimizer: Any, address: str) -> None:
        """The chief gives a server that came back empty its current parameters; another
        worker waits for that (`init` answers it once the chief has)."""
        if self.is_chief:
            log.warning("Parameter server %s came back empty (no checkpoint): the chief "
                        "re-seeds it from its current parameters; that server's optimizer "
                        "slots start again from zero", address)
        values = {name: v.value for name, v in self._variables.items()}
        self.client.init(values, optimizer_config(optimizer), reseed=self.is_chief)

    def server_hello(self) -> dict:
        """Shard 0's `hello` reply (position, mode, whether this worker rejoined, ...)."""
        headers = self.client.hello()
        return headers[0] if headers else {}

    def close(self) -> None:
        """Closes the client's sockets."""
        if self._client is not None:
            self._client.close()
            self._client = None


@contextlib.contextmanager
def _patient(client: Any, startup_timeout: float | None):
    """Raises the client's request timeout to the run's startup deadline for a first
    contact (servers and chief may start minutes apart, e.g. pods scheduled late)."""
    saved = getattr(client, "timeout", None)
    if startup_timeout is None or saved is None or startup_timeout <= saved:
        yield
        return
    saved_setting = client.timeout_setting
    client.timeout, client.timeout_setting = float(startup_timeout), STARTUP_TIMEOUT
    try:
        yield
    finally:
        client.timeout, client.timeout_setting = saved, saved_setting


# The class TF's `ParameterServerStrategy(cluster_resolver)` builds: the coordinator-driven
# strategy, which `distribute.experimental` (above this module) registers when imported;
# `distflow.distribute.ParameterServerStrategy` imports it first.
_RESOLVER_STRATEGY: list[type] = []


class MirroredStrategy(_ParameterServerBacked):
    """Synchronous data parallelism through the parameter servers.

    At every step each server waits for one gradient from every live worker,
    averages them, applies the optimizer once and answers every worker with the
    same new parameters. `fit(batch_size=B)` uses B as the global batch: each of
    the N workers takes B / N rows of it, so N workers match one process with
    batch B on the same data order.

    In a plain process (no launcher, no `cluster`) it is one local replica
    (`num_replicas_in_sync == 1`), as TensorFlow's on one CPU: training updates
    locally.

    Args:
        devices: TF's device list; only CPU names are accepted (each process is
            one replica here).
        cross_device_ops: accepted for TF compatibility; the servers reduce.
        cluster: explicit cluster description (default: from the environment).
        client_factory: builds the PS client (tests).
    """

    mode = "mirrored"

    def __init__(self, devices: Sequence[str] | None = None, cross_device_ops: Any = None, *,
                 cluster: ClusterSpec | None = None, client_factory: Callable | None = None):
        _check_cpu_devices("MirroredStrategy", "devices", devices)
        super().__init__(cluster, client_factory, allow_local=True)

    def __repr__(self) -> str:
        return f"MirroredStrategy({'local' if self.cluster is None else self.cluster.ps_addrs})"


class MultiWorkerMirroredStrategy(MirroredStrategy):
    """TF's multi-worker synchronous strategy: `MirroredStrategy` across processes.

    Where the cluster comes from, first match wins:

    1. the launcher's variables (`DISTFLOW_PS_ADDRS`): its parameter servers;
    2. `cluster_resolver`, or `TF_CONFIG` (TF's multi-worker tutorial lists only
       `chief`/`worker` tasks): the chief (rank 0: the chief task, else worker 0)
       runs one parameter server in a thread of its own process, listening on
       its own TF_CONFIG address, and every task connects there. So processes
       started by hand with TF_CONFIG train together. The chief's process
       waits at exit (up to the heartbeat timeout) for the other workers to
       finish. A non-loopback address needs CURVE keys (`DISTFLOW_KEYS`) or
       `DISTFLOW_INSECURE=1`;
    3. otherwise one local replica.

    Args:
        cluster_resolver: a `distribute.cluster_resolver` resolver.
        communication_options: accepted for TF compatibility (the servers reduce).
    """

    def __init__(self, cluster_resolver: Any = None, communication_options: Any = None, *,
                 cluster: ClusterSpec | None = None, client_factory: Callable | None = None):
        self._server = None
        if cluster is None and not process_env.is_set("DISTFLOW_PS_ADDRS"):
            if cluster_resolver is None and os.environ.get("TF_CONFIG", "").strip():
                from distflow.distribute.cluster_resolver import TFConfigClusterResolver

                cluster_resolver = TFConfigClusterResolver()
            if cluster_resolver is not None:
                cluster, self._server = _chief_hosted_cluster(cluster_resolver)
        self.cluster_resolver = cluster_resolver
        super().__init__(cluster=cluster, client_factory=client_factory)
        if self._server is not None:
            atexit.register(self._close_chief_server)
        elif cluster_resolver is not None:
            # No launcher stops the chief's server: say `bye` at exit so it need not wait
            # out the heartbeat timeout for this worker.
            atexit.register(self.close)

    def _close_chief_server(self) -> None:
        """At the chief's exit: waits for the other workers to leave, then stops the server."""
        server, deadline = self._server, time.monotonic() + self.cluster.heartbeat_timeout
        while time.monotonic() < deadline and any(
                w.alive and not w.left for wid, w in server.workers.items() if wid != 0):
            time.sleep(0.05)
        self.close()
        server.stop()


def _chief_hosted_cluster(resolver: Any) -> tuple[ClusterSpec, Any]:
    """The cluster of `resolver`'s chief/worker tasks, served by a server in the chief."""
    workers, rank = resolver.worker_addresses(), resolver.worker_rank()
    if rank is None or not workers:
        raise ValueError(f"MultiWorkerMirroredStrategy runs on 'chief' and 'worker' tasks; "
                         f"this task is {resolver.task_type!r} {resolver.task_id!r} of "
                         f"{resolver.cluster_spec()!r}. Start `ps` tasks with "
                         f"`python -m distflow.distribute.server` and use "
                         f"ParameterServerStrategy, or give this task a worker role.")
    address = f"tcp://{workers[0]}"
    env = {**os.environ, **process_env.encode({
        "DISTFLOW_PS_ADDRS": [address], "DISTFLOW_ROLE": "worker",
        "DISTFLOW_NUM_WORKERS": len(workers), "DISTFLOW_RANK": rank,
        "DISTFLOW_STRATEGY": "mirrored"})}
    cluster = ClusterSpec.from_env(env)
    return cluster, (_start_chief_server(cluster, address) if rank == 0 else None)


def serving_address(address: str, keys_dir: str | None, who: str) -> str:
    """The address a server of `address` (`tcp://host:port`) binds.

    Loopback binds itself; any other host binds all interfaces on its port, which
    needs CURVE keys (`keys_dir`) or `DISTFLOW_INSECURE=1`.

    Raises:
        ValueError: beyond loopback without keys or the opt-in, naming `who`.
    """
    host = address.rsplit(":", 1)[0].removeprefix("tcp://")
    loopback = host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
    if not loopback and not keys_dir and not process_env.read("DISTFLOW_INSECURE"):
        raise ValueError(f"{who} would serve the parameters on {address}, beyond loopback, "
                         f"in plain TCP. Set DISTFLOW_KEYS to a CURVE key directory "
                         f"(`python -m distflow.keys generate DIR`), or DISTFLOW_INSECURE=1 "
                         f"on a trusted network.")
    return address if loopback else f"tcp://0.0.0.0:{address.rsplit(':', 1)[1]}"


def _start_chief_server(cluster: ClusterSpec, address: str) -> Any:
    from distflow.distribute.server import ParameterServer, ServerConfig

    bind = serving_address(address, cluster.keys_dir, "The chief")
    server = ParameterServer(ServerConfig(address=bind, mode="sync",
                                          num_workers=cluster.num_workers,
                                          heartbeat_timeout=cluster.heartbeat_timeout,
                                          keys_dir=cluster.keys_dir, stats_interval=0))
    server.start()
    log.info("The chief serves the parameters on %s for %d workers", address,
             cluster.num_workers)
    return server


def _check_cpu_devices(who: str, argument: str, devices: Any) -> None:
    """Refuses device names other than CPUs: distflow computes with NumPy on the CPU."""
    names = [devices] if isinstance(devices, str) else list(devices or [])
    bad = [d for d in names if not isinstance(d, str) or "cpu" not in d.lower()]
    if bad:
        raise ValueError(f"{who}: distflow computes on the CPU (one replica per process), so "
                         f"only CPU device names can be given. Received: {argument}={devices!r}. "
                         f"Leave `{argument}` out, and start N worker processes with "
                         f"`python -m distflow.launch --workers N` for N replicas.")


class OneDeviceStrategy(Strategy):
    """TF's one-device strategy: a single local replica on the given CPU device."""

    def __init__(self, device: str = "/cpu:0"):
        super().__init__()
        _check_cpu_devices("OneDeviceStrategy", "device", device)
        self.device = device


class TPUStrategy(Strategy):
    """Not available: distflow runs on CPUs. The constructor says what to use instead."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError(
            "TPUStrategy is not available: distflow trains on CPUs with NumPy. Use "
            "`distflow.distribute.MirroredStrategy()` (synchronous; one replica per worker "
            "process started by `python -m distflow.launch --workers N`) or "
            "`ParameterServerStrategy` (asynchronous), or `OneDeviceStrategy` for one process.")


class ParameterServerStrategy(_ParameterServerBacked):
    """Asynchronous data parallelism: servers apply each gradient as it arrives.

    `fit(batch_size=B)` uses B per worker (workers do not wait for each other, so
    there is no global batch). Staleness (server version minus the version the
    gradient was computed on) is tracked by the servers; `max_staleness` bounds it
    (see docs/protocol.md for the policy).

    Args:
        max_staleness: optional bound; None takes the launcher's setting.
        cluster: explicit cluster description (default: from the environment).
    """

    mode = "async"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """TF's `ParameterServerStrategy(cluster_resolver, variable_partitioner=None)`: a
        resolver as first argument builds the coordinator-driven strategy
        (`distribute.experimental.ParameterServerStrategy`)."""
        first = args[0] if args else kwargs.get("cluster_resolver")
        if hasattr(first, "cluster_spec"):
            if not _RESOLVER_STRATEGY:
                raise ImportError("ParameterServerStrategy(cluster_resolver) is the class of "
                                  "distflow.distribute.experimental: import it from there "
                                  "or as distflow.distribute.ParameterServerStrategy.")
            return _RESOLVER_STRATEGY[0](*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, max_staleness: int | None = None, cluster: ClusterSpec | None = None,
                 client_factory: Callable | None = None):
        super().__init__(cluster, client_factory)
        self.max_staleness = max_staleness if max_staleness is not None else \
            self.cluster.max_staleness


class _FitContext(training_context.TrainingContext):
    """How `model.fit` behaves under a parameter-server strategy."""

    def __init__(self, strategy: _ParameterServerBacked):
        super().__init__()
        c = strategy.cluster
        self.strategy = strategy
        self.num_workers = c.num_workers
        self.worker_index = c.worker_index
        self.is_chief = c.is_chief
        # Mirrored: batch_size is the global batch (as in TF); async: per worker.
        self.batch_size_is_global = strategy.mode == "mirrored"
        self.drop_remainder = strategy.mode == "mirrored"
        self._seed = c.seed
        self._recorded: dict | None = None  # the servers' position when this fit began
        self._resume_steps: dict[int, int] = {}  # epoch -> its steps already done

    def shuffle_seed(self, epoch: int) -> int | None:
        return self._seed * 100003 + epoch  # same order on every worker

    def on_train_begin(self, model: Any) -> None:
        self.strategy.sync_variables(model.trainable_variables, model.optimizer)

    def on_train_end(self, model: Any) -> None:
        self.strategy.fitted = True

    def initial_epoch(self, model: Any, requested: int) -> int:
        # The servers know the epoch the run was in (from a checkpoint after a restart,
        # or from the live workers when this worker rejoins): continue there. The
        # epoch in progress is run again from its start. Only for this process's
        # first `fit`: a later call runs its own epochs, as in Keras. An async worker
        # that joins late for the first time trains every epoch on its own shard
        # (starting at the chief's epoch would leave its rows out of the earlier
        # ones); a mirrored one joins the chief's epoch, to stay in step.
        if self.strategy.fitted:
            return requested
        hello = self.strategy.server_hello()
        position = hello.get("position") or {}
        if self.strategy.mode == "async" and hello.get("rejoined") is False:
            position = hello.get("restored_position") or {}
        self._recorded = position
        recorded = position.get("epoch")
        return max(requested, int(recorded)) if isinstance(recorded, int) else requested

    def resume_point(self, model: Any, epoch: int, steps: int | None) -> tuple[int, int]:
        """Mirrored: the step within `epoch` the servers recorded, so a run stopped in the
        middle of an epoch continues at its next batch (the data order is the same:
        seeded by the epoch). An epoch recorded complete moves on to the next one.
        Only for this process's first `fit`; async workers rerun the epoch in progress.
        """
        position = self._recorded or {}
        step = position.get("step")
        if self.strategy.mode != "mirrored" or position.get("epoch") != epoch or \
                isinstance(step, bool) or not isinstance(step, int) or step <= 0:
            return epoch, 0
        if steps is not None and step >= steps:
            epoch, step = epoch + 1, 0
        self._resume_steps[epoch] = step
        print(f"resumed at epoch {epoch}, step {step}", flush=True)
        return epoch, step

    def on_epoch_begin(self, model: Any, epoch: int) -> None:
        self.strategy.position = {"epoch": int(epoch), "step": self._resume_steps.pop(epoch, 0)}

    def on_epoch_end(self, model: Any, epoch: int, logs: dict) -> None:
        """Shares the chief's stop decision (EarlyStopping and friends run on the chief).

        The chief records it on the servers. Mirrored: the other workers wait for
        it and follow it, so every worker runs the same epochs (one that went on
        alone would wait at the step barrier for a chief that never pushes).
        Async: they look once and stop when the chief stopped at this epoch or
        earlier, or when their own callbacks say so.
        """
        client = self.strategy.client
        if self.is_chief:
            client.epoch_end(epoch, stop=bool(model.stop_training))
        elif self.strategy.mode == "async":
            stop_epoch = client.epoch_end(epoch).get("stop_epoch")
            if isinstance(stop_epoch, int) and stop_epoch <= epoch:
                model.stop_training = True
        else:
            model.stop_training = self._chief_decision(client, epoch, model.stop_training)

    def on_training_done(self, model: Any, epoch: int) -> None:
        """Async: the chief ends `fit` holding the servers' final parameters.

        Every worker tells shard 0 its `fit` is over. The chief then waits until
        no live worker is still training (each has finished `epoch` or is done)
        and pulls the parameters, so evaluating or saving after `fit` sees every
        worker's updates, as with TF's ParameterServerStrategy. Waiting longer
        than the client's `timeout` logs a warning and pulls what is there.
        """
        client = self.strategy.client
        if self.strategy.mode != "async":
            # Mirrored workers already hold the final parameters. Saying `done` lets the
            # servers tell a finished chief from a dead one, and end a straggler's step.
            client.epoch_end(epoch, done=True)
            return
        if not self.is_chief:
            client.epoch_end(epoch, done=True)
            return
        reply, waited = _poll_epoch_end(client, epoch, True, lambda r: not r.get("behind"))
        if waited is not None:
            log.warning("Workers %s were still training %.0f s after the chief finished "
                        "epoch %d; the chief keeps the parameters of now (raise "
                        "DISTFLOW_REQUEST_TIMEOUT, now %.0f s, to wait longer)",
                        reply["behind"], waited, epoch, client.timeout)
        self.strategy.pull_variables(model.trainable_variables)

    def _chief_decision(self, client: Any, epoch: int, own: bool) -> bool:
        """Polls shard 0 until the chief's decision for `epoch` is there (bounded wait)."""
        reply, waited = _poll_epoch_end(
            client, epoch, False, lambda r: r.get("decided") or not r.get("chief_alive"))
        if reply.get("decided"):
            return bool(reply.get("stop"))
        if not reply.get("chief_alive"):
            # The chief is dead or gone: the run goes on without it (elastic),
            # and this worker decides for itself.
            log.warning("The chief is not alive at the end of epoch %d; worker %d keeps "
                        "its own stop decision (%s)", epoch, self.worker_index, own)
            return bool(own)
        raise TimeoutError(
            f"Parameter server {client.addrs[0]}: no stop decision from the chief for "
            f"epoch {epoch} after {waited:.1f} s of `epoch_end` requests, although it "
            f"is alive. Is the chief stuck in validation or a callback? Raise "
            f"DISTFLOW_REQUEST_TIMEOUT (now {client.timeout:.0f} s) if its epochs "
            f"legitimately end that much later.")


def _poll_epoch_end(client: Any, epoch: int, done: bool,
                    settled: Callable[[dict], Any]) -> tuple[dict, float | None]:
    """Asks shard 0 (`epoch_end`), pausing 5 ms doubling to 100 ms, until `settled(reply)`.

    Returns:
        The last reply, and None, or the seconds waited when the client's
        timeout ran out first.
    """
    start, pause = time.monotonic(), 0.005
    while True:
        reply = client.epoch_end(epoch, done=done)
        if settled(reply):
            return reply, None
        waited = time.monotonic() - start
        if waited > client.timeout:
            return reply, waited
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


_current: Strategy | None = None
_default: Strategy | None = None


def default_strategy() -> Strategy:
    """The strategy of objects built outside every scope: one local replica, as TF's default."""
    global _default
    if _default is None:
        _default = LocalStrategy()
    return _default


def get_strategy() -> Strategy:
    """The strategy of the innermost entered scope; else the launcher's, else a local one.

    Outside every scope the same object is returned on every call in a process
    (from `DISTFLOW_*`), so a script may call it wherever it needs the strategy.
    """
    entered = strategy_stack.current()
    if entered is not None:
        return entered  # inside a strategy's scope, as TF
    global _current
    if _current is None:
        cluster = ClusterSpec.from_env()
        if cluster is None:
            _current = LocalStrategy()
        elif cluster.strategy == "async":
            _current = ParameterServerStrategy(cluster=cluster)
        else:
            _current = MirroredStrategy(cluster=cluster)
    return _current


def has_strategy() -> bool:
    """Whether a strategy's scope other than the default one is entered."""
    entered = strategy_stack.current()
    return entered is not None and entered is not _default


def get_replica_context() -> replica.ReplicaContext | None:
    """The innermost `strategy.run`'s context; the default one outside every scope; else None."""
    context = strategy_stack.current_replica()
    if context is not None or strategy_stack.current() is not None:
        return context
    return replica.ReplicaContext(default_strategy(), 0, 1)


def in_cross_replica_context() -> bool:
    """Inside a strategy's scope but outside `strategy.run`."""
    return strategy_stack.current() is not None and strategy_stack.current_replica() is None
