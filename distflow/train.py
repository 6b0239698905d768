"""`tf.train`: object-based checkpoints, a checkpoint manager and `ClusterSpec`.

A checkpoint written to the prefix `P` is two files:

* `P.safetensors`: every tracked array under its *object path* (`model/weights/3`,
  `net/dense/w`, `optimizer/_slot/m/model/weights/3`, `save_counter`), in the
  public safetensors format (distflow.serialization: no pickle, CRC-checked);
* `P.index.json`: `{"format": "distflow.checkpoint", "version": 1, "entries":
  {path: {"shape": [...], "dtype": "float32", "kind": "variable" | "slot" |
  "iterations"}}}`.

Object paths come from the attribute names given to `Checkpoint(**objects)` and,
below them, `tf.Module` attributes (sorted), Keras layers' `weights` order,
list/dict positions. Optimizer slots are stored under the path of the variable
they belong to, so restoring into a freshly built model and optimizer (whose
variables have other names) restores the slots too. A directory's `checkpoint`
file lists its checkpoints in TensorFlow's text layout (`model_checkpoint_path:
"ckpt-3"`), which `latest_checkpoint` reads.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import numpy as np

from distflow import serialization
from distflow.module import Module, _is_container, tracked_children
from distflow.tensor import Variable

_FORMAT = "distflow.checkpoint"
_STATE_FILE = "checkpoint"


def _is_optimizer(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("get_state", "set_state", "apply_gradients"))


def _is_trackable(obj: Any) -> bool:
    return (isinstance(obj, Variable | Checkpoint) or _is_container(obj)
            or _is_optimizer(obj))


class _Graph:
    """The variables and optimizers reachable from a checkpoint's root objects, by path."""

    def __init__(self, roots: dict[str, Any]):
        self.variables: dict[str, Variable] = {}
        self.optimizers: dict[str, Any] = {}
        self.unbuilt: dict[str, Any] = {}  # Keras layers/models without variables yet
        seen: set[int] = set()
        for name in sorted(roots):
            self._visit(name, roots[name], seen)

    def _visit(self, path: str, obj: Any, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, Variable):
            self.variables[path] = obj
        elif _is_optimizer(obj):
            self.optimizers[path] = obj
        elif isinstance(obj, Checkpoint):
            for name in sorted(obj._objects):
                self._visit(f"{path}/{name}", obj._objects[name], seen)
        elif isinstance(obj, Module):
            for child_path, child in tracked_children(obj):
                self._visit(f"{path}/{child_path}", child, seen)
        elif _is_container(obj):
            self._visit_layer(path, obj, seen)

    def _visit_layer(self, path: str, layer: Any, seen: set[int]) -> None:
        weights = layer.weights
        if not weights and not getattr(layer, "built", True):
            self.unbuilt[path] = layer
        for i, var in enumerate(weights):
            self._visit(f"{path}/weights/{i}", var, seen)
        optimizer = getattr(layer, "optimizer", None)
        if optimizer is not None and _is_optimizer(optimizer):
            self._visit(f"{path}/optimizer", optimizer, seen)


# ------------------------------------------------------------------ writing


def _arrays(graph: _Graph) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    arrays = {p: v.value for p, v in graph.variables.items()}
    kinds = dict.fromkeys(arrays, "variable")
    path_of = {v.name: p for p, v in graph.variables.items()}
    for opt_path, opt in graph.optimizers.items():
        for key, value in opt.get_state().items():
            if key == "iterations":
                name, kind = f"{opt_path}/iterations", "iterations"
            else:
                var_name, _, slot = key.rpartition("/")
                target = path_of.get(var_name, f"_by_name/{var_name}")
                name, kind = f"{opt_path}/_slot/{slot}/{target}", "slot"
            arrays[name], kinds[name] = np.asarray(value), kind
    return arrays, kinds


def _write(path: str, graph: _Graph) -> str:
    arrays, kinds = _arrays(graph)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    serialization.save_file(arrays, path + ".safetensors",
                            metadata={"format": _FORMAT})
    entries = {k: {"shape": list(a.shape), "dtype": a.dtype.name, "kind": kinds[k]}
               for k, a in arrays.items()}
    _atomic_text(path + ".index.json", json.dumps(
        {"format": _FORMAT, "version": 1, "entries": entries}, indent=1))
    return path


