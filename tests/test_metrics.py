"""keras.metrics: values against NumPy formulas written here, accumulation over batches
equal to one batch, weights, reset and merge, Keras's "accuracy" resolution, errors."""

import json

import numpy as np
import pytest

import distflow as df
from distflow.keras import losses, metrics

EPS = 1e-7
rng = np.random.default_rng(11)
N, C = 30, 5


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def weighted_mean(values, w):
    return np.sum(values * w) / np.sum(w)


# ------------------------------------------------------------------- data


def sparse_data():
    return rng.integers(0, C, N), softmax(rng.standard_normal((N, C)))


def onehot_data():
    labels, probs = sparse_data()
    return np.eye(C)[labels], probs


def binary_data():
    return rng.integers(0, 2, (N, 1)).astype(np.float64), rng.uniform(0, 1, (N, 1))


def regression_data():
    t = rng.uniform(0.5, 2.0, (N, 3))
    return t, t + rng.standard_normal((N, 3)) * 0.5


def ref_sparse_correct(labels, probs):
    return (probs.argmax(-1) == labels).astype(float)


def ref_in_top_k(labels, scores, k):
    # Count classes scoring strictly higher than the label's class (ties count as in).
    higher = np.array([(row > row[label]).sum() for row, label in zip(scores, labels)])
    return (higher < k).astype(float)


