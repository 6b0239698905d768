"""TF's `ClusterCoordinator`: schedules functions on the workers of a parameter-server run.

`ClusterCoordinator(strategy)` starts one thread per `worker` task of
`distribute.experimental.ParameterServerStrategy`. Each thread owns a PS client
whose worker id is its task index, so the servers see one asynchronous worker
per task. `schedule(fn, args)` queues the call for the next free thread and
returns a `RemoteValue` at once; arguments that are per-worker values (from
`create_per_worker_dataset`) become that worker's value. Inside the function,
`optimizer.apply_gradients` pushes through the thread's client.

distflow never ships code across the network: the functions run in the
coordinator's process. Their computation holds one lock (the Keras objects and
metrics are shared, and are updated on the coordinator, as in TF); a thread
releases it while it waits for the servers, so the workers' round trips overlap
each other's computation. `join()` waits for every scheduled call, re-raises the
first error, and loads the servers' final parameters into the variables.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distflow.distribute.optimizer_wire import _array, learning_rate_change, optimizer_config
from distflow.tensor import Tensor, Variable

log = logging.getLogger("distflow.coordinator")

__all__ = ["ClusterCoordinator", "PerWorkerValues", "RemoteValue"]


class RemoteValue:
    """The future result of a scheduled function (TF's `RemoteValue`)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def _set(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error = value, error
        self._done.set()

    def get(self) -> Any:
        """The function's return value (waits for it); raises the function's error."""
        while not self._done.wait(60.0):
            log.info("Still waiting for a scheduled function's result")
        if self._error is not None:
            raise self._error
        return self._value

    def fetch(self) -> Any:
        """The return value with tensors as NumPy values (waits for it)."""
        return _to_numpy(self.get())


class PerWorkerValues:
    """One value per worker (TF's `PerWorkerValues`); a scheduled call gets its worker's."""

    def __init__(self, values: Sequence[Any]):
        self._values = tuple(values)

    def __getitem__(self, index: int) -> Any:
        return self._values[index]

    def __len__(self) -> int:
        return len(self._values)


class PerWorkerDataset(PerWorkerValues):
    """Per-worker datasets; `iter()` gives per-worker iterators."""

    def __iter__(self) -> PerWorkerIterator:
        return PerWorkerIterator([iter(d) for d in self._values])


class PerWorkerIterator(PerWorkerValues):
    """Per-worker iterators: pass it to `schedule`; `next()` on it there gets the worker's."""

    def __iter__(self) -> PerWorkerIterator:
        return self

    def __next__(self) -> Any:
        raise TypeError("A per-worker iterator is read inside a scheduled function: pass it "
                        "in `coordinator.schedule(fn, args=(iterator,))` and call "
                        "`next(iterator)` in `fn`, where it is that worker's iterator.")


class Worker:
    """One `worker` task's thread state: its PS client (worker id = task index)."""

    def __init__(self, strategy: Any, index: int):
        self.strategy, self.index = strategy, index
        self.lock = threading.Lock()  # the client's sockets are used by one thread at a time
        self.synced: set[str] = set()
        self.steps = 0  # gradients this worker pushed
        self.told: float | None = None  # the learning rate the servers last got from it
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from distflow.distribute.client import PSClient

            c = self.strategy.cluster
            self._client = PSClient(list(c.ps_addrs), worker_id=self.index, timeout=c.timeout,
                                    keys_dir=c.keys_dir,
                                    partitions=_axis0(self.strategy.variable_partitioner))
            self._client.start_heartbeats(interval=max(0.5, c.heartbeat_timeout / 4))
        return self._client

    def call(self, fn: Callable[[Any], Any]) -> Any:
        """`fn(client)` with this worker's client held."""
        with self.lock:
            return fn(self.client)

    def push(self, optimizer: Any, pairs: list) -> None:
        """Sends one step's gradients (async) and loads the servers' reply.

        Called with the computation lock held; released during the round trip.
        """
        variables = [v for _, v in pairs]
        grads = {v.name: _array(g, v) for g, v in pairs}
        fresh = {v.name: np.array(v.value) for v in variables if v.name not in self.synced}
        config = optimizer_config(optimizer) if fresh else None
        if fresh and isinstance(config["learning_rate"], float):
            self.told = config["learning_rate"]  # (the chief's, if the servers hold another)
        rate = learning_rate_change(optimizer, self.told)
        compute = self.strategy._compute
        compute.release()
        try:
            if fresh:
                self._initialize(fresh, config)
            params = self.call(lambda c: c.push_pull(grads, learning_rate=rate))
        finally:
            compute.acquire()
        if rate is not None:
            self.told = rate
        _write(variables, params)
        self.strategy._variables.update((v.name, v) for v in variables)
        self.steps += 1

    def _initialize(self, values: dict[str, np.ndarray], config: dict) -> None:
        """Registers `values` with this client; the chief's (worker 0's) client sets them first."""
        chief = self.strategy._worker_states()[0]
        if chief is not self:
            chief.call(lambda c: chief._init(c, values, config))
        self.call(lambda c: self._init(c, values, config))

    def _init(self, client: Any, values: dict[str, np.ndarray], config: dict) -> None:
        missing = {n: a for n, a in values.items() if n not in self.synced}
        if missing:
            client.init(missing, config)
            self.synced.update(missing)

    def pull(self, variables: Sequence[Variable]) -> None:
        """Loads the servers' values of the registered `variables` into them."""
        known = [v for v in variables if v.name in self.synced]
        if known:
            _write(known, self.call(lambda c: c.pull([v.name for v in known])))

    def close(self) -> None:
        with self.lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _axis0(partitioner: Any) -> Callable | None:
    if partitioner is None:
        return None
    return lambda name, shape, dtype: int(partitioner(list(shape), dtype)[0]) if shape else 1


def _write(variables: Sequence[Variable], params: dict[str, np.ndarray]) -> None:
    for v in variables:
        if v.name in params:
            np.copyto(v.value, params[v.name], casting="same_kind")


class CoordinatedStrategy:
    """The base of the strategies a `ClusterCoordinator` drives (TF's coordinator-driven
    `distribute.experimental.ParameterServerStrategy`): they give the coordinator their
    worker threads through `_worker_states()`."""


class ClusterCoordinator:
    """Schedules functions on the workers of a `ParameterServerStrategy` (TF's class).

    Args:
        strategy: a `distribute.experimental.ParameterServerStrategy`.

    Raises:
        ValueError: for any other strategy.
    """

    def __init__(self, strategy: Any):
        if not isinstance(strategy, CoordinatedStrategy):
            raise ValueError(f"ClusterCoordinator needs a distribute.experimental."
                             f"ParameterServerStrategy(cluster_resolver). Received: {strategy!r}")
        if getattr(strategy, "_coordinator", None) is not None:
            raise ValueError("This strategy already has a ClusterCoordinator; use that one.")
        self.strategy = strategy
        strategy._coordinator = self
        self._queue: queue.Queue = queue.Queue()
        self._cond = threading.Condition()
        self._pending = 0
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._serve, args=(w,), daemon=True,
                                          name=f"distflow-worker-{w.index}")
                         for w in strategy._worker_states()]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------ scheduling

    def schedule(self, fn: Callable, args: Sequence[Any] = (),
                 kwargs: dict | None = None) -> RemoteValue:
        """Queues `fn(*args, **kwargs)` for the next free worker; returns its `RemoteValue`.

        Raises:
            The error of an earlier scheduled function not yet reported by `join`.
        """
        self._raise_error()
        result = RemoteValue()
        with self._cond:
            self._pending += 1
        self._queue.put((fn, tuple(args), dict(kwargs or {}), result))
        return result

    def _serve(self, worker: Worker) -> None:
        """The worker thread: in the strategy's scope and pushing through `worker`'s client,
        for this thread only (the coordinator's thread stays outside)."""
        from distflow import strategy_stack
        from distflow.optimizers import base

        with strategy_stack.thread_scope(self.strategy), \
                base.thread_apply_override(self.strategy._apply_gradients):
            while True:
                item = self._queue.get()
                if item is None:
                    return
                self._run(worker, *item)

    def _run(self, worker: Worker, fn: Callable, args: tuple, kwargs: dict,
             result: RemoteValue) -> None:
        strategy = self.strategy
        try:
            if self._error is not None:
                raise RuntimeError("Cancelled: an earlier scheduled function failed "
                                   f"({self._error!r}).")
            with strategy._compute, strategy._as_worker(worker):
                value = fn(*_resolve(args, worker.index), **_resolve(kwargs, worker.index))
            result._set(value)
        except Exception as error:  # reported by join(), as TF
            result._set(error=error)
            with self._cond:
                self._error = self._error or error
        finally:
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def join(self) -> None:
        """Waits for every scheduled function; re-raises the first error.

        Then the coordinator's variables hold the servers' current parameters.
        """
        start, said = time.monotonic(), 0.0
        with self._cond:
            while self._pending:
                self._cond.wait(1.0)
                if self._pending and not any(t.is_alive() for t in self._threads):
                    raise RuntimeError(f"join(): {self._pending} scheduled function(s) can "
                                       f"never run: every worker thread has ended (see the "
                                       f"log for why, or `close()` was called).")
                waited = time.monotonic() - start
                if waited - said >= 60.0:
                    said = waited
                    log.info("join() has waited %.0f s for %d scheduled function(s)",
                             waited, self._pending)
        self._raise_error()
        self._pull_parameters()

    def done(self) -> bool:
        """Whether every scheduled function has finished (raises the first error, if any)."""
        self._raise_error()
        with self._cond:
            return self._pending == 0

    def _raise_error(self) -> None:
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _pull_parameters(self) -> None:
        strategy = self.strategy
        variables = list(strategy._registered_variables())
        if variables:
            with strategy._compute:
                strategy._worker_states()[0].pull(variables)

    # ------------------------------------------------------------ data and values

    def create_per_worker_dataset(self, dataset_fn: Any) -> PerWorkerDataset:
        """`dataset_fn()` once per worker (its InputContext gives the worker's pipeline id).

        Args:
            dataset_fn: a function of no arguments returning a dataset (it may call
                `strategy.distribute_datasets_from_function`), or a dataset.
        """
        datasets = []
        for worker in self.strategy._worker_states():
            with self.strategy._as_worker(worker):
                datasets.append(dataset_fn() if callable(dataset_fn) else dataset_fn)
        return PerWorkerDataset(datasets)

    def fetch(self, val: Any) -> Any:
        """`val` with every `RemoteValue` (nested in lists, tuples, dicts) fetched."""
        return _map(val, lambda v: v.fetch() if isinstance(v, RemoteValue) else _to_numpy(v))

    def close(self) -> None:
        """Stops the worker threads (after the queued functions) and closes the clients."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(10.0)
        self.strategy._coordinator = None
        self.strategy.close()


def _map(value: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple) and not isinstance(value, PerWorkerValues):
        return type(value)(_map(v, fn) for v in value)
    return fn(value)


def _resolve(value: Any, index: int) -> Any:
    return _map(value, lambda v: v[index] if isinstance(v, PerWorkerValues) else v)


def _to_numpy(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return _map(value, _to_numpy)
    return value.numpy() if isinstance(value, Tensor) else value


def fit(strategy: Any, model: Any, x: Any, epochs: int, verbose: Any, callbacks: Any,
        steps_per_epoch: int | None, initial_epoch: int) -> Any:
    """`model.fit` under the coordinator strategy: every step is a scheduled `train_step`.

    Each epoch schedules `steps_per_epoch` calls of `model.train_step(next batch)`
    on the free worker threads (each reads its own worker's dataset: a
    `DatasetCreator`'s function called with that worker's InputContext, or the
    given dataset, repeated), then joins. The model's metrics accumulate on the
    coordinator; the epoch's logs are read after the join. Batch-level
    callbacks see the epoch's last step only (the steps run asynchronously).

    Returns:
        The `History` callback.
    """
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or \
            steps_per_epoch < 1:
        raise ValueError(f"`steps_per_epoch` must be a positive int under "
                         f"ParameterServerStrategy (the workers' datasets are read "
                         f"asynchronously, so an epoch has no natural end). Received: "
                         f"steps_per_epoch={steps_per_epoch!r}")
    coordinator = strategy._coordinator or ClusterCoordinator(strategy)
    iterators = iter(coordinator.create_per_worker_dataset(lambda: _worker_batches(strategy, x)))
    _build(model, x, strategy)
    cbs = model._callbacks(callbacks, verbose, epochs, steps_per_epoch, add_history=True)
    model.stop_training, logs, model._initial_epoch = False, {}, None
    cbs.on_train_begin()
    start = initial_epoch if model._initial_epoch is None else model._initial_epoch
    model._initial_epoch = None  # BackupAndRestore's epoch, when it restored one
    for epoch in range(start, epochs):
        model.reset_metrics()
        cbs.on_epoch_begin(epoch)
        for _ in range(steps_per_epoch):
            coordinator.schedule(_train_step, args=(model, iterators))
        coordinator.join()
        logs = {k: float(np.asarray(_to_numpy(v))) for k, v in model.get_metrics_result().items()}
        cbs.on_train_batch_end(steps_per_epoch - 1, logs)
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    return model.history


def _worker_batches(strategy: Any, x: Any) -> Any:
    """This worker's endless iterator of (x, y[, sample_weight]) batches."""
    from distflow.keras.utils import DatasetCreator

    if isinstance(x, DatasetCreator):
        return strategy.distribute_datasets_from_function(x.dataset_fn)
    if not hasattr(x, "__iter__") or isinstance(x, np.ndarray | list | tuple | dict):
        raise ValueError(f"`fit` under ParameterServerStrategy takes `x` as "
                         f"`keras.utils.experimental.DatasetCreator(dataset_fn)` or a dataset "
                         f"of batches, as in TF. Received: x of type {type(x).__name__}")
    return _Cycle(x)


class _Cycle:
    """A re-iterable read again from its start whenever it runs out."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __iter__(self) -> Any:
        while True:
            produced = False
            for element in self.dataset:
                produced = True
                yield element
            if not produced:
                raise ValueError("The dataset given to `fit` produced no batch.")


def _train_step(model: Any, iterators: Any) -> Any:
    from distflow.keras.trainers import data_adapters as adapters

    x, y, sample_weight = adapters.unpack_x_y_sample_weight(next(iterators))
    return model.train_step(adapters.step_data(*(adapters.to_arrays(d)
                                                 for d in (x, y, sample_weight))))


def _build(model: Any, x: Any, strategy: Any) -> None:
    """Builds an unbuilt model on one batch of worker 0's data (on the coordinator)."""
    if model.built:
        return
    from distflow.keras.trainers import data_adapters as adapters

    with strategy._as_worker(strategy._worker_states()[0]):
        first = next(iter(_worker_batches(strategy, x)))
    x_first = adapters.unpack_x_y_sample_weight(first)[0]
    model(adapters.as_tensors(adapters.to_arrays(x_first)), training=False)