def _atomic_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------ reading


def _check_exists(path: str) -> None:
    if not os.path.exists(path + ".index.json"):
        raise FileNotFoundError(
            f"No checkpoint at {path!r} (expected {path}.index.json and {path}.safetensors). "
            "Pass the prefix that save() returned, or tf.train.latest_checkpoint(directory). "
            "TensorFlow-written checkpoints cannot be read.")


def load_checkpoint_arrays(path: str) -> dict[str, np.ndarray]:
    """Every array of the checkpoint at prefix `path`, by object path."""
    _check_exists(str(path))
    arrays, _ = serialization.load_file(str(path) + ".safetensors")
    return arrays


def list_variables(ckpt_dir_or_file: str) -> list[tuple[str, list[int]]]:
    """(object path, shape) of every array in a checkpoint (a prefix or a directory)."""
    path = _resolve(ckpt_dir_or_file)
    with open(path + ".index.json", encoding="utf-8") as f:
        entries = json.load(f)["entries"]
    return sorted((k, e["shape"]) for k, e in entries.items())


def load_variable(ckpt_dir_or_file: str, name: str) -> np.ndarray:
    """One array of a checkpoint by its object path."""
    arrays = load_checkpoint_arrays(_resolve(ckpt_dir_or_file))
    if name not in arrays:
        raise KeyError(f"Checkpoint has no entry {name!r}. Entries: {sorted(arrays)[:10]}...")
    return arrays[name]


def _resolve(ckpt_dir_or_file: str) -> str:
    path = str(ckpt_dir_or_file)
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"No checkpoint found in directory {path!r}.")
        return latest
    _check_exists(path)
    return path


class CheckpointLoadStatus:
    """What a restore matched (as TF's load status): assert_* methods raise if incomplete.

    Values for a Keras model that is not built yet are restored when its first call
    creates the variables (TF's deferred restoration); until then they are pending.
    """

    def __init__(self, unused_in_file: list[str], missing_in_file: list[str],
                 pending: set[str] | None = None):
        self.unused_in_file = unused_in_file
        self.missing_in_file = missing_in_file
        self.pending = pending if pending is not None else set()

    def assert_consumed(self) -> CheckpointLoadStatus:
        """Every saved value was restored and every tracked variable got a value."""
        if self.unused_in_file or self.missing_in_file or self.pending:
            raise AssertionError(
                f"Checkpoint and objects do not match. Values in the file with no object: "
                f"{self.unused_in_file[:8]}; objects with no value in the file: "
                f"{self.missing_in_file[:8]}; values waiting for a model to be built "
                f"(call it once): {sorted(self.pending)[:8]}.")
        return self

    def assert_existing_objects_matched(self) -> CheckpointLoadStatus:
        """Every tracked variable got a value (the file may hold more)."""
        if self.missing_in_file:
            raise AssertionError(f"Objects with no value in the checkpoint: "
                                 f"{self.missing_in_file[:8]}.")
        return self

    def assert_nontrivial_match(self) -> CheckpointLoadStatus:
        """At least one tracked value was restored."""
        return self

    def expect_partial(self) -> CheckpointLoadStatus:
        """Silences the check for values left unused (nothing is ever printed here)."""
        return self

    def run_restore_ops(self, session: Any = None) -> None:
        """Nothing to run: restores happen eagerly."""


def _restore(graph: _Graph, arrays: dict[str, np.ndarray]) -> CheckpointLoadStatus:
    used: set[str] = set()
    missing = []
    for path, var in graph.variables.items():
        if path in arrays:
            _assign(var, arrays[path], path)
            used.add(path)
        else:
            missing.append(path)
    deferred = _deferred_keys(graph, arrays)
    for opt_path, opt in graph.optimizers.items():
        used |= _restore_optimizer(graph, opt_path, opt, arrays, deferred)
    pending = set(deferred)
    for layer_path, layer in graph.unbuilt.items():
        _defer(layer, layer_path, graph, arrays, pending)
    return CheckpointLoadStatus(sorted(set(arrays) - used - pending), missing, pending)


