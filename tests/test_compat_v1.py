"""TF1 scripts written the classic way run on distflow.compat.v1 with only the import swapped:
graph mode, placeholders and feed_dict, graph variables and their initializer, Session.run
with nested fetches, TF1 optimizers, and the errors TF1 gives for bad feeds."""

import collections

import numpy as np
import pytest

import distflow as df
import distflow.compat.v1 as tf


@pytest.fixture(autouse=True)
def _graph_mode():
    """Each test starts in TF1 graph mode on a fresh default graph and ends eager again."""
    tf.reset_default_graph()
    tf.disable_eager_execution()
    yield
    tf.enable_eager_execution()
    tf.reset_default_graph()


def test_classic_linear_regression_learns():
    rng = np.random.default_rng(0)
    x_data = rng.random(100).astype(np.float32)
    y_data = x_data * 0.1 + 0.3

    W = tf.Variable(tf.random_uniform([1], -1.0, 1.0))
    b = tf.Variable(tf.zeros([1]))
    y = W * x_data + b

    loss = tf.reduce_mean(tf.square(y - y_data))
    optimizer = tf.train.GradientDescentOptimizer(0.5)
    train = optimizer.minimize(loss)

    init = tf.global_variables_initializer()
    sess = tf.Session()
    sess.run(init)
    for _ in range(201):
        sess.run(train)
    np.testing.assert_allclose(sess.run(W), [0.1], atol=1e-3)
    np.testing.assert_allclose(sess.run(b), [0.3], atol=1e-3)
    assert sess.run(loss) < 1e-6


def _digits(n, rng):
    labels = rng.integers(0, 10, n)
    images = rng.random((n, 784)).astype(np.float32) * 0.3
    for i, c in enumerate(labels):
        images[i, c * 78:(c + 1) * 78] += 0.7
    return images, np.eye(10, dtype=np.float32)[labels]


def test_classic_mnist_softmax_regression_learns():
    rng = np.random.default_rng(1)
    train_x, train_y = _digits(2000, rng)
    test_x, test_y = _digits(500, rng)

    x = tf.placeholder(tf.float32, [None, 784])
    W = tf.Variable(tf.zeros([784, 10]))
    b = tf.Variable(tf.zeros([10]))
    y = tf.nn.softmax(tf.matmul(x, W) + b)
    y_ = tf.placeholder(tf.float32, [None, 10])
    cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
    train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

    sess = tf.InteractiveSession()
    tf.global_variables_initializer().run()
    for i in range(100):
        batch = slice(i * 20 % 2000, i * 20 % 2000 + 100)
        sess.run(train_step, feed_dict={x: train_x[batch], y_: train_y[batch]})

    correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
    score = sess.run(accuracy, feed_dict={x: test_x, y_: test_y})
    assert accuracy.eval(feed_dict={x: test_x, y_: test_y}) == score
    sess.close()
    assert score > 0.9


def test_layers_dense_and_mean_squared_error_with_adam_and_momentum():
    rng = np.random.default_rng(2)
    xs = rng.random((64, 3)).astype(np.float32)
    ys = xs @ np.array([[1.0], [-2.0], [3.0]], np.float32) + 0.5
    X = tf.placeholder(tf.float32, [None, 3], name="X")
    Y = tf.placeholder(tf.float32, [None, 1], name="Y")
    losses = []
    for opt in (tf.train.AdamOptimizer(0.1), tf.train.MomentumOptimizer(0.1, 0.9)):
        pred = tf.layers.dense(X, 1)
        loss = tf.losses.mean_squared_error(Y, pred)
        losses.append((loss, opt.minimize(loss)))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run([loss for loss, _ in losses], {X: xs, Y: ys})
        for _ in range(300):
            sess.run([step for _, step in losses], {X: xs, Y: ys})
        last = sess.run([loss for loss, _ in losses], {X: xs, Y: ys})
    assert all(b < 1e-3 < a for a, b in zip(first, last)), (first, last)
    names = [v.name for v in tf.trainable_variables()]
    assert names[:2] == ["dense/kernel", "dense/bias"] and len(names) == 4