# (metric factory, data, per-sample reference)
CASES = {
    "sparse_categorical_accuracy": (metrics.SparseCategoricalAccuracy, sparse_data,
                                    ref_sparse_correct),
    "categorical_accuracy": (metrics.CategoricalAccuracy, onehot_data,
                             lambda t, p: ref_sparse_correct(t.argmax(-1), p)),
    "binary_accuracy": (metrics.BinaryAccuracy, binary_data,
                        lambda t, p: ((p[:, 0] > 0.5) == t[:, 0]).astype(float)),
    "binary_accuracy_0.7": (lambda: metrics.BinaryAccuracy(threshold=0.7), binary_data,
                            lambda t, p: ((p[:, 0] > 0.7) == t[:, 0]).astype(float)),
    "sparse_top_3": (lambda: metrics.SparseTopKCategoricalAccuracy(k=3), sparse_data,
                     lambda t, p: ref_in_top_k(t, p, 3)),
    "top_2": (lambda: metrics.TopKCategoricalAccuracy(k=2), onehot_data,
              lambda t, p: ref_in_top_k(t.argmax(-1), p, 2)),
    "mse": (metrics.MeanSquaredError, regression_data, lambda t, p: np.mean((p - t) ** 2, -1)),
    "mae": (metrics.MeanAbsoluteError, regression_data, lambda t, p: np.mean(np.abs(p - t), -1)),
    "mape": (metrics.MeanAbsolutePercentageError, regression_data,
             lambda t, p: 100 * np.mean(np.abs(t - p) / np.abs(t), -1)),
    "msle": (metrics.MeanSquaredLogarithmicError, regression_data,
             lambda t, p: np.mean((np.log1p(np.maximum(p, EPS)) - np.log1p(t)) ** 2, -1)),
    "scce": (metrics.SparseCategoricalCrossentropy, sparse_data,
             lambda t, p: -np.log(p[np.arange(len(t)), t])),
    "cce": (metrics.CategoricalCrossentropy, onehot_data,
            lambda t, p: -np.sum(t * np.log(p), -1)),
    "bce": (metrics.BinaryCrossentropy, binary_data,
            lambda t, p: -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p), -1)),
    "kld": (metrics.KLDivergence, lambda: (softmax(rng.standard_normal((N, C))),
                                           softmax(rng.standard_normal((N, C)))),
            lambda t, p: np.sum(t * np.log(t / p), -1)),
    "hinge": (metrics.Hinge, lambda: (rng.integers(0, 2, (N, 2)).astype(float),
                                      rng.standard_normal((N, 2))),
              lambda t, p: np.mean(np.maximum(1 - (2 * t - 1) * p, 0), -1)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_and_weighted_values_match_numpy(case):
    make, data, ref = CASES[case]
    t, p = data()
    per_sample = ref(t, p)
    metric = make()
    metric.update_state(t, p)
    np.testing.assert_allclose(metric.result(), per_sample.mean(), rtol=1e-9, atol=1e-12)
    w = rng.uniform(0, 2, N)
    weighted = make()
    weighted.update_state(t, p, sample_weight=w)
    np.testing.assert_allclose(weighted.result(), weighted_mean(per_sample, w), rtol=1e-9,
                               atol=1e-12)


def test_top_k_counts_ties_at_the_boundary_as_hits():
    scores = np.array([[0.3, 0.3, 0.3, 0.1], [0.5, 0.2, 0.2, 0.1]])
    metric = metrics.SparseTopKCategoricalAccuracy(k=1)
    metric.update_state([2, 2], scores)
    assert metric.result() == 0.5


def test_rmse_is_root_of_weighted_mean_squared_error():
    t, p = regression_data()
    w = rng.uniform(0, 1, N)
    metric = metrics.RootMeanSquaredError()
    metric.update_state(t, p, w)
    expected = np.sqrt(np.sum((p - t) ** 2 * w[:, None]) / (np.sum(w) * 3))
    np.testing.assert_allclose(metric.result(), expected, rtol=1e-12)


def test_mean_and_sum():
    values = rng.standard_normal(N)
    w = rng.uniform(0, 1, N)
    mean = metrics.Mean()
    mean.update_state(values[:10], w[:10])
    mean.update_state(values[10:], w[10:])
    np.testing.assert_allclose(mean.result(), weighted_mean(values, w), rtol=1e-12)
    total = metrics.Sum()
    total.update_state(values, w)
    np.testing.assert_allclose(total.result(), np.sum(values * w), rtol=1e-12)
    scalar = metrics.Mean()
    for v in (1.0, 2.0, 6.0):
        scalar.update_state(v)
    assert scalar.result() == 3.0


def test_mean_counts_each_sample_once_when_values_have_several_axes():
    values = rng.standard_normal((4, 3))
    mean = metrics.Mean()
    mean.update_state(values, sample_weight=[1.0, 0.0, 2.0, 1.0])
    row_means = values.mean(axis=1)
    np.testing.assert_allclose(mean.result(), weighted_mean(row_means, np.array([1, 0, 2, 1])),
                               rtol=1e-12)


# --------------------------------------------------- accumulation and state

ALL_METRICS = {
    **{name: (make, data) for name, (make, data, _) in CASES.items()},
    "rmse": (metrics.RootMeanSquaredError, regression_data),
    "precision": (metrics.Precision, binary_data),
    "recall": (lambda: metrics.Recall(thresholds=[0.2, 0.5, 0.8]), binary_data),
    "precision_class_id": (lambda: metrics.Precision(class_id=2), onehot_data),
    "recall_top_k": (lambda: metrics.Recall(top_k=2), onehot_data),
    "auc_roc": (metrics.AUC, binary_data),
    "auc_pr": (lambda: metrics.AUC(curve="PR", num_thresholds=50), binary_data),
    "accuracy_by_shape": (lambda: metrics.get("accuracy"), sparse_data),
}


@pytest.mark.parametrize("case", sorted(ALL_METRICS))
def test_several_batches_equal_one_big_batch(case):
    make, data = ALL_METRICS[case]
    t, p = data()
    w = rng.uniform(0, 2, N)
    whole = make()
    whole.update_state(t, p, w)
    batched = make()
    for part in np.split(np.arange(N), [7, 8, 20]):
        batched.update_state(t[part], df.constant(p[part]), w[part])
    np.testing.assert_allclose(batched.result(), whole.result(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", sorted(ALL_METRICS))
def test_reset_state_forgets_everything(case):
    make, data = ALL_METRICS[case]
    t, p = data()
    metric = make()
    metric.update_state(t[::-1], p)  # unrelated statistics first
    metric.reset_state()
    metric.update_state(t, p)
    fresh = make()
    fresh.update_state(t, p)
    np.testing.assert_allclose(metric.result(), fresh.result(), rtol=1e-12)


@pytest.mark.parametrize("case", ["sparse_categorical_accuracy", "mse", "precision", "auc_roc"])
def test_merge_state_of_workers_equals_one_metric(case):
    make, data = ALL_METRICS[case]
    t, p = data()
    workers = [make(), make()]
    workers[0].update_state(t[:12], p[:12])
    workers[1].update_state(t[12:], p[12:])
    merged = make()
    merged.merge_state([workers[0], workers[1].get_state()])
    whole = make()
    whole.update_state(t, p)
    np.testing.assert_allclose(merged.result(), whole.result(), rtol=1e-12)
    restored = make()
    restored.set_state(json.loads(json.dumps({k: v.tolist()
                                              for k, v in merged.get_state().items()})))
    np.testing.assert_allclose(restored.result(), whole.result(), rtol=1e-12)


def test_result_is_a_float_with_numpy_and_zero_before_updates():
    metric = metrics.SparseCategoricalAccuracy()
    assert metric.result() == 0.0
    value = metric([0, 1], np.array([[0.9, 0.1], [0.8, 0.2]]))
    assert isinstance(value, float) and value == 0.5
    assert value.numpy() == np.float64(0.5)


def test_running_totals_are_float64():
    metric = metrics.Mean()
    for _ in range(3):
        metric.update_state(np.full(1000, 0.1, dtype=np.float32))
    assert metric.total.dtype == np.float64
    np.testing.assert_allclose(metric.result(), np.float64(np.float32(0.1)), rtol=1e-12)


# -------------------------------------------------- precision, recall, AUC


def ref_confusion(labels, scores, threshold, w):
    predicted = scores > threshold
    tp = np.sum(w * (predicted & labels))
    fp = np.sum(w * (predicted & ~labels))
    fn = np.sum(w * (~predicted & labels))
    return tp, fp, fn


def test_precision_and_recall_at_several_thresholds():
    t, p = binary_data()
    w = rng.uniform(0, 1, N)
    thresholds = [0.1, 0.5, 0.9]
    precision = metrics.Precision(thresholds=thresholds)
    recall = metrics.Recall(thresholds=thresholds)
    precision.update_state(t, p, w)
    recall.update_state(t, p, w)
    for i, th in enumerate(thresholds):
        tp, fp, fn = ref_confusion(t[:, 0] == 1, p[:, 0], th, w)
        np.testing.assert_allclose(precision.result()[i], tp / (tp + fp), rtol=1e-12)
        np.testing.assert_allclose(recall.result()[i], tp / (tp + fn), rtol=1e-12)


def test_precision_class_id_and_top_k():
    t, p = onehot_data()
    precision = metrics.Precision(class_id=1)
    precision.update_state(t, p)
    tp, fp, _ = ref_confusion(t[:, 1] == 1, p[:, 1], 0.5, np.ones(N))
    np.testing.assert_allclose(precision.result(), tp / (tp + fp) if tp + fp else 0.0)
    recall = metrics.Recall(top_k=2)
    recall.update_state(t, p)
    # With top_k and no threshold, a label is recalled when its class is in the top 2.
    top2 = np.argsort(-p, axis=-1)[:, :2]
    hits = sum(t[i, top2[i]].sum() for i in range(N))
    np.testing.assert_allclose(recall.result(), hits / N, rtol=1e-12)


def test_precision_without_positive_predictions_is_zero():
    metric = metrics.Precision()
    metric.update_state([1, 0], [0.1, 0.2])
    assert metric.result() == 0.0


def mann_whitney_auc(labels, scores, w):
    """P(score of a positive > score of a negative), ties count half, weighted pairs."""
    pos, neg = scores[labels], scores[~labels]
    wp, wn = w[labels], w[~labels]
    greater = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return np.sum(wp[:, None] * wn[None, :] * greater) / (wp.sum() * wn.sum())


def test_roc_auc_is_exact_when_scores_fall_between_thresholds():
    n_thresholds = 200
    scores = (rng.integers(0, n_thresholds - 1, 400) + 0.5) / (n_thresholds - 1)
    labels = rng.uniform(0, 1, 400) < scores  # informative but imperfect
    w = rng.uniform(0.5, 1.5, 400)
    auc = metrics.AUC(num_thresholds=n_thresholds)
    auc.update_state(labels, scores, w)
    np.testing.assert_allclose(auc.result(), mann_whitney_auc(labels, scores, w), rtol=1e-9)


def test_auc_extremes_logits_and_pr_bounds():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    for curve in ("ROC", "PR"):
        perfect = metrics.AUC(curve=curve)
        perfect.update_state(labels, scores)
        np.testing.assert_allclose(perfect.result(), 1.0, rtol=1e-6)
    logits = rng.standard_normal(200) * 3
    y = rng.uniform(0, 1, 200) < 1 / (1 + np.exp(-logits))
    from_logits, from_probs = metrics.AUC(from_logits=True), metrics.AUC()
    from_logits.update_state(y, logits)
    from_probs.update_state(y, 1 / (1 + np.exp(-logits)))
    np.testing.assert_allclose(from_logits.result(), from_probs.result(), rtol=1e-12)
    sums = {}
    for method in ("minoring", "interpolation", "majoring"):
        m = metrics.AUC(curve="PR", summation_method=method)
        m.update_state(y, 1 / (1 + np.exp(-logits)))
        sums[method] = float(m.result())
    assert sums["minoring"] <= sums["interpolation"] + 1e-9
    assert sums["interpolation"] <= sums["majoring"] + 1e-9
    assert 0.5 < sums["interpolation"] < 1.0


def test_uninformative_scores_give_roc_auc_near_one_half():
    auc = metrics.AUC()
    auc.update_state(rng.integers(0, 2, 20000), rng.uniform(0, 1, 20000))
    assert abs(auc.result() - 0.5) < 0.02


# ------------------------------------------------------------- resolution


@pytest.mark.parametrize("loss, expected", [
    ("sparse_categorical_crossentropy", metrics.SparseCategoricalAccuracy),
    ("categorical_crossentropy", metrics.CategoricalAccuracy),
    ("binary_crossentropy", metrics.BinaryAccuracy),
    ("bce", metrics.BinaryAccuracy),
    (losses.sparse_categorical_crossentropy, metrics.SparseCategoricalAccuracy),
    (losses.categorical_crossentropy, metrics.CategoricalAccuracy),
    (losses.SparseCategoricalCrossentropy(from_logits=True), metrics.SparseCategoricalAccuracy),
    (losses.CategoricalCrossentropy(), metrics.CategoricalAccuracy),
    (losses.BinaryCrossentropy(), metrics.BinaryAccuracy),
    (losses.Hinge(), metrics.BinaryAccuracy),
    ("binary_focal_crossentropy", metrics.BinaryAccuracy),
    (losses.CategoricalFocalCrossentropy(), metrics.CategoricalAccuracy),
], ids=repr)
def test_accuracy_follows_the_loss(loss, expected):
    for name in ("accuracy", "acc"):
        metric = metrics.resolve(name, loss)
        assert type(metric) is expected
        assert metric.name == name


def test_binary_accuracy_from_logits_thresholds_at_zero():
    metric = metrics.resolve("accuracy", losses.BinaryCrossentropy(from_logits=True))
    metric.update_state([[1], [0], [1]], np.array([[0.2], [-0.1], [-3.0]]))
    np.testing.assert_allclose(metric.result(), 2 / 3)


def test_accuracy_with_a_hinge_loss_reads_the_sign_of_the_margin():
    metric = metrics.resolve("accuracy", "hinge")
    metric.update_state([[1], [0], [1], [0]], np.array([[0.3], [-0.2], [-0.4], [0.1]]))
    np.testing.assert_allclose(metric.result(), 0.5)


def test_crossentropy_follows_the_loss_including_from_logits():
    labels, logits = rng.integers(0, C, N), rng.standard_normal((N, C))
    metric = metrics.resolve("crossentropy",
                             losses.SparseCategoricalCrossentropy(from_logits=True))
    metric.update_state(labels, logits)
    expected = -np.log(softmax(logits)[np.arange(N), labels]).mean()
    np.testing.assert_allclose(metric.result(), expected, rtol=1e-10)
    assert metric.name == "crossentropy"


@pytest.mark.parametrize("y_true_shape, y_pred_shape, kind", [
    ((N,), (N, C), "sparse"), ((N, 1), (N, C), "sparse"), ((N, C), (N, C), "categorical"),
    ((N, 1), (N, 1), "binary"), ((N,), (N, 1), "binary"),
])
def test_accuracy_from_shapes_when_the_loss_does_not_say(y_true_shape, y_pred_shape, kind):
    t = rng.integers(0, 2, y_true_shape)
    p = rng.uniform(0, 1, y_pred_shape)
    expected_cls = {"sparse": metrics.SparseCategoricalAccuracy,
                    "categorical": metrics.CategoricalAccuracy,
                    "binary": metrics.BinaryAccuracy}[kind]
    eager = metrics.resolve("accuracy", "mse", y_true=t, y_pred=p)
    assert type(eager) is expected_cls
    lazy = metrics.resolve("accuracy", loss=None)
    lazy.update_state(t, p)
    assert lazy.kind == kind
    reference = expected_cls()
    reference.update_state(t, p)
    assert lazy.result() == reference.result()


def test_get_names_metrics_by_the_string_given():
    assert type(metrics.get("mae")) is metrics.MeanAbsoluteError
    assert metrics.get("mae").name == "mae"
    assert metrics.get("MeanAbsoluteError").name == "mean_absolute_error"
    assert type(metrics.get("auc")) is metrics.AUC
    assert type(metrics.get("sparse_top_k_categorical_accuracy")) is \
        metrics.SparseTopKCategoricalAccuracy
    metric = metrics.Recall()
    assert metrics.get(metric) is metric
    assert metrics.get(None) is None


def test_get_wraps_functions_and_loss_functions():
    t, p = regression_data()

    def max_error(y_true, y_pred):
        return np.max(np.abs(y_true - y_pred), axis=-1)

    wrapped = metrics.get(max_error)
    wrapped.update_state(t, p)
    assert wrapped.name == "max_error"
    np.testing.assert_allclose(wrapped.result(), np.max(np.abs(t - p), -1).mean(), rtol=1e-12)
    from_loss = metrics.get(losses.mean_squared_error)
    from_loss.update_state(t, p)
    np.testing.assert_allclose(from_loss.result(), np.mean((p - t) ** 2), rtol=1e-12)
    tensor_fn = metrics.get(lambda y_true, y_pred: df.abs(df.constant(y_true - y_pred)))
    tensor_fn.update_state(t, p)
    np.testing.assert_allclose(tensor_fn.result(), np.mean(np.abs(t - p)), rtol=1e-6)


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown metric: 'acuracy'.*'accuracy'"):
        metrics.get("acuracy")
    with pytest.raises(ValueError, match="Unknown metric: 'nope'"):
        metrics.resolve("nope", "mse")


@pytest.mark.parametrize("metric", [
    metrics.BinaryAccuracy(threshold=0.3, name="ba"),
    metrics.SparseTopKCategoricalAccuracy(k=3),
    metrics.Precision(thresholds=[0.2, 0.6], class_id=1),
    metrics.Recall(top_k=2),
    metrics.AUC(num_thresholds=50, curve="PR", summation_method="minoring"),
    metrics.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
    metrics.MeanMetricWrapper(metrics.top_k_categorical_accuracy, k=2),
    metrics.ShapeResolvedMetric("crossentropy", name="ce"),
], ids=lambda m: type(m).__name__)
def test_serialize_round_trip_through_json(metric):
    config = json.loads(json.dumps(metrics.serialize(metric)))
    restored = metrics.deserialize(config)
    assert type(restored) is type(metric)
    assert restored.get_config() == metric.get_config()


# ------------------------------------------------------------------ errors


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"same shape.*\(4, 3\).*\(4, 2\)"):
        metrics.MeanSquaredError().update_state(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="one class id per sample"):
        metrics.SparseCategoricalAccuracy().update_state(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"sample_weight.*\(3,\)"):
        metrics.Mean().update_state(np.zeros(4), np.ones(3))


@pytest.mark.parametrize("make, pattern", [
    (lambda: metrics.TopKCategoricalAccuracy(k=0), "k=0"),
    (lambda: metrics.Precision(thresholds=[0.5, 1.5]), "thresholds"),
    (lambda: metrics.AUC(curve="XY"), "curve='XY'"),
    (lambda: metrics.AUC(num_thresholds=1), "num_thresholds=1"),
])
def test_bad_constructor_arguments(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_top_k_labels_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        metrics.SparseTopKCategoricalAccuracy(k=2).update_state([7], np.ones((1, 5)))


# ------------------------------------------------------------ custom metrics


class TruePositives(metrics.Metric):
    """A user metric written as in the Keras guide, with add_weight and assign_add."""

    def __init__(self, name="true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.count = self.add_weight(name="tp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        hits = (np.asarray(y_true) == 1) & (np.asarray(y_pred) > 0.5)
        weights = np.ones(hits.shape) if sample_weight is None else np.asarray(sample_weight)
        self.count.assign_add(np.sum(hits * weights))

    def result(self):
        return self.count


def test_user_metric_with_add_weight_resets_and_merges():
    t, p = binary_data()
    expected = np.sum((t[:, 0] == 1) & (p[:, 0] > 0.5))
    metric = TruePositives()
    metric.update_state(t[:, 0], p[:, 0])
    assert float(metric.result()) == expected
    assert metric.variables[0].trainable is False
    other = TruePositives()
    other.update_state(t[:, 0], p[:, 0])
    metric.merge_state([other])
    assert float(metric.result()) == 2 * expected
    metric.reset_state()
    assert float(metric.result()) == 0.0
