"""What happened to one reading offered to a meter's state."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Outcome(StrEnum):
    """Result of ``MeterState.update`` / ``update_register``.

    ``TOO_LATE`` and ``REGISTER_OUT_OF_ORDER`` leave the state unchanged; the caller sends the
    reading to the dead-letter topic with the enum value as the reason code.
    ``DUPLICATE`` also leaves the state unchanged but is not an error.
    """

    APPLIED = "applied"
    CORRECTED = "corrected"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"
    REGISTER_OUT_OF_ORDER = "register_out_of_order"


#: Outcomes that changed the state (and move ``last_arrival_ms``).
ACCEPTED_OUTCOMES: frozenset[Outcome] = frozenset({Outcome.APPLIED, Outcome.CORRECTED})

#: Outcomes the caller dead-letters; their value is the reason code.
REJECTED_OUTCOMES: frozenset[Outcome] = frozenset({Outcome.TOO_LATE, Outcome.REGISTER_OUT_OF_ORDER})

# The members as module names, and their values, for the per-reading paths: a member read from
# its enum class costs about 100 ns, and its ``value`` 160 ns.
APPLIED: Final = Outcome.APPLIED
CORRECTED: Final = Outcome.CORRECTED
DUPLICATE: Final = Outcome.DUPLICATE
TOO_LATE: Final = Outcome.TOO_LATE
#: each outcome's value (the key it is counted under)
OUTCOME_VALUES: Final[dict[Outcome, str]] = {outcome: outcome.value for outcome in Outcome}
