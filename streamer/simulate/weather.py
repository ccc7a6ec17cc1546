"""Regional weather shared by the whole fleet: temperature, cloud cover and clear-sky sun.

Everything is a pure function of the seed and the time, never of call order: the day-to-day
anomalies are AR(1) processes written as a truncated moving average of hashed daily shocks
(``a_d = sqrt(1 - phi^2) * sum_k phi^k e_{d-k}``), so the value for a day is the same whether it
is asked for alone or inside a year. Daily anomalies are interpolated linearly between day
centres so that the weather has no steps at midnight.

By default the region sits at 52 degrees north on the Greenwich meridian, so UTC is local solar
time. ``RegionalWeather(seed, latitude_deg=..., solar_offset_seconds=...)`` moves it: its methods
take UTC seconds and add ``solar_offset_seconds`` (local solar time; solar noon at 12:00), and a
negative latitude puts it south of the equator, where the seasons run half a year apart (the
sun's declination stays the calendar's, so the latitude alone turns the PV seasons round).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from streamer.simulate.errors import SimulationConfigError
from streamer.simulate.hashrng import hash_normal

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SECONDS_PER_DAY: Final = 86_400
DAYS_PER_YEAR: Final = 365.2425
LATITUDE_DEG: Final = 52.0
SOUTHERN_LATITUDE_DEG: Final = -35.0

# Hash streams (any distinct constants; changing one changes the weather of every seed).
_STREAM_TEMPERATURE: Final = 101
_STREAM_CLOUD_DAY: Final = 102
_STREAM_CLOUD_HOUR: Final = 103

_AR_TERMS: Final = 40
_TEMPERATURE_PHI: Final = 0.8
_TEMPERATURE_ANOMALY_STD_C: Final = 3.0
_CLOUD_PHI: Final = 0.6
_CLOUD_DAY_STD: Final = 1.6
_CLOUD_HOUR_STD: Final = 0.6
_CLOUD_BIAS: Final = 0.2


def day_of_year(ts_seconds: F64) -> F64:
    """Fractional day of the year (0 = 1 January 00:00), good to a day over centuries."""
    out: F64 = np.mod(ts_seconds / SECONDS_PER_DAY, DAYS_PER_YEAR)
    return out


def clear_sky_fraction(ts_seconds: F64, latitude_deg: float = LATITUDE_DEG) -> F64:
    """Clear-sky irradiance on a horizontal plane as a fraction of 1000 W/m2 (0 at night).

    ``ts_seconds`` is local solar time (solar noon at 12:00) as seconds since the epoch.
    """
    doy = day_of_year(ts_seconds)
    hour = np.mod(ts_seconds, SECONDS_PER_DAY) / 3600.0
    declination = np.deg2rad(23.44) * np.sin(2.0 * np.pi * (284.0 + doy) / 365.0)
    hour_angle = np.deg2rad(15.0 * (hour - 12.0))
    lat = np.deg2rad(latitude_deg)
    sin_elevation = np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(
        hour_angle
    )
    sun = np.clip(sin_elevation, 0.0, None)
    # Meinel clear-sky model: direct beam through air mass 1/sin(elevation), plus a little
    # diffuse light; the floor on the air mass keeps the power finite at sunrise and sunset.
    air_mass = 1.0 / np.maximum(sun, 0.025)
    out: F64 = 1.25 * sun * np.power(0.7, np.power(air_mass, 0.678))
    return out


def _daily_ar1(seed: int, stream: int, days: I64, phi: float, std: float) -> F64:
    """Stationary AR(1) values for each day in ``days`` (any order, any gaps)."""
    lags = np.arange(_AR_TERMS, dtype=np.int64)
    shocks = hash_normal(seed, stream, days[:, None] - lags[None, :])
    weights = std * np.sqrt(1.0 - phi * phi) * np.power(phi, lags.astype(np.float64))
    out: F64 = shocks @ weights
    return out


def _interpolated_daily(seed: int, stream: int, ts_seconds: F64, phi: float, std: float) -> F64:
    """The daily AR(1) anomaly, linear between day centres."""
    position = ts_seconds / SECONDS_PER_DAY - 0.5
    day0 = np.floor(position).astype(np.int64)
    weight = position - day0
    first = int(day0.min())
    span = np.arange(first, int(day0.max()) + 2, dtype=np.int64)
    values = _daily_ar1(seed, stream, span, phi, std)
    index = day0 - first
    out: F64 = (1.0 - weight) * values[index] + weight * values[index + 1]
    return out


class RegionalWeather:
    """Temperature and cloud cover of the fleet's region, deterministic given the seed.

    Methods take UTC epoch seconds; the day/night cycles and the weather's days follow local
    solar time, ``solar_offset_seconds`` ahead of UTC. South of the equator
    (``latitude_deg < 0``) the seasons are half a year apart from the north's.
    """

    def __init__(
        self, seed: int, *, latitude_deg: float = LATITUDE_DEG, solar_offset_seconds: int = 0
    ) -> None:
        if not -90.0 <= latitude_deg <= 90.0:
            raise SimulationConfigError(
                f"latitude_deg={latitude_deg}: use a latitude between -90 and 90 degrees "
                f"(e.g. {LATITUDE_DEG} north, {SOUTHERN_LATITUDE_DEG} south)"
            )
        if abs(solar_offset_seconds) > 14 * 3600:
            raise SimulationConfigError(
                f"solar_offset_seconds={solar_offset_seconds}: use an offset from UTC within "
                "+-14 hours (e.g. 3600 for Central Europe)"
            )
        self.seed = seed
        self.latitude_deg = float(latitude_deg)
        self.solar_offset_seconds = int(solar_offset_seconds)
        self._season_shift_days = DAYS_PER_YEAR / 2.0 if latitude_deg < 0 else 0.0

    @property
    def southern(self) -> bool:
        """Whether the region is south of the equator (winter in June-August)."""
        return self.latitude_deg < 0

    def solar_seconds(self, ts_seconds: F64) -> F64:
        """Local solar time of UTC epoch seconds (solar noon at 12:00), as epoch seconds."""
        ts = np.asarray(ts_seconds, dtype=np.float64)
        if self.solar_offset_seconds == 0:
            return ts
        out: F64 = ts + float(self.solar_offset_seconds)
        return out

    def clear_sky_fraction(self, ts_seconds: F64) -> F64:
        """:func:`clear_sky_fraction` at the region's latitude and solar time."""
        return clear_sky_fraction(self.solar_seconds(ts_seconds), self.latitude_deg)

    def winter(self, ts_seconds: F64) -> F64:
        """1 at midwinter (21 December north, 21 June south), -1 at midsummer."""
        doy = day_of_year(self.solar_seconds(ts_seconds))
        out: F64 = np.cos(2.0 * np.pi * (doy - (355.0 + self._season_shift_days)) / DAYS_PER_YEAR)
        return out

    def cloudiness(self, ts_seconds: F64) -> F64:
        """Cloud cover in ``[0, 1]``: near 0 on sunny days, near 1 when overcast."""
        ts = self.solar_seconds(ts_seconds)
        daily = _interpolated_daily(self.seed, _STREAM_CLOUD_DAY, ts, _CLOUD_PHI, _CLOUD_DAY_STD)
        hour_index = np.floor(ts / 3600.0).astype(np.int64)
        hourly = _CLOUD_HOUR_STD * hash_normal(self.seed, _STREAM_CLOUD_HOUR, hour_index)
        out: F64 = 1.0 / (1.0 + np.exp(-(daily + hourly + _CLOUD_BIAS) * 1.5))
        return out

    def temperature_c(self, ts_seconds: F64, cloudiness: F64 | None = None) -> F64:
        """Air temperature in degrees Celsius: season + day/night cycle + weather anomaly."""
        clouds = self.cloudiness(ts_seconds) if cloudiness is None else cloudiness
        ts = self.solar_seconds(ts_seconds)
        doy = day_of_year(ts)
        seasonal = 10.5 - 7.5 * np.cos(
            2.0 * np.pi * (doy - (20.0 + self._season_shift_days)) / DAYS_PER_YEAR
        )
        hour = np.mod(ts, SECONDS_PER_DAY) / 3600.0
        # Clear days swing more between night and afternoon than overcast ones.
        diurnal = (1.5 + 4.0 * (1.0 - clouds)) * np.cos(2.0 * np.pi * (hour - 15.0) / 24.0)
        anomaly = _interpolated_daily(
            self.seed, _STREAM_TEMPERATURE, ts, _TEMPERATURE_PHI, _TEMPERATURE_ANOMALY_STD_C
        )
        out: F64 = seasonal + diurnal + anomaly
        return out
