from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from streamer.simulate.clock import SimulatedClock
from streamer.simulate.errors import ProducerError, SimulationConfigError
from streamer.simulate.faults import FaultConfig
from streamer.simulate.fleet import FleetModel
from streamer.simulate.progress import SimulationProgress
from streamer.simulate.ratelimit import RateLimiter
from streamer.simulate.runner import SimulationConfig, produce_messages, run_simulation
from streamer.timeutil import now_ms

from .readback import classify, ts_to_ms


class FakeProducer:
    """Records what would have gone to Kafka; acknowledges everything at once."""

    def __init__(self, fail_start: bool = False) -> None:
        self.fail_start = fail_start
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.sent_at: list[float] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        if self.fail_start:
            raise KafkaConnectionError("no broker")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> asyncio.Future[Any]:
        assert value is not None and key is not None
        self.sent.append((topic, key, value))
        self.sent_at.append(time.monotonic())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class Fleet:
    def __init__(self) -> None:
        self.producers: list[FakeProducer] = []

    def __call__(self, bootstrap_servers: str) -> FakeProducer:
        assert bootstrap_servers == "broker:9092"
        producer = FakeProducer()
        self.producers.append(producer)
        return producer


def test_clock_runs_fast_then_follows_the_wall() -> None:
    elapsed = [0.0]
    clock = SimulatedClock(0, 10.0, wall_ms=lambda: 100_000, monotonic=lambda: elapsed[0])
    elapsed[0] = 5.0
    assert clock.now_ms() == 50_000
    assert not clock.is_live()
    assert clock.seconds_until(60_000) == pytest.approx(1.0)
    assert clock.seconds_until(40_000) == 0.0
    elapsed[0] = 20.0
    assert clock.now_ms() == 100_000
    assert clock.is_live()
    assert clock.seconds_until(160_000) == pytest.approx(60.0)


def test_rate_limiter_spaces_batches() -> None:
    now = [100.0]
    limiter = RateLimiter(1000.0, monotonic=lambda: now[0])
    assert limiter.batch_size() == 20
    assert limiter.reserve(20) == 0.0
    assert limiter.reserve(20) == pytest.approx(0.02)
    assert limiter.reserve(60) == pytest.approx(0.04)
    assert RateLimiter(0).reserve(10**9) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"meters": 0},
        {"speedup": 0},
        {"rate_limit_per_second": -1},
        {"duration_seconds": 0},
        {"backfill_seconds": -5},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(SimulationConfigError):
        SimulationConfig(**kwargs)  # type: ignore[arg-type]


def test_start_in_the_future_is_refused() -> None:
    config = SimulationConfig(start_ms=now_ms() + 3_600_000)
    with pytest.raises(SimulationConfigError, match="in the future"):
        asyncio.run(run_simulation(config, "broker:9092", "t", producer_factory=Fleet()))


def test_backfills_then_goes_live_without_passing_the_wall_clock() -> None:
    fleet = Fleet()
    progress: list[SimulationProgress] = []
    before_ms = now_ms()
    config = SimulationConfig(
        meters=50,
        seed=1,
        start_ms=before_ms - 2 * 3_600_000,
        speedup=1e6,
        duration_seconds=1.3,
        faults=FaultConfig(0.02, 0.02, 0.05, 0.02, late_max_slots=2),
    )
    summary = asyncio.run(
        run_simulation(
            config, "broker:9092", "meter-readings", progress.append, producer_factory=fleet
        )
    )
    after_ms = now_ms()
    # Due: the slots ending in (start, now]; "now" moved a little while the run lasted.
    model = config.build_model()
    due_at_start = model.slot_ends(before_ms - 2 * 3_600_000, before_ms).tolist()
    due_at_end = model.slot_ends(before_ms - 2 * 3_600_000, after_ms).tolist()
    assert len(due_at_start) == 4
    (producer,) = fleet.producers
    assert producer.started and producer.stopped
    assert summary.slots in {len(due_at_start), len(due_at_end)}
    assert summary.first_ts_ms == due_at_start[0]
    assert summary.last_ts_ms in {due_at_start[-1], due_at_end[-1]}
    assert summary.reached_live
    assert summary.messages_sent == len(producer.sent) == summary.tally.messages
    assert summary.tally.readings == 50 * summary.slots
    assert {topic for topic, _, _ in producer.sent} == {"meter-readings"}
    last_ts_ms = summary.last_ts_ms
    assert last_ts_ms is not None and last_ts_ms <= after_ms
    for _, _key, value in producer.sent:
        if classify(value, last_ts_ms) == "valid":
            assert ts_to_ms(json.loads(value)["ts"]) <= last_ts_ms
    phases = [p.phase for p in progress]
    assert phases[-1] == "done"
    assert phases == sorted(phases, key=["backfill", "live", "done"].index)
    first_live = progress[phases.index("live")]
    # Caught up: the last slot due is out, and the clock stands at the wall clock.
    assert first_live.simulated_ms in {due_at_start[-1], due_at_end[-1]}
    assert before_ms <= first_live.clock_ms <= after_ms
    assert progress[-1].messages_sent == summary.messages_sent
    assert summary.as_dict()["messages_sent"] == summary.messages_sent
    text = summary.describe()
    assert f"sent {summary.messages_sent} messages" in text
    assert "reached live" in text
    assert f"missing {summary.tally.missing}," in text


