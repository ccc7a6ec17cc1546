"""Model inputs: scaling, missing values, calendar features."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streamer.inference import DEFAULT_FEATURES, FeatureError, FeatureSpec, build_inputs, unscale
from streamer.inference.features import KNOWN_FEATURES, lookback_window, slot_end_times

MONDAY_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
HOUR_MS = 3_600_000


def _spec(
    lookback: int = 4, features: tuple[str, ...] = KNOWN_FEATURES, **kw: object
) -> FeatureSpec:
    return FeatureSpec(features=features, lookback_slots=lookback, resolution_seconds=3600, **kw)  # type: ignore[arg-type]


def test_scaled_load_missing_flag_and_scale_by_hand() -> None:
    history = np.array([[1.0, np.nan, -3.0, 2.0]])
    out = build_inputs(history, np.array([MONDAY_MS]), _spec(epsilon=0.5))
    scale = (1.0 + 3.0 + 2.0) / 3 + 0.5
    assert out.scale.tolist() == [scale]
    assert out.finite_slots.tolist() == [3]
    assert out.values.dtype == np.float32 and out.values.shape == (1, 4, len(KNOWN_FEATURES))
    np.testing.assert_allclose(out.values[0, :, 0], [1 / scale, 0.0, -3 / scale, 2 / scale], 1e-6)
    assert out.values[0, :, 1].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_calendar_features_of_slot_ends() -> None:
    # slots end at Mon 03:00, 04:00, 05:00 and 06:00 UTC
    out = build_inputs(np.ones((1, 4)), np.array([MONDAY_MS + 6 * HOUR_MS]), _spec())
    names = list(KNOWN_FEATURES)
    tod_sin, tod_cos = (
        out.values[0, -1, names.index("tod_sin")],
        out.values[0, -1, names.index("tod_cos")],
    )
    assert tod_sin == pytest.approx(1.0, abs=1e-6) and tod_cos == pytest.approx(0.0, abs=1e-6)
    dow_sin = out.values[0, :, names.index("dow_sin")]
    dow_cos = out.values[0, :, names.index("dow_cos")]
    week_phase = 2 * np.pi * np.array([3, 4, 5, 6]) / (7 * 24)  # hours after Monday 00:00
    np.testing.assert_allclose(dow_sin, np.sin(week_phase), atol=1e-6)
    np.testing.assert_allclose(dow_cos, np.cos(week_phase), atol=1e-6)


def test_holiday_flag_uses_the_slot_start_date() -> None:
    spec = _spec(holidays=frozenset({date(2026, 1, 5)}))
    out = build_inputs(np.ones((1, 4)), np.array([MONDAY_MS + 2 * HOUR_MS]), spec)
    # slot starts: Sun 22:00, Sun 23:00, Mon 00:00, Mon 01:00
    assert out.values[0, :, KNOWN_FEATURES.index("is_holiday")].tolist() == [0, 0, 1, 1]
    no_holidays = build_inputs(np.ones((1, 4)), np.array([MONDAY_MS]), _spec())
    assert not no_holidays.values[0, :, KNOWN_FEATURES.index("is_holiday")].any()


def test_short_history_is_left_padded_and_long_is_cut() -> None:
    assert np.isnan(lookback_window(np.ones((2, 2)), 4)[:, :2]).all()
    assert lookback_window(np.arange(6.0)[None, :], 4).tolist() == [[2.0, 3.0, 4.0, 5.0]]
    out = build_inputs(np.ones((1, 2)), np.array([MONDAY_MS]), _spec())
    assert out.values[0, :, 1].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert slot_end_times(np.array([10_000]), 3, 1).tolist() == [[8_000, 9_000, 10_000]]


def test_all_nan_row_has_epsilon_scale() -> None:
    out = build_inputs(np.full((1, 4), np.nan), np.array([0]), _spec(epsilon=1e-3))
    assert out.scale.tolist() == [1e-3] and out.finite_slots.tolist() == [0]
    assert np.isfinite(out.values).all()


def test_spec_refuses_unknown_features_and_bad_inputs() -> None:
    with pytest.raises(FeatureError, match="unknown feature"):
        _spec(features=("load_scaled", "temperature"))
    with pytest.raises(FeatureError, match="must contain 'load_scaled'"):
        _spec(features=("is_missing",))
    with pytest.raises(FeatureError, match="end_ms"):
        build_inputs(np.ones((2, 4)), np.array([0]), _spec())
    with pytest.raises(FeatureError, match="2-D"):
        build_inputs(np.ones(4), np.array([0]), _spec())


def test_feature_order_follows_the_spec() -> None:
    reordered = tuple(reversed(DEFAULT_FEATURES))
    a = build_inputs(
        np.arange(8.0).reshape(2, 4), np.array([0, HOUR_MS]), _spec(features=DEFAULT_FEATURES)
    )
    b = build_inputs(
        np.arange(8.0).reshape(2, 4), np.array([0, HOUR_MS]), _spec(features=reordered)
    )
    np.testing.assert_array_equal(a.values, b.values[:, :, ::-1])


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        (3, 6),
        elements=st.one_of(st.floats(-50, 50), st.just(np.nan)),
    ),
    st.floats(0.01, 100.0),
)
def test_scaling_round_trips_and_is_scale_free(history: np.ndarray, factor: float) -> None:
    spec = _spec(lookback=6, epsilon=1e-9)
    ends = np.array([0, HOUR_MS, 2 * HOUR_MS])
    out = build_inputs(history, ends, spec)
    finite = np.isfinite(history)
    back = unscale(out.values[:, :, 0], out.scale)
    np.testing.assert_allclose(back[finite], history[finite], rtol=1e-5, atol=1e-6)
    scaled = build_inputs(history * factor, ends, spec)
    big = out.scale > 1e-3  # rows far from the epsilon floor are scale free
    np.testing.assert_allclose(scaled.values[big], out.values[big], rtol=1e-4, atol=1e-5)


def test_calendar_kept_per_origin_and_zone_is_the_same_as_made_afresh() -> None:
    from streamer.inference import features

    spec = _spec(lookback=336, calendar_time="local", holidays=frozenset({date(2026, 3, 30)}))
    # origins around London's spring change, rows in three zones, some sharing an origin
    ends = np.array([1_774_828_800_000 + k * HOUR_MS for k in (0, 0, 5, 7, 7, 30)])
    zones = np.array(
        ["Europe/London", "Australia/Sydney", "Europe/London", "UTC", "Europe/London", "UTC"]
    )
    history = np.random.default_rng(3).random((6, 336))
    features._calendar_cache.clear()
    fresh = build_inputs(history, ends, spec, zones).values
    assert features._calendar_cache  # kept
    kept = build_inputs(history, ends, spec, zones).values
    assert kept.tobytes() == fresh.tobytes()
    # one zone for the batch, then another: each its own wall clock
    london = build_inputs(history, ends, spec, "Europe/London").values
    sydney = build_inputs(history, ends, spec, "Australia/Sydney").values
    features._calendar_cache.clear()
    assert (
        build_inputs(history, ends, spec, "Australia/Sydney").values.tobytes() == sydney.tobytes()
    )
    assert build_inputs(history, ends, spec, "Europe/London").values.tobytes() == london.tobytes()
    assert london.tobytes() != sydney.tobytes()
    # a kept array cannot be changed by its users
    assert all(not array.flags.writeable for array in features._calendar_cache.values())


def test_calendar_of_many_origins_is_not_kept() -> None:
    from streamer.inference import features

    spec = _spec(lookback=48, calendar_time="local")
    ends = MONDAY_MS + HOUR_MS * np.arange(40)  # a training set's many origins
    features._calendar_cache.clear()
    out = build_inputs(np.ones((40, 48)), ends, spec, "Europe/London")
    assert not features._calendar_cache
    assert out.values.shape == (40, 48, len(KNOWN_FEATURES))
