"""What the simulator reports while it runs, and when it is done."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streamer.simulate.faults import FaultTally
from streamer.simulate.wire import rfc3339

Phase = Literal["backfill", "live", "done"]


@dataclass(frozen=True, slots=True)
class SimulationProgress:
    """A snapshot, emitted about once a second."""

    phase: Phase
    """``backfill`` while catching up with the wall clock, then ``live``; ``done`` at the end."""
    clock_ms: int
    """Where the simulated clock stands."""
    simulated_ms: int | None
    """End of the last slot sent (``None`` before the first)."""
    messages_sent: int
    messages_per_second: float
    """Over the time since the previous snapshot."""
    wall_elapsed_seconds: float
    tally: FaultTally

    def describe(self) -> str:
        at = rfc3339(self.simulated_ms) if self.simulated_ms is not None else "-"
        return (
            f"[{self.phase}] simulated {at}  sent {self.messages_sent}  "
            f"{self.messages_per_second:.0f} msg/s  {self.wall_elapsed_seconds:.1f} s"
        )


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    """Totals of a run."""

    messages_sent: int
    tally: FaultTally
    slots: int
    first_ts_ms: int | None
    """End of the first slot sent."""
    last_ts_ms: int | None
    """End of the last slot sent."""
    wall_seconds: float
    reached_live: bool

    def describe(self) -> str:
        """A few lines for a terminal: totals, time range, faults."""
        first = rfc3339(self.first_ts_ms) if self.first_ts_ms is not None else "-"
        last = rfc3339(self.last_ts_ms) if self.last_ts_ms is not None else "-"
        tally = self.tally
        malformed = ", ".join(
            f"{kind.value} {count}" for kind, count in tally.malformed_by_kind().items() if count
        )
        return (
            f"sent {self.messages_sent} messages for {self.slots} slots ({first} .. {last}) in "
            f"{self.wall_seconds:.1f} s{'; reached live' if self.reached_live else ''}\n"
            f"readings: clean {tally.clean}, missing {tally.missing}, duplicated "
            f"{tally.duplicated}, out of order {tally.out_of_order}, malformed {tally.malformed}"
            + (f" ({malformed})" if malformed else "")
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "messages_sent": self.messages_sent,
            "slots": self.slots,
            "first_ts": rfc3339(self.first_ts_ms) if self.first_ts_ms is not None else None,
            "last_ts": rfc3339(self.last_ts_ms) if self.last_ts_ms is not None else None,
            "wall_seconds": round(self.wall_seconds, 3),
            "reached_live": self.reached_live,
            **self.tally.as_dict(),
        }
