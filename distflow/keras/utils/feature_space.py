"""`keras.utils.FeatureSpace`: structured-data preprocessing from a dict of feature specs.

Each feature is preprocessed by one of the preprocessing layers (lookups, hashing,
normalization, discretization, rescaling), optionally crossed with others
(`HashedCrossing`), one-hot encoded where asked, then concatenated into one float32
matrix (`output_mode="concat"`) or returned as a dict (`"dict"`), as Keras's:

    >>> fs = FeatureSpace({"age": "float_normalized", "city": "string_categorical"},
    ...                   crosses=[("age", "city")])  # crosses need categorical features
    >>> fs.adapt({"age": ages, "city": cities})
    >>> fs({"age": ages[:4], "city": cities[:4]})      # (4, n) float32

`get_inputs()` and `get_encoded_features()` give the same computation as symbolic
`keras.Input`s and their encoding, to build the inference model. Unlike Keras's,
this FeatureSpace is a plain object, not a `Layer`: it runs in the input pipeline
(`dataset.map(lambda x, y: (fs(x), y))`) and in functional models through
`get_encoded_features()`; it cannot be saved with `fs.save()`.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from distflow import nest
from distflow.data import Dataset
from distflow.tensor import Tensor

_AUTO_NAMES = itertools.count()


def _layers() -> Any:
    from distflow.keras import layers

    return layers


class Cross:
    """A crossing of categorical features hashed into `crossing_dim` bins."""

    def __init__(self, feature_names: Any, crossing_dim: int, output_mode: str = "one_hot"):
        if output_mode not in ("int", "one_hot"):
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             f"{{'int', 'one_hot'}}. Received: output_mode={output_mode}")
        self.feature_names = tuple(feature_names)
        self.crossing_dim, self.output_mode = crossing_dim, output_mode

    @property
    def name(self) -> str:
        return "_X_".join(self.feature_names)

    def get_config(self) -> dict[str, Any]:
        return {"feature_names": self.feature_names, "crossing_dim": self.crossing_dim,
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Cross:
        return cls(**config)


class Feature:
    """A feature's input dtype, its preprocessor layer and its output mode."""

    def __init__(self, dtype: str, preprocessor: Any, output_mode: str):
        if output_mode not in ("int", "one_hot", "float"):
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             f"{{'int', 'one_hot', 'float'}}. Received: output_mode={output_mode}")
        if isinstance(preprocessor, dict):
            from distflow.keras.serialization_lib import deserialize_keras_object

            preprocessor = deserialize_keras_object(preprocessor)
        self.dtype, self.preprocessor, self.output_mode = dtype, preprocessor, output_mode

    def get_config(self) -> dict[str, Any]:
        from distflow.keras.serialization_lib import serialize_keras_object

        return {"dtype": self.dtype, "output_mode": self.output_mode,
                "preprocessor": serialize_keras_object(self.preprocessor)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Feature:
        return cls(**config)


def _name(name: str | None, kind: str) -> str:
    return name or f"{kind}_{next(_AUTO_NAMES)}"


class FeatureSpecs:
    """The feature constructors (`FeatureSpace.float_normalized()`, ...), as Keras's."""

    @classmethod
    def cross(cls, feature_names: Any, crossing_dim: int, output_mode: str = "one_hot"
              ) -> Cross:
        return Cross(feature_names, crossing_dim, output_mode=output_mode)

    @classmethod
    def feature(cls, dtype: str, preprocessor: Any, output_mode: str) -> Feature:
        return Feature(dtype, preprocessor, output_mode)

    @classmethod
    def float(cls, name: str | None = None) -> Feature:  # noqa: A003 (Keras's name)
        """A float passed through unchanged."""
        return Feature("float32", _layers().Identity(name=f"{_name(name, 'float')}_"
                                                     "preprocessor"), "float")

    @classmethod
    def float_rescaled(cls, scale: float = 1.0, offset: float = 0.0,
                       name: str | None = None) -> Feature:
        """`x * scale + offset`."""
        return Feature("float32", _layers().Rescaling(
            scale=scale, offset=offset,
            name=f"{_name(name, 'float_rescaled')}_preprocessor"), "float")

    @classmethod
    def float_normalized(cls, name: str | None = None) -> Feature:
        """Standardized with the mean and variance `adapt` learns."""
        return Feature("float32", _layers().Normalization(
            axis=-1, name=f"{_name(name, 'float_normalized')}_preprocessor"), "float")

    @classmethod
    def float_discretized(cls, num_bins: int, bin_boundaries: Any = None,
                          output_mode: str = "one_hot", name: str | None = None) -> Feature:
        """Bucketized into `num_bins` bins (boundaries given or learned by `adapt`)."""
        return Feature("float32", _layers().Discretization(
            num_bins=num_bins, bin_boundaries=bin_boundaries,
            name=f"{_name(name, 'float_discretized')}_preprocessor"), output_mode)

    @classmethod
    def integer_categorical(cls, max_tokens: int | None = None, num_oov_indices: int = 1,
                            output_mode: str = "one_hot", name: str | None = None) -> Feature:
        """Integers indexed by an `IntegerLookup` vocabulary learned by `adapt`."""
        return _lookup("integer", max_tokens, num_oov_indices, output_mode, name)

    @classmethod
    def string_categorical(cls, max_tokens: int | None = None, num_oov_indices: int = 1,
                           output_mode: str = "one_hot", name: str | None = None) -> Feature:
        """Strings indexed by a `StringLookup` vocabulary learned by `adapt`."""
        return _lookup("string", max_tokens, num_oov_indices, output_mode, name)

    @classmethod
    def string_hashed(cls, num_bins: int, output_mode: str = "one_hot",
                      name: str | None = None) -> Feature:
        """Strings hashed into `num_bins` bins."""
        return Feature("string", _layers().Hashing(
            name=f"{_name(name, 'string_hashed')}_preprocessor", num_bins=num_bins), output_mode)

    @classmethod
    def integer_hashed(cls, num_bins: int, output_mode: str = "one_hot",
                       name: str | None = None) -> Feature:
        """Integers hashed into `num_bins` bins."""
        return Feature("int32", _layers().Hashing(
            name=f"{_name(name, 'integer_hashed')}_preprocessor", num_bins=num_bins),
            output_mode)


def _lookup(kind: str, max_tokens: int | None, num_oov_indices: int, output_mode: str,
            name: str | None) -> Feature:
    """An `integer_categorical` or `string_categorical` feature."""
    layer = _layers().IntegerLookup if kind == "integer" else _layers().StringLookup
    return Feature("int32" if kind == "integer" else "string", layer(
        name=f"{_name(name, f'{kind}_categorical')}_preprocessor", max_tokens=max_tokens,
        num_oov_indices=num_oov_indices), output_mode)


_SHORTHANDS = ("float", "float_normalized", "float_rescaled", "float_discretized",
               "integer_categorical", "string_categorical", "integer_hashed", "string_hashed")


class FeatureSpace(FeatureSpecs):
    """Preprocesses a dict of features into one matrix (or a dict), as Keras's.

    Args:
        features: `{name: spec}`, a spec being a `Feature` (from the class methods) or
            one of the shorthands "float", "float_normalized", "float_rescaled",
            "float_discretized", "integer_categorical", "string_categorical",
            "integer_hashed", "string_hashed".
        output_mode: "concat" (one float32 matrix; every feature must be encoded to
            floats) or "dict".
        crosses: feature-name tuples (or `Cross` objects) to cross.
        crossing_dim: hash bins of a cross given as a tuple.
        hashing_dim: hash bins of the hashed shorthands.
        num_discretization_bins: bins of the "float_discretized" shorthand.
        name: a name (accepted for Keras's signature).
    """

    def __init__(self, features: dict[str, Any], output_mode: str = "concat",
                 crosses: Any = None, crossing_dim: int = 32, hashing_dim: int = 32,
                 num_discretization_bins: int = 32, name: str | None = None):
        if not features:
            raise ValueError("The `features` argument cannot be None or empty.")
        if output_mode not in ("dict", "concat"):
            raise ValueError("Invalid value for argument `output_mode`. Expected one of "
                             f"{{'dict', 'concat'}}. Received: output_mode={output_mode}")
        self.name, self.output_mode = name or "feature_space", output_mode
        self.crossing_dim, self.hashing_dim = crossing_dim, hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.features = {key: self._standardize(key, spec) for key, spec in features.items()}
        self.crosses = [self._standardize_cross(c) for c in crosses or []]
        self.preprocessors = {key: f.preprocessor for key, f in self.features.items()}
        self.crossers = {c.name: _layers().HashedCrossing(c.crossing_dim, name=c.name)
                         for c in self.crosses}
        self.one_hot_encoders: dict[str, Any] = {}
        self.inputs: dict[str, Any] | None = None
        self.encoded_features: Any = None
        self._is_adapted = not self._adaptable()

    def _standardize(self, key: str, spec: Any) -> Feature:
        if isinstance(spec, Feature):
            return spec
        if isinstance(spec, dict):
            return Feature.from_config(spec.get("config", spec))
        if spec not in _SHORTHANDS:
            raise ValueError(f"Invalid feature type: {spec!r} (feature '{key}'). Use a "
                             f"FeatureSpace.* spec or one of {list(_SHORTHANDS)}.")
        if spec in ("integer_hashed", "string_hashed"):
            return getattr(self, spec)(self.hashing_dim, name=key)
        if spec == "float_discretized":
            return self.float_discretized(self.num_discretization_bins, name=key)
        return getattr(self, spec)(name=key)

    def _standardize_cross(self, cross: Any) -> Cross:
        if isinstance(cross, dict):
            cross = Cross.from_config(cross.get("config", cross))
        if isinstance(cross, Cross):
            return cross
        if not self.crossing_dim:
            raise ValueError("When specifying `crosses`, the argument `crossing_dim` "
                             "(dimensionality of the crossing space) should be specified too.")
        unknown = [key for key in cross if key not in self.features]
        if unknown:
            raise ValueError("All features referenced in the `crosses` argument should be "
                             f"present in the `features` dict. Received unknown features: "
                             f"{unknown}")
        return Cross(cross, crossing_dim=self.crossing_dim)

    # ------------------------------------------------------------------ adapt

    def _adaptable(self) -> list[str]:
        out = []
        for key, layer in self.preprocessors.items():
            fixed = getattr(layer, "input_mean", None) is not None or \
                getattr(layer, "_has_input_vocabulary", False) or \
                getattr(layer, "bin_boundaries", None) is not None
            if hasattr(layer, "adapt") and not fixed:
                out.append(key)
        return out

    def adapt(self, dataset: Any) -> None:
        """Learns vocabularies, means/variances and bin boundaries from `dataset` (a dict of
        arrays, or a `Dataset` of dicts), read in batches of 32 as Keras does."""
        if isinstance(dataset, dict):
            dataset = Dataset.from_tensor_slices({k: np.asarray(v) for k, v in dataset.items()})
        if not isinstance(dataset, Dataset):
            raise ValueError("`adapt()` can only be called on a Dataset or a dict of "
                             f"arrays/lists. Received instead: {dataset!r} (of type "
                             f"{type(dataset)})")
        elements = list(dataset.as_numpy_iterator())
        for key in self._adaptable():
            values = [np.asarray(e[key]) for e in elements]
            if values[0].ndim == 0:  # single examples: Keras batches them by 32
                values = [np.stack(values[i:i + 32]) for i in range(0, len(values), 32)]
            batches = [v[..., None] if v.ndim == 1 else v for v in values]
            self.preprocessors[key].adapt(iter(batches))
        self._is_adapted = True
        self.get_encoded_features()

    def _check_adapted(self) -> None:
        if not self._is_adapted:
            raise ValueError("You need to call `.adapt(dataset)` on the FeatureSpace before "
                             "you can start using it.")

    # ------------------------------------------------------------------ symbolic

    def get_inputs(self) -> dict[str, Any]:
        """`{name: keras.Input(shape=(1,), dtype=...)}`, the inputs of the inference model."""
        self._check_adapted()
        if self.inputs is None:
            from distflow.keras.functional import Input

            self.inputs = {key: Input(shape=(1,), dtype=f.dtype, name=key)
                           for key, f in self.features.items()}
        return self.inputs

    def get_encoded_features(self) -> Any:
        """The encoding of `get_inputs()` (a KerasTensor, or a dict in "dict" mode)."""
        self._check_adapted()
        if self.encoded_features is None:
            self.encoded_features = self._encode(self.get_inputs(), symbolic=True)
        return self.encoded_features

    # ------------------------------------------------------------------ calling

    def __call__(self, data: dict[str, Any]) -> Any:
        """The encoding of a dict of feature values (batches, or one example of scalars)."""
        self._check_adapted()
        self.get_encoded_features()
        if not isinstance(data, dict):
            raise ValueError(f"A FeatureSpace can only be called with a dict. Received: "
                             f"data={data!r} (of type {type(data)})")
        arrays = {key: _host(value) for key, value in data.items()}
        arrays = {key: a.astype(np.float32) if key in self.features and
                  self.features[key].dtype == "float32" else a for key, a in arrays.items()}
        single = any(a.ndim == 0 for a in arrays.values())
        arrays = {key: a.reshape(1, 1) if a.ndim == 0 else a[:, None] if a.ndim == 1 else a
                  for key, a in arrays.items()}
        out = self._encode(arrays, symbolic=False)
        if single:
            out = nest.map_structure(lambda x: x[0] if x.ndim == 2 and x.shape[0] == 1 else x,
                                     out)
        return nest.map_structure(Tensor._wrap, out)

    def _encode(self, values: dict[str, Any], symbolic: bool) -> Any:
        convert = (lambda x: x) if symbolic else _host
        pre = {key: convert(self.preprocessors[key](values[key])) for key in self.features}
        crossed = {c.name: convert(self._cross(c, [pre[k] for k in c.feature_names], symbolic))
                   for c in self.crosses}
        specs = {**self.features, **{c.name: c for c in self.crosses}}
        merged = {**pre, **crossed}
        names = sorted(pre) + sorted(crossed)
        encoded = {name: self._one_hot(name, merged[name], specs[name], convert, symbolic)
                   for name in names}
        if self.output_mode == "dict":
            return encoded
        return self._concat([encoded[name] for name in names], names,
                            [specs[name].output_mode for name in names], symbolic)

    def _cross(self, cross: Cross, parts: list[Any], symbolic: bool) -> Any:
        crosser = self.crossers[cross.name]
        if not symbolic:
            return crosser(parts)
        # `HashedCrossing` runs on host arrays only: in the functional graph it runs inside
        # a Lambda, which calls it on the batch's values.
        return _layers().Lambda(lambda xs: crosser(list(xs)), output_shape=(1,),
                                name=f"{cross.name}_crossing")(parts)

    def _one_hot(self, name: str, value: Any, spec: Any, convert: Any, symbolic: bool) -> Any:
        if spec.output_mode != "one_hot":
            return value
        dtype = str(getattr(value, "dtype", ""))
        # Checked on real values (a symbolic tensor's dtype may be its input's).
        if not symbolic and "int" not in dtype:
            raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. Thus its "
                             f"preprocessor should return an integer dtype. Instead it returns "
                             f"a {dtype} dtype.")
        if name not in self.one_hot_encoders:
            self.one_hot_encoders[name] = _layers().CategoryEncoding(
                num_tokens=_cardinality(name, self.preprocessors.get(name) or
                                        self.crossers[name]), output_mode="multi_hot")
        return convert(self.one_hot_encoders[name](value))

    def _concat(self, parts: list[Any], names: list[str], modes: list[str],
                symbolic: bool) -> Any:
        for name, part, mode in zip(names, parts, modes):
            dtype = str(part.dtype)
            raw = "int" in dtype or dtype in ("string", "object") or dtype.startswith("<U")
            # A symbolic tensor's dtype may be its input's: there the spec tells.
            if mode == "int" or (raw and not symbolic):
                raise ValueError(f"Cannot concatenate features because feature '{name}' has "
                                 f"not been encoded (it has dtype {dtype}). Consider using "
                                 "`output_mode='dict'`.")
        if symbolic:
            return parts[0] if len(parts) == 1 else _layers().Concatenate(axis=-1)(parts)
        return np.concatenate([np.asarray(p, np.float32) for p in parts], axis=-1)

    # ------------------------------------------------------------------ config

    def get_config(self) -> dict[str, Any]:
        return {"features": {k: f.get_config() for k, f in self.features.items()},
                "output_mode": self.output_mode,
                "crosses": [c.get_config() for c in self.crosses],
                "crossing_dim": self.crossing_dim, "hashing_dim": self.hashing_dim,
                "num_discretization_bins": self.num_discretization_bins, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureSpace:
        return cls(**config)


def _host(value: Any) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _cardinality(name: str, layer: Any) -> int:
    for attribute in ("vocabulary_size", "num_tokens", "num_bins"):
        value = getattr(layer, attribute, None)
        value = value() if callable(value) else value
        if value is not None:
            return int(value)
    raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. However it isn't a "
                     "standard feature and the dimensionality of its output space is not "
                     "known, thus it cannot be one-hot encoded. Try using `output_mode='int'`.")
