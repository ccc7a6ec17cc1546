"""A read-only snapshot of a meter's window, gaps imputed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class WindowView:
    """What ``MeterState.get()`` returns. Arrays are read-only and not shared with the state."""

    values_kwh: np.ndarray
    """float64, shape ``(lookback_slots,)``, oldest..newest; imputed where possible, else NaN."""
    flags: np.ndarray
    """uint8 :class:`~streamer.state.flags.SlotFlag` per slot, including ``IMPUTED_*``."""
    end_ms: int
    """End time (epoch ms) of the newest slot, the head."""
    observed_fraction: float
    """Fraction of slots holding a real value (OBSERVED, CORRECTED or REGISTER_SPREAD)."""
