"""keras.losses: values against NumPy formulas written here, gradients against central
differences, reductions and sample weights, label handling, name resolution, errors."""

import json

import numpy as np
import pytest

import distflow as df
from distflow.keras import losses
from distflow.test_util import check_grads

EPS = 1e-7
rng = np.random.default_rng(7)


# ------------------------------------------------------------ reference math


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_mse(t, p):
    return np.mean((p - t) ** 2, axis=-1)


def ref_mae(t, p):
    return np.mean(np.abs(p - t), axis=-1)


def ref_mape(t, p):
    return 100.0 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), EPS), axis=-1)


def ref_msle(t, p):
    return np.mean((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2, -1)


def ref_huber(t, p, delta=0.7):
    e = np.abs(p - t)
    return np.mean(np.where(e <= delta, 0.5 * e ** 2, delta * e - 0.5 * delta ** 2), axis=-1)


def ref_log_cosh(t, p):
    return np.mean(np.log(np.cosh(p - t)), axis=-1)


def ref_poisson(t, p):
    return np.mean(p - t * np.log(p + EPS), axis=-1)


def ref_cosine(t, p):
    return -np.sum(t * p, -1) / (np.linalg.norm(t, axis=-1) * np.linalg.norm(p, axis=-1))


def ref_hinge(t01, p):
    return np.mean(np.maximum(1 - (2 * t01 - 1) * p, 0), axis=-1)


def ref_squared_hinge(t01, p):
    return np.mean(np.maximum(1 - (2 * t01 - 1) * p, 0) ** 2, axis=-1)


def ref_categorical_hinge(t, p):
    positive = np.sum(t * p, -1)
    negative = np.max((1 - t) * p, -1)
    return np.maximum(negative - positive + 1, 0)


def ref_kld(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return np.sum(t * np.log(t / p), axis=-1)


def ref_bce(t, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p), axis=-1)


def ref_bce_logits(t, x):
    p = sigmoid(x)
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p), axis=-1)


def ref_binary_focal(t, p, gamma=2.0, alpha=0.25, balance=False):
    pc = np.clip(p, EPS, 1 - EPS)
    bce = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    p_t = t * p + (1 - t) * (1 - p)
    focal = (1 - p_t) ** gamma * bce
    if balance:
        focal = (t * alpha + (1 - t) * (1 - alpha)) * focal
    return np.mean(focal, axis=-1)


def ref_categorical_focal(t, p, gamma=2.0, alpha=0.25):
    q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -np.sum(alpha * (1 - q) ** gamma * t * np.log(q), axis=-1)


def ref_cce(t, p):
    q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -np.sum(t * np.log(q), axis=-1)


def ref_cce_logits(t, x):
    return -np.sum(t * np.log(softmax(x)), axis=-1)


def ref_scce(labels, p):
    q = p / p.sum(-1, keepdims=True)
    return -np.log(np.clip(q[np.arange(len(labels)), labels], EPS, 1 - EPS))


def ref_scce_logits(labels, x):
    return -np.log(softmax(x)[np.arange(len(labels)), labels])


# --------------------------------------------------------------------- data

N, C = 6, 4


def regression():
    t = rng.uniform(0.5, 2.0, (N, 3))
    return t, t + rng.choice([-1, 1], (N, 3)) * rng.uniform(0.1, 1.5, (N, 3))


def positive():
    return rng.uniform(0.2, 2.0, (N, 3)), rng.uniform(0.2, 2.0, (N, 3))


def binary_probs():
    return rng.integers(0, 2, (N, 3)).astype(np.float64), rng.uniform(0.05, 0.95, (N, 3))


def binary_logits():
    return rng.integers(0, 2, (N, 3)).astype(np.float64), rng.standard_normal((N, 3)) * 2


def onehot_probs():
    return np.eye(C)[rng.integers(0, C, N)], rng.uniform(0.1, 1.0, (N, C))


def onehot_logits():
    return np.eye(C)[rng.integers(0, C, N)], rng.standard_normal((N, C)) * 2


def soft_labels():
    return softmax(rng.standard_normal((N, C))), softmax(rng.standard_normal((N, C)))


def sparse_probs():
    return rng.integers(0, C, N), rng.uniform(0.1, 1.0, (N, C))


def sparse_logits():
    return rng.integers(0, C, N), rng.standard_normal((N, C)) * 2


