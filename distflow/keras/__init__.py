"""Keras-compatible API (filled by the model-API work)."""
