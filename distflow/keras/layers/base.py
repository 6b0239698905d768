"""The `Layer` base class and `InputSpec`, with Keras's public surface.

A layer owns variables created in `build(input_shape)` (called once, from the
shape of the first input) and computes `call(inputs, training=...)`. `__call__`
converts the inputs, builds, checks them against `input_spec`, resolves the
`training` flag (an explicit value, else the one of the enclosing layer call,
else `call`'s default) and hands symbolic `KerasTensor` inputs to the
functional API instead of computing.

Sublayers and variables assigned as attributes are tracked, so `weights`,
`trainable_weights` and `losses` of a layer include those of its sublayers.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from distflow import ops
from distflow.keras import regularizers
from distflow.keras.keras_tensor import KerasTensor
from distflow.keras.layers.layer_config import ConfigMixin
from distflow.keras.layers.tracking import TrackingMixin
from distflow.keras.layers.variables import (
    VariablesMixin,
    _dtype_name,
    _shape_tuple,
    policy_dtypes,
)
from distflow.keras.symbolic import symbolic_call
from distflow.keras.tree import flatten as _flat
from distflow.keras.tree import map_shape_structure as _map_shapes
from distflow.keras.tree import map_structure as _map
from distflow.tensor import Tensor, unique_name

_context = threading.local()
_INPUT_SHAPE_KWARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_size")
_ALLOWED_KWARGS = (*_INPUT_SHAPE_KWARGS, "activity_regularizer", "autocast", "dynamic",
                   "input_dtype", "weights")


def to_snake_case(name: str) -> str:
    """'MaxPooling2D' -> 'max_pooling2d', 'Conv2D' -> 'conv2d', 'LSTM' -> 'lstm' (Keras's rule)."""
    intermediate = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()


# Masks of eager outputs, Keras's `tensor._keras_mask`. Tensors have __slots__ (and an
# elementwise ==, which rules out WeakKeyDictionary), hence a side table keyed by id()
# whose entries leave with their tensor.
_MASKS: dict[int, tuple[weakref.ref, Any]] = {}


def _set_mask(tensor: Tensor, mask: Any) -> None:
    key = id(tensor)
    _MASKS[key] = (weakref.ref(tensor, lambda _ref, key=key: _MASKS.pop(key, None)), mask)


def _get_mask(tensor: Any) -> Any:
    entry = _MASKS.get(id(tensor))
    return entry[1] if entry is not None and entry[0]() is tensor else None


def mask_of(inputs: Any) -> Any:
    """The mask attached to `inputs` by the layer that produced it (or a list of them), or None."""
    if isinstance(inputs, Tensor):
        return _get_mask(inputs)
    if isinstance(inputs, list | tuple):
        masks = [_get_mask(x) for x in inputs]
        return masks if any(m is not None for m in masks) else None
    return None


def _is_symbolic(x: Any) -> bool:
    """True for a `KerasTensor` of the functional API."""
    return isinstance(x, KerasTensor)


@functools.cache
def _call_parameters(call: Callable) -> tuple[frozenset, bool]:
    params = inspect.signature(call).parameters
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return frozenset(params), var_kw




class InputSpec:
    """What a layer accepts: rank bounds and fixed sizes of some axes.

    Args:
        dtype: expected dtype (not enforced; inputs are cast).
        shape: full expected shape (None entries are free).
        ndim: exact rank.
        max_ndim: maximum rank.
        min_ndim: minimum rank.
        axes: {axis: size} that must match.
        allow_last_axis_squeeze: accepted for Keras compatibility.
        name: optional name.
    """

    def __init__(self, dtype: Any = None, shape: Any = None, ndim: int | None = None,
                 max_ndim: int | None = None, min_ndim: int | None = None,
                 axes: dict[int, int] | None = None, allow_last_axis_squeeze: bool = False,
                 name: str | None = None):
        self.dtype = dtype
        self.shape = None if shape is None else _shape_tuple(shape)
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.axes = {int(k): int(v) for k, v in (axes or {}).items()}
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.name = name

    def __repr__(self) -> str:
        parts = [f"{k}={v}" for k, v in (("shape", self.shape), ("ndim", self.ndim),
                                         ("max_ndim", self.max_ndim),
                                         ("min_ndim", self.min_ndim), ("axes", self.axes))
                 if v]
        return f"InputSpec({', '.join(parts)})"

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim,
                "max_ndim": self.max_ndim, "min_ndim": self.min_ndim, "axes": self.axes}

    def check(self, shape: tuple, layer_name: str, index: int) -> None:
        """Raises a ValueError naming the layer when `shape` does not satisfy the spec."""
        prefix = f'Input {index} of layer "{layer_name}" is incompatible with the layer: '
        rank = len(shape)
        if self.ndim is not None and rank != self.ndim:
            raise ValueError(f"{prefix}expected ndim={self.ndim}, found ndim={rank}. "
                             f"Full shape received: {shape}")
        if self.max_ndim is not None and rank > self.max_ndim:
            raise ValueError(f"{prefix}expected max_ndim={self.max_ndim}, found ndim={rank}. "
                             f"Full shape received: {shape}")
        if self.min_ndim is not None and rank < self.min_ndim:
            raise ValueError(f"{prefix}expected min_ndim={self.min_ndim}, found ndim={rank}. "
                             f"Full shape received: {shape}")
        for axis, size in self.axes.items():
            got = shape[axis] if -rank <= axis < rank else None
            if got is not None and got != size:
                raise ValueError(
                    f"{prefix}expected axis {axis} of input shape to have value {size}, "
                    f"but received input with shape {shape}. The layer was built for inputs "
                    f"of that size: feed matching inputs or use a new layer.")
        if self.shape is not None:
            for want, got in zip(self.shape, shape):
                if want is not None and got is not None and want != got:
                    raise ValueError(f"{prefix}expected shape={self.shape}, found "
                                     f"shape={shape}")


