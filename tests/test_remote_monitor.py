"""RemoteMonitor against a real HTTP server on 127.0.0.1 (a thread of this process)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from distflow.keras import layers
from distflow.keras.callbacks import RemoteMonitor
from distflow.keras.functional import Input
from distflow.keras.models import Sequential


@pytest.fixture
def http_server():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body.decode()))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    thread.join(timeout=10)


def _fit(callback):
    model = Sequential([Input(shape=(2,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x = np.ones((8, 2), np.float32)
    model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[callback])


def test_posts_each_epochs_logs_as_a_form_field_or_json(http_server):
    root, received = http_server
    _fit(RemoteMonitor(root=root, path="/epochs/"))
    _fit(RemoteMonitor(root=root, send_as_json=True, headers={"X-Run": "7"}))
    assert [r[0] for r in received] == ["/epochs/"] * 2 + ["/publish/epoch/end/"] * 2
    form = json.loads(urllib.parse.parse_qs(received[1][2])["data"][0])
    assert form["epoch"] == 1 and set(form) == {"epoch", "loss", "mae"}
    assert received[2][1] == "application/json" and json.loads(received[3][2])["epoch"] == 1


def test_an_unreachable_server_warns_and_training_goes_on():
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor"):
        _fit(RemoteMonitor(root="http://127.0.0.1:9", timeout=2.0))
