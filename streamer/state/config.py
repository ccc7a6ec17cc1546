"""Shape and rules of a meter's sliding window."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import lru_cache

from streamer.state.errors import StateConfigError

SECONDS_PER_DAY = 86_400
DAYS_PER_WEEK = 7
#: Bump when the meaning of the fingerprinted fields changes.
_FINGERPRINT_SCHEME = "meter-window/1"


def _require_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateConfigError(
            f"WindowConfig.{name} must be an int, got {value!r} ({type(value).__name__}); "
            "pass a whole number."
        )
    return value


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """How a meter's readings are laid on the slot grid and kept.

    Only ``resolution_seconds`` and ``lookback_slots`` shape the stored bytes (see
    :meth:`fingerprint`); the other fields are rules applied on update and read and may change
    between deployments without resetting state.
    """

    resolution_seconds: int
    """Slot length in seconds; must divide 86400 (900 = 15 min, 1800 = 30 min)."""
    lookback_slots: int
    """Slots kept per meter, oldest..newest ending at the head slot (336 = 7 days of 30 min)."""
    allowed_lateness_slots: int
    """A reading may land at most this many slots back, counting the head slot as 1."""
    interpolate_max_gap_slots: int = 4
    """Interior gaps up to this long are linearly interpolated; longer ones use day/week."""
    flatline_slots: int = 12
    """A run of this many identical observed values counts as a flatline."""
    register_max_kwh_per_slot: float = 1000.0
    """Largest plausible energy per slot from a cumulative register; bigger jumps are resets."""

    def __post_init__(self) -> None:
        resolution = _require_int("resolution_seconds", self.resolution_seconds)
        if resolution <= 0 or SECONDS_PER_DAY % resolution != 0:
            raise StateConfigError(
                f"WindowConfig.resolution_seconds={resolution} must be a positive divisor of "
                "86400 so that slots tile a day; use e.g. 900 (15 min) or 1800 (30 min)."
            )
        lookback = _require_int("lookback_slots", self.lookback_slots)
        if lookback < 2:
            raise StateConfigError(
                f"WindowConfig.lookback_slots={lookback} must be >= 2; a window needs at least "
                "two slots (336 keeps 7 days of 30-minute slots)."
            )
        lateness = _require_int("allowed_lateness_slots", self.allowed_lateness_slots)
        if not 0 < lateness <= lookback:
            raise StateConfigError(
                f"WindowConfig.allowed_lateness_slots={lateness} must be in 1..lookback_slots "
                f"({lookback}); 1 accepts only the head slot, lookback_slots the whole window."
            )
        gap = _require_int("interpolate_max_gap_slots", self.interpolate_max_gap_slots)
        if gap < 0:
            raise StateConfigError(
                f"WindowConfig.interpolate_max_gap_slots={gap} must be >= 0 "
                "(0 disables interpolation)."
            )
        flat = _require_int("flatline_slots", self.flatline_slots)
        if flat < 2:
            raise StateConfigError(
                f"WindowConfig.flatline_slots={flat} must be >= 2; a flatline is a run of "
                "at least two identical values."
            )
        max_kwh = self.register_max_kwh_per_slot
        if (
            isinstance(max_kwh, bool)
            or not isinstance(max_kwh, int | float)
            or not math.isfinite(max_kwh)
            or max_kwh <= 0
        ):
            raise StateConfigError(
                f"WindowConfig.register_max_kwh_per_slot={max_kwh!r} must be a finite number "
                "> 0 (the largest energy one slot can plausibly hold, e.g. 1000.0)."
            )

    @property
    def resolution_ms(self) -> int:
        """Slot length in milliseconds."""
        return self.resolution_seconds * 1000

    @property
    def slots_per_day(self) -> int:
        """Slots in one day."""
        return SECONDS_PER_DAY // self.resolution_seconds

    @property
    def slots_per_week(self) -> int:
        """Slots in one week."""
        return DAYS_PER_WEEK * self.slots_per_day

    def fingerprint(self) -> int:
        """A stable unsigned 32-bit number of the fields that shape the stored bytes.

        Equal across processes and Python versions (CRC-32, not ``hash()``).
        """
        return _fingerprint(self.resolution_seconds, self.lookback_slots)


@lru_cache(maxsize=64)
def _fingerprint(resolution_seconds: int, lookback_slots: int) -> int:
    text = f"{_FINGERPRINT_SCHEME}:{resolution_seconds}:{lookback_slots}"
    return zlib.crc32(text.encode("ascii"))
