"""Fashion-MNIST with a small convolutional network: one process, or many with the launcher.

    python examples/fashion_mnist_cnn.py --epochs 1 --limit 10000
    python -m distflow.launch --workers 2 --ps 1 --strategy mirrored \
        examples/fashion_mnist_cnn.py --epochs 1

Same structure as fashion_mnist_mlp.py: a Keras script in which the only
distributed line is `with strategy.scope():` around building and compiling
the model; `fit` stays outside it, as in TensorFlow's tutorials (the model
remembers its strategy). Conv2D runs as im2col plus one matrix
product on NumPy, so a full epoch takes minutes on a laptop core; `--limit`
trains on the first N images.
"""

from _common import load_fashion_mnist, parse_args

import distflow as df
from distflow import keras
from distflow.keras import layers

args = parse_args(__doc__.splitlines()[0], epochs=5, batch_size=32)
keras.utils.set_random_seed(args.seed)
(x_train, y_train), (x_test, y_test) = load_fashion_mnist(args)
x_train, x_test = x_train[..., None], x_test[..., None]  # NHWC with one channel

strategy = df.distribute.get_strategy()
with strategy.scope():
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
          validation_split=0.1)
if strategy.is_chief:
    model.summary()
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    print(f"test loss {loss:.4f} - test accuracy {accuracy:.4f}")
    if args.save:
        model.save(args.save)
