"""Finding Keras's data set files (its cache layout) and reading them without unsafe pickle.

Search order for a file or directory Keras would cache as `<name>`:

1. `path=` when the loader takes one and it names an existing file;
2. `$DISTFLOW_DATA/<name>`;
3. Keras's cache, `$KERAS_HOME/datasets/<name>` (default `~/.keras/datasets/<name>`);
4. `~/.distflow/datasets/<name>`, then `/usr/share/datasets/<name>` (Debian's packages).

Each data set lists the names Keras 3 and tf.keras 2 used (e.g. CIFAR's
`cifar-10-batches-py-target/cifar-10-batches-py` and `cifar-10-batches-py`). When
none exists, the file is downloaded from Keras's origin into Keras's cache with
its published digest checked, unless `DISTFLOW_OFFLINE` is set; otherwise
`DatasetNotFoundError` lists every place searched and where to put the file.

Reading: CIFAR's batches are Python pickles and IMDB's / Reuters's `.npz`
arrays hold pickled object arrays, because that is how Keras's own files are
written. They are read from the user's disk with `RestrictedUnpickler`, which
allows only the globals that rebuild NumPy arrays (as Keras itself does); any
other global is refused, so a tampered file cannot run code. Nothing here
pickles over a network or into a checkpoint.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distflow.keras.datasets._files import (
    SYSTEM_DATA_DIR,
    DatasetNotFoundError,
    DownloadError,
    _download_file,
    _offline,
)

_ALLOWED_GLOBALS = frozenset({("numpy", "ndarray"), ("numpy", "dtype"),
                              ("numpy.core.multiarray", "_reconstruct"),
                              ("numpy._core.multiarray", "_reconstruct")})


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data and NumPy arrays only; any other global raises."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"Refusing to load `{module}.{name}` from a data set file: "
                                     "only NumPy arrays are allowed (the file may be corrupted "
                                     "or tampered with).")


def load_pickle(path: Path) -> Any:
    """A pickle file read with `RestrictedUnpickler` (Python 2 strings kept as bytes)."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, encoding="bytes").load()


def _read_npy(buffer: io.BytesIO) -> np.ndarray:
    try:
        return np.lib.format.read_array(buffer, allow_pickle=False)
    except ValueError:  # an object array: its data is a pickle stream after the header
        buffer.seek(0)
        version = np.lib.format.read_magic(buffer)
        if version[0] == 1:
            np.lib.format.read_array_header_1_0(buffer)
        elif version[0] in (2, 3):
            np.lib.format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"Unsupported .npy format version {version}.") from None
        return RestrictedUnpickler(buffer).load()


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """An `.npz` archive as a dict; object arrays go through `RestrictedUnpickler`."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as raw:
                    arrays[member[:-4]] = _read_npy(io.BytesIO(raw.read()))
    return arrays


@dataclass(frozen=True)
class KerasFile:
    """A data set as Keras caches it.

    Attributes:
        title: human name for messages.
        names: accepted names under a search root (Keras 3's first), files or directories.
        origin: Keras's download URL.
        file_hash: the digest Keras checks (SHA-256, or MD5 for 32 hex digits).
        archive: for tar.gz data sets, the directory Keras extracts into (names[0]'s parent).
    """

    title: str
    names: tuple[str, ...]
    origin: str
    file_hash: str
    archive: str | None = None


def keras_cache_dir() -> Path:
    """Keras's data set cache: `$KERAS_HOME/datasets`, by default `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".keras") / "datasets"


def _roots() -> list[tuple[str, Path]]:
    roots = []
    if os.environ.get("DISTFLOW_DATA"):
        roots.append(("$DISTFLOW_DATA", Path(os.environ["DISTFLOW_DATA"]).expanduser()))
    roots += [("Keras's cache", keras_cache_dir()),
              ("~/.distflow/datasets", Path.home() / ".distflow" / "datasets"),
              ("Debian's data sets", SYSTEM_DATA_DIR)]
    return roots


def locate(spec: KerasFile, path: str | os.PathLike | None = None) -> Path:
    """The data set's file or directory, downloading it into Keras's cache if need be.

    Raises:
        DatasetNotFoundError: not found anywhere and offline, or the download failed.
    """
    if path is not None and Path(path).expanduser().exists():
        return Path(path).expanduser()
    looked = []
    for label, root in _roots():
        for name in spec.names:
            if (root / name).exists():
                return root / name
        looked.append(f"  - {label}: {root}/{{{', '.join(spec.names)}}}")
    if _offline():
        reason = ("Not downloaded: downloads are disabled by DISTFLOW_OFFLINE="
                  f"{os.environ['DISTFLOW_OFFLINE']!r} (unset it to download).")
    else:
        try:
            return _download(spec)
        except (DownloadError, OSError, tarfile.TarError) as exc:
            reason = f"The download failed: {exc}"
    raise DatasetNotFoundError(
        f"{spec.title} not found. Looked in:\n" + "\n".join(looked) + f"\n{reason}\n"
        f"Download {spec.origin} and put it in {keras_cache_dir()} as Keras does "
        f"({keras_cache_dir() / spec.names[0]}{' extracted' if spec.archive else ''}), "
        "or in $DISTFLOW_DATA.")


def _download(spec: KerasFile) -> Path:
    cache = keras_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    if spec.archive is None:
        return _download_file([spec.origin], spec.file_hash, cache / spec.names[0])
    archive = _download_file([spec.origin], spec.file_hash, cache / f"{spec.archive}_archive")
    with tarfile.open(archive) as tar:
        tar.extractall(cache / spec.archive, filter="data")  # no links out, no absolute paths
    return cache / spec.names[0]
