"""The distribution strategies whose `scope()` is entered, innermost last (core, stdlib only).

Objects record the strategy in force when they are created, as TensorFlow does:
a `Variable`, a Keras `Model` and an optimizer built inside `strategy.scope()`
belong to that strategy, and `fit`, `evaluate`, `predict`, `train_on_batch` and
`apply_gradients` use it wherever they are called. The core only keeps the
stack; what a strategy does lives in `distflow.distribute`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from distflow import process_env

_entered: list[Any] = []
_replica = threading.local()  # .context: the innermost `strategy.run`'s ReplicaContext
_thread = threading.local()  # .entered: scopes entered for this thread only


def current() -> Any:
    """The strategy of the innermost entered `scope()`, or None outside every scope.

    A scope entered for one thread (`thread_scope`) wins on that thread.
    """
    local = getattr(_thread, "entered", None)
    if local:
        return local[-1]
    return _entered[-1] if _entered else None


@contextlib.contextmanager
def thread_scope(strategy: Any) -> Iterator[Any]:
    """Makes `strategy` the current one on this thread only (a coordinator's worker
    thread), without entering its scope for the other threads of the process."""
    local = _thread.__dict__.setdefault("entered", [])
    local.append(strategy)
    try:
        yield strategy
    finally:
        local.pop()


def push(strategy: Any) -> None:
    """Marks `strategy`'s scope as entered (called by `Strategy.scope()`)."""
    _entered.append(strategy)


def pop(strategy: Any) -> None:
    """Marks the innermost entry of `strategy`'s scope as left."""
    for i in range(len(_entered) - 1, -1, -1):
        if _entered[i] is strategy:
            del _entered[i]
            return


def current_replica() -> Any:
    """The `ReplicaContext` of the innermost `strategy.run` on this thread (None outside)."""
    return getattr(_replica, "context", None)


@contextlib.contextmanager
def in_replica(context: Any) -> Iterator[Any]:
    """Makes `context` the replica context for the `with` block (`strategy.run`)."""
    outer = current_replica()
    _replica.context = context
    try:
        yield context
    finally:
        _replica.context = outer


def replicas_in_sync() -> int:
    """Replicas whose gradients are combined per step, as seen from here (1 outside run)."""
    context = current_replica()
    return context.num_replicas_in_sync if context is not None else 1


_DEFAULT: list[Callable[[], Any]] = []  # set once by the package that owns the strategies


def provide_default(factory: Callable[[], Any]) -> None:
    """Declares where `default()` gets its strategy (the root package wires this:
    the strategies live above this module, which must not import them)."""
    _DEFAULT[:] = [factory]


def default() -> Any:
    """The strategy of objects created outside every scope: one local replica (TF's default)."""
    if not _DEFAULT:
        raise RuntimeError("No default strategy was provided: import `distflow` (the package "
                           "wires `strategy_stack.provide_default`) before asking for one.")
    return _DEFAULT[0]()


_ALLOW_LOCAL = "DISTFLOW_ALLOW_LOCAL_TRAINING"


def check_local_training(what: str) -> None:
    """Refuses to train locally in a launcher's worker unless the user opted in.

    A worker process started by `python -m distflow.launch` (it has
    `DISTFLOW_PS_ADDRS`) that trains a model or variables belonging to no
    strategy would train a copy of its own while the parameter servers sit idle,
    and every worker would write the same files. That is an error unless
    `DISTFLOW_ALLOW_LOCAL_TRAINING=1` says it is meant.

    Args:
        what: the call being refused, for the message (e.g. "`model.fit`").

    Raises:
        RuntimeError: in a launcher's worker without the opt-in.
        ValueError: when the opt-in variable is not a boolean (1/0, true/false, ...).
    """
    if not process_env.is_set("DISTFLOW_PS_ADDRS") or \
            process_env.read("DISTFLOW_ROLE", checked=False) != "worker":
        return
    if process_env.read(_ALLOW_LOCAL):
        return
    rank = process_env.read("DISTFLOW_RANK", checked=False)
    workers = process_env.read("DISTFLOW_NUM_WORKERS", checked=False)
    raise RuntimeError(
        f"{what} would train locally on worker {rank} (of {workers}) although this process "
        f"runs under the distflow launcher (DISTFLOW_PS_ADDRS is set): the model or "
        f"variables were built outside `strategy.scope()`, so each worker would train its "
        f"own copy while the parameter servers stay idle. Build and compile the model "
        f"inside the strategy's scope (fit may stay outside):\n"
        f"    strategy = distflow.distribute.get_strategy()\n"
        f"    with strategy.scope():\n"
        f"        model = ...; model.compile(...)\n"
        f"To train a separate local model in every worker on purpose, set "
        f"{_ALLOW_LOCAL}=1.")
