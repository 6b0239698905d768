"""TF's runtime error classes for graphs (`tf.errors`)."""

from __future__ import annotations


class OpError(Exception):
    """An error raised while running (or preparing to run) a graph."""


class InvalidArgumentError(OpError, ValueError):
    """A bad feed or input: a missing placeholder feed, a wrong shape or dtype."""


class FailedPreconditionError(OpError, RuntimeError):
    """The graph's state does not allow the run (an uninitialized variable)."""


class NotFoundError(OpError, KeyError):
    """Something asked for (a checkpoint key) does not exist."""


class OutOfRangeError(OpError, IndexError):
    """An index or a read past the end (a TensorArray slot, an exhausted iterator)."""


class CancelledError(OpError):
    """An operation was cancelled (an enqueue into a closed queue)."""
