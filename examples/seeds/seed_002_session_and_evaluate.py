"""Seed tutorial 002: a TF1 Session matmul, then Sequential.add, fit and evaluate.

The tutorial's lines run with only the import changed: distflow runs eagerly
(as TF2) unless `distflow.compat.v1.disable_eager_execution()` is called, and
`Session.run` returns an eager tensor's value (a graph tensor's, in graph mode).
"""

import numpy as np

import distflow as tf
from distflow.keras.layers import Dense
from distflow.keras.models import Sequential
from distflow.keras.utils import to_categorical

# 创建一个张量
a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
b = tf.constant([[5.0, 6.0], [7.0, 8.0]])

# 定义一个操作，例如矩阵乘法
c = tf.matmul(a, b)

# 创建一个Session
with tf.Session() as sess:
    # 运行操作
    result = sess.run(c)
    print(result)

# --- data the tutorial leaves undefined: 100 noisy features, one-hot labels of 10 ---
# --- classes; class c raises feature c, so there is something to learn           ---
rng = np.random.default_rng(2)


def make_data(n):
    labels = rng.integers(0, 10, n)
    x = rng.normal(size=(n, 100)).astype("float32")
    x[np.arange(n), labels] += 3.5
    return x, to_categorical(labels, 10)


x_train, y_train = make_data(1000)
x_test, y_test = make_data(200)
# --- end of the added lines ---

# 创建一个神经网络模型
model = Sequential()
model.add(Dense(units=64, activation='relu', input_dim=100))
model.add(Dense(units=10, activation='softmax'))

# 编译模型
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])

# 训练模型
model.fit(x_train, y_train, epochs=10, batch_size=32)

# 评估模型
loss, accuracy = model.evaluate(x_test, y_test)
print('loss:', loss)
print('accuracy:', accuracy)
