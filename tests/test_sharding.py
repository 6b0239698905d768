"""Sharding: deterministic byte-balanced placement, row splitting, and the same
training result through 1, 2 or 3 real servers."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
from test_ps_server import SGD, make_server

from distflow.distribute import sharding
from distflow.distribute.client import PSClient

pytestmark = pytest.mark.timeout(60)

MB = 1024 * 1024


def _placement_json(specs, shards, **kw):
    placement = sharding.place(specs, shards, **kw)
    return json.dumps([[p.key, p.var, p.start, p.stop, list(p.shape), p.dtype, p.shard, p.split]
                       for p in placement.pieces])


MODEL = [("conv/kernel", (3, 3, 1, 32), "float32"), ("conv/bias", (32,), "float32"),
         ("dense/kernel", (1568, 128), "float32"), ("dense/bias", (128,), "float32"),
         ("out/kernel", (128, 10), "float32"), ("out/bias", (10,), "float32"),
         ("embed", (5000, 64), "float64"), ("count", (1,), "int64")]


def test_placement_does_not_depend_on_input_order():
    expected = _placement_json(MODEL, 3)
    for seed in range(5):
        shuffled = MODEL[:]
        random.Random(seed).shuffle(shuffled)
        assert _placement_json(shuffled, 3) == expected


def test_every_process_computes_the_same_placement():
    code = ("import json, sys; from test_sharding import _placement_json, MODEL; "
            "print(_placement_json(MODEL, 3))")
    outputs = set()
    for hash_seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed,
               "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), *sys.path])}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=60, check=True)
        outputs.add(done.stdout.strip())
    assert outputs == {_placement_json(MODEL, 3)}


def test_greedy_largest_first_goes_to_the_least_loaded_shard():
    # bytes: a=400, b=240, c=200, d=160 (float32 rows of 10 values)
    specs = [("d", (4, 10), "float32"), ("b", (6, 10), "float32"),
             ("a", (10, 10), "float32"), ("c", (5, 10), "float32")]
    placement = sharding.place(specs, 2, split=False)
    shard_of = {p.var: p.shard for p in placement.pieces}
    # By hand: a -> 0 (0 vs 0, lowest id); b -> 1; c -> 1 (240 < 400); d -> 0 (400 < 440).
    assert shard_of == {"a": 0, "b": 1, "c": 1, "d": 0}
    assert placement.shard_bytes() == [560, 440]
    assert [p.var for p in placement.pieces] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_loads_differ_by_at_most_the_largest_piece(shards):
    rng = np.random.default_rng(shards)
    specs = [(f"v{i}", (int(rng.integers(1, 300)), int(rng.integers(1, 50))), "float32")
             for i in range(40)]
    placement = sharding.place(specs, shards, split=False)
    loads = placement.shard_bytes()
    largest = max(p.nbytes for p in placement.pieces)
    assert max(loads) - min(loads) <= largest
    assert sum(loads) == sum(np.prod(s) * 4 for _, s, _ in specs)
    assert sorted(p.var for p in placement.pieces) == sorted(n for n, _, _ in specs)


def test_a_large_variable_is_split_by_rows_into_contiguous_ranges():
    specs = [("big", (1001, 1024), "float32"), ("small", (10, 10), "float32")]
    placement = sharding.place(specs, 3)
    pieces = placement.for_var("big")
    assert len(pieces) == 3 and {p.shard for p in pieces} == {0, 1, 2}
    assert [(p.start, p.stop) for p in pieces] == [(0, 334), (334, 668), (668, 1001)]
    assert all(p.split and p.shape == (p.stop - p.start, 1024) for p in pieces)
    assert [p.key for p in pieces] == ["big[0:334]", "big[334:668]", "big[668:1001]"]
    assert placement.for_var("small")[0].split is False
    array = np.arange(1001 * 1024, dtype=np.float32).reshape(1001, 1024)
    joined = np.concatenate([p.view(array) for p in pieces])
    np.testing.assert_array_equal(joined, array)
    assert all(np.shares_memory(p.view(array), array) for p in pieces)


def test_splitting_respects_the_threshold_and_can_be_disabled():
    specs = [("w", (4096, 256), "float32")]  # 4 MB
    assert len(sharding.place(specs, 2, split=False).pieces) == 1
    assert len(sharding.place(specs, 4, split_bytes=2 * MB).pieces) == 2
    assert len(sharding.place(specs, 4, split_bytes=8 * MB).pieces) == 1
    assert len(sharding.place([("row", (1, 2 * MB), "float32")], 4).pieces) == 1  # one row
    assert len(sharding.place([("s", (), "float32")], 4).pieces) == 1


@pytest.mark.parametrize("bad,message", [(0, "num_shards=0"), (1.5, "num_shards=1.5")])
def test_bad_shard_counts_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        sharding.place(MODEL, bad)


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="'w'"):
        sharding.place([("w", (2,), "float32"), ("w", (3,), "float32")], 2)


def _model_params():
    rng = np.random.default_rng(0)
    return {"dense/kernel": rng.standard_normal((1200, 300)).astype(np.float32),  # 1.4 MB
            "dense/bias": rng.standard_normal(300).astype(np.float32),
            "out/kernel": rng.standard_normal((300, 10)).astype(np.float32),
            "out/bias": rng.standard_normal(10).astype(np.float32)}


def _train_through(num_servers: int, mode: str, steps: int = 4):
    servers = [make_server(mode=mode, num_workers=2) for _ in range(num_servers)]
    addrs = [s.address for s in servers]
    clients = [PSClient(addrs, worker_id=i, timeout=20) for i in range(2)]
    try:
        for c in clients:
            c.init(_model_params(), SGD)
        from test_ps_server import run_in_threads

        for step in range(steps):
            grads = [{n: np.random.default_rng(10 * step + i).standard_normal(p.shape)
                      .astype(np.float32) for n, p in _model_params().items()} for i in range(2)]
            if mode == "sync":
                results = run_in_threads([lambda c=c, g=g: c.push_pull(g)
                                          for c, g in zip(clients, grads, strict=True)])
            else:
                results = [c.push_pull(g) for c, g in zip(clients, grads, strict=True)]
        pieces = {n: len(clients[0].variables.pieces_of(n)) for n in _model_params()}
        return results, pieces
    finally:
        for c in clients:
            c.close()
        for s in servers:
            s.stop()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_two_or_three_servers_give_the_same_result_as_one(mode):
    reference, _ = _train_through(1, mode)
    for num_servers in (2, 3):
        results, pieces = _train_through(num_servers, mode)
        assert pieces["dense/kernel"] == 2  # 1.4 MB, cut at the 1 MB minimum: 2 pieces
        for got, want in zip(results, reference, strict=True):
            for name in want:
                assert got[name].tobytes() == want[name].tobytes(), (num_servers, name)
