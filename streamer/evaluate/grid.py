"""A long ``meter_id, ts, kwh`` history as a dense ``(meters, slots)`` grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from streamer.evaluate.errors import BacktestConfigError
from streamer.evaluate.history import ZONE_COLUMN, check_history_frame


@dataclass(frozen=True, slots=True)
class HistoryGrid:
    """``kwh[i, t]``: energy of meter ``meter_ids[i]`` in the slot ending at
    ``first_end_ms + t * resolution_seconds * 1000``; NaN where there was no reading."""

    meter_ids: tuple[str, ...]
    first_end_ms: int
    resolution_seconds: int
    kwh: npt.NDArray[np.float64]
    #: Each meter's IANA zone ("" = the fleet's), from the history's ``time_zone`` column;
    #: empty when it has none.
    time_zones: tuple[str, ...] = ()

    def zones(self, fleet_zone: str) -> npt.NDArray[np.str_]:
        """Each meter's zone, ``fleet_zone`` where the history names none."""
        if not self.time_zones:
            return np.full(len(self.meter_ids), fleet_zone)
        named = np.asarray(self.time_zones, dtype=str)
        out: npt.NDArray[np.str_] = np.where(named == "", fleet_zone, named)
        return out

    @property
    def slots(self) -> int:
        """Number of slots ``T``."""
        return int(self.kwh.shape[1])

    def end_ms(self, slot: int) -> int:
        """End of slot ``slot`` (UTC epoch ms)."""
        return self.first_end_ms + slot * self.resolution_seconds * 1000


def columns_before(
    values: npt.NDArray[np.float64], origin: int, slots: int
) -> npt.NDArray[np.float64]:
    """The ``slots`` columns of ``values`` before column ``origin``, NaN-padded on the left
    (the history a backtest origin sees)."""
    start = origin - slots
    if start >= 0:
        return np.ascontiguousarray(values[:, start:origin])
    pad = np.full((values.shape[0], -start), np.nan)
    return np.concatenate([pad, values[:, :origin]], axis=1)


def build_grid(
    history: pd.DataFrame, resolution_seconds: int, *, max_meters: int | None = None
) -> HistoryGrid:
    """Pivot a history onto the slot grid.

    A reading's ``ts`` is the end of its interval (as on the readings topic); it lands in the
    slot ending at ``ts`` rounded up to the resolution, so finer readings add up to the slot's
    energy. Exact duplicate ``(meter_id, ts)`` rows keep the last one. ``max_meters`` keeps the
    first meters in sorted id order.
    """
    if resolution_seconds < 1 or 86_400 % resolution_seconds:
        raise BacktestConfigError(
            f"resolution_seconds={resolution_seconds} must divide 86400 (e.g. 900, 1800, 3600)"
        )
    frame = check_history_frame(history)
    if max_meters is not None:
        if max_meters < 1:
            raise BacktestConfigError(f"max_meters must be positive or None, got {max_meters}")
        keep = sorted(frame["meter_id"].unique())[:max_meters]
        frame = frame[frame["meter_id"].isin(keep)]
    if frame.empty:
        raise BacktestConfigError("the history has no rows; nothing to backtest")
    res_ms = resolution_seconds * 1000
    ts_ms = frame["ts"].dt.as_unit("ms").astype("int64").to_numpy()
    frame = frame.assign(slot_end_ms=-(-ts_ms // res_ms) * res_ms, ts_ms=ts_ms)
    frame = frame.drop_duplicates(["meter_id", "ts_ms"], keep="last")
    energy = frame.groupby(["meter_id", "slot_end_ms"], sort=True)["kwh"].sum(min_count=1)

    meter_codes, meter_ids = pd.factorize(energy.index.get_level_values(0), sort=True)
    slot_end = energy.index.get_level_values(1).to_numpy(dtype=np.int64)
    first = int(slot_end.min())
    cols = (slot_end - first) // res_ms
    grid = np.full((len(meter_ids), int(cols.max()) + 1), np.nan)
    grid[meter_codes, cols] = energy.to_numpy(dtype=np.float64)
    ids = tuple(str(m) for m in meter_ids)
    zones: tuple[str, ...] = ()
    if ZONE_COLUMN in frame.columns:
        named = frame[frame[ZONE_COLUMN] != ""].groupby("meter_id")[ZONE_COLUMN].last()
        zones = tuple(str(named.get(m, "")) for m in ids)
    return HistoryGrid(ids, first, resolution_seconds, grid, zones)
