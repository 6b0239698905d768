"""Item 7 of issue 13: a server paused (SIGSTOP, a VM stall) for longer than the heartbeat
timeout does not declare its workers dead on waking: their silence while it was not
listening does not count."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from chaos_util import ServerProcess

from distflow.distribute.client import PSClient

pytestmark = pytest.mark.timeout(120)

SGD = {"name": "sgd", "hp": {"momentum": 0.0, "nesterov": False}, "learning_rate": 0.5}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_paused_server_keeps_its_workers_alive(tmp_path, mode):
    server = ServerProcess(tmp_path / "ps.log", "--mode", mode, "--heartbeat-timeout", "1.0")
    try:
        with PSClient([server.address], worker_id=0, timeout=20) as client:
            client.init({"w": np.zeros(4, np.float32)}, SGD)
            client.start_heartbeats(0.2)
            client.push_pull({"w": np.ones(4, np.float32)})
            for _ in range(2):
                server.proc.send_signal(signal.SIGSTOP)
                time.sleep(3.0)  # three heartbeat timeouts
                server.proc.send_signal(signal.SIGCONT)
                w = client.push_pull({"w": np.ones(4, np.float32)})["w"]
                stats = client.stats()[0]
                assert stats["live_workers"] == [0] and stats["dead_workers"] == []
        assert "declared dead" not in server.log()
        np.testing.assert_array_equal(w, np.full(4, -1.5, np.float32))
        assert server.terminate() == 0
    finally:
        server.close()
