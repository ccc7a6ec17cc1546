"""Scoring forecasts against actuals as they arrive, and watching the residuals for drift."""

from __future__ import annotations

import math
from dataclasses import dataclass

from streamer.accuracy.forecast_ledger import ForecastLedger
from streamer.accuracy.interval_calibration import IntervalCalibrator
from streamer.accuracy.match import Match
from streamer.drift.residual import standardized_residual
from streamer.pipeline.meter_record import MeterRecord


@dataclass(frozen=True, slots=True)
class ConceptDrift:
    """A meter whose one-slot-ahead residuals drifted (Page-Hinkley fired)."""

    meter_id: str
    at_ms: int
    slot_end_ms: int
    direction: str
    residual: float
    mae_kwh: float
    smape_pct: float
    pairs: int


def score_actual(
    record: MeterRecord,
    meter_id: str,
    slot: int,
    actual_kwh: float,
    *,
    res_ms: int,
    now_ms: int,
    prior: IntervalCalibrator | None = None,
) -> tuple[list[Match], ConceptDrift | None]:
    """Match the actual of ``slot`` with the forecasts issued for it; feed accuracy, drift and
    the meter's interval calibration (and the fleet ``prior``'s).

    Each match is told whether its actual fell in the band as published (the meter's
    calibration blended with the prior), after which both learn from it; its :class:`Match` is
    made once, with that answer (a hot path: one per forecast horizon kept).
    """
    entries = record.ledger.take(slot, actual_kwh)
    if not entries:
        return [], None
    actual = float(actual_kwh)
    calibrator = record.calibration
    accuracy = record.accuracy
    matches: list[Match] = []
    drift: ConceptDrift | None = None
    for horizon, point, p10, p50, p90 in entries:
        inside = calibrator.learn(horizon, p10, p50, p90, actual, prior)
        if prior is not None:
            prior.learn(horizon, p10, p50, p90, actual)
        matches.append(Match(horizon, point, p10, p50, p90, actual, inside))
        if math.isfinite(p50):
            accuracy.update(actual, p50)
        if horizon != 1:
            continue
        residual = standardized_residual(actual, p10, p50, p90)
        if math.isnan(residual):
            continue
        detector = record.detector
        detector.update(residual)
        if detector.drift_detected:
            snapshot = accuracy.get()
            drift = ConceptDrift(
                meter_id=meter_id,
                at_ms=now_ms,
                slot_end_ms=slot * res_ms,
                direction=detector.drift_direction or "both",
                residual=residual,
                mae_kwh=snapshot.mae_kwh,
                smape_pct=snapshot.smape_pct,
                pairs=snapshot.n,
            )
    return matches, drift


def match_shadow(ledger: ForecastLedger | None, slot: int, actual_kwh: float) -> list[Match]:
    return [] if ledger is None else ledger.match(slot, actual_kwh)
