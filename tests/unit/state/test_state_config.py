"""WindowConfig validation, derived sizes and fingerprint."""

from __future__ import annotations

from typing import Any

import pytest

from streamer.state import StateConfigError, WindowConfig


def make(**overrides: Any) -> WindowConfig:
    fields: dict[str, Any] = {
        "resolution_seconds": 1800,
        "lookback_slots": 336,
        "allowed_lateness_slots": 48,
    }
    fields.update(overrides)
    return WindowConfig(**fields)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resolution_seconds", 0),
        ("resolution_seconds", -900),
        ("resolution_seconds", 7),  # does not divide 86400
        ("resolution_seconds", 1800.0),
        ("resolution_seconds", True),
        ("lookback_slots", 1),
        ("allowed_lateness_slots", 0),
        ("allowed_lateness_slots", 337),
        ("interpolate_max_gap_slots", -1),
        ("flatline_slots", 1),
        ("register_max_kwh_per_slot", 0.0),
        ("register_max_kwh_per_slot", float("nan")),
        ("register_max_kwh_per_slot", float("inf")),
    ],
)
def test_invalid_field_is_named_in_error(field: str, value: object) -> None:
    with pytest.raises(StateConfigError, match=f"WindowConfig.{field}"):
        make(**{field: value})


@pytest.mark.parametrize(
    ("resolution", "per_day"), [(900, 96), (1800, 48), (3600, 24), (300, 288), (86400, 1)]
)
def test_slots_per_day_and_week(resolution: int, per_day: int) -> None:
    config = make(resolution_seconds=resolution, lookback_slots=2, allowed_lateness_slots=1)
    assert config.resolution_ms == resolution * 1000
    assert config.slots_per_day == per_day
    assert config.slots_per_week == 7 * per_day


def test_lateness_may_equal_lookback() -> None:
    assert make(allowed_lateness_slots=336).allowed_lateness_slots == 336


def test_fingerprint_is_stable_across_processes() -> None:
    # CRC-32 of "meter-window/1:1800:336": a literal so that a change to the scheme is noticed.
    assert make().fingerprint() == 1150129919


def test_fingerprint_follows_only_byte_shaping_fields() -> None:
    base = make().fingerprint()
    assert make(allowed_lateness_slots=4, interpolate_max_gap_slots=2).fingerprint() == base
    assert make(flatline_slots=3, register_max_kwh_per_slot=5.0).fingerprint() == base
    assert make(resolution_seconds=900).fingerprint() != base
    assert make(lookback_slots=337).fingerprint() != base
    assert 0 <= base < 2**32


def test_config_is_frozen() -> None:
    config = make()
    with pytest.raises(AttributeError):
        config.lookback_slots = 10  # type: ignore[misc]
