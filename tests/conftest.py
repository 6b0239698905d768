"""Test-wide settings: child processes run single-threaded BLAS so that
multi-process tests do not oversubscribe the two cores."""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DISTFLOW_OFFLINE", "1")  # tests never download
