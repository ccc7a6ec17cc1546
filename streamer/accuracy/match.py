"""A forecast matched with the actual energy of its target slot."""

from __future__ import annotations

from dataclasses import dataclass


# not frozen: built on the hot path (per forecast horizon matched), where a frozen dataclass
# costs 3-4x as much to build; treat it as read-only
@dataclass(slots=True)
class Match:
    """The forecast issued ``horizon_slots`` slots before the target slot, and its actual.

    Values in kWh; the forecast values went through the ledger's float16 storage (relative
    rounding at most 2**-11, about 0.05 %).
    """

    horizon_slots: int
    point: float
    p10: float
    p50: float
    p90: float
    actual: float
    #: whether the actual fell inside the calibrated band the forecast was published with
    #: (None: not known, e.g. calibration off or a shadow model's forecast)
    covered_calibrated: bool | None = None

    @property
    def error(self) -> float:
        """``point - actual`` (positive: over-forecast)."""
        return self.point - self.actual

    @property
    def covered(self) -> bool:
        """Whether ``p10 <= actual <= p90``."""
        return self.p10 <= self.actual <= self.p90
