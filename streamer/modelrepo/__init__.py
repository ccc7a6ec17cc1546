"""The model repository: ``models/<name>/<version>/model.onnx`` with a validated model card
(``card.json``) beside it and a Triton ``config.pbtxt`` per model name.

Pure Python and numpy: importing this package never imports torch or onnxruntime.
"""

from __future__ import annotations

from streamer.modelrepo.card import (
    CARD_SCHEMA_VERSION,
    BacktestMetrics,
    BacktestSummary,
    FeatureReference,
    ModelCard,
    ScalingSpec,
    TensorSpec,
    TrainingData,
    TrainingSummary,
    card_error_from_validation,
    dump_card,
    load_card,
    parse_card,
    write_card,
)
from streamer.modelrepo.checksum import sha256_file
from streamer.modelrepo.errors import ModelCardError, ModelNotFoundError, ModelRepoError
from streamer.modelrepo.layout import (
    CARD_FILE,
    MODEL_FILE,
    TRITON_CONFIG_FILE,
    latest_version,
    list_versions,
    model_dir,
    resolve_version,
)
from streamer.modelrepo.reference import feature_histograms, histogram_proportions
from streamer.modelrepo.triton import triton_config_text, write_triton_config

__all__ = [
    "CARD_FILE",
    "CARD_SCHEMA_VERSION",
    "MODEL_FILE",
    "TRITON_CONFIG_FILE",
    "BacktestMetrics",
    "BacktestSummary",
    "FeatureReference",
    "ModelCard",
    "ModelCardError",
    "ModelNotFoundError",
    "ModelRepoError",
    "ScalingSpec",
    "TensorSpec",
    "TrainingData",
    "TrainingSummary",
    "card_error_from_validation",
    "dump_card",
    "feature_histograms",
    "histogram_proportions",
    "latest_version",
    "list_versions",
    "load_card",
    "model_dir",
    "parse_card",
    "resolve_version",
    "sha256_file",
    "triton_config_text",
    "write_card",
    "write_triton_config",
]
