"""distflow.data.Dataset: element order, epochs, shuffling, sharding, sizes, errors."""

import tracemalloc

import numpy as np
import pytest

import distflow as df
from distflow.data import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset, TensorSpec


def ints(dataset):
    return [int(v) for v in dataset]


def xy(n=10, features=3):
    x = np.arange(n * features, dtype=np.float32).reshape(n, features)
    y = np.arange(n, dtype=np.int64) * 10
    return x, y


# ---------------------------------------------------------------- sources and batching

def test_slices_yield_rows_in_order_with_structure_preserved():
    x, y = xy()
    rows = list(Dataset.from_tensor_slices((x, y)))
    assert len(rows) == 10
    for i, (xi, yi) in enumerate(rows):
        assert isinstance(xi, df.Tensor) and xi.dtype == np.float32  # as tf.data: tensors
        assert isinstance(xi.numpy(), np.ndarray)
        np.testing.assert_array_equal(xi, x[i])
        assert yi == y[i]
    first = next(iter(Dataset.from_tensor_slices({"image": x, "label": y})))
    assert set(first) == {"image", "label"}
    np.testing.assert_array_equal(first["image"], x[0])


def test_batch_matches_numpy_slices_and_keeps_remainder():
    x, y = xy(10)
    batches = list(Dataset.from_tensor_slices((x, y)).batch(4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    for k, (xb, yb) in enumerate(batches):
        np.testing.assert_array_equal(xb, x[4 * k:4 * k + 4])
        np.testing.assert_array_equal(yb, y[4 * k:4 * k + 4])


def test_batch_drop_remainder_and_cardinality():
    x, y = xy(10)
    ds = Dataset.from_tensor_slices((x, y))
    assert len(ds.batch(4)) == 3
    assert len(ds.batch(4, drop_remainder=True)) == 2
    assert [len(b[1]) for b in ds.batch(4, drop_remainder=True)] == [4, 4]
    assert ds.batch(4, drop_remainder=True).element_spec[0] == TensorSpec((4, 3), np.float32)
    assert ds.batch(4).element_spec[1] == TensorSpec((None,), np.int64)


def test_nested_and_dict_batches():
    x, y = xy(6)
    ds = Dataset.from_tensor_slices(((x, x * 2), {"label": y})).batch(3)
    (a, b), labels = next(iter(ds))
    np.testing.assert_array_equal(b, x[:3] * 2)
    np.testing.assert_array_equal(labels["label"], y[:3])


def test_range_from_tensors_and_lists():
    assert ints(Dataset.range(5)) == [0, 1, 2, 3, 4]
    assert ints(Dataset.range(2, 11, 3)) == [2, 5, 8]
    assert ints(Dataset.range(5, 0, -2)) == [5, 3, 1]
    assert len(Dataset.range(2, 11, 3)) == 3
    (only,) = list(Dataset.from_tensors(np.ones((2, 3))))
    assert only.shape == (2, 3)
    assert ints(Dataset.from_tensor_slices([4, 5, 6])) == [4, 5, 6]


def test_distflow_tensors_are_accepted():
    ds = Dataset.from_tensor_slices(df.constant(np.arange(6.0).reshape(3, 2)))
    np.testing.assert_array_equal(next(iter(ds.batch(3))), np.arange(6.0).reshape(3, 2))


def test_from_generator_runs_the_generator_each_epoch():
    calls = []

    def gen():
        calls.append(1)
        yield from range(3)

    ds = Dataset.from_generator(gen)
    assert ints(ds) == [0, 1, 2] and ints(ds) == [0, 1, 2]
    assert len(calls) == 2
    assert ds.cardinality() == UNKNOWN_CARDINALITY


# ---------------------------------------------------------------- shuffling and epochs

def test_full_shuffle_is_a_new_permutation_each_epoch_and_keeps_pairs():
    x, y = xy(50)
    ds = Dataset.from_tensor_slices((x, y)).shuffle(50, seed=3).batch(7)
    epochs = []
    for _ in range(3):
        xs, ys = zip(*ds)
        xs, ys = np.concatenate(xs), np.concatenate(ys)
        assert sorted(ys.tolist()) == y.tolist()
        np.testing.assert_array_equal(xs, x[ys // 10])  # rows stay with their labels
        epochs.append(ys.tolist())
    assert epochs[0] != epochs[1] != epochs[2]
    assert epochs[0] != y.tolist()


def test_same_seed_gives_the_same_epoch_sequence_and_other_seed_differs():
    def run(seed):
        ds = Dataset.range(40).shuffle(40, seed=seed)
        return [ints(ds) for _ in range(3)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_reshuffle_each_iteration_false_repeats_the_order():
    ds = Dataset.range(30).shuffle(30, seed=1, reshuffle_each_iteration=False)
    assert ints(ds) == ints(ds)


def test_seed_none_follows_the_global_seed():
    import distflow as df

    df.random.set_seed(123)
    first = ints(Dataset.range(30).shuffle(30))
    df.random.set_seed(123)
    assert ints(Dataset.range(30).shuffle(30)) == first
    df.random.set_seed(124)
    assert ints(Dataset.range(30).shuffle(30)) != first


def test_buffer_of_one_keeps_order():
    assert ints(Dataset.range(20).shuffle(1, seed=0)) == list(range(20))


@pytest.mark.parametrize("buffer_size", [2, 5])
def test_small_buffer_is_a_real_reservoir(buffer_size):
    n = 200
    for seed in range(5):
        out = ints(Dataset.range(n).shuffle(buffer_size, seed=seed))
        assert sorted(out) == list(range(n))
        # an element can only come out once it has entered the buffer
        assert all(value <= position + buffer_size - 1 for position, value in enumerate(out))
        assert out != list(range(n))
    # and it does reach that far: some element is emitted early by buffer_size - 1 slots
    outs = [ints(Dataset.range(n).shuffle(buffer_size, seed=s)) for s in range(5)]
    assert max(v - p for out in outs for p, v in enumerate(out)) == buffer_size - 1


def test_small_buffer_picks_a_uniform_slot():
    # Element 0 survives each output step with probability 1 - 1/5, so its output
    # position is geometric with mean 4 (standard error over 300 runs: about 0.26).
    positions = [ints(Dataset.range(60).shuffle(5, seed=s)).index(0) for s in range(300)]
    assert 3.0 < np.mean(positions) < 5.0


def test_small_buffer_on_an_element_pipeline_also_shuffles():
    ds = Dataset.range(100).filter(lambda v: v % 2 == 0).shuffle(4, seed=0)
    out = ints(ds)
    assert sorted(out) == list(range(0, 100, 2)) and out != sorted(out)
    assert all(value // 2 <= position + 3 for position, value in enumerate(out))


def test_full_shuffle_first_element_is_roughly_uniform():
    ds = Dataset.range(5).shuffle(5, seed=11)
    counts = np.bincount([ints(ds)[0] for _ in range(1000)], minlength=5)
    assert counts.min() > 140 and counts.max() < 260  # expected 200 each


def test_shuffle_then_repeat_reshuffles_each_pass():
    out = ints(Dataset.range(20).shuffle(20, seed=2).repeat(3))
    passes = [out[0:20], out[20:40], out[40:60]]
    assert all(sorted(p) == list(range(20)) for p in passes)
    assert passes[0] != passes[1] != passes[2]


# ---------------------------------------------------------------- sharding

def test_shard_takes_every_nth_element():
    assert ints(Dataset.range(10).shard(3, 0)) == [0, 3, 6, 9]
    assert ints(Dataset.range(10).shard(3, 2)) == [2, 5, 8]
    assert [len(Dataset.range(10).shard(3, i)) for i in range(3)] == [4, 3, 3]
    assert ints(Dataset.range(10).filter(lambda v: True).shard(3, 1)) == [1, 4, 7]


def test_shards_of_a_seeded_shuffle_partition_each_epoch():
    workers = [Dataset.range(64).shuffle(64, seed=5).shard(4, i).batch(4) for i in range(4)]
    for _ in range(2):
        seen = [v for ds in workers for batch in ds for v in batch.numpy().tolist()]
        assert sorted(seen) == list(range(64))


# ---------------------------------------------------------------- other transformations

def test_map_unpacks_tuples_and_filter_keeps_matches():
    x, y = xy(6)
    ds = Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a.sum(), b + 1))
    sums, labels = zip(*ds)
    np.testing.assert_allclose(sums, x.sum(axis=1))
    assert list(labels) == (y + 1).tolist()
    assert ints(Dataset.range(10).filter(lambda v: v % 3 == 0)) == [0, 3, 6, 9]
    dicts = Dataset.from_tensor_slices({"a": y}).map(lambda d: d["a"] * 2)
    assert ints(dicts) == (y * 2).tolist()


def test_map_after_batch_sees_whole_batches():
    x, _ = xy(8)
    ds = Dataset.from_tensor_slices(x).batch(4).map(lambda b: b.shape[0] * 100 + b[0, 0])
    assert [int(v) for v in ds] == [400 + x[0, 0], 400 + x[4, 0]]


def test_take_skip_repeat_and_cardinality():
    assert ints(Dataset.range(10).skip(3).take(4)) == [3, 4, 5, 6]
    assert ints(Dataset.range(3).repeat(2)) == [0, 1, 2, 0, 1, 2]
    assert ints(Dataset.range(3).repeat().take(7)) == [0, 1, 2, 0, 1, 2, 0]
    assert ints(Dataset.range(5).take(-1)) == list(range(5))
    assert ints(Dataset.range(5).skip(-1)) == []
    assert len(Dataset.range(10).skip(3).take(4)) == 4
    assert len(Dataset.range(10).skip(30)) == 0
    assert Dataset.range(3).repeat().cardinality() == INFINITE_CARDINALITY
    assert Dataset.range(3).repeat().take(5).cardinality() == 5
    assert Dataset.range(3).filter(bool).cardinality() == UNKNOWN_CARDINALITY
    assert ints(Dataset.range(3).batch(2).repeat(2).unbatch()) == [0, 1, 2, 0, 1, 2]


def test_repeat_forever_of_an_empty_dataset_ends():
    assert ints(Dataset.range(0).repeat()) == []
    assert ints(Dataset.range(4).filter(lambda v: v > 9).repeat()) == []


def test_len_of_infinite_or_unknown_dataset_raises():
    with pytest.raises(TypeError, match="infinite"):
        len(Dataset.range(3).repeat())
    with pytest.raises(TypeError, match="unknown"):
        len(Dataset.range(3).filter(bool))


def test_unbatch_zip_concatenate_prefetch_cache():
    x, y = xy(7)
    back = list(Dataset.from_tensor_slices((x, y)).batch(3).unbatch())
    np.testing.assert_array_equal(np.stack([a for a, _ in back]), x)
    pairs = list(Dataset.zip((Dataset.range(3), Dataset.range(10, 20))))
    assert [(int(a), int(b)) for a, b in pairs] == [(0, 10), (1, 11), (2, 12)]
    assert ints(Dataset.range(2).concatenate(Dataset.range(5, 7))) == [0, 1, 5, 6]
    assert ints(Dataset.range(4).prefetch(df.data.AUTOTUNE)) == [0, 1, 2, 3]
    calls = []
    cached = Dataset.range(3).map(lambda v: calls.append(1) or v).cache()
    assert ints(cached) == ints(cached) == [0, 1, 2]
    assert len(calls) == 3  # the second pass replayed the cache


def test_element_spec_of_a_map_does_not_consume_an_epoch():
    ds = Dataset.range(20).shuffle(20, seed=4)
    fresh = Dataset.range(20).shuffle(20, seed=4)
    reference = [ints(fresh) for _ in range(2)]
    spec = ds.map(lambda v: (v, np.float32(v))).element_spec
    assert spec == (TensorSpec((), np.int64), TensorSpec((), np.float32))
    assert [ints(ds) for _ in range(2)] == reference


# ---------------------------------------------------------------- memory

def test_iteration_does_not_copy_the_data_set():
    x = np.ones((20000, 100))  # 16 MB
    y = np.zeros(20000, np.int64)
    pipelines = {
        "shuffle+batch": Dataset.from_tensor_slices((x, y)).shuffle(20000, seed=0).batch(64),
        "elements": Dataset.from_tensor_slices((x, y)).shuffle(20000, seed=0),
        "shard+repeat": Dataset.from_tensor_slices((x, y)).shard(2, 1).repeat(2).batch(64),
    }
    for name, ds in pipelines.items():
        tracemalloc.start()
        try:
            rows = sum(len(np.atleast_1d(b)) for b in (element[1] for element in ds))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert rows > 0
        assert peak < 2 * 2**20, f"{name}: peak {peak / 2**20:.1f} MB for a 16 MB data set"


def test_batches_never_alias_the_source_writably():
    x, y = xy(12)
    original = x.copy()
    in_order = next(Dataset.from_tensor_slices((x, y)).batch(4).as_numpy_iterator())[0]
    assert not in_order.flags.writeable  # a view, so it must not be writable
    with pytest.raises(ValueError):
        in_order *= 2
    shuffled = next(Dataset.from_tensor_slices((x, y)).shuffle(12, seed=0).batch(4)
                    .as_numpy_iterator())[0]
    shuffled *= 2  # a fresh copy: writable, and the source is untouched
    np.testing.assert_array_equal(x, original)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8", None])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match=f"`batch_size` must be a positive int. "
                                         f"Received: batch_size={bad!r}"):
        Dataset.range(4).batch(bad)


def test_mismatched_first_dimensions_name_both_sizes():
    with pytest.raises(ValueError) as info:
        Dataset.from_tensor_slices((np.zeros((5, 2)), np.zeros(4)))
    message = str(info.value)
    assert "element[0] has 5 rows" in message and "element[1] has 4 rows" in message
    with pytest.raises(ValueError, match=r"\['y'\] has 2 rows"):
        Dataset.from_tensor_slices({"x": np.zeros(3), "y": np.zeros(2)})


def test_bad_sources():
    with pytest.raises(ValueError, match="shape \\(\\)"):
        Dataset.from_tensor_slices(np.float32(3))
    with pytest.raises(ValueError, match="Received: None"):
        Dataset.from_tensor_slices(None)
    with pytest.raises(ValueError, match="at least one array"):
        Dataset.from_tensor_slices(())


def test_bad_transformation_arguments():
    ds = Dataset.range(4)
    with pytest.raises(ValueError, match="buffer_size=0"):
        ds.shuffle(0)
    with pytest.raises(ValueError, match="seed=-1"):
        ds.shuffle(4, seed=-1)
    with pytest.raises(ValueError, match="index=2, num_shards=2"):
        ds.shard(2, 2)
    with pytest.raises(ValueError, match="num_shards=0"):
        ds.shard(0, 0)
    with pytest.raises(ValueError, match="count=-2"):
        ds.take(-2)
    with pytest.raises(ValueError, match="count=1.5"):
        ds.repeat(1.5)
    with pytest.raises(TypeError, match="`map_func` must be callable"):
        ds.map(3)
    with pytest.raises(ValueError, match="filename='x'"):
        ds.cache("x")


def test_errors_raised_while_iterating():
    with pytest.raises(ValueError, match="scalar boolean.*shape \\(2,\\)"):
        list(Dataset.range(3).filter(lambda v: np.array([True, False])))
    ragged = Dataset.range(1, 4).map(lambda n: np.zeros(int(n)))
    with pytest.raises(ValueError, match="different shapes.*\\(1,\\).*\\(2,\\)"):
        list(ragged.batch(3))
