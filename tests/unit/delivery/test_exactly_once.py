"""exactly_once wiring without Kafka: grouping by source partition, offsets, the faust hooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, ProducerFenced

from streamer.app import create_app
from streamer.delivery.bulk_sender import OutRecord
from streamer.delivery.exactly_once import by_source, next_offsets
from streamer.delivery.transactional_sender import TransactionalSender, transactional_id
from streamer.settings import load_settings


def test_next_offsets_are_one_past_the_highest_offset_of_each_partition() -> None:
    assert next_offsets([(0, 5), (1, 9), (0, 7), (0, 6), (3, 0)]) == {0: 8, 1: 10, 3: 1}
    assert next_offsets([]) == {}


def test_records_go_with_their_source_partition_and_unsourced_with_the_first() -> None:
    a = OutRecord("forecasts", None, b"m1", b"x", 2)
    b = OutRecord("changelog", 2, b"m1", b"s", 2)
    c = OutRecord("dlq", None, b"k", b"d", 0)
    fleet = OutRecord("drift", None, b"__fleet__", b"f", None)
    groups = by_source([a, b, c, fleet], {0: 10, 2: 4, 3: 7})
    assert groups == {0: [c, fleet], 2: [a, b], 3: []}


def test_transactional_ids_name_app_topic_and_partition() -> None:
    assert transactional_id("streamer", "meter-readings", 3) == "streamer-meter-readings-3"


class FakeProducer:
    """A transactional producer that records what it was asked to do."""

    def __init__(self, tid: str, log: list[tuple[str, Any]], fail: list[Exception]) -> None:
        self.tid, self.log, self.fail = tid, log, fail

    async def start(self) -> None:
        self.log.append(("start", self.tid))

    async def stop(self) -> None:
        self.log.append(("stop", self.tid))

    def transaction(self) -> Any:
        producer = self

        class Txn:
            async def __aenter__(self) -> None:
                producer.log.append(("begin", producer.tid))

            async def __aexit__(self, *exc: object) -> None:
                producer.log.append(("abort" if exc[0] else "commit", producer.tid))

        return Txn()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def create_batch(self) -> Any:
        producer = self

        class Batch:
            def append(self, **kwargs: Any) -> object:
                producer.log.append(("record", kwargs["key"]))
                return object()

            def close(self) -> None:
                pass

        return Batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def send_offsets_to_transaction(self, offsets: dict[Any, int], group: str) -> None:
        if self.fail:
            raise self.fail.pop(0)
        for tp, offset in offsets.items():
            self.log.append(("offsets", (tp.partition, offset, group)))


def test_each_partition_commits_its_records_with_its_offset_and_retries_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streamer.delivery.transactional_sender.RETRY_PAUSE_SECONDS", 0.0)
    log: list[tuple[str, Any]] = []
    fail: list[Exception] = [KafkaConnectionError("broker away")]
    sender = TransactionalSender(
        lambda tid: FakeProducer(tid, log, fail), app_id="app", readings_topic="readings"
    )
    records = {0: [OutRecord("t", 0, b"a", b"1", 0)], 1: [OutRecord("t", 1, b"b", b"2", 1)]}
    committed = asyncio.run(asyncio.wait_for(sender.commit(records, {0: 5, 1: 9}), 5))
    assert committed == {0, 1}
    assert ("offsets", (0, 5, "app")) in log and ("offsets", (1, 9, "app")) in log
    assert ("abort", "app-readings-0") in log or ("abort", "app-readings-1") in log
    assert sender.aborted == 1
    assert sorted(e[1] for e in log if e[0] == "commit") == ["app-readings-0", "app-readings-1"]
    assert ("record", b"a") in log and ("record", b"b") in log


def test_a_fenced_partition_owned_by_another_worker_is_given_up() -> None:
    log: list[tuple[str, Any]] = []
    sender = TransactionalSender(
        lambda tid: FakeProducer(tid, log, [ProducerFenced()]),
        app_id="app",
        readings_topic="readings",
        owns=lambda partition: False,
    )
    assert asyncio.run(sender.commit({2: []}, {2: 1})) == set()
    assert sender.fenced == 1
    assert ("stop", "app-readings-2") in log


def test_exactly_once_is_accepted_and_wires_read_committed_and_recovery() -> None:
    settings = load_settings(processing_guarantee="exactly_once")
    app, runtime = create_app(settings)
    assert runtime.transactional_sender is not None
    assert str(app.conf.processing_guarantee.value) == "at_least_once"  # faust's own: unused
    assert app.tables.recovery.app.in_transaction is True
    assert app.in_transaction is False
    plain_app, plain = create_app(load_settings())
    assert plain.transactional_sender is None
    assert plain_app.tables.recovery.app is plain_app
