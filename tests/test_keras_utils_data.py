"""Files and data sets of `keras.utils`: `*_dataset_from_directory` against Keras 3
(tests/goldens/directory_datasets.json over the files in tests/goldens/utils_files/,
both written by tools/make_goldens_utils.py), `get_file` over a real local HTTP server,
`PyDataset` in `fit`, and the PNG codec."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from distflow import keras, png

GOLDENS = Path(__file__).parent / "goldens"
FILES = GOLDENS / "utils_files"
GOLDEN = json.loads((GOLDENS / "directory_datasets.json").read_text())
FUNCTIONS = {"image": keras.utils.image_dataset_from_directory,
             "text": keras.utils.text_dataset_from_directory,
             "audio": keras.utils.audio_dataset_from_directory}
FOLDERS = {"image": "images", "text": "texts", "audio": "audio"}


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"{c['kind']}-{c['kwargs']}")
def test_directory_dataset_matches_keras(case, capsys):
    kwargs = dict(case["kwargs"])
    if "image_size" in kwargs:
        kwargs["image_size"] = tuple(kwargs["image_size"])
    ds = FUNCTIONS[case["kind"]](str(FILES / FOLDERS[case["kind"]]), **kwargs)
    assert ds.class_names == case["class_names"]
    if case["file_paths"]:
        assert [p.split("utils_files/")[1] for p in ds.file_paths] == case["file_paths"]
    batches = list(ds.as_numpy_iterator())
    assert [np.shape(b[1]) for b in batches] == [np.shape(b["labels"]) for b in case["batches"]]
    if kwargs.get("batch_size", 32) is None:  # single elements (texts in the fixture)
        got = [(np.asarray(x).item().decode(), np.asarray(y).tolist()) for x, y in batches]
        want = [(b["inputs"][0], b["labels"]) for b in case["batches"]]
    else:
        got, want = _samples(batches, case["kind"]), _samples(
            [(b["inputs"], b["labels"]) for b in case["batches"]], case["kind"])
    if kwargs.get("shuffle", True):
        # Keras's pipeline shuffles again within a buffer with TensorFlow's generator,
        # which is not reproduced: the same samples, in another order.
        got, want = sorted(got, key=_key), sorted(want, key=_key)
    for (inputs, label), (want_inputs, want_label) in zip(got, want):
        assert label == want_label
        if case["kind"] == "text":
            assert inputs == want_inputs
        else:
            np.testing.assert_allclose(inputs, want_inputs, rtol=1e-5, atol=1e-4)
    assert "Found 7 files belonging to 2 classes." in capsys.readouterr().out


def _samples(batches, kind):
    """(inputs, label) per sample; texts decoded, arrays as float32."""
    out = []
    for inputs, labels in batches:
        labels = np.asarray(labels).tolist()
        items = np.atleast_1d(inputs) if kind == "text" else np.asarray(inputs, np.float32)
        out += [(x.decode() if isinstance(x, bytes) else x, y) for x, y in zip(items, labels)]
    return out


def _key(sample):
    inputs, label = sample
    return (str(label), inputs if isinstance(inputs, str) else float(np.sum(inputs)))


def test_directory_datasets_subsets_and_errors(tmp_path):
    images = str(FILES / "images")
    train, val = keras.utils.image_dataset_from_directory(
        images, image_size=(5, 5), validation_split=0.3, subset="both", seed=2, verbose=False)
    assert len(train.file_paths) + len(val.file_paths) == 7 and len(val.file_paths) == 2
    assert not set(train.file_paths) & set(val.file_paths)
    with pytest.raises(ValueError, match="seed"):
        keras.utils.image_dataset_from_directory(images, validation_split=0.3, subset="both")
    with pytest.raises(ValueError, match="class_names"):
        keras.utils.image_dataset_from_directory(images, class_names=["cats", "birds"])
    with pytest.raises(ValueError, match="exactly 2"):
        keras.utils.text_dataset_from_directory(str(FILES / "texts"), label_mode="binary",
                                                class_names=["neg"], verbose=False)
    unlabeled = keras.utils.text_dataset_from_directory(str(FILES / "texts"), labels=None,
                                                        shuffle=False, verbose=False)
    assert len(next(iter(unlabeled.as_numpy_iterator()))) == 7
    with pytest.raises(ValueError, match="sampling_rate"):
        keras.utils.audio_dataset_from_directory(str(FILES / "audio"), sampling_rate=8000)
    with pytest.raises(ValueError, match="existing directory"):
        keras.utils.image_dataset_from_directory(str(tmp_path / "missing"))


def test_a_jpeg_needs_pillow(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 not decodable without Pillow")
    ds = keras.utils.image_dataset_from_directory(str(tmp_path), image_size=(2, 2),
                                                  verbose=False)
    try:
        from PIL import Image
    except ImportError:
        with pytest.raises(ImportError, match="pip install pillow"):
            list(ds.as_numpy_iterator())
        return
    with pytest.raises(OSError):  # Pillow's errors for a corrupt file
        list(ds.as_numpy_iterator())
    good = tmp_path / "good" / "a"
    good.mkdir(parents=True)
    Image.fromarray(np.full((4, 6, 3), (200, 40, 90), np.uint8)).save(good / "y.jpg")
    images, labels = next(keras.utils.image_dataset_from_directory(
        str(tmp_path / "good"), image_size=(4, 6), verbose=False).as_numpy_iterator())
    assert images.shape == (1, 4, 6, 3) and labels.tolist() == [0]
    np.testing.assert_allclose(images[0], np.full((4, 6, 3), (200, 40, 90)), atol=4)


def test_png_codec_round_trips_every_channel_count():
    rng = np.random.default_rng(4)
    for shape in ((3, 4), (3, 4, 1), (5, 2, 3), (2, 6, 4)):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        decoded = png.decode_png(png.encode_png(pixels))
        np.testing.assert_array_equal(decoded, pixels.reshape(decoded.shape))
    with pytest.raises(ValueError, match="signature"):
        png.decode_png(b"GIF89a")
    with pytest.raises(ValueError, match="uint8"):
        png.encode_png(np.zeros((2, 2), np.float32))


def test_wav_files_are_read_as_tf_decode_wav(tmp_path):
    from distflow.keras.utils.directory_datasets import read_wav

    samples = np.array([[0, 16384], [-32768, 32767]], np.int16)
    with wave.open(str(tmp_path / "s.wav"), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(8000)
        f.writeframes(samples.tobytes())
    np.testing.assert_allclose(read_wav(str(tmp_path / "s.wav")), samples / 32768.0)
    (tmp_path / "bad.wav").write_bytes(b"RIFF junk")
    with pytest.raises(ValueError, match="PCM WAV"):
        read_wav(str(tmp_path / "bad.wav"))


# ------------------------------------------------------------------ get_file


class _Files(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    _Files.requests = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_get_file_downloads_once_and_checks_the_hash(http_root, tmp_path):
    root, url = http_root
    (root / "data.bin").write_bytes(b"payload" * 100)
    digest = hashlib.sha256(b"payload" * 100).hexdigest()
    cache = tmp_path / "cache"
    path = keras.utils.get_file(origin=f"{url}/data.bin", file_hash=digest, cache_dir=cache)
    assert path == str(cache / "datasets" / "data.bin")
    assert Path(path).read_bytes() == b"payload" * 100
    again = keras.utils.get_file("data.bin", f"{url}/data.bin", file_hash=digest,
                                 cache_dir=cache)
    assert again == path and _Files.requests == ["/data.bin"]  # served from the cache
    Path(path).write_bytes(b"stale")  # a wrong cached file is fetched again
    keras.utils.get_file(origin=f"{url}/data.bin", file_hash=digest, cache_dir=cache)
    assert len(_Files.requests) == 2 and Path(path).read_bytes() == b"payload" * 100
    md5 = hashlib.md5(b"payload" * 100).hexdigest()
    keras.utils.get_file("copy.bin", f"{url}/data.bin", md5_hash=md5, cache_dir=cache,
                         cache_subdir="other")
    assert (cache / "other" / "copy.bin").exists()
    with pytest.raises(ValueError, match="hash does not match"):
        keras.utils.get_file("bad.bin", f"{url}/data.bin", file_hash="0" * 64,
                             cache_dir=cache)
    assert not (cache / "datasets" / "bad.bin").exists()


def test_get_file_extracts_archives_and_explains_failures(http_root, tmp_path):
    root, url = http_root
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner/a.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    (root / "pack.tar.gz").write_bytes(buffer.getvalue())
    out = keras.utils.get_file("pack.tar.gz", f"{url}/pack.tar.gz", extract=True,
                               cache_dir=tmp_path)
    assert out == str(tmp_path / "datasets" / "pack_extracted")
    assert (Path(out) / "inner" / "a.txt").read_text() == "hello"
    with pytest.raises(OSError, match="missing.bin") as err:
        keras.utils.get_file(origin=f"{url}/missing.bin", cache_dir=tmp_path)
    assert "put it at" in str(err.value)
    with pytest.raises(ValueError, match="origin"):
        keras.utils.get_file("x")
    with pytest.raises(ValueError, match="cache_dir"):
        keras.utils.get_file(os.path.join("a", "b"), f"{url}/x")


# ------------------------------------------------------------------ PyDataset


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_fit_trains_on_a_py_dataset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    data = _Batches(x, y, 8, workers=2)
    assert data.num_batches == 5 and data.workers == 2 and len(data) == 5
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    history = model.fit(data, epochs=4, verbose=0)
    assert data.epochs_ended == 4
    assert history.history["loss"][-1] < history.history["loss"][0] / 4
    assert issubclass(_Batches, keras.utils.Sequence)
    assert model.evaluate(data, verbose=0) < history.history["loss"][0]
    assert data.epochs_ended == 5


def test_a_py_dataset_without_len_is_endless():
    class Endless(keras.utils.PyDataset):
        def __getitem__(self, index):
            return np.full((2, 1), index, np.float32)

    endless = Endless()
    assert endless.num_batches is None and endless.cardinality() == -2
    assert [float(b[0, 0]) for b in endless.take(3).as_numpy_iterator()] == [0.0, 1.0, 2.0]
