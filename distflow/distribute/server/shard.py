"""One shard's state: parameters, optimizer slots, the update rule, checkpoints.

`Shard` is the server's arithmetic with no sockets and no workers: plain arrays
in, arrays out. Updates go through `distflow.optimizers.rules` only, so a run
through the server applies the same arithmetic as a local optimizer. The small
parameters live in one `PackedStore` buffer (`distribute/packed.py`) and take one
rule call per step. A parameter a reply is still sending without a copy is moved
to fresh memory before an update writes it (copy-on-write, `track`).

Checkpoints (`save`, `restore`) hold the parameters, the slots, the optimizer,
the version and the training position; `bump` writes one every
`CheckpointPlan.every` versions and at once after a learning-rate change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distflow.distribute import checkpoint, protocol
from distflow.distribute.cache import LRU
from distflow.distribute.packed import PackedStore
from distflow.distribute.server.config import DEFAULT_MODE
from distflow.distribute.server.errors import Reject
from distflow.optimizers import rules
from distflow.optimizers.rules import UPDATE_CHUNK  # noqa: F401 - the chunk size, for tests

log = logging.getLogger("distflow.ps")

_KEPT_LAYOUTS = 256  # spec lists remembered as checked (`check_layout`)


@dataclass
class CheckpointPlan:
    """Where and how often a shard writes checkpoints.

    Attributes:
        root: the shard's checkpoint directory (`<dir>/ps-<shard>/`); None: none.
        every: checkpoint every this many versions (0: only when asked).
        keep: checkpoint files kept.
        shard: the shard id, written into and checked against checkpoints.
        mode: the server's `ServerConfig.mode`, written into checkpoints.
        run_id: the launcher's run id, written into checkpoints.
        run_named: the user gave the run id (`--run-id`); written into checkpoints.
        resume_other_run: resume checkpoints another run wrote (see `Shard.restore`).
        ignore_corrupt: start empty when checkpoints exist but none verifies.
    """

    root: Path | None = None
    every: int = 0
    keep: int = 3
    shard: int = 0
    mode: str = DEFAULT_MODE
    run_id: str | None = None
    run_named: bool = False
    resume_other_run: bool = False
    ignore_corrupt: bool = False


@dataclass
class CheckpointRecord:
    """The shard's checkpoint history, for the stats."""

    last: dict | None = None  # {"path", "version"} of the newest one written or restored
    failures: int = 0
    last_error: dict | None = None  # {"version", "error", "time"} of the latest failure


