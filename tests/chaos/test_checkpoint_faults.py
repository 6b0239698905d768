"""Items 4 and 5 of issue 13: a checkpoint that cannot be written never corrupts
training, and a damaged checkpoint is never loaded.

A full disk is a real tmpfs of 64 KiB mounted for the test (root only: a
read-only directory does not stop root, so it would not be the same test)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess

import numpy as np
import pytest

from distflow.distribute import checkpoint
from distflow.distribute.client import PSClient, PSError

pytestmark = pytest.mark.timeout(120)

SGD = {"name": "sgd", "hp": {"momentum": 0.0, "nesterov": False}, "learning_rate": 0.5}
N = 6000  # 24 KB of float32: two checkpoints fit in 64 KiB, a third does not


@contextlib.contextmanager
def small_disk(path, size="64k"):
    """A tmpfs of `size` mounted at `path` for the duration."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (a real full disk) needs root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _w(directory, version):
    tensors, _ = checkpoint.load(checkpoint.checkpoint_path(directory, version))
    return tensors["param/w"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_full_disk_fails_checkpoints_but_never_a_step(servers, tmp_path, mode, caplog):
    caplog.set_level(logging.ERROR, logger="distflow.ps")
    with small_disk(tmp_path / "disk") as disk:
        server = servers(mode=mode, checkpoint_dir=str(disk), checkpoint_every=1,
                         keep_checkpoints=3)
        shard = disk / "ps-0"
        ones = {"w": np.ones(N, np.float32)}
        with PSClient([server.address], worker_id=0, timeout=10) as client:
            client.init({"w": np.zeros(N, np.float32)}, SGD)
            for step in range(1, 5):  # steps 3 and 4 find the disk full
                w = client.push_pull(ones)["w"]
                np.testing.assert_array_equal(w, np.full(N, -0.5 * step, np.float32))
            stats = client.stats()[0]
            assert server.version == 4  # each step applied exactly once
            assert stats["checkpoint_failures"] == 2
            assert stats["last_checkpoint"]["version"] == 2
            assert "No space left" in stats["last_checkpoint_error"]["error"]
            np.testing.assert_array_equal(_w(shard, 2), np.full(N, -1.0, np.float32))
            assert sorted(p.name for p in shard.iterdir()) == \
                [checkpoint.checkpoint_path(shard, v).name for v in (1, 2)]  # no temp files
            with pytest.raises(PSError) as info:
                client.save()
            assert info.value.reason == "checkpoint_failed"
            subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)
            client.push_pull(ones)  # the next interval: written
            stats = client.stats()[0]
        assert stats["last_checkpoint"]["version"] == 5
        np.testing.assert_array_equal(_w(shard, 5), np.full(N, -2.5, np.float32))
        failures = [r.getMessage() for r in caplog.records if "Checkpoint" in r.getMessage()]
        assert failures and "version 3" in failures[0] and "No space left" in failures[0]
        assert len(failures) <= 2  # rate-limited (the save request's failure is its reply)
        server.stop()


LAUNCHED = """
import numpy as np
import distflow as tf
from distflow.keras import layers

strategy = tf.distribute.get_strategy()
with strategy.scope():
    model = tf.keras.Sequential([layers.Dense(64, input_shape=(64,)), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
x = np.ones((256, 64), "float32")
model.fit(x, x[:, :1], epochs=1, batch_size=32, verbose=0)
"""


def test_the_launchers_summary_says_checkpoints_are_failing(tmp_path):
    from test_launch_e2e import run_launcher

    with small_disk(tmp_path / "disk", size="16k") as disk:
        result = run_launcher(tmp_path, "--workers", "2", "--checkpoint-dir", str(disk),
                              "--checkpoint-every", "1", script=LAUNCHED, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]  # training itself never fails for it
    assert "[launch] ps 0: checkpoints are failing; its last report:" in output, output[-3000:]
