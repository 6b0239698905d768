"""The tf.data API beyond the basics: pipelines compared element by element with TensorFlow
2.21 (tests/goldens/core/data.json, written by tools/make_goldens_core.py: each case is
Python source run with `tf` bound to TensorFlow there and to distflow here), plus files,
save/load, options and auto-sharding, from_generator typing, threads, and tensors."""

import gzip
import threading

import numpy as np
import pytest
from golden_nest import assert_same, decode, load

import distflow as tf
from distflow.data import AutoShardPolicy, Dataset, Options, auto_shard

GOLDENS = load("data")
same = assert_same


@pytest.mark.parametrize("name", sorted(n for n, c in GOLDENS.items() if "elements" in c))
def test_pipeline_elements_match_tensorflow(name):
    case = GOLDENS[name]
    got = list(eval(case["src"]).as_numpy_iterator())  # noqa: S307  (fixed case strings)
    want = decode(case["elements"])
    assert len(got) == len(want), f"{name}: {len(got)} elements, TF gives {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        same(g, w, f"{name} element {i}")


@pytest.mark.parametrize("name", sorted(n for n, c in GOLDENS.items() if "value" in c))
def test_reductions_and_cardinality_match_tensorflow(name):
    case = GOLDENS[name]
    value = eval(case["src"])  # noqa: S307
    value = [v.numpy() for v in value] if isinstance(value, tuple) else value
    same(value.numpy() if isinstance(value, tf.Tensor) else value, decode(case["value"]), name)


def test_elements_are_tensors_and_numpy_accepts_them():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = np.array([0, 1, 0])
    for xb, yb in Dataset.from_tensor_slices((x, y)).batch(2):
        assert isinstance(xb, tf.Tensor) and isinstance(xb.numpy(), np.ndarray)
        np.testing.assert_array_equal(np.square(xb), xb.numpy() ** 2)
        assert np.concatenate([xb, xb]).shape[0] == 2 * len(xb) and yb.dtype == np.int64
    seen = []
    Dataset.range(3).map(lambda v: seen.append(type(v)) or v).reduce(0, lambda s, v: s)
    assert seen == [tf.Tensor] * 3


def test_model_fit_still_reads_tensor_elements():
    from distflow import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    y = (x.sum(1, keepdims=True) > 0).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    history = model.fit(Dataset.from_tensor_slices((x, y)).batch(8).prefetch(2), epochs=2,
                        verbose=0)
    assert len(history.history["loss"]) == 2


def test_text_line_dataset_list_files_and_file_sharding(tmp_path):
    for i in range(4):
        (tmp_path / f"f{i}.txt").write_bytes(f"a{i}\nb{i}\r\n".encode())
    with gzip.open(tmp_path / "z.txt.gz", "wb") as f:
        f.write(b"g1\ng2\n")
    files = Dataset.list_files(str(tmp_path / "*.txt"), shuffle=False)
    assert [bytes(f).endswith(b"f0.txt") for f in files.as_numpy_iterator()][0]
    lines = tf.data.TextLineDataset([str(tmp_path / "f0.txt"), str(tmp_path / "f1.txt")])
    assert list(lines.as_numpy_iterator()) == [b"a0", b"b0", b"a1", b"b1"]
    gz = tf.data.TextLineDataset(str(tmp_path / "z.txt.gz"), compression_type="GZIP")
    assert list(gz.as_numpy_iterator()) == [b"g1", b"g2"]
    shuffled = Dataset.list_files(str(tmp_path / "*.txt"), seed=1)
    assert sorted(shuffled.as_numpy_iterator()) == sorted(files.as_numpy_iterator())
    with pytest.raises(ValueError, match="No files matched"):
        Dataset.list_files(str(tmp_path / "*.csv"))
    with pytest.raises(FileNotFoundError):
        tf.data.TextLineDataset(str(tmp_path / "missing.txt"))

    names = sorted(str(p) for p in tmp_path.glob("f*.txt"))
    by_file = tf.data.TextLineDataset(names).map(lambda line: line).with_options(
        _policy(AutoShardPolicy.FILE))
    worker1 = list(auto_shard(by_file, 2, 1).as_numpy_iterator())
    assert worker1 == [b"a1", b"b1", b"a3", b"b3"]
    with pytest.raises(ValueError, match="file-based"):
        auto_shard(Dataset.range(4).with_options(_policy(AutoShardPolicy.FILE)), 2, 0)


def _policy(policy):
    options = Options()
    options.experimental_distribute.auto_shard_policy = policy
    return options


def test_auto_shard_policies_off_data_auto():
    ds = Dataset.range(8)
    off = ds.with_options(_policy(AutoShardPolicy.OFF))
    assert list(auto_shard(off, 4, 1).as_numpy_iterator()) == list(range(8))
    data = ds.batch(2).with_options(_policy(AutoShardPolicy.DATA))
    assert [b.tolist() for b in auto_shard(data, 2, 1).as_numpy_iterator()] == [[2, 3], [6, 7]]
    assert list(auto_shard(ds, 4, 3).as_numpy_iterator()) == [3, 7]
    assert off.map(lambda v: v).options().experimental_distribute.auto_shard_policy == \
        AutoShardPolicy.OFF
    merged = off.with_options(Options(deterministic=False)).options()
    assert merged.deterministic is False
    assert merged.experimental_distribute.auto_shard_policy == AutoShardPolicy.OFF
    with pytest.raises(TypeError, match="Options"):
        ds.with_options({"deterministic": False})


