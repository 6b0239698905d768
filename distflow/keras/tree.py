"""Nested structures of the Keras layer: flatten and map lists, tuples and dicts.

`flatten` and `map_structure` are `distflow.nest`'s (`tf.nest`, Keras 3's `keras.tree`):
one rule for the whole project, dicts walked in sorted key order. Lists and tuples
keep their type when mapped. `map_shape_structure` walks shapes, whose tuples are leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import nest

__all__ = ["flatten", "map_shape_structure", "map_structure"]


def flatten(structure: Any) -> list:
    """The leaves of `structure` (lists, tuples and dicts nested in any way), in order."""
    return nest.flatten(structure)


def map_structure(fn: Callable, structure: Any) -> Any:
    """`structure` with every leaf replaced by `fn(leaf)` (containers keep their type)."""
    return nest.map_structure(fn, structure)


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
