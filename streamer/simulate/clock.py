"""The simulated clock: ``speedup`` x the wall clock from ``start_ms``, never ahead of it.

While it is behind the wall clock the simulator is *backfilling*; once it has caught up it
follows the wall clock (``live``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from streamer.timeutil import now_ms as wall_now_ms


class SimulatedClock:
    """``now_ms() = min(start_ms + speedup * elapsed, wall clock)``."""

    def __init__(
        self,
        start_ms: int,
        speedup: float,
        *,
        wall_ms: Callable[[], int] = wall_now_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.start_ms = start_ms
        self.speedup = speedup
        self._wall_ms = wall_ms
        self._monotonic = monotonic
        self._started = monotonic()

    def elapsed_seconds(self) -> float:
        return self._monotonic() - self._started

    def wall_ms(self) -> int:
        return self._wall_ms()

    def now_ms(self) -> int:
        accelerated = self.start_ms + int(self.speedup * self.elapsed_seconds() * 1000.0)
        return min(accelerated, self._wall_ms())

    def is_live(self) -> bool:
        """Whether the accelerated clock has caught up with the wall clock."""
        return self.start_ms + self.speedup * self.elapsed_seconds() * 1000.0 >= self._wall_ms()

    def seconds_until(self, sim_ms: int) -> float:
        """Wall seconds until the simulated clock reaches ``sim_ms`` (0 if it already has)."""
        accelerated = (sim_ms - self.start_ms) / 1000.0 / self.speedup - self.elapsed_seconds()
        real = (sim_ms - self._wall_ms()) / 1000.0
        return max(0.0, accelerated, real)
