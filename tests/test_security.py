"""CURVE security: key generation, encryption, the allow-list, and refusals.

Servers run in a thread of this process with real CURVE sockets on 127.0.0.1.
The wire tests put a byte-recording TCP relay between client and server.
"""

from __future__ import annotations

import logging
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from test_ps_server import SGD, grads, make_server, params

from distflow import keys
from distflow.distribute import transport
from distflow.distribute.client import PSClient, PSTimeoutError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys") / "cluster"
    keys.generate(root, clients=2)
    return root


@pytest.fixture
def curve_server(key_dir):
    server = make_server(mode="async", keys_dir=str(key_dir))
    yield server
    server.stop()


def test_curve_server_sockets_open_right_after_the_last_one_closed(key_dir):
    """The process's one ZAP handler outlives its CURVE sockets: libzmq releases the
    handler's endpoint asynchronously, so stopping it with the last socket made the
    next socket's handler fail with "Address already in use" (zeromq.zap.01)."""
    for _ in range(50):
        transport.ServerSocket("tcp://127.0.0.1:0", keys_dir=str(key_dir)).close()


def test_generate_writes_pairs_with_private_secrets(tmp_path):
    root = tmp_path / "k"
    done = subprocess.run([sys.executable, "-m", "distflow.keys", "generate", str(root),
                           "--clients", "3"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    secrets = [root / "server.key_secret", *(root / "clients" / f"client-{i}.key_secret"
                                             for i in range(3))]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.with_suffix(".key").is_file()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    publics = {line.split(": ")[1].split(" (")[0] for line in done.stdout.splitlines()
               if line.startswith("  client-")}
    assert len(publics) == 3  # three distinct client keys, listed in the allow-list
    listed = subprocess.run([sys.executable, "-m", "distflow.keys", "list", str(root)],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "allow-list (3 client key(s))" in listed.stdout
    assert all(key in listed.stdout for key in publics)


def test_generate_refuses_to_overwrite_keys_unless_forced(tmp_path):
    keys.generate(tmp_path, clients=1)
    before = (tmp_path / "server.key").read_bytes()
    assert keys.main(["generate", str(tmp_path)]) == 2
    assert (tmp_path / "server.key").read_bytes() == before
    assert keys.main(["generate", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "server.key").read_bytes() != before


def test_list_of_a_missing_directory_fails_saying_how_to_make_one(tmp_path, capsys):
    assert keys.main(["list", str(tmp_path / "nope")]) == 2
    assert "python -m distflow.keys generate" in capsys.readouterr().err


def test_list_warns_about_secrets_readable_by_others(tmp_path):
    keys.generate(tmp_path, clients=1)
    secret = tmp_path / "clients" / "client-0.key_secret"
    secret.chmod(0o644)
    assert f"WARNING: {secret} is readable by other users" in keys.describe(tmp_path)


def test_an_allowed_client_trains_through_a_curve_server(curve_server, key_dir):
    with PSClient([curve_server.address], worker_id=0, timeout=10, keys_dir=str(key_dir)) as c:
        c.init(params(), SGD)
        values = c.push_pull(grads(0))
    for name, value in params().items():
        np.testing.assert_allclose(values[name], value - np.float32(0.5) * grads(0)[name])


def test_a_client_key_outside_the_allow_list_is_refused_and_logged(curve_server, key_dir,
                                                                   tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="distflow.transport")
    rogue = tmp_path / "rogue"
    keys.generate(rogue, clients=1)
    shutil.copy(key_dir / "server.key", rogue / "server.key")  # knows the real server key
    client = PSClient([curve_server.address], worker_id=0, timeout=1.0, retries=1,
                      keys_dir=str(rogue))
    with pytest.raises(PSTimeoutError) as info:
        client.hello()
    client.close(leave=False)
    assert curve_server.address in str(info.value) and "allow-list" in str(info.value)
    rogue_public = keys.transport.describe_keys(rogue)["clients"][0]["public"]
    refusals = [r.getMessage() for r in caplog.records if "not in the allow-list" in
                r.getMessage()]
    assert refusals and rogue_public in refusals[0] and curve_server.address in refusals[0]
    assert curve_server.stats.requests == {}


def test_a_plain_client_cannot_talk_to_a_curve_server(curve_server, caplog):
    caplog.set_level(logging.WARNING, logger="distflow.transport")
    client = PSClient([curve_server.address], worker_id=0, timeout=1.0, retries=1)
    with pytest.raises(PSTimeoutError) as info:
        client.hello()
    client.close(leave=False)
    assert "needs `keys_dir`" in str(info.value)
    assert curve_server.stats.requests == {}
    deadline = time.monotonic() + 3
    while not any("Refused a connection" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the server did not log the refused handshake"
        time.sleep(0.05)
    assert curve_server.stats_dict()["connections"]["refused"] >= 1


def test_a_curve_client_cannot_talk_to_a_plain_server(key_dir):
    server = make_server(mode="async")
    try:
        client = PSClient([server.address], worker_id=0, timeout=1.0, retries=0,
                          keys_dir=str(key_dir))
        with pytest.raises(PSTimeoutError):
            client.hello()
        client.close(leave=False)
        assert server.stats.requests == {}
    finally:
        server.stop()


def test_two_curve_servers_in_one_process_keep_separate_allow_lists(key_dir, tmp_path):
    other = tmp_path / "other"
    keys.generate(other, clients=1)
    first = make_server(mode="async", keys_dir=str(key_dir))
    second = make_server(mode="async", keys_dir=str(other))
    try:
        with PSClient([first.address], worker_id=0, timeout=5, keys_dir=str(key_dir)) as a, \
                PSClient([second.address], worker_id=0, timeout=5, keys_dir=str(other)) as b:
            assert a.hello()[0]["shard"] == 0 and b.hello()[0]["shard"] == 0
        crossed = PSClient([second.address], worker_id=0, timeout=0.8, retries=0,
                           keys_dir=str(key_dir))
        with pytest.raises(PSTimeoutError):
            crossed.hello()
        crossed.close(leave=False)
    finally:
        first.stop()
        second.stop()


class Relay:
    """A TCP relay on 127.0.0.1 that records every byte going either way."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.captured = bytearray()
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            self.open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while data := src.recv(65536):
                with self.lock:
                    self.captured += data
                dst.sendall(data)
        except OSError:
            pass

    def close(self):
        self.listener.close()
        for sock in self.open:
            sock.close()


@pytest.mark.parametrize("encrypted", [True, False])
def test_no_parameter_bytes_cross_the_wire_in_plaintext(key_dir, encrypted):
    server = make_server(mode="async", keys_dir=str(key_dir) if encrypted else None)
    relay = Relay(int(server.address.rpartition(":")[2]))
    secret_values = {"w": np.random.default_rng(9).standard_normal(4096).astype(np.float32)}
    try:
        with PSClient([f"tcp://127.0.0.1:{relay.port}"], worker_id=0, timeout=5,
                      keys_dir=str(key_dir) if encrypted else None) as client:
            client.init(secret_values, SGD)
            client.pull()
    finally:
        relay.close()
        server.stop()
    with relay.lock:
        captured = bytes(relay.captured)
    assert len(captured) > 2 * secret_values["w"].nbytes  # the values did cross, both ways
    probe = secret_values["w"][1000:1016].tobytes()  # 64 distinctive bytes
    assert (probe in captured) is (not encrypted)
