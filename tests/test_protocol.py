"""Wire protocol: encode/decode round trips and the validation of every header field.

Pure tests build frames in memory; the socket tests send them through a real
ROUTER/DEALER pair on 127.0.0.1 (the transport used by the server and client).
"""

import time

import msgpack
import numpy as np
import pytest

from distflow.distribute import protocol, transport
from distflow.distribute.protocol import ProtocolError

pytestmark = pytest.mark.timeout(60)

ALL_DTYPES = sorted(protocol.DTYPES)


def _sample(dtype: str, shape: tuple, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


def _roundtrip(header, tensors, expect_ops=protocol.REQUEST_OPS):
    frames = protocol.encode(header, tensors)
    return protocol.decode([bytes(memoryview(f)) for f in frames], expect_ops=expect_ops)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (2, 0, 4), (2, 3, 4, 5)])
def test_every_dtype_and_shape_round_trips_bit_exactly(dtype, shape):
    array = _sample(dtype, shape)
    msg = _roundtrip({"op": "push", "req": 5, "sender": 2, "step": 9}, [("w", array)])
    out = msg.tensor("w")
    assert out.dtype == np.dtype(dtype) and out.shape == shape
    assert out.tobytes() == array.tobytes()
    assert (msg.op, msg.req, msg.sender, msg.header["step"]) == ("push", 5, 2, 9)
    assert msg.spec("w") == (dtype, shape)


def test_several_tensors_keep_their_order_and_names():
    tensors = [(f"layer{i}/kernel", _sample("float32", (i + 1, 3), i)) for i in range(5)]
    msg = _roundtrip({"op": "push_pull", "req": 1}, tensors)
    assert msg.names == [name for name, _ in tensors]
    for name, array in tensors:
        np.testing.assert_array_equal(msg.tensors[name], array)


def test_non_contiguous_and_big_endian_inputs_are_sent_as_their_values():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    strided = base[:, ::2]
    big = np.arange(6, dtype=">i4").reshape(2, 3)
    msg = _roundtrip({"op": "push"}, [("s", strided), ("b", big)])
    np.testing.assert_array_equal(msg.tensor("s"), strided)
    np.testing.assert_array_equal(msg.tensor("b"), big)
    assert msg.spec("b") == ("int32", (2, 3))


def test_unsupported_dtype_is_refused_when_encoding():
    with pytest.raises(ValueError, match="complex128"):
        protocol.encode({"op": "push"}, [("c", np.zeros(3, np.complex128))])


def test_single_frame_tensor_is_a_view_on_the_received_buffer():
    array = _sample("float32", (64, 64))
    received = [bytearray(memoryview(f)) for f in protocol.encode({"op": "push"}, [("w", array)])]
    view = protocol.decode(received).tensor("w")
    received[1][0:4] = np.float32(123.5).tobytes()
    assert view.reshape(-1)[0] == np.float32(123.5)  # no copy was made


@pytest.fixture
def small_frames(monkeypatch):
    monkeypatch.setattr(protocol, "FRAME_BYTES", 64)
    monkeypatch.setattr(protocol, "PACK_BYTES", 16)
    return 64


