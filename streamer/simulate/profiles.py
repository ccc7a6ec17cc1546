"""Who is in the fleet: one row of attributes per meter, drawn from the seed.

Attributes are hashed from ``(seed, attribute, meter index)``, so meter ``i`` is the same meter
in a fleet of 100 and in a fleet of 100 000: a larger fleet only adds meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from streamer.simulate.hashrng import hash_normal, hash_uniform

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

BUSINESS_SHARE: Final = 0.15
HOUSEHOLD_PV_SHARE: Final = 0.25
BUSINESS_PV_SHARE: Final = 0.10
#: Register meters are drawn among consumption meters only (an import register of a net meter
#: would not equal its net interval energy); this share of them gives ~10% of the fleet.
REGISTER_SHARE_OF_CONSUMPTION: Final = 0.13
EPOCH_MS_SHARE: Final = 0.20
SENDS_QUALITY_SHARE: Final = 0.70
ELECTRIC_HEATING_SHARE: Final = 0.20
AIR_CONDITIONING_SHARE: Final = 0.15
EV_SHARE_OF_HOUSEHOLDS: Final = 0.08
SATURDAY_OPEN_SHARE: Final = 0.35

# One hash stream per attribute.
_S_KIND, _S_PV, _S_REGISTER, _S_EPOCH, _S_QUALITY = 1, 2, 3, 4, 5
_S_SIZE, _S_SHIFT, _S_HEAT, _S_HEAT_SIZE, _S_COOL, _S_COOL_SIZE = 6, 7, 8, 9, 10, 11
_S_PV_SIZE, _S_PV_PERF, _S_EV, _S_SAT, _S_OPEN, _S_CLOSE, _S_REG0 = 12, 13, 14, 15, 16, 17, 18
_S_MORNING, _S_EVENING = 19, 20


@dataclass(frozen=True, slots=True, eq=False)
class MeterProfiles:
    """Per-meter attributes, each an array of length ``n_meters``. Powers are in kW."""

    is_business: BOOL
    has_pv: BOOL
    has_ev: BOOL
    is_register: BOOL
    uses_epoch_ms: BOOL
    sends_quality: BOOL
    saturday_open: BOOL
    mean_kw: F64
    """Typical mean demand: household ~0.25 kW, business ~5 kW (log-normal spread)."""
    morning_weight: F64
    evening_weight: F64
    shift_hours: F64
    """Personal schedule offset: this meter's day runs ``shift_hours`` later."""
    open_hour: F64
    close_hour: F64
    heat_kw_per_c: F64
    cool_kw_per_c: F64
    pv_kwp: F64
    pv_performance: F64
    noise_sigma: F64
    initial_register_wh: I64

    @property
    def n_meters(self) -> int:
        return int(self.is_business.shape[0])


def draw_profiles(seed: int, n_meters: int) -> MeterProfiles:
    """The attributes of meters ``0 .. n_meters - 1`` for ``seed``."""
    idx = np.arange(n_meters, dtype=np.int64)

    def uniform(stream: int) -> F64:
        return hash_uniform(seed, stream, idx)

    def normal(stream: int) -> F64:
        return hash_normal(seed, stream, idx)

    is_business = uniform(_S_KIND) < BUSINESS_SHARE
    pv_share = np.where(is_business, BUSINESS_PV_SHARE, HOUSEHOLD_PV_SHARE)
    has_pv = uniform(_S_PV) < pv_share
    is_register = ~has_pv & (uniform(_S_REGISTER) < REGISTER_SHARE_OF_CONSUMPTION)
    has_ev = ~is_business & (uniform(_S_EV) < EV_SHARE_OF_HOUSEHOLDS)

    size = normal(_S_SIZE)
    mean_kw = np.where(
        is_business, 5.0 * np.exp(0.7 * np.clip(size, -3, 3)), 0.25 * np.exp(0.45 * size)
    )
    heated = uniform(_S_HEAT) < ELECTRIC_HEATING_SHARE
    heat_scale = np.where(is_business, 0.08, 0.25) * (0.5 + uniform(_S_HEAT_SIZE))
    heat_kw_per_c = mean_kw * np.where(heated, heat_scale, 0.01)
    cooled = uniform(_S_COOL) < np.where(is_business, 0.5, AIR_CONDITIONING_SHARE)
    cool_kw_per_c = mean_kw * np.where(cooled, 0.15 * (0.5 + uniform(_S_COOL_SIZE)), 0.0)

    pv_kwp = np.where(
        has_pv,
        np.where(is_business, 10.0 + 50.0 * uniform(_S_PV_SIZE), 2.5 + 5.5 * uniform(_S_PV_SIZE)),
        0.0,
    )
    return MeterProfiles(
        is_business=is_business,
        has_pv=has_pv,
        has_ev=has_ev,
        is_register=is_register,
        uses_epoch_ms=uniform(_S_EPOCH) < EPOCH_MS_SHARE,
        sends_quality=uniform(_S_QUALITY) < SENDS_QUALITY_SHARE,
        saturday_open=is_business & (uniform(_S_SAT) < SATURDAY_OPEN_SHARE),
        mean_kw=mean_kw,
        morning_weight=0.6 + 0.6 * uniform(_S_MORNING),
        evening_weight=1.0 + 0.8 * uniform(_S_EVENING),
        shift_hours=np.clip(0.7 * normal(_S_SHIFT), -1.5, 1.5),
        open_hour=7.0 + 2.0 * uniform(_S_OPEN),
        close_hour=16.5 + 3.0 * uniform(_S_CLOSE),
        heat_kw_per_c=heat_kw_per_c,
        cool_kw_per_c=cool_kw_per_c,
        pv_kwp=pv_kwp,
        pv_performance=0.75 + 0.2 * uniform(_S_PV_PERF),
        noise_sigma=np.where(is_business, 0.08, 0.25),
        initial_register_wh=np.floor(uniform(_S_REG0) * 40_000_000.0).astype(np.int64) + 1000,
    )
