"""Seed tutorial 000: a Sequential MLP with compile, fit and predict."""

import numpy as np

import distflow as tf

# --- data the tutorial leaves undefined: 10 features, 10 classes ---
rng = np.random.default_rng(0)
X_train = rng.normal(size=(1000, 10)).astype("float32")
y_train = (X_train[:, :5].sum(axis=1) > 0).astype("int64") + 2 * (X_train[:, 5] > 0)
X_test = rng.normal(size=(200, 10)).astype("float32")
# --- end of the added lines ---


# 创建一个简单的神经网络模型
def create_model():
    model = tf.keras.Sequential([
        tf.keras.layers.Dense(64, activation='relu', input_shape=(10,)),
        tf.keras.layers.Dense(64, activation='relu'),
        tf.keras.layers.Dense(10, activation='softmax')
    ])
    return model


# 创建一个简单的神经网络模型
model = create_model()

# 编译模型
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])

# 训练模型
history = model.fit(X_train, y_train, epochs=10, batch_size=32)

# 进行预测
predictions = model.predict(X_test)
print("predictions", predictions.shape, "final accuracy", history.history["accuracy"][-1])