def test_small_tensors_share_one_aligned_pack_frame_and_decode_as_views():
    small = [("a", np.arange(3, dtype=np.int8)), ("b", _sample("float64", (5,))),
             ("c", _sample("float32", (7, 3))), ("d", np.zeros((0,), np.float32))]
    big = ("big", _sample("float32", (protocol.PACK_BYTES // 4,)))
    frames = protocol.encode({"op": "push"}, [small[0], big, *small[1:]])
    assert len(frames) == 3  # header, one pack frame, the big tensor
    assert memoryview(frames[1]).nbytes == 8 + 40 + 88 + 0  # each start 8-byte aligned
    assert memoryview(frames[2]).obj is not None and memoryview(frames[2]).nbytes == \
        big[1].nbytes
    received = [bytes(memoryview(f)) for f in frames]
    msg = protocol.decode(received)
    assert msg.names == ["a", "big", "b", "c", "d"]
    for name, array in [*small, big]:
        assert msg.tensor(name).tobytes() == array.tobytes()
        assert msg.tensor(name).dtype == array.dtype and msg.tensor(name).shape == array.shape
    assert np.shares_memory(msg.tensor("b"), np.frombuffer(received[1], np.uint8))
    assert msg.tensor("b").ctypes.data % 8 == msg.tensor("c").ctypes.data % 8


@pytest.mark.parametrize("delta", [-8, -1, 1, 8])
def test_a_pack_frame_of_the_wrong_size_is_refused(delta):
    frames = [bytes(memoryview(f)) for f in protocol.encode(
        {"op": "push"}, [("a", np.ones(3, np.float32)), ("b", np.ones(2, np.int64))])]
    frames[1] = frames[1][:len(frames[1]) + delta] if delta < 0 else frames[1] + b"\0" * delta
    with pytest.raises(ProtocolError) as info:
        protocol.decode(frames)
    assert info.value.reason == "frame_size" and "pack frame must hold 32 bytes" in str(info.value)


@pytest.mark.parametrize("nbytes_factor", [1, 2, 2.5, 7.25])
def test_large_tensors_are_cut_into_frames_and_joined(small_frames, nbytes_factor):
    count = int(small_frames * nbytes_factor) // 4
    array = _sample("float32", (count,))
    frames = protocol.encode({"op": "push"}, [("a", np.zeros(3, np.int8)), ("w", array)])
    expected_frames = -(-array.nbytes // small_frames)
    assert len(frames) == 1 + 1 + expected_frames
    assert all(memoryview(f).nbytes <= small_frames for f in frames[1:])
    msg = protocol.decode([bytes(memoryview(f)) for f in frames])
    np.testing.assert_array_equal(msg.tensor("w"), array)
    out = np.empty_like(array)
    msg.copy_into("w", out)
    np.testing.assert_array_equal(out, array)
    assert sum(p.size for p in msg.pieces("w")) == array.size


def _frames(tensors=(("w", np.ones(4, np.float32)),), **header):
    return [bytes(memoryview(f)) for f in protocol.encode({"op": "push", "req": 3, **header},
                                                          list(tensors))]


def _with_header(frames, **changes):
    """The frames with header fields replaced; a list `tensors` is packed, as senders do."""
    header = msgpack.unpackb(frames[0], raw=False)
    header.update(changes)
    if isinstance(header.get("tensors"), list):
        header["tensors"] = msgpack.packb(header["tensors"])
    return [msgpack.packb(header, use_bin_type=True), *frames[1:]]


def _with_raw_specs(frames, specs):
    """The frames with `tensors` set to `specs` as they are (not packed)."""
    header = msgpack.unpackb(frames[0], raw=False)
    header["tensors"] = specs
    return [msgpack.packb(header, use_bin_type=True), *frames[1:]]


@pytest.mark.parametrize("make,reason,quoted", [
    (lambda: [], "bad_header", "Empty message"),
    (lambda: [b"\xc1garbage"], "bad_header", "not valid msgpack"),
    (lambda: [msgpack.packb([1, 2])], "bad_header", "msgpack map"),
    (lambda: _with_header(_frames(), v=99), "unsupported_version", "v=99"),
    (lambda: _with_header(_frames(), v=1), "unsupported_version", "v=1"),
    (lambda: _with_header(_frames(), v=None), "unsupported_version", "v=None"),
    (lambda: _with_header(_frames(), v=2.0), "unsupported_version", "v=2.0"),
    (lambda: _with_header(_frames(), op="explode"), "unknown_op", "op='explode'"),
    (lambda: _with_header(_frames(), req="7"), "bad_field", "req='7'"),
    (lambda: _with_header(_frames(), step=1.5), "bad_field", "step=1.5"),
    (lambda: _with_header(_frames(), step=None), "bad_field", "step=None"),  # nil: not absent
    (lambda: _with_header(_frames(), tensors="w"), "bad_header", "tensors"),
    (lambda: _with_raw_specs(_frames(), [["w", "float32", [4], 0]]), "bad_header",
     "must be msgpack bytes"),  # a version 1 spec list
    (lambda: _with_header(_frames(), tensors=b"\xc1"), "bad_header",
     "`tensors` is not valid msgpack"),
    (lambda: _with_header(_frames(), tensors=msgpack.packb({"w": 1})), "bad_header",
     "`tensors` is not valid msgpack"),  # no maps in a spec list
    (lambda: _with_header(_frames(), tensors=msgpack.packb("w")), "bad_header",
     "`tensors` must be a msgpack list of [name, dtype, shape, nframes]. Received: str"),
    (lambda: _with_header(_frames(), tensors=[["w", "float32", [4]]]), "bad_spec", "[name"),
    (lambda: _with_header(_frames(), tensors=[["w", "complex64", [4], 1]]), "bad_dtype",
     "complex64"),
    (lambda: _with_header(_frames(), tensors=[["w", "float32", [-4], 1]]), "bad_shape", "-4"),
    (lambda: _with_header(_frames(), tensors=[["w", "float32", ["4"], 1]]), "bad_shape", "'4'"),
    (lambda: _with_header(_frames(), tensors=[["w", "float32", [4], 2]]), "frame_count",
     "nframes=2"),
    (lambda: _frames()[:1], "frame_count", "has 0"),
    (lambda: _frames() + [b"extra"], "frame_count", "has 2"),
    (lambda: [_frames()[0], b"\x00" * 15], "frame_size", "must hold 16 bytes"),
    (lambda: _with_header(_frames(), tensors=[["w", "float32", [4], 1]] * 2), "duplicate_tensor",
     "'w'"),
    (lambda: [b"\x00" * (protocol.MAX_HEADER_BYTES + 1)], "header_too_large",
     str(protocol.MAX_HEADER_BYTES)),
])
def test_malformed_messages_raise_naming_the_problem(make, reason, quoted):
    with pytest.raises(ProtocolError) as info:
        protocol.decode(make())
    assert info.value.reason == reason
    assert quoted in str(info.value)


def test_the_request_id_survives_a_rejection_so_the_error_reaches_the_right_call():
    with pytest.raises(ProtocolError) as info:
        protocol.decode(_with_header(_frames(), op="nope", req=41))
    assert info.value.req == 41


def test_too_many_tensors_is_refused_before_reading_them():
    tensors = [(f"t{i}", np.zeros(1, np.float32)) for i in range(9)]
    with pytest.raises(ProtocolError) as info:
        protocol.decode(_frames(tensors), max_tensors=8)
    assert info.value.reason == "too_many_tensors" and "Received: 9" in str(info.value)


def test_a_small_tensor_may_also_come_in_its_own_frame():
    frames = _with_header(_frames(), tensors=[["w", "float32", [4], 1]])  # not packed
    np.testing.assert_array_equal(protocol.decode(frames).tensor("w"), np.ones(4, np.float32))


def test_replies_and_requests_are_told_apart():
    reply = protocol.error_frames(12, "shape_mismatch", "bad shape")
    msg = protocol.decode(reply, expect_ops=protocol.REPLY_OPS)
    assert msg.header["reason"] == "shape_mismatch" and msg.req == 12
    with pytest.raises(ProtocolError, match="op='error'"):
        protocol.decode(reply)


def test_reheader_replaces_fields_and_shares_the_data_frames():
    frames = protocol.encode({"op": "ok", "req": 1, "version": 3}, [("w", np.ones(5))])
    again = protocol.reheader(frames, req=2)
    assert again[1] is frames[1]
    msg = protocol.decode(again, expect_ops=protocol.REPLY_OPS)
    assert (msg.req, msg.header["version"]) == (2, 3)


# ---------------------------------------------------------------- real sockets

def _exchange(server, client, frames, timeout=5.0):
    client.send(frames)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll(50):
            received = server.recv()
            if received is not None:
                return received[:2]
    raise TimeoutError(f"No message reached {server.address} within {timeout} s")


@pytest.fixture
def socket_pair():
    server = transport.ServerSocket("tcp://127.0.0.1:0")
    client = transport.ClientSocket(server.address)
    yield server, client
    client.close()
    server.close()


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_crosses_a_real_socket(socket_pair, dtype):
    server, client = socket_pair
    array = _sample(dtype, (33, 17), seed=3)
    identity, frames = _exchange(server, client, protocol.encode({"op": "push", "req": 1},
                                                                [("w", array)]))
    msg = protocol.decode(frames)
    assert msg.tensor("w").tobytes() == array.tobytes() and identity


def test_a_multi_frame_tensor_crosses_a_real_socket_and_comes_back(socket_pair):
    server, client = socket_pair
    array = _sample("float32", (int(2.5 * protocol.FRAME_BYTES) // 4 + 3,), seed=4)
    sent = protocol.encode({"op": "push_pull", "req": 2}, [("big", array), ("b", array[:3])])
    assert len(sent) == 1 + 3 + 1
    identity, frames = _exchange(server, client, sent)
    msg = protocol.decode(frames)
    np.testing.assert_array_equal(msg.tensor("big"), array)
    server.send(identity, protocol.encode({"op": "ok", "req": 2}, msg.tensors.items()))
    deadline = time.monotonic() + 5
    reply = None
    while reply is None and time.monotonic() < deadline:
        if transport.poll_clients([client], 50):
            reply = client.recv()
    assert reply is not None, "no reply within 5 s"
    back = protocol.decode(reply, expect_ops=protocol.REPLY_OPS)
    np.testing.assert_array_equal(back.tensor("big"), array)
    np.testing.assert_array_equal(back.tensor("b"), array[:3])


def test_an_encoder_gives_the_frames_encode_gives_step_after_step(small_frames):
    def tensors(seed):
        return [("bias", _sample("float32", (3,), seed)),
                ("empty", np.zeros((0, 2), np.float64)),
                ("flag", _sample("bool", (5,), seed)),
                ("strided", _sample("float32", (6, 4), seed)[:, ::2]),  # not contiguous
                ("swapped", _sample("float32", (4,), seed).astype(">f4")),  # big-endian
                ("kernel", _sample("float32", (int(2.5 * small_frames) // 4,), seed))]

    encoder = protocol.Encoder(tensors(0))
    for seed in (1, 2):  # later steps: same names, dtypes and shapes, new values
        header = {"op": "push", "req": seed, "step": 7}
        expected = protocol.encode(header, tensors(seed))
        got = encoder.encode(header, [a for _, a in tensors(seed)])
        assert [bytes(memoryview(f)) for f in got] == [bytes(memoryview(f)) for f in expected]
        msg = protocol.decode([bytes(memoryview(f)) for f in got])
        for name, array in tensors(seed):
            np.testing.assert_array_equal(msg.tensor(name), array)


def test_copy_into_writes_into_an_array_of_any_memory_order():
    array = _sample("float32", (5, 3), seed=6)
    msg = protocol.decode([bytes(memoryview(f)) for f in protocol.encode(
        {"op": "push"}, [("w", array)])])
    for out in (np.zeros((5, 3), np.float32, order="F"), np.zeros((5, 6), np.float32)[:, ::2]):
        msg.copy_into("w", out)
        np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("second_dtype", ["float32", "int64"], ids=["one_pack_dtype", "mixed"])
def test_copy_all_into_writes_the_named_tensors_and_skips_the_others(second_dtype):
    small = _sample("float32", (5, 3), seed=7)
    other = _sample(second_dtype, (4,), seed=8)
    big = _sample("float32", (protocol.PACK_BYTES // 4 + 10,), seed=9)  # its own frame
    msg = protocol.decode([bytes(memoryview(f)) for f in protocol.encode(
        {"op": "push"}, [("small", small), ("other", other), ("big", big), ("skip", small)])])
    assert (msg.layout.pack_slices != []) == (second_dtype == "float32")
    targets = {"small": np.zeros((5, 3), np.float32, order="F"),
               "other": np.zeros(4, second_dtype), "big": np.zeros_like(big)}
    msg.copy_all_into(targets)
    for name, expected in (("small", small), ("other", other), ("big", big)):
        np.testing.assert_array_equal(targets[name], expected)
    for wrong in (np.zeros(14, np.float32), np.zeros(16, np.float32)):  # cut, or broadcast
        with pytest.raises(ValueError):
            msg.copy_all_into({"small": wrong})
    one = protocol.decode([bytes(memoryview(f)) for f in protocol.encode(
        {"op": "push"}, [("w", np.ones(1, np.float32)), ("v", np.ones(3, np.float32))])])
    with pytest.raises(ValueError, match="'w' has 1 elements"):  # never broadcast
        one.copy_all_into({"w": np.zeros(5, np.float32)})


def test_small_tensors_are_packed_while_the_pack_frame_has_room(monkeypatch):
    monkeypatch.setattr(protocol, "PACK_BYTES", 32)
    monkeypatch.setattr(protocol, "FRAME_BYTES", 64)
    # 8 | 40 too big | 30 -> 32 padded (40 in all) | 20 -> 24 (64) | 12: full | 1: full
    assert protocol.pack_flags([8, 40, 30, 20, 12, 1]) == [True, False, True, True, False,
                                                           False]
    tensors = [(f"t{i}", np.zeros(n, np.uint8)) for i, n in enumerate([8, 40, 30, 20, 12, 1])]
    encoder = protocol.Encoder(tensors)
    assert encoder.layout.packed == ["t0", "t2", "t3"] and encoder.layout.pack_bytes == 64
    msg = protocol.decode([bytes(memoryview(f)) for f in encoder.encode(
        {"op": "push"}, [a for _, a in tensors])])
    assert [msg.tensor(n).size for n, _ in tensors] == [8, 40, 30, 20, 12, 1]


# ---------------------------------------------------------------- hostile declarations

HOSTILE_SPECS = [
    # An 89-byte push declaring 2**78 elements in 2**58 frames: nothing may be built for them.
    ([["w", "float32", [2**39, 2**39], 2**58]], "tensor_too_large", str(2**80)),
    ([["w", "float32", [2**39, 16], 2**22]], "tensor_too_large", "35184372088832"),
    ([["w", "float64", [2**39] * 32, 1]], "tensor_too_large", "bytes"),  # ~2**1250 bytes
    ([["w", "float32", [4], True]], "bad_spec", "nframes=True"),
    ([["w", "float32", [4], 1.0]], "bad_spec", "nframes=1.0"),
    ([["w", "float32", [4], -1]], "bad_spec", "nframes=-1"),
    ([["w", "float32", [True, 4], 1]], "bad_shape", "True"),
    ([["w", "float32", [4.0], 1]], "bad_shape", "4.0"),
]


@pytest.mark.parametrize("specs,reason,quoted", HOSTILE_SPECS)
def test_declared_sizes_are_checked_before_anything_is_allocated(specs, reason, quoted):
    import tracemalloc

    frames = _with_header(_frames(), tensors=specs)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError) as info:
            protocol.decode(frames, max_bytes=64 * 1024**2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.reason == reason
    assert quoted in str(info.value)
    assert peak < 1024**2, f"refusing the message allocated {peak} bytes"


def test_the_declared_total_of_several_tensors_is_checked_against_the_limit():
    specs = [["a", "uint8", [40], 1], ["b", "uint8", [40], 1]]
    frames = _with_header(_frames(), tensors=specs)
    with pytest.raises(ProtocolError) as info:
        protocol.decode([frames[0], b"\x00" * 40, b"\x00" * 40], max_bytes=64)
    assert info.value.reason == "tensor_too_large" and "80 bytes" in str(info.value)
    assert protocol.decode([frames[0], b"\x00" * 40, b"\x00" * 40], max_bytes=80).names == \
        ["a", "b"]


def test_a_cached_layout_is_still_checked_against_a_smaller_limit():
    frames = _frames([("w", np.zeros(1000, np.float32))])
    protocol.decode(frames)  # cached
    with pytest.raises(ProtocolError) as info:
        protocol.decode(frames, max_bytes=100)
    assert info.value.reason == "tensor_too_large"


def test_frame_counts_are_exact_integers_for_any_size():
    assert protocol.nframes_for(protocol.FRAME_BYTES * 2**60 + 1) == 2**60 + 1
    assert protocol.nframes_for(0) == 1 and protocol.nframes_for(protocol.FRAME_BYTES) == 1


@pytest.mark.parametrize("field,value,reason", [
    ("step", -5, "bad_field"), ("step", 2**64 - 1, "bad_field"), ("step", 2**63, "bad_field"),
    ("step", True, "bad_field"), ("epoch", -1, "bad_field"), ("sender", True, "bad_field"),
    ("req", False, "bad_field"), ("op", ["push"], "unknown_op"), ("op", {"a": 1}, "unknown_op"),
    ("op", b"push", "unknown_op"),
])
def test_header_fields_have_strict_types_and_ranges(field, value, reason):
    frames = _with_header(_frames(), **{field: value})
    with pytest.raises(ProtocolError) as info:
        protocol.decode(frames)
    assert info.value.reason == reason
    assert repr(value) in str(info.value)


def test_the_largest_step_is_accepted():
    assert protocol.decode(_with_header(_frames(), step=2**63 - 1)).header["step"] == 2**63 - 1


def test_a_rate_limited_log_says_how_many_lines_it_held_back(caplog):
    import logging

    now = [0.0]
    limited = transport.RateLimitedLog(logging.getLogger("distflow.test"), interval=10.0,
                                       clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="distflow.test")
    logged = [limited.warning("a", "flood %d", i) for i in range(100)]
    assert logged == [True] + [False] * 99
    assert limited.warning("b", "other kind")  # kinds are limited separately
    now[0] = 10.5
    assert limited.warning("a", "flood %d", 100)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["flood 0", "other kind", "flood 100 (99 more like this in the last 10 s)"]
