"""Checkpoints: the file format, atomic writes, corruption detection with fallback,
and a parameter-server process killed and restarted from its checkpoint."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_ps_client import _free_port
from test_ps_server import ADAM, grads, make_server, params

from distflow.distribute import checkpoint
from distflow.distribute.checkpoint import CheckpointError
from distflow.distribute.client import PSClient
from distflow.optimizers import rules

pytestmark = pytest.mark.timeout(60)

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
          "uint16", "uint32", "uint64", "bool"]


def _tensors(seed=0):
    rng = np.random.default_rng(seed)
    out = {f"t/{d}": (rng.standard_normal((3, 4)) * 50).astype(d) for d in DTYPES}
    out["empty"] = np.zeros((0, 5), np.float32)
    out["scalar"] = np.array(2.5, np.float64)
    return out


def test_save_and_load_round_trip_every_dtype_and_the_metadata(tmp_path):
    meta = {"version": 7, "position": {"epoch": 2, "step": 31}, "optimizer": {"name": "adam"}}
    path = checkpoint.save(tmp_path, 7, _tensors(), meta)
    assert path == checkpoint.checkpoint_path(tmp_path, 7) and path.exists()
    tensors, loaded_meta = checkpoint.load(path)
    assert loaded_meta == meta
    for name, array in _tensors().items():
        assert tensors[name].dtype == array.dtype and tensors[name].shape == array.shape
        assert tensors[name].tobytes() == array.tobytes()
        assert tensors[name].flags.writeable
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_only_the_newest_checkpoints_are_kept_newest_first(tmp_path):
    for version in (1, 5, 12, 30, 31):
        checkpoint.save(tmp_path, version, {"w": np.full(3, version, np.float32)}, {}, keep=3)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "ckpt-000000000031.safetensors", "ckpt-000000000030.safetensors",
        "ckpt-000000000012.safetensors"]
    path, tensors, _ = checkpoint.load_latest(tmp_path)
    assert path.name.endswith("31.safetensors") and tensors["w"][0] == 31


def test_an_interrupted_write_leaves_the_previous_file_intact(tmp_path):
    checkpoint.save(tmp_path, 1, {"w": np.ones(4, np.float32)}, {"version": 1})

    class Boom:
        """An 'array' whose conversion fails halfway through writing."""

        def __array__(self, *args, **kwargs):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        checkpoint.save(tmp_path, 2, {"a": np.zeros(3), "b": Boom()}, {"version": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000000000001.safetensors"]
    path, tensors, meta = checkpoint.load_latest(tmp_path)
    assert meta == {"version": 1}


@pytest.mark.parametrize("damage", ["truncate", "flip_data_byte", "garbage_header", "empty"])
def test_damaged_files_are_detected(tmp_path, damage):
    path = checkpoint.save(tmp_path, 3, {"w": np.arange(1000, dtype=np.float32)}, {"v": 3})
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[:len(raw) - 100]
    elif damage == "flip_data_byte":
        raw[-10] ^= 0xFF
    elif damage == "garbage_header":
        raw[12:20] = b"\xff" * 8
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=str(path.name)):
        checkpoint.load(path)


def test_a_foreign_safetensors_file_is_not_taken_for_a_checkpoint(tmp_path):
    from distflow import serialization

    path = checkpoint.checkpoint_path(tmp_path, 9)
    serialization.save_file({"w": np.ones(2, np.float32)}, path, {"format": "pt"})
    with pytest.raises(CheckpointError, match="not a distflow parameter-server checkpoint"):
        checkpoint.load(path)


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_with_a_warning(
        tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="distflow.checkpoint")
    checkpoint.save(tmp_path, 4, {"w": np.full(100, 4.0, np.float32)}, {"version": 4})
    newest = checkpoint.save(tmp_path, 5, {"w": np.full(100, 5.0, np.float32)}, {"version": 5})
    newest.write_bytes(newest.read_bytes()[:-37])
    path, tensors, meta = checkpoint.load_latest(tmp_path)
    assert meta == {"version": 4} and tensors["w"][0] == 4.0
    assert any(newest.name in r.getMessage() and "previous" in r.getMessage()
               for r in caplog.records)


def test_no_valid_checkpoint_means_a_fresh_start(tmp_path):
    assert checkpoint.load_latest(tmp_path / "missing") is None
    (tmp_path / "ckpt-000000000001.safetensors").write_bytes(b"nope")
    assert checkpoint.load_latest(tmp_path) is None


def _ps_checkpoint(directory, version=3, **meta_changes):
    """A parameter server's checkpoint as `ParameterServer.save_checkpoint` writes it."""
    tensors = {"param/dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
               "param/dense/bias": np.ones(4, np.float32),
               "slot/dense/kernel/m": np.full((3, 4), 0.25, np.float32),
               "slot/dense/kernel/v": np.full((3, 4), 0.5, np.float32),
               "slot/dense/bias/m": np.zeros(4, np.float32),
               "slot/dense/bias/v": np.zeros(4, np.float32)}
    meta = {"version": version, "position": {"epoch": 2, "step": 31}, "shard": 0,
            "mode": "sync", "optimizer": ADAM, "params": ["dense/kernel", "dense/bias"],
            "time": 1.5, "run_id": "run-a", **meta_changes}
    meta = {k: v for k, v in meta.items() if v is not None or k == "run_id"}
    return checkpoint.save(directory, version, tensors, meta, keep=10), tensors, meta


