"""The gauge timers of a worker, driven without faust: lag, meters, GPU fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry

from streamer.agents.metrics_task import update_consumer_lag, update_model_gauges
from streamer.agents.silence_timer import check_meter_health
from streamer.metrics.pipeline_metrics import PipelineMetrics
from streamer.pipeline.config import PipelineConfig
from streamer.pipeline.meter_record import MeterRecord
from streamer.settings import load_settings
from streamer.timeutil import now_ms

SETTINGS = load_settings(readings_topic="readings", silent_slots=2)


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    """faust's consumer as the timer uses it: assignment, highwaters, position."""

    def __init__(self, assigned: list[TP], ends: Mapping[TP, int], positions: Mapping[TP, int]):
        self.assigned = assigned
        self.ends = ends
        self.positions = positions
        self.position_calls: list[TP] = []

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in tps}

    async def position(self, tp: TP) -> int | None:
        self.position_calls.append(tp)
        return self.positions.get(tp)


def runtime(**fields: Any) -> Any:
    registry = CollectorRegistry()
    base: dict[str, Any] = {
        "settings": SETTINGS,
        "registry": registry,
        "metrics": PipelineMetrics(registry, process_metrics=False),
    }
    return SimpleNamespace(**{**base, **fields})


def test_lag_of_the_assigned_readings_partitions() -> None:
    consumer = FakeConsumer(
        assigned=[TP("readings", 0), TP("readings", 1), TP("readings-changelog", 0)],
        ends={TP("readings", 0): 100, TP("readings", 1): 50},
        positions={TP("readings", 1): 45},
    )
    rt = runtime(app=SimpleNamespace(consumer=consumer))
    rt.metrics.consumer_lag.processed([("readings", 0, 69)])
    lags = asyncio.run(update_consumer_lag(rt))
    assert lags == {("readings", 0): 30, ("readings", 1): 5}
    assert consumer.position_calls == [TP("readings", 1)]  # only where nothing was processed
    assert rt.registry.get_sample_value("streamer_assigned_partitions") == 2
    value = rt.registry.get_sample_value(
        "streamer_consumer_lag_messages", {"topic": "readings", "partition": "0"}
    )
    assert value == 30


def test_no_partitions_no_lag_series() -> None:
    rt = runtime(app=SimpleNamespace(consumer=FakeConsumer([], {}, {})))
    assert asyncio.run(update_consumer_lag(rt)) == {}
    assert rt.registry.get_sample_value("streamer_assigned_partitions") == 0


def test_meter_gauges_from_the_state_table() -> None:
    config = PipelineConfig.from_settings(SETTINGS)
    now = now_ms()
    res_ms = SETTINGS.resolution_seconds * 1000
    data: dict[bytes, bytes] = {}
    for name, arrived_ms in (("a", now), ("b", now), ("c", now - 3 * res_ms)):
        meter = MeterRecord.new(config.record)
        for slot in range(1, 20):
            meter.state.update(slot * res_ms, 0.5, arrived_ms)  # a flat line
        data[name.encode()] = meter.to_bytes(partition=1)
    sent: list[tuple[bytes, bytes]] = []
    rt = runtime(
        state_table=SimpleNamespace(data=data),
        silent_reported=set(),
        core=SimpleNamespace(silent_reported=set()),
        topics=SimpleNamespace(
            status=SimpleNamespace(send_soon=lambda key, value: sent.append((key, value)))
        ),
        processor=SimpleNamespace(prune_cache=lambda load: 0, unflushed_values=dict),
    )
    counts = check_meter_health(rt).counts  # the silence timer's one scan sets the gauges
    assert (counts.held, counts.active, counts.silent, counts.flatlined) == (3, 2, 1, 3)
    assert [key for key, _ in sent] == [b"c"]  # its silent event, from the same scan
    assert rt.registry.get_sample_value("streamer_silent_meters") == 1
    assert rt.registry.get_sample_value("streamer_active_meters") == 2
    assert rt.registry.get_sample_value("streamer_flatlined_meters") == 3


def test_a_meter_whose_new_readings_are_not_written_yet_is_neither_silent_nor_expired() -> None:
    """Coalesced state writes: the table holds a meter's bytes of its last write; the scan
    takes the newer bytes of its changed record instead (held back until the next flush)."""
    settings = load_settings(readings_topic="readings", silent_slots=2, retention_seconds=3600)
    config = PipelineConfig.from_settings(settings)
    now = now_ms()
    res_ms = settings.resolution_seconds * 1000
    old = MeterRecord.new(config.record)
    old.state.update(res_ms, 0.5, now - 3 * 3_600_000)  # silent for 3 h in the table
    newer = MeterRecord.new(config.record)
    newer.state.update(res_ms, 0.5, now)
    data = {b"a": old.to_bytes(partition=1), b"b": old.to_bytes(partition=1)}
    tombstones: list[bytes] = []

    def scan(unflushed: dict[str, bytes]) -> Any:
        rt = runtime(
            settings=settings,
            state_table=SimpleNamespace(
                data=dict(data), send_changelog=lambda p, key, v, **kw: tombstones.append(key)
            ),
            silent_reported=set(),
            core=SimpleNamespace(silent_reported=set()),
            topics=SimpleNamespace(status=SimpleNamespace(send_soon=lambda key, value: None)),
            processor=SimpleNamespace(
                prune_cache=lambda load: 0, unflushed_values=lambda: unflushed
            ),
        )
        return check_meter_health(rt)

    assert sorted(m.meter_id for m in scan({}).expired) == ["a", "b"]
    tombstones.clear()
    held_back = scan({"a": newer.to_bytes(partition=1), "n": newer.to_bytes(partition=2)})
    assert [m.meter_id for m in held_back.expired] == ["b"] and tombstones == [b"b"]
    assert (held_back.counts.held, held_back.counts.active) == (3, 2)  # a and the new n


def onnx_like(name: str, requested: tuple[str, ...], in_use: tuple[str, ...]) -> Any:
    model = SimpleNamespace(
        providers_requested=requested,
        providers_in_use=in_use,
        fell_back_to_cpu="CUDAExecutionProvider" in requested
        and "CUDAExecutionProvider" not in in_use,
    )
    return SimpleNamespace(name=name, version="1", model=model)


def test_gpu_fallback_gauge_per_role() -> None:
    cuda_cpu = ("CUDAExecutionProvider", "CPUExecutionProvider")
    live = onnx_like("lstm", cuda_cpu, ("CPUExecutionProvider",))
    shadow = onnx_like("lstm", cuda_cpu, cuda_cpu)
    fallback = SimpleNamespace(name="seasonal_naive_day", version="1")  # no ONNX session
    rt = runtime(router=SimpleNamespace(live=live, shadow=shadow), fallback=fallback)
    assert update_model_gauges(rt) == {"live": True, "shadow": False, "fallback": False}

    def gauge(role: str, name: str) -> float | None:
        return rt.registry.get_sample_value(
            "streamer_model_cpu_fallback",
            {"role": role, "model_name": name, "model_version": "1"},
        )

    assert (gauge("live", "lstm"), gauge("shadow", "lstm")) == (1, 0)
    assert gauge("fallback", "seasonal_naive_day") == 0
    # the shadow is cleared: its series goes
    rt.router.shadow = None
    update_model_gauges(rt)
    assert gauge("shadow", "lstm") is None
