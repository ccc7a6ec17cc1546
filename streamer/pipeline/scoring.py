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
    the meter's interval calibration (and the fleet ``prior``'s)."""
    matches = record.ledger.match(slot, actual_kwh)
    if matches:
        matches = _calibrate(record.calibration, prior, matches)
    drift: ConceptDrift | None = None
    for match in matches:
        if math.isfinite(match.p50):
            record.accuracy.update(match.actual, match.p50)
        if match.horizon_slots != 1:
            continue
        residual = standardized_residual(match.actual, match.p10, match.p50, match.p90)
        if math.isnan(residual):
            continue
        record.detector.update(residual)
        if record.detector.drift_detected:
            snapshot = record.accuracy.get()
            drift = ConceptDrift(
                meter_id=meter_id,
                at_ms=now_ms,
                slot_end_ms=slot * res_ms,
                direction=record.detector.drift_direction or "both",
                residual=residual,
                mae_kwh=snapshot.mae_kwh,
                smape_pct=snapshot.smape_pct,
                pairs=snapshot.n,
            )
    return matches, drift


def _calibrate(
    calibrator: IntervalCalibrator, prior: IntervalCalibrator | None, matches: list[Match]
) -> list[Match]:
    """Each match told whether its actual fell in the band as published (the meter's
    calibration blended with the prior), after which both learn from it."""
    out = []
    for match in matches:
        inside = calibrator.update(match, prior)
        if prior is not None:
            prior.update(match)
        if inside is not None:  # dataclasses.replace, field by field (a few times cheaper)
            match = Match(
                match.horizon_slots,
                match.point,
                match.p10,
                match.p50,
                match.p90,
                match.actual,
                inside,
            )
        out.append(match)
    return out


def match_shadow(ledger: ForecastLedger | None, slot: int, actual_kwh: float) -> list[Match]:
    return [] if ledger is None else ledger.match(slot, actual_kwh)
