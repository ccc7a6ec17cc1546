"""The readings topic's records made as messages inside aiokafka's fetcher: the same fields as
aiokafka's record would give, on a marked consumer's topic only."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from streamer.faust_glue.bulk_readings import in_messages
from streamer.faust_glue.bulk_records import MessagesFor, install, make_messages
from streamer.pipeline.messages import InMessage


def fetched(key_deserializer: object, topic: str = "meter-readings") -> list[object]:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(0, timestamp=1_795_392_001_000, key=b"m-1", value=b'{"kwh": 1}', headers=[])
    builder.append(1, timestamp=1_795_392_002_000, key=None, value=None, headers=[])
    records = MemoryRecords(bytes(builder.build()))
    tp = TopicPartition(topic, 3)
    return list(PartitionRecords(tp, records, [], 0, key_deserializer, None, True, 0))


def test_a_marked_consumer_s_topic_gives_messages_with_aiokafka_s_fields() -> None:
    install()
    install()  # once per process
    plain = fetched(None)
    assert all(type(r) is ConsumerRecord for r in plain)
    made = fetched(MessagesFor({"meter-readings"}))
    assert made == [
        InMessage(b"m-1", b'{"kwh": 1}', "meter-readings", 3, 0, 1_795_392_001_000),
        InMessage(None, None, "meter-readings", 3, 1, 1_795_392_002_000),
    ]
    assert in_messages(plain) == made  # what the feed made of aiokafka's records
    assert in_messages(made) == made


def test_other_topics_of_a_marked_consumer_keep_aiokafka_s_records() -> None:
    install()
    other = fetched(MessagesFor({"meter-readings"}), topic="streamer-meter-state-changelog")
    assert [type(r) for r in other] == [ConsumerRecord, ConsumerRecord]
    assert [(r.key, r.offset) for r in other] == [(b"m-1", 0), (None, 1)]  # keys as they are


def test_make_messages_marks_the_running_consumer_and_its_fetcher() -> None:
    fetcher = SimpleNamespace(_key_deserializer=None)
    client = SimpleNamespace(_key_deserializer=None, _fetcher=fetcher)
    consumer = SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: client))
    make_messages(consumer, "meter-readings")
    assert isinstance(fetcher._key_deserializer, MessagesFor)  # the next fetch's records
    assert client._key_deserializer is fetcher._key_deserializer  # and a fetcher made again
    assert fetcher._key_deserializer.topics == {"meter-readings"}
