"""cifar10, cifar100, imdb, reuters and boston_housing against Keras's own loaders.

tests/goldens/datasets/ holds small files in the real formats (Keras's .npz
files, CIFAR's Python 2 pickles); tests/goldens/datasets.json holds what real
Keras's loaders returned for them (tools/make_goldens_extra.py).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from distflow.keras import datasets
from distflow.keras.datasets import DatasetNotFoundError, cifar10, cifar100

GOLDENS = Path(__file__).resolve().parent / "goldens"
FILES = GOLDENS / "datasets"
EXPECTED = json.loads((GOLDENS / "datasets.json").read_text())


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty home (so no real cache is read), offline, no DISTFLOW_DATA."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.delenv("DISTFLOW_DATA", raising=False)
    monkeypatch.setenv("DISTFLOW_OFFLINE", "1")
    return tmp_path / ".keras" / "datasets"


@pytest.mark.parametrize("case", EXPECTED["cases"],
                         ids=lambda c: f"{c['module']}-{'-'.join(map(str, c['kwargs'].values()))}")
def test_loader_returns_what_keras_returns(case, keras_home, monkeypatch):
    monkeypatch.setenv("DISTFLOW_DATA", str(FILES))
    module = getattr(datasets, case["module"])
    (x_train, y_train), (x_test, y_test) = module.load_data(**case["kwargs"])
    for got, want in ((x_train, case["x_train"]), (x_test, case["x_test"])):
        assert str(got.dtype) == case["x_dtype"]
        if got.dtype == object:
            assert [list(s) for s in got] == want
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert y_train.tolist() == case["y_train"] and y_test.tolist() == case["y_test"]
    assert str(y_train.dtype) == case["y_dtype"]


def test_cifar_batches_read_as_keras_reads_them():
    for case in EXPECTED["cifar_batches"]:
        data, labels = cifar10.load_batch(FILES / case["path"], label_key=case["label_key"])
        assert data.dtype == np.uint8
        np.testing.assert_array_equal(data, case["data"])
        assert list(labels) == case["labels"]


def test_cifar10_reads_keras_3_cache_layout(keras_home):
    target = keras_home / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    shutil.copytree(FILES / "cifar-10-batches-py", target)
    (x_train, y_train), (x_test, y_test) = cifar10.load_data()
    assert x_train.shape == (15, 32, 32, 3) and x_test.shape == (3, 32, 32, 3)
    assert y_train.shape == (15, 1) and y_train.dtype == np.uint8
    data, labels = cifar10.load_batch(target / "data_batch_2")
    np.testing.assert_array_equal(x_train[3:6], data.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(y_train[3:6, 0], labels)


def test_cifar100_reads_tf_keras_2_layout_with_coarse_labels(keras_home):
    shutil.copytree(FILES / "cifar-100-python", keras_home / "cifar-100-python")
    (x_train, y_train), _ = cifar100.load_data(label_mode="coarse")
    _, labels = cifar10.load_batch(keras_home / "cifar-100-python" / "train", "coarse_labels")
    assert x_train.shape == (3, 32, 32, 3) and y_train.dtype == np.int64
    assert y_train[:, 0].tolist() == labels
    with pytest.raises(ValueError, match="label_mode"):
        cifar100.load_data(label_mode="medium")


def test_missing_data_set_offline_says_where_it_looked_and_what_to_do(keras_home):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.imdb.load_data()
    message = str(info.value)
    assert "IMDB not found" in message and str(keras_home) in message
    assert "DISTFLOW_OFFLINE" in message and "imdb.npz" in message


def test_a_pickle_that_would_run_code_is_refused(tmp_path, keras_home):
    class Exploit:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))
    (tmp_path / "victim").mkdir()
    batch_dir = keras_home / "cifar-10-batches-py"
    shutil.copytree(FILES / "cifar-10-batches-py", batch_dir)
    (batch_dir / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=3))
    with pytest.raises(pickle.UnpicklingError, match="shutil.rmtree"):
        cifar10.load_data()
    assert (tmp_path / "victim").is_dir()


def test_imdb_rejects_unknown_keyword_arguments_as_keras_3(keras_home, monkeypatch):
    monkeypatch.setenv("DISTFLOW_DATA", str(FILES))
    with pytest.raises(TypeError, match="nb_words"):
        datasets.imdb.load_data(nb_words=10)
    assert len(datasets.reuters.get_label_names()) == 46
