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

    With ``meters`` (the batch size ``B``, the same meters in the same rows at every update),
    it also keeps sums per meter so that ``summary`` gives the per-meter mean of MAE, NRMSE,
    MASE and coverage (each meter's own metric, averaged over meters); without, those are NaN.
    """

    def __init__(
        self, horizon_slots: int, quantile_levels: tuple[float, ...], meters: int | None = None
    ) -> None:
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
        self._actual = np.zeros(h)
        self._meter: _PerMeter | None = None if meters is None else _PerMeter(meters, h)

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
        _add(None, self._actual, np.where(np.isfinite(abs_err), actual, np.nan))
        _add(None, self._smape, metrics.smape_terms(actual, point))
        ape, zero = metrics.percentage_error_terms(actual, point)
        _add(self._n_ape, self._ape, ape)
        self._zero += zero.sum(axis=0)
        scaled = metrics.scaled_error_terms(actual, point, scale[:, None])
        _add(self._n_scaled, self._scaled, scaled)
        pin = metrics.pinball_terms(actual, quantiles, self.quantile_levels)
        _add(self._n_pin, self._pin, pin)
        cover = None
        if len(self.quantile_levels) > 1:
            cover = metrics.coverage_terms(actual, quantiles[..., 0], quantiles[..., -1])
            _add(self._n_cov, self._cov, cover)
        if self._meter is not None:
            self._meter.update(actual, abs_err, scaled, cover)
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
        pinball_kwh = float(np.mean(per_level)) if per_level else float("nan")
        rmse_kwh = float(np.sqrt(_ratio(self._sq[sl].sum(), n)))
        mean_actual = _ratio(self._actual[sl].sum(), n)
        per_meter = self._meter.summary(sl) if self._meter is not None else _NO_PER_METER
        return MetricSet(
            n_pairs=n,
            mae_kwh=_ratio(self._abs[sl].sum(), n),
            rmse_kwh=rmse_kwh,
            mape_percent=_ratio(self._ape[sl].sum(), self._n_ape[sl].sum()),
            mape_skipped_zero=int(self._zero[sl].sum()),
            smape_percent=_ratio(self._smape[sl].sum(), n),
            mase=_ratio(self._scaled[sl].sum(), self._n_scaled[sl].sum()),
            pinball_kwh=pinball_kwh,
            pinball_per_level_kwh=per_level,
            coverage=_ratio(self._cov[sl].sum(), self._n_cov[sl].sum()),
            nominal_coverage=levels[-1] - levels[0] if len(levels) > 1 else float("nan"),
            nrmse=rmse_kwh / mean_actual if mean_actual != 0.0 else float("nan"),
            crps_kwh=2.0 * pinball_kwh,
            meters_scored=per_meter[0],
            mae_kwh_per_meter=per_meter[1],
            nrmse_per_meter=per_meter[2],
            mase_per_meter=per_meter[3],
            coverage_per_meter=per_meter[4],
        )


_NO_PER_METER = (0, float("nan"), float("nan"), float("nan"), float("nan"))


class _PerMeter:
    """``(meters, H)`` sums for the per-meter mean of MAE, NRMSE, MASE and coverage."""

    def __init__(self, meters: int, horizon_slots: int) -> None:
        shape = (meters, horizon_slots)
        self.n = np.zeros(shape, dtype=np.int64)
        self.abs = np.zeros(shape)
        self.sq = np.zeros(shape)
        self.actual = np.zeros(shape)
        self.n_scaled = np.zeros(shape, dtype=np.int64)
        self.scaled = np.zeros(shape)
        self.n_cov = np.zeros(shape, dtype=np.int64)
        self.cov = np.zeros(shape)

    def update(
        self,
        actual: FloatArray,
        abs_err: FloatArray,
        scaled: FloatArray,
        cover: FloatArray | None,
    ) -> None:
        ok = np.isfinite(abs_err)
        self.n += ok
        self.abs += np.where(ok, abs_err, 0.0)
        self.sq += np.where(ok, abs_err**2, 0.0)
        self.actual += np.where(ok, actual, 0.0)
        ok_scaled = np.isfinite(scaled)
        self.n_scaled += ok_scaled
        self.scaled += np.where(ok_scaled, scaled, 0.0)
        if cover is not None:
            ok_cov = np.isfinite(cover)
            self.n_cov += ok_cov
            self.cov += np.where(ok_cov, cover, 0.0)

    def summary(self, sl: slice) -> tuple[int, float, float, float, float]:
        """(meters with a pair, mean MAE, mean NRMSE, mean MASE, mean coverage)."""
        n = self.n[:, sl].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mae = self.abs[:, sl].sum(axis=1) / n
            rmse = np.sqrt(self.sq[:, sl].sum(axis=1) / n)
            mean_actual = self.actual[:, sl].sum(axis=1) / n
            nrmse = np.where(mean_actual != 0.0, rmse / mean_actual, np.nan)
            mase = self.scaled[:, sl].sum(axis=1) / self.n_scaled[:, sl].sum(axis=1)
            cov = self.cov[:, sl].sum(axis=1) / self.n_cov[:, sl].sum(axis=1)
        return (
            int((n > 0).sum()),
            _nanmean(mae),
            _nanmean(nrmse),
            _nanmean(mase),
            _nanmean(cov),
        )


def _nanmean(values: FloatArray) -> float:
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def _add(count: npt.NDArray[np.int64] | None, total: FloatArray, terms: FloatArray) -> None:
    """Add the finite ``terms`` over the meter axis (axis 0) into ``total`` (and ``count``)."""
    ok = np.isfinite(terms)
    total += np.where(ok, terms, 0.0).sum(axis=0)
    if count is not None:
        count += ok.sum(axis=0)


def _ratio(total: float, count: int | np.integer) -> float:
    return float(total / count) if count else float("nan")
