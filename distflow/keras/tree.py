"""Nested structures of the Keras layer: flatten and map lists, tuples and dicts.

The one rule: a dict is walked in its insertion order (the order its keys were
given), not sorted, so a model's dict inputs and outputs keep the order the user
wrote them in. Lists and tuples keep their type when mapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["flatten", "map_shape_structure", "map_structure"]


def flatten(structure: Any) -> list:
    """The leaves of `structure` (lists, tuples and dicts nested in any way), in order."""
    if isinstance(structure, list | tuple):
        return [x for s in structure for x in flatten(s)]
    if isinstance(structure, dict):
        return [x for k in structure for x in flatten(structure[k])]
    return [structure]


def map_structure(fn: Callable, structure: Any) -> Any:
    """`structure` with every leaf replaced by `fn(leaf)` (containers keep their type)."""
    if isinstance(structure, list | tuple):
        return type(structure)(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def map_shape_structure(fn: Callable, shapes: Any) -> Any:
    """Applies `fn` to each shape tuple of a (nested) list or dict of shapes.

    A shape is a tuple or list of ints and Nones; anything else is a container.
    """
    if isinstance(shapes, dict):
        return {k: map_shape_structure(fn, v) for k, v in shapes.items()}
    if isinstance(shapes, tuple | list) and all(
            s is None or isinstance(s, int | np.integer) for s in shapes):
        return fn(tuple(shapes))
    return [map_shape_structure(fn, s) for s in shapes]