def test_momentum_matches_the_tf1_formula():
    w = tf.Variable([1.0, 2.0])
    loss = tf.reduce_sum(w * w)
    opt = tf.train.MomentumOptimizer(0.1, 0.9)
    pairs = opt.compute_gradients(loss)
    step = opt.apply_gradients(pairs)
    expect, accum = np.array([1.0, 2.0]), np.zeros(2)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(pairs[0][0]), [2.0, 4.0])
        for _ in range(3):
            sess.run(step)
            accum = 0.9 * accum + 2 * expect
            expect = expect - 0.1 * accum
        np.testing.assert_allclose(sess.run(w), expect, rtol=1e-6)


def test_the_seed_session_sample_runs_with_only_the_import_changed():
    tf.enable_eager_execution()  # the tutorial never disables eager execution
    import distflow as tf1

    a = tf1.constant([[1.0, 2.0], [3.0, 4.0]])
    b = tf1.constant([[5.0, 6.0], [7.0, 8.0]])
    c = tf1.matmul(a, b)
    with tf1.Session() as sess:
        result = sess.run(c)
    np.testing.assert_array_equal(result, [[19.0, 22.0], [43.0, 50.0]])


def test_the_seed_session_sample_in_graph_mode_builds_operations():
    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    b = tf.constant([[5.0, 6.0], [7.0, 8.0]])
    c = tf.matmul(a, b)
    assert isinstance(c, tf.Tensor) and c.shape == (2, 2) and c.op.type == "matmul"
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(c), [[19.0, 22.0], [43.0, 50.0]])


def test_fetches_nest_and_resolve_names():
    x = tf.placeholder(tf.float32, [2], name="x")
    with tf.name_scope("layer"):
        y = tf.multiply(x, 2.0, )
        z = tf.add(y, 1.0)
    Pair = collections.namedtuple("Pair", "doubled plus_one")
    with tf.Session() as sess:
        out = sess.run({"pair": Pair(y, z), "list": [z.name, (y,)], "op": z.op},
                       feed_dict={"x:0": [1.0, 2.0]})
    assert isinstance(out["pair"], Pair)
    np.testing.assert_array_equal(out["pair"].doubled, [2.0, 4.0])
    np.testing.assert_array_equal(out["list"][0], [3.0, 5.0])
    np.testing.assert_array_equal(out["list"][1][0], [2.0, 4.0])
    assert out["op"] is None
    assert z.name.startswith("layer/") and z.name.endswith(":0")


def test_missing_feed_names_the_placeholder():
    x = tf.placeholder(tf.float32, [None, 784], name="images")
    y = tf.reduce_sum(x)
    with tf.Session() as sess, pytest.raises(
            tf.errors.InvalidArgumentError,
            match=r"must feed a value for placeholder tensor 'images' with dtype float32 and "
                  r"shape \(None, 784\)"):
        sess.run(y)


def test_feed_of_the_wrong_shape_names_the_placeholder_and_the_value():
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    y = x * 2.0
    with tf.Session() as sess:
        with pytest.raises(ValueError, match=r"Cannot feed value of shape \(2, 4\) for Tensor "
                                             r"'x:0', which has shape \(None, 3\)"):
            sess.run(y, {x: np.zeros((2, 4))})
        with pytest.raises(TypeError, match=r"Cannot feed float values to tensor 'n:0' of "
                                            r"dtype int32.*Received: \[1.5\]"):
            n = tf.placeholder(tf.int32, [1], name="n")
            sess.run(n + 1, {n: [1.5]})
        with pytest.raises(TypeError, match="value of a feed cannot be a symbolic tensor"):
            sess.run(y, {x: y})
        # ints into a float placeholder are converted, as in TF1
        np.testing.assert_array_equal(sess.run(y, {x: [[1, 2, 3]]}), [[2.0, 4.0, 6.0]])


def test_uninitialized_variable_raises_failed_precondition():
    v = tf.Variable([1.0, 2.0], name="weights")
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError,
                           match="uninitialized value weights"):
            sess.run(v * 2.0)
        sess.run(v.initializer)
        np.testing.assert_array_equal(sess.run(v * 2.0), [2.0, 4.0])
        assert tf.report_uninitialized_variables() == []


def test_assign_ops_run_only_when_fetched():
    v = tf.Variable(1.0)
    inc = tf.assign_add(v, 2.0)
    double = v * 2.0
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(double) == 2.0  # the assign is not needed: not run
        assert sess.run(inc) == 3.0
        assert sess.run(inc) == 5.0
        assert v.eval() == 5.0


