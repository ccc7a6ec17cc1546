"""A message-rate limit for the producer (0 = unlimited)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    """Spaces batches so that on average at most ``per_second`` messages go out per second."""

    def __init__(
        self, per_second: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = per_second
        self._monotonic = monotonic
        self._next_free = monotonic()

    @property
    def unlimited(self) -> bool:
        return self.per_second <= 0

    def batch_size(self) -> int:
        """Messages per batch: about 20 ms worth, so pacing stays smooth."""
        return 1 << 30 if self.unlimited else max(1, int(self.per_second / 50.0))

    def reserve(self, count: int) -> float:
        """Book ``count`` messages; returns the seconds to wait before sending them."""
        if self.unlimited:
            return 0.0
        now = self._monotonic()
        at = max(self._next_free, now)
        self._next_free = at + count / self.per_second
        return at - now

    async def acquire(self, count: int) -> None:
        delay = self.reserve(count)
        if delay > 0:
            await asyncio.sleep(delay)