class Shard:
    """The parameters and optimizer state of one parameter-server shard.

    Args:
        plan: its checkpoints (`CheckpointPlan()`: none).
        report_error: `(kind, message, *args)` logging a failed periodic
            checkpoint (the service passes a rate-limited logger).

    Example:
        >>> shard = Shard()
        >>> shard.configure({"name": "sgd", "hp": {}, "learning_rate": 0.5})
        >>> shard.add({"w": np.ones(3, np.float32)})
        >>> shard.apply({"w": [np.ones(3, np.float32)]})
        >>> shard.params["w"], shard.version        # (array([0.5, 0.5, 0.5]), 1)
    """

    def __init__(self, plan: CheckpointPlan | None = None, report_error: Any = None):
        self.plan = plan or CheckpointPlan()
        self.params: dict[str, np.ndarray] = {}
        self.slots: dict[str, dict[str, np.ndarray]] = {}
        self.optimizer: dict | None = None
        self.version = 0
        self.position: dict = {}
        self.restored_position: dict | None = None  # the position a checkpoint restored
        self.seeded_version = 0  # the chief's version this shard was re-seeded at (init)
        self.steps = 0  # versions applied by this process
        self.cow_copies = 0  # updates that moved a parameter a reply was still sending
        self.record = CheckpointRecord()
        self.store = PackedStore()  # the small parameters in one buffer
        self.generation = 0  # goes up whenever the set of parameters changes
        self._rule = self._schedule = None
        self._lr_changed = False  # since the last update: checkpoint it at once
        # Layouts of spec lists that match the parameters -> whether they fit the packed
        # store (keyed by the layout object itself: identity, held alive by the dict).
        self._checked: LRU[Any, bool] = LRU(_KEPT_LAYOUTS)
        self._inflight = InFlight()  # the sends still reading parameter buffers
        self._report_error = report_error or _log_error

    @property
    def initialized(self) -> bool:
        """Whether an optimizer is set (by `init` or a checkpoint)."""
        return self.optimizer is not None

    # ------------------------------------------------------------ setting up

    def configure(self, optimizer: Any, built: tuple[Any, Any] | None = None) -> None:
        """Sets the optimizer from its config `{name, hp, learning_rate}` (`init`).

        Args:
            optimizer: the config.
            built: `build_optimizer(optimizer)` when the caller validated it already.
        """
        rule, schedule = built or build_optimizer(optimizer)
        self.optimizer, self._rule, self._schedule = optimizer, rule, schedule

    def seed(self, version: int) -> None:
        """Starts at the chief's `version` (a restarted shard with no checkpoint)."""
        self.version = self.seeded_version = version

    def add(self, values: dict[str, np.ndarray]) -> list[str]:
        """Stores copies of the parameters not held yet (fresh slots); returns their names."""
        added = [n for n in values if n not in self.params]
        hp = self.optimizer.get("hp")
        for name in added:
            self.params[name] = np.array(values[name], copy=True)
            self.slots[name] = self._rule.init(self.params[name], hp)
        if added:
            self._rebuild_store()
        return added

    def _rebuild_store(self) -> None:
        # The slots a rule needs depend on its hyper-parameters, which never change
        # after `init` (only the learning rate does): the store gets them all here.
        rule, hp = self._rule, self.optimizer.get("hp") or {}
        self.store.rebuild(self.params, self.slots, tuple(rule.slots({**rule.defaults, **hp})),
                           lambda slot, param: rule.init(param, hp)[slot])
        self._checked.clear()  # a new parameter changes which spec lists are valid and fit
        self.generation += 1

    # ------------------------------------------------------------ validation

    def known(self, name: Any) -> np.ndarray:
        """The parameter `name`; refuses names this shard does not hold."""
        if name not in self.params:
            raise Reject("unknown_parameter", f"Unknown parameter {name!r:.100} on shard "
                         f"{self.plan.shard}. Known: {sorted(self.params)[:20]}")
        return self.params[name]

    def check_spec(self, name: str, dtype: str, shape: tuple) -> None:
        """Refuses a tensor for `name` whose dtype or shape differs from the parameter's."""
        param = self.known(name)
        if dtype != protocol.dtype_name(param.dtype):
            raise Reject("dtype_mismatch", f"Parameter {name!r} is {param.dtype.name}. "
                         f"Received: dtype={dtype}")
        if shape != param.shape:
            raise Reject("shape_mismatch", f"Parameter {name!r} has shape {param.shape}. "
                         f"Received: shape={shape}")

    def layout_checked(self, layout: Any) -> bool:
        """Whether a spec list (a message's `layout`) was matched against the parameters."""
        return layout in self._checked

    def remember_layout(self, layout: Any) -> None:
        """Spec lists already matched against the parameters skip that check next time."""
        self._checked.put(layout, self.store.matches(layout.packed))

    def packs_like_store(self, layout: Any) -> bool:
        """Whether a checked spec list's pack frame is laid out as the packed store."""
        return bool(self._checked.get(layout))

    def checked_layouts(self) -> list[bool]:
        """For each spec list remembered as checked: whether it packs like the store."""
        return list(self._checked.values())

    # ------------------------------------------------------------ updates

    def apply(self, grads: dict[str, list[np.ndarray]], packed: np.ndarray | None = None,
              bump: bool = True) -> None:
        """Applies one optimizer step and bumps the version.

        Args:
            grads: name -> the gradient as flat pieces (views on the received
                frames, or the averaged sum), in order.
            packed: the gradient of every parameter of the packed store, laid
                out as the store (one rule call for all of them), or None.
            bump: False for a pipelined step's parts but the last: they use the
                same step number and the version goes up once, at the end.
        """
        self._copy_on_write(grads)
        step = self.version + 1
        hp = dict(self.optimizer.get("hp", {}))
        hp["learning_rate"] = self.learning_rate(self.version)
        for name, pieces in grads.items():
            _update_array(self._rule, self.params[name], self.slots[name], pieces, step, hp)
        if packed is not None:
            _update_array(self._rule, self.store.values, self.store.slots, [packed], step, hp)
        if bump:
            self.bump()

    def apply_mean(self, grads: dict[str, list[np.ndarray]]) -> None:
        """Applies a step's mean gradients, the packed store's gathered into one call."""
        packed = self.store.gather(grads)  # one rule call for the small parameters
        if packed is not None:
            grads = {n: g for n, g in grads.items() if n not in self.store.held}
        self.apply(grads, packed)

    def bump(self) -> None:
        """Counts one version; writes a checkpoint when one is due."""
        version = self.version = self.version + 1
        self.steps += 1
        every = self.plan.every
        # A learning-rate change is written at once, so a restarted server never
        # goes back to the old rate (changes are rare: the Keras callbacks make at
        # most one per epoch).
        if self.plan.root and every and (version % every == 0 or self._lr_changed):
            self._periodic_checkpoint()
        self._lr_changed = False

    # ------------------------------------------------------------ learning rate

    def learning_rate(self, iterations: int) -> float:
        """The rate of the update after `iterations` versions."""
        if self._schedule is not None:
            return float(self._schedule(iterations))
        return float(self.optimizer.get("learning_rate", 0.01))

    def learning_rate_source(self) -> Any:
        """The rate as configured: a number or a schedule config (None before `init`)."""
        return self.optimizer.get("learning_rate") if self.optimizer else None

    def set_learning_rate(self, value: float, sender: Any) -> None:
        """Uses `value` from the next update on (it replaces a schedule)."""
        if self._schedule is None and self.learning_rate_source() == value:
            return
        log.info("Learning rate set to %r by worker %s (version %d; was %r)", value, sender,
                 self.version, self.learning_rate_source())
        self.optimizer = {**self.optimizer, "learning_rate": value}
        self._schedule = None
        self._lr_changed = True

    # ------------------------------------------------------------ copy-on-write

    def track(self, names: Any, tracker: Any) -> None:
        """Records that a send still reads the buffers of `names` until `tracker.done`."""
        self._inflight.track(names, tracker)

    def _copy_on_write(self, names: Any) -> None:
        """Moves the parameters in `names` that a send still reads to fresh copies."""
        self.cow_copies += self._inflight.move(names, self.params)

    # ------------------------------------------------------------ checkpoints

    def save(self) -> Path:
        """Writes parameters, optimizer state, version and position atomically."""
        tensors = {f"param/{n}": p for n, p in self.params.items()}
        for name, slots in self.slots.items():
            tensors.update({f"slot/{name}/{s}": a for s, a in slots.items()})
        meta = {"version": self.version, "position": self.position, "shard": self.plan.shard,
                "mode": self.plan.mode, "optimizer": self.optimizer,
                "params": list(self.params), "time": time.time(), "run_id": self.plan.run_id,
                "run_named": self.plan.run_named}
        path = checkpoint.save(self.plan.root, self.version, tensors, meta, keep=self.plan.keep)
        self.record.last = {"path": str(path), "version": self.version}
        log.info("Checkpoint written: %s (version %d)", path, self.version)
        return path

    def _periodic_checkpoint(self) -> None:
        """Writes a checkpoint after an update; a failure (full disk, permissions) is
        counted and logged, and training goes on: the update is applied exactly once
        whatever happens here, the previous checkpoint stays as it was, and the
        next interval tries again."""
        try:
            self.save()
        except Exception as exc:  # never part of the update: any failure is the disk's
            self.checkpoint_failed(exc)

    def checkpoint_failed(self, exc: Exception) -> None:
        """Counts and logs a failed checkpoint (the previous one is intact)."""
        record = self.record
        record.failures += 1
        error = f"{type(exc).__name__}: {exc}"
        record.last_error = {"version": self.version, "error": error, "time": time.time()}
        self._report_error("checkpoint", "Checkpoint of version %d failed (%s); training "
                           "goes on, the newest checkpoint is still %s; retrying at the next "
                           "interval (%d failures so far)", self.version, error,
                           record.last["path"] if record.last else "none", record.failures)

    def final_checkpoint(self) -> None:
        """Writes a last checkpoint when there is a directory and a state to save."""
        if self.plan.root and self.initialized:
            try:
                self.save()
            except Exception as exc:  # the caller still closes its socket
                log.error("Final checkpoint failed: %s: %s", type(exc).__name__, exc)

    def restore(self) -> Path | None:
        """Resumes from the newest checkpoint that verifies (checksum, schema, shard);
        returns its path (None: nothing to resume from).

        A run resumes its own checkpoints. Those of another run are refused
        (`OtherRunError`, nothing restored) when either run was named by the user
        (`--run-id`): two named runs differ, or an unnamed run would take a named
        run's state without saying so; `resume_other_run` resumes them anyway. An
        unnamed run resumes an unnamed run's checkpoints (the same command started
        again, as Keras's `BackupAndRestore`), saying so in the log.

        Raises:
            CheckpointError: checkpoints exist but none verifies, unless the
                plan's `ignore_corrupt`.
            OtherRunError: the newest valid checkpoint belongs to another run.
        """
        root = self.plan.root
        if root is None:
            return None
        for path, tensors, meta in checkpoint.valid_checkpoints(root, checkpoint.check_ps_meta):
            try:
                self._restore_from(path, tensors, meta)
                return path
            except (Reject, checkpoint.CheckpointError) as exc:
                log.warning("Skipping checkpoint %s: %s Falling back to the previous one.",
                            path, exc)
        _none_valid(root, self.plan.ignore_corrupt)
        return None

    def _restore_from(self, path: Path, tensors: dict[str, np.ndarray], meta: dict) -> None:
        """Takes the state of one verified checkpoint (nothing changes if it does not fit)."""
        if meta["shard"] != self.plan.shard:
            raise checkpoint.CheckpointError(f"it holds shard {meta['shard']}, this server is "
                                             f"shard {self.plan.shard}.")
        self._check_run(path, meta)
        self.configure(meta["optimizer"])
        for name in meta["params"]:
            self.params[name] = tensors[f"param/{name}"]
            prefix = f"slot/{name}/"
            self.slots[name] = {k[len(prefix):]: v for k, v in tensors.items()
                                if k.startswith(prefix)}
        self.version = int(meta["version"])
        self.position = dict(meta.get("position") or {})
        self.restored_position = dict(self.position)
        self._rebuild_store()
        self.record.last = {"path": str(path), "version": self.version}
        log.info("Resumed from checkpoint %s (version %d, position %s)", path, self.version,
                 self.position)

    def _check_run(self, path: Path, meta: dict) -> None:
        """Refuses another run's checkpoint when either run is named (see `restore`)."""
        run, ours, plan = meta.get("run_id"), self.plan.run_id, self.plan
        if run is None or ours is None or run == ours:
            return
        if plan.resume_other_run or not (plan.run_named or meta.get("run_named", False)):
            log.info("Resuming checkpoint %s of run %s (this is run %s)", path, run, ours)
            return
        raise checkpoint.OtherRunError(_other_run_message(path, run, ours, plan.run_named))