@pytest.mark.slow  # about 3,400 loads: 10 s
def test_no_single_byte_change_of_a_checkpoint_loads_another_state(tmp_path):
    path, tensors, meta = _ps_checkpoint(tmp_path)
    good = path.read_bytes()
    header_end = 8 + int.from_bytes(good[:8], "little")
    offsets = list(range(header_end)) + list(range(header_end, len(good), 7))
    outcomes = {"refused": 0, "same": 0}
    for offset in offsets:
        for flip in (0x01, 0x20, 0xFF):
            damaged = bytearray(good)
            damaged[offset] ^= flip
            path.write_bytes(bytes(damaged))
            try:
                loaded, loaded_meta = checkpoint.load(path, checkpoint.check_ps_meta)
            except CheckpointError:
                outcomes["refused"] += 1
                continue
            assert loaded_meta == meta, f"byte {offset} ^ {flip:#x} changed the metadata"
            assert {k: v.tobytes() for k, v in loaded.items()} == \
                {k: v.tobytes() for k, v in tensors.items()}, f"byte {offset} changed a tensor"
            outcomes["same"] += 1  # e.g. a name in serialization's redundant CRC map
    assert outcomes["refused"] > 0.9 * 3 * len(offsets), outcomes


@pytest.mark.parametrize("change,field", [
    ({"optimizer": None}, "optimizer"), ({"optimizer": {"name": 3}}, "optimizer"),
    ({"optimizer": {**ADAM, "learning_rate": -1}}, "optimizer.learning_rate"),
    ({"version": -1}, "version"), ({"version": True}, "version"), ({"shard": "0"}, "shard"),
    ({"mode": "both"}, "mode"), ({"position": [1]}, "position"), ({"params": ["x"]}, "params"),
    ({"params": ["dense/bias"]}, "tensors"), ({"params": None}, "params"),
    ({"run_id": 5}, "run_id"),
])
def test_metadata_outside_the_schema_is_refused_naming_the_field(tmp_path, change, field):
    path, _, _ = _ps_checkpoint(tmp_path, **change)
    checkpoint.load(path)  # the checksum is right: only the schema is wrong
    with pytest.raises(CheckpointError, match=f"`{field}` is"):
        checkpoint.load(path, checkpoint.check_ps_meta)


def test_a_server_falls_back_to_the_newest_valid_checkpoint(tmp_path, caplog):
    root = tmp_path / "ps-0"
    _ps_checkpoint(root, version=3)
    damaged, _, _ = _ps_checkpoint(root, version=4, optimizer={"name": "adam", "hp": []})
    foreign, _, _ = _ps_checkpoint(root, version=5, shard=1)
    newest, _, _ = _ps_checkpoint(root, version=6)
    raw = bytearray(newest.read_bytes())
    raw[raw.index(b'step\\": 31') + 9] ^= 0x01  # position step 31 -> 30: still valid JSON
    newest.write_bytes(bytes(raw))
    caplog.set_level(logging.WARNING)
    server = make_server(mode="sync", checkpoint_dir=str(tmp_path))
    try:
        assert server.version == 3 and server.position == {"epoch": 2, "step": 31}
        np.testing.assert_array_equal(server.slots["dense/kernel"]["m"],
                                      np.full((3, 4), 0.25, np.float32))
    finally:
        server.stop()
    skipped = " ".join(r.getMessage() for r in caplog.records if "Skipping" in r.getMessage())
    for path in (newest, foreign, damaged):
        assert path.name in skipped
    assert "checksum mismatch" in skipped and "shard 1" in skipped


def test_a_server_refuses_to_start_empty_over_checkpoints_that_are_all_invalid(tmp_path):
    from distflow.distribute.server import ParameterServer

    root = tmp_path / "ps-0"
    path, _, _ = _ps_checkpoint(root)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(CheckpointError, match="--ignore-corrupt-checkpoints"):
        ParameterServer(mode="sync", checkpoint_dir=str(tmp_path))
    server = make_server(mode="sync", checkpoint_dir=str(tmp_path),
                         ignore_corrupt_checkpoints=True)
    try:
        assert not server.initialized and server.version == 0
    finally:
        server.stop()
    assert path.exists()  # nothing was written over it


def test_the_server_process_refuses_to_start_over_invalid_checkpoints_unless_told(tmp_path):
    path, _, _ = _ps_checkpoint(tmp_path / "ps-0")
    path.write_bytes(b"\x00" * 100)
    command = [sys.executable, "-m", "distflow.distribute.server", "--address",
               "tcp://127.0.0.1:0", "--checkpoint-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--ignore-corrupt-checkpoints" in done.stderr
    started = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "DISTFLOW_IGNORE_CORRUPT_CHECKPOINTS": "1"})
    try:
        line = ""
        while "listening on" not in line:
            line = started.stderr.readline()
            assert line, "the server exited instead of starting empty"
    finally:
        started.terminate()
        started.communicate(timeout=20)
    assert started.returncode == 0


