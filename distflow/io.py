"""`tf.io`: files (`gfile`, `read_file`, `write_file`) on the local file system.

distflow tensors hold numbers only, so `read_file` returns the file's bytes
(a Python `bytes`, what `.numpy()` gives in TF) and `write_file` accepts bytes,
str or such a value. Paths are local; URLs such as gs:// are not supported and
say so.
"""

from __future__ import annotations

import glob as _glob
import os
import shutil
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from distflow.io_codecs import (  # noqa: F401  (tf.io's names)
    decode_base64,
    decode_compressed,
    decode_csv,
    decode_image,
    decode_png,
    decode_raw,
    encode_base64,
    encode_png,
    is_jpeg,
)


def _path(path: Any) -> str:
    path = os.fspath(path.decode() if isinstance(path, bytes) else path)
    if "://" in path:
        raise ValueError(f"Only local paths are supported. Received: {path!r} (copy remote "
                         "files locally first).")
    return path


class GFile:
    """`tf.io.gfile.GFile`: a file object (mode 'r', 'rb', 'w', 'wb', 'a', 'ab')."""

    def __init__(self, name: Any, mode: str = "r"):
        if mode not in ("r", "rb", "w", "wb", "a", "ab"):
            raise ValueError(f"GFile mode must be one of r, rb, w, wb, a, ab. Received: "
                             f"mode={mode!r}")
        self.name, self.mode = _path(name), mode
        self._f = open(self.name, mode, **({} if "b" in mode else {"encoding": "utf-8"}))

    def __enter__(self) -> GFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator:
        return iter(self._f)

    def read(self, n: int = -1) -> Any:
        return self._f.read(n)

    def readline(self) -> Any:
        return self._f.readline()

    def readlines(self) -> list:
        return self._f.readlines()

    def write(self, data: Any) -> None:
        if "b" not in self.mode and isinstance(data, bytes):
            data = data.decode("utf-8")
        self._f.write(data)

    def seek(self, offset: int, whence: int = 0) -> None:
        self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def size(self) -> int:
        return os.path.getsize(self.name)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _exists(path: Any) -> bool:
    return os.path.exists(_path(path))


def _makedirs(path: Any) -> None:
    os.makedirs(_path(path), exist_ok=True)


def _mkdir(path: Any) -> None:
    os.mkdir(_path(path))


def _glob_files(pattern: Any) -> list[str]:
    patterns = [pattern] if isinstance(pattern, str | bytes | os.PathLike) else list(pattern)
    return sorted({p for pat in patterns for p in _glob.glob(_path(pat))})


def _listdir(path: Any) -> list[str]:
    path = _path(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Could not find directory {path!r}.")
    return sorted(os.listdir(path))


def _remove(path: Any) -> None:
    os.remove(_path(path))


def _rmtree(path: Any) -> None:
    shutil.rmtree(_path(path))


def _rename(src: Any, dst: Any, overwrite: bool = False) -> None:
    src, dst = _path(src), _path(dst)
    if os.path.exists(dst) and not overwrite:
        raise FileExistsError(f"{dst!r} exists; pass overwrite=True to replace it.")
    os.replace(src, dst)


def _copy(src: Any, dst: Any, overwrite: bool = False) -> None:
    src, dst = _path(src), _path(dst)
    if os.path.exists(dst) and not overwrite:
        raise FileExistsError(f"{dst!r} exists; pass overwrite=True to replace it.")
    shutil.copyfile(src, dst)


def _walk(top: Any, topdown: bool = True, onerror: Any = None) -> Iterator:
    return os.walk(_path(top), topdown=topdown, onerror=onerror)


def _stat(path: Any) -> Any:
    st = os.stat(_path(path))
    return SimpleNamespace(length=st.st_size, mtime_nsec=st.st_mtime_ns,
                           is_directory=os.path.isdir(_path(path)))


gfile = SimpleNamespace(
    GFile=GFile, exists=_exists, makedirs=_makedirs, mkdir=_mkdir, glob=_glob_files,
    isdir=lambda p: os.path.isdir(_path(p)), listdir=_listdir, remove=_remove, rmtree=_rmtree,
    rename=_rename, copy=_copy, walk=_walk, stat=_stat, join=os.path.join,
    get_registered_schemes=lambda: ["", "file"],
)


def matching_files(pattern: Any) -> list[bytes]:
    """File names (bytes, sorted) matching the glob pattern(s), as `tf.io.matching_files`."""
    return [os.fsencode(p) for p in _glob_files(pattern)]


def read_file(filename: Any, name: str | None = None) -> bytes:
    """The file's contents as bytes."""
    with open(_path(filename), "rb") as f:
        return f.read()


def write_file(filename: Any, contents: Any, name: str | None = None) -> None:
    """Writes `contents` (bytes or str), creating parent directories as TF does."""
    path = _path(filename)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    data = contents.encode("utf-8") if isinstance(contents, str) else bytes(contents)
    with open(path, "wb") as f:
        f.write(data)