# (loss object, NumPy reference, data generator)
CASES = {
    "mse": (losses.MeanSquaredError(), ref_mse, regression),
    "mae": (losses.MeanAbsoluteError(), ref_mae, regression),
    "mape": (losses.MeanAbsolutePercentageError(), ref_mape, regression),
    "msle": (losses.MeanSquaredLogarithmicError(), ref_msle, positive),
    "huber": (losses.Huber(delta=0.7), ref_huber, regression),
    "log_cosh": (losses.LogCosh(), ref_log_cosh, regression),
    "poisson": (losses.Poisson(), ref_poisson, positive),
    "cosine": (losses.CosineSimilarity(), ref_cosine, regression),
    "hinge": (losses.Hinge(), ref_hinge, binary_logits),
    "squared_hinge": (losses.SquaredHinge(), ref_squared_hinge, binary_logits),
    "categorical_hinge": (losses.CategoricalHinge(), ref_categorical_hinge, onehot_logits),
    "kld": (losses.KLDivergence(), ref_kld, soft_labels),
    "bce": (losses.BinaryCrossentropy(), ref_bce, binary_probs),
    "bce_logits": (losses.BinaryCrossentropy(from_logits=True), ref_bce_logits, binary_logits),
    "cce": (losses.CategoricalCrossentropy(), ref_cce, onehot_probs),
    "cce_soft": (losses.CategoricalCrossentropy(), ref_cce, soft_labels),
    "cce_logits": (losses.CategoricalCrossentropy(from_logits=True), ref_cce_logits,
                   onehot_logits),
    "binary_focal": (losses.BinaryFocalCrossentropy(gamma=1.5),
                     lambda t, p: ref_binary_focal(t, p, gamma=1.5), binary_probs),
    "binary_focal_logits_balanced": (
        losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.3, from_logits=True),
        lambda t, x: ref_binary_focal(t, sigmoid(x), alpha=0.3, balance=True), binary_logits),
    "categorical_focal": (losses.CategoricalFocalCrossentropy(), ref_categorical_focal,
                          onehot_probs),
    "categorical_focal_logits": (
        losses.CategoricalFocalCrossentropy(from_logits=True, gamma=1.0, alpha=0.5),
        lambda t, x: ref_categorical_focal(t, softmax(x), gamma=1.0, alpha=0.5), onehot_logits),
    "scce": (losses.SparseCategoricalCrossentropy(), ref_scce, sparse_probs),
    "scce_logits": (losses.SparseCategoricalCrossentropy(from_logits=True), ref_scce_logits,
                    sparse_logits),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_match_numpy_formulas(case):
    loss, ref, data = CASES[case]
    t, p = data()
    expected = ref(t, p)
    out = loss(t, p)
    assert out.shape == ()
    np.testing.assert_allclose(out.numpy(), expected.mean(), rtol=1e-7)
    per_sample = type(loss).from_config({**loss.get_config(), "reduction": "none"})
    np.testing.assert_allclose(per_sample(t, p).numpy(), expected, rtol=1e-7)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_inputs_give_float32_loss_close_to_float64_math(case):
    loss, ref, data = CASES[case]
    t, p = data()
    out = loss(t.astype(np.float32), p.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref(t, p).mean(), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_match_central_differences(case):
    loss, _, data = CASES[case]
    t, p = data()
    check_grads(lambda y_pred: loss(t, y_pred), [p], rtol=1e-5, atol=1e-8)
    weights = rng.uniform(0.0, 2.0, N)
    check_grads(lambda y_pred: loss(t, y_pred, sample_weight=weights), [p], rtol=1e-5,
                atol=1e-8)


def test_logit_gradient_is_softmax_minus_labels_over_batch():
    t, x = onehot_logits()
    logits = df.Variable(x, dtype=np.float64)
    with df.GradientTape() as tape:
        value = losses.CategoricalCrossentropy(from_logits=True)(t, logits)
    np.testing.assert_allclose(tape.gradient(value, logits).numpy(), (softmax(x) - t) / N,
                               rtol=1e-10, atol=1e-12)
    labels = t.argmax(-1)
    with df.GradientTape() as tape:
        value = losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    np.testing.assert_allclose(tape.gradient(value, logits).numpy(), (softmax(x) - t) / N,
                               rtol=1e-10, atol=1e-12)


def test_binary_logit_gradient_is_sigmoid_minus_labels():
    t, x = binary_logits()
    logits = df.Variable(x, dtype=np.float64)
    with df.GradientTape() as tape:
        value = losses.BinaryCrossentropy(from_logits=True)(t, logits)
    np.testing.assert_allclose(tape.gradient(value, logits).numpy(), (sigmoid(x) - t) / t.size,
                               rtol=1e-10, atol=1e-12)


def test_gradient_reaches_a_variable_through_a_model_output():
    x = rng.standard_normal((N, 3))
    y = rng.standard_normal((N, 1))
    w = df.Variable(rng.standard_normal((3, 1)), dtype=np.float64)
    with df.GradientTape() as tape:
        value = losses.MeanSquaredError()(y, df.matmul(x, w))
    expected = 2 * x.T @ (x @ w.numpy() - y) / N
    np.testing.assert_allclose(tape.gradient(value, w).numpy(), expected, rtol=1e-10)


def test_gradient_flows_into_y_true_when_it_is_a_watched_tensor():
    t, p = regression()
    y_true = df.constant(t, dtype=np.float64)
    with df.GradientTape() as tape:
        tape.watch(y_true)
        value = losses.MeanSquaredError()(y_true, p)
    np.testing.assert_allclose(tape.gradient(value, y_true).numpy(), 2 * (t - p) / t.size,
                               rtol=1e-10)


# --------------------------------------------------------- reductions, weights


def test_reductions_and_sample_weights():
    t, p = regression()
    per_sample = ref_mse(t, p)
    w = rng.uniform(0.0, 2.0, N)
    mse = losses.MeanSquaredError
    np.testing.assert_allclose(mse(reduction="sum")(t, p).numpy(), per_sample.sum(), rtol=1e-12)
    np.testing.assert_allclose(mse(reduction="none")(t, p).numpy(), per_sample, rtol=1e-12)
    np.testing.assert_allclose(mse(reduction=None)(t, p, w).numpy(), per_sample * w, rtol=1e-12)
    # sum_over_batch_size divides by the number of samples, not by the weight total.
    np.testing.assert_allclose(mse()(t, p, w).numpy(), (per_sample * w).sum() / N, rtol=1e-12)
    np.testing.assert_allclose(mse()(t, p, w[:, None]).numpy(), (per_sample * w).sum() / N,
                               rtol=1e-12)
    np.testing.assert_allclose(mse(reduction="mean_with_sample_weight")(t, p, w).numpy(),
                               (per_sample * w).sum() / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(mse()(t, p, 3.0).numpy(), 3 * per_sample.mean(), rtol=1e-12)


def test_sample_weight_per_timestep_and_per_sample_for_sequences():
    t = rng.standard_normal((N, 5, 2))
    p = rng.standard_normal((N, 5, 2))
    per_step = np.mean((p - t) ** 2, axis=-1)  # (N, 5)
    w = rng.uniform(0, 1, N)
    np.testing.assert_allclose(losses.MeanSquaredError()(t, p, w).numpy(),
                               (per_step * w[:, None]).sum() / per_step.size, rtol=1e-12)
    w_steps = rng.uniform(0, 1, (N, 5))
    np.testing.assert_allclose(losses.MeanSquaredError()(t, p, w_steps).numpy(),
                               (per_step * w_steps).sum() / per_step.size, rtol=1e-12)


def test_bad_sample_weight_shape_names_both_shapes():
    t, p = regression()
    with pytest.raises(ValueError, match=r"sample_weight.*\(4,\)"):
        losses.MeanSquaredError()(t, p, np.ones(4))


def test_ignore_class_zeroes_entries_and_averages_over_the_rest():
    labels, x = sparse_logits()
    labels[[1, 4]] = -1
    kept = labels != -1
    expected = ref_scce_logits(labels[kept], x[kept])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    np.testing.assert_allclose(loss(labels, x).numpy(), expected.mean(), rtol=1e-10)
    per_sample = losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=-1, reduction="none")(labels, x).numpy()
    assert np.all(per_sample[~kept] == 0)
    np.testing.assert_allclose(per_sample[kept], expected, rtol=1e-10)
    logits = df.Variable(x, dtype=np.float64)
    with df.GradientTape() as tape:
        value = loss(labels, logits)
    assert np.all(tape.gradient(value, logits).numpy()[~kept] == 0)


def test_empty_batch_gives_zero_not_nan():
    value = losses.SparseCategoricalCrossentropy()(np.zeros(0, int), np.zeros((0, 3)))
    assert float(value) == 0.0


# ----------------------------------------------------- label handling, clipping


def test_label_smoothing():
    t, p = onehot_probs()
    s = 0.2
    smoothed = t * (1 - s) + s / C
    np.testing.assert_allclose(losses.CategoricalCrossentropy(label_smoothing=s)(t, p).numpy(),
                               ref_cce(smoothed, p).mean(), rtol=1e-10)
    tb, pb = binary_probs()
    np.testing.assert_allclose(losses.BinaryCrossentropy(label_smoothing=s)(tb, pb).numpy(),
                               ref_bce(tb * (1 - s) + 0.5 * s, pb).mean(), rtol=1e-10)
    xb = rng.standard_normal(pb.shape)
    np.testing.assert_allclose(
        losses.BinaryCrossentropy(from_logits=True, label_smoothing=s)(tb, xb).numpy(),
        ref_bce_logits(tb * (1 - s) + 0.5 * s, xb).mean(), rtol=1e-10)


def test_probabilities_of_zero_and_one_are_clipped_to_finite_losses():
    worst = -np.log(EPS)
    bce = losses.BinaryCrossentropy(reduction="none")([[1.0], [0.0]], np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(bce.numpy(), [worst, worst], rtol=1e-6)
    cce = losses.CategoricalCrossentropy()([[0.0, 1.0]], np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(cce.numpy(), worst, rtol=1e-6)
    scce = losses.SparseCategoricalCrossentropy()([1], np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(scce.numpy(), worst, rtol=1e-6)


def test_huge_logits_stay_finite():
    x = np.array([[1000.0, -1000.0, 0.0]])
    assert np.isfinite(losses.CategoricalCrossentropy(from_logits=True)([[0, 1, 0]], x).numpy())
    assert np.isfinite(losses.BinaryCrossentropy(from_logits=True)([[0, 1, 1]], x).numpy())


@pytest.mark.parametrize("labels", [
    [0, 2, 1], np.array([[0], [2], [1]]), np.array([0.0, 2.0, 1.0]),
    df.constant(np.array([0, 2, 1], dtype=np.int32))], ids=["list", "column", "float", "tensor"])
def test_sparse_labels_in_every_common_form(labels):
    x = rng.standard_normal((3, 4))
    expected = ref_scce_logits(np.array([0, 2, 1]), x).mean()
    np.testing.assert_allclose(
        losses.SparseCategoricalCrossentropy(from_logits=True)(labels, x).numpy(), expected,
        rtol=1e-10)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, softmax(x)).numpy(),
                               ref_scce(np.array([0, 2, 1]), softmax(x)), rtol=1e-6)


def test_rank_one_targets_against_single_output_column():
    t = rng.standard_normal(N)
    p = rng.standard_normal((N, 1))
    np.testing.assert_allclose(losses.MeanSquaredError()(t, p).numpy(),
                               np.mean((p[:, 0] - t) ** 2), rtol=1e-12)
    assert losses.mean_squared_error(t, p).shape == (N,)


def test_functions_return_one_value_per_sample():
    t, p = onehot_probs()
    assert losses.categorical_crossentropy(t, p).shape == (N,)
    np.testing.assert_allclose(losses.mse(t, p).numpy(), ref_mse(t, p), rtol=1e-12)
    np.testing.assert_allclose(losses.huber(t, p, delta=0.3).numpy(), ref_huber(t, p, 0.3),
                               rtol=1e-12)


# ------------------------------------------------------------------- errors


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"same shape.*\(6, 3\).*\(6, 4\)"):
        losses.MeanSquaredError()(np.zeros((6, 3)), np.zeros((6, 4)))
    with pytest.raises(ValueError, match="one class id per sample"):
        losses.SparseCategoricalCrossentropy()(np.zeros((6, 4)), np.ones((6, 4)))


def test_labels_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 4\).*7"):
        losses.SparseCategoricalCrossentropy()([0, 7], np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        losses.SparseCategoricalCrossentropy(from_logits=True)([-1, 0], np.ones((2, 4)))


def test_fractional_sparse_labels_are_rejected():
    with pytest.raises(ValueError, match="integer class ids"):
        losses.SparseCategoricalCrossentropy()([0.5, 1.0], np.ones((2, 4)))


@pytest.mark.parametrize("make, pattern", [
    (lambda: losses.MeanSquaredError(reduction="avg"), "reduction.*'avg'"),
    (lambda: losses.CategoricalCrossentropy(label_smoothing=1.5), "label_smoothing=1.5"),
    (lambda: losses.Huber(delta=0), "delta=0"),
])
def test_bad_constructor_arguments(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


# ------------------------------------------------------------- resolution


@pytest.mark.parametrize("name, cls", [
    ("mse", losses.MeanSquaredError), ("mean_squared_error", losses.MeanSquaredError),
    ("MSE", losses.MeanSquaredError), ("MeanSquaredError", losses.MeanSquaredError),
    ("mae", losses.MeanAbsoluteError), ("mean_absolute_error", losses.MeanAbsoluteError),
    ("mape", losses.MeanAbsolutePercentageError), ("huber", losses.Huber),
    ("log_cosh", losses.LogCosh), ("logcosh", losses.LogCosh),
    ("binary_crossentropy", losses.BinaryCrossentropy),
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy),
    ("kld", losses.KLDivergence), ("kl_divergence", losses.KLDivergence),
    ("hinge", losses.Hinge), ("poisson", losses.Poisson),
    ("binary_focal_crossentropy", losses.BinaryFocalCrossentropy),
    ("categorical_focal_crossentropy", losses.CategoricalFocalCrossentropy),
])
def test_get_resolves_names(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls
    assert not getattr(loss, "from_logits", False)


def test_get_passes_instances_and_wraps_callables():
    loss = losses.Huber(delta=2.0)
    assert losses.get(loss) is loss
    assert losses.get(None) is None
    assert type(losses.get(losses.mean_absolute_error)) is losses.MeanAbsoluteError
    assert type(losses.get(losses.SquaredHinge)) is losses.SquaredHinge

    def doubled_mse(y_true, y_pred):
        return losses.mean_squared_error(y_true, y_pred) * 2.0

    wrapped = losses.get(doubled_mse)
    assert wrapped.name == "doubled_mse"
    t, p = regression()
    w = rng.uniform(0, 1, N)
    np.testing.assert_allclose(wrapped(t, p, w).numpy(), (2 * ref_mse(t, p) * w).mean(),
                               rtol=1e-12)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown loss: 'msee'.*'mse'.*sparse_categorical"):
        losses.get("msee")
    with pytest.raises(ValueError, match="Could not interpret"):
        losses.get(42)


@pytest.mark.parametrize("loss", [
    losses.Huber(delta=0.3, reduction="sum", name="h"),
    losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
    losses.BinaryCrossentropy(label_smoothing=0.2, reduction="none"),
    losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    losses.CosineSimilarity(axis=-1),
    losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.4, gamma=1.0),
    losses.LossFunctionWrapper(losses.huber, delta=0.5, reduction="sum"),
], ids=lambda loss: type(loss).__name__)
def test_serialize_round_trip_through_json(loss):
    config = json.loads(json.dumps(losses.serialize(loss)))
    restored = losses.deserialize(config)
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    t, p = onehot_probs()
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        t = t.argmax(-1)
    np.testing.assert_allclose(restored(t, p).numpy(), loss(t, p).numpy(), rtol=1e-12)


def test_function_serializes_to_its_name_and_custom_objects_resolve():
    assert losses.serialize(losses.mse) == "mean_squared_error"
    assert type(losses.deserialize("mean_squared_error")) is losses.MeanSquaredError

    def my_loss(y_true, y_pred):
        return losses.mean_absolute_error(y_true, y_pred)

    restored = losses.deserialize(losses.serialize(my_loss), custom_objects={"my_loss": my_loss})
    assert isinstance(restored, losses.LossFunctionWrapper) and restored.fn is my_loss
    with pytest.raises(ValueError, match="Unknown loss class: 'Nope'"):
        losses.deserialize({"class_name": "Nope", "config": {}})


# -------------------------------------------------------------- extensions


class ScaledAbsolute(losses.Loss):
    """A user loss written as in Keras: `call` on tensors, config for saving."""

    def __init__(self, scale=2.0, name="scaled_absolute", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return df.reduce_mean(df.abs(y_true - y_pred), axis=-1) * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def test_user_loss_subclass_gets_tensors_reduces_and_round_trips():
    t, p = regression()
    w = rng.uniform(0, 1, N)
    loss = ScaledAbsolute(scale=3.0, reduction="sum")
    np.testing.assert_allclose(loss(t.tolist(), p, w).numpy(), np.sum(3 * ref_mae(t, p) * w),
                               rtol=1e-6)
    check_grads(lambda y_pred: loss(t, y_pred), [p])
    restored = losses.deserialize(losses.serialize(loss),
                                  custom_objects={"ScaledAbsolute": ScaledAbsolute})
    assert restored.scale == 3.0 and restored.reduction == "sum"


def test_sequence_labels_with_padding_class():
    labels = rng.integers(1, C, (3, 5))
    labels[0, 3:] = 0  # padding
    labels[2, 4:] = 0
    logits = rng.standard_normal((3, 5, C))
    kept = labels != 0
    log_probs = np.log(softmax(logits))
    per_token = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    np.testing.assert_allclose(loss(labels, logits).numpy(), per_token[kept].mean(), rtol=1e-10)
    probs_loss = losses.SparseCategoricalCrossentropy(reduction="sum")
    np.testing.assert_allclose(probs_loss(labels, softmax(logits)).numpy(), per_token.sum(),
                               rtol=1e-6)
    check_grads(lambda y_pred: loss(labels, y_pred), [logits])
