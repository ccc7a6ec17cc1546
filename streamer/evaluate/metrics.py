"""Forecast accuracy metrics: pure numpy, NaN-aware.

Every metric looks only at pairs where both the actual and the forecast are finite (NaN and
inf are missing values, not errors); a metric with no pair left returns NaN. Arrays broadcast
against each other like numpy operands. Values are in the unit of the data (kWh) unless the
name says otherwise.

The ``*_terms`` functions return the element-wise contributions (NaN where a pair is missing);
the backtest accumulates those per horizon slot so its totals are exactly these metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamer.evaluate.errors import MetricInputError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MapeResult:
    """Mean absolute percentage error.

    ``value`` is in percent (``12.5`` means 12.5 %). Pairs whose actual is zero (``|actual| <=
    zero_tolerance``) have no percentage error and are skipped, counted in ``skipped_zero``;
    ``n_pairs`` pairs were averaged. ``value`` is NaN when ``n_pairs`` is 0.
    """

    value: float
    n_pairs: int
    skipped_zero: int


@dataclass(frozen=True, slots=True)
class PinballResult:
    """Pinball (quantile) loss: ``mean`` over the levels and ``per_level`` in level order."""

    mean: float
    per_level: tuple[float, ...]
    levels: tuple[float, ...]


def _pairs(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    try:
        a, f = np.broadcast_arrays(a, f)
    except ValueError:
        raise MetricInputError(
            f"actual {a.shape} and forecast {f.shape} do not broadcast; pass arrays of the "
            "same shape"
        ) from None
    ok = np.isfinite(a) & np.isfinite(f)
    return np.where(ok, a, np.nan), np.where(ok, f, np.nan)


def _mean(terms: FloatArray) -> float:
    ok = np.isfinite(terms)
    return float(terms[ok].mean()) if ok.any() else float("nan")


def absolute_error_terms(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> FloatArray:
    """``|actual - forecast|``, NaN where a pair is missing."""
    a, f = _pairs(actual, forecast)
    return np.abs(a - f)


def mae(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean absolute error."""
    return _mean(absolute_error_terms(actual, forecast))


