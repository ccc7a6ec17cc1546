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
        calendar_time=config.calendar_time,
    )


class WindowSampler:
    """Windows ``(meter, origin)``: inputs are the ``lookback_slots`` slots before ``origin``,
    targets the ``horizon_slots`` from ``origin`` on.

    The split is per meter, on each meter's own series: its history ends at its last reading
    (no later than the start of the pooled grid's last ``holdout_days``, which are never used,
    so that the backtest's held-out period stays unseen). Windows whose targets fall in the
    last ``validation_days`` of that history are the meter's validation windows; its training
    windows end their targets before its validation period starts. Meters whose histories end
    on different dates thus each contribute validation windows from their own ends.
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
        #: Per meter: the zone its calendar features are read in.
        self.zones = grid.zones(config.time_zone)
        lookback, horizon = config.lookback_slots, config.horizon_slots
        pooled_end = grid.slots - config.holdout_slots
        finite = np.isfinite(grid.kwh[:, : max(pooled_end, 0)])
        last = np.where(finite.any(axis=1), finite.shape[1] - np.argmax(finite[:, ::-1], axis=1), 0)
        #: Per meter: the end (exclusive slot) of its usable history.
        self.usable_ends: IntArray = last.astype(np.int64)
        #: Per meter: the first slot of its validation period.
        self.validation_starts: IntArray = self.usable_ends - config.validation_slots
        #: Per meter: inclusive ``(first, last)`` training origins; empty where last < first.
        self.train_lo: IntArray = np.full(self.meters, lookback, dtype=np.int64)
        self.train_hi: IntArray = self.validation_starts - horizon
        #: Per meter: inclusive ``(first, last)`` validation origins.
        self.validation_lo: IntArray = np.maximum(self.validation_starts, lookback)
        self.validation_hi: IntArray = self.usable_ends - horizon
        self._train_counts = np.maximum(self.train_hi - self.train_lo + 1, 0)
        self._train_cumulative = np.cumsum(self._train_counts)
        validation_counts = np.maximum(self.validation_hi - self.validation_lo + 1, 0)
        if not self._train_counts.any() or not validation_counts.any():
            days = float(self.usable_ends.max(initial=0)) / config.slots_per_day
            need = (lookback + 2 * horizon) / config.slots_per_day + config.validation_days
            raise TrainConfigError(
                f"the longest meter history (before the {config.holdout_days} holdout days) "
                f"spans {days:.1f} days, too short for a {lookback}-slot lookback, "
                f"{horizon}-slot horizon and {config.validation_days} validation days "
                f"(needs more than {need:.1f} days); load more history or shorten the "
                "validation/holdout periods"
            )
        self._validation = self._validation_windows()

    @property
    def meters(self) -> int:
        return int(self.grid.kwh.shape[0])

    @property
    def train_windows(self) -> int:
        """Number of distinct training windows (over meters and origins)."""
        return int(self._train_counts.sum())

    @property
    def validation_windows(self) -> int:
        """Number of validation windows used (a fixed, evenly spread subset)."""
        return int(self._validation[0].size)

    @property
    def meters_in_training(self) -> int:
        """Meters with at least one training window."""
        return int((self._train_counts > 0).sum())

    def train_period(self) -> tuple[int, int]:
        """First and last slot (inclusive) that training targets can fall in, over all meters."""
        has = self._train_counts > 0
        first = int(self.train_lo[has].min())
        last = int((self.train_hi[has] + self.config.horizon_slots - 1).max())
        return first, last

    def validation_period(self) -> tuple[int, int]:
        """First and last slot (inclusive) of the validation windows' targets."""
        _, origins = self._validation
        return int(origins.min()), int((origins + self.config.horizon_slots - 1).max())

    def _validation_windows(self) -> tuple[IntArray, IntArray]:
        parts_m: list[IntArray] = []
        parts_o: list[IntArray] = []
        for meter in range(self.meters):
            lo, hi = int(self.validation_lo[meter]), int(self.validation_hi[meter])
            if hi < lo:
                continue
            origins = np.arange(lo, hi + 1, dtype=np.int64)
            parts_o.append(origins)
            parts_m.append(np.full(origins.size, meter, dtype=np.int64))
        all_m = np.concatenate(parts_m)
        all_o = np.concatenate(parts_o)
        limit = self.config.max_validation_windows
        if all_m.size > limit:
            pick = np.random.default_rng(self.config.seed + 1).choice(
                all_m.size, size=limit, replace=False
            )
            pick.sort()
            all_m, all_o = all_m[pick], all_o[pick]
        return all_m, all_o

    def sample_train(self, rng: np.random.Generator, count: int) -> tuple[IntArray, IntArray]:
        """``count`` random training windows (uniform over all meters' training windows)."""
        flat = rng.integers(0, self.train_windows, size=count, dtype=np.int64)
        meters = np.searchsorted(self._train_cumulative, flat, side="right").astype(np.int64)
        before = self._train_cumulative[meters] - self._train_counts[meters]
        origins = self.train_lo[meters] + (flat - before)
        return meters, origins.astype(np.int64)

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
        inputs = build_inputs(history, end_ms, self.spec, self.zones[meters])
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
        return build_inputs(history, end_ms, self.spec, self.zones[meters])
