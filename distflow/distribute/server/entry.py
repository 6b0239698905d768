"""The process entry point: `python -m distflow.distribute.server [flags]`.

Reads the launcher's `DISTFLOW_*` environment (`config.config_from_env`), lets
flags override it (`config.parse_args`), serves until SIGTERM/SIGINT or a
`shutdown` request, writes a final checkpoint and exits 0 (2 on bad settings).
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from distflow.distribute import transport
from distflow.distribute.server.config import config_from_env, log_level, parse_args
from distflow.distribute.server.service import ParameterServer


class Terminated(BaseException):
    """SIGTERM/SIGINT arrived while the loop was only reading a request (`main`)."""


def main(argv: list[str] | None = None) -> int:
    """Process entry point: serve until SIGTERM/SIGINT or `shutdown`, checkpoint, exit 0."""
    overrides = parse_args(argv)
    logging.basicConfig(level=log_level(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for sig in (signal.SIGTERM, signal.SIGINT):  # while starting: nothing to save yet
        signal.signal(sig, _stop_starting)
    server = None
    try:
        server = ParameterServer(config_from_env(), **overrides)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: on_signal(server))
    except (ValueError, TypeError, transport.TransportError) as exc:
        print(f"distflow parameter server: {exc}", file=sys.stderr)
        return 2
    except Terminated:  # a signal while starting: before or just after the socket opened
        if server is None:
            return 0
        server.request_stop()  # serve_forever ends at once: final checkpoint, socket closed
    try:
        server.serve_forever()
    except Terminated:
        pass  # serve_forever wrote the final checkpoint and closed its socket
    return 0


def _stop_starting(*_: Any) -> None:
    raise Terminated


def on_signal(server: ParameterServer) -> None:
    """Stops the loop: at once when it is only reading a request (nothing changed yet;
    however long the request would take), else after the request it is applying."""
    if server.interrupt():
        raise Terminated
