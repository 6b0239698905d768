"""Finding (and if need be downloading) the IDX files of MNIST-like data sets.

Search order for a data set called `name` (e.g. "fashion-mnist"):

1. `load_data(path=DIR)`: `DIR`, then `DIR/<name>`;
2. `$DISTFLOW_DATA/<name>`, then `$DISTFLOW_DATA` itself;
3. the cache, `~/.distflow/datasets/<name>`;
4. `/usr/share/datasets/<name>` (Debian's dataset packages).

A directory counts when it holds all four files, each either gzip-compressed
(`train-images-idx3-ubyte.gz`) or raw (`train-images-idx3-ubyte`). If none
does, the missing files are downloaded into the cache from the data set's
public mirrors, each checked against its published SHA-256, unless
`DISTFLOW_OFFLINE` is set (to anything but "", "0", "false", "no", "off").
When that is impossible, `DatasetNotFoundError` lists every place searched,
what each lacked, and where to put the files.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from distflow import process_env

SYSTEM_DATA_DIR = Path("/usr/share/datasets")
DOWNLOAD_TIMEOUT_SECONDS = 60.0  # per connect / read, so a stalled mirror is given up
_BLOCK = 1 << 20


@dataclass(frozen=True)
class DatasetFiles:
    """What to look for: the data set's files, checksums and download mirrors.

    Attributes:
        name: directory name under the search roots, e.g. "fashion-mnist".
        title: human name for messages, e.g. "Fashion-MNIST".
        sha256: base file name (without ".gz") -> SHA-256 of the published `.gz` file.
        mirrors: base URLs; `<mirror><file>.gz` is tried in order.
    """

    name: str
    title: str
    sha256: dict[str, str]
    mirrors: tuple[str, ...]


class DatasetNotFoundError(FileNotFoundError):
    """The data set is in none of the searched places and could not be downloaded."""


def cache_dir(name: str) -> Path:
    """Where downloads go: `~/.distflow/datasets/<name>`."""
    return Path.home() / ".distflow" / "datasets" / name


def locate(spec: DatasetFiles, path: str | os.PathLike | None = None) -> dict[str, Path]:
    """Returns base file name -> path of an existing file, downloading when needed.

    Raises:
        DatasetNotFoundError: not found anywhere and offline, or the download failed.
    """
    report: list[str] = []
    for label, directory in _search_dirs(spec.name, path):
        found, problem = _complete_set(directory, list(spec.sha256))
        if found is not None:
            return found
        report.append(f"  - {label}: {problem}")
    if _offline():
        reason = ("Not downloaded: downloads are disabled by DISTFLOW_OFFLINE="
                  f"{os.environ['DISTFLOW_OFFLINE']!r} (unset it to download).")
    else:
        try:
            return _download_missing(spec, cache_dir(spec.name))
        except DownloadError as exc:
            reason = f"The download failed: {exc}"
    raise DatasetNotFoundError(_not_found_message(spec, report, reason))


def _search_dirs(name: str, path: str | os.PathLike | None) -> list[tuple[str, Path]]:
    candidates: list[tuple[str, Path]] = []
    if path is not None:
        given = Path(path).expanduser()
        candidates += [(f"path={str(path)!r}", given), (f"path/{name}", given / name)]
    env = process_env.read("DISTFLOW_DATA")
    if env:
        root = Path(env).expanduser()
        candidates += [(f"$DISTFLOW_DATA/{name}", root / name), ("$DISTFLOW_DATA", root)]
    candidates += [(f"~/.distflow/datasets/{name}", cache_dir(name)),
                   (str(SYSTEM_DATA_DIR / name), SYSTEM_DATA_DIR / name)]
    unique: dict[Path, str] = {}
    for label, directory in candidates:
        unique.setdefault(directory, label if label == str(directory) else
                          f"{label} ({directory})")
    return [(label, directory) for directory, label in unique.items()]


def _variants(base: str) -> list[str]:
    """File names accepted for one file, e.g. `x-idx3-ubyte.gz`, `x-idx3-ubyte`, `x.idx3-ubyte`."""
    dotted = base.replace("-idx", ".idx")
    return [f"{base}.gz", base, f"{dotted}.gz", dotted]


def _complete_set(directory: Path, bases: list[str]) -> tuple[dict[str, Path] | None, str]:
    """(files, "") when `directory` holds every file, else (None, what is wrong)."""
    if not directory.is_dir():
        return None, "does not exist" if not directory.exists() else "is not a directory"
    found: dict[str, Path] = {}
    for base in bases:
        present = [directory / v for v in _variants(base) if (directory / v).is_file()]
        if present:
            found[base] = present[0]
    missing = [f"{base}[.gz]" for base in bases if base not in found]
    if missing:
        return None, f"missing {', '.join(missing)}"
    return found, ""


def _offline() -> bool:
    return process_env.read("DISTFLOW_OFFLINE")


def _not_found_message(spec: DatasetFiles, report: list[str], reason: str) -> str:
    files = ", ".join(f"{base}.gz" for base in spec.sha256)
    return (f"{spec.title} not found. Looked in:\n" + "\n".join(report) + f"\n{reason}\n"
            f"Put the files {files} (gzip or uncompressed) in {cache_dir(spec.name)} or in "
            f"$DISTFLOW_DATA/{spec.name}, or pass load_data(path=DIR). They can be downloaded "
            f"from {spec.mirrors[0]}.")


# ---------------------------------------------------------------- download

class DownloadError(OSError):
    """Every mirror failed for one file (the message has each mirror's reason)."""


def _download_missing(spec: DatasetFiles, target_dir: Path) -> dict[str, Path]:
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the cache directory {target_dir}: {exc}") from None
    found: dict[str, Path] = {}
    for base, sha256 in spec.sha256.items():
        present = [target_dir / v for v in _variants(base) if (target_dir / v).is_file()]
        found[base] = present[0] if present else _download_file(
            [f"{mirror}{base}.gz" for mirror in spec.mirrors], sha256, target_dir / f"{base}.gz")
    return found


def _download_file(urls: list[str], sha256: str, target: Path) -> Path:
    """Downloads the first mirror whose content has the expected digest.

    `sha256` is a SHA-256 hex digest, or an MD5 one (32 hex digits: Keras's word indexes).
    """
    failures = []
    for url in urls:
        partial = target.with_name(f"{target.name}.part{os.getpid()}")
        try:
            print(f"Downloading {url} -> {target}", file=sys.stderr, flush=True)
            algorithm = "md5" if len(sha256) == 32 else "sha256"
            digest = _fetch(url, partial, algorithm)
            if digest != sha256:
                label = "SHA-256" if algorithm == "sha256" else "MD5"
                failures.append(f"{url}: {label} {digest} differs from the published {sha256}")
                continue
            os.replace(partial, target)  # atomic: a reader never sees half a file
            return target
        except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {type(exc).__name__}: {exc} "
                            f"(timeout {DOWNLOAD_TIMEOUT_SECONDS:g} s per read)")
        finally:
            partial.unlink(missing_ok=True)
    raise DownloadError("; ".join(failures))


def _fetch(url: str, destination: Path, algorithm: str = "sha256") -> str:
    """Streams `url` into `destination`; returns the hex digest of what was written."""
    digest = hashlib.new(algorithm)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, \
            open(destination, "wb") as out:
        while block := response.read(_BLOCK):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()
