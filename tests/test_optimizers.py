"""Optimizers: update rules against independent float64 references, schedules, clipping,
state round trips, the apply override and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import distflow as df
from distflow import optimizers as opt
from distflow.optimizers import rules, schedules

RNG = np.random.default_rng(0)
GRADS = [RNG.normal(size=(4, 3)) for _ in range(6)]
START = RNG.normal(size=(4, 3))


def _run(optimizer, grads=GRADS):
    w = df.Variable(START.astype("float32"), name="w")
    for g in grads:
        optimizer.apply_gradients([(g.astype("float32"), w)])
    return w.numpy()


def _reference(kind, lr=0.01, **hp):
    """Textbook loops in float64, written independently of distflow.optimizers.rules."""
    p, m, v, vmax = START.copy(), np.zeros_like(START), np.zeros_like(START), np.zeros_like(START)
    for t, g in enumerate(GRADS, start=1):
        if kind == "sgd_momentum":  # PyTorch form (same for a constant lr)
            m = hp["momentum"] * m + g
            p = p - lr * (g + hp["momentum"] * m if hp.get("nesterov") else m)
        elif kind in ("adam", "adamw"):
            p = p * (1 - lr * hp.get("weight_decay", 0.0))
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            vmax = np.maximum(vmax, v)
            denom = np.sqrt(vmax if hp.get("amsgrad") else v)
            p = p - lr * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (denom + 1e-7)
        elif kind == "rmsprop":
            v = 0.9 * v + 0.1 * g * g
            m = 0.9 * m + 0.1 * g
            p = p - lr * g / np.sqrt(v - m * m + 1e-7)
        elif kind == "adagrad":
            v = (v if t > 1 else np.full_like(START, 0.1)) + g * g
            p = p - lr * g / np.sqrt(v + 1e-7)
    return p


@pytest.mark.parametrize("make,kind,hp", [
    (lambda: opt.SGD(0.01, momentum=0.9), "sgd_momentum", {"momentum": 0.9}),
    (lambda: opt.SGD(0.01, momentum=0.9, nesterov=True), "sgd_momentum",
     {"momentum": 0.9, "nesterov": True}),
    (lambda: opt.Adam(0.01), "adam", {}),
    (lambda: opt.Adam(0.01, amsgrad=True), "adam", {"amsgrad": True}),
    (lambda: opt.AdamW(0.01, weight_decay=0.1), "adamw", {"weight_decay": 0.1}),
    (lambda: opt.RMSprop(0.01, centered=True), "rmsprop", {}),
    (lambda: opt.Adagrad(0.01), "adagrad", {}),
])
def test_rules_match_reference(make, kind, hp):
    np.testing.assert_allclose(_run(make()), _reference(kind, **hp), rtol=2e-5, atol=2e-6)


def test_plain_sgd_is_param_minus_lr_grad():
    expected = START - 0.1 * sum(GRADS)
    np.testing.assert_allclose(_run(opt.SGD(0.1)), expected, rtol=1e-5, atol=1e-6)


def test_rule_creates_missing_slots_and_init_without_hp():
    rule = rules.get_rule("adagrad")
    param = np.ones(3, np.float32)
    state = {}
    rule.update(param, np.ones(3, np.float32), state, 1, {"learning_rate": 0.1})
    assert set(state) == {"accumulator"}
    np.testing.assert_allclose(state["accumulator"], 1.1)
    assert set(rules.get_rule("adam").init(param)) == {"m", "v"}


def test_unknown_rule_lists_known():
    with pytest.raises(ValueError, match="Known rules: .*adam"):
        rules.get_rule("shampoo")


@pytest.mark.parametrize("schedule,step,expected", [
    (schedules.ExponentialDecay(0.1, 10, 0.5), 5, 0.1 * 0.5 ** 0.5),
    (schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True), 15, 0.05),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 10, 1.0),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 11, 0.5),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 21, 0.1),
    (schedules.PolynomialDecay(1.0, 10, 0.0), 5, 0.5),
    (schedules.CosineDecay(1.0, 10), 5, 0.5),
    (schedules.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4), 2, 0.5),
    (schedules.InverseTimeDecay(1.0, 1, 1.0), 3, 0.25),
])
def test_schedules(schedule, step, expected):
    assert schedule(step) == pytest.approx(expected)
    again = schedules.deserialize(schedules.serialize(schedule))
    assert again(step) == pytest.approx(expected)


def test_optimizer_evaluates_schedule_at_iterations():
    o = opt.SGD(schedules.PiecewiseConstantDecay([1], [1.0, 0.5]))
    w = df.Variable(np.zeros(1, "float32"), name="w")
    seen = []
    for _ in range(3):
        seen.append(o.learning_rate)
        o.apply_gradients([(np.ones(1, "float32"), w)])
    assert seen == [1.0, 1.0, 0.5]
    np.testing.assert_allclose(w.numpy(), [-2.5])


def test_clipping():
    g = np.array([3.0, 4.0], "float32")
    assert np.allclose(_clip_once(opt.SGD(1.0, clipnorm=1.0), g), [-0.6, -0.8])
    assert np.allclose(_clip_once(opt.SGD(1.0, clipvalue=3.5), g), [-3.0, -3.5])
    assert np.allclose(_clip_once(opt.SGD(1.0, global_clipnorm=2.5), g), [-1.5, -2.0])
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and"):
        opt.SGD(clipnorm=1.0, global_clipnorm=1.0)


def _clip_once(o, g):
    w = df.Variable(np.zeros(2, "float32"), name="w")
    o.apply_gradients([(g, w)])
    return w.numpy()


def test_minimize_with_callable_and_tape():
    w = df.Variable(np.array([2.0], "float32"), name="w")
    o = opt.SGD(0.25)
    o.minimize(lambda: df.reduce_sum(w * w), [w])
    np.testing.assert_allclose(w.numpy(), [1.0])
    with df.GradientTape() as tape:
        loss = df.reduce_sum(w * w)
    o.minimize(loss, [w], tape=tape)
    np.testing.assert_allclose(w.numpy(), [0.5])
    with pytest.raises(ValueError, match="`tape` is required"):
        o.minimize(loss, [w])


def test_none_gradients_are_skipped_and_all_none_is_an_error():
    a = df.Variable(np.ones(1, "float32"), name="a")
    b = df.Variable(np.ones(1, "float32"), name="b")
    o = opt.SGD(1.0)
    o.apply_gradients([(np.ones(1, "float32"), a), (None, b)])
    assert a.numpy()[0] == 0.0 and b.numpy()[0] == 1.0
    with pytest.raises(ValueError, match="No gradients provided"):
        o.apply_gradients([(None, a)])


def test_shape_mismatch_names_the_variable():
    w = df.Variable(np.ones(3, "float32"), name="layer/kernel")
    with pytest.raises(ValueError, match="layer/kernel"):
        opt.SGD().apply_gradients([(np.ones(2, "float32"), w)])


def test_state_round_trip_continues_identically():
    a, b = opt.Adam(0.01), opt.Adam(0.01)
    w1 = df.Variable(START.astype("float32"), name="w")
    for g in GRADS[:3]:
        a.apply_gradients([(g.astype("float32"), w1)])
    w2 = df.Variable(w1.numpy(), name="w")
    b.set_state({k: v.copy() for k, v in a.get_state().items()})
    b._slots = {w2.name: b._slots.pop(w1.name)}
    for g in GRADS[3:]:
        a.apply_gradients([(g.astype("float32"), w1)])
        b.apply_gradients([(g.astype("float32"), w2)])
    assert b.iterations == 6
    np.testing.assert_array_equal(w1.numpy(), w2.numpy())


def test_get_serialize_deserialize():
    assert isinstance(opt.get("Adam"), opt.Adam)
    sgd = opt.SGD(schedules.ExponentialDecay(0.1, 10, 0.9), momentum=0.5, nesterov=True)
    again = opt.deserialize(opt.serialize(sgd))
    assert isinstance(again, opt.SGD) and again.get_config() == sgd.get_config()
    with pytest.raises(ValueError, match="Valid names"):
        opt.get("adamax2")
    with pytest.raises(ValueError, match="learning_rate"):
        opt.SGD(-1.0)
    with pytest.raises(ValueError, match="momentum"):
        opt.SGD(momentum=1.5)


def test_apply_override_receives_clipped_pairs_and_restores():
    seen = []
    w = df.Variable(np.ones(2, "float32"), name="w")
    o = opt.SGD(1.0, clipvalue=0.5)
    with opt.apply_override(lambda optimizer, pairs: seen.append((optimizer, pairs))):
        o.apply_gradients([(np.array([2.0, -2.0], "float32"), w)])
    assert seen[0][0] is o and np.allclose(seen[0][1][0][0], [0.5, -0.5])
    np.testing.assert_array_equal(w.numpy(), [1.0, 1.0])  # not updated locally
    assert opt.get_apply_override() is None and o.iterations == 1


# One step from param 1.0 with gradient 2.0, worked out by hand:
#   SGD lr .1:                1 - .1*2                                   = 0.8
#   SGD lr .1, momentum .9:   v = -.2; p += v                            = 0.8 (first step)
#   Nesterov:                 p += .9*(-.2) - .2                         = 0.62
#   Adam lr .1:               m=.2, v=.004, alpha=.1*sqrt(.001)/.1=.0316228
#                             p -= .0316228*.2/(.0632456+1e-7)           = 0.90000016
#   RMSprop lr .1:            ms=.4, p -= .1*2/sqrt(.4+1e-7)             = 0.68377227
#   Adagrad lr .1:            acc=4.1, p -= .1*2/sqrt(4.1+1e-7)          = 0.90122704
#   AdamW lr .1, wd .5:       p = 1 - .05 = .95, then the Adam step      = 0.85000016
@pytest.mark.parametrize("make,expected", [
    (lambda: opt.SGD(0.1), 0.8),
    (lambda: opt.SGD(0.1, momentum=0.9), 0.8),
    (lambda: opt.SGD(0.1, momentum=0.9, nesterov=True), 0.62),
    (lambda: opt.Adam(0.1), 0.90000016),
    (lambda: opt.RMSprop(0.1), 0.68377227),
    (lambda: opt.Adagrad(0.1), 0.90122704),
    (lambda: opt.AdamW(0.1, weight_decay=0.5), 0.85000016),
])
def test_one_step_golden_values(make, expected):
    w = df.Variable(np.array([1.0], "float64"), name="w")
    make().apply_gradients([(np.array([2.0]), w)])
    assert w.numpy()[0] == pytest.approx(expected, abs=1e-7)


def _minimize(optimizer, loss_fn, start, steps):
    w = df.Variable(np.array(start, "float64"), name="w")
    for _ in range(steps):
        optimizer.minimize(lambda: loss_fn(w), [w])
    return w.numpy()


def _quadratic(w):
    return df.reduce_sum(df.constant([1.0, 10.0], "float64") * (w - 3.0) ** 2)


def _rosenbrock(w):
    return (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2


CONVERGENCE = {
    "sgd": lambda: opt.SGD(0.04),
    "momentum": lambda: opt.SGD(0.01, momentum=0.9),
    "nesterov": lambda: opt.SGD(0.01, momentum=0.9, nesterov=True),
    "adam": lambda: opt.Adam(0.1),
    "adamw": lambda: opt.AdamW(0.1, weight_decay=1e-4),
    "rmsprop": lambda: opt.RMSprop(0.01),
    "adagrad": lambda: opt.Adagrad(0.5),
}


@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_converges_on_a_quadratic(name):
    np.testing.assert_allclose(_minimize(CONVERGENCE[name](), _quadratic, [0.0, 0.0], 800),
                               [3.0, 3.0], atol=2e-2)


ROSENBROCK = {
    "sgd": (lambda: opt.SGD(0.002, clipnorm=1.0), 20000),
    "momentum": (lambda: opt.SGD(0.001, momentum=0.9), 5000),
    "nesterov": (lambda: opt.SGD(0.001, momentum=0.9, nesterov=True), 5000),
    "adam": (lambda: opt.Adam(0.02), 4000),
    "adamw": (lambda: opt.AdamW(0.02, weight_decay=1e-5), 4000),
    "rmsprop": (lambda: opt.RMSprop(0.001), 6000),
    "adagrad": (lambda: opt.Adagrad(0.5), 15000),
}


@pytest.mark.parametrize("name", sorted(ROSENBROCK))
def test_converges_on_rosenbrock(name):
    make, steps = ROSENBROCK[name]
    np.testing.assert_allclose(_minimize(make(), _rosenbrock, [-1.0, 1.5], steps), [1.0, 1.0],
                               atol=5e-2)


def test_keras_optimizers_module_is_the_same_package():
    from distflow.keras.optimizers import Adam
    from distflow.keras.optimizers.schedules import ExponentialDecay

    assert Adam is opt.Adam
    assert ExponentialDecay is schedules.ExponentialDecay
    assert isinstance(Adam(ExponentialDecay(0.1, 10, 0.5)), opt.Optimizer)


def _formula_step(kind, p, g, state, t, hp):
    """The rules' docstring formulas with NumPy temporaries, in the rules' dtype and
    operation order: what the in-place, buffer-reusing rules must equal bit for bit."""
    f, lr = p.dtype.type, p.dtype.type(hp["learning_rate"])
    if kind == "sgd":
        p -= lr * g
    elif kind == "sgd_momentum":
        vel = state["momentum"]
        vel *= f(hp["momentum"])
        vel -= lr * g
        p += (f(hp["momentum"]) * vel - lr * g) if hp["nesterov"] else vel
    else:  # adam
        b1, b2 = hp["beta_1"], hp["beta_2"]
        state["m"] += (g - state["m"]) * f(1 - b1)
        state["v"] += (np.square(g) - state["v"]) * f(1 - b2)
        v = state["v"]
        if hp["amsgrad"]:
            np.maximum(state["v_hat"], v, out=state["v_hat"])
            v = state["v_hat"]
        alpha = f(hp["learning_rate"] * np.sqrt(1 - b2 ** t) / (1 - b1 ** t))
        p -= alpha * state["m"] / (np.sqrt(v) + f(hp["epsilon"]))


@pytest.mark.parametrize("name,kind,hp", [
    ("sgd", "sgd", {"learning_rate": 0.1}),
    ("sgd", "sgd_momentum", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", "sgd_momentum", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adam", "adam", {"learning_rate": 0.01}),
    ("adam", "adam", {"learning_rate": 0.01, "amsgrad": True}),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rules_equal_their_formulas_bit_for_bit(name, kind, hp, dtype):
    """Shapes in turn (a reused buffer of another size in between), a non-contiguous
    gradient, and the gradient left untouched."""
    rule = rules.get_rule(name)
    merged = rule.merge(hp)
    rng = np.random.default_rng(3)
    for shape in [(5, 7), (300,), (2, 3, 4), (5, 7)]:
        p = rng.normal(size=shape).astype(dtype)
        expected_p, state = p.copy(), rule.init(p, merged)
        expected_state = {k: s.copy() for k, s in state.items()}
        for t in range(1, 4):
            g = rng.normal(size=shape[::-1]).astype(dtype).T  # non-contiguous
            g_before = g.copy()
            rule.update_merged(p, g, state, t, merged)
            _formula_step(kind, expected_p, g_before, expected_state, t, merged)
            np.testing.assert_array_equal(g, g_before)
            np.testing.assert_array_equal(p, expected_p)
            for k in state:
                np.testing.assert_array_equal(state[k], expected_state[k])


_ELEMENTWISE = {"sgd": opt.SGD, "adam": opt.Adam, "adamw": opt.AdamW, "rmsprop": opt.RMSprop,
                "adagrad": opt.Adagrad, "nadam": opt.Nadam, "adamax": opt.Adamax,
                "adadelta": opt.Adadelta, "ftrl": opt.Ftrl, "lion": opt.Lion}


def test_every_elementwise_rule_is_in_the_chunk_test():
    assert set(_ELEMENTWISE) | {"schedulefreeadamw"} == {
        n for n in rules.names() if rules.get_rule(n).elementwise}


@pytest.mark.parametrize("name", sorted(_ELEMENTWISE))
def test_a_large_variable_is_updated_in_chunks_with_the_numbers_of_one_call(name):
    """Optimizers update variables over UPDATE_CHUNK elements slice by slice (their
    temporaries stay in the cache): bit for bit what one call of the rule gives, also
    for a transposed (not C-contiguous) variable and a float64 one."""
    rule = rules.get_rule(name)
    rng = np.random.default_rng(11)
    for shape, dtype, transpose in [((rules.UPDATE_CHUNK + 37, 3), "float32", False),
                                    ((3, rules.UPDATE_CHUNK + 5), "float32", True),
                                    ((2 * rules.UPDATE_CHUNK + 1,), "float64", False)]:
        start = rng.normal(size=shape).astype(dtype)
        w = df.Variable(start.T if transpose else start)
        optimizer = _ELEMENTWISE[name](0.01)
        param, state = w.numpy().copy(), {}
        merged = rule.merge(optimizer.hyperparameters())
        for t in range(1, 4):
            g = rng.normal(size=param.shape).astype(dtype)
            optimizer.apply_gradients([(g, w)])
            rule.update_merged(param, g, state, t, merged)
            np.testing.assert_array_equal(w.numpy(), param)
