"""Outcome values double as dead-letter reason codes."""

from __future__ import annotations

from streamer.contract.reasons import DlqReason
from streamer.state import Outcome
from streamer.state.outcome import ACCEPTED_OUTCOMES, REJECTED_OUTCOMES


def test_rejected_outcomes_are_dead_letter_reasons() -> None:
    assert {DlqReason(o.value) for o in REJECTED_OUTCOMES} == {
        DlqReason.TOO_LATE,
        DlqReason.REGISTER_OUT_OF_ORDER,
    }


def test_outcome_groups_do_not_overlap() -> None:
    assert {Outcome.APPLIED, Outcome.CORRECTED} == ACCEPTED_OUTCOMES
    assert not ACCEPTED_OUTCOMES & REJECTED_OUTCOMES
    assert Outcome.DUPLICATE not in ACCEPTED_OUTCOMES | REJECTED_OUTCOMES
