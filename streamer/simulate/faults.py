"""Faults a real meter fleet shows: lost, duplicated, late and broken messages.

:func:`apply_faults` is a pure function of ``(clean messages, slot index, config, seed, carried
late messages)``. Each reading of the slot meets exactly one fate:

- ``missing``: dropped;
- ``duplicated``: sent twice (the copy follows the slot's other messages);
- ``out_of_order``: held back 1..``late_max_slots`` slots, then sent after that slot's messages
  (it is counted when it is sent, so a tally only ever counts what went out);
- ``malformed_<kind>``: sent once, broken as :class:`MalformedKind` says;
- ``clean``: sent once, on time, unchanged.

``FaultTally.readings`` sums all fates: once every late message is released it equals the
number of readings generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Final

import numpy as np
import orjson

from streamer.simulate.errors import SimulationConfigError
from streamer.simulate.malformed import MalformedKind, break_reading, eligible_kinds
from streamer.simulate.wire import Message

__all__ = [
    "DelayedMessage",
    "FaultConfig",
    "FaultTally",
    "FaultedChunk",
    "Message",
    "apply_faults",
    "release_all",
]

_FAULT_STREAM: Final = 7_001


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Per-reading fault probabilities (mutually exclusive fates, so they sum to at most 1)."""

    missing_rate: float = 0.01
    duplicate_rate: float = 0.01
    out_of_order_rate: float = 0.02
    malformed_rate: float = 0.001
    late_max_slots: int = 4

    def __post_init__(self) -> None:
        rates = {
            "missing_rate": self.missing_rate,
            "duplicate_rate": self.duplicate_rate,
            "out_of_order_rate": self.out_of_order_rate,
            "malformed_rate": self.malformed_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise SimulationConfigError(f"{name}={rate}: use a probability in [0, 1]")
        if sum(rates.values()) > 1.0 + 1e-12:
            raise SimulationConfigError(
                f"fault rates sum to {sum(rates.values()):.4f}; a reading has one fate, so "
                "missing + duplicate + out_of_order + malformed must be at most 1"
            )
        if self.late_max_slots < 1:
            raise SimulationConfigError(
                f"late_max_slots={self.late_max_slots}: use 1 or more (slots a late reading "
                "may be held back)"
            )

    @classmethod
    def none(cls) -> FaultConfig:
        """No faults at all: every reading is sent once, on time."""
        return cls(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class FaultTally:
    """How many readings met each fate."""

    clean: int = 0
    missing: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    malformed_invalid_json: int = 0
    malformed_missing_field: int = 0
    malformed_wrong_type: int = 0
    malformed_non_finite: int = 0
    malformed_negative_energy: int = 0
    malformed_above_physical_bound: int = 0
    malformed_future_timestamp: int = 0
    malformed_invalid_timestamp: int = 0

    def __add__(self, other: FaultTally) -> FaultTally:
        return FaultTally(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(FaultTally))
        )

    @property
    def malformed(self) -> int:
        return sum(self.malformed_by_kind().values())

    @property
    def readings(self) -> int:
        """Readings accounted for (sent, dropped or released late)."""
        return self.clean + self.missing + self.duplicated + self.out_of_order + self.malformed

    @property
    def messages(self) -> int:
        """Messages these readings became (a duplicate is two)."""
        return self.clean + 2 * self.duplicated + self.out_of_order + self.malformed

    def malformed_by_kind(self) -> dict[MalformedKind, int]:
        return {kind: int(getattr(self, f"malformed_{kind.value}")) for kind in MalformedKind}

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DelayedMessage:
    """A late message, to be sent with the messages of slot ``release_slot``."""

    release_slot: int
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class FaultedChunk:
    """What to send now, what to hold back, and the tally of what is sent now."""

    messages: list[Message]
    delayed: tuple[DelayedMessage, ...]
    tally: FaultTally


def _release(
    carried: Sequence[DelayedMessage], slot_index: int | None
) -> tuple[list[Message], list[DelayedMessage]]:
    due: list[Message] = []
    held: list[DelayedMessage] = []
    for late in carried:
        if slot_index is None or late.release_slot <= slot_index:
            due.append((late.key, late.value))
        else:
            held.append(late)
    return due, held


def apply_faults(
    clean: Sequence[Message],
    *,
    slot_index: int,
    config: FaultConfig,
    seed: int,
    carried: Sequence[DelayedMessage] = (),
    now_ms: int | None = None,
) -> FaultedChunk:
    """The messages to send for one slot's clean readings (deterministic in ``seed``/``slot``).

    ``carried`` are late messages from earlier slots; those due at ``slot_index`` are sent after
    this slot's messages, the rest come back in ``delayed`` together with this slot's new late
    ones. ``now_ms`` only moves ``future_timestamp`` faults a week past the wall clock.
    """
    due, held = _release(carried, slot_index)
    n = len(clean)
    rng = np.random.default_rng([seed, _FAULT_STREAM, slot_index])
    draws = rng.random(n)
    bounds = np.cumsum(
        [
            config.missing_rate,
            config.duplicate_rate,
            config.out_of_order_rate,
            config.malformed_rate,
        ]
    )
    # 0 missing, 1 duplicated, 2 out of order, 3 malformed, 4 clean
    fate = np.searchsorted(bounds, draws, side="right")
    missing = np.flatnonzero(fate == 0)
    duplicated = np.flatnonzero(fate == 1)
    late = np.flatnonzero(fate == 2)
    broken = np.flatnonzero(fate == 3)

    out = list(clean)
    kind_counts = dict.fromkeys(MalformedKind, 0)
    for i in broken.tolist():
        key, value = clean[i]
        kinds = eligible_kinds(orjson.loads(value))
        kind = kinds[int(rng.integers(len(kinds)))]
        kind_counts[kind] += 1
        out[i] = (key, break_reading(value, kind, rng, now_ms=now_ms))
    delays = rng.integers(1, config.late_max_slots + 1, size=late.size)
    for i, delay in zip(late.tolist(), delays.tolist(), strict=True):
        key, value = clean[i]
        held.append(DelayedMessage(slot_index + delay, key, value))
    if missing.size or late.size:
        keep = np.flatnonzero((fate != 0) & (fate != 2)).tolist()
        messages = [out[i] for i in keep]
    else:
        messages = out
    messages.extend(clean[i] for i in duplicated.tolist())
    messages.extend(due)
    tally = FaultTally(
        clean=int(np.count_nonzero(fate == 4)),
        missing=int(missing.size),
        duplicated=int(duplicated.size),
        out_of_order=len(due),
        **{f"malformed_{kind.value}": count for kind, count in kind_counts.items()},
    )
    return FaultedChunk(messages=messages, delayed=tuple(held), tally=tally)


def release_all(carried: Sequence[DelayedMessage]) -> FaultedChunk:
    """Send every late message now (at the end of a run), counted as ``out_of_order``."""
    due, _ = _release(carried, None)
    return FaultedChunk(messages=due, delayed=(), tally=FaultTally(out_of_order=len(due)))