def test_checkpoints_carry_the_run_id(tmp_path):
    server = make_server(mode="async", checkpoint_dir=str(tmp_path), run_id="run-7")
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)
        client.save()
    server.stop()
    _, _, meta = checkpoint.load_latest(tmp_path / "ps-0", checkpoint.check_ps_meta)
    assert meta["run_id"] == "run-7"


def test_an_in_process_server_restores_everything_from_its_checkpoint(tmp_path):
    server = make_server(mode="async", checkpoint_dir=str(tmp_path), checkpoint_every=2)
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)
        for step in range(3):
            client.push(grads(step), position={"epoch": 1, "step": step})
    server.stop()  # final checkpoint at version 3
    expected = {"params": {n: p.tobytes() for n, p in server.params.items()},
                "slots": {n: {s: a.tobytes() for s, a in sl.items()}
                          for n, sl in server.slots.items()}}
    again = make_server(mode="async", checkpoint_dir=str(tmp_path))
    try:
        assert again.version == 3 and again.position == {"epoch": 1, "step": 2}
        assert {n: p.tobytes() for n, p in again.params.items()} == expected["params"]
        assert {n: {s: a.tobytes() for s, a in sl.items()}
                for n, sl in again.slots.items()} == expected["slots"]
        assert again.optimizer == ADAM
        assert again.stats_dict()["last_checkpoint"]["version"] == 3
    finally:
        again.stop()


# ---------------------------------------------------------------- server process

def _server_env(port: int, ckpt: str) -> dict[str, str]:
    return {**os.environ, "DISTFLOW_ROLE": "ps", "DISTFLOW_RANK": "0",
            "DISTFLOW_NUM_PS": "1", "DISTFLOW_NUM_WORKERS": "1",
            "DISTFLOW_PS_ADDRS": f"tcp://127.0.0.1:{port}", "DISTFLOW_STRATEGY": "async",
            "DISTFLOW_CHECKPOINT_DIR": ckpt, "DISTFLOW_CHECKPOINT_EVERY": "2",
            "DISTFLOW_HEARTBEAT_TIMEOUT": "30", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _spawn(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "distflow.distribute.server"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
        raise AssertionError(f"server {proc.pid} ignored {sig!r} for 20 s:\n{out}") from None
    return out


def _adam_reference(steps: int) -> dict[str, np.ndarray]:
    rule = rules.get_rule("adam")
    out = {}
    for name, value in params().items():
        local, state = value.copy(), rule.init(value, ADAM["hp"])
        for step in range(steps):
            rule.update(local, grads(step)[name], state, step + 1,
                        {**ADAM["hp"], "learning_rate": ADAM["learning_rate"]})
        out[name] = local
    return out


def test_a_killed_server_process_resumes_from_its_checkpoint(tmp_path):
    port, ckpt = _free_port(), str(tmp_path / "ckpt")
    env = _server_env(port, ckpt)
    proc = _spawn(env)
    try:
        client = PSClient([f"tcp://127.0.0.1:{port}"], worker_id=0, timeout=20, retries=8,
                          backoff=0.1)
        client.init(params(), ADAM)
        for step in range(5):  # checkpoints at versions 2 and 4
            client.push(grads(step), position={"epoch": 0, "step": step})
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # Damage the newest file: the restart must fall back to version 2 and say so.
        newest = checkpoint.list_checkpoints(os.path.join(ckpt, "ps-0"))[0]
        assert newest.name == "ckpt-000000000004.safetensors"
        newest.write_bytes(newest.read_bytes()[:-5])
        proc = _spawn(env)
        hello = client.hello()[0]  # the client reconnects on its own
        assert hello["version"] == 2 and hello["position"] == {"epoch": 0, "step": 1}
        for step in range(2, 5):  # redo the lost steps: the result equals an unbroken run
            client.push(grads(step))
        final = client.pull()
        client.close()
        for name, want in _adam_reference(5).items():
            np.testing.assert_array_equal(final[name], want)
    finally:
        out = _stop(proc)
    assert "Skipping checkpoint" in out and "ckpt-000000000004" in out
    assert "Resumed from checkpoint" in out and "version 2" in out
    assert proc.returncode == 0


def test_sigterm_writes_a_final_checkpoint_and_exits_0(tmp_path):
    port, ckpt = _free_port(), str(tmp_path / "ckpt")
    proc = _spawn(_server_env(port, ckpt))
    try:
        with PSClient([f"tcp://127.0.0.1:{port}"], worker_id=0, timeout=20) as client:
            client.init(params(), ADAM)
            client.push(grads(0), position={"epoch": 3, "step": 0})
    finally:
        start = time.monotonic()
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert time.monotonic() - start < 10
    path, tensors, meta = checkpoint.load_latest(os.path.join(ckpt, "ps-0"))
    assert meta["version"] == 1 and meta["position"] == {"epoch": 3, "step": 0}
    np.testing.assert_array_equal(tensors["param/dense/bias"], _adam_reference(1)["dense/bias"])