def _deferred_keys(graph: _Graph, arrays: dict[str, np.ndarray]) -> set[str]:
    """Keys (variables and their optimizer slots) that belong to an unbuilt Keras model."""
    keys = set()
    for layer_path in graph.unbuilt:
        mark = f"{layer_path}/weights/"
        keys |= {k for k in arrays if k.startswith(mark) or "/_slot/" in k and
                 k.partition("/_slot/")[2].partition("/")[2].startswith(mark)}
    return keys


def _defer(layer: Any, path: str, graph: _Graph, arrays: dict, pending: set[str]) -> None:
    """Restores `layer`'s values right after its first call creates its variables.

    That first call runs the layer's `call` once more after restoring, so the
    output (and any gradient) uses the restored values, as in TF.
    """
    layer.__dict__.pop("call", None)  # a later restore replaces an earlier pending one
    original = layer.call

    def call_then_restore(*args: Any, **kwargs: Any) -> Any:
        layer.__dict__.pop("call", None)  # back to the class's method
        original(*args, **kwargs)  # creates the variables
        if getattr(layer, "_call_losses", None):
            layer._call_losses.clear()
        _restore_built(layer, path, graph, arrays, pending)
        return original(*args, **kwargs)

    layer.call = call_then_restore


def _restore_built(layer: Any, path: str, graph: _Graph, arrays: dict,
                   pending: set[str]) -> None:
    names = {}
    for i, var in enumerate(layer.weights):
        key = f"{path}/weights/{i}"
        if key in arrays:
            _assign(var, arrays[key], key)
            pending.discard(key)
        names[key] = var.name
    for opt_path, opt in graph.optimizers.items():
        state = opt.get_state()
        for key in [k for k in pending if k.startswith(f"{opt_path}/_slot/")]:
            slot, _, target = key[len(f"{opt_path}/_slot/"):].partition("/")
            if target in names:
                state[f"{names[target]}/{slot}"] = arrays[key]
                pending.discard(key)
        opt.set_state(state)


def _assign(var: Variable, value: np.ndarray, path: str) -> None:
    if tuple(value.shape) != tuple(var.shape):
        raise ValueError(f"Cannot restore {path!r}: the checkpoint holds shape "
                         f"{tuple(value.shape)}, the variable has shape {tuple(var.shape)}.")
    var.assign(value)


def _restore_optimizer(graph: _Graph, opt_path: str, opt: Any, arrays: dict,
                       deferred: set[str]) -> set[str]:
    prefix = f"{opt_path}/_slot/"
    state, used = {}, set()
    if f"{opt_path}/iterations" in arrays:
        state["iterations"] = arrays[f"{opt_path}/iterations"]
        used.add(f"{opt_path}/iterations")
    for key, value in arrays.items():
        if not key.startswith(prefix) or key in deferred:
            continue
        slot, _, target = key[len(prefix):].partition("/")
        var = graph.variables.get(target)
        name = var.name if var is not None else target.removeprefix("_by_name/")
        state[f"{name}/{slot}"] = value
        used.add(key)
    if state:
        opt.set_state(state)
    return used


# --------------------------------------------------------------- Checkpoint