def test_gradients_of_a_graph():
    x = tf.placeholder(tf.float32, [None, 2])
    w = tf.Variable([[1.0], [2.0]])
    y = tf.reduce_sum(tf.square(tf.matmul(x, w)))
    gx, gw = tf.gradients(y, [x, w])
    assert gx.shape.as_list() == [None, 2] and gw.shape == (2, 1)
    xs = np.array([[1.0, 1.0], [0.0, 2.0]], np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        vx, vw = sess.run([gx, gw], {x: xs})
    pred = xs @ np.array([[1.0], [2.0]])
    np.testing.assert_allclose(vx, 2 * pred @ np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(vw, xs.T @ (2 * pred))


def test_get_variable_scopes_and_reuse():
    with tf.variable_scope("block"):
        a = tf.get_variable("w", [2, 3])
    with tf.variable_scope("block", reuse=True):
        assert tf.get_variable("w", [2, 3]) is a
    with pytest.raises(ValueError, match="Variable block/w already exists, disallowed"):
        with tf.variable_scope("block"):
            tf.get_variable("w", [2, 3])
    assert a.name == "block/w" and a.shape.as_list() == [2, 3]
    limit = np.sqrt(6 / 5)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert np.all(np.abs(sess.run(a)) <= limit)


def test_placeholder_in_eager_mode_says_what_to_do():
    tf.enable_eager_execution()
    with pytest.raises(RuntimeError, match="disable_eager_execution"):
        tf.placeholder(tf.float32, [None])


def test_ops_take_tf1_names():
    x = tf.placeholder(tf.float32, [None, 2], name="x")
    W = tf.Variable(tf.ones([2, 1]), name="W")
    with tf.name_scope("model"):
        logits = tf.add(tf.matmul(x, W, name="scores"), 1.0, name="logits")
        prob = tf.nn.sigmoid(logits, name="prob")
        total = tf.reduce_sum(prob, reduction_indices=[1], name="total")
    assert logits.name == "model/logits:0" and prob.name == "model/prob:0"
    assert total.op.name == "model/total" and logits.op.inputs[0].op.name == "model/scores"
    g = tf.get_default_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run("model/total:0", {"x:0": [[0.0, 0.0]]})
    assert g.get_tensor_by_name("model/prob:0") is prob
    np.testing.assert_allclose(out, [1 / (1 + np.exp(-1.0))], rtol=1e-6)


def test_shape_softmax_and_conversion_ops_take_tf1_names():
    x = tf.placeholder(tf.float32, [None, 2], name="x")
    with tf.name_scope("m"):
        flat = tf.reshape(x, [-1], name="flat")
        probs = tf.nn.softmax(x, name="probs")
        as_int = tf.cast(x, tf.int32, name="as_int")
    assert (flat.op.name, probs.op.name, as_int.op.name) == ("m/flat", "m/probs", "m/as_int")


def test_an_eager_session_block_keeps_ops_eager():
    tf.enable_eager_execution()
    with tf.Session() as sess:
        c = tf.matmul(tf.constant([[1.0, 2.0]]), tf.constant([[3.0], [4.0]]))
        assert float(c.numpy()[0, 0]) == 11.0  # still eager inside the block
        np.testing.assert_array_equal(sess.run({"c": c})["c"], [[11.0]])



def test_classic_deep_mnist_cnn_with_keep_prob_placeholder_learns():
    tf.set_random_seed(4)
    rng = np.random.default_rng(4)
    tx, ty = _digits(1000, rng)

    def weight_variable(shape):
        return tf.Variable(tf.truncated_normal(shape, stddev=0.1))

    def bias_variable(shape):
        return tf.Variable(tf.constant(0.1, shape=shape))

    x = tf.placeholder(tf.float32, shape=[None, 784])
    y_ = tf.placeholder(tf.float32, shape=[None, 10])
    x_image = tf.reshape(x, [-1, 28, 28, 1])
    W_conv1, b_conv1 = weight_variable([5, 5, 1, 8]), bias_variable([8])
    h_conv1 = tf.nn.relu(tf.nn.conv2d(x_image, W_conv1, strides=[1, 1, 1, 1],
                                      padding="SAME") + b_conv1)
    h_pool1 = tf.nn.max_pool(h_conv1, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
    h_flat = tf.reshape(h_pool1, [-1, 14 * 14 * 8])
    keep_prob = tf.placeholder(tf.float32)
    h_drop = tf.nn.dropout(h_flat, keep_prob)
    W_fc, b_fc = weight_variable([14 * 14 * 8, 10]), bias_variable([10])
    y_conv = tf.matmul(h_drop, W_fc) + b_fc
    cross_entropy = tf.reduce_mean(
        tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y_conv))
    train_step = tf.train.AdamOptimizer(1e-3).minimize(cross_entropy)
    correct = tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i in range(60):
            batch = slice(i * 50 % 1000, i * 50 % 1000 + 50)
            train_step.run(feed_dict={x: tx[batch], y_: ty[batch], keep_prob: 0.5})
        dropped = sess.run(h_drop, {x: tx[:2], keep_prob: 0.5})
        score = accuracy.eval(feed_dict={x: tx[:300], y_: ty[:300], keep_prob: 1.0})
    assert h_drop.shape.as_list() == [None, 1568] and (dropped == 0).mean() > 0.3
    assert score > 0.9


def test_file_writer_writes_the_session_graph(tmp_path):
    x = tf.placeholder(tf.float32, [None, 2], name="x")
    tf.reduce_sum(x * 2.0, name="total")
    with tf.Session() as sess:
        writer = tf.summary.FileWriter(str(tmp_path / "logs"), sess.graph)
        writer.close()
    (path,) = (tmp_path / "logs").iterdir()
    data = path.read_bytes()
    assert b"total" in data and b"Placeholder" in data
    with pytest.raises(TypeError, match="expects a distflow Graph"):
        writer.add_graph("not a graph")


def test_saver_round_trip(tmp_path):
    w = tf.Variable([[1.0, 2.0]], name="w")
    step = tf.train.get_or_create_global_step()
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        prefix = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=7)
        sess.run(tf.assign(w, [[5.0, 5.0]]))
    assert prefix.endswith("model.ckpt-7")
    with tf.Session() as sess:
        saver.restore(sess, prefix)
        np.testing.assert_array_equal(sess.run(w), [[1.0, 2.0]])
        assert sess.run(step) == 0
        with pytest.raises(ValueError, match="not a valid checkpoint"):
            saver.restore(sess, str(tmp_path / "nothing"))


def test_layers_conv2d_pooling_flatten_dropout_and_l2_loss():
    rng = np.random.default_rng(5)
    images = rng.random((4, 8, 8, 1)).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 8, 8, 1])
    training = tf.placeholder(tf.bool, [])
    h = tf.layers.conv2d(x, 3, 3, padding="same", activation=tf.nn.relu)
    h = tf.layers.max_pooling2d(h, 2, 2)
    flat = tf.layers.flatten(h)
    out = tf.layers.dropout(flat, 0.5, training=training)
    reg = tf.nn.l2_loss(tf.trainable_variables()[0])
    assert h.shape.as_list() == [None, 4, 4, 3] and flat.shape.as_list() == [None, 48]
    assert [v.name for v in tf.trainable_variables()] == ["conv2d/kernel", "conv2d/bias"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        kept = sess.run(out, {x: images, training: False})
        dropped = sess.run(out, {x: images, training: True})
        kernel = sess.run(tf.trainable_variables()[0])
        np.testing.assert_allclose(sess.run(reg), (kernel ** 2).sum() / 2, rtol=1e-5)
    tf.enable_eager_execution()
    np.testing.assert_allclose(kept, _eager_forward(images, kernel), rtol=1e-6)
    assert set(np.unique(dropped[kept > 0] / kept[kept > 0]).round(5)) <= {0.0, 2.0}


def _eager_forward(images, kernel):
    conv = df.nn.conv2d(images, kernel, 1, "SAME").numpy()
    pooled = df.nn.max_pool2d(np.maximum(conv, 0), 2, 2, "VALID").numpy()
    return pooled.reshape(len(images), -1)


def test_sessions_run_from_several_threads():
    import threading

    x = tf.placeholder(tf.float32, [None], name="x")
    y = tf.reduce_sum(x * 2.0)
    sess = tf.Session()
    results, errors = [], []

    def work(k):
        try:
            for _ in range(200):
                results.append(float(sess.run(y, {x: [k, k]})) == 4.0 * k)
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(results) == 800 and all(results)
    from distflow.tensor import GRAPH

    assert GRAPH.active == 1  # only eager-disabled graph mode remains open


def test_session_config_is_accepted():
    config = tf.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True
    with tf.Session(config=config) as sess:
        assert sess.run(tf.constant(2.0) * 3.0) == 6.0


def test_exponential_decay_learning_rate_follows_global_step():
    w = tf.Variable(0.0)
    loss = tf.square(w - 10.0)
    step = tf.train.get_or_create_global_step()
    rate = tf.train.exponential_decay(0.1, step, 2, 0.5, staircase=True)
    train = tf.train.GradientDescentOptimizer(rate).minimize(loss, global_step=step)
    expect, lr = 0.0, []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i in range(5):
            lr.append(sess.run(rate))
            sess.run(train)
            expect -= 0.1 * 0.5 ** (i // 2) * 2 * (expect - 10.0)
        assert sess.run(step) == 5
        np.testing.assert_allclose(sess.run(w), expect, rtol=1e-6)
    np.testing.assert_allclose(lr, [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)


def test_adagrad_and_rmsprop_follow_the_tf1_formulas():
    w1, w2 = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    steps = [tf.train.AdagradOptimizer(0.1).minimize(tf.reduce_sum(w1 * w1)),
             tf.train.RMSPropOptimizer(0.01, momentum=0.5).minimize(tf.reduce_sum(w2 * w2))]
    a, acc = np.array([1.0, -2.0]), np.full(2, 0.1)
    r, ms, mom = np.array([1.0, -2.0]), np.ones(2), np.zeros(2)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(3):
            sess.run(steps)
            acc += (2 * a) ** 2
            a = a - 0.1 * 2 * a / np.sqrt(acc)
            ms = 0.9 * ms + 0.1 * (2 * r) ** 2
            mom = 0.5 * mom + 0.01 * 2 * r / np.sqrt(ms + 1e-10)
            r = r - mom
        np.testing.assert_allclose(sess.run(w1), a, rtol=1e-5)
        np.testing.assert_allclose(sess.run(w2), r, rtol=1e-5)


def test_adam_follows_the_tf1_formula():
    w = tf.Variable([1.0, -2.0])
    step = tf.train.AdamOptimizer(0.1).minimize(tf.reduce_sum(w * w))
    v, m, s = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for t in range(1, 4):
            sess.run(step)
            g = 2 * v
            m, s = 0.9 * m + 0.1 * g, 0.999 * s + 0.001 * g * g
            v = v - 0.1 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(s) + 1e-8)
        np.testing.assert_allclose(sess.run(w), v, rtol=1e-5)


def test_scalar_summaries_are_written_for_tensorboard(tmp_path):
    from tensorboardX.proto import event_pb2

    w = tf.Variable(3.0)
    loss = tf.square(w)
    tf.summary.scalar("loss", loss)
    tf.summary.scalar("w", w)
    merged = tf.summary.merge_all()
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.Session() as sess:
        writer = tf.summary.FileWriter(str(tmp_path), sess.graph)
        sess.run(tf.global_variables_initializer())
        for step in range(3):
            summary, _ = sess.run([merged, train])
            writer.add_summary(summary, step)
        writer.close()
    values = []
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            length = int.from_bytes(data[pos:pos + 8], "little")
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            values += [(event.step, v.tag, round(v.simple_value, 4)) for v in event.summary.value]
            pos += 16 + length
    assert sorted(values) == [(0, "loss", 9.0), (0, "w", 3.0), (1, "loss", 5.76), (1, "w", 2.4),
                              (2, "loss", 3.6864), (2, "w", 1.92)]


def test_the_tf1_softmax_regression_example_runs_as_a_script():
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "tf1_softmax_regression.py"
    out = subprocess.run([sys.executable, str(script), "--synthetic", "--steps", "200"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert float(re.search(r"test accuracy ([\d.]+)", out).group(1)) > 0.9, out


def test_tf1_tensors_compare_by_identity():
    a = tf.placeholder(tf.float32, [2])
    b = a * 2.0
    assert a in [b, a] and not (a == b) and a != b
    assert {a: 1, b: 2}[b] == 2
