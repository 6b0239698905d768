"""tf.sparse, tf.sets, tf.edit_distance and the other expression goldens of
tests/goldens/core/more.json (written by tools/make_goldens_core_more.py with real
TensorFlow 2.21), plus the behaviour goldens cannot hold: gradients through sparse
products, random flips, specs."""

import json

import numpy as np
import pytest
from golden_nest import GOLDENS, assert_same, decode

import distflow as tf
from distflow import test_util

SRC = json.loads((GOLDENS / "more.json").read_text())["src"]
VALUES = sorted(n for n, c in SRC.items() if "value" in c)
ERRORS = sorted(n for n, c in SRC.items() if "error" in c)


@pytest.mark.parametrize("name", VALUES)
def test_expression_matches_tensorflow(name):
    case = SRC[name]
    scope = {"tf": tf, "GOLDENS": str(GOLDENS)}  # PNG fixtures written by TF's encoder
    actual = eval(case["src"], scope)  # noqa: S307  (our own fixed case strings)
    assert_same(actual, decode(case["value"]), name, rtol=1e-5)


@pytest.mark.parametrize("name", ERRORS)
def test_refuses_what_tensorflow_refuses(name):
    case = SRC[name]
    with pytest.raises(Exception) as info:  # noqa: PT011  (the class is the golden)
        eval(case["src"], {"tf": tf})  # noqa: S307
    assert type(info.value).__name__ == case["error"], (name, info.value)


def test_sparse_dense_matmul_differentiates_values_and_the_dense_operand():
    idx = [[0, 1], [1, 0], [2, 3]]

    def f(values, dense):
        return tf.sparse.sparse_dense_matmul(tf.sparse.SparseTensor(idx, values, [3, 4]), dense)

    rng = np.random.default_rng(0)
    test_util.check_grads(f, [rng.normal(size=3), rng.normal(size=(4, 2))])


def test_sparse_structure_ops_keep_value_gradients():
    def f(values):
        st = tf.sparse.SparseTensor([[2, 0], [0, 3], [0, 1]], values, [3, 4])
        moved = tf.sparse.transpose(tf.sparse.reorder(st))
        return tf.sparse.to_dense(moved) * np.arange(12.0).reshape(4, 3)

    test_util.check_grads(f, [np.array([1.0, -2.0, 0.5])])


def test_sparse_tensor_spec_describes_a_sparse_tensor():
    st = tf.SparseTensor([[0, 1]], [1.5], [2, 3])
    spec = tf.SparseTensorSpec.from_value(st)
    assert spec == tf.SparseTensorSpec([2, 3], tf.float32)
    assert spec.is_compatible_with(st)
    assert tf.SparseTensorSpec([None, 3], tf.float32).is_compatible_with(spec)
    assert not spec.is_compatible_with(tf.constant([[1.0, 2.0, 3.0]]))
    assert spec.value_type is tf.SparseTensor


def test_a_sparse_tensor_rejects_values_that_do_not_match_the_indices():
    with pytest.raises(ValueError, match="one value per index row"):
        tf.SparseTensor([[0, 0], [1, 1]], [1.0], [2, 2])


@pytest.mark.parametrize("flip,axis", [(tf.image.random_flip_left_right, 2),
                                       (tf.image.random_flip_up_down, 1)])
def test_random_flips_flip_whole_images_about_half_the_time(flip, axis):
    images = np.random.default_rng(1).uniform(size=(64, 3, 4, 2)).astype("float32")
    out = flip(images, seed=7).numpy()
    flipped = [np.array_equal(o, np.flip(i, axis - 1)) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image is one or the other
    assert 16 < sum(flipped) < 48
    np.testing.assert_array_equal(flip(images, seed=7).numpy(), out)  # the seed fixes it


class Meters:
    def __init__(self, values):
        self.values = values


def test_a_registered_conversion_lets_every_op_take_the_type():
    tf.register_tensor_conversion_function(
        Meters, lambda value, dtype=None, name=None, as_ref=False: tf.constant(value.values))
    np.testing.assert_allclose(tf.reduce_sum(Meters([1.0, 2.5])).numpy(), 3.5)
    np.testing.assert_allclose(tf.convert_to_tensor(Meters([[1.0]])).numpy(), [[1.0]])
    with pytest.raises(TypeError, match="Python numbers"):
        tf.register_tensor_conversion_function(list, lambda value, **kw: None)


def test_indexed_slices_convert_with_their_gradient():
    v = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    with tf.GradientTape() as tape:
        dense = tf.convert_to_tensor(tf.IndexedSlices(v * 2.0, [2, 2], [3, 2]))
        y = tf.reduce_sum(dense * np.arange(6.0, dtype="float32").reshape(3, 2))
    np.testing.assert_allclose(tape.gradient(y, v).numpy(), [[8.0, 10.0], [8.0, 10.0]])
    spec = tf.type_spec_from_value(tf.IndexedSlices(v, [0, 1], [4, 2]))
    assert spec == tf.IndexedSlicesSpec([4, 2], tf.float32)


def test_specs_of_none_and_tensor_arrays():
    assert tf.type_spec_from_value(None) == tf.NoneTensorSpec()
    assert tf.NoneTensorSpec().is_compatible_with(None)
    ta = tf.TensorArray(tf.float32, size=2, element_shape=[3])
    spec = tf.type_spec_from_value(ta)
    assert spec == tf.TensorArraySpec([3], tf.float32)
    assert spec.is_compatible_with(ta)
    assert not spec.is_compatible_with(tf.TensorArray(tf.int32, size=1))


def test_a_wav_file_round_trips_through_the_file_system(tmp_path):
    audio = np.linspace(-1.0, 0.99, 40, dtype="float32").reshape(20, 2)
    path = str(tmp_path / "clip.wav")
    tf.io.write_file(path, tf.audio.encode_wav(audio, 22050))
    decoded, rate = tf.audio.decode_wav(tf.io.read_file(path))
    assert int(rate) == 22050
    np.testing.assert_allclose(decoded.numpy(), audio, atol=1 / 32768)


def test_string_constants_are_arrays_of_bytes():
    text = tf.constant([["a", "bé"]])
    assert text.dtype == object and text.tolist() == [[b"a", "bé".encode()]]
    assert tf.constant("x", tf.string).tolist() == b"x"
    assert tf.strings.length(text).numpy().tolist() == [[1, 3]]


def test_a_vocabulary_file_initializes_a_table(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("apple\t3\nbanana\t5\ncherry\t7\n")
    by_line = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
        str(path), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
        tf.lookup.TextFileIndex.LINE_NUMBER), -1)
    assert by_line.lookup(["banana\t5", "kiwi"]).numpy().tolist() == [1, -1]
    columns = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
        str(path), tf.string, 0, tf.int64, 1, delimiter="\t"), 0)
    assert columns.lookup(tf.constant(["cherry", "apple", "x"])).numpy().tolist() == [7, 3, 0]
    assert int(columns.size()) == 3


