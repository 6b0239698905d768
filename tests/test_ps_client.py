"""PSClient: timeouts that name the server, retries that never apply a gradient twice,
reconnection after a server restart, and client-side argument checks."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from test_ps_server import ADAM, SGD, Raw, grads, params, run_rule_locally

from distflow.distribute import protocol
from distflow.distribute.client import PSClient, PSError, PSTimeoutError
from distflow.distribute.server import ParameterServer, ServerConfig

pytestmark = pytest.mark.timeout(60)


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
    client = PSClient([live.address, dead], worker_id=0, timeout=2.0, retries=0)
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


# ---------------------------------------------------------------- pipelined pushes

def _layers(count=5, size=300):
    rng = np.random.default_rng(7)
    return {f"layer{i}/w": rng.standard_normal(size).astype(np.float32) for i in range(count)}


def random_steps(start: dict, count: int) -> list[dict]:
    """`count` steps of seeded random gradients for the variables `start`."""
    return [{k: np.random.default_rng(s).standard_normal(v.shape).astype(np.float32)
             for k, v in start.items()} for s in range(count)]


def assert_rule_applied(result: dict, optimizer: dict, start: dict, steps: list[dict]) -> None:
    """`result` is what `optimizer`'s rule reaches locally from `start` through `steps`."""
    expected, _ = run_rule_locally(optimizer, start, steps)
    for name in start:
        np.testing.assert_allclose(result[name], expected[name], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("num_servers", [1, 2])
def test_a_pipelined_push_is_one_step_and_equals_the_plain_one(servers, num_servers):
    start = _layers()
    steps = random_steps(start, 4)
    ps = [servers(mode="async") for _ in range(num_servers)]
    # 1.2 KB per tensor, parts of >= 1 KB: one part per tensor (5, or 2-3 per server).
    with PSClient([p.address for p in ps], worker_id=0, timeout=10, split=False,
                  pipeline_bytes=1000) as client:
        client.init(start, ADAM)
        for g in steps:
            result = client.push_pull(g)
        parts = [h.get("part") for h in client.last_replies]
    assert_rule_applied(result, ADAM, start, steps)
    assert all(p is not None and p[1] >= 2 for p in parts)  # it did pipeline
    for server in ps:
        stats = server.stats_dict()
        assert stats["version"] == 4 and stats["pushes"] == 4
        assert sum(stats["staleness"].values()) == 4  # one entry per step, not per part


def test_variables_without_a_gradient_come_back_with_the_last_part(servers):
    server = servers(mode="async")
    start = _layers(count=4)
    with PSClient([server.address], worker_id=0, timeout=10, pipeline_bytes=1000) as client:
        client.init(start, SGD)
        g = {k: np.ones_like(v) for k, v in list(start.items())[:3]}
        out = {k: np.full_like(v, 99.0) for k, v in start.items()}
        client.push_pull(g, out=out)
    for name, value in start.items():
        expected = value - SGD["learning_rate"] * np.float32(1) if name in g else value
        np.testing.assert_allclose(out[name], expected, rtol=1e-6)


def test_a_retried_part_is_answered_again_not_applied_twice(servers):
    server = servers(mode="async")
    raw = Raw(server.address)
    w = {"a": np.zeros(3, np.float32), "b": np.zeros(2, np.float32)}
    try:
        init = protocol.encode({"op": "init", "sender": 0, "req": 1, "optimizer": SGD},
                               list(w.items()))
        assert raw.ask(init).op == "ok"
        parts = [protocol.encode({"op": "push_pull", "sender": 0, "req": 2, "step": 0,
                                  "part": [i, 2]}, [(name, np.ones_like(w[name]))])
                 for i, name in enumerate(w)]
        first = [raw.ask(p) for p in parts]
        again = raw.ask(parts[0])
    finally:
        raw.close()
    assert [m.header["part"] for m in first] == [[0, 2], [1, 2]]
    assert first[0].names == ["a"] and first[1].names == ["b"]
    assert again.header.get("duplicate") is True and again.names == ["a"]
    np.testing.assert_allclose(again.tensor("a"), -SGD["learning_rate"] * np.ones(3))
    assert server.version == 1 and server.stats_dict()["duplicates"] == 1


def test_a_refused_part_leaves_the_parts_before_it_applied_and_counts_one_step(servers):
    server = servers(mode="async")
    start = _layers(count=3)
    with PSClient([server.address], worker_id=0, timeout=10, pipeline_bytes=1000) as client:
        client.init(start, SGD)
        g = {k: np.ones_like(v) for k, v in start.items()}
        g["layer1/w"][5] = np.nan  # the second of three parts
        with pytest.raises(PSError) as info:
            client.push_pull(g)
        assert info.value.reason == "non_finite"
        values = client.pull()
        assert server.version == 0  # the step is not over: a part is missing
        client.push({"layer0/w": np.zeros(300, np.float32)})
    np.testing.assert_allclose(values["layer0/w"], start["layer0/w"] - SGD["learning_rate"])
    np.testing.assert_array_equal(values["layer1/w"], start["layer1/w"])
    np.testing.assert_allclose(values["layer2/w"], start["layer2/w"] - SGD["learning_rate"])
    # The unfinished step counted as one update when the next request came.
    assert server.version == 2


@pytest.mark.parametrize("part,sender", [([0, 2], 0), ([2, 2], 0), ([0, "2"], 0), (3, 0),
                                         ([0, 2], None)])
def test_bad_parts_and_parts_to_a_sync_server_are_refused(servers, part, sender):
    for mode in ("async", "sync"):
        if mode == "async" and part == [0, 2] and sender == 0:
            continue  # valid
        server = servers(mode=mode)
        raw = Raw(server.address)
        try:
            raw.ask(protocol.encode({"op": "init", "sender": 0, "req": 1, "optimizer": SGD},
                                    [("a", np.zeros(2, np.float32))]))
            reply = raw.ask(protocol.encode({"op": "push", "sender": sender, "req": 2,
                                             "step": 0, "part": part},
                                            [("a", np.ones(2, np.float32))]))
        finally:
            raw.close()
        assert reply.op == "error" and reply.header["reason"] == "bad_field", (mode, part)
        assert server.version == 0


def test_a_client_sends_one_message_to_a_sync_server(servers):
    server = servers(mode="sync")
    with PSClient([server.address], worker_id=0, timeout=10, pipeline_bytes=1000) as client:
        client.init(_layers(count=3), SGD)
        client.push_pull({k: np.ones_like(v) for k, v in _layers(count=3).items()})
        assert "part" not in client.last_replies[0]
    assert server.version == 1 and server.stats_dict()["rejected"] == {}


def _reference_messages(client: PSClient, op: str, g: dict, req: int, **fields) -> dict:
    """One message per shard, encoded by `protocol.encode` from the placement alone."""
    per_shard = client.variables.by_shard(g)
    return {s: [protocol.encode({"op": op, "sender": client.worker_id, "req": req, **fields,
                                 "step": client.versions[s]}, per_shard[s])]
            for s in range(client.num_shards)}


def _plan_messages(client: PSClient, op: str, g: dict, req: int, **fields) -> dict:
    plan = client.plan(g)
    headers = [{"op": op, "sender": client.worker_id, "req": req, **fields, "step": step}
               for step in client.status.steps(None)]
    return plan.messages(headers, plan.values(g, client.variables))


def _wire(messages: dict) -> dict:
    return {s: [[bytes(memoryview(f)) for f in frames] for frames in msgs]
            for s, msgs in messages.items()}


def test_a_step_sends_the_frames_the_placement_and_protocol_encode_give(servers):
    ps = [servers(mode="async") for _ in range(3)]  # 2 variables: one shard gets none
    start = _layers(count=2)
    with PSClient([p.address for p in ps], worker_id=0, timeout=10, split=False) as client:
        assert client.status.steps(5) == [5, 5, 5]  # no shard has answered yet
        client.init(start, ADAM)
        assert client.status.steps(5) == client.versions == [0, 0, 0]
        for seed in range(3):
            g = {k: np.random.default_rng(seed).standard_normal(v.shape).astype(np.float32)
                 for k, v in start.items()}
            plan = _plan_messages(client, "push_pull", g, 77)
            assert any(m == [protocol.encode({"op": "push_pull", "sender": 0, "req": 77,
                                              "step": client.versions[s]})]
                       for s, m in plan.items())  # an empty push
            assert _wire(plan) == _wire(_reference_messages(client, "push_pull", g, 77))
            at = {"epoch": seed}  # the position `fit` sends with every step
            assert _wire(_plan_messages(client, "push", g, 78, position=at)) == _wire(
                _reference_messages(client, "push", g, 78, position=at))
            client.push_pull(g, position=at)
        assert [p.version for p in ps] == [3, 3, 3]  # the empty push is a step there too
        strided = {**g, "layer0/w": np.repeat(g["layer0/w"], 2)[::2]}  # not contiguous
        assert _wire(_plan_messages(client, "push", strided, 79)) == _wire(
            _reference_messages(client, "push", g, 79))
        unusual = [{**g, "layer0/w": g["layer0/w"].tolist()},  # float64 once converted
                   {**g, "layer0/w": g["layer0/w"].astype(np.float64)}]
        for u in unusual:
            with pytest.raises(ValueError, match="layer0/w"):
                client.push(u)
    with PSClient([p.address for p in ps[:2]], worker_id=0, timeout=10, split=True,
                  split_bytes=400) as split_client:  # each variable split over both shards
        split_client.init(start, ADAM)
        plan = _plan_messages(split_client, "push", start, 80)
        assert _wire(plan) == _wire(_reference_messages(split_client, "push", start, 80))
        assert all(len(push.slots) == 2 for push in split_client.plan(start).shards)


def test_a_pipelined_reply_without_its_part_is_refused_naming_the_server():
    from distflow.distribute import transport

    server = transport.ServerSocket("tcp://127.0.0.1:0")
    stop = threading.Event()

    def answer():  # a misbehaving peer: answers every message, never with a `part`
        while not stop.is_set():
            if not server.poll(20):
                continue
            identity, frames, _ = server.recv()
            req = protocol.decode(frames).req
            server.send(identity, protocol.encode({"op": "ok", "req": req, "version": 0,
                                                   "mode": "async"}))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with PSClient([server.address], worker_id=0, timeout=5, pipeline_bytes=1000) as client:
            client.init(_layers(), SGD)  # registers; the peer's reply says `async`
            with pytest.raises(PSError, match=r"part: \[index, 5\]") as info:
                client.push(_layers())
        assert info.value.reason == "bad_reply" and info.value.address == server.address
    finally:
        stop.set()
        thread.join(5)
        server.close()
