"""The model card of a freshly trained model."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import torch

from streamer.inference.features import ModelInputs
from streamer.modelrepo.card import (
    CARD_SCHEMA_VERSION,
    WINDOW_SCALE_FEATURE,
    FeatureReference,
    ModelCard,
    ScalingSpec,
    TensorSpec,
    TrainingData,
    TrainingSummary,
)
from streamer.modelrepo.layout import WEIGHTS_FILE
from streamer.modelrepo.reference import feature_histograms
from streamer.timeutil import to_datetime
from streamer.train.config import TrainConfig
from streamer.train.export import INPUT_NAME, OUTPUT_NAME
from streamer.train.loop import FitResult
from streamer.train.windows import WindowSampler


def build_card(
    *,
    name: str,
    version: str,
    config: TrainConfig,
    sampler: WindowSampler,
    fit: FitResult,
    model_sha256: str,
    source: str,
    device: str,
    seconds: float,
    reference_inputs: ModelInputs,
) -> ModelCard:
    """Everything serving needs, plus what the model was trained on and how."""
    grid = sampler.grid
    used = grid.slots - config.holdout_slots
    rows = int(np.isfinite(grid.kwh[:, :used]).sum())
    features = tuple(config.features)
    best = fit.best_validation_pinball
    return ModelCard(
        schema_version=CARD_SCHEMA_VERSION,
        name=name,
        version=version,
        created_at=datetime.now(UTC),
        model_sha256=model_sha256,
        onnx_opset=config.opset,
        resolution_seconds=config.resolution_seconds,
        lookback_slots=config.lookback_slots,
        horizon_slots=config.horizon_slots,
        min_history_slots=config.min_history_slots,
        features=features,
        scaling=ScalingSpec(method="mean_abs", epsilon=config.epsilon),
        quantile_levels=tuple(config.quantile_levels),
        point_quantile=0.5,
        holidays=tuple(config.holidays),
        calendar_time=config.calendar_time,
        weights_file=WEIGHTS_FILE,
        inputs=(TensorSpec(name=INPUT_NAME, shape=(-1, config.lookback_slots, len(features))),),
        outputs=(
            TensorSpec(
                name=OUTPUT_NAME,
                shape=(-1, config.horizon_slots, len(config.quantile_levels)),
            ),
        ),
        training_data=TrainingData(
            source=source,
            meters=sampler.meters,
            first_ts=to_datetime(grid.end_ms(0)),
            last_ts=to_datetime(grid.end_ms(used - 1)),
            rows=rows,
            train_windows=sampler.train_windows,
            validation_windows=sampler.validation_windows,
            validation_days=config.validation_days,
            holdout_days=config.holdout_days,
            seed=config.seed,
        ),
        training=TrainingSummary(
            epochs_run=fit.epochs_run,
            best_epoch=fit.best_epoch,
            best_validation_pinball=round(best, 6) if np.isfinite(best) else None,
            device=device,
            seconds=round(seconds, 1),
            torch_version=str(torch.__version__),
            hyperparameters=config.hyperparameters(),
        ),
        reference=card_references(reference_inputs, features),
        notes=config.notes,
    )


def card_references(inputs: ModelInputs, features: tuple[str, ...]) -> tuple[FeatureReference, ...]:
    """Histograms of every input feature (per time step) and of the window scale (per window)."""
    return feature_histograms(inputs.values, features) + feature_histograms(
        inputs.scale.reshape(-1, 1), (WINDOW_SCALE_FEATURE,)
    )
