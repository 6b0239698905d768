"""The TensorFlow 1 "MNIST for ML beginners" softmax regression, on distflow.

Written the TF1 way (graph, placeholders, Session, feed_dict); the only change from
the TF1 original is the import line. The tutorial's `input_data.read_data_sets` is
replaced by MNIST from `distflow.keras.datasets` (or, with `--synthetic`, generated
digits: class c lights up a block of pixels).

    python examples/tf1_softmax_regression.py [--synthetic] [--steps 1000]
"""

import argparse

import numpy as np

import distflow.compat.v1 as tf

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=1000)
parser.add_argument("--synthetic", action="store_true")
args = parser.parse_args()


def synthetic(n, rng):
    labels = rng.integers(0, 10, n)
    images = rng.random((n, 784)).astype(np.float32) * 0.3
    for i, c in enumerate(labels):
        images[i, c * 78:(c + 1) * 78] += 0.7
    return images, labels


if args.synthetic:
    rng = np.random.default_rng(0)
    (train_x, train_y), (test_x, test_y) = synthetic(5000, rng), synthetic(1000, rng)
else:
    (train_x, train_y), (test_x, test_y) = tf.keras.datasets.mnist.load_data()
    train_x, test_x = train_x.reshape(-1, 784) / 255.0, test_x.reshape(-1, 784) / 255.0
train_y, test_y = np.eye(10, dtype=np.float32)[train_y], np.eye(10, dtype=np.float32)[test_y]

tf.disable_eager_execution()

# --- the tutorial, unchanged ---
x = tf.placeholder(tf.float32, [None, 784])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
y = tf.nn.softmax(tf.matmul(x, W) + b)
y_ = tf.placeholder(tf.float32, [None, 10])
cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

sess = tf.InteractiveSession()
tf.global_variables_initializer().run()
for i in range(args.steps):
    start = i * 100 % len(train_x)
    batch_xs, batch_ys = train_x[start:start + 100], train_y[start:start + 100]
    sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})

correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
print("test accuracy", sess.run(accuracy, feed_dict={x: test_x, y_: test_y}))
