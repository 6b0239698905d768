"""Seed tutorial 001: Keras-style imports, Sequential, Adam(), fit."""

import numpy as np

from distflow.keras.layers import Dense
from distflow.keras.models import Sequential
from distflow.keras.optimizers import Adam

# --- data the tutorial leaves undefined: 32 noisy features, 10 classes; ---
# --- class c raises feature c, so there is something to learn          ---
rng = np.random.default_rng(1)
y_train = rng.integers(0, 10, 1000)
x_train = rng.normal(size=(1000, 32)).astype("float32")
x_train[np.arange(1000), y_train] += 2.5
# --- end of the added lines ---

# 定义模型
model = Sequential([
    Dense(64, activation='relu', input_shape=(32,)),
    Dense(64, activation='relu'),
    Dense(10, activation='softmax')
])

# 编译模型
model.compile(optimizer=Adam(),
              loss='sparse_categorical_crossentropy',
              metrics=['accuracy'])

# 训练模型
history = model.fit(x_train, y_train, epochs=5, batch_size=32)
print("final accuracy", history.history["accuracy"][-1])
