"""Errors of the ONNX inference area."""

from __future__ import annotations

from streamer.errors import StreamerError


class InferenceError(StreamerError):
    """Base of the errors raised by :mod:`streamer.inference`."""


class ModelLoadError(InferenceError):
    """A model file cannot be loaded, or disagrees with its card. Names the file and field."""


class FeatureError(InferenceError):
    """A feature list names a feature this streamer cannot compute, or inputs are malformed."""
