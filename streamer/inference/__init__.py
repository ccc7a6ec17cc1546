"""Serving ONNX models: features shared with training, one ONNX Runtime session per model
version and process, and the :class:`~streamer.forecast.protocol.Forecaster` around it.

Never imports torch (training lives in :mod:`streamer.train`).
"""

from __future__ import annotations

from streamer.inference.errors import FeatureError, InferenceError, ModelLoadError
from streamer.inference.features import (
    DEFAULT_FEATURES,
    KNOWN_FEATURES,
    FeatureSpec,
    ModelInputs,
    build_inputs,
    holiday_set,
    unscale,
)
from streamer.inference.onnx_forecaster import OnnxForecaster
from streamer.inference.onnx_model import OnnxModel
from streamer.inference.providers import choose_providers, parse_providers
from streamer.inference.registration import onnx_factory, register_lstm

__all__ = [
    "DEFAULT_FEATURES",
    "KNOWN_FEATURES",
    "FeatureError",
    "FeatureSpec",
    "InferenceError",
    "ModelInputs",
    "ModelLoadError",
    "OnnxForecaster",
    "OnnxModel",
    "build_inputs",
    "choose_providers",
    "holiday_set",
    "onnx_factory",
    "parse_providers",
    "register_lstm",
    "unscale",
]
