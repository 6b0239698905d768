"""The bytes of Keras's files: Keras 3's `.keras` zip archive and HDF5 (`.h5`) files.

A Keras 3 archive holds `metadata.json` (`keras_version`, `date_saved`), `config.json`
(the model in Keras 3's config format, `saving_config`) and `model.weights.h5` (the
weights in Keras 3's layout, `saving_h5`). This module reads and writes those members and
opens HDF5 files with clear errors; what they mean is in `saving_config` and `saving_h5`.
Files are written atomically and get the user's umask (`serialization.atomic_write`).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
import zlib
from typing import Any

from distflow import serialization
from distflow.keras import saving_h5

__all__ = ["KERAS_VERSION", "open_h5", "read_archive", "write_archive", "write_weights"]

KERAS_VERSION = "3.15.1"  # the Keras 3 release whose layout these files follow
CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error,
               json.JSONDecodeError, UnicodeDecodeError)


def _h5py() -> Any:
    import h5py

    return h5py


def _distflow_version() -> str:
    try:
        from importlib.metadata import version

        return version("distflow")
    except Exception:  # noqa: BLE001 - running from a checkout, not installed
        return "unknown"


def weights_bytes(model: Any, include_optimizer: bool) -> bytes:
    """`model`'s weights (and optimizer state) as a Keras 3 `.weights.h5` file's bytes."""
    buffer = io.BytesIO()
    with _h5py().File(buffer, "w") as h5:
        saving_h5.write_keras_weights(model, h5, include_optimizer)
    return buffer.getvalue()


def write_weights(model: Any, path: str) -> None:
    """Writes `model`'s weights to a Keras 3 `*.weights.h5` file (atomically)."""
    data = weights_bytes(model, include_optimizer=False)
    serialization.atomic_write(path, lambda f: f.write(data))


def write_archive(path: str, config: dict[str, Any], model: Any,
                  include_optimizer: bool) -> None:
    """Writes the `.keras` archive of `model` with `config` (Keras 3's format) as config.json."""
    now = datetime.datetime.now()
    members = {
        METADATA: json.dumps({"keras_version": KERAS_VERSION,
                              "date_saved": now.strftime("%Y-%m-%d@%H:%M:%S"),
                              "distflow_version": _distflow_version()}).encode(),
        CONFIG: json.dumps(config).encode(),
        WEIGHTS: weights_bytes(model, include_optimizer)}

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w") as archive:
            for name, data in members.items():
                method = zipfile.ZIP_STORED if name == WEIGHTS else zipfile.ZIP_DEFLATED
                archive.writestr(name, data, compress_type=method)

    serialization.atomic_write(path, write)


def read_archive(path: str) -> tuple[dict, dict, Any]:
    """(metadata, config, open h5py file of the weights) of a Keras 3 `.keras` file.

    Raises:
        ValueError: a member is missing, or the file is truncated or corrupt.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [m for m in (METADATA, CONFIG, WEIGHTS) if m not in archive.namelist()]
            if missing:
                raise ValueError(f"'{path}' is not a complete .keras file: missing {missing}.")
            metadata = json.loads(archive.read(METADATA))
            config = json.loads(archive.read(CONFIG))
            weights = archive.read(WEIGHTS)
    except (*_ZIP_ERRORS, OSError) as exc:
        raise ValueError(f"Cannot load '{path}': it is not a valid .keras file (truncated or "
                         f"corrupt: {exc}). Save the model again.") from None
    return metadata, config, open_h5(io.BytesIO(weights), f"'{path}' (model.weights.h5)")


def open_h5(source: Any, label: str) -> Any:
    """`h5py.File(source, "r")`, raising a clear ValueError for a damaged file."""
    if isinstance(source, str | os.PathLike) and not os.path.isfile(source):
        raise FileNotFoundError(f"File not found: filepath={os.fspath(source)}")
    try:
        return _h5py().File(source, "r")
    except OSError as exc:
        raise ValueError(f"Cannot read {label}: it is not a valid HDF5 file (truncated or "
                         f"corrupt: {exc}).") from None


def is_keras3_archive(path: str) -> bool:
    """Whether the zip at `path` is a Keras 3 archive (else distflow's safetensors one)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return WEIGHTS in archive.namelist()
    except (*_ZIP_ERRORS, OSError):
        return False
