"""`image_dataset_from_directory`, `text_dataset_from_directory`, `audio_dataset_from_directory`.

Each lists the files as Keras does (`dataset_utils.index_directory`: one
subdirectory per class, sorted, shuffled with `np.random.RandomState(seed)`), splits
off the validation part as Keras does, and returns a `distflow.data.Dataset` of
`(inputs, labels)` batches that reads the files batch by batch. With `shuffle`, the
files are also shuffled within a buffer of `8 * batch_size` anew each epoch, as
Keras's pipeline does (with distflow's generator: that order differs from TF's). The dataset has
Keras's `class_names` and `file_paths` attributes.

Images: PNG files are decoded by the built-in codec; JPEG, BMP and GIF need Pillow.
Audio: WAV files (8-, 16- or 32-bit integer PCM) through the standard `wave` module,
scaled to [-1, 1) as `tf.audio.decode_wav`.
"""

from __future__ import annotations

import wave
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distflow.data import Dataset
from distflow.keras.layers.preprocessing_image import resize, smart_resize
from distflow.keras.utils import dataset_utils
from distflow.keras.utils.image_utils import decode_image

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


def _datasets(directory: str, labels: Any, label_mode: str | None, class_names: Any,
              formats: tuple[str, ...], options: dict[str, Any],
              load: Callable[[list[str]], Any]) -> Any:
    """The one or two (`subset="both"`) datasets of the files under `directory`."""
    shuffle, seed, split, subset = (options[k] for k in ("shuffle", "seed", "validation_split",
                                                          "subset"))
    dataset_utils.check_validation_split(split, subset, shuffle, seed)
    if split and seed is None:
        seed = np.random.randint(1e6)
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", '
                         f"or None. Received: label_mode={label_mode!r}")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    paths, found, names = dataset_utils.index_directory(
        directory, labels, formats, class_names, shuffle, seed, options["follow_links"],
        options["verbose"])
    if label_mode == "binary" and len(names) != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 '
                         f"class_names. Received: class_names={names}")
    subsets = ["training", "validation"] if subset == "both" else [subset]
    out = []
    for part in subsets:
        part_paths, part_labels = dataset_utils.training_or_validation_split(
            paths, found, split, part)
        if not part_paths:
            raise ValueError(f"No files found in directory {directory}. Allowed formats: "
                             f"{formats}")
        targets = dataset_utils.labels_to_array(part_labels, label_mode, len(names or []))
        out.append(_dataset(part_paths, targets, load, options["batch_size"], names,
                            (shuffle, seed)))
    return out if subset == "both" else out[0]


def _dataset(paths: list[str], targets: Any, load: Callable[[list[str]], Any],
             batch_size: int | None, names: list[str] | None,
             shuffling: tuple[bool, Any]) -> Dataset:
    def read(index: Any) -> Any:
        index = np.asarray(index)
        batch = load([paths[i] for i in index.reshape(-1)])
        batch = batch if index.ndim else batch[0]
        return batch if targets is None else (batch, targets[index])

    source = dataset_utils.buffer_shuffled(np.arange(len(paths)), batch_size, shuffling[1],
                                           shuffling[0])
    dataset = (source if batch_size is None else source.batch(batch_size)).map(read)
    dataset.class_names, dataset.file_paths = names, list(paths)
    return dataset


def _options(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def image_dataset_from_directory(
        directory: str, labels: Any = "inferred", label_mode: str | None = "int",
        class_names: Sequence[str] | None = None, color_mode: str = "rgb",
        batch_size: int | None = 32, image_size: tuple[int, int] = (256, 256),
        shuffle: bool = True, seed: int | None = None, validation_split: float | None = None,
        subset: str | None = None, interpolation: str = "bilinear", follow_links: bool = False,
        crop_to_aspect_ratio: bool = False, pad_to_aspect_ratio: bool = False,
        data_format: str | None = None, verbose: bool = True) -> Any:
    """A dataset of `(images, labels)` batches from image files, as Keras's.

    Images are float32 `(batch, height, width, channels)` resized to `image_size` as
    `tf.image.resize` ("bilinear" or "nearest"); labels are int32 (`"int"`), one-hot
    float32 (`"categorical"`) or float32 `(batch, 1)` (`"binary"`). See
    `keras.utils.image_dataset_from_directory` for every argument; `subset="both"`
    returns `[training, validation]`.
    """
    if color_mode not in _CHANNELS:
        raise ValueError('`color_mode` must be one of {"rgb", "rgba", "grayscale"}. Received: '
                         f"color_mode={color_mode!r}")
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError('`interpolation` must be "bilinear" or "nearest" in distflow. '
                         f"Received: interpolation={interpolation!r}")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be "
                         "set to `True`.")
    height, width = image_size

    def load(paths: list[str]) -> np.ndarray:
        images = []
        for path in paths:
            pixels = decode_image(path, _CHANNELS[color_mode])[None]
            images.append(_fit_image(pixels, height, width, interpolation,
                                     crop_to_aspect_ratio, pad_to_aspect_ratio)[0])
        batch = np.stack(images).astype(np.float32)
        return batch.transpose(0, 3, 1, 2) if data_format == "channels_first" else batch

    return _datasets(directory, labels, label_mode, class_names, IMAGE_FORMATS, _options(
        shuffle=shuffle, seed=seed, validation_split=validation_split, subset=subset,
        follow_links=follow_links, verbose=verbose, batch_size=batch_size), load)


