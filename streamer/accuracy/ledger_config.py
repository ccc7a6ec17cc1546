"""Which horizons a :class:`~streamer.accuracy.forecast_ledger.ForecastLedger` keeps."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from streamer.accuracy.errors import AccuracyConfigError
from streamer.drift.sealed import OVERHEAD, fingerprint

#: One tracked horizon per reporting bucket (1-4, 5-12, 13-24, 25-48 of
#: :func:`streamer.evaluate.buckets.horizon_buckets`), at its end, plus the next slot.
DEFAULT_HORIZONS = (1, 4, 12, 24, 48)
#: Values stored per forecast: point, p10, p50, p90.
VALUES_PER_ENTRY = 4
#: Largest horizon a ledger may track (one week of 30-minute slots).
MAX_HORIZON_SLOTS = 336


@dataclass(frozen=True)
class LedgerConfig:
    """``horizons``: the lead times (in slots) whose forecasts are kept and matched, strictly
    increasing in ``1..336``. Memory per meter is ``8 * sum(horizons) + 20`` bytes
    (:attr:`encoded_size`; 732 with the defaults)."""

    horizons: tuple[int, ...] = DEFAULT_HORIZONS

    def __post_init__(self) -> None:
        hs = self.horizons
        if (
            not hs
            or any(not 1 <= h <= MAX_HORIZON_SLOTS for h in hs)
            or any(b <= a for a, b in itertools.pairwise(hs))
        ):
            raise AccuracyConfigError(
                f"ledger horizons must be strictly increasing slot counts in "
                f"1..{MAX_HORIZON_SLOTS}, got {list(hs)}"
            )

    def fingerprint(self) -> int:
        """Identifies the horizons (they shape the stored bytes)."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> int:
        return fingerprint(struct.pack(f"<{len(self.horizons)}H", *self.horizons))

    @cached_property
    def rings(self) -> tuple[tuple[int, int], ...]:
        """``(horizon, first row)`` of each horizon's ring, by increasing horizon."""
        return tuple(zip(self.horizons, self.offsets, strict=True))

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """First row of each horizon's ring in the ledger's value array."""
        out, start = [], 0
        for h in self.horizons:
            out.append(start)
            start += h
        return tuple(out)

    @cached_property
    def lead_index(self) -> np.ndarray:
        """``horizon - 1`` of each horizon: the rows of a forecast that the ledger keeps."""
        return np.asarray(self.horizons, dtype=np.intp) - 1

    @property
    def entries(self) -> int:
        """Forecast entries kept: ``sum(horizons)``."""
        return sum(self.horizons)

    @property
    def encoded_size(self) -> int:
        """Length of :meth:`ForecastLedger.to_bytes`: envelope, head slot, float16 values."""
        return OVERHEAD + 8 + self.entries * VALUES_PER_ENTRY * 2
