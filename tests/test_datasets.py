"""keras.datasets (IDX files written here, search order, downloads from a loopback
HTTP server, damaged files) and keras.utils."""

import gzip
import hashlib
import http.server
import random
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import distflow as df
from distflow import keras
from distflow.keras import utils
from distflow.keras.datasets import (
    DatasetNotFoundError,
    IdxFormatError,
    _files,
    _mnist_like,
    fashion_mnist,
    load_synthetic,
    mnist,
    read_idx,
)

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
              np.float32: 0x0D, np.float64: 0x0E}
NAMES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def idx_bytes(array):
    """The IDX encoding of `array`, written out by hand from the format description."""
    array = np.asarray(array)
    header = bytes([0, 0, TYPE_CODES[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data, compress):
    path = Path(str(path) + ".gz") if compress else Path(path)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def make_set(directory, seed=0, n_train=6, n_test=4, compress=True):
    """Writes a small MNIST-shaped data set; returns its arrays by split name."""
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for key, base in NAMES.items():
        write(directory / base, idx_bytes(arrays[key]), compress)
    return arrays


def assert_loaded(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for got, key in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"),
                     (y_test, "y_test")):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A fake HOME, no DISTFLOW_DATA, offline, and a private 'system' directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DISTFLOW_DATA", raising=False)
    monkeypatch.setenv("DISTFLOW_OFFLINE", "1")
    monkeypatch.setattr(_files, "SYSTEM_DATA_DIR", tmp_path / "system")
    return tmp_path


# ---------------------------------------------------------------- reading IDX files

@pytest.mark.parametrize("compress", [True, False])
def test_load_from_path_gzip_and_raw(env, compress):
    arrays = make_set(env / "data", compress=compress)
    assert_loaded(fashion_mnist.load_data(path=env / "data"), arrays)
    assert_loaded(mnist.load_data(path=str(env / "data")), arrays)


def test_mixed_compression_and_dotted_names(env):
    arrays = make_set(env / "data", compress=True)
    raw = (env / "data" / "t10k-images-idx3-ubyte.gz").read_bytes()
    (env / "data" / "t10k-images-idx3-ubyte.gz").unlink()
    (env / "data" / "t10k-images.idx3-ubyte").write_bytes(gzip.decompress(raw))
    assert_loaded(mnist.load_data(path=env / "data"), arrays)


def test_loaded_arrays_are_writable_copies(env):
    make_set(env / "data")
    (x_train, _), _ = mnist.load_data(path=env / "data")
    x_train[0, 0, 0] = 7  # Keras users normalise in place
    assert x_train[0, 0, 0] == 7


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64, np.int8])
def test_read_idx_other_types(tmp_path, dtype):
    values = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write(tmp_path / "values", idx_bytes(values), compress=False)
    result = read_idx(path)
    assert result.dtype == dtype and result.dtype.isnative
    np.testing.assert_array_equal(result, values)


# ---------------------------------------------------------------- search order

def test_search_order(env, monkeypatch):
    monkeypatch.setenv("DISTFLOW_DATA", str(env / "shared"))
    places = {"path": env / "given", "env": env / "shared" / "fashion-mnist",
              "cache": env / "home" / ".distflow" / "datasets" / "fashion-mnist",
              "system": env / "system" / "fashion-mnist"}
    arrays = {key: make_set(place, seed=i) for i, (key, place) in enumerate(places.items())}
    assert_loaded(fashion_mnist.load_data(path=places["path"]), arrays["path"])
    assert_loaded(fashion_mnist.load_data(), arrays["env"])
    monkeypatch.delenv("DISTFLOW_DATA")
    assert_loaded(fashion_mnist.load_data(), arrays["cache"])
    for file in places["cache"].iterdir():
        file.unlink()
    assert_loaded(fashion_mnist.load_data(), arrays["system"])


def test_env_var_may_point_at_the_files_and_path_at_a_parent(env, monkeypatch):
    arrays = make_set(env / "flat")
    monkeypatch.setenv("DISTFLOW_DATA", str(env / "flat"))
    assert_loaded(mnist.load_data(), arrays)
    nested = make_set(env / "parent" / "mnist", seed=4)
    assert_loaded(mnist.load_data(path=env / "parent"), nested)