def test_stop_event_ends_the_run() -> None:
    async def scenario() -> tuple[float, int]:
        stop = asyncio.Event()
        config = SimulationConfig(meters=20, backfill_seconds=3600, speedup=1e6)
        task = asyncio.create_task(
            run_simulation(config, "broker:9092", "t", stop=stop, producer_factory=Fleet())
        )
        await asyncio.sleep(0.3)
        stop.set()
        started = time.monotonic()
        summary = await task
        return time.monotonic() - started, summary.slots

    waited, slots = asyncio.run(scenario())
    assert waited < 0.5
    assert slots in {2, 3}  # 2, or 3 if the wall clock crossed a slot end meanwhile


def test_rate_limit_slows_the_backfill() -> None:
    config = SimulationConfig(
        meters=100,
        resolution_seconds=900,
        backfill_seconds=3600,
        speedup=1e6,
        rate_limit_per_second=1000,
        duration_seconds=0.8,
        faults=FaultConfig.none(),
    )
    fleet = Fleet()
    summary = asyncio.run(run_simulation(config, "broker:9092", "t", producer_factory=fleet))
    sent_at = fleet.producers[0].sent_at
    assert summary.messages_sent == len(sent_at) == 400  # 4 slots of 100 meters
    # 400 messages at 1000/s in batches of 20: the last batch leaves >= 0.38 s after the first.
    assert sent_at[-1] - sent_at[0] >= 0.35


def test_a_model_with_drift_can_be_passed_in() -> None:
    base = FleetModel(10, seed=3)
    shifted = base.with_shift(range(10), 0.0, 0)
    fleet = Fleet()
    config = SimulationConfig(
        meters=10, seed=3, backfill_seconds=3600, speedup=1e6, duration_seconds=0.2,
        faults=FaultConfig.none(),
    )  # fmt: skip
    asyncio.run(run_simulation(config, "broker:9092", "t", model=shifted, producer_factory=fleet))
    readings = [json.loads(value) for _, _, value in fleet.producers[0].sent]
    assert len(readings) == 20
    assert all(r.get("kwh", 0.0) == 0.0 for r in readings)


def test_produce_messages_sends_them_as_they_are() -> None:
    fleet = Fleet()
    messages = [(b"k1", b"not json"), (b"k2", b"{}")]
    count = asyncio.run(produce_messages("broker:9092", "t", messages, producer_factory=fleet))
    assert count == 2
    assert fleet.producers[0].sent == [("t", b"k1", b"not json"), ("t", b"k2", b"{}")]
    assert fleet.producers[0].stopped


def test_unreachable_broker_says_how_to_fix_it() -> None:
    with pytest.raises(ProducerError, match="streamer kafka start"):
        asyncio.run(
            produce_messages(
                "nowhere:1", "t", [], producer_factory=lambda _: FakeProducer(fail_start=True)
            )
        )
