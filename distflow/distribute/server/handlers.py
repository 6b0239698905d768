"""The request handlers other than pushes (those are the policy's): one method per op.

Each handler takes `(identity, msg, worker)` (worker: the sender's `Worker`, or
None for an anonymous tool), answers through `Replies`, and raises `Reject` to
refuse; the service's dispatch table (`ParameterServer.dispatch`) maps each op
of docs/protocol.md to one of these or to the policy's `push`/`push_pull`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from distflow.distribute.collective import KINDS, Collectives
from distflow.distribute.protocol import Message
from distflow.distribute.server import requests
from distflow.distribute.server.errors import Reject
from distflow.distribute.server.membership import Worker
from distflow.distribute.server.shard import build_optimizer

log = logging.getLogger("distflow.ps")


class Handlers:
    """The ops of one server that do not push gradients.

    Args:
        server: the `ParameterServer` they serve (its config, shard, members,
            policy, replies, stats).
    """

    def __init__(self, server: Any):
        self.server, self.config = server, server.config
        self.shard, self.members, self.replies = server.shard, server.members, server.replies
        self.collectives = Collectives()  # strategy.reduce / gather (distribute/collective.py)

    # ------------------------------------------------------------ simple ops

    def hello(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """The shard's settings and state, for a client connecting."""
        shard = self.shard
        self.replies.reply(identity, msg, shard=self.config.shard, mode=self.config.mode,
                           initialized=shard.initialized, position=shard.position,
                           num_workers=self.config.num_workers, params=list(shard.params),
                           learning_rate=shard.learning_rate_source(),
                           rejoined=worker is not None and worker.last_step >= 0,
                           restored_position=shard.restored_position)

    def heartbeat(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """A sign of life (the dispatch already recorded it)."""
        self.replies.reply(identity, msg)

    def bye(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """The sender leaves: no step waits for it any more."""
        if worker is not None:
            self.members.leave(worker)
        self.replies.reply(identity, msg)

    def stats(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """The server's counters."""
        self.replies.reply(identity, msg, stats=self.server.stats_dict())

    def shutdown(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """Stops the server (after a final checkpoint)."""
        self._update_position(msg)
        self.replies.reply(identity, msg)
        log.info("Shutdown requested by worker %s", msg.sender)
        self.server.request_stop()

    def _update_position(self, msg: Message) -> None:
        self.shard.position = requests.position(msg) or self.shard.position

    # ------------------------------------------------------------ epochs

    def epoch_end(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """The chief records its stop decision for an epoch; every worker can read it."""
        epoch, stop = msg.header.get("epoch"), msg.header.get("stop")
        if epoch is None:
            raise Reject("bad_field", "`epoch_end` needs `epoch` (an int).")
        if stop is not None:
            if not isinstance(stop, bool) or msg.sender != 0:
                raise Reject("bad_field", f"`stop` is a bool sent by the chief (sender 0) "
                             f"only. Received: stop={stop!r:.50} from sender {msg.sender!r}")
            self.members.decide(epoch, stop)
            if isinstance(epoch, int) and not isinstance(epoch, bool):
                # The chief finished this epoch: a run resumed from the checkpoint
                # starts at the next one (pushes record the epoch in progress).
                self.shard.position = {**self.shard.position, "epoch": epoch + 1, "step": 0}
        members = self.members
        members.epoch_ended(worker, epoch, msg.header.get("done") is True)
        self.replies.reply(identity, msg, epoch=epoch, decided=epoch in members.decisions,
                           stop=members.decisions.get(epoch), stop_epoch=members.stop_epoch(),
                           chief_alive=members.chief_alive(), behind=members.behind(epoch))

    # ------------------------------------------------------------ parameters

    def save(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """Writes a checkpoint now."""
        requests.require_initialized(self.shard)
        if not self.config.checkpoint_dir:
            raise Reject("no_checkpoint_dir", "This server has no checkpoint directory; "
                         "start it with DISTFLOW_CHECKPOINT_DIR (launcher --checkpoint-dir).")
        self._update_position(msg)
        try:
            path = self.shard.save()
        except Exception as exc:  # the request changed nothing else
            self.shard.checkpoint_failed(exc)
            raise Reject("checkpoint_failed", f"The checkpoint could not be written: "
                         f"{type(exc).__name__}: {exc}. The previous one is intact.") from None
        self.replies.reply(identity, msg, path=str(path))

    def pull(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """The current parameters (`names`, or all)."""
        requests.require_initialized(self.shard)
        names = msg.header.get("names")
        if names is not None:
            self._check_names(names)
        self._check_reply_size(names)
        self.replies.reply(identity, msg, with_params=True, names=names)

    def init(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """Registers parameters (the chief's values win) and the optimizer; answers
        with the stored values."""
        shard, config = self.shard, msg.header.get("optimizer")
        built = build_optimizer(config) if not shard.initialized else None
        for name in msg.names:
            if name in shard.params:
                requests.check_tensor(shard, msg, name)
        self._require_chief_for_new(msg)
        seeded = requests.seed_version(msg) if not shard.initialized else None
        if built is not None:
            shard.configure(config, built)
            log.info("Initialized by worker %s with optimizer %s", msg.sender, config["name"])
        if seeded:
            # Re-seeded after a restart without a checkpoint: the chief's parameters are at
            # its last version of this shard; the optimizer's slots start from zero.
            shard.seed(seeded)
            log.warning("Re-seeded by worker %s at version %d (optimizer slots reset)",
                        msg.sender, seeded)
        added = shard.add({n: msg.tensor(n) for n in msg.names if n not in shard.params})
        self.server.policy.params_added()
        self.replies.reply(identity, msg, with_params=True, names=msg.names, added=added,
                           learning_rate=shard.learning_rate_source(), mode=self.config.mode)

    def _require_chief_for_new(self, msg: Message) -> None:
        """Only the chief (or an anonymous tool, sender < 0) sets parameters not stored yet.

        The chief's initial or loaded weights and its optimizer win whatever order the
        workers register in; another worker is told to wait and ask again.
        """
        if isinstance(msg.sender, int) and msg.sender > 0 and \
                any(name not in self.shard.params for name in msg.names):
            raise Reject("awaiting_chief", f"Shard {self.config.shard} has not been "
                         f"initialized by the chief (worker 0) yet; worker {msg.sender} "
                         f"starts from the chief's values once it has.")

    def _check_names(self, names: Any) -> None:
        """A pull's `names`: a list of at most `max_tensors` distinct known names."""
        if not isinstance(names, list):
            raise Reject("bad_field", f"`names` must be a list of parameter names. "
                         f"Received: {names!r:.100}")
        if len(names) > self.config.max_tensors:
            raise Reject("too_many_tensors", f"A pull may name at most "
                         f"{self.config.max_tensors} parameters. Received: {len(names)}")
        for name in names:
            if not isinstance(name, str):
                raise Reject("bad_name", f"`names` must hold parameter names (strings). "
                             f"Received: {name!r:.100}")
        if len(set(names)) != len(names):
            twice = next(n for i, n in enumerate(names) if n in names[:i])
            raise Reject("duplicate_name", f"`names` names {twice!r:.100} more than once; "
                         f"name each parameter once.")
        for name in names:
            self.shard.known(name)

    def _check_reply_size(self, names: list[str] | None) -> None:
        """Refuses a reply that would carry more than `max_reply_bytes`."""
        params = self.shard.params
        size = sum(params[n].nbytes for n in (params if names is None else names))
        if size > self.config.max_reply_bytes:
            raise Reject("reply_too_large", f"The reply would carry {size} bytes; this "
                         f"server sends at most {self.config.max_reply_bytes} in one reply "
                         f"(max_reply_bytes). Pull fewer parameters per request.")

    # ------------------------------------------------------------ collectives

    def collective(self, identity: bytes, msg: Message, worker: Worker | None) -> None:
        """One worker's value for a cross-worker sum or gather (`strategy.reduce`)."""
        key, kind = msg.header.get("key"), msg.header.get("kind")
        if worker is None or isinstance(key, bool) or not isinstance(key, int) or key < 0 \
                or kind not in KINDS or msg.names != ["value"]:
            raise Reject("bad_field", f"`collective` takes a worker's (sender >= 0) key (an "
                         f"int >= 0), a kind in {KINDS} and one tensor named 'value'. "
                         f"Received: key={key!r:.50}, kind={kind!r:.50}, "
                         f"tensors={msg.names!r:.100}")
        try:
            self.collectives.offer(key, kind, worker.wid, np.array(msg.tensor("value")),
                                   (identity, msg))
        except ValueError as exc:
            raise Reject("bad_collective", str(exc)) from None
        self.finish_collectives()

    def finish_collectives(self) -> None:
        """Answers the collectives every live (and every expected) worker has joined."""
        if not self.collectives:
            return  # the usual case, checked at every housekeeping
        waiting_for = self.members.live_ids() | self.members.never_registered()
        for waiters, result in self.collectives.complete(waiting_for):
            for identity, msg in waiters:
                self.replies.values(identity, msg, result)
