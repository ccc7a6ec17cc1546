"""Turning two cumulative register readings into energy, with resets and rollovers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: A rollover is only considered for registers with at least this many integer digits
#: (a "register" below 1000 kWh that drops is far more likely a replaced meter than a wrap).
MIN_ROLLOVER_DIGITS = 4
#: The previous reading must sit in the top decile of its digit range to look like a wrap ...
ROLLOVER_HIGH_FRACTION = 0.9
#: ... and the new one in the bottom decile.
ROLLOVER_LOW_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class RegisterEvent:
    """Something the caller should log or count: the register did not simply go up."""

    kind: Literal["reset", "rollover"]
    ts_ms: int
    previous_register_kwh: float
    register_kwh: float
    detail: str


@dataclass(frozen=True, slots=True)
class RegisterStep:
    """How to read a step from one register value to the next.

    ``delta_kwh`` is the energy to attribute to the slots in between; ``None`` for a reset, where
    the new value only becomes the baseline.
    """

    kind: Literal["advance", "reset", "rollover"]
    delta_kwh: float | None
    detail: str


def register_digits(register_kwh: float) -> int:
    """Smallest ``d >= 1`` with ``10**d > register_kwh``."""
    digits = 1
    while 10**digits <= register_kwh:
        digits += 1
    return digits


def register_step(
    previous_kwh: float, register_kwh: float, slots: int, max_kwh_per_slot: float
) -> RegisterStep:
    """Classify the step from ``previous_kwh`` to ``register_kwh`` across ``slots`` slots.

    ``slots`` may be 0 (two readings in one slot). Energy above
    ``max(slots, 1) * max_kwh_per_slot`` is implausible; such a step, and any decrease that is not
    a plausible rollover, is a ``reset``. Never returns a negative delta.

    >>> register_step(100.0, 101.5, 1, 1000.0).delta_kwh
    1.5
    >>> step = register_step(99_999.0, 2.0, 1, 1000.0)
    >>> step.kind, step.delta_kwh
    ('rollover', 3.0)
    >>> register_step(5_000.0, 10.0, 1, 1000.0).kind
    'reset'
    """
    budget_kwh = max(slots, 1) * max_kwh_per_slot
    if register_kwh >= previous_kwh:
        delta = register_kwh - previous_kwh
        if delta <= budget_kwh:
            return RegisterStep("advance", delta, "")
        return RegisterStep(
            "reset",
            None,
            f"register jumped {delta:.3f} kWh over {slots} slot(s), more than the plausible "
            f"{budget_kwh:.3f} kWh (register_max_kwh_per_slot); new baseline, nothing filled",
        )
    digits = register_digits(previous_kwh)
    wrap_kwh = float(10**digits)
    if (
        digits >= MIN_ROLLOVER_DIGITS
        and previous_kwh >= ROLLOVER_HIGH_FRACTION * wrap_kwh
        and register_kwh < ROLLOVER_LOW_FRACTION * wrap_kwh
    ):
        wrapped = wrap_kwh - previous_kwh + register_kwh
        if wrapped <= budget_kwh:
            return RegisterStep(
                "rollover",
                wrapped,
                f"register wrapped at {wrap_kwh:.0f} kWh ({digits} digits): {wrapped:.3f} kWh "
                f"over {slots} slot(s)",
            )
    return RegisterStep(
        "reset",
        None,
        f"register fell from {previous_kwh:.3f} to {register_kwh:.3f} kWh and is not a plausible "
        "rollover; new baseline, nothing filled",
    )
