"""The fleet model: interval energy of every meter for any set of slots, deterministic.

``FleetModel.load_kwh(slot_end_ms)`` returns energy in the slot that ends at each given time.
Every random term is hashed from ``(seed, meter, slot)`` or ``(seed, day)``, so asking for a
year at once or one slot at a time, in any order, gives identical numbers.

Demand in kW is built from:

- households: a night base, a morning peak (later at weekends), an evening peak (larger in
  winter: lighting), weekend daytime use, short appliance spikes, and for some an electric
  vehicle charging on some evenings;
- small businesses: base load plus office hours (closed on Sunday, some open on Saturday);
- heating below 15.5 C and air conditioning above 22 C, driven by the regional temperature;
- multiplicative log-normal noise per meter and slot.

Net meters (rooftop PV) subtract PV output (clear-sky sun x cloud cover), so their net load goes
negative around noon on sunny days. Values are rounded to whole Wh.

The fleet lives in ``time_zone`` (an IANA name, UTC by default; see :mod:`.region`): schedules,
weekends, ``holidays`` (behaving as Sundays) and EV evenings follow its wall clocks, so the
daily shape moves with daylight-saving changes; the sun and the weather follow local solar
time, and in the southern hemisphere winter falls in June-August.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt

from streamer.simulate.errors import SimulationConfigError
from streamer.simulate.hashrng import hash_normal, hash_uniform
from streamer.simulate.profiles import MeterProfiles, draw_profiles
from streamer.simulate.region import (
    epoch_days,
    holiday_dates,
    is_southern_zone,
    standard_offset_seconds,
    wall_clock_ms,
    zone_of,
)
from streamer.simulate.weather import (
    LATITUDE_DEG,
    SECONDS_PER_DAY,
    SOUTHERN_LATITUDE_DEG,
    RegionalWeather,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

#: Share of readings of quality-sending meters flagged ``estimated``.
ESTIMATED_SHARE: Final = 0.02
EV_CHARGE_KW: Final = 7.0
EV_DAY_SHARE: Final = 0.45
SPIKE_SHARE: Final = 0.05
HEATING_BELOW_C: Final = 15.5
COOLING_ABOVE_C: Final = 22.0

_S_NOISE, _S_SPIKE, _S_EV_DAY, _S_EV_START, _S_EV_LENGTH, _S_ESTIMATED = 51, 52, 53, 54, 55, 56


@dataclass(frozen=True, slots=True, eq=False)
class LoadShift:
    """Multiply the load of ``meter_indices`` by ``factor`` in slots ending at/after ``from_ms``."""

    meter_indices: npt.NDArray[np.intp]
    factor: float
    from_ms: int


def _circular_bump(hour: F64, centre: float | F64, width: float) -> F64:
    """A Gaussian bump on the 24-hour circle."""
    distance = np.mod(hour - centre + 12.0, 24.0) - 12.0
    out: F64 = np.exp(-0.5 * np.square(distance / width))
    return out


def _sigmoid(x: F64) -> F64:
    out: F64 = 1.0 / (1.0 + np.exp(-x))
    return out


class FleetModel:
    """A seeded fleet of ``n_meters`` smart meters at ``resolution_seconds``.

    Meter ids are ``id_prefix`` and a zero-padded index (``m-000042``); the prefix changes the
    ids only, not the load. ``time_zone`` is the IANA zone the fleet lives in;
    ``southern_hemisphere`` (``None``: inferred from the zone's daylight saving, see
    :func:`.region.is_southern_zone`) puts it at 35 degrees south instead of 52 north; on the
    local dates in ``holidays`` (``date`` objects or ISO strings) everyone behaves as on a
    Sunday. With the defaults the load is that of a fleet at 52 N on the Greenwich meridian
    keeping UTC.

    >>> model = FleetModel(n_meters=3, seed=7)
    >>> model.meter_ids.tolist()
    ['m-000000', 'm-000001', 'm-000002']
    >>> model.load_kwh(np.array([1_767_225_600_000])).shape
    (3, 1)
    """

    def __init__(
        self,
        n_meters: int,
        seed: int = 0,
        resolution_seconds: int = 1800,
        *,
        id_prefix: str = "m-",
        time_zone: str = "UTC",
        southern_hemisphere: bool | None = None,
        holidays: Iterable[date | str] = (),
    ) -> None:
        if n_meters < 1:
            raise SimulationConfigError(f"n_meters={n_meters}: a fleet needs at least one meter")
        if seed < 0:
            raise SimulationConfigError(f"seed={seed}: use a non-negative integer seed")
        if resolution_seconds <= 0 or SECONDS_PER_DAY % resolution_seconds:
            raise SimulationConfigError(
                f"resolution_seconds={resolution_seconds} must be positive and divide 86400 "
                "(e.g. 900, 1800, 3600)"
            )
        zone = zone_of(time_zone)
        if southern_hemisphere is not None and not isinstance(southern_hemisphere, bool):
            raise SimulationConfigError(
                f"southern_hemisphere={southern_hemisphere!r}: use True, False or None "
                "(None: inferred from the time zone)"
            )
        self.n_meters = n_meters
        self.seed = seed
        self.resolution_seconds = resolution_seconds
        self.time_zone = time_zone
        self.southern_hemisphere: bool = (
            is_southern_zone(zone) if southern_hemisphere is None else southern_hemisphere
        )
        self.holidays: frozenset[date] = holiday_dates(holidays)
        self._holiday_days = epoch_days(self.holidays)
        self._zone = None if time_zone == "UTC" else zone
        self.profiles: MeterProfiles = draw_profiles(seed, n_meters)
        self.weather = RegionalWeather(
            seed,
            latitude_deg=SOUTHERN_LATITUDE_DEG if self.southern_hemisphere else LATITUDE_DEG,
            solar_offset_seconds=standard_offset_seconds(zone),
        )
        self._shifts: tuple[LoadShift, ...] = ()
        self._index = np.arange(n_meters, dtype=np.int64)
        self._households = np.flatnonzero(~self.profiles.is_business)
        self._businesses = np.flatnonzero(self.profiles.is_business)
        self._pv = np.flatnonzero(self.profiles.has_pv)
        self._ev = np.flatnonzero(self.profiles.has_ev)
        width = max(6, len(str(n_meters - 1)))
        self.meter_ids: npt.NDArray[np.str_] = np.array(
            [f"{id_prefix}{i:0{width}d}" for i in range(n_meters)]
        )
        self.meter_types: npt.NDArray[np.str_] = np.where(
            self.profiles.has_pv, "net", "consumption"
        )

    # --- attributes ------------------------------------------------------------------------
    @property
    def resolution_ms(self) -> int:
        return self.resolution_seconds * 1000

    @property
    def is_register(self) -> BOOL:
        """Meters that send ``register_kwh`` (cumulative import) instead of ``kwh``."""
        return self.profiles.is_register

    @property
    def uses_epoch_ms(self) -> BOOL:
        """Meters that send ``ts`` as epoch milliseconds instead of RFC 3339."""
        return self.profiles.uses_epoch_ms

    @property
    def shifts(self) -> tuple[LoadShift, ...]:
        return self._shifts

    def first_slot_end_after(self, ts_ms: int) -> int:
        """The earliest slot end strictly after ``ts_ms``."""
        return (ts_ms // self.resolution_ms + 1) * self.resolution_ms

    def slot_ends(self, start_ms: int, end_ms: int) -> I64:
        """Slot ends ``e`` with ``start_ms < e <= end_ms``: the slots covering that period."""
        first = self.first_slot_end_after(start_ms)
        out: I64 = np.arange(first, end_ms + 1, self.resolution_ms, dtype=np.int64)
        return out

    # --- drift -----------------------------------------------------------------------------
    def with_shift(self, meter_indices: npt.ArrayLike, factor: float, from_ms: int) -> FleetModel:
        """A copy whose listed meters use ``factor`` x their load in slots ending >= ``from_ms``.

        The whole reading is scaled (net load of a PV meter included). Shifts compose: a
        second call multiplies again. The original model is unchanged.
        """
        indices = np.unique(np.asarray(meter_indices, dtype=np.intp).ravel())
        if indices.size and (indices[0] < 0 or indices[-1] >= self.n_meters):
            raise SimulationConfigError(
                f"meter indices must lie in 0..{self.n_meters - 1}; got "
                f"{int(indices[0])}..{int(indices[-1])}"
            )
        if not np.isfinite(factor) or factor < 0:
            raise SimulationConfigError(
                f"factor={factor}: use a finite factor >= 0 (1.0 means no change)"
            )
        shifted = copy.copy(self)
        shifted._shifts = (*self._shifts, LoadShift(indices, float(factor), int(from_ms)))
        return shifted

    # --- the load --------------------------------------------------------------------------
    def _check_slot_ends(self, slot_end_ms: npt.ArrayLike) -> I64:
        ends = np.asarray(slot_end_ms)
        if ends.ndim != 1:
            raise SimulationConfigError(
                f"slot_end_ms must be one-dimensional (T,), got shape {ends.shape}"
            )
        if ends.size and not np.issubdtype(ends.dtype, np.integer):
            raise SimulationConfigError(
                f"slot_end_ms must hold integer epoch milliseconds, got dtype {ends.dtype}"
            )
        ends = ends.astype(np.int64)
        misaligned = np.flatnonzero(ends % self.resolution_ms)
        if misaligned.size:
            bad = int(ends[misaligned[0]])
            raise SimulationConfigError(
                f"slot end {bad} ms is not a multiple of the {self.resolution_seconds} s "
                f"resolution; use FleetModel.slot_ends() or first_slot_end_after()"
            )
        return ends

    def load_kwh(self, slot_end_ms: npt.ArrayLike) -> F64:
        """Energy in kWh of every meter in the slot ending at each time: shape (n_meters, T)."""
        ends = self._check_slot_ends(slot_end_ms)
        n, res_ms = self.n_meters, self.resolution_ms
        if ends.size == 0:
            return np.zeros((n, 0), dtype=np.float64)
        p = self.profiles
        slot = ends // res_ms
        mid_ms = ends - res_ms // 2
        mid_s = mid_ms.astype(np.float64) / 1000.0
        clouds = self.weather.cloudiness(mid_s)
        temperature = self.weather.temperature_c(mid_s, clouds)
        # People keep the local wall clock: its date and time of day, read as if they were UTC.
        wall_s = (
            mid_s
            if self._zone is None
            else wall_clock_ms(mid_ms, self._zone).astype(np.float64) / 1000.0
        )
        day = np.floor(wall_s / SECONDS_PER_DAY).astype(np.int64)
        dow = np.mod(day + 3, 7)  # 1970-01-01 was a Thursday; Monday = 0
        saturday, sunday = dow == 5, dow == 6
        if self._holiday_days.size:
            holiday = np.isin(day, self._holiday_days)
            saturday, sunday = saturday & ~holiday, sunday | holiday
        weekend = saturday | sunday
        winter = self.weather.winter(mid_s)
        local_hour = np.mod(wall_s, SECONDS_PER_DAY) / 3600.0
        heating = np.clip(HEATING_BELOW_C - temperature, 0.0, None)
        cooling = np.clip(temperature - COOLING_ABOVE_C, 0.0, None)

        demand_kw = np.empty((n, ends.size), dtype=np.float64)
        hh = self._households
        if hh.size:
            hour = np.mod(local_hour[None, :] - p.shift_hours[hh, None], 24.0)
            morning = p.morning_weight[hh, None] * _circular_bump(
                hour, np.where(weekend, 9.0, 7.25)[None, :], 1.0
            )
            evening = (
                p.evening_weight[hh, None]
                * (1.0 + 0.3 * winter)[None, :]
                * _circular_bump(hour, 19.0, 1.8)
            )
            daytime = np.where(weekend, 0.5, 0.15)[None, :] * _circular_bump(hour, 13.5, 3.0)
            demand_kw[hh] = (
                p.mean_kw[hh, None] * (0.45 + morning + evening + daytime)
                + p.heat_kw_per_c[hh, None] * heating[None, :]
                + p.cool_kw_per_c[hh, None] * cooling[None, :]
            )
        bz = self._businesses
        if bz.size:
            hour = np.mod(local_hour[None, :] - 0.5 * p.shift_hours[bz, None], 24.0)
            office = _sigmoid((hour - p.open_hour[bz, None]) / 0.4) * _sigmoid(
                (p.close_hour[bz, None] - hour) / 0.6
            )
            open_factor = np.where(
                sunday[None, :],
                0.0,
                np.where(saturday[None, :], 0.6 * p.saturday_open[bz, None], 1.0),
            )
            occupied = office * open_factor
            demand_kw[bz] = (
                p.mean_kw[bz, None] * (0.35 + 1.6 * occupied)
                + p.heat_kw_per_c[bz, None] * heating[None, :] * (0.4 + 0.6 * occupied)
                + p.cool_kw_per_c[bz, None] * cooling[None, :] * (0.2 + 0.8 * occupied)
            )

        meters = self._index[:, None]
        sigma = p.noise_sigma[:, None]
        noise = np.exp(
            sigma * hash_normal(self.seed, _S_NOISE, meters, slot[None, :]) - 0.5 * sigma**2
        )
        demand_kw *= noise
        if hh.size:
            spike_u = hash_uniform(self.seed, _S_SPIKE, hh[:, None], slot[None, :])
            demand_kw[hh] += np.where(
                spike_u < SPIKE_SHARE, 0.5 + 1.5 * (spike_u / SPIKE_SHARE), 0.0
            )
        if self._ev.size:
            demand_kw[self._ev] += self._ev_kw(self._ev, day, local_hour)

        load_kw = demand_kw
        if self._pv.size:
            pv = self._pv
            sun = self.weather.clear_sky_fraction(mid_s) * (1.0 - 0.75 * np.power(clouds, 1.3))
            load_kw[pv] -= (p.pv_kwp[pv] * p.pv_performance[pv])[:, None] * sun[None, :]

        kwh = load_kw * (self.resolution_seconds / 3600.0)
        for shift in self._shifts:
            after = np.flatnonzero(ends >= shift.from_ms)
            if after.size and shift.meter_indices.size:
                kwh[np.ix_(shift.meter_indices, after)] *= shift.factor
        out: F64 = np.round(kwh, 3) + 0.0  # whole Wh; "+ 0.0" turns -0.0 into 0.0
        return out

    def _ev_kw(self, ev: npt.NDArray[np.intp], day: I64, local_hour: F64) -> F64:
        """Charging power of EV households: some evenings, a few hours from 17:30-21:30.

        ``day`` is the local date (days since 1970-01-01), ``local_hour`` the wall-clock hour.
        """
        meters, days = ev[:, None], day[None, :]
        charges = hash_uniform(self.seed, _S_EV_DAY, meters, days) < EV_DAY_SHARE
        start = 17.5 + 4.0 * hash_uniform(self.seed, _S_EV_START, meters, days)
        length = 1.5 + 3.0 * hash_uniform(self.seed, _S_EV_LENGTH, meters, days)
        hour = local_hour[None, :]
        charging = charges & (hour >= start) & (hour < start + length)
        out: F64 = np.where(charging, EV_CHARGE_KW, 0.0)
        return out

    def estimated_mask(self, slot_end_ms: npt.ArrayLike) -> BOOL:
        """Readings sent with ``quality: estimated``: shape (n_meters, T)."""
        ends = self._check_slot_ends(slot_end_ms)
        slot = ends // self.resolution_ms
        draws = hash_uniform(self.seed, _S_ESTIMATED, self._index[:, None], slot[None, :])
        out: BOOL = self.profiles.sends_quality[:, None] & (draws < ESTIMATED_SHARE)
        return out