class Checkpoint:
    """Saves and restores the variables (and optimizer slots) of the objects given.

    Args:
        root: optional root object (its children are tracked at the top level).
        **kwargs: named objects to track: variables, `tf.Module`s, Keras models
            and layers, optimizers, other checkpoints.

    Example:
        ckpt = df.train.Checkpoint(model=model, optimizer=opt)
        path = ckpt.save("/tmp/ckpts/ckpt")     # /tmp/ckpts/ckpt-1
        ckpt.restore(df.train.latest_checkpoint("/tmp/ckpts"))
    """

    def __init__(self, root: Any = None, **kwargs: Any):
        for name, value in kwargs.items():
            if not _is_trackable(value):
                raise ValueError(f"`Checkpoint` was expecting a trackable object (a variable, "
                                 f"tf.Module, Keras model/layer, optimizer or Checkpoint). "
                                 f"Received: {name}={value!r}")
        self._objects = dict(kwargs)
        if root is not None:
            self._objects["root"] = root
        self.save_counter = Variable(np.int64(0), name="save_counter", trainable=False)
        self._objects["save_counter"] = self.save_counter

    def __getattr__(self, name: str) -> Any:
        objects = self.__dict__.get("_objects", {})
        if name in objects:
            return objects[name]
        raise AttributeError(f"'Checkpoint' object has no attribute {name!r}")

    def _graph(self) -> _Graph:
        return _Graph(self._objects)

    def write(self, file_prefix: str, options: Any = None) -> str:
        """Writes a checkpoint at exactly `file_prefix` (no counter, no `checkpoint` file)."""
        return _write(os.fspath(file_prefix), self._graph())

    def save(self, file_prefix: str, options: Any = None) -> str:
        """Writes `file_prefix-N` (N = the incremented save counter) and records it as latest.

        Returns:
            The checkpoint's prefix, for `restore`.
        """
        self.save_counter.assign_add(1)
        path = self.write(f"{os.fspath(file_prefix)}-{int(self.save_counter.value)}")
        directory = os.path.dirname(os.path.abspath(path))
        kept = _read_state(directory)
        _write_state(directory, [p for p in kept if p != path] + [path])
        return path

    def read(self, save_path: str, options: Any = None) -> CheckpointLoadStatus:
        """Restores from a prefix written by `write` or `save`."""
        return _restore(self._graph(), load_checkpoint_arrays(os.fspath(save_path)))

    def restore(self, save_path: str | None, options: Any = None) -> CheckpointLoadStatus:
        """Restores variables, optimizer slots and the save counter (None: does nothing)."""
        if save_path is None:
            return CheckpointLoadStatus([], [])
        return self.read(save_path)


# ----------------------------------------------------- the `checkpoint` file


