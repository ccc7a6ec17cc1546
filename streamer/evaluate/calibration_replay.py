"""The stream's interval calibration replayed over a backtest, origin by origin, without leakage.

Each meter gets an :class:`~streamer.accuracy.interval_calibration.IntervalCalibrator` on a
fleet prior, as in a worker. At each origin the forecaster's quantiles are published calibrated
with what the calibrators know; the forecasts at the tracked horizons (the worker's ledger
horizons) are then queued with their target slot, and each is learnt from only once its
target is before a later origin, as a worker learns when the actual arrives.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import numpy.typing as npt

from streamer.accuracy.interval_calibration import (
    CalibrationConfig,
    IntervalCalibrator,
    batch_multipliers,
    calibrate_quantiles,
    level_column,
)
from streamer.accuracy.match import Match

FloatArray = npt.NDArray[np.float64]


class CalibrationReplay:
    """Calibrates one forecaster's batches for ``meters`` meters, as a worker would."""

    def __init__(
        self, meters: int, config: CalibrationConfig, quantile_levels: tuple[float, ...]
    ) -> None:
        self.config = config
        self.prior = IntervalCalibrator(config.for_prior())
        self.meters = [IntervalCalibrator(config) for _ in range(meters)]
        self.levels = quantile_levels
        self._median = level_column(quantile_levels, 0.5)
        self._low = level_column(quantile_levels, config.low)
        self._high = level_column(quantile_levels, config.high)
        # (target slot, sequence, meter, match without its actual yet)
        self._pending: list[tuple[int, int, int, int, FloatArray]] = []
        self._sequence = 0

    @property
    def usable(self) -> bool:
        return None not in (self._median, self._low, self._high)

    def learn_until(self, origin: int, grid_kwh: FloatArray) -> None:
        """Learn from every queued forecast whose target slot is before ``origin``."""
        pending = self._pending
        while pending and pending[0][0] < origin:
            target, _, meter, horizon, values = heapq.heappop(pending)
            actual = float(grid_kwh[meter, target])
            if not math.isfinite(actual):
                continue
            match = Match(horizon, values[0], values[1], values[2], values[3], actual)
            self.meters[meter].update(match, self.prior)
            self.prior.update(match)

    def publish(
        self, origin: int, point: FloatArray, quantiles: FloatArray, valid: npt.NDArray[np.bool_]
    ) -> FloatArray:
        """The batch's quantiles calibrated (``(B, H, Q)``); its tracked forecasts queued."""
        if not self.usable:
            return quantiles
        assert self._median is not None and self._low is not None and self._high is not None
        horizon = quantiles.shape[1]
        low, high = batch_multipliers(self.meters, self.prior, horizon)
        published = calibrate_quantiles(quantiles, self.levels, self._median, low, high)
        for h in self.config.horizons:
            if h > horizon:
                continue
            column = h - 1
            for meter in np.flatnonzero(valid).tolist():
                values = np.array(
                    (
                        point[meter, column],
                        quantiles[meter, column, self._low],
                        quantiles[meter, column, self._median],
                        quantiles[meter, column, self._high],
                    )
                )
                self._sequence += 1
                heapq.heappush(self._pending, (origin + column, self._sequence, meter, h, values))
        return published