def _fit_image(pixels: np.ndarray, height: int, width: int, method: str, crop: bool,
               pad: bool) -> np.ndarray:
    if crop:
        return smart_resize(pixels, height, width, method)
    if pad:
        pixels = _pad_to_aspect(pixels, height, width)
    return resize(pixels, height, width, method)


def _pad_to_aspect(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Zero-pads (centred) to the target aspect ratio, as Keras's pad_to_aspect_ratio."""
    h, w = pixels.shape[1:3]
    pad_h, pad_w = max(0, int(w * height / width) - h), max(0, int(h * width / height) - w)
    return np.pad(pixels, ((0, 0), (pad_h // 2, pad_h - pad_h // 2),
                           (pad_w // 2, pad_w - pad_w // 2), (0, 0)))


def text_dataset_from_directory(
        directory: str, labels: Any = "inferred", label_mode: str | None = "int",
        class_names: Sequence[str] | None = None, batch_size: int | None = 32,
        max_length: int | None = None, shuffle: bool = True, seed: int | None = None,
        validation_split: float | None = None, subset: str | None = None,
        follow_links: bool = False, verbose: bool = True) -> Any:
    """A dataset of `(texts, labels)` batches from `.txt` files, as Keras's.

    Texts are object arrays of the files' bytes (what `.numpy()` of TF's string
    batches gives), cut to `max_length` bytes when given.
    """
    def load(paths: list[str]) -> np.ndarray:
        texts = []
        for path in paths:
            with open(path, "rb") as f:
                data = f.read()
            texts.append(data if max_length is None else data[:max_length])
        out = np.empty(len(texts), dtype=object)
        out[:] = texts
        return out

    return _datasets(directory, labels, label_mode, class_names, (".txt",), _options(
        shuffle=shuffle, seed=seed, validation_split=validation_split, subset=subset,
        follow_links=follow_links, verbose=verbose, batch_size=batch_size), load)


def audio_dataset_from_directory(
        directory: str, labels: Any = "inferred", label_mode: str | None = "int",
        class_names: Sequence[str] | None = None, batch_size: int | None = 32,
        sampling_rate: int | None = None, output_sequence_length: int | None = None,
        ragged: bool = False, shuffle: bool = True, seed: int | None = None,
        validation_split: float | None = None, subset: str | None = None,
        follow_links: bool = False, verbose: bool = True) -> Any:
    """A dataset of `(audio, labels)` batches from `.wav` files, as Keras's.

    Audio is float32 `(batch, samples, channels)` in [-1, 1); each batch is zero-padded
    to its longest clip, or cut/padded to `output_sequence_length`.

    Raises:
        ValueError: for `sampling_rate` (Keras needs tensorflow-io to resample) or
            `ragged=True` (no ragged tensors), or a file that is not integer PCM WAV.
    """
    if sampling_rate is not None:
        raise ValueError("`sampling_rate` (resampling) is not supported: resample the files "
                         f"first. Received: sampling_rate={sampling_rate!r}")
    if ragged:
        raise ValueError("`ragged=True` is not supported (distflow has no ragged tensors); "
                         "use `output_sequence_length` or the default per-batch padding.")

    def load(paths: list[str]) -> np.ndarray:
        clips = [read_wav(path) for path in paths]
        length = output_sequence_length or max(len(c) for c in clips)
        out = np.zeros((len(clips), length, clips[0].shape[1]), np.float32)
        for row, clip in zip(out, clips):
            row[:min(length, len(clip))] = clip[:length]
        return out

    return _datasets(directory, labels, label_mode, class_names, (".wav",), _options(
        shuffle=shuffle, seed=seed, validation_split=validation_split, subset=subset,
        follow_links=follow_links, verbose=verbose, batch_size=batch_size), load)


def read_wav(path: str) -> np.ndarray:
    """float32 `(samples, channels)` of an integer PCM WAV file, as `tf.audio.decode_wav`."""
    try:
        with wave.open(path, "rb") as f:
            width, channels, frames = f.getsampwidth(), f.getnchannels(), f.readframes(
                f.getnframes())
    except wave.Error as err:
        raise ValueError(f"Cannot read {path!r} as a PCM WAV file: {err}") from err
    if width == 1:
        samples = (np.frombuffer(frames, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        kind = np.dtype(f"<i{width}")
        samples = np.frombuffer(frames, kind).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise ValueError(f"Unsupported WAV sample width {8 * width} bits in {path!r}: 8, 16 "
                         "or 32-bit integer PCM only.")
    return samples.reshape(-1, channels)
