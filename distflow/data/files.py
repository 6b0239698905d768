"""File-backed datasets: `TextLineDataset`, `list_files`, `save` / `load` (NumPy `.npz`
chunks and a JSON structure file, no pickle) and `snapshot`."""

from __future__ import annotations

import copy
import glob
import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from distflow.data.base import Dataset, implementation
from distflow.data.structure import (
    UNKNOWN_CARDINALITY,
    _check_seed,
    _flatten,
)
from distflow.data.transforms import _Unary

# ------------------------------------------------------------------ files


class _FileSource(Dataset):
    """A dataset read from a list of files (the unit of FILE auto-sharding)."""

    _files: list[str]

    def _with_files(self, files: list[str]) -> Dataset:
        clone = copy.copy(self)
        clone._files = list(files)
        return clone


def _file_list(filenames: Any) -> list[str]:
    names = [filenames] if isinstance(filenames, str | bytes | os.PathLike) else list(
        getattr(filenames, "numpy", lambda: filenames)())
    out = [os.fsdecode(n) if not isinstance(n, np.ndarray) else os.fsdecode(n.item())
           for n in names]
    for name in out:
        if not os.path.exists(name):
            raise FileNotFoundError(f"{name}; No such file or directory")
    return out


class TextLineDataset(_FileSource):
    """The lines of text files (bytes, without the line ending), file after file.

    Args:
        filenames: a file name or a list of them.
        compression_type: "" / None or "GZIP" ("ZLIB" is not supported).
        buffer_size: accepted for compatibility.
        num_parallel_reads: accepted; files are read in order.
    """

    def __init__(self, filenames: Any, compression_type: str | None = None,
                 buffer_size: int | None = None, num_parallel_reads: int | None = None):
        self._files = _file_list(filenames)
        kind = (compression_type or "").upper()
        if kind not in ("", "GZIP"):
            raise ValueError(f"`compression_type` must be '', None or 'GZIP'. Received: "
                             f"{compression_type!r}")
        self._gzip = kind == "GZIP"

    def _open(self, name: str):
        if self._gzip:
            import gzip

            return gzip.open(name, "rb")
        return open(name, "rb")

    def _elements(self) -> Iterator[Any]:
        for name in self._files:
            with self._open(name) as f:
                for line in f:
                    yield np.bytes_(line.rstrip(b"\n").rstrip(b"\r"))

    def cardinality(self) -> int:
        return UNKNOWN_CARDINALITY


@implementation
class _ListFiles(_FileSource):
    def __init__(self, pattern: Any, shuffle: bool | None, seed: Any):
        patterns = [pattern] if isinstance(pattern, str | bytes | os.PathLike) else list(pattern)
        self._files = sorted({f for p in patterns for f in glob.glob(os.fsdecode(p))})
        if not self._files:
            raise ValueError(f"No files matched pattern: {', '.join(map(os.fsdecode, patterns))}")
        self._shuffle = shuffle is None or bool(shuffle)
        self._seed = _check_seed(seed)
        self._epoch = 0

    def _elements(self) -> Iterator[Any]:
        files = list(self._files)
        if self._shuffle:
            seed = None if self._seed is None else [self._seed, self._epoch]
            self._epoch += 1
            files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
        for name in files:
            yield np.bytes_(os.fsencode(name))

    def cardinality(self) -> int:
        return len(self._files)


# ------------------------------------------------------------------ save / load

_SPEC_FILE = "dataset_spec.json"
_CHUNK_ELEMENTS = 1024


