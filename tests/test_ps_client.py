"""PSClient: timeouts that name the server, retries that never apply a gradient twice,
reconnection after a server restart, and client-side argument checks."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from test_ps_server import SGD, Raw, grads, make_server, params

from distflow.distribute import protocol
from distflow.distribute.client import PSClient, PSError, PSTimeoutError
from distflow.distribute.server import ParameterServer, ServerConfig

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def servers():
    """Factory of in-process servers, all stopped at teardown."""
    started = []
    yield lambda **kw: started.append(make_server(**kw)) or started[-1]
    for server in started:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_silent_server_raises_a_timeout_naming_address_operation_and_seconds():
    address = f"tcp://127.0.0.1:{_free_port()}"
    client = PSClient([address], worker_id=0, timeout=0.6, retries=1, backoff=0.05)
    start = time.monotonic()
    with pytest.raises(PSTimeoutError) as info:
        client.hello()
    waited = time.monotonic() - start
    client.close(leave=False)
    message = str(info.value)
    assert address in message and "`hello`" in message and "2 attempt(s)" in message
    assert f"{info.value.waited:.1f} s" in message
    assert 0.5 <= waited < 3 and info.value.address == address and info.value.op == "hello"


def test_the_timeout_names_the_silent_shard_among_several(servers):
    live = servers()
    dead = f"tcp://127.0.0.1:{_free_port()}"
    client = PSClient([live.address, dead], worker_id=0, timeout=0.5, retries=0)
    with pytest.raises(PSTimeoutError) as info:
        client.hello()
    client.close(leave=False)
    assert info.value.address == dead and dead in str(info.value)


def test_a_refusal_names_the_server_and_the_reason(servers):
    server = servers()
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), SGD)
        with pytest.raises(PSError) as info:
            client.push({"dense/bias": np.full(4, np.nan, np.float32)})
    assert info.value.reason == "non_finite" and info.value.address == server.address
    assert server.address in str(info.value) and "`push`" in str(info.value)


def test_gradients_with_the_wrong_shape_are_refused_before_sending(servers):
    server = servers()
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), SGD)
        with pytest.raises(ValueError, match=r"shape \(4,\).*Received: shape=\(3,\)"):
            client.push({"dense/bias": np.ones(3, np.float32)})
        with pytest.raises(ValueError, match="Unknown variable 'nope'"):
            client.push({"nope": np.ones(3, np.float32)})
    assert server.stats.requests["push"] == 0


@pytest.mark.parametrize("kwargs,message", [
    ({"addrs": "tcp://127.0.0.1:1"}, "non-empty list"),
    ({"addrs": []}, "non-empty list"),
    ({"addrs": ["tcp://127.0.0.1:1"], "timeout": 0}, "timeout=0"),
])
def test_bad_client_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PSClient(**kwargs)


def test_a_retried_request_is_applied_once(servers):
    server = servers(mode="async")
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), SGD)
    frames = protocol.encode({"op": "push", "req": 4242, "sender": 0, "step": 0},
                             list(grads(0).items()))
    raw = Raw(server.address)
    first = raw.ask(frames)
    again = raw.ask(frames)  # the same request id: a retry after a lost reply
    raw.close()
    assert first.op == again.op == "ok" and again.header.get("duplicate") is True
    assert server.version == 1 and server.stats_dict()["duplicates"] == 1
    for name, value in params().items():
        np.testing.assert_allclose(server.params[name], value - np.float32(0.5) * grads(0)[name])


def test_close_says_goodbye_so_sync_servers_stop_waiting(servers):
    server = servers(mode="sync", num_workers=2)
    a = PSClient([server.address], worker_id=0, timeout=5)
    b = PSClient([server.address], worker_id=1, timeout=5)
    a.init(params(), SGD)
    b.init(params(), SGD)
    b.close()
    start = time.monotonic()
    a.push_pull(grads(0))  # does not wait for the departed worker 1
    a.close()
    assert time.monotonic() - start < 2
    assert server.stats_dict()["live_workers"] == []


def test_the_client_reconnects_to_a_restarted_server(tmp_path):
    port = _free_port()
    config = ServerConfig(address=f"tcp://127.0.0.1:{port}", mode="async", poll_ms=10,
                          stats_interval=0, checkpoint_dir=str(tmp_path), checkpoint_every=1)
    first = ParameterServer(config)
    first.start()
    client = PSClient([first.address], worker_id=0, timeout=15, retries=6, backoff=0.1)
    try:
        client.init(params(), SGD)
        client.push(grads(0))
        first.stop()
        restarted: list[ParameterServer] = []
        # The server comes back while the next request is already waiting for it.
        timer = threading.Timer(0.8, lambda: restarted.append(_start(config)))
        timer.start()
        values = client.push_pull(grads(1))
        timer.join(5)
        assert restarted and restarted[0].version == 2
        for name, value in params().items():
            expected = value - np.float32(0.5) * grads(0)[name] - np.float32(0.5) * grads(1)[name]
            np.testing.assert_allclose(values[name], expected, rtol=1e-6)
    finally:
        client.close()
        for server in restarted:
            server.stop()


def _start(config: ServerConfig) -> ParameterServer:
    server = ParameterServer(config)
    server.start()
    return server
