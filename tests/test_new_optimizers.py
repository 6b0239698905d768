"""Nadam, Adamax, Adadelta, Ftrl, Lion, ScheduleFreeAdamW (Adafactor, Lamb, Muon, MultiOptimizer
refused):
the parameter servers run the same rules.

(Their arithmetic against Keras 3 is in tests/test_goldens.py.) Servers run in a thread
of this process on real sockets.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_hyperparams import _mirrored

import distflow as df
from distflow import optimizers

pytestmark = pytest.mark.timeout(90)


def _train(make_optimizer, prefix):
    rng = np.random.default_rng(5)
    w = df.Variable(rng.normal(size=(4, 3)).astype(np.float32), name=f"{prefix}/w")
    b = df.Variable(np.zeros(3, np.float32), name=f"{prefix}/b")
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.normal(size=(16, 3)).astype(np.float32)
    opt = make_optimizer()
    for _ in range(6):
        with df.GradientTape() as tape:
            loss = df.reduce_mean((df.matmul(df.constant(x), w) + b - y) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
    return [w.numpy(), b.numpy()]


@pytest.mark.parametrize("make", [
    lambda: optimizers.Nadam(0.05), lambda: optimizers.Adamax(0.05),
    lambda: optimizers.Adadelta(1.0), lambda: optimizers.Ftrl(0.1, l1_regularization_strength=0.01),
    lambda: optimizers.Lion(0.01, weight_decay=0.1),
    lambda: optimizers.ScheduleFreeAdamW(0.05, warmup_steps=2, weight_decay=0.01),
], ids=["nadam", "adamax", "adadelta", "ftrl", "lion", "schedule_free_adamw"])
def test_training_through_the_servers_equals_local_training(servers, make):
    local = _train(make, "local")
    server = servers(mode="sync")
    strategy = _mirrored(server)
    try:
        with strategy.scope():
            remote = _train(make, "remote")
    finally:
        strategy.close()
    assert server.version == 6
    for a, b in zip(local, remote):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_whole_tensor_rules_refuse_a_strategy_and_train_locally(servers):
    server = servers(mode="sync")
    strategy = _mirrored(server)
    w = df.Variable(np.ones((2, 2), np.float32), name="adafactor_ps/w")
    try:
        for opt in (optimizers.Adafactor(), optimizers.Lamb(), optimizers.Muon(),
                    optimizers.MultiOptimizer(lambda v: optimizers.SGD())):
            with strategy.scope(), pytest.raises(NotImplementedError,
                                                 match=type(opt).__name__):
                opt.apply_gradients([(np.ones((2, 2), np.float32), w)])
    finally:
        strategy.close()
    assert not optimizers.rules.get_rule("adafactor").elementwise
    assert not optimizers.rules.get_rule("lamb").elementwise
    before = _train(lambda: optimizers.SGD(0.0), "frozen")
    after = _train(lambda: optimizers.Adafactor(0.1), "adafactor")
    assert np.abs(after[0] - before[0]).max() > 1e-3


def test_argument_checks_follow_keras():
    with pytest.raises(ValueError, match="learning_rate_power"):
        optimizers.Ftrl(learning_rate_power=0.5)
    with pytest.raises(ValueError, match="l1_regularization_strength"):
        optimizers.Ftrl(l1_regularization_strength=-1.0)
    with pytest.raises(ValueError, match="SignSGD"):
        optimizers.Lion(beta_1=0.0)
    for name in ("nadam", "adamax", "adadelta", "ftrl", "lion", "adafactor", "lamb"):
        opt = optimizers.get(name)
        assert optimizers.deserialize(optimizers.serialize(opt)).get_config() == opt.get_config()