class Layer(TrackingMixin, VariablesMixin, ConfigMixin):
    """Base class of all layers, with the constructor and attributes of `keras.layers.Layer`.

    Args:
        trainable: whether the layer's weights are updated by training.
        name: layer name; defaults to the snake_case class name made unique
            ('dense', 'dense_1', ...).
        dtype: dtype of the weights and computations (default 'float32').
        **kwargs: `input_shape` / `input_dim` / `batch_input_shape` / `batch_size`
            (the input shape of the first layer of a `Sequential`, stored as
            `_input_shape_arg` without the batch dimension) and
            `activity_regularizer`.
    """

    _autocast_inputs = True  # cast float inputs to the layer's dtype, as Keras does

    def __new__(cls, *args: Any, **kwargs: Any):
        layer = super().__new__(cls)
        # Keras 3 "auto config": a custom layer whose constructor takes plain JSON
        # values serializes without writing get_config().
        layer.__dict__["_auto_config"] = _capture_arguments(cls, args, kwargs)
        return layer

    def __init__(self, trainable: bool = True, name: str | None = None, dtype: Any = None,
                 **kwargs: Any):
        unknown = {k: v for k, v in kwargs.items()
                   if k not in _ALLOWED_KWARGS and not k.endswith("_constraint")}
        if unknown:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                            f"{unknown}")
        self._init_tracking()
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self._policy = _dtype_name(dtype)
        self._dtype, compute = policy_dtypes(self._policy)
        self._np_dtype = np.dtype(object if compute == "string" else compute)
        self._trainable = bool(trainable)
        self.built = False
        self.input_spec: InputSpec | list[InputSpec] | None = None
        self.supports_masking = False
        self._build_input_shape: Any = None
        self._read_input_shape_kwargs(kwargs)
        self.activity_regularizer = regularizers.get(kwargs.get("activity_regularizer"))
        self._read_constraint_kwargs(kwargs)
        self._initial_weights = kwargs.get("weights")
        if kwargs.get("autocast") is False:  # keep float inputs' own dtype
            self._autocast_inputs = False

    # ----------------------------------------------------------- construction


    def _read_input_shape_kwargs(self, kwargs: dict[str, Any]) -> None:
        self._input_shape_arg: tuple | None = None
        self._batch_size_arg: int | None = kwargs.get("batch_size")
        if kwargs.get("batch_input_shape") is not None:
            full = _shape_tuple(kwargs["batch_input_shape"])
            self._input_shape_arg, self._batch_size_arg = full[1:], full[0]
        elif kwargs.get("input_shape") is not None:
            self._input_shape_arg = _shape_tuple(kwargs["input_shape"])
        elif kwargs.get("input_dim") is not None:
            self._input_shape_arg = (int(kwargs["input_dim"]),)



    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:  # a user's build() need not set `built` itself
            cls.build = _marks_built(cls.__dict__["build"])


    # -------------------------------------------------------------- properties

    @property
    def dtype(self) -> str:
        """The dtype name of the layer's variables ('float32'), as Keras's `layer.dtype`."""
        return self._dtype

    variable_dtype = dtype

    @property
    def compute_dtype(self) -> str:
        """The dtype the layer computes in (float16 under 'mixed_float16')."""
        return self._np_dtype.name if self._dtype != "string" else "string"

    @property
    def dtype_policy(self) -> Any:
        """The layer's `keras.mixed_precision.DTypePolicy`."""
        from distflow.keras import mixed_precision

        return mixed_precision.DTypePolicy(self._policy)






    def _single_node(self, what: str) -> Any:
        nodes = self.__dict__.get("_inbound_nodes") or []
        if not nodes:
            raise AttributeError(f'Layer "{self.name}" has no defined {what}: it was never '
                                 "called on a symbolic input (keras.Input).")
        if len(nodes) > 1:
            raise AttributeError(f'Layer "{self.name}" has been called {len(nodes)} times on '
                                 f"symbolic inputs, so its {what} is ambiguous.")
        return nodes[0]

    @property
    def output(self) -> Any:
        """The symbolic output of the layer's one call in a functional graph."""
        explicit = self.__dict__.get("_explicit_output")
        return explicit if explicit is not None else self._single_node("output").outputs

    @output.setter
    def output(self, value: Any) -> None:
        self.__dict__["_explicit_output"] = value

    @property
    def input(self) -> Any:
        """The symbolic input of the layer's one call in a functional graph."""
        node = self._single_node("input")
        return node.call_inputs if node.call_inputs is not None else node.outputs









    # ------------------------------------------------------------- build/call

    def build(self, input_shape: Any) -> None:
        """Creates the weights for inputs of `input_shape` (batch dim included, None allowed)."""
        self._build_input_shape = input_shape
        self.built = True

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """The layer's computation; subclasses override it."""
        return inputs

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, Tensor):  # the common case, kept cheap: one tensor
            inputs = self._convert_one(inputs)
        elif any(_is_symbolic(x) for x in _flat(inputs)):
            return symbolic_call(self, inputs, *args, **kwargs)
        else:
            inputs = self._convert_inputs(inputs)
        if not self.built:
            self._maybe_build(inputs)
        self._check_inputs(inputs)
        outer = getattr(_context, "training", None)
        training = self._fill_call_kwargs(inputs, kwargs, outer)
        if self._call_losses:
            self._call_losses.clear()
        _context.training = training
        try:
            outputs = self._call_with_policy(inputs, args, kwargs)
        finally:
            _context.training = outer
        if self.activity_regularizer is not None:
            self._add_activity_loss(outputs)
        if _MASKS or type(self).compute_mask is not Layer.compute_mask:
            self._propagate_mask(inputs, outputs, kwargs.get("mask"))
        return outputs

    def _fill_call_kwargs(self, inputs: Any, kwargs: dict[str, Any], outer: Any) -> Any:
        """Resolves `training` (explicit, else the enclosing call's) and the input mask.

        Both go into `kwargs` only if `call` accepts them. Returns the training flag
        nested layer calls inherit.
        """
        params, var_kw = _call_parameters(type(self).call)
        training = kwargs.pop("training", None)
        if training is None:
            training = outer
        if training is not None and ("training" in params or var_kw):
            kwargs["training"] = bool(training)
        if _MASKS and "mask" in params and kwargs.get("mask") is None:
            mask = mask_of(inputs)
            if mask is not None:
                kwargs["mask"] = mask
        return training

    def _propagate_mask(self, inputs: Any, outputs: Any, mask: Any) -> None:
        """Attaches `compute_mask`'s result to the output, as Keras's `_keras_mask`."""
        if mask is None:
            mask = mask_of(inputs)
        out_mask = self.compute_mask(inputs, mask)
        if out_mask is None:
            return
        if isinstance(outputs, Tensor):
            _set_mask(outputs, out_mask)
        elif isinstance(outputs, list | tuple) and isinstance(out_mask, list | tuple):
            for out, m in zip(outputs, out_mask):
                if isinstance(out, Tensor) and m is not None:
                    _set_mask(out, m)

    def _convert_one(self, t: Tensor) -> Tensor:
        dtype = t.array_dtype
        if self._autocast_inputs and dtype.kind == "f" and dtype != self._np_dtype:
            return ops.cast(t, self._np_dtype)
        return t

    def _convert_inputs(self, inputs: Any) -> Any:
        def convert(x: Any) -> Any:
            if x is None or (not isinstance(x, Tensor) and _is_text(x)):
                return x  # strings stay NumPy arrays: only host-side layers take them
            return self._convert_one(ops.convert_to_tensor(x))
        return _map(convert, inputs)

    def _maybe_build(self, inputs: Any) -> None:
        if self.built:
            return
        shapes = _map(lambda t: None if t is None else tuple(t.shape), inputs)
        self.build(shapes)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _check_inputs(self, inputs: Any) -> None:
        specs = self.input_spec
        if specs is None:
            return
        if isinstance(inputs, Tensor) and not isinstance(specs, list | tuple):
            shape = inputs.array_shape
            accepted = self.__dict__.get("_accepted_shape")
            if accepted is None or accepted[0] != shape or accepted[1] is not specs:
                specs.check(shape, self.name, 0)
                self._accepted_shape = (shape, specs)  # same shape next step: no re-check
            return
        specs = specs if isinstance(specs, list | tuple) else [specs]
        flat = [x for x in _flat(inputs) if x is not None]
        for i, (spec, x) in enumerate(zip(specs, flat)):
            if spec is not None:
                spec.check(tuple(x.shape), self.name, i)

    def _add_activity_loss(self, outputs: Any) -> None:
        for out in _flat(outputs):
            if isinstance(out, Tensor):
                batch = out.shape[0] if out.ndim else 1
                self.add_loss(ops.divide(self.activity_regularizer(out), float(max(batch, 1))))

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape for `input_shape` (batch dim included).

        The default runs the layer once on zeros (None dims taken as 1); layers
        with weights are built by it. Layers override it with the exact rule.
        """
        def probe(shape):
            return Tensor._wrap(np.zeros([1 if s is None else s for s in shape], self._dtype))

        is_single = isinstance(input_shape, tuple | list) and all(
            s is None or isinstance(s, int | np.integer) for s in input_shape)
        dummy = probe(input_shape) if is_single else _map_shapes(probe, input_shape)
        out = self(dummy, training=False)
        batch_unknown = is_single and len(input_shape) > 0 and input_shape[0] is None
        return _map(lambda t: ((None,) if batch_unknown else tuple(t.shape[:1])) +
                    tuple(t.shape[1:]), out)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """Output mask: `mask` passed through if the layer `supports_masking`, else None.

        Layers that create or consume masks (Embedding(mask_zero=True), Masking,
        RNNs) override it.
        """
        return mask if self.supports_masking else None







    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


# The default probes the layer: the functional API then infers shapes its own way.
Layer.compute_output_shape.runs_the_layer = True  # type: ignore[attr-defined]


def _capture_arguments(cls: type, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """The constructor arguments of `cls(*args, **kwargs)` if they are JSON-safe, else None."""
    if cls.__init__ is Layer.__init__:
        return None
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return None
    config: dict[str, Any] = {}
    params = inspect.signature(cls.__init__).parameters
    for key, value in list(bound.arguments.items())[1:]:
        if params[key].kind is inspect.Parameter.VAR_KEYWORD:
            config.update(value)
        elif params[key].kind is not inspect.Parameter.VAR_POSITIONAL:
            config[key] = value
    try:
        json.dumps(config)
    except (TypeError, ValueError):
        return None
    return config


def _marks_built(build: Callable) -> Callable:
    @functools.wraps(build)
    def wrapper(self: Layer, input_shape: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = build(self, input_shape, *args, **kwargs)
        self._build_input_shape = input_shape
        self.built = True
        return result
    wrapper._marks_built = True  # type: ignore[attr-defined]
    return wrapper


def _is_text(x: Any) -> bool:
    """Strings or bytes (a str, or an array or list of them), which tensors cannot hold."""
    if isinstance(x, str | bytes):
        return True
    kind = x.dtype.kind if isinstance(x, np.ndarray) else (
        np.asarray(x).dtype.kind if isinstance(x, list | tuple) else "")
    return kind in ("U", "S", "O")
