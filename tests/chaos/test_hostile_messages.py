"""Item 1 of issue 13: a tiny message never hangs or bloats a server process, and SIGTERM
stops it whatever it is doing."""

from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest
from chaos_util import ServerProcess
from test_ps_server import Raw

from distflow.distribute import protocol
from distflow.distribute.client import PSClient

pytestmark = pytest.mark.timeout(120)

SGD = {"name": "sgd", "hp": {"momentum": 0.0, "nesterov": False}, "learning_rate": 0.5}
RSS_BOUND = 16 * 1024**2  # what a hundred refused hostile messages may add, at most


def _declaring(shape, nframes, data_frames=()):
    header = {"v": protocol.PROTOCOL_VERSION, "op": "push", "req": 9, "sender": 3, "step": 0,
              "tensors": msgpack.packb([["w", "float32", shape, nframes]])}
    return [msgpack.packb(header, use_bin_type=True), *data_frames]


def test_a_message_declaring_a_huge_tensor_is_refused_at_once_and_costs_nothing(tmp_path):
    server = ServerProcess(tmp_path / "ps.log", "--mode", "sync")
    try:
        with PSClient([server.address], worker_id=0, timeout=10) as client:
            client.init({"w": np.zeros(4, np.float32)}, SGD)
            raw = Raw(server.address)
            frames = _declaring([2**39, 2**39], 2**57)
            assert sum(len(f) for f in frames) < 100  # the 89-byte message of the report
            reply = raw.ask(frames, timeout=10)
            assert reply is not None, "the server did not answer the 89-byte message"
            assert reply.header["reason"] == "tensor_too_large"
            rss = server.rss_bytes()
            for _ in range(100):  # the smaller variant cost 2 s and 64 MB each
                reply = raw.ask(_declaring([2**39, 16], 2**22, [b""]), timeout=10)
                assert reply is not None and reply.header["reason"] == "tensor_too_large"
            growth = server.rss_bytes() - rss
            assert growth < RSS_BOUND, f"the server grew by {growth} bytes"
            # A pull naming one parameter 1,000 times got a reply 1,000 parameters long.
            reply = raw.ask(protocol.encode({"op": "pull", "req": 5, "names": ["w"] * 1000}))
            assert reply.header["reason"] == "duplicate_name" and not reply.names
            raw.close()
            after = client.push_pull({"w": np.ones(4, np.float32)})["w"]
            np.testing.assert_array_equal(after, np.full(4, -0.5, np.float32))
            stats = client.stats()[0]
        assert stats["rejected"] == {"tensor_too_large": 101, "duplicate_name": 1}
        assert stats["live_workers"] == [0]  # sender 3 was never registered
        assert server.terminate() == 0
    finally:
        server.close()


def test_sigterm_stops_a_server_busy_with_a_hostile_message(tmp_path):
    server = ServerProcess(tmp_path / "ps.log", "--mode", "async")
    try:
        raw = Raw(server.address)
        raw.sock.send(_declaring([2**39, 2**39], 2**57))
        raw.sock.send(_declaring([2**39, 2**39], 2**57))
        time.sleep(1.0)  # let the server take the messages in before the signal
        assert server.terminate(timeout=10) == 0
        raw.close()
    finally:
        server.close()


def test_a_peer_that_never_reads_its_replies_holds_a_bounded_queue(tmp_path):
    import zmq

    server = ServerProcess(tmp_path / "ps.log", "--mode", "async",
                           "--max-queued-bytes", str(16 * 1024**2))
    try:
        with PSClient([server.address], worker_id=0, timeout=10) as client:
            client.init({"w": np.zeros(100_000, np.float32)}, SGD)  # 400 KB replies
            rss = server.rss_bytes()
            sink = zmq.Context.instance().socket(zmq.DEALER)
            sink.setsockopt(zmq.RCVHWM, 1)
            sink.setsockopt(zmq.RCVBUF, 4096)
            sink.setsockopt(zmq.LINGER, 0)
            sink.connect(server.address)
            pull = protocol.encode({"op": "pull", "req": 1})
            for _ in range(600):  # 240 MB of replies, never read
                sink.send_multipart(pull)
            deadline = time.monotonic() + 60
            while client.stats()[0]["requests"].get("pull", 0) < 600:
                assert time.monotonic() < deadline, "the server did not take the pulls in"
                time.sleep(0.1)
            growth = server.rss_bytes() - rss
            stats = client.stats()[0]
            sink.close()
            after = client.push_pull({"w": np.ones(100_000, np.float32)})["w"]
        assert growth < 64 * 1024**2, f"the server grew by {growth} bytes"
        assert stats["replies_dropped"] >= 500
        np.testing.assert_array_equal(after, np.full(100_000, -0.5, np.float32))
        assert "replies dropped" in server.log()
        assert server.log().count("replies dropped") < 10  # rate-limited
        assert server.terminate() == 0
    finally:
        server.close()
