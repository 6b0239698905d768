"""distflow: data-parallel deep learning with a NumPy autodiff core."""

__version__ = "0.1.0"