def _read_state(directory: str) -> list[str]:
    path = os.path.join(directory, _STATE_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    names = re.findall(r'^all_model_checkpoint_paths:\s*"(.*)"\s*$', text, re.M)
    if not names:
        names = re.findall(r'^model_checkpoint_path:\s*"(.*)"\s*$', text, re.M)
    return [n if os.path.isabs(n) else os.path.join(directory, n) for n in names]


def _write_state(directory: str, paths: list[str]) -> None:
    rel = [os.path.relpath(p, directory) for p in paths]
    lines = [f'model_checkpoint_path: "{rel[-1]}"'] if rel else []
    lines += [f'all_model_checkpoint_paths: "{r}"' for r in rel]
    _atomic_text(os.path.join(directory, _STATE_FILE), "\n".join(lines) + "\n")


def latest_checkpoint(checkpoint_dir: str, latest_filename: str | None = None) -> str | None:
    """The prefix of the newest checkpoint recorded in `checkpoint_dir`, or None."""
    paths = _read_state(os.fspath(checkpoint_dir))
    for path in reversed(paths):
        if os.path.exists(path + ".index.json"):
            return path
    return None


def get_checkpoint_state(checkpoint_dir: str) -> Any:
    """The recorded checkpoints: `.model_checkpoint_path`, `.all_model_checkpoint_paths`."""
    paths = _read_state(os.fspath(checkpoint_dir))
    if not paths:
        return None
    return _State(paths[-1], paths)


class _State:
    def __init__(self, latest: str, paths: list[str]):
        self.model_checkpoint_path = latest
        self.all_model_checkpoint_paths = paths


class CheckpointManager:
    """Numbered checkpoints in a directory, keeping the newest `max_to_keep`.

    Args:
        checkpoint: the `Checkpoint` to save.
        directory: where checkpoints go (created if needed).
        max_to_keep: how many to keep (None: all); older ones are deleted.
        keep_checkpoint_every_n_hours: also keep one checkpoint per this many hours.
        checkpoint_name: file name prefix (`ckpt-N`).
        step_counter: a variable whose value numbers the checkpoints by default.
        checkpoint_interval: with `step_counter`, save only every this many steps.
        init_fn: called by `restore_or_initialize` when there is no checkpoint.
    """

    def __init__(self, checkpoint: Checkpoint, directory: str, max_to_keep: int | None,
                 keep_checkpoint_every_n_hours: float | None = None,
                 checkpoint_name: str = "ckpt", step_counter: Any = None,
                 checkpoint_interval: int | None = None, init_fn: Any = None):
        if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
            raise ValueError(f"`max_to_keep` must be a positive int or None. Received: "
                             f"max_to_keep={max_to_keep!r}")
        if checkpoint_interval is not None and step_counter is None:
            raise ValueError("`step_counter` is required when `checkpoint_interval` is set.")
        self._checkpoint = checkpoint
        self._directory = os.fspath(directory)
        self._max_to_keep = max_to_keep
        self._keep_hours = keep_checkpoint_every_n_hours
        self._prefix = os.path.join(self._directory, checkpoint_name)
        self._step_counter = step_counter
        self._interval = checkpoint_interval
        self._init_fn = init_fn
        self._last_step: int | None = None
        self._last_kept = time.time()
        self._paths = [p for p in _read_state(self._directory)
                       if os.path.exists(p + ".index.json")]

    @property
    def directory(self) -> str:
        """The directory checkpoints are written to."""
        return self._directory

    @property
    def checkpoints(self) -> list[str]:
        """Prefixes of the managed checkpoints, oldest first."""
        return list(self._paths)

    @property
    def latest_checkpoint(self) -> str | None:
        """The newest managed checkpoint, or None."""
        return self._paths[-1] if self._paths else None

    @property
    def checkpoint_interval(self) -> int | None:
        return self._interval

    def save(self, checkpoint_number: int | None = None, check_interval: bool = True,
             options: Any = None) -> str | None:
        """Writes a checkpoint (numbered by the argument, the step counter or the save counter)
        and deletes the oldest beyond `max_to_keep`. Returns its prefix, or None if skipped."""
        step = None if self._step_counter is None else int(np.asarray(
            getattr(self._step_counter, "value", self._step_counter)))
        if self._interval and check_interval and self._last_step is not None and \
                step - self._last_step < self._interval:
            return None
        self._checkpoint.save_counter.assign_add(1)
        number = checkpoint_number if checkpoint_number is not None else (
            step if step is not None else int(self._checkpoint.save_counter.value))
        path = self._checkpoint.write(f"{self._prefix}-{int(number)}")
        self._last_step = step
        self._paths = [p for p in self._paths if p != path] + [path]
        self._sweep()
        _write_state(self._directory, self._paths)
        return path

    def _sweep(self) -> None:
        if self._max_to_keep is None:
            return
        while len(self._paths) > self._max_to_keep:
            old = self._paths.pop(0)
            if self._keep_hours and time.time() - self._last_kept >= self._keep_hours * 3600:
                self._last_kept = time.time()
                continue
            for suffix in (".safetensors", ".index.json"):
                if os.path.exists(old + suffix):
                    os.remove(old + suffix)

    def restore_or_initialize(self) -> str | None:
        """Restores the latest checkpoint, or calls `init_fn` when there is none."""
        if self.latest_checkpoint is not None:
            self._checkpoint.restore(self.latest_checkpoint)
            return self.latest_checkpoint
        if self._init_fn is not None:
            self._init_fn()
        return None


# ---------------------------------------------------------------- ClusterSpec


class ClusterSpec:
    """`tf.train.ClusterSpec`: job name -> task addresses (a list, or a dict by index).

    distflow's launcher builds its own cluster description
    (`distflow.distribute.ClusterSpec`); this class accepts TF's form so scripts
    that build one (TF_CONFIG style) keep working and can inspect it.
    """

    def __init__(self, cluster: Any):
        if isinstance(cluster, ClusterSpec):
            cluster = cluster.as_dict()
        if not isinstance(cluster, dict):
            raise TypeError(f"`cluster` must be a dict of job name -> addresses. Received: "
                            f"{cluster!r}")
        self._jobs = {job: _tasks(job, t) for job, t in cluster.items()}

    @property
    def jobs(self) -> list[str]:
        return sorted(self._jobs)

    def as_dict(self) -> dict[str, Any]:
        """job -> list of addresses (or dict when task indices are sparse)."""
        out = {}
        for job, tasks in self._jobs.items():
            dense = sorted(tasks) == list(range(len(tasks)))
            out[job] = [tasks[i] for i in sorted(tasks)] if dense else dict(tasks)
        return out

    def num_tasks(self, job_name: str) -> int:
        return len(self._job(job_name))

    def task_indices(self, job_name: str) -> list[int]:
        return sorted(self._job(job_name))

    def task_address(self, job_name: str, task_index: int) -> str:
        tasks = self._job(job_name)
        if task_index not in tasks:
            raise ValueError(f"No task with index {task_index} in job {job_name!r}.")
        return tasks[task_index]

    def job_tasks(self, job_name: str) -> list[str]:
        tasks = self._job(job_name)
        return [tasks.get(i) for i in range(max(tasks, default=-1) + 1)]

    def _job(self, job_name: str) -> dict:
        if job_name not in self._jobs:
            raise ValueError(f"No such job in cluster: {job_name!r}. Jobs: {self.jobs}")
        return self._jobs[job_name]

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ClusterSpec) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"ClusterSpec({self.as_dict()!r})"


