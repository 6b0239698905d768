"""`RemoteMonitor`: posts each epoch's logs to an HTTP server, as Keras's does.

Keras uses the `requests` package; this uses the standard library (`urllib`), with
a timeout, so an unreachable server costs at most `timeout` seconds per epoch and
a warning, never a hang or a failed run.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

import numpy as np

from distflow.keras.callbacks.base import Callback


class RemoteMonitor(Callback):
    """Sends `{"epoch": n, **logs}` to `root + path` after every epoch.

    Args:
        root: the server's URL ("http://localhost:9000").
        path: the path posted to ("/publish/epoch/end/").
        field: the form field holding the JSON (when not `send_as_json`).
        headers: extra HTTP headers.
        send_as_json: post the JSON as the request body (Content-Type
            application/json) instead of a form field.
        timeout: seconds to wait for the server (distflow's addition; Keras waits
            as long as `requests` does).
    """

    def __init__(self, root: str = "http://localhost:9000", path: str = "/publish/epoch/end/",
                 field: str = "data", headers: dict | None = None, send_as_json: bool = False,
                 timeout: float = 10.0):
        super().__init__()
        self.root, self.path, self.field = root, path, field
        self.headers, self.send_as_json, self.timeout = headers, bool(send_as_json), timeout

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        send: dict[str, Any] = {"epoch": epoch}
        for key, value in (logs or {}).items():
            send[key] = value.item() if isinstance(value, np.ndarray | np.generic) else value
        try:
            urllib.request.urlopen(self._request(send), timeout=self.timeout).close()
        except (urllib.error.URLError, OSError):
            warnings.warn(f"Could not reach RemoteMonitor root server at {self.root}",
                          stacklevel=2)

    def _request(self, send: dict[str, Any]) -> urllib.request.Request:
        headers = dict(self.headers or {})
        if self.send_as_json:
            body = json.dumps(send).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return urllib.request.Request(self.root + self.path, data=body, headers=headers,
                                      method="POST")
