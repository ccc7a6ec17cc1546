"""Group forecasts on real Kafka with two workers (issue 17): a simulated fleet in three feeders
and one substation, a second worker joining mid-stream (a rebalance), a meter moving between
feeders, a silent meter and a late one. Every group forecast counts its members correctly, its
centre before calibration is the sum of its members' expected values, and no member is counted
twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from streamer.groups.expected import expected_kwh
from streamer.groups.membership import GroupRef
from streamer.groups.membership_topic import publish_membership, read_membership
from streamer.kafka_admin import ensure_topics
from streamer.simulate.encode import ReadingEncoder
from streamer.simulate.fleet import FleetModel
from streamer.timeutil import now_ms
from tests.support.fleet import fleet_messages
from tests.support.kafka import TestKafka
from tests.support.processes import WorkerProcess, free_port, get_json
from tests.support.topics import produce, read_all, read_topic, wait_caught_up

pytestmark = pytest.mark.integration

METERS = 24
LIVE_SLOTS = 6
MOVER, SILENT, LATE = "m-000001", "m-000005", "m-000002"


def feeder_of(index: int) -> GroupRef:
    return GroupRef(f"f-{index % 3}", "feeder")


def membership(moved: bool) -> dict[str, tuple[GroupRef, ...]]:
    out = {f"m-{i:06d}": (feeder_of(i), GroupRef("s-0", "substation")) for i in range(METERS)}
    if moved:  # MOVER leaves f-1 for f-2
        out[MOVER] = (GroupRef("f-2", "feeder"), GroupRef("s-0", "substation"))
    return out


def test_group_forecasts_count_members_once_across_moves_silence_and_a_rebalance(
    kafka: TestKafka, tmp_path: Path
) -> None:
    first = kafka.settings(
        web_port=free_port(),
        consumer_session_timeout_seconds=6.0,
        group_lateness_seconds=2,
        silence_check_interval_seconds=2.0,
    )
    second = first.model_copy(update={"web_port": free_port()})
    asyncio.run(ensure_topics(first))
    asyncio.run(publish_membership(first, membership(moved=False)))
    fleet = FleetModel(METERS, seed=21, resolution_seconds=first.resolution_seconds)
    encoder = ReadingEncoder(fleet)
    res_ms = first.resolution_seconds * 1000
    last_slot = now_ms() // res_ms * res_ms - res_ms
    live_start = last_slot - LIVE_SLOTS * res_ms
    warmup = fleet_messages(first, fleet, encoder, live_start - 2 * 86_400_000, live_start)
    bootstrap = first.kafka_bootstrap

    workers = [WorkerProcess(first, tmp_path / "w1.log")]
    try:
        workers[0].wait_ready()
        asyncio.run(produce(bootstrap, first.readings_topic, warmup))
        asyncio.run(wait_caught_up(bootstrap, first.app_id, first.readings_topic))
        workers.append(WorkerProcess(second, tmp_path / "w2.log"))  # a rebalance
        workers[1].wait_ready()

        held_back: list[tuple[bytes, bytes]] = []
        for k in range(LIVE_SLOTS):
            if k == 2:
                asyncio.run(publish_membership(first, membership(moved=True)))
                time.sleep(1.0)  # the workers' membership readers take the move
            slot_end = live_start + (k + 1) * res_ms
            messages = fleet_messages(first, fleet, encoder, slot_end - res_ms, slot_end)
            keep = []
            for key, value in messages:
                meter = key.decode()
                if meter == SILENT and k >= 3:
                    continue  # silent for the last three slots
                if meter == LATE and k == 1:
                    held_back.append((key, value))  # arrives one slot late
                    continue
                keep.append((key, value))
            if k == 2:
                keep.extend(held_back)
            asyncio.run(produce(bootstrap, first.readings_topic, keep))
            asyncio.run(wait_caught_up(bootstrap, first.app_id, first.readings_topic))
        last_origin = last_slot - res_ms  # the newest origin every live meter forecast from

        def issued_last(records: list[object]) -> bool:
            seen = {
                (body["group_id"], body["origin_ts"])
                for body in (json.loads(r.value) for r in records)  # type: ignore[attr-defined]
            }
            wanted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last_origin / 1000))
            return all((g, wanted) in seen for g in ("f-0", "f-1", "f-2", "s-0"))

        group_records = asyncio.run(
            read_topic(
                bootstrap, first.group_forecasts_topic, until=issued_last, timeout_seconds=90
            )
        )
        assert issued_last(group_records), "no group forecast of the last origin in 90 s"
        meter_records = asyncio.run(read_all(bootstrap, first.forecasts_topic, seconds=5.0))

        # the members' expected values, by (meter, origin)
        expected: dict[tuple[str, str], np.ndarray] = {}
        for record in meter_records:
            body = json.loads(record.value)
            quantiles = np.array([body["quantiles_kwh"][p] for p in ("p10", "p50", "p90")]).T
            expected[(body["meter_id"], body["origin_ts"])] = expected_kwh(
                quantiles, (0.1, 0.5, 0.9)
            )

        by_issue: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
        for record in group_records:
            body = json.loads(record.value)
            by_issue[(str(body["group_id"]), str(body["origin_ts"]))].append(body)
        live_origin_ts = {
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((live_start + k * res_ms) / 1000))
            for k in range(LIVE_SLOTS)
        }
        exact = 0
        for (group_id, origin_ts), bodies in by_issue.items():
            for body in bodies:
                counts = [body[name] for name in ("reported", "filled", "missing")]
                assert sum(counts) == body["members"], body  # type: ignore[arg-type]
                # a forecast issued twice (a replay after the rebalance) has the same sum
                assert body["members_sum_kwh"] == bodies[0]["members_sum_kwh"]
            body = bodies[-1]
            members = body["members"]
            if group_id == "s-0":
                assert members == METERS
            elif origin_ts in live_origin_ts:
                assert members in (7, 8, 9)
            if body["reported"] == members and body["filled"] == 0:
                meters = [m for m, o in expected if o == origin_ts]
                group_meters = [
                    m
                    for m in meters
                    if group_id == "s-0"
                    or any(ref.group_id == group_id for ref in membership(False)[m])
                    or any(ref.group_id == group_id for ref in membership(True)[m])
                ]
                if len(group_meters) == members:
                    total = sum(expected[(m, origin_ts)] for m in group_meters)
                    np.testing.assert_allclose(body["members_sum_kwh"], total, atol=1e-3)
                    exact += 1
        assert exact >= 4, "too few complete group forecasts to check their sums"

        # after the move, f-1 has 7 members and f-2 9; the silent meter is filled and counted
        last_ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last_origin / 1000))
        newest = {g: by_issue[(g, last_ts)][-1] for g in ("f-0", "f-1", "f-2", "s-0")}
        assert [newest[g]["members"] for g in ("f-0", "f-1", "f-2", "s-0")] == [8, 7, 9, 24]
        silent_feeder = feeder_of(int(SILENT[2:])).group_id
        assert int(newest[silent_feeder]["filled"]) >= 1  # type: ignore[call-overload]
        assert int(newest["s-0"]["filled"]) >= 1  # type: ignore[call-overload]

        # either worker answers for any group (routed to its owner)
        for worker in workers:
            status, body = get_json(f"{worker.base_url}/groups/s-0/forecast")
            assert status == 200 and body["group_id"] == "s-0" and body["members"] == METERS
        status, _ = get_json(f"{workers[0].base_url}/groups/nope/forecast")
        assert status == 404

        # realised totals with the forecasts' errors reach forecast-drift
        drift = asyncio.run(read_all(bootstrap, first.drift_topic, seconds=3.0))
        realised = [json.loads(r.value) for r in drift]
        realised = [r for r in realised if r.get("scope") == "group"]
        complete = [r for r in realised if r["metrics"]["read"] == r["metrics"]["members"]]
        assert complete, "no complete realised group total"
        assert any("error_kwh.h1" in r["metrics"] for r in complete)
        metrics = [w.metrics() for w in workers]
        issued = sum(
            v
            for m in metrics
            for k, v in m.items()
            if k.startswith("streamer_group_forecasts_total")
        )
        assert issued >= len(by_issue)
        # each worker's store also holds its standby copies of the other's partitions: only
        # the owner scans a meter (and only its owner steps a group, as checked above)
        held = [m.get("streamer_meters_in_state", 0.0) for m in metrics]
        assert sum(held) == METERS and all(0 < h < METERS for h in held), held
    finally:
        for worker in workers:
            worker.stop()


def test_membership_loads_only_changes_and_replace_takes_unlisted_meters_out(
    kafka: TestKafka,
) -> None:
    settings = kafka.settings()
    asyncio.run(ensure_topics(settings))
    feeder, other = GroupRef("f-1", "feeder"), GroupRef("f-2", "feeder")
    assert asyncio.run(read_membership(settings)).meters == 0
    first = {"a": (feeder,), "b": (feeder,), "c": (other,)}
    assert asyncio.run(publish_membership(settings, first)) == (3, 0)
    current = asyncio.run(read_membership(settings))
    assert current.members_of("f-1") == {"a", "b"} and current.meters == 3
    # c moves, a is unchanged (not written again), b is not listed: taken out
    written, removed = asyncio.run(
        publish_membership(settings, {"a": (feeder,), "c": (feeder,)}, current=current)
    )
    assert (written, removed) == (2, 1)
    after = asyncio.run(read_membership(settings))
    assert after.members_of("f-1") == {"a", "c"} and after.groups_of("b") == ()
