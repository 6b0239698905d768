"""Push plans: split variables, empty shards and pipelined parts are shapes of one plan.

The pure-data tests build plans from a `Variables` placement and decode the frames
they produce; the last ones push through real servers over ZeroMQ."""

from __future__ import annotations

import numpy as np
import pytest
from test_ps_client import assert_rule_applied, random_steps
from test_ps_server import ADAM, SGD

from distflow.distribute import protocol
from distflow.distribute.client import PSClient
from distflow.distribute.pushplan import PushPlan, Variables

pytestmark = pytest.mark.timeout(60)

HEADER = {"op": "push", "sender": 0, "req": 9}


def _variables(arrays: dict, num_shards: int, **placement) -> Variables:
    variables = Variables(num_shards, **placement)
    assert variables.register(arrays) and not variables.register(arrays)  # once
    return variables


def _sent(plan: PushPlan, grads: dict, variables: Variables) -> dict[int, list]:
    """Per shard, its messages as decoded by a server."""
    headers = [{**HEADER, "step": shard} for shard in range(len(plan.shards))]
    messages = plan.messages(headers, plan.values(grads, variables))
    return {s: [protocol.decode([bytes(memoryview(f)) for f in frames]) for frames in msgs]
            for s, msgs in messages.items()}


def _rows(n: int, cols: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, cols)).astype(np.float32)


def test_a_split_variable_goes_as_row_ranges_to_distinct_shards():
    arrays = {"emb": _rows(10), "bias": np.arange(3, dtype=np.float32)}
    variables = _variables(arrays, 2, split_bytes=64)  # emb (160 B) is cut, bias is not
    plan = PushPlan.build(variables, ["emb", "bias"], ["sync", "sync"], 1000)
    sent = _sent(plan, arrays, variables)
    pieces = variables.pieces_of("emb")
    assert [(p.start, p.stop) for p in pieces] == [(0, 5), (5, 10)]
    assert sorted(p.shard for p in pieces) == [0, 1]
    for piece in pieces:
        (msg,) = sent[piece.shard]
        assert piece.key == f"emb[{piece.start}:{piece.stop}]" and piece.key in msg.names
        np.testing.assert_array_equal(msg.tensor(piece.key), arrays["emb"][piece.start:piece.stop])
    assert sum("bias" in m.names for (m,) in sent.values()) == 1
    back = variables.collect([m for msgs in sent.values() for m in msgs], ["emb", "bias"])
    np.testing.assert_array_equal(back["emb"], arrays["emb"])  # the replies' way in
    np.testing.assert_array_equal(back["bias"], arrays["bias"])


def test_a_shard_holding_none_of_the_gradients_gets_an_empty_push():
    arrays = {"a": np.ones(3, np.float32), "b": np.zeros(2, np.float32)}
    variables = _variables(arrays, 3, split=False)
    plan = PushPlan.build(variables, ["a", "b"], ["async"] * 3, 1)
    sent = _sent(plan, arrays, variables)
    empty = [s for s, push in enumerate(plan.shards) if not push.encoders]
    assert len(empty) == 1
    (msg,) = sent[empty[0]]
    assert msg.names == [] and msg.header["step"] == empty[0] and "part" not in msg.header
    # A plan for a gradient subset leaves the other variable's shard empty too.
    subset = PushPlan.build(variables, ["a"], ["async"] * 3, None)
    assert sum(not push.encoders for push in subset.shards) == 2


def test_pushes_over_pipeline_bytes_to_an_async_shard_go_in_parts():
    arrays = {f"w{i}": np.full(300, i, np.float32) for i in range(5)}  # 1,200 B each
    variables = _variables(arrays, 1)
    parted = PushPlan.build(variables, list(arrays), ["async"], 2000)
    sent = _sent(parted, arrays, variables)[0]
    assert [m.header["part"] for m in sent] == [[0, 3], [1, 3], [2, 3]]
    assert [m.names for m in sent] == [["w0", "w1"], ["w2", "w3"], ["w4"]]  # >= 2,000 B
    assert {n: m.tensor(n)[0] for m in sent for n in m.names} == {f"w{i}": i for i in range(5)}
    for modes, limit in ((["sync"], 2000), (["async"], None), (["async"], 6000), ([None], 1)):
        (msg,) = _sent(PushPlan.build(variables, list(arrays), modes, limit), arrays,
                       variables)[0]
        assert msg.names == list(arrays) and "part" not in msg.header, (modes, limit)
    one = PushPlan.build(variables, ["w0"], ["async"], 1000)  # one tensor over the limit
    (msg,) = _sent(one, {"w0": arrays["w0"]}, variables)[0]
    assert msg.header["part"] == [0, 1] and msg.names == ["w0"]


def test_gradients_of_another_shape_or_dtype_or_unknown_names_are_refused():
    variables = _variables({"a": np.ones(3, np.float32)}, 1)
    plan = PushPlan.build(variables, ["a"], ["async"], None)
    with pytest.raises(ValueError, match=r"'a' must have shape \(3,\) and dtype float32. "
                                         r"Received: shape=\(2,\), dtype=float32"):
        plan.values({"a": np.ones(2, np.float32)}, variables)
    with pytest.raises(ValueError, match="Received: shape=\\(3,\\), dtype=float64"):
        plan.values({"a": [1.0, 2.0, 3.0]}, variables)
    assert plan.values({"a": np.array([1, 2, 3], np.float32)}, variables)[0].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="Unknown variable 'b': call `init` with it first"):
        PushPlan.build(variables, ["a", "b"], ["async"], None)


# ---------------------------------------------------------------- through real servers

def test_a_split_variable_pushed_in_parts_equals_the_rule_applied_locally(servers):
    ps = [servers(mode="async") for _ in range(2)]
    # emb (2,560 B) is cut in two row ranges; each shard gets one and a bias: two parts.
    start = {"emb": _rows(40, 16), "b0": np.zeros(16, np.float32), "b1": np.ones(16, np.float32)}
    steps = random_steps(start, 3)
    with PSClient([p.address for p in ps], worker_id=0, timeout=10, split_bytes=1000,
                  pipeline_bytes=400) as client:
        client.init(start, ADAM)
        plan = client.plan(start)
        assert client.plan(dict(start)) is plan  # built once, at registration
        assert [p.key for p in client.variables.pieces_of("emb")] == ["emb[0:20]", "emb[20:40]"]
        assert all(push.pipelined and len(push.encoders) == 2 for push in plan.shards)
        for g in steps:
            result = client.push_pull(g)
        parts = [h.get("part") for h in client.last_replies]
    assert_rule_applied(result, ADAM, start, steps)
    assert parts == [[1, 2], [1, 2]]  # each shard's last reply answers its second part
    assert [p.stats_dict()["version"] for p in ps] == [3, 3]


def test_a_plan_follows_the_shards_mode(servers):
    server = servers(mode="sync")
    start = {f"w{i}": np.zeros(300, np.float32) for i in range(3)}
    with PSClient([server.address], worker_id=0, timeout=10, pipeline_bytes=1000) as client:
        client.init(start, SGD)
        assert client.status.modes == ["sync"] and not client.plan(start).shards[0].pipelined
        client.push({n: np.ones(300, np.float32) for n in start})
    assert server.version == 1 and server.stats_dict()["rejected"] == {}
