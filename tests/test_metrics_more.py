"""The confusion-matrix and regression metrics added for Keras 3 parity: configs, merged
states and use in `compile` (their values against Keras are in tests/test_goldens.py)."""

from __future__ import annotations

import numpy as np
import pytest

from distflow.keras import layers, metrics
from distflow.keras.functional import Input
from distflow.keras.metrics import confusion_metrics, regression_metrics
from distflow.keras.models import Sequential

RNG = np.random.default_rng(3)
ONEHOT = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, size=20)]
SCORES = RNG.dirichlet(np.ones(3), size=20).astype(np.float32)

MAKERS = [
    lambda: metrics.TruePositives(thresholds=[0.2, 0.6]), lambda: metrics.FalseNegatives(),
    lambda: metrics.PrecisionAtRecall(0.5, num_thresholds=20, class_id=1),
    lambda: metrics.SpecificityAtSensitivity(0.4), lambda: metrics.F1Score(average="macro"),
    lambda: metrics.FBetaScore(beta=0.5), lambda: metrics.OneHotMeanIoU(3),
    lambda: metrics.OneHotIoU(3, target_class_ids=[0, 2]), lambda: metrics.R2Score(),
    lambda: metrics.CosineSimilarity(), lambda: metrics.CategoricalHinge(),
]


@pytest.mark.parametrize("make", MAKERS, ids=lambda m: type(m()).__name__)
def test_config_round_trip_and_merged_halves_equal_one_pass(make):
    whole, first, second = make(), make(), make()
    whole.update_state(ONEHOT, SCORES)
    first.update_state(ONEHOT[:10], SCORES[:10])
    second.update_state(ONEHOT[10:], SCORES[10:])
    first.merge_state([second])
    np.testing.assert_allclose(np.asarray(first.result()), np.asarray(whole.result()),
                               rtol=1e-12)
    rebuilt = metrics.deserialize(metrics.serialize(whole))
    assert type(rebuilt) is type(whole) and rebuilt.get_config() == whole.get_config()
    whole.reset_state()
    assert all(np.all(v == 0) for v in whole.get_state().values())


def test_new_metrics_train_in_compile_with_their_keras_names():
    model = Sequential([Input(shape=(3,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=[metrics.F1Score(average="micro"), metrics.OneHotMeanIoU(3),
                           "r2_score", metrics.PrecisionAtRecall(0.5, class_id=0)])
    history = model.fit(SCORES, ONEHOT, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "f1_score", "one_hot_mean_io_u", "r2_score",
                                    "precision_at_recall"}


def test_bad_arguments_raise_as_keras_does():
    with pytest.raises(ValueError, match="average"):
        metrics.F1Score(average="mean")
    with pytest.raises(ValueError, match="2D inputs"):
        metrics.F1Score().update_state(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="recall"):
        metrics.PrecisionAtRecall(1.5)
    with pytest.raises(ValueError, match="class_aggregation"):
        metrics.R2Score(class_aggregation="mean")
    assert set(confusion_metrics.__all__) <= set(dir(metrics))
    assert all(cls.__name__ in dir(metrics) for cls in regression_metrics.CLASSES)
