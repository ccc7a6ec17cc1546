"""One group's state without Kafka: issue when members report or lateness passes, each member
counted once, fills and misses counted, realised totals matched with the forecasts issued."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.groups.contributions import Contribution, contributions_of
from streamer.groups.errors import GroupStateDecodeError, MembershipError
from streamer.groups.group_state import GroupConfig, GroupState
from streamer.groups.membership import GroupRef, encode_membership, parse_membership
from streamer.groups.membership_view import MembershipView

H = 4
CONFIG = GroupConfig(horizon_slots=H, resolution_seconds=1800, lateness_seconds=600)
RES_MS = 1_800_000
ORIGIN = 1_000_000  # a slot index


def at(slot: int, seconds: float = 0.0) -> int:
    return slot * RES_MS + int(seconds * 1000)


def state(members: int = 3) -> GroupState:
    group = GroupState("feeder-1", "feeder", CONFIG)
    group.set_members([f"m{i}" for i in range(members)])
    return group


def test_issued_once_every_member_reported_and_centred_on_their_sum() -> None:
    group = state()
    group.add_forecast("m0", ORIGIN, [1.0, 2.0, 3.0, 4.0])
    group.add_forecast("m1", ORIGIN, [0.5, 0.5, 0.5, 0.5])
    assert group.issue(at(ORIGIN, 10)) == []  # m2 has not reported: wait
    group.add_forecast("m1", ORIGIN, [0.5, 0.5, 0.5, 0.5])  # delivered twice: same
    group.add_forecast("m2", ORIGIN, [0.0, 1.0, 0.0, 1.0])
    (issued,) = group.issue(at(ORIGIN, 20))
    assert (issued.members, issued.reported, issued.filled, issued.missing) == (3, 3, 0, 0)
    np.testing.assert_allclose(issued.members_sum_kwh, [1.5, 3.5, 3.5, 5.5])
    assert group.issue(at(ORIGIN, 30)) == []  # issued once


def test_late_members_are_filled_or_missing_and_counted() -> None:
    group = state()
    group.add_forecast("m0", ORIGIN - 1, [9.0, 1.0, 2.0, 3.0])  # targets ORIGIN..ORIGIN+3
    assert group.issue(at(ORIGIN, 1)) == []  # waits from now on for m1 and m2
    (first,) = group.issue(at(ORIGIN, 601))  # lateness passed: m1 and m2 missing
    assert (first.reported, first.filled, first.missing) == (1, 0, 2)
    group.add_forecast("m1", ORIGIN, [1.0, 1.0, 1.0, 1.0])
    assert group.issue(at(ORIGIN, 602)) == []  # m0 and m2 may still come
    assert group.issue(at(ORIGIN, 1201)) == []
    (issued,) = group.issue(at(ORIGIN, 1203))
    assert (issued.reported, issued.filled, issued.missing) == (1, 1, 1)
    # m0 filled from its forecast one slot older: targets ORIGIN+1.. are its steps 2..4, and
    # ORIGIN+4 (beyond it) the same time of day a day earlier: not in a 4-slot forecast, so
    # a day later wraps back into it (index 0 + 48 - 48)
    np.testing.assert_allclose(issued.members_sum_kwh[:3], [2.0, 3.0, 4.0])


def test_a_silent_member_holds_a_backfill_up_once_per_lateness_not_once_per_slot() -> None:
    group = state(2)
    for k in range(5):  # m1 is silent; m0 sends five origins at once (a backfill)
        group.add_forecast("m0", ORIGIN + k, [1.0] * H)
    assert group.issue(at(ORIGIN, 1)) == []  # waits for m1 from now on
    issued = group.issue(at(ORIGIN, 602))  # waited: every pending origin goes at once
    assert [f.origin_slot for f in issued] == [ORIGIN + k for k in range(5)]
    assert {(f.reported, f.missing) for f in issued} == {(1, 1)}


def test_a_member_further_on_does_not_hold_a_slot_it_skipped() -> None:
    group = state(2)
    group.add_actual("m0", ORIGIN + 1, 1.0)
    group.add_actual("m1", ORIGIN + 2, 2.0)  # m1 skipped ORIGIN + 1
    group.add_actual("m0", ORIGIN + 2, 1.0)
    totals = group.realise(at(ORIGIN, 1))  # no waiting: nobody can still read either slot
    assert [(t.slot, t.read, t.complete) for t in totals] == [
        (ORIGIN + 1, 1, False),
        (ORIGIN + 2, 2, True),
    ]


def test_realised_totals_are_matched_with_the_forecasts_issued_for_them() -> None:
    group = state(2)
    group.add_forecast("m0", ORIGIN, [1.0] * H)
    group.add_forecast("m1", ORIGIN, [2.0] * H)
    group.issue(at(ORIGIN, 1))
    group.add_actual("m0", ORIGIN + 1, 1.5)
    assert group.realise(at(ORIGIN + 1, 5)) == []  # m1 has not read the slot
    group.add_actual("m1", ORIGIN + 1, 2.0)
    group.add_actual("m1", ORIGIN + 1, 2.5)  # a correction replaces it
    (total,) = group.realise(at(ORIGIN + 1, 10))
    assert total.complete and total.total_kwh == pytest.approx(4.0)
    assert total.pairs == ((1, 3.0, 4.0),)
    assert int(group.calibrator.pairs().sum()) == 1
    # a slot m1 never reads is realised after the lateness, incomplete and not learnt from
    group.add_actual("m0", ORIGIN + 2, 1.0)
    assert group.realise(at(ORIGIN + 2, 1)) == []
    (partial,) = group.realise(at(ORIGIN + 2, 602))
    assert not partial.complete and partial.read == 1 and partial.pairs == ()
    assert int(group.calibrator.pairs().sum()) == 1


def test_membership_changes_keep_what_members_sent_and_drop_leavers() -> None:
    group = state(2)
    group.add_forecast("m0", ORIGIN, [1.0] * H)
    group.set_members(["m0", "m7"])
    assert group.members == ["m0", "m7"]
    assert not group.add_forecast("m1", ORIGIN, [5.0] * H)  # no longer a member
    group.add_forecast("m7", ORIGIN, [2.0] * H)
    (issued,) = group.issue(at(ORIGIN, 1))
    assert issued.members == 2 and issued.reported == 2
    np.testing.assert_allclose(issued.members_sum_kwh, [3.0] * H)


def test_state_bytes_round_trip_and_refuse_garbage() -> None:
    group = state()
    for i in range(3):
        group.add_forecast(f"m{i}", ORIGIN, [float(i)] * H)
        group.add_actual(f"m{i}", ORIGIN + 1, 0.5)
    group.issue(at(ORIGIN, 1))
    group.realise(at(ORIGIN + 1, 1))
    data = group.to_bytes()
    again = GroupState.from_bytes(data, CONFIG)
    assert again.to_bytes() == data
    assert again.members == group.members and again.next_origin == group.next_origin
    with pytest.raises(GroupStateDecodeError):
        GroupState.from_bytes(data[:-3], CONFIG)
    with pytest.raises(GroupStateDecodeError):
        GroupState.from_bytes(data, GroupConfig(horizon_slots=8))


def test_membership_records_and_the_view_follow_moves() -> None:
    feeder, sub = GroupRef("f-1", "feeder"), GroupRef("s-1", "substation")
    raw = encode_membership([sub, feeder, feeder])
    assert parse_membership(raw) == (feeder, sub)
    view = MembershipView()
    view.apply("m0", raw)
    view.apply("m1", encode_membership([feeder]))
    assert view.members_of("f-1") == {"m0", "m1"} and view.kind_of("s-1") == "substation"
    view.apply("m0", encode_membership([GroupRef("f-2", "feeder")]))  # moves feeder
    assert view.members_of("f-1") == {"m1"} and view.members_of("s-1") == frozenset()
    view.apply("m1", None)  # tombstone: out of every group
    assert view.members_of("f-1") == frozenset() and view.meters == 1
    assert not view.apply("m2", b'{"groups": [{"id": "x", "kind": "Bad Kind"}]}')
    with pytest.raises(MembershipError):
        parse_membership(b"[1, 2]")


def test_contributions_carry_expected_values_not_medians() -> None:
    from streamer.contract.forecast_record import ForecastRecord

    view = MembershipView()
    view.apply("m0", encode_membership([GroupRef("f-1", "feeder"), GroupRef("s-1", "sub")]))
    quantiles = np.array([[0.1, 0.2, 1.0]] * H)  # right-skewed: mean above median
    record = ForecastRecord(
        "m0", 0, ORIGIN * RES_MS, "lstm", "2", False, 1800, 1.0,
        np.arange(1, H + 1, dtype=np.int64), quantiles[:, 1], quantiles, (0.1, 0.5, 0.9),
    )  # fmt: skip
    out = contributions_of(
        [record, record], [("m0", ORIGIN + 1, 0.3), ("m9", 5, 1.0)], view, RES_MS
    )
    assert sorted(out) == ["f-1", "s-1"]
    feeder = Contribution.from_bytes(out["f-1"].to_bytes())
    meter, origin, values = feeder.forecasts[0]
    assert (meter, origin) == ("m0", ORIGIN)
    np.testing.assert_allclose(values, [0.3 * 0.1 + 0.4 * 0.2 + 0.3 * 1.0] * H)
    assert feeder.actuals == [("m0", ORIGIN + 1, 0.3)]


def test_group_records_follow_their_schemas() -> None:
    import json

    from streamer.groups.membership import encode_membership as encode
    from streamer.groups.records import group_forecast_json, realised_json
    from tests.unit.contract.test_schemas import validate

    group = state(2)
    group.add_forecast("m0", ORIGIN, [1.0] * H)
    group.add_forecast("m1", ORIGIN, [-2.0] * H)  # a PV member: negative net load
    (issued,) = group.issue(at(ORIGIN, 1))
    body = json.loads(
        group_forecast_json(issued, resolution_seconds=1800, levels=(0.1, 0.5, 0.9), issued_ms=5)
    )
    validate(body, "group-forecasts")
    assert body["reported"] + body["filled"] + body["missing"] == body["members"] == 2
    low, mid, high = (body["quantiles_kwh"][p] for p in ("p10", "p50", "p90"))
    assert all(a <= b <= c for a, b, c in zip(low, mid, high, strict=True))
    group.add_actual("m0", ORIGIN + 1, 1.0)
    group.add_actual("m1", ORIGIN + 1, -1.5)
    (total,) = group.realise(at(ORIGIN + 1, 1))
    record = json.loads(realised_json(total, resolution_seconds=1800, at_ms=5, model=("lstm", "2")))
    validate(record, "forecast-drift")
    assert record["metrics"]["error_kwh.h1"] == pytest.approx(-0.5)
    validate(json.loads(encode([GroupRef("f-1", "feeder")])), "meter-groups")
