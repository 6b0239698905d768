"""Layer wrappers: TimeDistributed, Bidirectional and SpectralNormalization."""

from __future__ import annotations

from typing import Any

from distflow import ops
from distflow.keras.layers.base import InputSpec, Layer
from distflow.tensor import Tensor, stop_gradient

__all__ = ["TimeDistributed", "Bidirectional", "SpectralNormalization"]


def _serialize(layer: Layer) -> dict[str, Any]:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def _deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None) -> Layer:
    from distflow.keras import layers

    return layers.deserialize(config, custom_objects)


class TimeDistributed(Layer):
    """Applies `layer` to every time step of (batch, timesteps, ...) inputs.

    The steps are folded into the batch, so `layer` runs once on
    (batch * timesteps, ...) and its weights are shared across steps.
    """

    def __init__(self, layer: Layer, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `TimeDistributed` layer with a `Layer` "
                             f"instance. Received: {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer
        self.input_spec = InputSpec(min_ndim=3)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        inner = (None if input_shape[0] is None or input_shape[1] is None
                 else input_shape[0] * input_shape[1], *input_shape[2:])
        if not self.layer.built:
            self.layer.build(inner)
            self.layer.built = True

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        batch, steps = inputs.shape[:2]
        folded = ops.reshape(inputs, (batch * steps, *inputs.shape[2:]))
        out = self.layer(folded, training=training)
        return ops.reshape(out, (batch, steps, *out.shape[1:]))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        input_shape = tuple(input_shape)
        inner = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (*input_shape[:2], *tuple(inner)[1:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": _serialize(self.layer)}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> TimeDistributed:
        layer = _deserialize(config["layer"], custom_objects)
        return super().from_config({**config, "layer": layer})


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy of it backwards, then merges the outputs.

    Args:
        layer: an RNN layer (SimpleRNN, LSTM, GRU or RNN).
        merge_mode: 'concat' (default), 'sum', 'mul', 'ave' or None (a list of both).
        backward_layer: optional explicit backward layer (default: a copy of `layer`
            from its config with `go_backwards` flipped).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, layer: Layer, merge_mode: str | None = "concat",
                 backward_layer: Layer | None = None, **kwargs: Any):
        from distflow.keras.layers.recurrent import RNN

        if not isinstance(layer, RNN):
            raise ValueError("Please initialize `Bidirectional` layer with a recurrent layer "
                             f"(SimpleRNN, LSTM, GRU or RNN). Received: {layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: merge_mode={merge_mode!r}. "
                             f"Merge mode should be one of {_MERGE_MODES}")
        super().__init__(**kwargs)
        self.forward_layer = layer
        if backward_layer is None:
            config = {**layer.get_config(), "go_backwards": not layer.go_backwards,
                      "name": f"backward_{layer.name}"}
            backward_layer = type(layer).from_config(config)
        self.backward_layer = backward_layer
        for rnn in (layer, backward_layer):  # as Keras: masked steps output zeros here
            rnn.zero_output_for_mask = rnn.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.input_spec = InputSpec(ndim=3)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        for layer in (self.forward_layer, self.backward_layer):
            if not layer.built:
                layer.build(input_shape)

    def call(self, inputs: Tensor, training: bool = False, mask: Any = None,
             initial_state: Any = None) -> Any:
        fw_state = bw_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fw_state, bw_state = initial_state[:half], initial_state[half:]
        fw = self.forward_layer(inputs, training=training, mask=mask, initial_state=fw_state)
        bw = self.backward_layer(inputs, training=training, mask=mask,
                                 initial_state=bw_state)
        fw_states, bw_states = [], []
        if self.return_state:
            fw, *fw_states = fw
            bw, *bw_states = bw
        if self.return_sequences:  # the backward outputs come last step first
            bw = ops.getitem(bw, (slice(None), slice(None, None, -1)))
        merged = self._merge(fw, bw)
        if self.return_state:
            head = merged if isinstance(merged, list) else [merged]
            return [*head, *fw_states, *bw_states]
        return merged

    def _merge(self, fw: Tensor, bw: Tensor) -> Any:
        if self.merge_mode == "concat":
            return ops.concat([fw, bw], axis=-1)
        if self.merge_mode == "sum":
            return ops.add(fw, bw)
        if self.merge_mode == "mul":
            return ops.multiply(fw, bw)
        if self.merge_mode == "ave":
            return ops.divide(ops.add(fw, bw), 2.0)
        return [fw, bw]

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            shape, *states = shape
        shape = tuple(shape)
        if self.merge_mode == "concat":
            out: Any = (*shape[:-1], shape[-1] * 2)
        elif self.merge_mode is None:
            out = [shape, shape]
        else:
            out = shape
        if not self.return_state:
            return out
        return [*(out if isinstance(out, list) else [out]), *states, *states]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask if self.return_sequences else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": _serialize(self.forward_layer),
                "merge_mode": self.merge_mode,
                "backward_layer": _serialize(self.backward_layer)}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> Bidirectional:
        config = dict(config)
        config["layer"] = _deserialize(config["layer"], custom_objects)
        if config.get("backward_layer") is not None:
            config["backward_layer"] = _deserialize(config["backward_layer"], custom_objects)
        return super().from_config(config)



def _l2_normalized(x: Tensor) -> Tensor:
    """x / ||x|| over all entries (the inverse norm capped at 1 / 1e-7), as Keras."""
    inverse = ops.minimum(ops.divide(1.0, ops.sqrt(ops.sum(ops.square(x)))), 1e7)
    return ops.cast(ops.multiply(x, inverse), x.dtype)


class SpectralNormalization(Layer):
    """Divides the kernel (or embeddings) of `layer` by its largest singular value.

    In training calls, `power_iterations` steps of the power method refine the
    estimate `vector_u` (a non-trainable weight) of the leading singular vector and
    the kernel is replaced by kernel / sigma (in place, as Keras: the gradient is the
    wrapped layer's, at the normalized kernel); an all-zero kernel is left alone.
    Inference calls use the kernel as it is.

    Args:
        layer: a layer with a `kernel` or `embeddings` weight (Dense, Conv2D, Embedding...).
        power_iterations: power-method steps per training call (> 0).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, layer: Layer, power_iterations: int = 1, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `SpectralNormalization` layer with a `Layer` "
                             f"instance. Received: {layer!r}")
        super().__init__(**kwargs)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) or (
                power_iterations <= 0):
            raise ValueError("`power_iterations` should be greater than zero. Received: "
                             f"`power_iterations={power_iterations}`")
        self.layer, self.power_iterations = layer, power_iterations

    def build(self, input_shape: Any) -> None:
        from distflow.keras import initializers

        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True
        # Tracked here too (before vector_u), so the weights' order is Keras's:
        # kernel, vector_u, then the wrapped layer's others.
        self.kernel = kernel = self._kernel()
        self.vector_u = self.add_weight("vector_u", (1, kernel.shape[-1]),
                                        initializers.TruncatedNormal(stddev=0.02),
                                        trainable=False, dtype=kernel.dtype)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: input_shape[-1]})

    def _kernel(self) -> Any:
        """The wrapped layer's `kernel`, else its `embeddings`."""
        kernel = getattr(self.layer, "kernel", None)
        if kernel is None:
            kernel = getattr(self.layer, "embeddings", None)
        if kernel is None:
            raise ValueError(f"{type(self.layer).__name__} object has no attribute 'kernel' "
                             "nor 'embeddings'")
        return kernel

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if training:
            self.normalize_weights()
        out = self.layer(inputs)
        return ops.cast(out, inputs.dtype)

    def normalize_weights(self) -> None:
        """One training call's update: the power iterations, then kernel /= sigma.

        Written in ops (no host reads), so a compiled step runs it at every step; an
        all-zero kernel (sigma 0) and its `vector_u` are left as they are.
        """
        variable = self._kernel()
        kernel = stop_gradient(variable)
        weights = ops.reshape(kernel, (-1, kernel.shape[-1]))
        u = stop_gradient(self.vector_u)
        for _ in range(self.power_iterations):
            v = _l2_normalized(ops.matmul(u, ops.transpose(weights)))
            u = _l2_normalized(ops.matmul(v, weights))
        sigma = ops.reshape(ops.matmul(ops.matmul(v, weights), ops.transpose(u)), ())
        zero = ops.equal(ops.max(ops.abs(kernel)), 0.0)
        self.vector_u.assign(ops.where(zero, self.vector_u, u))
        safe = ops.where(zero, ops.ones_like(sigma), sigma)
        variable.assign(ops.cast(ops.divide(kernel, safe), kernel.dtype))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": _serialize(self.layer),
                "power_iterations": self.power_iterations}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> SpectralNormalization:
        layer = _deserialize(config["layer"], custom_objects)
        return super().from_config({**config, "layer": layer})