def rmse(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Root mean squared error."""
    return float(np.sqrt(_mean(absolute_error_terms(actual, forecast) ** 2)))


def percentage_error_terms(
    actual: npt.ArrayLike, forecast: npt.ArrayLike, *, zero_tolerance: float = 0.0
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """``100 |a - f| / |a|`` (NaN where missing or zero) and the mask of skipped zero actuals."""
    a, f = _pairs(actual, forecast)
    zero = np.isfinite(a) & (np.abs(a) <= zero_tolerance)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = 100.0 * np.abs(a - f) / np.abs(a)
    return np.where(zero, np.nan, terms), zero


def mape(
    actual: npt.ArrayLike, forecast: npt.ArrayLike, *, zero_tolerance: float = 0.0
) -> MapeResult:
    """Mean absolute percentage error in percent, skipping zero actuals (see
    :class:`MapeResult`). Smart-meter series hold many zeros, so read it with ``skipped_zero``
    and prefer sMAPE or MASE for comparisons across meters."""
    terms, zero = percentage_error_terms(actual, forecast, zero_tolerance=zero_tolerance)
    ok = np.isfinite(terms)
    value = float(terms[ok].mean()) if ok.any() else float("nan")
    return MapeResult(value, int(ok.sum()), int(zero.sum()))


def smape_terms(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> FloatArray:
    """``200 |a - f| / (|a| + |f|)``, with ``0 / 0`` defined as 0 (both zero: a perfect
    forecast); NaN where a pair is missing."""
    a, f = _pairs(actual, forecast)
    denom = np.abs(a) + np.abs(f)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = 200.0 * np.abs(a - f) / denom
    return np.where(denom == 0.0, 0.0, terms)


def smape(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Symmetric MAPE on the 0..200 scale (percent)."""
    return _mean(smape_terms(actual, forecast))


def seasonal_naive_scale(insample: npt.ArrayLike, season_slots: int) -> FloatArray:
    """MAE of the in-sample seasonal-naive forecast ``y[t - m]`` along the last axis.

    Shape: ``insample.shape[:-1]``; NaN where no pair is finite. This is MASE's denominator.
    """
    y = np.asarray(insample, dtype=np.float64)
    if season_slots < 1:
        raise MetricInputError(f"season_slots must be positive, got {season_slots}")
    if y.shape[-1] <= season_slots:
        return np.full(y.shape[:-1], np.nan)
    err = np.abs(y[..., season_slots:] - y[..., :-season_slots])
    ok = np.isfinite(err)
    count = ok.sum(axis=-1)
    total = np.where(ok, err, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(count > 0, total / count, np.nan), dtype=np.float64)


def scaled_error_terms(
    actual: npt.ArrayLike, forecast: npt.ArrayLike, scale: npt.ArrayLike
) -> FloatArray:
    """``|a - f| / scale``; NaN where a pair is missing or the scale is 0 or not finite."""
    s = np.asarray(scale, dtype=np.float64)
    s = np.where(np.isfinite(s) & (s > 0), s, np.nan)
    return absolute_error_terms(actual, forecast) / s


def mase(
    actual: npt.ArrayLike,
    forecast: npt.ArrayLike,
    insample: npt.ArrayLike,
    season_slots: int,
) -> float:
    """Mean absolute scaled error: MAE divided by the in-sample seasonal-naive MAE.

    One series: ``actual``/``forecast`` of shape ``(N,)`` and ``insample`` ``(T,)``. Several:
    ``(B, N)`` with ``insample`` ``(B, T)``; each row is scaled by its own in-sample MAE and
    the mean is over all pairs. Rows whose scale is 0 (a series that repeats exactly) or
    undefined are left out; NaN when nothing is left.
    """
    a = np.asarray(actual, dtype=np.float64)
    scale = seasonal_naive_scale(insample, season_slots)
    if scale.shape != a.shape[:-1]:
        raise MetricInputError(
            f"insample {np.shape(insample)} must have the leading shape of actual {a.shape}: "
            "one in-sample series per forecast series"
        )
    return _mean(scaled_error_terms(a, forecast, scale[..., None]))


def _check_levels(quantiles: FloatArray, levels: Sequence[float]) -> FloatArray:
    lv = np.asarray(levels, dtype=np.float64)
    if lv.ndim != 1 or quantiles.shape[-1:] != lv.shape:
        raise MetricInputError(
            f"quantiles have {quantiles.shape[-1:]} levels on their last axis but "
            f"{lv.size} levels were given; pass one level per quantile column"
        )
    if ((lv <= 0) | (lv >= 1)).any():
        raise MetricInputError(f"quantile levels {tuple(lv)} must lie inside (0, 1)")
    return lv


def pinball_terms(
    actual: npt.ArrayLike, quantiles: npt.ArrayLike, levels: Sequence[float]
) -> FloatArray:
    """``(..., Q)`` pinball losses ``max(q (a - f), (q - 1)(a - f))``; NaN where missing."""
    qs = np.asarray(quantiles, dtype=np.float64)
    lv = _check_levels(qs, levels)
    a, f = _pairs(np.asarray(actual, dtype=np.float64)[..., None], qs)
    diff = a - f
    return np.maximum(lv * diff, (lv - 1.0) * diff)


def pinball(
    actual: npt.ArrayLike, quantiles: npt.ArrayLike, levels: Sequence[float]
) -> PinballResult:
    """Pinball loss per level (mean over that level's pairs) and their mean over levels.

    ``actual`` has shape ``(...)`` and ``quantiles`` ``(..., Q)``.
    """
    terms = pinball_terms(actual, quantiles, levels)
    flat = terms.reshape(-1, terms.shape[-1])
    per_level = tuple(_mean(flat[:, j]) for j in range(flat.shape[1]))
    mean = float(np.mean(per_level)) if per_level else float("nan")
    return PinballResult(mean, per_level, tuple(float(q) for q in levels))


def coverage_terms(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> FloatArray:
    """1.0 where ``lower <= actual <= upper``, 0.0 where not, NaN where any is missing."""
    a, lo = _pairs(actual, lower)
    a, hi = _pairs(a, upper)
    lo = np.where(np.isfinite(a), lo, np.nan)
    inside = (lo <= a) & (a <= hi)
    return np.where(np.isfinite(a) & np.isfinite(lo), inside.astype(np.float64), np.nan)


def interval_coverage(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> float:
    """Share (0..1) of actuals inside ``[lower, upper]`` (bounds included)."""
    return _mean(coverage_terms(actual, lower, upper))


def nrmse(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Normalised RMSE: RMSE divided by the mean actual over the same pairs (unitless).

    NaN when there is no pair or the mean actual is 0.
    """
    a, f = _pairs(actual, forecast)
    ok = np.isfinite(a)
    if not ok.any():
        return float("nan")
    mean_actual = float(a[ok].mean())
    if mean_actual == 0.0:
        return float("nan")
    return float(np.sqrt(np.mean((a[ok] - f[ok]) ** 2))) / mean_actual


def crps_from_quantiles(
    actual: npt.ArrayLike, quantiles: npt.ArrayLike, levels: Sequence[float]
) -> float:
    """CRPS approximated from a few quantiles: twice the mean pinball loss over the levels.

    CRPS is ``2 * integral over tau in (0, 1) of pinball_tau``; this replaces the integral by
    the equal-weight mean over the model's ``levels`` (a quantile-score approximation). With
    levels p10..p90 only it leaves out the tails, so it reads a little low against the exact
    CRPS of a full distribution. With one level 0.5 it equals the MAE.
    """
    return 2.0 * pinball(actual, quantiles, levels).mean
