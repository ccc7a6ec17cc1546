"""Model assignments and the router that applies them (no Kafka)."""

from __future__ import annotations

import pytest

from streamer.errors import StreamerError
from streamer.forecast.protocol import Forecaster
from streamer.forecast.registry import make_forecaster
from streamer.rollout.assignment import ControlMessageError, ModelAssignment
from streamer.rollout.model_router import ModelRouter


def build_counting(built: list[str]):  # type: ignore[no-untyped-def]
    def build(spec: str) -> Forecaster:
        built.append(spec)
        return make_forecaster(spec, horizon_slots=48, resolution_seconds=1800)

    return build


def test_assignment_round_trip_and_promotion() -> None:
    a = ModelAssignment("lstm:1", "lstm:2", 1_795_430_000_000, "shadow lstm:2")
    assert ModelAssignment.from_bytes(a.to_bytes()) == a
    promoted = a.promoted(1_795_430_001_000)
    assert (promoted.live, promoted.shadow) == ("lstm:2", None)
    with pytest.raises(ControlMessageError, match="nothing to promote"):
        promoted.promoted(0)


@pytest.mark.parametrize(
    "raw", [b"nope", b"[]", b'{"shadow": "x"}', b'{"live": ""}', b'{"live": "a", "shadow": 3}']
)
def test_bad_control_messages_are_refused(raw: bytes) -> None:
    with pytest.raises(ControlMessageError):
        ModelAssignment.from_bytes(raw)


def test_router_builds_lazily_swaps_and_keeps_serving_on_a_bad_version() -> None:
    built: list[str] = []
    router = ModelRouter(build_counting(built), "seasonal_naive_week")
    assert built == []  # nothing loaded until first use
    assert router.live.name == "seasonal_naive_week"
    change = router.apply(ModelAssignment("seasonal_naive_week", "seasonal_naive_day", 1))
    assert change.applied and router.shadow is not None
    assert router.shadow.name == "seasonal_naive_day"
    assert built == ["seasonal_naive_week", "seasonal_naive_day"]  # the live one was kept
    assert not router.apply(ModelAssignment("seasonal_naive_week", "seasonal_naive_day", 2)).applied
    refused = router.apply(ModelAssignment("lstm:999", None, 3))
    assert not refused.applied and refused.error and "999" in refused.error
    assert router.live.name == "seasonal_naive_week"  # still serving
    promoted = router.apply(ModelAssignment("seasonal_naive_day", None, 4))
    assert promoted.applied and router.live.name == "seasonal_naive_day" and router.shadow is None


def test_unknown_spec_error_is_a_streamer_error() -> None:
    router = ModelRouter(build_counting([]), "no-such-model")
    with pytest.raises(StreamerError, match="available"):
        _ = router.live
