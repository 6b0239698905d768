"""A small GPT-style character language model: causal self-attention trained by `fit`.

    python examples/transformer_char_lm.py --epochs 4
    python -m distflow.launch --workers 2 --ps 1 --strategy mirrored \
        examples/transformer_char_lm.py --epochs 4

The text is `--text FILE`, else this checkout's own documentation (README.md and
docs/*.md), which every copy of the project has. Each sample is a window of
`--length` characters; the model predicts every next character: token and
position embeddings, `--blocks` pre-norm Transformer blocks (causal
MultiHeadAttention, a GELU feed-forward, residuals), a Dense over the vocabulary.
The last 10 % of the text is held out; the script prints the held-out perplexity
beside the unigram baseline's (a model that knows only character frequencies).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

import distflow as df
from distflow import keras
from distflow.keras import layers

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default=None, help="a UTF-8 text file (default: the docs)")
    parser.add_argument("--max-chars", type=int, default=None, help="use the first N chars")
    parser.add_argument("--length", type=int, default=64, help="characters per sample")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def read_text(args: argparse.Namespace) -> str:
    """The training text: `--text`, else README.md and docs/*.md of this checkout."""
    paths = [Path(args.text)] if args.text else [REPO / "README.md",
                                                  *sorted((REPO / "docs").glob("*.md"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in paths)
    return text[:args.max_chars] if args.max_chars else text


def windows(ids: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets of the windows starting every length / 2 chars."""
    starts = np.arange(0, len(ids) - length - 1, length // 2)
    take = starts[:, None] + np.arange(length + 1)
    seqs = ids[take]
    return seqs[:, :-1], seqs[:, 1:]


class TokenAndPosition(layers.Layer):
    """Token embedding plus a learned embedding of each position."""

    def __init__(self, vocab: int, length: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab, self.length, self.width = vocab, length, width
        self.tokens = layers.Embedding(vocab, width)
        self.positions = layers.Embedding(length, width)

    def call(self, ids):
        return self.tokens(ids) + self.positions(df.range(self.length))

    def get_config(self):
        return {**super().get_config(), "vocab": self.vocab, "length": self.length,
                "width": self.width}


def transformer_block(x, width: int, heads: int):
    """Pre-norm block: x + attention(norm(x)), then x + feed-forward(norm(x))."""
    h = layers.LayerNormalization()(x)
    h = layers.MultiHeadAttention(heads, width // heads)(h, h, use_causal_mask=True)
    x = layers.Add()([x, h])
    h = layers.LayerNormalization()(x)
    h = layers.Dense(4 * width, activation="gelu")(h)
    return layers.Add()([x, layers.Dense(width)(h)])


def build_model(vocab: int, args: argparse.Namespace) -> keras.Model:
    ids = keras.Input((args.length,), dtype="int32")
    x = TokenAndPosition(vocab, args.length, args.width)(ids)
    for _ in range(args.blocks):
        x = transformer_block(x, args.width, args.heads)
    logits = layers.Dense(vocab)(layers.LayerNormalization()(x))
    return keras.Model(ids, logits)


def main() -> None:
    args = parse_args()
    keras.utils.set_random_seed(args.seed)
    text = read_text(args)
    chars = sorted(set(text))
    ids = np.searchsorted(chars, np.array(list(text))).astype(np.int32)
    split = int(len(ids) * 0.9)
    x_train, y_train = windows(ids[:split], args.length)
    x_val, y_val = windows(ids[split:], args.length)
    counts = np.bincount(ids[:split], minlength=len(chars)) + 1
    unigram = math.exp(-np.mean(np.log(counts / counts.sum())[ids[split:]]))

    strategy = df.distribute.get_strategy()
    with strategy.scope():
        model = build_model(len(chars), args)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              validation_data=(x_val, y_val))
    if strategy.is_chief:
        loss, accuracy = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
        print(f"{len(text)} characters, vocabulary {len(chars)}, "
              f"{model.count_params()} parameters")
        print(f"held-out perplexity {math.exp(loss):.2f} (unigram {unigram:.2f}) - "
              f"next-character accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
