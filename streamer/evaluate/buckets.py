"""Horizon buckets for reporting errors by lead time."""

from __future__ import annotations

from dataclasses import dataclass

from streamer.evaluate.errors import BacktestConfigError

_EDGES = (4, 12, 24, 48)


@dataclass(frozen=True, slots=True)
class HorizonBucket:
    """Horizon slots ``first..last`` (1-based, inclusive)."""

    first: int
    last: int

    @property
    def label(self) -> str:
        """``"5-12"`` (or ``"7"`` for a single slot)."""
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def horizon_buckets(horizon_slots: int) -> tuple[HorizonBucket, ...]:
    """Buckets 1-4, 5-12, 13-24, 25-48, then doubling (49-96, 97-192, ...), cut at the horizon.

    >>> [b.label for b in horizon_buckets(30)]
    ['1-4', '5-12', '13-24', '25-30']
    """
    if horizon_slots < 1:
        raise BacktestConfigError(f"horizon_slots must be positive, got {horizon_slots}")
    edges = list(_EDGES)
    while edges[-1] < horizon_slots:
        edges.append(edges[-1] * 2)
    out: list[HorizonBucket] = []
    first = 1
    for edge in edges:
        last = min(edge, horizon_slots)
        out.append(HorizonBucket(first, last))
        if last == horizon_slots:
            break
        first = last + 1
    return tuple(out)
