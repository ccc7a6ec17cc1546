"""Sliding windows over a ``(meters, slots)`` history grid, split in time, as model inputs.

Inputs go through :func:`streamer.inference.features.build_inputs`, the same function the
ONNX forecaster calls, so training and serving cannot compute features differently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamer.evaluate.grid import HistoryGrid
from streamer.inference.features import (
    FeatureSpec,
    ModelInputs,
    build_inputs,
    holiday_set,
    scale_targets,
)
from streamer.train.config import TrainConfig
from streamer.train.errors import TrainConfigError

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class WindowBatch:
    """``inputs`` ``(B, L, F)`` float32; ``targets`` ``(B, H)`` float32 in scaled units, NaN
    where the actual is missing or the row has too little history (left out of the loss)."""

    inputs: Float32Array
    targets: Float32Array
    scale: FloatArray


def feature_spec_of(config: TrainConfig) -> FeatureSpec:
    """The feature spec a training config implies (and its model card records)."""
    return FeatureSpec(
        features=tuple(config.features),
        lookback_slots=config.lookback_slots,
        resolution_seconds=config.resolution_seconds,
        epsilon=config.epsilon,
        holidays=holiday_set(config.holidays),
    )


class WindowSampler:
    """Windows ``(meter, origin)``: inputs are the ``lookback_slots`` slots before ``origin``,
    targets the ``horizon_slots`` from ``origin`` on.

    The last ``holdout_days`` are never used. Before them, windows whose targets fall in the
    last ``validation_days`` are the validation split; training windows end their targets
    before that split starts.
    """

    def __init__(self, grid: HistoryGrid, config: TrainConfig) -> None:
        if grid.resolution_seconds != config.resolution_seconds:
            raise TrainConfigError(
                f"the history grid is at {grid.resolution_seconds} s, the config at "
                f"{config.resolution_seconds} s"
            )
        self.grid = grid
        self.config = config
        self.spec = feature_spec_of(config)
        lookback, horizon = config.lookback_slots, config.horizon_slots
        usable = grid.slots - config.holdout_slots
        self.validation_start = usable - config.validation_slots
        self.train_origins = (lookback, self.validation_start - horizon)
        self.validation_origins = (max(self.validation_start, lookback), usable - horizon)
        if self.train_origins[1] < self.train_origins[0] or (
            self.validation_origins[1] < self.validation_origins[0]
        ):
            days = grid.slots / config.slots_per_day
            need = (lookback + 2 * horizon) / config.slots_per_day + (
                config.validation_days + config.holdout_days
            )
            raise TrainConfigError(
                f"the history spans {days:.1f} days, too short for a {lookback}-slot lookback, "
                f"{horizon}-slot horizon, {config.validation_days} validation days and "
                f"{config.holdout_days} holdout days (needs more than {need:.1f} days); load "
                "more history or shorten the validation/holdout periods"
            )
        self._validation = self._validation_windows()

    @property
    def meters(self) -> int:
        return int(self.grid.kwh.shape[0])

    @property
    def train_windows(self) -> int:
        """Number of distinct training windows (meters x origins)."""
        lo, hi = self.train_origins
        return self.meters * (hi - lo + 1)

    @property
    def validation_windows(self) -> int:
        """Number of validation windows used (a fixed, evenly spread subset)."""
        return int(self._validation[0].size)

    def _validation_windows(self) -> tuple[IntArray, IntArray]:
        lo, hi = self.validation_origins
        origins = np.arange(lo, hi + 1, dtype=np.int64)
        meters = np.arange(self.meters, dtype=np.int64)
        all_m = np.repeat(meters, origins.size)
        all_o = np.tile(origins, meters.size)
        limit = self.config.max_validation_windows
        if all_m.size > limit:
            pick = np.random.default_rng(self.config.seed + 1).choice(
                all_m.size, size=limit, replace=False
            )
            pick.sort()
            all_m, all_o = all_m[pick], all_o[pick]
        return all_m, all_o

    def sample_train(self, rng: np.random.Generator, count: int) -> tuple[IntArray, IntArray]:
        """``count`` random training windows (uniform over meters and origins)."""
        lo, hi = self.train_origins
        meters = rng.integers(0, self.meters, size=count, dtype=np.int64)
        origins = rng.integers(lo, hi + 1, size=count, dtype=np.int64)
        return meters, origins

    def raw(self, meters: IntArray, origins: IntArray) -> tuple[FloatArray, FloatArray, IntArray]:
        """History ``(B, L)``, actuals ``(B, H)`` in kWh and ``end_ms`` ``(B,)`` of windows."""
        lookback, horizon = self.config.lookback_slots, self.config.horizon_slots
        cols_in = origins[:, None] + np.arange(-lookback, 0, dtype=np.int64)[None, :]
        cols_out = origins[:, None] + np.arange(horizon, dtype=np.int64)[None, :]
        history = self.grid.kwh[meters[:, None], cols_in]
        actual = self.grid.kwh[meters[:, None], cols_out]
        res_ms = self.grid.resolution_seconds * 1000
        end_ms = self.grid.first_end_ms + (origins - 1) * res_ms
        return history, actual, end_ms.astype(np.int64)

    def batch(
        self, meters: IntArray, origins: IntArray, rng: np.random.Generator | None = None
    ) -> WindowBatch:
        """Model inputs and scaled targets; with ``rng``, random gaps are cut into the inputs
        (so that the model learns to cope with missing readings)."""
        history, actual, end_ms = self.raw(meters, origins)
        if rng is not None:
            history = self._augment(history, rng)
        inputs = build_inputs(history, end_ms, self.spec)
        targets = scale_targets(actual, inputs.scale)
        targets[inputs.finite_slots < self.config.min_history_slots] = np.nan
        return WindowBatch(inputs.values, targets.astype(np.float32), inputs.scale)

    def _augment(self, history: FloatArray, rng: np.random.Generator) -> FloatArray:
        out = history.copy()
        rows, slots = out.shape
        cfg = self.config
        cols = np.arange(slots)[None, :]
        gap = np.less(rng.random(size=(rows, 1)), cfg.gap_probability)
        start = rng.integers(0, slots, size=rows, dtype=np.int64).reshape(rows, 1)
        length = rng.integers(1, cfg.max_gap_slots + 1, size=rows, dtype=np.int64).reshape(rows, 1)
        out[gap & (cols >= start) & (cols < start + length)] = np.nan
        prefix = np.less(rng.random(size=(rows, 1)), cfg.prefix_mask_probability)
        keep_max = max(slots - cfg.min_history_slots, 1)
        cut = rng.integers(0, keep_max, size=rows, dtype=np.int64).reshape(rows, 1)
        out[prefix & (cols < cut)] = np.nan
        return out

    def validation_batches(self, batch_size: int) -> Iterator[WindowBatch]:
        """The fixed validation windows, in batches, without augmentation."""
        meters, origins = self._validation
        for start in range(0, meters.size, batch_size):
            stop = start + batch_size
            yield self.batch(meters[start:stop], origins[start:stop])

    def reference_inputs(self, count: int) -> ModelInputs:
        """Inputs ``(N, L, F)`` and window scales ``(N,)`` of up to ``count`` training windows
        (fixed seed, no gaps cut): the reference distributions of the model card."""
        rng = np.random.default_rng(self.config.seed + 2)
        count = min(count, self.train_windows)
        meters, origins = self.sample_train(rng, count)
        history, _, end_ms = self.raw(meters, origins)
        return build_inputs(history, end_ms, self.spec)