def test_incomplete_directory_is_skipped(env, monkeypatch):
    make_set(env / "given")
    (env / "given" / "t10k-labels-idx1-ubyte.gz").unlink()
    arrays = make_set(env / "home" / ".distflow" / "datasets" / "mnist", seed=2)
    assert_loaded(mnist.load_data(path=env / "given"), arrays)


def test_not_found_offline_lists_every_place(env, monkeypatch):
    monkeypatch.setenv("DISTFLOW_DATA", str(env / "shared"))
    make_set(env / "given")
    (env / "given" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        fashion_mnist.load_data(path=env / "given")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for place in (env / "given", env / "shared" / "fashion-mnist", env / "shared",
                  env / "home" / ".distflow" / "datasets" / "fashion-mnist",
                  env / "system" / "fashion-mnist"):
        assert str(place) in message
    assert "missing train-labels-idx1-ubyte[.gz]" in message
    assert "DISTFLOW_OFFLINE" in message and "t10k-images-idx3-ubyte.gz" in message
    assert "fashion-mnist.s3" in message  # where to get the files


# ---------------------------------------------------------------- damaged files

def damage_cases():
    good_images = idx_bytes(np.zeros((6, 28, 28), np.uint8))
    return {
        "bad magic": (b"\x01\x02" + good_images[2:], False, "bad magic number"),
        "unknown type": (b"\x00\x00\x07\x03" + good_images[4:], False, "bad magic number"),
        "short header": (good_images[:2], False, "too short"),
        "dims cut": (good_images[:10], False, "truncated header"),
        "data cut": (good_images[:-100], False, "truncated"),
        "data cut gz": (good_images[:-1], True, "truncated"),
        "trailing bytes": (good_images + b"\x00" * 3, False, "3 unexpected bytes"),
        "gzip cut": (gzip.compress(good_images)[:-30], None, "broken gzip"),
        "gzip garbage": (b"\x1f\x8b" + b"\x55" * 200, None, "broken gzip"),
        "wrong dtype": (idx_bytes(np.zeros((6, 28, 28), np.int32)), False, "expected uint8"),
        "wrong size": (idx_bytes(np.zeros((6, 27, 28), np.uint8)), False, "\\(N, 28, 28\\)"),
    }


@pytest.mark.parametrize("case", list(damage_cases()))
def test_damaged_images_file_is_named_in_the_error(env, case):
    data, compress, expected = damage_cases()[case]
    make_set(env / "data")
    target = env / "data" / "train-images-idx3-ubyte.gz"
    target.unlink()
    if compress is None:  # already gzip bytes (damaged)
        target.write_bytes(data)
    else:
        target = write(env / "data" / "train-images-idx3-ubyte", data, compress)
    with pytest.raises(IdxFormatError, match=expected) as info:
        mnist.load_data(path=env / "data")
    assert str(target) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_label_count_must_match_image_count(env):
    make_set(env / "data", n_train=6)
    labels = env / "data" / "train-labels-idx1-ubyte.gz"
    write(env / "data" / "train-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8)), True)
    with pytest.raises(IdxFormatError, match="5 labels for the 6 images") as info:
        mnist.load_data(path=env / "data")
    assert str(labels) in str(info.value)


# ---------------------------------------------------------------- downloads (loopback only)

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields (root dir, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: QuietHandler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def published(root, name="tiny"):
    arrays = make_set(root / name, seed=9)
    sha = {base: hashlib.sha256((root / name / f"{base}.gz").read_bytes()).hexdigest()
           for base in NAMES.values()}
    return arrays, sha


def test_download_into_cache_with_checksums(env, monkeypatch, http_root):
    root, url = http_root
    arrays, sha = published(root)
    monkeypatch.delenv("DISTFLOW_OFFLINE")
    spec = _files.DatasetFiles("tiny", "Tiny", sha, (f"{url}missing/", f"{url}tiny/"))
    assert_loaded(_mnist_like.load(spec, None), arrays)
    cache = env / "home" / ".distflow" / "datasets" / "tiny"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{b}.gz" for b in NAMES.values())
    for file in (root / "tiny").iterdir():  # the second load must not need the server
        file.unlink()
    assert_loaded(_mnist_like.load(spec, None), arrays)


def test_checksum_mismatch_leaves_nothing_behind(env, monkeypatch, http_root):
    root, url = http_root
    _, sha = published(root)
    sha["t10k-images-idx3-ubyte"] = "0" * 64
    monkeypatch.delenv("DISTFLOW_OFFLINE")
    spec = _files.DatasetFiles("tiny", "Tiny", sha, (f"{url}tiny/",))
    with pytest.raises(DatasetNotFoundError, match="SHA-256 [0-9a-f]{64} differs") as info:
        _mnist_like.load(spec, None)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)
    cache = env / "home" / ".distflow" / "datasets" / "tiny"
    assert not (cache / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in cache.iterdir() if ".part" in p.name]


def test_unreachable_mirror_is_reported(env, monkeypatch, http_root):
    root, url = http_root
    _, sha = published(root)
    monkeypatch.delenv("DISTFLOW_OFFLINE")
    spec = _files.DatasetFiles("tiny", "Tiny", sha, (f"{url}nothing-here/",))
    with pytest.raises(DatasetNotFoundError, match="download failed.*404"):
        _mnist_like.load(spec, None)


def test_published_checksums_are_sha256_hex():
    for spec in (mnist.FILES, fashion_mnist.FILES):
        assert set(spec.sha256) == set(NAMES.values())
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in spec.sha256.values())


# ---------------------------------------------------------------- synthetic stand-in

def test_synthetic_shapes_determinism_and_balance():
    (x, y), (xt, yt) = load_synthetic(num_train=500, num_test=200, seed=3)
    assert x.shape == (500, 28, 28) and xt.shape == (200, 28, 28)
    assert x.dtype == y.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == [50] * 10
    (x2, y2), _ = load_synthetic(num_train=500, num_test=200, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    (x3, _), _ = load_synthetic(num_train=500, num_test=200, seed=4)
    assert not np.array_equal(x, x3)
    assert keras.datasets.fashion_mnist.load_synthetic is load_synthetic


def test_synthetic_is_learnable_across_seeds():
    (x, y), _ = load_synthetic(num_train=2000, num_test=10, seed=0)
    _, (xt, yt) = load_synthetic(num_train=10, num_test=500, seed=1)
    features = x.reshape(len(x), -1) / 255.0
    means = np.stack([features[y == c].mean(axis=0) for c in range(10)])
    test = xt.reshape(len(xt), -1) / 255.0
    predicted = np.argmin(((test[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (predicted == yt).mean() > 0.5  # chance is 0.1


def test_synthetic_bad_size():
    with pytest.raises(ValueError, match="num_train=0"):
        load_synthetic(num_train=0)


# ---------------------------------------------------------------- keras.utils

def test_to_categorical_matches_identity_rows():
    labels = np.array([2, 0, 1, 2])
    np.testing.assert_array_equal(utils.to_categorical(labels), np.eye(3)[labels])
    one_hot = utils.to_categorical(labels, num_classes=5, dtype="int32")
    assert one_hot.shape == (4, 5) and one_hot.dtype == np.int32
    assert utils.to_categorical(labels.reshape(4, 1)).shape == (4, 3)
    assert utils.to_categorical(labels.reshape(2, 2)).shape == (2, 2, 3)
    np.testing.assert_array_equal(utils.to_categorical([1.0, 0.0]), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(utils.to_categorical(df.constant([1, 0])), [[0, 1], [1, 0]])


@pytest.mark.parametrize("labels, num_classes, pattern", [
    ([0, 3], 3, "\\[0, 3\\). Received: label 3"),
    ([-1, 0], 3, "label -1"),
    ([0.5, 1.0], None, "integer class labels"),
    ([0, 1], 0, "num_classes=0"),
])
def test_to_categorical_errors(labels, num_classes, pattern):
    with pytest.raises(ValueError, match=pattern):
        utils.to_categorical(labels, num_classes=num_classes)


def test_set_random_seed_makes_every_generator_repeat():
    def draw():
        return (random.random(), np.random.rand(), df.random.normal([3]).numpy().tolist(),
                [int(v) for v in df.data.Dataset.range(20).shuffle(20)])

    utils.set_random_seed(42)
    first = draw()
    utils.set_random_seed(42)
    assert draw() == first
    utils.set_random_seed(43)
    assert draw() != first
    with pytest.raises(ValueError, match="seed=-1"):
        utils.set_random_seed(-1)


def test_normalize_rows():
    out = utils.normalize([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
