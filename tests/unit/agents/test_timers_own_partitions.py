"""Timers that write table state act only on what this worker owns, and not during a rebalance:
the group lateness timer and the silence timer's scan (the stale-group replay seen in CI:
a group issued twice, from two states, after a rebalance)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from streamer.agents.groups_agent import GroupDesk
from streamer.agents.silence_timer import check_meter_health
from streamer.groups.contributions import group_partition
from streamer.groups.group_state import GroupState
from streamer.metrics.pipeline_metrics import PipelineMetrics
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import load_settings
from streamer.timeutil import now_ms

SETTINGS = load_settings(readings_topic="readings", silent_slots=2, retention_seconds=3600)


def table(data: dict[bytes, bytes], key_partition: dict[bytes, int]) -> Any:
    return SimpleNamespace(
        data=SimpleNamespace(data=data, _key_partition=key_partition),
        changelog_topic=SimpleNamespace(get_topic_name=lambda: "group-state-changelog"),
    )


def desk_holding(group_ids: list[str]) -> tuple[GroupDesk, list[str]]:
    """A desk whose state table holds ``group_ids`` (their partitions noted as faust notes
    them); its step records the groups it is asked to step."""
    data: dict[bytes, bytes] = {}
    partitions: dict[bytes, int] = {}
    membership = SimpleNamespace(members_of=lambda g: ["m-1"], kind_of=lambda g: "feeder")
    runtime = SimpleNamespace(
        settings=SETTINGS,
        group_state_table=table(data, partitions),
        group_latest_table=table({}, {}),
        core=SimpleNamespace(membership=membership),
    )
    desk = GroupDesk(runtime)  # type: ignore[arg-type]
    for group_id in group_ids:
        key = group_id.encode()
        data[key] = GroupState(group_id, "feeder", desk.config).to_bytes()
        partitions[key] = group_partition(group_id, SETTINGS.topic_partitions)
    stepped: list[str] = []

    async def step(state: GroupState, *, force_write: bool = False) -> None:
        stepped.append(state.group_id)
        await asyncio.sleep(0)  # a step awaits its sends

    desk.step = step  # type: ignore[method-assign]
    return desk, stepped


def groups_on_distinct_partitions() -> list[str]:
    seen: dict[int, str] = {}
    for k in range(200):
        group_id = f"f-{k}"
        seen.setdefault(group_partition(group_id, SETTINGS.topic_partitions), group_id)
        if len(seen) == 2:
            break
    return sorted(seen.values())


def test_lateness_steps_only_the_groups_of_owned_partitions() -> None:
    mine, theirs = groups_on_distinct_partitions()
    desk, stepped = desk_holding([mine, theirs])
    owned = frozenset({group_partition(mine, SETTINGS.topic_partitions)})
    asyncio.run(desk.check_lateness(lambda: owned))
    assert stepped == [mine]


def test_lateness_steps_nothing_while_a_rebalance_runs_and_stops_when_one_starts() -> None:
    groups = groups_on_distinct_partitions()
    desk, stepped = desk_holding(groups)
    asyncio.run(desk.check_lateness(lambda: None))
    assert stepped == []

    every = frozenset(range(SETTINGS.topic_partitions))
    answers = iter([every, None, every])  # a revoke during the first group's sends
    asyncio.run(desk.check_lateness(lambda: next(answers)))
    assert len(stepped) == 1  # the second group was not stepped


def test_the_silence_scan_takes_only_meters_of_owned_partitions() -> None:
    config = PipelineConfig.from_settings(SETTINGS)
    res_ms = SETTINGS.resolution_seconds * 1000
    old = MeterRecord.new(config.record)
    old.state.update(res_ms, 0.5, now_ms() - 3 * 3_600_000)  # silent past retention
    data = {b"mine": old.to_bytes(partition=0), b"theirs": old.to_bytes(partition=1)}
    tombstones: list[bytes] = []
    events: list[bytes] = []
    registry = CollectorRegistry()
    runtime = SimpleNamespace(
        settings=SETTINGS,
        registry=registry,
        metrics=PipelineMetrics(registry, process_metrics=False),
        state_table=SimpleNamespace(
            data=data, send_changelog=lambda p, key, v, **kw: tombstones.append(key)
        ),
        silent_reported=set(),
        core=SimpleNamespace(silent_reported=set()),
        topics=SimpleNamespace(
            status=SimpleNamespace(send_soon=lambda key, value: events.append(key))
        ),
        processor=SimpleNamespace(prune_cache=lambda load: 0, unflushed_values=dict),
    )
    scan = check_meter_health(runtime, frozenset({0}))  # type: ignore[arg-type]
    assert [m.meter_id for m in scan.expired] == ["mine"]
    assert tombstones == [b"mine"] and b"theirs" in data  # the other worker's meter untouched
    assert set(events) <= {b"mine"}
    assert registry.get_sample_value("streamer_meters_in_state") == 0