def _tree_to_json(tree: Any) -> Any:
    """The JSON of an element's tree: dict keys listed in the leaves' (sorted) order."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        keys = sorted(tree)
        return {"kind": "dict", "keys": keys, "children": [_tree_to_json(tree[k]) for k in keys]}
    return {"kind": "tuple", "children": [_tree_to_json(c) for c in tree]}


def _from_json(entry: Any, leaves: Iterator[Any]) -> Any:
    """An element built from its JSON tree, the leaves taken in the order the JSON lists them
    (sorted dict keys; a dataset saved before the keys were sorted lists them as saved)."""
    if entry is None:
        return next(leaves)
    children = [_from_json(c, leaves) for c in entry["children"]]
    return dict(zip(entry["keys"], children)) if entry["kind"] == "dict" else tuple(children)


def _count_leaves(entry: Any) -> int:
    return 1 if entry is None else sum(_count_leaves(c) for c in entry["children"])


@implementation
def save(dataset: Dataset, path: str) -> None:
    """Writes every element to `path/` as NumPy `.npz` chunks plus a JSON structure file."""
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    tree, count, chunk = None, 0, {}
    for element in dataset._iter_numpy():
        leaves, tree = _flatten(element)
        for j, leaf in enumerate(leaves):
            chunk[f"e{count % _CHUNK_ELEMENTS}_l{j}"] = np.asarray(leaf)
        count += 1
        if count % _CHUNK_ELEMENTS == 0:
            np.savez(os.path.join(path, f"elements-{count // _CHUNK_ELEMENTS - 1:05d}.npz"),
                     **chunk)
            chunk = {}
    if chunk:
        np.savez(os.path.join(path, f"elements-{count // _CHUNK_ELEMENTS:05d}.npz"), **chunk)
    with open(os.path.join(path, _SPEC_FILE), "w", encoding="utf-8") as f:
        json.dump({"format": "distflow.dataset", "version": 1, "count": count,
                   "structure": _tree_to_json(tree)}, f)


@implementation
class _Loaded(Dataset):
    def __init__(self, path: str, element_spec: Any):
        spec_path = os.path.join(os.fspath(path), _SPEC_FILE)
        if not os.path.exists(spec_path):
            raise FileNotFoundError(f"No saved dataset at {path!r} (missing {_SPEC_FILE}).")
        with open(spec_path, encoding="utf-8") as f:
            meta = json.load(f)
        self._path, self._count = os.fspath(path), int(meta["count"])
        self._structure = meta["structure"]
        self._n_leaves = _count_leaves(self._structure)
        self._spec = element_spec

    def _elements(self) -> Iterator[Any]:
        for start in range(0, self._count, _CHUNK_ELEMENTS):
            name = os.path.join(self._path, f"elements-{start // _CHUNK_ELEMENTS:05d}.npz")
            with np.load(name, allow_pickle=False) as chunk:
                for i in range(min(_CHUNK_ELEMENTS, self._count - start)):
                    leaves = [chunk[f"e{i}_l{j}"] for j in range(self._n_leaves)]
                    yield _from_json(self._structure,
                                     iter([a[()] if a.ndim == 0 else a for a in leaves]))

    def cardinality(self) -> int:
        return self._count

    @property
    def element_spec(self) -> Any:
        return self._spec if self._spec is not None else super().element_spec


@implementation
class _Snapshot(_Unary):
    """`snapshot(path)`: the first complete pass is saved to `path` (as `save` does); later
    passes, in this process or another, read it back instead of running the input."""

    def __init__(self, input_dataset: Dataset, path: str):
        super().__init__(input_dataset)
        self._path = os.fspath(path)

    def _elements(self) -> Iterator[Any]:
        if os.path.exists(os.path.join(self._path, _SPEC_FILE)):
            yield from _Loaded(self._path, None)._iter_numpy()
            return
        collected = []
        for element in self._input._iter_numpy():
            collected.append(element)
            yield element
        save(_Replay(collected), self._path)  # only a complete pass is written


class _Replay(Dataset):
    def __init__(self, elements: list):
        self._items = elements

    def _elements(self) -> Iterator[Any]:
        return iter(self._items)

    def cardinality(self) -> int:
        return len(self._items)


# ------------------------------------------------------------------ threads
