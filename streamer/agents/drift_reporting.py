"""Accuracy and drift: per-meter concept-drift events as they happen, fleet reports on a timer.

Per batch (:func:`score_batch`): matched actuals feed the worker's fleet accuracy (live
and shadow model separately); each meter whose residuals drifted gets a ``concept_drift`` record
on ``forecast-drift``. Every ``STREAMER_DRIFT_REPORT_INTERVAL_SECONDS`` (:func:`report_fleet`):
fleet accuracy by horizon (live, and shadow when one runs) and data drift of the model inputs
(PSI, KS against the model card's reference histograms) go to ``forecast-drift`` (key ``fleet``)
and to Prometheus gauges; the interval's accumulators then start again.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

from streamer.accuracy.fleet_accuracy import FleetAccuracy
from streamer.agents.runtime import WorkerCore, WorkerRuntime
from streamer.contract.drift_record import DriftReport
from streamer.drift.input_drift import InputDriftMonitor
from streamer.drift.reference_histogram import ReferenceHistogram
from streamer.errors import StreamerError
from streamer.modelrepo.card import WINDOW_SCALE_FEATURE
from streamer.pipeline.batch_processor import BatchResult
from streamer.pipeline.deferred_calls import deferrable
from streamer.timeutil import now_ms
from streamer.typed_decorators import typed

log = logging.getLogger(__name__)

# Calendar features move with the clock, not with the meters; is_missing has a one-bin
# reference in cards written so far. The load is what drifts: its shape (load_scaled, per step)
# and its level (the window's scale).
MONITORED_FEATURES = ("load_scaled", WINDOW_SCALE_FEATURE)


def worker_name(core: WorkerCore | WorkerRuntime) -> str:
    return f"{core.settings.web_host}:{core.settings.web_port}"


def attach_data_drift_monitor(core: WorkerCore) -> None:
    """Watch the live model's inputs against its card (no-op for models without a card)."""
    live = core.router.live
    model = getattr(live, "model", None)
    card = getattr(model, "card", None)
    core.data_drift = None
    if card is None or not hasattr(live, "input_observer"):
        return
    references = {
        ref.feature: ReferenceHistogram.from_reference(ref)
        for ref in card.reference
        if ref.feature in MONITORED_FEATURES
    }
    if not references:
        log.warning(
            "model %s:%s has no input reference; data drift is not monitored",
            card.name,
            card.version,
        )
        return
    try:
        monitor = InputDriftMonitor(
            card.features,
            references,
            psi_threshold=core.settings.drift_psi_threshold,
            ks_threshold=core.settings.drift_ks_threshold,
        )
    except StreamerError as exc:
        log.warning("data drift not monitored: %s", exc)
        return
    core.data_drift = monitor
    # the model may run on an inference thread: the monitor is offered its rows on the event
    # loop, in batch order, when the batch's records are made (streamer.pipeline.deferred_calls)
    live.input_observer = deferrable(monitor.update)


def score_batch(core: WorkerCore, result: BatchResult) -> list[DriftReport]:
    """Fold a batch's matches into the fleet accuracy; its concept-drift reports, to be sent
    with the batch's other outputs."""
    metrics = core.metrics
    reports: list[DriftReport] = []
    core.fleet_live.update_many(result.matches)
    core.fleet_shadow.update_many(result.shadow_matches)
    for role, matches in (("live", result.matches), ("shadow", result.shadow_matches)):
        # one counter update per horizon, not per match (a batch has thousands of matches)
        for horizon, count in Counter(match.horizon_slots for match in matches).items():
            metrics.accuracy_pairs.labels(role=role, horizon_slots=str(horizon)).inc(count)
    live = core.router.live
    for drift in result.concept_drifts:
        report = DriftReport(
            scope="meter",
            kind="concept_drift",
            at_ms=drift.at_ms,
            model_name=live.name,
            model_version=live.version,
            meter_id=drift.meter_id,
            worker=worker_name(core),
            direction=drift.direction,
            metrics={
                "residual": drift.residual,
                "mae_kwh": drift.mae_kwh,
                "smape_pct": drift.smape_pct,
                "pairs": float(drift.pairs),
                "slot_end_ms": float(drift.slot_end_ms),
            },
            detail=f"one-slot-ahead residuals drifted {drift.direction} (Page-Hinkley)",
        )
        reports.append(report)
        metrics.concept_drifts.labels(direction=drift.direction).inc()
    return reports


def _accuracy_report(
    runtime: WorkerRuntime, fleet: FleetAccuracy, role: str, model: Any, at_ms: int
) -> DriftReport:
    gauges = runtime.metrics
    for acc in fleet.get():
        labels = {"role": role, "horizon_slots": str(acc.horizon_slots)}
        gauges.fleet_mae.labels(**labels).set(acc.mae_kwh)
        gauges.fleet_smape.labels(**labels).set(acc.smape_pct)
        gauges.fleet_pinball.labels(**labels).set(acc.pinball_kwh)
        gauges.fleet_coverage.labels(**labels).set(acc.coverage)
        if not math.isnan(acc.coverage_calibrated):
            gauges.fleet_calibrated_coverage.labels(**labels).set(acc.coverage_calibrated)
    return DriftReport(
        scope="fleet",
        kind="accuracy",
        at_ms=at_ms,
        model_name=model.name,
        model_version=model.version,
        worker=worker_name(runtime),
        role="live" if role == "live" else "shadow",
        metrics=fleet.metrics(),
        detail=f"{role} model accuracy over the last interval, by horizon",
    )


def report_fleet(runtime: WorkerRuntime) -> list[DriftReport]:
    """Fleet accuracy and data drift since the last report; resets the interval."""
    at_ms = now_ms()
    live = runtime.router.live
    reports: list[DriftReport] = []
    if runtime.fleet_live.count:
        reports.append(_accuracy_report(runtime, runtime.fleet_live, "live", live, at_ms))
    shadow = runtime.router.shadow
    if shadow is not None and runtime.fleet_shadow.count:
        reports.append(_accuracy_report(runtime, runtime.fleet_shadow, "shadow", shadow, at_ms))
    runtime.core.fleet_live = FleetAccuracy()
    runtime.core.fleet_shadow = FleetAccuracy()
    monitor = runtime.data_drift
    if monitor is not None and monitor.rows_seen:
        drift = monitor.report(reset=True)
        for feature in drift.features:
            runtime.metrics.data_drift_psi.labels(feature=feature.feature).set(feature.psi)
            runtime.metrics.data_drift_ks.labels(feature=feature.feature).set(feature.ks)
        drifted = drift.drifted_features
        reports.append(
            DriftReport(
                scope="fleet",
                kind="data_drift",
                at_ms=at_ms,
                model_name=live.name,
                model_version=live.version,
                worker=worker_name(runtime),
                metrics=drift.metrics(),
                detail=(
                    f"inputs drifted: {', '.join(drifted)}" if drifted else "inputs as in training"
                ),
            )
        )
    for report in reports:
        runtime.topics.drift.send_soon(key=report.key, value=report.to_bytes())
    return reports


def register_drift_report_timer(app: Any, runtime: WorkerRuntime) -> None:
    @typed(app.timer(runtime.settings.drift_report_interval_seconds, name="streamer.drift"))
    async def fleet_report() -> None:
        async with runtime.core.batch_lock:  # the batch updates the monitors it resets
            report_fleet(runtime)
