"""Keras callbacks: hooks `fit`, `evaluate` and `predict` call during training.

`from distflow.keras.callbacks import EarlyStopping, ModelCheckpoint` works as
with `tensorflow.keras.callbacks`. How `fit` drives them is documented in
`distflow.keras.callbacks.base`; what `fit` must do for `BackupAndRestore` in
`distflow.keras.callbacks.backup_and_restore`.
"""

from distflow.keras.callbacks.backup_and_restore import BackupAndRestore
from distflow.keras.callbacks.base import Callback
from distflow.keras.callbacks.callback_list import CallbackList
from distflow.keras.callbacks.csv_logger import CSVLogger
from distflow.keras.callbacks.early_stopping import EarlyStopping
from distflow.keras.callbacks.history import History
from distflow.keras.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from distflow.keras.callbacks.misc import LambdaCallback, TerminateOnNaN
from distflow.keras.callbacks.model_checkpoint import ModelCheckpoint
from distflow.keras.callbacks.progbar import Progbar, ProgbarLogger
from distflow.keras.callbacks.remote_monitor import RemoteMonitor
from distflow.keras.callbacks.swap_ema_weights import SwapEMAWeights
from distflow.keras.callbacks.tensorboard import TensorBoard

__all__ = ["BackupAndRestore", "CSVLogger", "Callback", "CallbackList", "EarlyStopping",
           "History", "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint", "Progbar",
           "ProgbarLogger", "ReduceLROnPlateau", "RemoteMonitor", "SwapEMAWeights",
           "TensorBoard", "TerminateOnNaN"]