def test_ragged_to_tensor_passes_gradients_to_the_values():
    def f(values):
        rt = tf.RaggedTensor.from_row_lengths(values, [2, 0, 1])
        return rt.to_tensor(default_value=-1.0, shape=[3, 1]) * np.array([[2.0], [3.0], [5.0]])

    test_util.check_grads(f, [np.array([1.0, -2.0, 0.5])])


def test_ragged_tensor_spec_and_rows():
    rt = tf.ragged.constant([[1.0, 2.0], [3.0]])
    spec = tf.RaggedTensorSpec.from_value(rt)
    assert spec == tf.RaggedTensorSpec([2, None], tf.float32, 1)
    assert spec.is_compatible_with(rt) and spec.ragged_rank == 1
    assert rt.to_list() == [[1.0, 2.0], [3.0]] and len(rt) == 2
    assert [r.tolist() for r in rt.numpy()] == [[1.0, 2.0], [3.0]]


def test_unique_candidate_sampling_draws_distinct_classes_with_consistent_expectations():
    sampled, true_exp, sampled_exp = tf.random.log_uniform_candidate_sampler(
        [[0], [7]], 1, 8, True, 20, seed=3)
    ids = sampled.numpy()
    assert len(set(ids.tolist())) == 8 and ids.min() >= 0 and ids.max() < 20
    c = np.arange(20.0)
    p = np.log((c + 2) / (c + 1)) / np.log(21.0)
    tries = np.log1p(-sampled_exp.numpy()) / np.log1p(-p[ids])  # the same count for every id
    assert np.allclose(tries, tries[0], rtol=1e-4) and tries[0] >= 8
    np.testing.assert_allclose(true_exp.numpy()[:, 0], -np.expm1(tries[0] * np.log1p(-p[[0, 7]])),
                               rtol=1e-4)
    again = tf.random.log_uniform_candidate_sampler([[0], [7]], 1, 8, True, 20, seed=3)[0]
    np.testing.assert_array_equal(again.numpy(), ids)


def test_tridiagonal_eigenvalues_differentiate_through_the_dense_matrix():
    def f(alpha, beta):
        return tf.linalg.eigh_tridiagonal(alpha, beta) * np.array([1.0, -2.0, 0.5])

    test_util.check_grads(f, [np.array([1.0, 2.0, 3.5]), np.array([0.5, -0.3])])


def test_resize_refuses_antialiased_shrinking_it_cannot_match():
    images = np.zeros((1, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match="antialias"):
        tf.image.resize(images, [4, 4], antialias=True)
    assert tf.image.resize(images, [16, 12], antialias=True).shape == (1, 16, 12, 1)


def _chunk(kind, body):
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def test_a_palette_png_expands_to_its_colours_with_transparency():
    import struct
    import zlib

    index = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    rows = np.concatenate([np.zeros((2, 1), np.uint8), index], axis=1)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 3, 0, 0, 0))
            + _chunk(b"PLTE", palette.tobytes()) + _chunk(b"tRNS", bytes([10, 20]))
            + _chunk(b"IDAT", zlib.compress(rows.tobytes())) + _chunk(b"IEND", b""))
    pixels = tf.io.decode_png(data).numpy()
    alpha = np.array([10, 20, 255], np.uint8)
    np.testing.assert_array_equal(pixels, np.concatenate([palette, alpha[:, None]], 1)[index])
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_png(b"not a png")
