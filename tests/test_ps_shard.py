"""The shard on its own: updates, copy-on-write and checkpoints, with no sockets.

`distflow.distribute.server.shard` takes plain arrays and gives plain arrays; these
tests drive it directly (no server, no ZeroMQ) and compare with the optimizer's
rule run here with NumPy.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from test_ps_server import ADAM, SGD, grads, params, run_rule_locally

from distflow.distribute import checkpoint
from distflow.distribute.server.errors import Reject
from distflow.distribute.server.shard import UPDATE_CHUNK, CheckpointPlan, Shard


def _shard(optimizer=ADAM, plan=None) -> Shard:
    shard = Shard(plan)
    shard.configure(optimizer)
    shard.add(params())
    return shard


def _pieces(g: dict) -> dict:
    return {name: [value.reshape(-1)] for name, value in g.items()}


def test_the_shard_imports_without_zeromq():
    code = ("import sys, distflow.distribute.server.shard as s; "
            "assert s.Shard and 'zmq' not in sys.modules, sorted(m for m in sys.modules "
            "if 'zmq' in m); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("optimizer", [SGD, ADAM], ids=["sgd", "adam"])
def test_apply_matches_the_rule_run_locally_and_bumps_the_version(optimizer):
    shard = _shard(optimizer)
    for step in range(3):
        shard.apply(_pieces(grads(step)))
    local, slots = run_rule_locally(optimizer, params(), [grads(step) for step in range(3)])
    assert shard.version == 3 and shard.steps == 3
    for name in params():
        np.testing.assert_array_equal(shard.params[name], local[name])
        for slot, array in slots[name].items():
            np.testing.assert_array_equal(shard.slots[name][slot], array)


def test_the_packed_store_and_chunked_pieces_update_like_one_call_per_tensor():
    rng = np.random.default_rng(3)
    values = {"small": rng.standard_normal(5).astype(np.float32),
              "big": rng.standard_normal(3 * UPDATE_CHUNK + 7).astype(np.float32)}
    g = {n: rng.standard_normal(v.shape).astype(np.float32) for n, v in values.items()}
    shard = Shard()
    shard.configure(ADAM)
    shard.add(values)
    assert shard.store.names == ["small"]
    big = g["big"]  # in three pieces (as frames arrive), each over one chunk
    shard.apply_mean({"small": [g["small"]], "big": [big[:UPDATE_CHUNK + 1],
                                                     big[UPDATE_CHUNK + 1:]]})
    local, _ = run_rule_locally(ADAM, values, [g])
    for name in values:
        np.testing.assert_array_equal(shard.params[name], local[name])
    assert np.shares_memory(shard.params["small"], shard.store.values)


def test_parts_of_one_step_share_its_step_number_and_bump_once():
    shard = _shard(SGD)
    first, second = (_pieces({n: grads(0)[n]}) for n in params())
    shard.apply(first, bump=False)
    shard.apply(second, bump=False)
    assert shard.version == 0
    shard.bump()
    local, _ = run_rule_locally(SGD, params(), [grads(0)])
    assert shard.version == 1
    for name in params():
        np.testing.assert_array_equal(shard.params[name], local[name])


def test_a_parameter_a_send_still_reads_moves_before_an_update():
    class Tracker:
        done = False

    shard = _shard(SGD)
    name = "dense/kernel"
    sent, before = shard.params[name], shard.params[name].copy()
    tracker = Tracker()
    shard.track([name], tracker)
    shard.apply(_pieces(grads(0)))
    assert shard.params[name] is not sent and sent.tobytes() == before.tobytes()
    assert shard.cow_copies == 1
    tracker.done = True  # finished sends: updates write in place again
    shard.track([name], tracker)
    current = shard.params[name]
    shard.apply(_pieces(grads(1)))
    assert shard.params[name] is current and shard.cow_copies == 1


def test_a_tensor_of_another_dtype_or_shape_or_name_is_refused():
    shard = _shard()
    for args, reason in ((("dense/bias", "float64", (4,)), "dtype_mismatch"),
                         (("dense/bias", "float32", (5,)), "shape_mismatch"),
                         (("nope", "float32", (4,)), "unknown_parameter")):
        with pytest.raises(Reject) as info:
            shard.check_spec(*args)
        assert info.value.reason == reason and repr(args[0]) in str(info.value)


def test_save_then_restore_gives_back_every_array_the_version_and_the_position(tmp_path):
    plan = CheckpointPlan(root=tmp_path / "ps-1", shard=1, mode="async", run_id="r1")
    shard = _shard(ADAM, plan)
    for step in range(2):
        shard.apply(_pieces(grads(step)))
    shard.position = {"epoch": 3, "step": 7}
    path = shard.save()
    assert path == checkpoint.checkpoint_path(tmp_path / "ps-1", 2)
    again = Shard(CheckpointPlan(root=tmp_path / "ps-1", shard=1))
    assert again.restore() == path
    assert (again.version, again.position, again.restored_position) == \
        (2, {"epoch": 3, "step": 7}, {"epoch": 3, "step": 7})
    assert again.optimizer == ADAM and again.record.last == {"path": str(path), "version": 2}
    for name, value in shard.params.items():
        assert again.params[name].tobytes() == value.tobytes()
        for slot, array in shard.slots[name].items():
            assert again.slots[name][slot].tobytes() == array.tobytes()
    again.apply(_pieces(grads(2)))  # and it trains on exactly as the original would
    shard.apply(_pieces(grads(2)))
    for name, value in shard.params.items():
        assert again.params[name].tobytes() == value.tobytes()


def test_restore_refuses_another_shards_or_only_corrupt_checkpoints(tmp_path):
    _shard(SGD, CheckpointPlan(root=tmp_path, shard=0)).save()
    with pytest.raises(checkpoint.CheckpointError, match="None of the 1 checkpoints"):
        Shard(CheckpointPlan(root=tmp_path, shard=1)).restore()
    empty = Shard(CheckpointPlan(root=tmp_path, shard=1, ignore_corrupt=True))
    assert empty.restore() is None and empty.params == {} and not empty.initialized
    assert Shard(CheckpointPlan(root=tmp_path / "none")).restore() is None


def test_a_learning_rate_change_is_checkpointed_at_the_next_update(tmp_path):
    shard = _shard(SGD, CheckpointPlan(root=tmp_path, every=100))
    shard.apply(_pieces(grads(0)))
    assert checkpoint.list_checkpoints(tmp_path) == []
    shard.set_learning_rate(0.25, sender=0)
    shard.apply(_pieces(grads(1)))
    assert checkpoint.list_checkpoints(tmp_path) == [checkpoint.checkpoint_path(tmp_path, 2)]
    assert shard.learning_rate(shard.version) == 0.25
    again = Shard(CheckpointPlan(root=tmp_path))
    again.restore()
    assert again.learning_rate(again.version) == 0.25


def test_a_failed_periodic_checkpoint_is_recorded_and_the_update_still_counts(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    reports = []
    shard = Shard(CheckpointPlan(root=blocker / "ps-0", every=1),
                  report_error=lambda *args: reports.append(args))
    shard.configure(SGD)
    shard.add(params())
    shard.apply(_pieces(grads(0)))
    assert shard.version == 1 and shard.record.failures == 1 and len(reports) == 1
    assert shard.record.last_error["version"] == 1 and shard.record.last is None
