"""The one exception of the server's request path (stdlib only)."""

from __future__ import annotations


class Reject(Exception):
    """A request refused after decoding; the service turns it into an error reply.

    Args:
        reason: the reply's `reason` code (docs/protocol.md).
        message: what was wrong and how to fix it, quoting the received value.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
