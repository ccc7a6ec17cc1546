"""Running sums of the metrics per horizon slot, so a backtest needs no forecast archive."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streamer.evaluate import metrics
from streamer.evaluate.metric_set import MetricSet

FloatArray = npt.NDArray[np.float64]


class HorizonAccumulator:
    """Adds up metric terms (from :mod:`streamer.evaluate.metrics`) per horizon slot.

    ``update`` takes ``(B, H)`` actuals, point forecasts and ``(B, H, Q)`` quantiles;
    ``summary(first, last)`` returns the metrics over horizon slots ``first..last``
    (1-based, inclusive), equal to calling the metric functions on all pairs seen.
    """

    def __init__(self, horizon_slots: int, quantile_levels: tuple[float, ...]) -> None:
        h, q = horizon_slots, len(quantile_levels)
        self.horizon_slots = horizon_slots
        self.quantile_levels = quantile_levels
        self._n = np.zeros(h, dtype=np.int64)
        self._abs = np.zeros(h)
        self._sq = np.zeros(h)
        self._smape = np.zeros(h)
        self._n_ape = np.zeros(h, dtype=np.int64)
        self._ape = np.zeros(h)
        self._zero = np.zeros(h, dtype=np.int64)
        self._n_scaled = np.zeros(h, dtype=np.int64)
        self._scaled = np.zeros(h)
        self._n_pin = np.zeros((h, q), dtype=np.int64)
        self._pin = np.zeros((h, q))
        self._n_cov = np.zeros(h, dtype=np.int64)
        self._cov = np.zeros(h)

    def update(
        self,
        actual: FloatArray,
        point: FloatArray,
        quantiles: FloatArray,
        scale: FloatArray,
    ) -> HorizonAccumulator:
        """Add one origin: ``actual``/``point`` ``(B, H)``, ``quantiles`` ``(B, H, Q)``,
        ``scale`` ``(B,)`` (the MASE denominator per meter)."""
        abs_err = metrics.absolute_error_terms(actual, point)
        _add(self._n, self._abs, abs_err)
        _add(None, self._sq, abs_err**2)
        _add(None, self._smape, metrics.smape_terms(actual, point))
        ape, zero = metrics.percentage_error_terms(actual, point)
        _add(self._n_ape, self._ape, ape)
        self._zero += zero.sum(axis=0)
        _add(
            self._n_scaled, self._scaled, metrics.scaled_error_terms(actual, point, scale[:, None])
        )
        pin = metrics.pinball_terms(actual, quantiles, self.quantile_levels)
        _add(self._n_pin, self._pin, pin)
        if len(self.quantile_levels) > 1:
            cover = metrics.coverage_terms(actual, quantiles[..., 0], quantiles[..., -1])
            _add(self._n_cov, self._cov, cover)
        return self

    def summary(self, first: int, last: int) -> MetricSet:
        """Metrics over horizon slots ``first..last`` (1-based, inclusive)."""
        sl = slice(first - 1, last)
        n = int(self._n[sl].sum())
        per_level = tuple(
            _ratio(self._pin[sl, j].sum(), self._n_pin[sl, j].sum())
            for j in range(len(self.quantile_levels))
        )
        levels = self.quantile_levels
        return MetricSet(
            n_pairs=n,
            mae_kwh=_ratio(self._abs[sl].sum(), n),
            rmse_kwh=float(np.sqrt(_ratio(self._sq[sl].sum(), n))),
            mape_percent=_ratio(self._ape[sl].sum(), self._n_ape[sl].sum()),
            mape_skipped_zero=int(self._zero[sl].sum()),
            smape_percent=_ratio(self._smape[sl].sum(), n),
            mase=_ratio(self._scaled[sl].sum(), self._n_scaled[sl].sum()),
            pinball_kwh=float(np.mean(per_level)) if per_level else float("nan"),
            pinball_per_level_kwh=per_level,
            coverage=_ratio(self._cov[sl].sum(), self._n_cov[sl].sum()),
            nominal_coverage=levels[-1] - levels[0] if len(levels) > 1 else float("nan"),
        )


def _add(count: npt.NDArray[np.int64] | None, total: FloatArray, terms: FloatArray) -> None:
    """Add the finite ``terms`` over the meter axis (axis 0) into ``total`` (and ``count``)."""
    ok = np.isfinite(terms)
    total += np.where(ok, terms, 0.0).sum(axis=0)
    if count is not None:
        count += ok.sum(axis=0)


def _ratio(total: float, count: int | np.integer) -> float:
    return float(total / count) if count else float("nan")
