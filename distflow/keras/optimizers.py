"""`distflow.keras.optimizers` is `distflow.optimizers` (as `tf.keras.optimizers` is in TF).

A real module file, so that `from distflow.keras.optimizers import Adam` and
`from distflow.keras.optimizers.schedules import ExponentialDecay` work; it
replaces itself (and its submodules) with the shared package in `sys.modules`,
so classes are the same objects under both names.
"""

import importlib
import sys

import distflow.optimizers as _optimizers

for _sub in ("base", "optimizers", "rules", "schedules", "legacy", "loss_scale"):
    sys.modules[f"{__name__}.{_sub}"] = importlib.import_module(f"distflow.optimizers.{_sub}")
sys.modules[__name__] = _optimizers