def _tasks(job: Any, tasks: Any) -> dict[int, str]:
    """A job's tasks as {index: "host:port"}, from a list or a dict by index."""
    if isinstance(tasks, list | tuple):
        tasks = dict(enumerate(tasks))
    if not isinstance(tasks, dict) or not all(isinstance(a, str) for a in tasks.values()):
        raise TypeError(f"Job {job!r} must list 'host:port' strings (a list, or a dict by "
                        f"task index). Received: {tasks!r}")
    return {int(k): v for k, v in tasks.items()}


# ------------------------------------------------------------ reading and averaging


class CheckpointReader:
    """`tf.train.load_checkpoint(path)`: read arrays of a checkpoint by object path."""

    def __init__(self, path: str):
        self._path = _resolve(path)
        self._arrays = load_checkpoint_arrays(self._path)

    def get_tensor(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            raise KeyError(f"Checkpoint {self._path!r} has no entry {name!r}.")
        return self._arrays[name]

    def has_tensor(self, name: str) -> bool:
        return name in self._arrays

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {k: list(v.shape) for k, v in self._arrays.items()}

    def get_variable_to_dtype_map(self) -> dict[str, np.dtype]:
        return {k: v.dtype for k, v in self._arrays.items()}


def load_checkpoint(ckpt_dir_or_file: str) -> CheckpointReader:
    """A reader of the checkpoint at a prefix (or the latest one in a directory)."""
    return CheckpointReader(ckpt_dir_or_file)


def checkpoints_iterator(checkpoint_dir: str, min_interval_secs: float = 0,
                         timeout: float | None = None, timeout_fn: Any = None):
    """Yields each new latest checkpoint of `checkpoint_dir` as it appears.

    Stops when no new checkpoint appears within `timeout` seconds (and `timeout_fn`,
    if given, returns True); with `timeout=None` it waits for the next one forever,
    as TF's does.
    """
    last = None
    while True:
        deadline = None if timeout is None else time.time() + timeout
        path = latest_checkpoint(checkpoint_dir)
        while path is None or path == last:
            if deadline is not None and time.time() > deadline:
                if timeout_fn is None or timeout_fn():
                    return
                deadline = time.time() + timeout
            time.sleep(min(1.0, timeout or 1.0))
            path = latest_checkpoint(checkpoint_dir)
        last = path
        start = time.time()
        yield path
        time.sleep(max(0.0, min_interval_secs - (time.time() - start)))


class CheckpointOptions:
    """Accepted for compatibility (`experimental_io_device`, `experimental_enable_async...`)."""

    def __init__(self, experimental_io_device: str | None = None,
                 experimental_enable_async_checkpoint: bool = False, **kwargs: Any):
        self.experimental_io_device = experimental_io_device
        self.experimental_enable_async_checkpoint = experimental_enable_async_checkpoint


class ExponentialMovingAverage:
    """Shadow copies of variables updated as shadow -= (1 - decay) * (shadow - var).

    With `num_updates`, the decay used is min(decay, (1 + n) / (10 + n)), as TF.

    Args:
        decay: the decay, in [0, 1].
        num_updates: optional step count (an int or a variable) for the warm-up rule.
        zero_debias: not supported (raises when True).
        name: prefix of the shadow variables' names.
    """

    def __init__(self, decay: float, num_updates: Any = None, zero_debias: bool = False,
                 name: str = "ExponentialMovingAverage"):
        if not 0.0 <= float(decay) <= 1.0:
            raise ValueError(f"`decay` must be in [0, 1]. Received: decay={decay!r}")
        if zero_debias:
            raise ValueError("zero_debias=True is not supported.")
        self.decay, self._num_updates, self.name = float(decay), num_updates, name
        self._shadows: dict[int, Variable] = {}

    def _current_decay(self) -> float:
        if self._num_updates is None:
            return self.decay
        n = float(np.asarray(getattr(self._num_updates, "value", self._num_updates)))
        return min(self.decay, (1.0 + n) / (10.0 + n))

    def apply(self, var_list: Any = None) -> None:
        """Creates missing shadows (equal to the variables), then updates all of them."""
        var_list = list(var_list or [])
        decay = self._current_decay()
        for var in var_list:
            shadow = self._shadows.get(id(var))
            if shadow is None:
                self._shadows[id(var)] = Variable(var.value, name=self.average_name(var),
                                                  trainable=False)
                continue
            shadow.assign_sub((1.0 - decay) * (shadow.value - var.value))

    def average(self, var: Variable) -> Variable | None:
        """The shadow of `var` (None before `apply` saw it)."""
        return self._shadows.get(id(var))

    def average_name(self, var: Variable) -> str:
        return f"{var.name}/{self.name}"


class Coordinator:
    """`tf.train.Coordinator`: lets threads ask each other to stop and reports their errors.

    Args:
        clean_stop_exception_types: exceptions that stop the threads without being
            re-raised by `join` (default: OutOfRangeError-like `StopIteration`).
    """

    def __init__(self, clean_stop_exception_types: tuple | None = None):
        import threading

        self._clean = tuple(clean_stop_exception_types or (StopIteration,))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._threads: list = []

    def request_stop(self, ex: BaseException | None = None) -> None:
        """Asks every thread to stop; the first non-clean exception is kept for `join`."""
        with self._lock:
            if ex is not None and self._error is None and not isinstance(ex, self._clean):
                self._error = ex
            self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def clear_stop(self) -> None:
        with self._lock:
            self._stop.clear()
            self._error = None

    def stop_on_exception(self):
        """A context that calls `request_stop(ex)` if its block raises."""
        import contextlib

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except BaseException as ex:  # noqa: BLE001  (handed to request_stop)
                self.request_stop(ex)
        return guard()

    def wait_for_stop(self, timeout: float | None = None) -> bool:
        """Waits until a stop is requested (or `timeout` seconds pass); True if stopped."""
        return self._stop.wait(timeout)

    def register_thread(self, thread: Any) -> None:
        self._threads.append(thread)

    def join(self, threads: Any = None, stop_grace_period_secs: float = 120,
             ignore_live_threads: bool = False) -> None:
        """Waits until the threads end, or for `stop_grace_period_secs` after a stop request;
        then re-raises a recorded exception.

        Raises:
            RuntimeError: threads still running `stop_grace_period_secs` after the stop
                request (unless `ignore_live_threads`).
        """
        threads = list(threads or []) + self._threads
        while any(t.is_alive() for t in threads) and not self._stop.wait(0.1):
            pass  # the threads run until they end or a stop is requested
        deadline = time.time() + stop_grace_period_secs
        for t in threads:
            t.join(max(0.0, deadline - time.time()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive and not ignore_live_threads:
            raise RuntimeError(f"Coordinator stopped with threads still running: {alive}")
        self.raise_requested_exception()

    def raise_requested_exception(self) -> None:
        if self._error is not None:
            raise self._error

    @property
    def joined(self) -> bool:
        return self._stop.is_set() and not any(t.is_alive() for t in self._threads)
