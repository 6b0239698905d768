"""ParameterServer: every op, sync and async semantics, validation, liveness, stats.

Servers run in a thread of this process and are reached through real ROUTER/DEALER
sockets on 127.0.0.1: `PSClient` for well-formed traffic and a raw `ClientSocket`
for malformed messages. Expected values are computed here with NumPy from the
gradients sent, never copied from the server's output.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest

from distflow.distribute import protocol, transport
from distflow.distribute.client import PSClient, PSError
from distflow.distribute.server import ParameterServer, ServerConfig

pytestmark = pytest.mark.timeout(60)

SGD = {"name": "sgd", "hp": {"momentum": 0.0, "nesterov": False}, "learning_rate": 0.5}
ADAM = {"name": "adam", "hp": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                               "amsgrad": False}, "learning_rate": 0.01}


# ---------------------------------------------------------------- helpers (shared)

def make_server(**overrides) -> ParameterServer:
    """A started server in a thread of this process (stop it with `.stop()`)."""
    settings = {"mode": "async", "num_workers": 1, "heartbeat_timeout": 30.0,
                "stats_interval": 0, "poll_ms": 10, **overrides}
    server = ParameterServer(ServerConfig(**settings))
    server.start()
    return server


def params(seed=0):
    rng = np.random.default_rng(seed)
    return {"dense/kernel": rng.standard_normal((6, 4)).astype(np.float32),
            "dense/bias": rng.standard_normal(4).astype(np.float32)}


def grads(seed):
    rng = np.random.default_rng(100 + seed)
    return {name: rng.standard_normal(p.shape).astype(p.dtype) for name, p in params().items()}


def run_rule_locally(optimizer: dict, start: dict, steps: list[dict]) -> tuple[dict, dict]:
    """The values and slots the optimizer's rule reaches here, applying `steps` (each
    name -> gradient) one after another: what the servers must reproduce."""
    from distflow.optimizers import rules

    rule = rules.get_rule(optimizer["name"])
    hp = {**optimizer["hp"], "learning_rate": optimizer["learning_rate"]}
    values = {name: value.copy() for name, value in start.items()}
    slots = {name: rule.init(value, optimizer["hp"]) for name, value in values.items()}
    for step, g in enumerate(steps, 1):
        for name, grad in g.items():
            rule.update(values[name], grad, slots[name], step, hp)
    return values, slots


def snapshot(server: ParameterServer) -> dict[str, bytes]:
    """Bytes of every parameter and optimizer slot, and the version (call when idle)."""
    state = {f"param/{n}": p.tobytes() for n, p in server.params.items()}
    for name, slots in server.slots.items():
        state.update({f"slot/{name}/{s}": a.tobytes() for s, a in slots.items()})
    state["version"] = str(server.version).encode()
    return state


class Raw:
    """A raw DEALER socket: sends any frames, waits (bounded) for the reply."""

    def __init__(self, address: str):
        self.sock = transport.ClientSocket(address)

    def ask(self, frames, timeout=5.0):
        self.sock.send([bytes(memoryview(f)) for f in frames])
        return self.wait(timeout)

    def wait(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if transport.poll_clients([self.sock], 20):
                frames = self.sock.recv()
                if frames is not None:
                    return protocol.decode(frames, expect_ops=protocol.REPLY_OPS)
        return None

    def close(self):
        self.sock.close()


def run_in_threads(calls, timeout=20.0):
    """Runs each zero-argument callable in its own thread; returns results in order."""
    results, errors = [None] * len(calls), []

    def target(i, fn):
        try:
            results[i] = fn()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), f"calls still running after {timeout} s"
    if errors:
        raise errors[0]
    return results


# ---------------------------------------------------------------- init / pull / push

def test_init_first_writer_wins_and_later_workers_get_the_stored_values(servers):
    server = servers()
    first, second = params(0), params(1)
    with PSClient([server.address], worker_id=0, timeout=5) as a, \
            PSClient([server.address], worker_id=1, timeout=5) as b:
        got_a = a.init(first, SGD)
        got_b = b.init(second, {**SGD, "learning_rate": 9.0})
        for name in first:
            np.testing.assert_array_equal(got_a[name], first[name])
            np.testing.assert_array_equal(got_b[name], first[name])
            np.testing.assert_array_equal(b.pull([name])[name], first[name])
    assert server.optimizer["learning_rate"] == SGD["learning_rate"]


def test_pull_before_init_is_refused(servers):
    server = servers()
    raw = Raw(server.address)
    reply = raw.ask(protocol.encode({"op": "pull", "req": 1}))
    raw.close()
    assert reply.op == "error" and reply.header["reason"] == "not_initialized"


def test_push_applies_sgd_and_push_pull_returns_the_new_values(servers):
    server = servers()
    start = params()
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(start, SGD)
        client.push(grads(1))
        after = client.push_pull(grads(2))
        assert client.last_version == 2
    for name, value in start.items():
        expected = value - np.float32(0.5) * grads(1)[name]
        expected = expected - np.float32(0.5) * grads(2)[name]
        np.testing.assert_allclose(after[name], expected, rtol=1e-6)


def test_k_pushes_with_sgd_lr_1_give_exactly_the_sum(servers):
    server = servers()
    zero = {"w": np.zeros(1000, np.float64)}
    pushes = [np.random.default_rng(i).integers(-50, 50, 1000).astype(np.float64)
              for i in range(12)]
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(zero, {"name": "sgd", "hp": {}, "learning_rate": 1.0})
        for g in pushes:
            client.push({"w": g})
        final = client.pull()["w"]
    np.testing.assert_array_equal(final, -np.sum(pushes, axis=0))


def test_the_store_gathers_a_gradient_only_when_it_has_one_for_every_parameter():
    from distflow.distribute.packed import PackedStore

    store, params = PackedStore(), {"a": np.ones(3, np.float32), "b": np.ones(2, np.float32)}
    store.rebuild(params, {"a": {}, "b": {}}, (), None)
    assert store.gather({"a": [np.full(3, 2.0, np.float32)]}) is None
    gathered = store.gather({"a": [np.full(3, 2.0, np.float32)],
                             "b": [np.full(1, 3.0, np.float32), np.full(1, 4.0, np.float32)]})
    np.testing.assert_array_equal(gathered, [2, 2, 2, 0, 3, 4])  # 8-byte aligned: padding 0


def test_the_store_holds_what_a_reply_packs(monkeypatch):
    from distflow.distribute.packed import PackedStore

    monkeypatch.setattr(protocol, "FRAME_BYTES", 64)  # the pack frame's room: 64 bytes
    params = {n: np.ones(k, np.float32) for n, k in (("a", 6), ("b", 12), ("c", 2))}
    store = PackedStore()
    store.rebuild(dict(params), {n: {} for n in params}, (), None)
    assert store.names == ["a", "c"]  # "b" (48 bytes) no longer fits after "a" (24)
    assert protocol.Encoder(list(params.items())).layout.packed == store.names


def test_adam_state_lives_on_the_server_and_matches_the_rule(servers):
    server = servers()
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)
        for step in range(3):
            client.push(grads(step))
        final = client.pull()
    local, slots = run_rule_locally(ADAM, params(), [grads(step) for step in range(3)])
    for name in params():
        np.testing.assert_array_equal(final[name], local[name])
        np.testing.assert_array_equal(server.slots[name]["m"], slots[name]["m"])


ADAGRAD = {"name": "adagrad", "hp": {"initial_accumulator_value": 0.1, "epsilon": 1e-7},
           "learning_rate": 0.1}


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.parametrize("optimizer", [ADAM, ADAGRAD], ids=["adam", "adagrad"])
def test_the_packed_store_updates_exactly_like_one_tensor_at_a_time(servers, optimizer, mode):
    """Small parameters share one buffer and one rule call per push (async: the pack
    frame; sync: the step's averages gathered into the store's layout); an async push
    listing them in another order takes the per-tensor path. All equal the rule run
    locally."""
    rng = np.random.default_rng(4)
    shapes = {"a": (3,), "b": (5, 7), "c": (1,),  # odd sizes: padding
              "big": (protocol.PACK_BYTES // 400 + 3, 100)}  # over PACK_BYTES: not packed
    values = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    steps = [{n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
             for _ in range(3)]
    fast, slow = servers(mode=mode), servers(mode=mode)
    finals = []
    for server, order in ((fast, list(shapes)), (slow, list(shapes)[::-1])):
        with PSClient([server.address], worker_id=0, timeout=5) as client:
            client.init(values, optimizer)
            for g in steps:
                client.push({n: g[n] for n in order})
            finals.append(client.pull())
    assert fast.shard.store.names == ["a", "b", "c"]
    assert fast.shard.checked_layouts() == [True]
    assert not any(slow.shard.checked_layouts())
    local, slots = run_rule_locally(optimizer, values, steps)
    for name in values:
        np.testing.assert_array_equal(finals[0][name], local[name])
        np.testing.assert_array_equal(finals[1][name], local[name])
        for slot, array in slots[name].items():  # the per-name slots are views into the store
            np.testing.assert_array_equal(fast.slots[name][slot], array)


# ---------------------------------------------------------------- sync mode

def test_sync_three_workers_get_identical_parameters_sgd_on_the_mean(servers):
    server = servers(mode="sync", num_workers=3)
    clients = [PSClient([server.address], worker_id=i, timeout=10) for i in range(3)]
    try:
        for c in clients:
            c.init(params(), SGD)
        results = run_in_threads([lambda c=c, i=i: c.push_pull(grads(i))
                                  for i, c in enumerate(clients)])
    finally:
        for c in clients:
            c.close()
    for name, value in params().items():
        mean = (grads(0)[name] + grads(1)[name] + grads(2)[name]) / np.float32(3)
        np.testing.assert_allclose(results[0][name], value - np.float32(0.5) * mean, rtol=1e-5)
        assert results[0][name].tobytes() == results[1][name].tobytes() == \
            results[2][name].tobytes()
    assert server.version == 1 and server.stats_dict()["steps"] == 1 and server.stats.pushes == 3


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_sync_sums_multi_frame_and_differently_framed_gradients(servers, monkeypatch, workers):
    monkeypatch.setattr(protocol, "FRAME_BYTES", 4096)  # 40 KB tensor: 10 frames
    monkeypatch.setattr(protocol, "PACK_BYTES", 1024)
    server = servers(mode="sync", num_workers=workers)
    start = {"w": np.random.default_rng(0).standard_normal(10_000).astype(np.float32),
             "b": np.zeros(3, np.float32)}
    gs = [{"w": np.random.default_rng(10 + i).standard_normal(10_000).astype(np.float32),
           "b": np.full(3, i, np.float32)} for i in range(workers)]
    clients = [PSClient([server.address], worker_id=i, timeout=10) for i in range(workers)]
    try:
        for c in clients:
            c.init(start, SGD)
        calls = [lambda c=c, g=g: c.push_pull(g) for c, g in zip(clients, gs, strict=True)]
        if workers == 3:  # worker 2 sends `w` packed in one frame instead of 10, first
            monkeypatch.setattr(protocol, "PACK_BYTES", 1 << 20)
            monkeypatch.setattr(protocol, "FRAME_BYTES", 1 << 20)  # the pack's own bound
            packed = protocol.encode({"op": "push_pull", "req": 9, "sender": 2, "step": 0},
                                     list(gs[2].items()))
            monkeypatch.setattr(protocol, "PACK_BYTES", 1024)
            monkeypatch.setattr(protocol, "FRAME_BYTES", 4096)
            assert len(packed) == 2  # header and one pack frame
            raw = Raw(server.address)
            raw.sock.send(packed)

            def after_worker_2(i):
                deadline = time.monotonic() + 5
                while 2 not in server.policy.round.arrived:
                    assert time.monotonic() < deadline, "worker 2's push never arrived"
                    time.sleep(0.005)
                return clients[i].push_pull(gs[i])

            def packed_reply():
                try:
                    reply = raw.wait(10)
                finally:
                    raw.close()
                assert reply is not None, "no reply to the packed push within 10 s"
                return {name: reply.tensor(name) for name in reply.names}
            calls = [lambda: after_worker_2(0), lambda: after_worker_2(1), packed_reply]
        results = run_in_threads(calls)
    finally:
        for c in clients:
            c.close()
    for name, value in start.items():
        total = gs[0][name].copy()
        for g in gs[1:]:
            total += g[name]
        expected = value - np.float32(0.5) * (total * np.float32(1.0 / workers))
        if workers <= 2:  # a + b == b + a exactly; with 3 the arrival order rounds
            assert results[0][name].tobytes() == expected.tobytes()
        np.testing.assert_allclose(results[0][name], expected, rtol=1e-6, atol=1e-7)
        assert all(r[name].tobytes() == results[0][name].tobytes() for r in results)


def test_sync_waits_for_every_registered_worker(servers):
    server = servers(mode="sync", num_workers=2)
    a = PSClient([server.address], worker_id=0, timeout=10)
    b = PSClient([server.address], worker_id=1, timeout=10)
    try:
        a.init(params(), SGD)
        b.init(params(), SGD)
        done = threading.Event()
        thread = threading.Thread(target=lambda: (a.push_pull(grads(0)), done.set()))
        thread.start()
        assert not done.wait(0.5), "the step completed before worker 1 pushed"
        assert server.version == 0
        b.push_pull(grads(1))
        assert done.wait(5), "worker 0 was not answered after worker 1 pushed"
        thread.join(5)
    finally:
        a.close()
        b.close()
    assert server.version == 1


# ---------------------------------------------------------------- async mode

def test_async_records_staleness_and_applies_stale_gradients_without_a_bound(servers):
    server = servers(mode="async")
    with PSClient([server.address], worker_id=0, timeout=5) as fast, \
            PSClient([server.address], worker_id=1, timeout=5) as slow:
        fast.init(params(), SGD)
        slow.init(params(), SGD)
        fast.push(grads(0))
        fast.push(grads(1))
        fast.push(grads(2))
        slow.push(grads(3))  # computed on version 0, server is at 3
        assert slow.last_replies[0]["staleness"] == 3
        assert slow.last_replies[0]["dropped"] is False
    stats = server.stats_dict()
    assert stats["staleness"] == {"0": 3, "3": 1}
    assert server.version == 4


def test_async_max_staleness_drops_gradients_beyond_the_bound(servers):
    server = servers(mode="async", max_staleness=1)
    with PSClient([server.address], worker_id=0, timeout=5) as fast, \
            PSClient([server.address], worker_id=1, timeout=5) as slow:
        fast.init(params(), SGD)
        slow.init(params(), SGD)
        fast.push(grads(0))
        fast.push(grads(1))
        before = snapshot(server)
        values = slow.push_pull(grads(3))  # staleness 2 > 1: dropped
        assert slow.last_replies[0]["dropped"] is True
        assert snapshot(server) == before
        for name, value in values.items():  # the worker continues from the current values
            assert value.tobytes() == server.params[name].tobytes()
        slow.push(grads(4))  # now based on version 2: staleness 0, applied
        assert slow.last_replies[0]["dropped"] is False
    assert server.version == 3 and server.stats_dict()["stale_dropped"] == 1


def _with_big(values: dict, seed: int) -> dict:
    """`values` and a tensor above the pack size (its own frame, not in the packed store)."""
    rng = np.random.default_rng(seed)
    return {**values, "dense/big": rng.standard_normal(protocol.PACK_BYTES // 4 + 5,
                                                       dtype=np.float32)}


def _plain_push_run(server: ParameterServer) -> list[dict]:
    """Two workers, plain and not-so-plain pushes; returns the reply headers (no `req`)."""
    headers = []
    with PSClient([server.address], worker_id=0, timeout=5) as first, \
            PSClient([server.address], worker_id=1, timeout=5) as second:
        first.init(_with_big(params(), 0), ADAM)
        second.init(_with_big(params(), 0), ADAM)
        steps = [(first, {}), (second, {}), (first, {"position": {"epoch": 1}}),
                 (second, {}), (first, {"learning_rate": 0.02}), (first, {}), (second, {})]
        for seed, (client, extra) in enumerate(steps):
            client.push_pull(_with_big(grads(seed), seed), **extra)
            headers.append({k: v for k, v in client.last_replies[0].items() if k != "req"})
        first.push(grads(9))  # not every parameter
        headers.append({k: v for k, v in first.last_replies[0].items() if k != "req"})
    return headers


def test_the_plain_push_shortcut_answers_exactly_as_the_general_path(servers):
    """`plain_push` (async steady state) against a twin server whose policy only has
    the general path (`take`)."""
    shortcut, general = servers(mode="async"), servers(mode="async")
    general.policy.plain_push = lambda identity, msg: False  # the twin: general path only
    assert _plain_push_run(shortcut) == _plain_push_run(general)
    assert snapshot(shortcut) == snapshot(general)
    stats = [{k: v for k, v in server.stats_dict().items()
              if k not in ("address", "uptime_s", "connections", "cow_copies")}
             for server in (shortcut, general)]  # (those depend on timing)
    for one in stats:  # (seconds since each worker was last heard from differ)
        one["workers"] = {w: {**info, "silent_s": None} for w, info in one["workers"].items()}
    # Versions 0..7; each worker's step is the version of its previous reply.
    assert stats[0] == stats[1] and stats[0]["staleness"] == {"0": 2, "1": 5, "2": 1}
    # ... and the shortcut really takes the plain pushes, and only those:
    with PSClient([shortcut.address], worker_id=2, timeout=5) as third:
        third.init(_with_big(params(), 0), ADAM)
        header = {"op": "push_pull", "sender": 2, "req": 1 << 40, "step": 0}
        for extra, taken in (({}, True), ({"position": {"epoch": 2}}, True),
                             ({"part": [0, 1]}, False), ({"learning_rate": 0.1}, False)):
            msg = protocol.decode(protocol.encode({**header, **extra},
                                                  list(_with_big(grads(0), 0).items())))
            assert (shortcut.policy.plain_pusher(msg) is shortcut.workers[2]) is taken, extra


def test_a_reply_still_being_sent_is_never_changed_by_the_next_update(servers):
    # A reader that queues at most one message (RCVHWM 1) and does not read leaves
    # its second reply inside the server's libzmq, zero-copy; the next update must
    # then move the parameters to fresh memory, not overwrite the ones being sent.
    import zmq  # a raw socket with options the client does not expose

    server = servers(mode="async")
    size = 6 * 1024 * 1024  # 24 MB: more than the socket buffers hold
    with PSClient([server.address], worker_id=0, timeout=20) as writer:
        writer.init({"w": np.zeros(size, np.float32)}, {"name": "sgd", "hp": {},
                                                         "learning_rate": 1.0})
        slow = zmq.Context.instance().socket(zmq.DEALER)
        slow.setsockopt(zmq.RCVHWM, 1)
        slow.setsockopt(zmq.RCVBUF, 64 * 1024)
        slow.setsockopt(zmq.LINGER, 0)
        slow.connect(server.address)
        for req in (1, 2):
            slow.send_multipart(protocol.encode(
                {"op": "push_pull", "req": req, "sender": 1, "step": req - 1},
                [("w", np.full(size, -1.0, np.float32))]), copy=False)
        deadline = time.monotonic() + 10
        while server.version < 2:
            assert time.monotonic() < deadline, "the slow worker's pushes were not applied"
            time.sleep(0.01)
        writer.push({"w": np.full(size, -5.0, np.float32)})  # while reply 2 is in flight
        replies = []
        for _ in range(2):
            assert slow.poll(10_000), "no reply for the slow worker within 10 s"
            replies.append(protocol.decode(slow.recv_multipart(),
                                           expect_ops=protocol.REPLY_OPS))
        slow.close()
        assert writer.pull()["w"][0] == 7.0
    assert [r.header["version"] for r in replies] == [1, 2]
    for reply, expected in zip(replies, (1.0, 2.0), strict=True):
        values = reply.tensor("w")
        assert values.min() == values.max() == expected
    assert server.stats_dict()["cow_copies"] >= 1


def test_a_store_parameter_stays_in_the_store_while_a_reply_is_in_flight(servers):
    # As above, a reply stuck in flight (the reader does not read); "a" is big enough
    # for a zero-copy frame (over 256 KiB) yet packed, so it lives in the packed store.
    # A push of "a" alone updates it on its own; it must stay a view into the store,
    # or the next whole-store update would change the store and not "a".
    import zmq

    server = servers(mode="async")
    big, small = 6 * 1024 * 1024, 300 * 1024 // 4
    start = {"a": np.zeros(small, np.float32), "c": np.zeros(3, np.float32),
             "w": np.zeros(big, np.float32)}
    sgd = {"name": "sgd", "hp": {}, "learning_rate": 1.0}
    with PSClient([server.address], worker_id=0, timeout=20) as writer:
        writer.init(start, sgd)
        assert server.shard.store.names == ["a", "c"]
        slow = zmq.Context.instance().socket(zmq.DEALER)
        slow.setsockopt(zmq.RCVHWM, 1)
        slow.setsockopt(zmq.RCVBUF, 64 * 1024)
        slow.setsockopt(zmq.LINGER, 0)
        slow.connect(server.address)
        for req in (1, 2):  # two pulls of everything: the second one stays in flight
            slow.send_multipart(protocol.encode({"op": "pull", "req": req, "sender": 1}))
        deadline = time.monotonic() + 10
        while server.stats_dict()["requests"].get("pull", 0) < 2:
            assert time.monotonic() < deadline, "the slow reader's pulls were not answered"
            time.sleep(0.01)
        writer.push({"a": np.ones(small, np.float32)})  # "a" alone: its own rule call
        for _ in range(3):  # whole-store updates
            writer.push({k: np.ones_like(v) for k, v in start.items()})
        pulled = writer.pull()
        slow.close()
    assert np.shares_memory(server.params["a"], server.shard.store.values)
    assert pulled["a"][0] == pulled["a"][-1] == -4.0 and pulled["w"][0] == -3.0


def test_a_reply_never_shares_the_packed_store(servers, monkeypatch):
    # With room for 3 of these 4 parameters in the pack frame, a reply listing them in
    # another order frames one the store holds: it must go out as a copy.
    monkeypatch.setattr(protocol, "FRAME_BYTES", 1024 * 1024)
    server = servers(mode="async")
    start = {f"t{i}": np.full(300 * 1024 // 4, i, np.float32) for i in range(4)}
    with PSClient([server.address], worker_id=0, timeout=20) as client:
        client.init(start, {"name": "sgd", "hp": {}, "learning_rate": 1.0})
    assert server.shard.store.names == ["t0", "t1", "t2"]
    names = ["t3", "t0", "t1", "t2"]  # packs t3, t0, t1; frames t2
    tensors, shared = server.replies.sendable(server.replies.tensors(names))
    assert shared == []  # nothing to track: t2 goes as a copy, the others packed
    frames = protocol.encode({"op": "ok"}, tensors)
    store = server.shard.store.values
    assert not any(np.shares_memory(np.frombuffer(f, np.uint8), store) for f in frames[1:])
    assert len(frames) == 3  # header, pack frame, t2's own frame


# ---------------------------------------------------------------- validation

def _push_frames(tensors, op="push", **header):
    return protocol.encode({"op": op, "req": 77, "sender": 0, "step": 0, **header}, tensors)


def _bad_header(frames, **changes):
    header = msgpack.unpackb(bytes(memoryview(frames[0])), raw=False)
    header.update(changes)
    return [msgpack.packb(header, use_bin_type=True), *frames[1:]]


def _good():
    return list(grads(0).items())


BAD_REQUESTS = {
    "unknown_op": (lambda: _bad_header(_push_frames(_good()), op="frobnicate"), "frobnicate"),
    "unsupported_version": (lambda: _bad_header(_push_frames(_good()), v=1), "v=1"),
    "unknown_parameter": (lambda: _push_frames([("dense/nope", np.ones(4, np.float32))]),
                          "dense/nope"),
    "dtype_mismatch": (lambda: _push_frames([("dense/bias", np.ones(4, np.float64))]),
                       "float64"),
    "shape_mismatch": (lambda: _push_frames([("dense/bias", np.ones(5, np.float32))]), "(5,)"),
    "frame_count": (lambda: _push_frames(_good())[:-1], "frames"),
    "frame_size": (lambda: [*_push_frames(_good())[:-1], b"\x00" * 3], "Received: 3"),
    "non_finite": (lambda: _push_frames([("dense/kernel", np.full((6, 4), np.nan, np.float32)),
                                         ("dense/bias", np.ones(4, np.float32))]),
                   "dense/kernel"),
    "too_many_tensors": (lambda: _push_frames([(f"t{i}", np.ones(1, np.float32))
                                               for i in range(9)]), "at most 8"),
    "message_too_large": (lambda: _push_frames([("dense/bias", np.ones(4, np.float32)),
                                                ("pad", np.zeros(70_000, np.uint8))]),
                          "at most 65536"),
    "bad_header": (lambda: [b"\xc1 not msgpack"], "msgpack"),
}


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.parametrize("reason", sorted(BAD_REQUESTS))
def test_bad_requests_get_an_error_and_change_nothing(servers, reason, mode):
    make, quoted = BAD_REQUESTS[reason]
    reply = _refused_without_a_change(servers, mode, make, reason)
    assert quoted in reply.header["message"]


def _refused_without_a_change(servers, mode, make, reason):
    """Sends `make()` from a raw socket between two steps of worker 0: it must get a
    `reason` error and change no parameter, slot, version, position or membership."""
    server = servers(mode=mode, max_tensors=8, max_message_bytes=65536)
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)
        client.push(grads(5)) if mode == "async" else client.push_pull(grads(5))
        before, position = snapshot(server), dict(server.position)
        raw = Raw(server.address)
        reply = raw.ask(make())
        raw.close()
        assert reply is not None, f"no error reply to a {reason} request"
        assert (reply.op, reply.header["reason"]) == ("error", reason), reply.header
        assert snapshot(server) == before and server.position == position
        assert sorted(server.workers) == [0], "a refused request registered its sender"
        assert server.stats_dict()["rejected"] == {reason: 1}
        pulled = client.pull()  # still serving, values unchanged
        for name, value in pulled.items():
            assert value.tobytes() == before[f"param/{name}"]
        client.push_pull(grads(6))  # and still stepping (a sync step needs only worker 0)
    assert server.version == 2
    return reply


def _raw_push(specs, data_frames, **header):
    """A push whose spec list is `specs` as given (any values), then `data_frames`."""
    fields = {"v": protocol.PROTOCOL_VERSION, "op": "push", "req": 77, "sender": 5, "step": 0,
              "tensors": msgpack.packb(specs), **header}
    return [msgpack.packb(fields, use_bin_type=True), *data_frames]


def _raw_request(**header):
    return [msgpack.packb({"v": protocol.PROTOCOL_VERSION, "req": 78, "sender": 5, **header},
                          use_bin_type=True)]


HOSTILE_REQUESTS = {  # each: frames, the reason code expected
    "declared 2**78 elements in 2**58 frames": (
        lambda: _raw_push([["w", "float32", [2**39, 2**39], 2**58]], []), "tensor_too_large"),
    "declared 2**43 elements": (
        lambda: _raw_push([["w", "float32", [2**39, 16], 2**22]], [b""]), "tensor_too_large"),
    "shape product beyond any float": (
        lambda: _raw_push([["dense/bias", "float32", [2**39] * 32, 1]], [b""]),
        "tensor_too_large"),
    "nframes true": (lambda: _raw_push([["dense/bias", "float32", [4], True]],
                                       [np.ones(4, np.float32).tobytes()]), "bad_spec"),
    "nframes float": (lambda: _raw_push([["dense/bias", "float32", [4], 1.0]],
                                        [np.ones(4, np.float32).tobytes()]), "bad_spec"),
    "negative step": (lambda: _bad_header(_push_frames(_good()), sender=5, step=-5),
                      "bad_field"),
    "step 2**64 - 1": (lambda: _bad_header(_push_frames(_good()), sender=5, step=2**64 - 1),
                       "bad_field"),
    "op as a list": (lambda: _raw_request(op=["pull"]), "unknown_op"),
    "pull names as lists": (lambda: _raw_request(op="pull", names=[["dense/bias"]]),
                            "bad_name"),
    "pull names as maps": (lambda: _raw_request(op="pull", names=[{"a": 1}]), "bad_name"),
    "pull names repeated": (lambda: _raw_request(op="pull", names=["dense/bias"] * 3),
                            "duplicate_name"),
    "pull names beyond max_tensors": (
        lambda: _raw_request(op="pull", names=[f"n{i}" for i in range(9)]), "too_many_tensors"),
    "init with a wrong shape": (lambda: protocol.encode(
        {"op": "init", "req": 1, "sender": 5, "optimizer": ADAM},
        [("new", np.ones(2, np.float32)), ("dense/bias", np.ones(5, np.float32))]),
        "shape_mismatch"),
    "stop from a non-chief": (lambda: _raw_request(op="epoch_end", epoch=0, stop=True),
                              "bad_field"),
    "save without a checkpoint dir": (lambda: _raw_request(op="save", position={"epoch": 9}),
                                      "no_checkpoint_dir"),
    "unknown parameter": (lambda: _bad_header(_push_frames([("nope", np.ones(4, np.float32))]),
                                              sender=5), "unknown_parameter"),
}


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.parametrize("case", sorted(HOSTILE_REQUESTS))
def test_a_refused_request_changes_nothing_not_even_membership(servers, case, mode):
    make, reason = HOSTILE_REQUESTS[case]
    _refused_without_a_change(servers, mode, make, reason)


def test_a_pull_whose_reply_would_exceed_the_reply_limit_is_refused(servers):
    server = servers(mode="async", max_reply_bytes=100)
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)  # 96 + 16 bytes
        np.testing.assert_array_equal(client.pull(["dense/kernel"])["dense/kernel"],
                                      params()["dense/kernel"])
        with pytest.raises(PSError) as info:
            client.pull()
    assert info.value.reason == "reply_too_large" and "112 bytes" in str(info.value)
    assert server.stats_dict()["rejected"] == {"reply_too_large": 1}


def test_replies_beyond_a_slow_peers_queue_wait_in_order_and_all_arrive(servers):
    import zmq  # a raw socket that reads late, with options the client does not expose

    server = servers(mode="async", max_queued_replies=2)
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init({"w": np.arange(100_000, dtype=np.float32)}, SGD)  # 400 KB replies
    slow = zmq.Context.instance().socket(zmq.DEALER)
    slow.setsockopt(zmq.RCVHWM, 1)
    slow.setsockopt(zmq.RCVBUF, 4096)
    slow.setsockopt(zmq.LINGER, 0)
    slow.connect(server.address)
    try:
        for req in range(40):
            slow.send_multipart(protocol.encode({"op": "pull", "req": req}))
        deadline = time.monotonic() + 20
        while server.stats.requests["pull"] < 40:
            assert time.monotonic() < deadline, "the pulls were not taken in"
            time.sleep(0.02)
        assert server.stats_dict()["connections"]["replies_deferred"] > 0
        reqs = []
        for _ in range(40):
            assert slow.poll(10_000), f"only {len(reqs)} replies arrived"
            reply = protocol.decode(slow.recv_multipart(), expect_ops=protocol.REPLY_OPS)
            np.testing.assert_array_equal(reply.tensor("w"), np.arange(100_000,
                                                                       dtype=np.float32))
            reqs.append(reply.req)
    finally:
        slow.close()
    assert reqs == list(range(40)) and server.stats_dict()["replies_dropped"] == 0


def test_a_signal_ends_the_loop_at_once_only_while_a_request_is_being_read(tmp_path):
    from distflow.distribute.server import Terminated, on_signal

    applying, reading = (ParameterServer(ServerConfig(stats_interval=0)) for _ in range(2))
    try:
        applying.reading = False  # e.g. applying an update: finish it, then stop
        on_signal(applying)
        assert applying.stopping
        reading.reading = True  # only reading: nothing changed yet, stop now
        with pytest.raises(Terminated):
            on_signal(reading)
        assert reading.stopping and not reading.reading
    finally:
        applying.socket.close()
        reading.socket.close()


def test_a_malformed_push_naming_a_waiting_worker_cannot_take_its_reply(servers):
    server = servers(mode="sync", num_workers=2)
    a = PSClient([server.address], worker_id=0, timeout=10, retries=1)
    b = PSClient([server.address], worker_id=1, timeout=10)
    try:
        a.init(params(), SGD)
        b.init(params(), SGD)
        got = []
        thread = threading.Thread(target=lambda: got.append(a.push_pull(grads(0))))
        thread.start()
        deadline = time.monotonic() + 5
        while server.workers[0].pending is None:
            assert time.monotonic() < deadline, "worker 0's push did not arrive"
            time.sleep(0.01)
        raw = Raw(server.address)  # claims to be worker 0, with a wrong shape
        reply = raw.ask(_push_frames([("dense/bias", np.ones(5, np.float32))], op="push_pull"))
        raw.close()
        assert reply is not None and reply.header["reason"] == "shape_mismatch"
        b.push_pull(grads(1))
        thread.join(10)
        assert got, "worker 0 never got the step's reply"
    finally:
        a.close()
        b.close()
    assert server.version == 1 and server.stats.duplicates == 0


def test_the_server_reads_its_settings_from_the_launcher_environment():
    from distflow.distribute.server import config_from_env

    env = {"DISTFLOW_RANK": "1", "DISTFLOW_PS_ADDRS": "tcp://h:5000,tcp://h:5001",
           "DISTFLOW_STRATEGY": "async", "DISTFLOW_MAX_STALENESS": "3"}
    config = config_from_env(env)
    assert (config.address, config.shard, config.mode, config.max_staleness) == \
        ("tcp://127.0.0.1:5001", 1, "async", 3)
    assert config_from_env({**env, "DISTFLOW_MAX_STALENESS": ""}).max_staleness is None
    with pytest.raises(ValueError, match="DISTFLOW_MAX_STALENESS must be an int. "
                                         "Received: 'three'"):
        config_from_env({**env, "DISTFLOW_MAX_STALENESS": "three"})


def test_non_finite_gradients_are_skipped_under_the_skip_policy(servers):
    server = servers(mode="async", nonfinite="skip")
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)
        before = snapshot(server)
        bad = grads(0)
        bad["dense/bias"][2] = np.inf
        client.push(bad)
        assert client.last_replies[0]["skipped"] is True
        assert snapshot(server) == before
        assert server.stats_dict()["skipped_nonfinite"] == 1


def test_the_non_finite_check_names_the_packed_culprit_and_ignores_int_bit_patterns(servers):
    server = servers(mode="async")
    start = {"a": np.zeros(5, np.float32), "b": np.zeros(3, np.float32),
             "n": np.zeros(4, np.int32)}
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(start, {"name": "sgd", "hp": {}, "learning_rate": 1.0})
        nan_bits = np.full(4, 0x7FC00000, np.int32)  # a NaN if read as float32
        client.push({"a": np.ones(5, np.float32), "n": nan_bits})
        assert server.version == 1
        bad_b = np.array([1.0, np.nan, 2.0], np.float32)
        with pytest.raises(PSError, match="Gradient of 'b'"):
            client.push({"a": np.ones(5, np.float32), "b": bad_b})
        with pytest.raises(PSError, match="Gradient of 'b'"):
            client.push({"b": bad_b, "a": np.ones(5, np.float32)})
    assert server.version == 1


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_every_float_dtype_is_checked_for_non_finite_values(servers, dtype, value):
    server = servers(mode="async")
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init({"w": np.zeros(3000, dtype)}, SGD)
        for position in (0, 1234, 2999):
            g = np.ones(3000, dtype)
            g[position] = value
            with pytest.raises(PSError) as info:
                client.push({"w": g})
            assert info.value.reason == "non_finite"
        client.push({"w": np.ones(3000, dtype)})
    assert server.version == 1 and server.stats_dict()["rejected"] == {"non_finite": 3}


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_non_finite_values_anywhere_in_a_multi_frame_gradient_are_found(servers, mode):
    from distflow.distribute.server.requests import FINITE_CHUNK as _FINITE_CHUNK
    from distflow.distribute.server.shard import UPDATE_CHUNK as _UPDATE_CHUNK

    # 2.5 frames of float32; checked and updated in several chunks per frame.
    n = protocol.FRAME_BYTES // 4 * 2 + 12345
    assert n > 4 * max(_FINITE_CHUNK, _UPDATE_CHUNK)
    server = servers(mode=mode, max_frame_bytes=protocol.FRAME_BYTES + 1024)
    start = np.linspace(-1, 1, n, dtype=np.float32)
    with PSClient([server.address], worker_id=0, timeout=20) as client:
        client.init({"w": start}, SGD)
        frame = protocol.FRAME_BYTES // 4
        for position in (0, _FINITE_CHUNK - 1, frame - 1, frame + _FINITE_CHUNK + 7, n - 1):
            g = np.ones(n, np.float32)
            g[position] = np.nan
            with pytest.raises(PSError) as info:
                client.push({"w": g})
            assert info.value.reason == "non_finite"
        np.testing.assert_array_equal(client.pull()["w"], start)
        g = np.linspace(3, -2, n, dtype=np.float32)
        after = client.push_pull({"w": g})["w"]
    np.testing.assert_array_equal(after, start - np.float32(SGD["learning_rate"]) * g)


def test_a_frame_above_maxmsgsize_is_cut_off_and_the_server_keeps_serving(servers):
    server = servers(mode="async", max_frame_bytes=64 * 1024)
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)
        before = snapshot(server)
        raw = Raw(server.address)
        reply = raw.ask(_push_frames([("dense/bias", np.ones(4, np.float32)),
                                      ("huge", np.zeros(200_000, np.uint8))]), timeout=1.0)
        raw.close()
        assert reply is None  # libzmq drops the connection before buffering the frame
        assert snapshot(server) == before
        client.push(grads(1))
        assert server.version == 1
        deadline = time.monotonic() + 5
        while server.stats_dict()["connections"].get("disconnected", 0) < 1:
            assert time.monotonic() < deadline, "the oversized sender was not disconnected"
            time.sleep(0.02)


def test_a_message_of_too_many_frames_is_refused_without_keeping_them(servers):
    server = servers(mode="async", max_tensors=8, max_message_bytes=65536)
    limit = 2 + 8 + 65536 // protocol.FRAME_BYTES
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)
        before = snapshot(server)
        raw = Raw(server.address)
        reply = raw.ask(_push_frames(_good()) + [b""] * 20_000)
        raw.close()
        assert reply.op == "error" and reply.header["reason"] == "too_many_frames"
        assert f"at most {limit}" in reply.header["message"]
        assert snapshot(server) == before
        client.push(grads(1))
    assert server.version == 1 and server.stats_dict()["rejected"] == {"too_many_frames": 1}


def test_random_mutations_of_valid_messages_never_change_state(servers):
    server = servers(mode="async")
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), ADAM)
        client.push(grads(0))
    before = snapshot(server)
    rng = random.Random(1234)
    poison = [("dense/kernel", np.full((6, 4), np.nan, np.float32)),
              ("dense/bias", np.full(4, np.nan, np.float32))]
    bases = [[bytes(memoryview(f)) for f in _push_frames(poison, op=op)]
             for op in ("push", "push_pull")]
    bases.append([bytes(memoryview(f)) for f in protocol.encode({"op": "pull", "req": 1})])
    raw = Raw(server.address)
    answered = 0
    for _ in range(2000):
        frames = _mutate(rng, [list(f) for f in rng.choice(bases)])
        reply = raw.ask([bytes(f) for f in frames], timeout=2.0)
        assert reply is not None, f"no reply to mutated message {frames!r:.300}"
        answered += 1
    raw.close()
    assert answered == 2000
    assert snapshot(server) == before
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(3), ADAM)  # registers the names; the stored values win
        client.push(grads(1))
    assert server.version == 2


def _mutate(rng: random.Random, frames: list[list[int]]) -> list[list[int]]:
    kind = rng.randrange(5)
    if kind == 0 and len(frames) > 1:
        del frames[rng.randrange(1, len(frames))]
    elif kind == 1:
        frames.append([rng.randrange(256) for _ in range(rng.randrange(0, 40))])
    elif kind == 2:
        target = frames[rng.randrange(len(frames))]
        del target[rng.randrange(len(target) + 1):]
    else:
        target = frames[0] if kind == 3 else frames[rng.randrange(len(frames))]
        for _ in range(rng.randrange(1, 4)):
            if target:
                target[rng.randrange(len(target))] = rng.randrange(256)
    return frames


# ---------------------------------------------------------------- liveness

def test_a_silent_worker_is_declared_dead_and_the_step_completes_without_it(servers, caplog):
    caplog.set_level(logging.INFO, logger="distflow.ps")
    server = servers(mode="sync", num_workers=3, heartbeat_timeout=0.6)
    clients = [PSClient([server.address], worker_id=i, timeout=10) for i in range(3)]
    try:
        for c in clients:
            c.init(params(), SGD)
        run_in_threads([lambda c=c, i=i: c.push_pull(grads(i), position={"step": 1})
                        for i, c in enumerate(clients)])
        start = time.monotonic()
        results = run_in_threads([lambda c=c, i=i: c.push_pull(grads(10 + i))
                                  for i, c in enumerate(clients[:2])])
        waited = time.monotonic() - start
    finally:
        for c in clients:
            c.close(leave=False)
    assert 0.4 < waited < 5, f"the step took {waited:.2f} s with a 0.6 s heartbeat timeout"
    for name, value in params().items():
        step1 = value - np.float32(0.5) * (grads(0)[name] + grads(1)[name] + grads(2)[name]) / 3
        mean2 = (grads(10)[name] + grads(11)[name]) / np.float32(2)
        np.testing.assert_allclose(results[0][name], step1 - np.float32(0.5) * mean2, rtol=1e-5)
    assert server.stats_dict()["dead_workers"] == [2]
    assert server.stats_dict()["live_workers"] == [0, 1]
    deaths = [r.getMessage() for r in caplog.records if "declared dead" in r.getMessage()]
    assert deaths and "Worker 2" in deaths[0] and "last step 0" in deaths[0]


def test_a_new_worker_joins_at_the_next_step(servers):
    server = servers(mode="sync", num_workers=2)
    a, b, late = (PSClient([server.address], worker_id=i, timeout=10) for i in (0, 1, 2))
    try:
        a.init(params(), SGD)
        b.init(params(), SGD)
        done = threading.Event()
        first = threading.Thread(target=lambda: (a.push_pull(grads(0)), done.set()))
        first.start()
        deadline = time.monotonic() + 5
        while not server.policy.round.started:  # worker 0's gradient has arrived
            assert time.monotonic() < deadline, "worker 0's push never reached the server"
            time.sleep(0.01)
        joined = late.init(params(7), SGD)  # registers mid-step: not waited for in this step
        np.testing.assert_array_equal(joined["dense/bias"], params()["dense/bias"])
        b.push_pull(grads(1))
        assert done.wait(5), "step 1 did not complete without the late worker"
        first.join(5)
        assert server.version == 1
        results = run_in_threads([lambda c=c, i=i: c.push_pull(grads(20 + i))
                                  for i, c in enumerate((a, b, late))])
    finally:
        for c in (a, b, late):
            c.close()
    assert server.version == 2
    for name, value in params().items():
        step1 = value - np.float32(0.5) * (grads(0)[name] + grads(1)[name]) / 2
        mean = (grads(20)[name] + grads(21)[name] + grads(22)[name]) / np.float32(3)
        np.testing.assert_allclose(results[2][name], step1 - np.float32(0.5) * mean, rtol=1e-5)


def test_a_worker_that_never_registers_is_waited_for_only_up_to_the_timeout(servers, caplog):
    caplog.set_level(logging.INFO, logger="distflow.ps")
    server = servers(mode="sync", num_workers=2, heartbeat_timeout=0.5)
    with PSClient([server.address], worker_id=0, timeout=10) as only:
        only.init(params(), SGD)
        start = time.monotonic()
        only.push_pull(grads(0))
        waited = time.monotonic() - start
    assert 0.3 < waited < 5
    assert any("never registered" in r.getMessage() and "[1]" in r.getMessage()
               for r in caplog.records)


def test_heartbeats_keep_a_quiet_worker_alive(servers):
    server = servers(mode="sync", num_workers=2, heartbeat_timeout=0.8)
    a = PSClient([server.address], worker_id=0, timeout=10)
    b = PSClient([server.address], worker_id=1, timeout=10)
    try:
        a.init(params(), SGD)
        b.init(params(), SGD)
        b.start_heartbeats(interval=0.1)
        time.sleep(1.8)
        # Worker 1 sent only heartbeats and lives; worker 0 sent nothing and is dead.
        assert server.stats_dict()["live_workers"] == [1]
        assert server.stats_dict()["dead_workers"] == [0]
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- stats

def test_stats_report_the_counters(servers, tmp_path):
    server = servers(mode="async", checkpoint_dir=str(tmp_path), max_staleness=5)
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), SGD)
        client.push_pull(grads(0))
        client.push(grads(1))
        with pytest.raises(PSError):
            client.push({"dense/bias": np.full(4, np.nan, np.float32)})
        path = client.save(position={"epoch": 1, "step": 2})[0]
        stats = client.stats()[0]
    assert stats["steps"] == 2 and stats["version"] == 2
    assert stats["pushes"] == 2
    assert stats["rejected"] == {"non_finite": 1}
    assert stats["live_workers"] == [0] and stats["dead_workers"] == []
    assert stats["staleness"] == {"0": 2}
    assert stats["last_checkpoint"] == {"path": path, "version": 2}
    assert stats["position"] == {"epoch": 1, "step": 2}
    param_bytes = sum(p.nbytes for p in params().values())
    assert stats["param_bytes"] == param_bytes
    assert stats["bytes_in"] > 3 * param_bytes  # init + 2 pushes
    assert stats["bytes_out"] > 2 * param_bytes  # init reply + push_pull reply
    assert stats["requests"]["push"] == 2 and stats["requests"]["push_pull"] == 1


def test_stats_are_logged_periodically(servers, caplog):
    caplog.set_level(logging.INFO, logger="distflow.ps")
    server = servers(mode="async", stats_interval=0.1)
    with PSClient([server.address], worker_id=0, timeout=5) as client:
        client.init(params(), SGD)
        client.push(grads(0))
        deadline = time.monotonic() + 5
        while not any("pushes=1" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no stats line with pushes=1 within 5 s"
            time.sleep(0.05)
    line = next(r.getMessage() for r in caplog.records if "pushes=1" in r.getMessage())
    for key in ("version=1", "steps=1", "bytes_in=", "bytes_out=", "rejected=",
                "live_workers=[0]", "dead_workers=", "staleness=", "last_checkpoint="):
        assert key in line
    assert server.version == 1


# ---------------------------------------------------------------- process entry

def test_the_server_process_takes_flags_over_the_environment():
    from test_ps_client import _free_port  # here: test_ps_client imports this module

    port = _free_port()
    env = {**os.environ, "DISTFLOW_STRATEGY": "mirrored", "DISTFLOW_RANK": "0",
           "DISTFLOW_PS_ADDRS": "tcp://127.0.0.1:1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "distflow.distribute.server", "--address",
                             f"tcp://127.0.0.1:{port}", "--mode", "async", "--shard", "3",
                             "--max-staleness", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        with PSClient([f"tcp://127.0.0.1:{port}"], worker_id=0, timeout=20) as client:
            hello = client.hello()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert (hello["mode"], hello["shard"]) == ("async", 3)
    assert proc.returncode == 0, out


@pytest.mark.parametrize("args,env,message", [
    (["--mode", "bogus"], {}, "mode='bogus'"),
    (["--num-workers", "0"], {}, "num_workers=0"),
    ([], {"DISTFLOW_HEARTBEAT_TIMEOUT": "soon"}, "DISTFLOW_HEARTBEAT_TIMEOUT"),
    ([], {"DISTFLOW_RANK": "2", "DISTFLOW_PS_ADDRS": "tcp://127.0.0.1:1"}, "DISTFLOW_RANK=2"),
    (["--keys", "/nonexistent-keys"], {}, "python -m distflow.keys generate"),
])
def test_bad_server_settings_exit_2_naming_the_problem(args, env, message):
    done = subprocess.run([sys.executable, "-m", "distflow.distribute.server",
                           "--address", "tcp://127.0.0.1:0", *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr
