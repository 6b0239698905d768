"""Nested structures of leaves, as `tf.nest`: flatten, pack, map.

A *nest* is a leaf, or a list, tuple (namedtuples included) or dict (any
`Mapping`) of nests. Everything else is a leaf: tensors, arrays, numbers, strings,
None.

**The dict-order rule** (TensorFlow's, the only one in distflow): a dict is
flattened in the *sorted order of its keys*, whatever its insertion order, so
`{"b": 1, "a": 2}` flattens to `[2, 1]`. `pack_sequence_as` gives the leaves back
in that order and returns a dict whose keys keep the *structure's* order. Keys must
be sortable (TF raises too when they are not).

`tf.data` deviates in one way, and so does `distflow.data` through the keyword
`leaf_lists=True`: a list is one leaf there (tf.data turns a list into one tensor),
only tuples and dicts are structure.

This module imports nothing of distflow: the tape, graph mode and the datasets
all build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

_NESTS = (list, tuple, dict, Mapping)
_MISSING = object()
# Types seen to be leaves: a set lookup instead of an isinstance against the Mapping ABC
# for every tensor of every flatten (the tape flattens its sources on each gradient).
_LEAF_TYPES: set[type] = set()


def is_nested(structure: Any) -> bool:
    """True for a list, tuple or dict (a structure), False for a leaf (`tf.nest.is_nested`)."""
    cls = type(structure)
    if cls in _LEAF_TYPES:
        return False
    if isinstance(structure, _NESTS):
        return True
    _LEAF_TYPES.add(cls)
    return False


def _all_leaves(items: Any) -> bool:
    leaves = _LEAF_TYPES
    for item in items:
        if type(item) not in leaves and is_nested(item):
            return False
    return True


def _sorted_keys(mapping: Mapping) -> list:
    try:
        return sorted(mapping)
    except TypeError as e:
        raise TypeError("nest: a dict's keys must be sortable (dicts flatten in sorted key "
                        f"order). Received keys: {list(mapping)!r}") from e


def flatten(structure: Any, *, leaf_lists: bool = False) -> list:
    """The leaves of `structure`, depth first, dicts in sorted key order (`tf.nest.flatten`).

    Args:
        structure: a nest (see the module docstring); a leaf gives `[leaf]`.
        leaf_lists: tf.data's rule: a list is one leaf.

    Returns:
        A new list of the leaves.
    """
    if isinstance(structure, tuple) or (isinstance(structure, list) and not leaf_lists):
        if _all_leaves(structure):
            return list(structure)  # the common flat case (a list of tensors), no recursion
        return [x for s in structure for x in flatten(s, leaf_lists=leaf_lists)]
    if isinstance(structure, dict | Mapping):
        return [x for k in _sorted_keys(structure)
                for x in flatten(structure[k], leaf_lists=leaf_lists)]
    return [structure]


def pack_sequence_as(structure: Any, flat_sequence: Any, *, leaf_lists: bool = False) -> Any:
    """`flat_sequence` packed into the shape of `structure` (`tf.nest.pack_sequence_as`).

    Args:
        structure: the nest whose shape to copy (its leaves are ignored).
        flat_sequence: as many leaves as `flatten(structure)` gives, in that order.
        leaf_lists: tf.data's rule: a list is one leaf.

    Raises:
        ValueError: when the number of leaves differs.
    """
    flat = list(flat_sequence)
    if type(structure) is list and not leaf_lists and _all_leaves(structure):
        packed, extra = flat[:len(structure)], len(flat) - len(structure)  # the common case
    else:
        leaves = iter(flat)
        packed = _pack(structure, leaves, leaf_lists)
        extra = sum(1 for _ in leaves)
    if extra < 0:
        _too_few(structure)
    if extra:
        raise ValueError(f"pack_sequence_as: the structure has {len(flat) - extra} leaves but "
                         f"{len(flat)} were given. Received: structure={structure!r}.")
    return packed


def _too_few(structure: Any) -> None:
    raise ValueError("pack_sequence_as: fewer leaves than the structure has. "
                     f"Received: structure={structure!r}.")


def _pack(structure: Any, leaves: Iterator, leaf_lists: bool) -> Any:
    if isinstance(structure, tuple) or (isinstance(structure, list) and not leaf_lists):
        items = [_pack(s, leaves, leaf_lists) for s in structure]
        return _sequence_like(structure, items)
    if isinstance(structure, dict | Mapping):
        values = {k: _pack(structure[k], leaves, leaf_lists) for k in _sorted_keys(structure)}
        return _mapping_like(structure, {k: values[k] for k in structure})
    leaf = next(leaves, _MISSING)
    if leaf is _MISSING:
        _too_few(structure)
    return leaf


def _sequence_like(instance: Any, items: list) -> Any:
    if isinstance(instance, list):
        return items
    if hasattr(instance, "_fields"):  # a namedtuple
        return type(instance)(*items)
    return type(instance)(items)


def _mapping_like(instance: Mapping, items: dict) -> Any:
    if type(instance) is dict:
        return items
    try:
        return type(instance)(items)
    except TypeError:
        return items  # a Mapping that cannot be built from a dict: a plain dict


def map_structure(func: Callable, *structures: Any, check_types: bool = True) -> Any:
    """`func` applied to the leaves of `structures` (all the same structure), packed into the
    first one's structure (`tf.nest.map_structure`).

    Raises:
        ValueError / TypeError: when the structures differ (see `assert_same_structure`).
    """
    if not structures:
        raise ValueError("map_structure needs at least one structure. Received none.")
    if len(structures) == 1 and not is_nested(structures[0]):
        return func(structures[0])  # a single leaf (a layer's one input): no packing
    for other in structures[1:]:
        assert_same_structure(structures[0], other, check_types=check_types)
    flats = [flatten(s) for s in structures]
    return pack_sequence_as(structures[0], [func(*leaves) for leaves in zip(*flats)])


def assert_same_structure(nest1: Any, nest2: Any, check_types: bool = True) -> None:
    """Raises unless both nests have the same nesting (and, with `check_types`, the same
    sequence types); dicts must have the same keys (`tf.nest.assert_same_structure`)."""
    _compare(nest1, nest2, check_types, "structure")


def _compare(a: Any, b: Any, check_types: bool, where: str) -> None:
    if is_nested(a) != is_nested(b):
        raise ValueError(f"The two structures don't have the same nested structure at {where}: "
                         f"{a!r} and {b!r}.")
    if not is_nested(a):
        return
    if check_types and type(a) is not type(b):
        raise TypeError(f"The two structures don't have the same sequence type at {where}: "
                        f"{type(a).__name__} and {type(b).__name__}. Pass check_types=False "
                        "to compare only the nesting.")
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueError(f"The two structures differ at {where}: {a!r} and {b!r}.")
    if isinstance(a, Mapping):
        if set(a) != set(b):
            raise ValueError(f"The two dicts at {where} have different keys: "
                             f"{_sorted_keys(a)} and {_sorted_keys(b)}.")
        pairs = [(a[k], b[k], f"{where}[{k!r}]") for k in _sorted_keys(a)]
    else:
        if len(a) != len(b):
            raise ValueError(f"The two structures don't have the same number of elements at "
                             f"{where}: {len(a)} and {len(b)}.")
        pairs = [(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b))]
    for x, y, w in pairs:
        _compare(x, y, check_types, w)


def paths(structure: Any, *, leaf_lists: bool = False) -> list[tuple]:
    """The path (a tuple of keys and indices) of every leaf, in `flatten`'s order
    (the paths of `tf.nest.flatten_with_path`)."""
    if isinstance(structure, tuple) or (isinstance(structure, list) and not leaf_lists):
        return [(i, *p) for i, s in enumerate(structure)
                for p in paths(s, leaf_lists=leaf_lists)]
    if isinstance(structure, dict | Mapping):
        return [(k, *p) for k in _sorted_keys(structure)
                for p in paths(structure[k], leaf_lists=leaf_lists)]
    return [()]


def flatten_with_path(structure: Any) -> list[tuple[tuple, Any]]:
    """`(path, leaf)` pairs in `flatten`'s order (`tf.nest.flatten_with_path`)."""
    return list(zip(paths(structure), flatten(structure)))


__all__ = ["assert_same_structure", "flatten", "flatten_with_path", "is_nested",
           "map_structure", "pack_sequence_as"]
