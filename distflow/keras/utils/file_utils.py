"""`keras.utils.get_file`: a file downloaded once into Keras's cache, checked by its hash."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

from distflow.keras.datasets._files import _fetch
from distflow.keras.datasets._keras_cache import keras_cache_dir
from distflow.keras.utils.io_utils import print_msg


def get_file(fname: str | None = None, origin: str | None = None, untar: bool = False,
             md5_hash: str | None = None, file_hash: str | None = None,
             cache_subdir: str = "datasets", hash_algorithm: str = "auto",
             extract: bool = False, archive_format: str = "auto", cache_dir: Any = None,
             force_download: bool = False) -> str:
    """Downloads `origin` into `cache_dir/cache_subdir` unless it is already there.

    Keras's layout and rules: `cache_dir` defaults to `$KERAS_HOME` or `~/.keras`; a
    cached file whose hash differs from `file_hash` is downloaded again; with
    `extract` (or `untar`) the archive is unpacked into `<fname>_extracted` (or
    `<fname>` when the name has no extension) and that directory is returned.

    Args:
        fname: the file name in the cache (default: the last part of the URL's path).
        origin: the URL (http, https, ftp or file).
        untar: extract a tar archive (tf.keras 2's name of `extract=True`).
        md5_hash: the MD5 digest (tf.keras 2's name of `file_hash`).
        file_hash: the expected SHA-256 or MD5 hex digest.
        cache_subdir: the subdirectory of `cache_dir`.
        hash_algorithm: "sha256", "md5" or "auto" (MD5 for 32 hex digits).
        extract: unpack a tar or zip archive.
        archive_format: "auto", "tar", "zip" or a list of them.
        cache_dir: the cache's root.
        force_download: download even when a valid file is cached.

    Returns:
        The path of the file (or of the extraction directory).

    Raises:
        ValueError: without `origin`, for a path as `fname`, or when the downloaded
            file's hash differs from `file_hash`.
        OSError: when the download fails (offline, HTTP error), naming the URL and
            the path to put the file at by hand.
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    datadir = _datadir(cache_dir, cache_subdir)
    provided = fname is not None
    fname = os.fspath(fname) if provided else os.path.basename(urllib.parse.urlsplit(origin).path)
    if not fname:
        raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'. "
                         "Please specify the `fname` argument.")
    if os.sep in fname:
        raise ValueError("Paths are no longer accepted as the `fname` argument. To specify the "
                         f"file's parent directory, use the `cache_dir` argument. Received: "
                         f"fname={fname}")
    target, extraction_dir = _targets(datadir, fname, provided, extract or untar)
    if force_download or not target.exists() or (
            file_hash is not None and not validate_file(target, file_hash, hash_algorithm)):
        _download(origin, target, file_hash, hash_algorithm)
    if extract or untar:
        _extract(target, extraction_dir, "tar" if untar else archive_format)
        return str(extraction_dir)
    return str(target)


def _datadir(cache_dir: Any, cache_subdir: str) -> Path:
    base = Path(cache_dir).expanduser() if cache_dir is not None else keras_cache_dir().parent
    if not os.access(base, os.W_OK) and base.exists():
        base = Path(tempfile.gettempdir()) / ".keras"
    datadir = base / cache_subdir
    datadir.mkdir(parents=True, exist_ok=True)
    return datadir


def _targets(datadir: Path, fname: str, provided: bool, extract: bool) -> tuple[Path, Path]:
    if not extract:
        return datadir / fname, datadir / fname
    if provided and "." in fname:
        return datadir / fname, datadir / f"{fname[:fname.find('.')]}_extracted"
    return datadir / f"{fname}_archive", datadir / fname


def _download(origin: str, target: Path, file_hash: str | None, algorithm: str) -> None:
    print_msg(f"Downloading data from {origin}")
    partial = target.with_name(f"{target.name}.part{os.getpid()}")
    try:
        _fetch(origin, partial)
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise OSError(f"URL fetch failure on {origin}: {type(exc).__name__}: {exc}. When "
                      f"offline, download the file elsewhere and put it at {target}.") from None
    if file_hash is not None and not validate_file(partial, file_hash, algorithm):
        partial.unlink()
        raise ValueError("Incomplete or corrupted file detected. The "
                         f"{_algorithm(file_hash, algorithm)} file hash does not match the "
                         f"provided value of {file_hash}.")
    os.replace(partial, target)


def _algorithm(file_hash: str, algorithm: str) -> str:
    if algorithm == "auto":
        return "md5" if len(file_hash) == 32 else "sha256"
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f"`hash_algorithm` must be 'sha256', 'md5' or 'auto'. Received: "
                         f"hash_algorithm={algorithm!r}")
    return algorithm


def validate_file(fpath: Any, file_hash: str, algorithm: str = "auto") -> bool:
    """Whether the file's SHA-256 (or MD5) hex digest is `file_hash`."""
    digest = hashlib.new(_algorithm(file_hash, algorithm))
    with open(fpath, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest() == str(file_hash)


def _extract(archive: Path, into: Path, archive_format: Any) -> None:
    formats = ["tar", "zip"] if archive_format == "auto" else (
        [archive_format] if isinstance(archive_format, str) else list(archive_format))
    for kind in formats:
        if kind == "tar" and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                _unpack(lambda d: tar.extractall(d, filter="data"), into)
            return
        if kind == "zip" and zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _unpack(zf.extractall, into)
            return
    raise ValueError(f"Could not extract {archive}: not a {' or '.join(formats)} archive.")


def _unpack(extract_all: Any, into: Path) -> None:
    try:
        extract_all(into)
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise
