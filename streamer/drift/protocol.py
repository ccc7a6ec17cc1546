"""The interface every concept-drift detector implements (River's verbs)."""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable


@runtime_checkable
class DriftDetector(Protocol):
    """Watches a stream of numbers (per meter: forecast residuals) for a change.

    - ``update(x)`` takes one value and returns the detector itself. Non-finite values (a
      missing actual) are skipped: they change nothing but clear ``drift_detected``.
    - ``drift_detected`` is True exactly on the update where a change was found; the next
      update clears it. What the detector forgets on a drift is its own business (Page-Hinkley
      starts afresh, ADWIN drops the older part of its window).
    - ``n``: how many values the detector's current statistics summarise (since the last
      reset or drift for Page-Hinkley; the window width for ADWIN).
    - ``reset()``: back to the fresh state (same parameters).
    - ``to_bytes()``: the state as deterministic bytes (equal states, equal bytes) for the
      per-meter table. Each class has ``from_bytes(data, config)``; ``restore(data)`` is the
      same with this detector's parameters, and ``clone()`` a fresh detector with them, so the
      worker can keep one configured template and make every meter's detector from it.
    """

    @property
    def drift_detected(self) -> bool: ...

    @property
    def n(self) -> int: ...

    def update(self, x: float) -> Self: ...

    def reset(self) -> None: ...

    def to_bytes(self) -> bytes: ...

    def restore(self, data: bytes) -> Self: ...

    def clone(self) -> Self: ...
