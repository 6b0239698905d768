"""TF's runtime error classes (`tf.errors`): raised by ops, graphs and sessions."""

from __future__ import annotations


class OpError(Exception):
    """An error raised while running (or preparing to run) a graph."""


class InvalidArgumentError(OpError, ValueError):
    """A bad feed or input: a missing placeholder feed, a wrong shape or dtype."""


class DTypeMismatchError(InvalidArgumentError, TypeError):
    """An op given tensors of different dtypes (TF never promotes between tensors).

    Both an `InvalidArgumentError` (what TF raises eagerly) and a `TypeError` (what it
    raises while tracing a function), so either `except` catches it.
    """


class FailedPreconditionError(OpError, RuntimeError):
    """The graph's state does not allow the run (an uninitialized variable)."""


class NotFoundError(OpError, KeyError):
    """Something asked for (a checkpoint key) does not exist."""


class OutOfRangeError(OpError, IndexError):
    """An index or a read past the end (a TensorArray slot, an exhausted iterator)."""


class CancelledError(OpError):
    """An operation was cancelled (an enqueue into a closed queue)."""
