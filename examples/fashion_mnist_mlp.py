"""Fashion-MNIST with a multi-layer perceptron: one process, or many with the launcher.

    python examples/fashion_mnist_mlp.py --epochs 2
    python -m distflow.launch --workers 2 --ps 1 --strategy mirrored \
        examples/fashion_mnist_mlp.py --epochs 2
    python -m distflow.launch --workers 2 --ps 1 --strategy async examples/fashion_mnist_mlp.py

The script is the Keras one with `tensorflow` replaced by `distflow`; the only
distributed line is `with strategy.scope():` around building and compiling
the model; `fit` stays outside it, as in TensorFlow's tutorials (the model
remembers its strategy). Under the launcher every worker runs
it, `fit` trains on this worker's share of each batch, and only the chief
(worker 0) prints progress, evaluates and saves. Without the data set it says
where it looked; `--synthetic` trains on a generated stand-in.
"""

from _common import load_fashion_mnist, parse_args

import distflow as df
from distflow import keras
from distflow.keras import layers

args = parse_args(__doc__.splitlines()[0], epochs=5, batch_size=128)
keras.utils.set_random_seed(args.seed)
(x_train, y_train), (x_test, y_test) = load_fashion_mnist(args)

strategy = df.distribute.get_strategy()
with strategy.scope():
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        layers.Flatten(),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(128, activation="relu"),
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
