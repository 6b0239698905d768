"""`distflow.nest` against `tf.nest`'s documented behaviour (the examples of TF 2.21's
API reference for flatten, pack_sequence_as, map_structure and assert_same_structure),
and the one dict-order rule where the tape and the datasets use it."""

import collections
import json

import numpy as np
import pytest

import distflow as df
from distflow import nest
from distflow.data import Dataset

Point = collections.namedtuple("Point", "x y")


def test_flatten_follows_tf_nest_examples():
    assert nest.flatten({"key3": "value3", "key1": "value1", "key2": "value2"}) == [
        "value1", "value2", "value3"]
    assert nest.flatten(None) == [None]
    assert nest.flatten("hello") == ["hello"]
    assert nest.flatten([[1, 2], (3, [4, {"b": 6, "a": 5}])]) == [1, 2, 3, 4, 5, 6]
    assert nest.flatten(Point(x=[1], y=2)) == [1, 2]
    array = np.arange(3)
    assert nest.flatten(array)[0] is array  # arrays and tensors are leaves


def test_pack_sequence_as_follows_tf_nest_examples():
    structure = {"key3": "", "key1": "", "key2": ""}
    packed = nest.pack_sequence_as(structure, ["value1", "value2", "value3"])
    assert packed == {"key3": "value3", "key1": "value1", "key2": "value2"}
    assert list(packed) == ["key3", "key1", "key2"]  # the structure's key order is kept
    structure = (("a", "b"), ("c", "d", "e"), "f")
    assert nest.pack_sequence_as(structure, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == (
        (1.0, 2.0), (3.0, 4.0, 5.0), 6.0)
    assert nest.pack_sequence_as(Point(0, [0]), [1, 2]) == Point(1, [2])
    assert nest.pack_sequence_as("leaf", [7]) == 7


@pytest.mark.parametrize("flat", [[1], [1, 2, 3]])
def test_pack_sequence_as_refuses_a_wrong_number_of_leaves(flat):
    with pytest.raises(ValueError, match="leaves"):
        nest.pack_sequence_as([0, 0], flat)


def test_map_structure_follows_tf_nest_examples():
    assert nest.map_structure(lambda p: p * 2, {"hello": 24, "world": 76}) == {
        "hello": 48, "world": 152}
    assert nest.map_structure(lambda a, b: a + b, ((1, 2), {"k": 3}), ((10, 20), {"k": 30})) == (
        (11, 22), {"k": 33})


def test_assert_same_structure_raises_as_tf_does():
    nest.assert_same_structure((0, [1]), ("a", ["b"]))
    with pytest.raises(ValueError, match="same nested structure"):
        nest.assert_same_structure([0, 1], [0, [1]])
    with pytest.raises(TypeError, match="sequence type"):
        nest.assert_same_structure((0, 1), [0, 1])
    nest.assert_same_structure((0, 1), [0, 1], check_types=False)
    with pytest.raises(ValueError, match="keys"):
        nest.assert_same_structure({"a": 1}, {"b": 1})


def test_flatten_with_path_names_each_leaf():
    assert nest.flatten_with_path({"b": [1, 2], "a": 3}) == [
        (("a",), 3), (("b", 0), 1), (("b", 1), 2)]


def test_data_rule_keeps_lists_as_leaves():
    assert nest.flatten(([1, 2], {"b": 3, "a": [4]}), leaf_lists=True) == [[1, 2], [4], 3]


def test_tape_gradient_of_a_dict_of_sources_uses_the_rule():
    a, b = df.Variable(2.0, name="nest_a"), df.Variable(3.0, name="nest_b")
    with df.GradientTape() as tape:
        loss = a * 10.0 + b
    grads = tape.gradient(loss, {"b": b, "a": a})
    assert list(grads) == ["b", "a"]
    assert (float(grads["a"].numpy()), float(grads["b"].numpy())) == (10.0, 1.0)


def test_dataset_dict_elements_flatten_in_sorted_key_order():
    ds = Dataset.from_tensor_slices({"b": np.arange(3), "a": np.arange(3) * 10.0})
    element = next(iter(ds.as_numpy_iterator()))
    assert list(element) == ["b", "a"] and element["a"] == 0.0
    padded = Dataset.from_generator(lambda: iter([{"y": [1], "x": [1.0, 2.0]}]),
                                    output_signature={"y": df.data.TensorSpec((None,), np.int64),
                                                      "x": df.data.TensorSpec((None,),
                                                                              np.float32)})
    batch = next(iter(padded.padded_batch(1, padding_values={"x": -1.0, "y": 7})
                      .as_numpy_iterator()))
    assert batch["x"].dtype == np.float32 and batch["y"].dtype == np.int64


def test_load_reads_a_dataset_saved_with_insertion_ordered_dict_keys(tmp_path):
    # The layout `save` wrote before dict keys were sorted: keys and leaves as inserted.
    np.savez(tmp_path / "elements-00000.npz", e0_l0=np.array(1), e0_l1=np.array([2.0, 3.0]))
    (tmp_path / "dataset_spec.json").write_text(json.dumps({
        "format": "distflow.dataset", "version": 1, "count": 1,
        "structure": {"kind": "dict", "keys": ["z", "a"], "children": [None, None]}}))
    (element,) = Dataset.load(str(tmp_path)).as_numpy_iterator()
    assert element["z"] == 1 and element["a"].tolist() == [2.0, 3.0]


def test_save_load_round_trip_of_unsorted_dict_elements(tmp_path):
    ds = Dataset.from_tensor_slices({"z": np.arange(2), "a": np.arange(2) * 5})
    ds.save(str(tmp_path))
    loaded = list(Dataset.load(str(tmp_path)).as_numpy_iterator())
    assert [(int(e["z"]), int(e["a"])) for e in loaded] == [(0, 0), (1, 5)]
