"""The slice of :class:`~streamer.settings.Settings` that the pipeline needs."""

from __future__ import annotations

from dataclasses import dataclass

from streamer.accuracy.interval_calibration import CalibrationConfig
from streamer.accuracy.ledger_config import DEFAULT_HORIZONS, LedgerConfig
from streamer.drift.page_hinkley import PageHinkleyConfig
from streamer.pipeline.meter_record import RecordConfig
from streamer.settings import Settings
from streamer.state.config import WindowConfig


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    record: RecordConfig
    resolution_seconds: int
    horizon_slots: int
    min_observed_fraction: float
    forecast_every_slots: int
    flatline_slots: int
    max_message_bytes: int
    max_interval_kwh: float
    future_tolerance_seconds: int
    #: The fleet's zone: a reading without its own ``time_zone`` is in this one.
    time_zone: str = "UTC"

    @property
    def window(self) -> WindowConfig:
        return self.record.window

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineConfig:
        window = WindowConfig(
            resolution_seconds=settings.resolution_seconds,
            lookback_slots=settings.lookback_slots,
            allowed_lateness_slots=settings.allowed_lateness_slots,
            interpolate_max_gap_slots=settings.interpolate_max_gap_slots,
            flatline_slots=settings.flatline_slots,
            register_max_kwh_per_slot=settings.max_interval_kwh,
        )
        horizons = tuple(h for h in DEFAULT_HORIZONS if h <= settings.horizon_slots)
        return cls(
            record=RecordConfig(
                window=window,
                ledger=LedgerConfig(horizons=horizons or (1,)),
                calibration=CalibrationConfig(
                    horizons=horizons or (1,),
                    step=settings.calibration_step,
                ),
                detector=PageHinkleyConfig(
                    delta=settings.drift_ph_delta,
                    threshold=settings.drift_ph_threshold,
                    min_instances=settings.drift_ph_min_instances,
                ),
            ),
            resolution_seconds=settings.resolution_seconds,
            horizon_slots=settings.horizon_slots,
            min_observed_fraction=settings.min_observed_fraction,
            forecast_every_slots=settings.forecast_every_slots,
            flatline_slots=settings.flatline_slots,
            max_message_bytes=settings.max_message_bytes,
            max_interval_kwh=settings.max_interval_kwh,
            future_tolerance_seconds=settings.future_tolerance_seconds,
            time_zone=settings.time_zone,
        )