def test_save_and_load_round_trip_structures(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    ds = Dataset.from_tensor_slices({"x": x, "y": np.arange(6)}).batch(4)
    ds.save(str(tmp_path / "saved"))
    loaded = Dataset.load(str(tmp_path / "saved"))
    assert loaded.cardinality() == 2
    for a, b in zip(ds.as_numpy_iterator(), loaded.as_numpy_iterator()):
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["y"], b["y"])
    assert not list(tmp_path.glob("saved/*.pkl"))
    with pytest.raises(FileNotFoundError, match="No saved dataset"):
        Dataset.load(str(tmp_path / "nothing"))


def test_from_generator_types_shapes_signature_and_args():
    ds = Dataset.from_generator(lambda n: iter(range(int(n))), output_types=tf.int32,
                                args=(3,))
    assert [v.dtype for v in ds.as_numpy_iterator()] == [np.int32] * 3
    sig = Dataset.from_generator(lambda: iter([np.ones(2), np.ones(3)]),
                                 output_signature=tf.data.TensorSpec((None,), np.float32))
    assert [v.shape for v in sig.as_numpy_iterator()] == [(2,), (3,)]
    assert sig.element_spec.dtype == np.float32
    bad = Dataset.from_generator(lambda: iter([np.ones(3)]), output_types=np.float32,
                                 output_shapes=(2,))
    with pytest.raises(TypeError, match="shape"):
        list(bad)
    with pytest.raises(TypeError, match="not both"):
        Dataset.from_generator(lambda: iter([]), output_types=np.float32,
                               output_signature=tf.data.TensorSpec((), np.float32))


def test_prefetch_runs_the_pipeline_in_another_thread_and_reraises_errors():
    threads = []
    ds = Dataset.range(4).map(lambda v: threads.append(threading.current_thread().name) or v)
    assert list(ds.prefetch(2).as_numpy_iterator()) == [0, 1, 2, 3]
    assert set(threads) == {"distflow-prefetch"}

    def boom(v):
        if int(v) == 2:
            raise ValueError("element 2 is bad")
        return v

    it = Dataset.range(4).map(boom).prefetch(1).as_numpy_iterator()
    assert [next(it), next(it)] == [0, 1]
    with pytest.raises(ValueError, match="element 2"):
        next(it)


def test_parallel_map_uses_threads_and_keeps_order():
    names = set()

    def f(v):
        names.add(threading.current_thread().name)
        return v * 2

    out = list(Dataset.range(50).map(f, num_parallel_calls=4).as_numpy_iterator())
    assert out == [2 * i for i in range(50)]
    assert all(n.startswith("distflow-map") for n in names)
    with pytest.raises(ValueError, match="num_parallel_calls"):
        Dataset.range(3).map(f, num_parallel_calls=0)


def test_misc_methods():
    assert Dataset.range(3).apply(lambda d: d.map(lambda v: v + 1)).reduce(
        np.int64(0), lambda s, v: s + v).numpy() == 6
    assert list(Dataset.range(5).window(2).flat_map(lambda w: w).as_numpy_iterator()) == \
        list(range(5))
    with pytest.raises(ValueError, match="exactly one"):
        Dataset.range(3).get_single_element()
    sample = Dataset.sample_from_datasets([Dataset.range(0, 5), Dataset.range(100, 105)],
                                          weights=[0.5, 0.5], seed=3)
    assert sorted(sample.as_numpy_iterator()) == list(range(5)) + list(range(100, 105))
    r = list(Dataset.random(seed=4).take(3).as_numpy_iterator())
    assert r == list(Dataset.random(seed=4).take(3).as_numpy_iterator()) and len(set(r)) == 3
    with pytest.raises(ValueError, match="window_size"):
        Dataset.range(3).group_by_window(lambda v: v, lambda k, d: d)
    with pytest.raises(ValueError, match="bucket_batch_sizes"):
        Dataset.range(3).bucket_by_sequence_length(lambda v: v, [2], [1])
    assert list(Dataset.range(5).map(lambda v: 1 // (v - 2)).ignore_errors()
                .as_numpy_iterator()) == [-1, -1, 1, 0]


def test_reduce_and_scan_state_must_keep_its_dtype():
    with pytest.raises(TypeError, match="different dtypes: int32 and int64"):
        Dataset.range(3).reduce(0, lambda s, v: s + v)  # int32 state, int64 elements (TF too)
    with pytest.raises(TypeError, match="must match the initial state"):
        list(Dataset.range(3).scan(0.0, lambda s, v: (v, v)))
    assert int(Dataset.range(4).reduce(np.int64(0), lambda s, v: s + v)) == 6


def test_snapshot_writes_the_first_pass_and_replays_it(tmp_path):
    calls = []
    ds = Dataset.range(4).map(lambda v: calls.append(1) or v * 10).snapshot(str(tmp_path / "s"))
    assert list(ds.as_numpy_iterator()) == [0, 10, 20, 30] and len(calls) == 4
    assert list(ds.as_numpy_iterator()) == [0, 10, 20, 30] and len(calls) == 4
    again = Dataset.range(4).map(lambda v: calls.append(1) or v).snapshot(str(tmp_path / "s"))
    assert list(again.as_numpy_iterator()) == [0, 10, 20, 30] and len(calls) == 4


def test_string_elements_have_numpy_like_tf_string_tensors(tmp_path):
    (tmp_path / "a.txt").write_bytes("héllo\nworld\n".encode())
    lines = [line.numpy().decode() for line in tf.data.TextLineDataset(str(tmp_path / "a.txt"))]
    assert lines == ["héllo", "world"]
    batch = next(iter(tf.data.TextLineDataset(str(tmp_path / "a.txt")).batch(2)))
    assert batch.numpy().tolist() == ["héllo".encode(), b"world"]