def _other_run_message(path: Path, run: str, ours: str, named: bool) -> str:
    this = f"this is run {ours!r}" + ("" if named else " (its id was generated)")
    return (f"The checkpoints in {path.parent} belong to run {run!r}; {this}. Nothing was "
            f"restored or changed. To continue run {run!r}, pass --run-id {run}; to resume "
            f"its state in this run, pass --resume-other-run (DISTFLOW_RESUME_OTHER_RUN=1); "
            f"to start fresh, use another --checkpoint-dir.")


def _update_array(rule: Any, param: np.ndarray, slots: dict[str, np.ndarray],
                  pieces: list[np.ndarray], step: int, hp: dict) -> None:
    """One rule step on one array, in cache-sized chunks (`rules.update_in_chunks`)."""
    rules.update_in_chunks(rule, param, pieces, slots, step, rule.merge(hp))


class InFlight:
    """The zero-copy sends still reading parameter buffers (copy-on-write).

    Replies may still be reading the parameter buffers (zero-copy sends).
    Updating them in place would corrupt a reply in flight, so a parameter
    about to be updated whose send is not finished moves to a fresh copy
    instead of waiting. Tracked per parameter: a pipelined step's replies for
    some parameters never force copies of the others.
    """

    def __init__(self):
        self._trackers: dict[str, list] = {}  # param name -> sends still reading it

    def track(self, names: Any, tracker: Any) -> None:
        """Records that a send reads the buffers of `names` until `tracker.done`."""
        for name in names:
            self._trackers.setdefault(name, []).append(tracker)

    def move(self, names: Any, params: dict[str, np.ndarray]) -> bool:
        """Replaces each of `params[names]` a send still reads by a copy; True if any was."""
        copied = False
        for name in names:  # (the packed store is never sent zero-copy: never in flight)
            trackers = self._trackers.get(name)
            if not trackers:
                continue
            if not all(t is None or t.done for t in trackers):
                params[name] = params[name].copy()
                copied = True
            del self._trackers[name]
        return copied


