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
