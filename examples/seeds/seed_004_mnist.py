"""Seed tutorial 004: MNIST with load_data, to_categorical, Flatten and Dense.

`mnist.load_data()` looks for the IDX files in $DISTFLOW_DATA/mnist,
~/.distflow/datasets/mnist and /usr/share/datasets/mnist, then downloads them;
its error says where to put them when it cannot.
"""

from distflow.keras.datasets import mnist
from distflow.keras.layers import Dense, Flatten
from distflow.keras.models import Sequential
from distflow.keras.utils import to_categorical

# 加载数据
(x_train, y_train), (x_test, y_test) = mnist.load_data()

# 预处理数据
x_train = x_train.reshape(-1, 28 * 28).astype('float32') / 255
x_test = x_test.reshape(-1, 28 * 28).astype('float32') / 255
y_train = to_categorical(y_train, 10)
y_test = to_categorical(y_test, 10)

# 构建神经网络
model = Sequential([
    Flatten(input_shape=(28 * 28,)),
    Dense(128, activation='relu'),
    Dense(10, activation='softmax')
])

# 编译模型
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])

# 训练模型
model.fit(x_train, y_train, epochs=10, batch_size=32)

# 评估模型
loss, accuracy = model.evaluate(x_test, y_test)
print(f'Test accuracy: {accuracy * 100:.2f}%')
