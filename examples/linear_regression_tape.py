"""The GradientTape linear-regression sample from the TensorFlow tutorial, on distflow.

Ported from the seed tutorial with `tensorflow` replaced by `distflow`. Two fixes: the
prediction is computed inside the tape (the original computed it once, outside, so
the tape saw no path from the loss to w and b and `apply_gradients` had nothing to do),
and the data are floats (the original's int32 `x` times the float32 `w` raises in
TensorFlow, and here too: neither promotes between tensor dtypes).
The original's 100 steps at learning rate 0.01 stop short of the optimum; the number of
steps is a flag.

    python examples/linear_regression_tape.py [--steps 2000]
"""

import argparse

import distflow as tf

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
tf.random.set_seed(args.seed)

# Define input data
x = tf.constant([1.0, 2.0, 3.0])
y = tf.constant([2.0, 4.0, 6.0])

# Define linear regression model
w = tf.Variable(initial_value=tf.random.normal([]))
b = tf.Variable(initial_value=tf.random.normal([]))

# Define loss function and optimizer
loss_fn = tf.keras.losses.MeanSquaredError()
optimizer = tf.optimizers.SGD(learning_rate=0.01)


# Define training loop
@tf.function
def train_step():
    with tf.GradientTape() as tape:
        y_pred = w * x + b
        loss = loss_fn(y, y_pred)
    grads = tape.gradient(loss, [w, b])
    optimizer.apply_gradients(zip(grads, [w, b]))
    return loss


# Train the model
for _ in range(args.steps):
    loss = train_step()

# Print the results
print("w:", w.numpy())
print("b:", b.numpy())
print("loss:", float(loss))
