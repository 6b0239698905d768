"""Item 9 of issue 13: refused CURVE clients are counted, and logged at most once per
10 s per kind of refusal with the count so far (not one line per attempt)."""

from __future__ import annotations

import logging
import time

import pytest
import zmq
from test_ps_server import make_server

from distflow import keys
from distflow.distribute import transport

pytestmark = pytest.mark.timeout(60)


def test_refused_curve_clients_are_counted_and_logged_once_per_interval(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="distflow.transport")
    cluster, rogue = tmp_path / "cluster", tmp_path / "rogue"
    keys.generate(cluster, clients=1)
    keys.generate(rogue, clients=1)
    server_public = transport.server_public_key(cluster)  # the attacker knows it
    public, secret = transport.client_keys(rogue, 0)
    server = make_server(mode="async", keys_dir=str(cluster))
    sockets = []
    try:
        for _ in range(30):  # 30 connection attempts with a key outside the allow-list
            sock = zmq.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = \
                server_public, public, secret
            sock.connect(server.address)
            sock.send(b"hello?")
            sockets.append(sock)
        deadline = time.monotonic() + 20
        while server.socket.allow_list.refused < 30 or \
                server.stats_dict()["connections"].get("refused", 0) < 30:
            assert time.monotonic() < deadline, "the attempts were not all refused"
            time.sleep(0.05)
    finally:
        for sock in sockets:
            sock.close()
        server.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "distflow.transport"]
    assert len(lines) == 2, lines  # one ZAP line, one handshake line
    assert any("not in the allow-list (1 refusals from 1 keys so far)" in line
               for line in lines)
    assert server.stats.requests == {}
