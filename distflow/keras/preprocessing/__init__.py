"""`keras.preprocessing`: the data set constructors and the `image` and `sequence` helpers
(the same functions as `keras.utils`'s)."""

from distflow.keras.preprocessing import image, sequence
from distflow.keras.utils.dataset_utils import timeseries_dataset_from_array
from distflow.keras.utils.directory_datasets import (
    image_dataset_from_directory,
    text_dataset_from_directory,
)