def _none_valid(root: Path, ignore_corrupt: bool) -> None:
    """Refuses to start empty over checkpoints none of which verifies (unless asked to)."""
    found = checkpoint.list_checkpoints(root)
    if not found:
        return
    if not ignore_corrupt:
        raise checkpoint.CheckpointError(
            f"None of the {len(found)} checkpoints in {root} is valid (the log says why "
            f"for each); refusing to start empty and lose them. Restore a good checkpoint "
            f"there, or pass --ignore-corrupt-checkpoints "
            f"(DISTFLOW_IGNORE_CORRUPT_CHECKPOINTS=1) to start from the workers' values.")
    log.warning("None of the %d checkpoints in %s is valid; starting empty as "
                "ignore_corrupt_checkpoints asks", len(found), root)


def build_optimizer(config: Any) -> tuple[Any, Any]:
    """(rule, schedule or None) from an optimizer config `{name, hp, learning_rate}`."""
    from distflow.optimizers import rules, schedules

    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise Reject("bad_optimizer", f"`optimizer` must be a map {{name, hp, learning_rate}}. "
                     f"Received: optimizer={config!r:.200}")
    hp, lr = config.get("hp", {}), config.get("learning_rate", 0.01)
    if not isinstance(hp, dict):
        raise Reject("bad_optimizer", f"`optimizer.hp` must be a map. Received: hp={hp!r:.100}")
    try:
        rule = rules.get_rule(config["name"])
        schedule = schedules.deserialize(lr) if isinstance(lr, dict) else None
    except (KeyError, ValueError, TypeError) as exc:
        raise Reject("bad_optimizer", f"Cannot build optimizer from {config!r:.200}: "
                     f"{exc}") from None
    if schedule is None and not isinstance(lr, int | float):
        raise Reject("bad_optimizer", f"`optimizer.learning_rate` must be a number or a "
                     f"schedule config. Received: learning_rate={lr!r:.100}")
    return rule, schedule


def _log_error(kind: str, message: str, *args: Any) -> None:
    log.error(message, *args)
