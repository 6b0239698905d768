"""The launcher-to-launcher channel on loopback, in process."""

from __future__ import annotations

import queue
import socket
import time

import pytest

from distflow.launch.control import ControlError, Coordinator, Peer

pytestmark = pytest.mark.timeout(30)


def next_event(events: queue.Queue, kind: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if event[0] == kind:
            return event
    raise AssertionError(f"no {kind!r} event within {timeout} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_done_reports_and_stop_broadcast():
    port = free_port()
    coordinator = Coordinator("127.0.0.1", port, peers=2, run_id="run-a")
    peers = [Peer("127.0.0.1", port, node, 5.0, "run-a") for node in (1, 2)]
    try:
        for peer in peers:
            next_event(peer.events, "connected")
        for _ in peers:
            next_event(coordinator.events, "hello")
        deadline = time.monotonic() + 60
        assert not coordinator.all_done(deadline)
        assert peers[0].send_done(True, 0)
        next_event(coordinator.events, "done")
        assert not coordinator.all_done(deadline)
        assert peers[1].send_done(False, 7)
        _, node, payload = next_event(coordinator.events, "done")
        assert (node, payload["ok"], payload["exit_code"]) == (2, False, 7)
        assert coordinator.all_done(deadline) and coordinator.status == {1: "done", 2: "failed"}
        coordinator.broadcast_stop(False, 7)
        for peer in peers:
            _, _, payload = next_event(peer.events, "stop")
            assert payload == {"type": "stop", "ok": False, "exit_code": 7}
    finally:
        for peer in peers:
            peer.close()
        coordinator.close()


def test_a_launcher_of_another_run_is_ignored_and_a_drop_is_seen():
    port = free_port()
    coordinator = Coordinator("127.0.0.1", port, peers=1, run_id="run-a")
    stranger = Peer("127.0.0.1", port, 1, 5.0, "run-b")
    try:
        _, node, payload = next_event(coordinator.events, "rejected")
        assert (node, payload["run_id"]) == (1, "run-b")
        assert coordinator.status == {}
        member = Peer("127.0.0.1", port, 1, 5.0, "run-a")
        next_event(coordinator.events, "hello")
        member.close()
        next_event(coordinator.events, "dropped")
        assert coordinator.status == {1: "dropped"}
        assert coordinator.all_done(time.monotonic() + 60)
    finally:
        stranger.close()
        coordinator.close()


def test_unreachable_coordinator_is_reported_with_address_and_time():
    port = free_port()
    peer = Peer("127.0.0.1", port, 1, 0.5, "run-a")
    _, _, payload = next_event(peer.events, "unreachable")
    message = payload["error"]
    assert f"127.0.0.1:{port} (connect) within 0.5 s" in message


def test_coordinator_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ControlError, match=f"cannot listen on 127.0.0.1:{port}"):
            Coordinator("127.0.0.1", port, peers=1, run_id="r")


# ---------------------------------------------------------------- CURVE (--keys)


@pytest.fixture(scope="module")
def run_keys(tmp_path_factory):
    """The run's key directory, and one holding the run's server key but a foreign client
    key (a launcher whose key is not in the run's allow-list)."""
    import shutil

    from distflow import keys

    root = tmp_path_factory.mktemp("control-keys")
    keys.generate(root / "run", clients=2)
    keys.generate(root / "other", clients=1)
    foreign = root / "foreign"
    shutil.copytree(root / "other" / "clients", foreign / "clients")
    shutil.copy(root / "run" / "server.key", foreign / "server.key")
    return str(root / "run"), str(foreign)


@pytest.mark.parametrize("encrypted", [True, False], ids=["keys", "plain"])
def test_with_keys_the_launchers_talk_through_curve_and_nothing_readable_crosses(
        run_keys, encrypted):
    from test_security import Relay

    keys_dir = run_keys[0] if encrypted else None
    port, run_id = free_port(), "run-id-that-must-not-leak-42"
    coordinator = Coordinator("127.0.0.1", port, peers=1, run_id=run_id, keys_dir=keys_dir)
    relay = Relay(port)
    peer = Peer("127.0.0.1", relay.port, 1, 5.0, run_id, keys_dir=keys_dir)
    try:
        next_event(peer.events, "connected")
        next_event(coordinator.events, "hello")
        assert peer.send_done(False, 9)
        _, node, payload = next_event(coordinator.events, "done")
        assert (node, payload["ok"], payload["exit_code"]) == (1, False, 9)
        coordinator.broadcast_stop(False, 9)
        _, _, payload = next_event(peer.events, "stop")
        assert payload == {"type": "stop", "ok": False, "exit_code": 9}
    finally:
        peer.close()
        coordinator.close()
        relay.close()
    with relay.lock:
        captured = bytes(relay.captured)
    assert (run_id.encode() in captured) is (not encrypted)
    assert (b'"exit_code"' in captured) is (not encrypted)


def test_with_keys_a_plain_connection_cannot_end_the_run(run_keys):
    """Today's attack: anyone who reaches the port sends a failing `done` in plain JSON."""
    port = free_port()
    coordinator = Coordinator("127.0.0.1", port, peers=1, run_id="run-a", keys_dir=run_keys[0])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as intruder:
            intruder.sendall(b'{"type": "hello", "node": 1, "run_id": "run-a"}\n'
                             b'{"type": "done", "node": 1, "ok": false, "exit_code": 1}\n')
            _, _, payload = next_event(coordinator.events, "refused")
        assert "plain" in payload["error"] and f"127.0.0.1:{port}" in payload["error"]
        assert coordinator.status == {}
        assert not coordinator.all_done(time.monotonic() + 60)
    finally:
        coordinator.close()


def test_with_keys_a_launcher_whose_key_is_not_allowed_is_refused_on_both_sides(run_keys):
    run_dir, foreign_dir = run_keys
    port = free_port()
    coordinator = Coordinator("127.0.0.1", port, peers=1, run_id="run-a", keys_dir=run_dir)
    stranger = Peer("127.0.0.1", port, 1, 20.0, "run-a", keys_dir=foreign_dir)
    try:
        _, _, payload = next_event(coordinator.events, "refused")
        assert "allow-list" in payload["error"]
        _, _, payload = next_event(stranger.events, "unreachable")
        assert "refused this launcher's CURVE key" in payload["error"]
        assert foreign_dir in payload["error"]
        assert coordinator.status == {}
        member = Peer("127.0.0.1", port, 1, 5.0, "run-a", keys_dir=run_dir)
        next_event(member.events, "connected")
        assert next_event(coordinator.events, "hello")[1] == 1
        member.close()
    finally:
        stranger.close()
        coordinator.close()


def test_refusals_are_reported_at_most_once_per_interval(run_keys):
    port = free_port()
    coordinator = Coordinator("127.0.0.1", port, peers=1, run_id="run-a", keys_dir=run_keys[0])
    try:
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as intruder:
                intruder.sendall(b"GET / HTTP/1.0\r\n\r\n")
        next_event(coordinator.events, "refused")
        time.sleep(1.0)
        kinds = []
        while not coordinator.events.empty():
            kinds.append(coordinator.events.get_nowait()[0])
        assert "refused" not in kinds
    finally:
        coordinator.close()


def test_a_coordinator_without_the_server_secret_says_what_is_missing(run_keys, tmp_path):
    import shutil

    partial = tmp_path / "keys"
    shutil.copytree(run_keys[0], partial)
    (partial / "server.key_secret").unlink()
    with pytest.raises(ControlError, match="server.key_secret"):
        Coordinator("127.0.0.1", free_port(), peers=1, run_id="r", keys_dir=str(partial))
