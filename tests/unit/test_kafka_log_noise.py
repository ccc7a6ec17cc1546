"""The outage filter: a broker outage's reconnect noise becomes a few lines."""

from __future__ import annotations

import logging

import pytest

from streamer.kafka_log_noise import (
    NOISY_LOGGERS,
    OutageLogFilter,
    brokers_named,
    install,
    is_connection_failure,
    is_coordinator_not_ready,
)

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z
BOOTSTRAP = "localhost:19492"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(
    message: str,
    *args: object,
    level: int = logging.ERROR,
    name: str = "aiokafka",
    at: float = 0.0,
) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, message, args, None)
    rec.created = START + at
    return rec


NOISE = [
    ('Unable connect to "%s:%s": %s', "localhost", 19492, "[Errno 111] Connect call failed"),
    ("Unable connect to node with id %s: %s", 1, "KafkaConnectionError: closed"),
    ("Unable to update metadata from %s", [1]),
    ("Failed fetch messages from %s: %s", 1, "NodeNotReadyError: not ready"),
    ("Heartbeat send request failed: %s. Will retry.", "KafkaConnectionError: broken"),
    ("Group Coordinator Request failed: %s", "NodeNotReadyError"),
    ("Group Coordinator Request failed: %s", "[Error 15] GroupCoordinatorNotAvailableError"),
    ("Marking the coordinator dead (node %s)for group %s.", 1, "streamer"),
]


def feed(
    outage: OutageLogFilter, clock: Clock, count: int, seconds: float, start: float = 0.0
) -> list[logging.LogRecord]:
    passed = []
    for i in range(count):
        at = start + seconds * i / count
        clock.now = 100.0 + at
        message, *args = NOISE[i % len(NOISE)]
        rec = record(str(message), *args, at=at)
        if outage.filter(rec):
            passed.append(rec)
    return passed


def test_a_17_second_outage_is_a_few_lines_naming_the_broker_and_the_start() -> None:
    clock = Clock()
    outage = OutageLogFilter(BOOTSTRAP, clock=clock)
    passed = feed(outage, clock, 31_000, 17.0)
    assert 1 <= len(passed) < 10
    first = passed[0].getMessage()
    assert first.startswith(
        "Kafka broker(s) localhost:19492 unreachable since 2023-11-14T22:13:20+00:00; "
        "further connection errors suppressed"
    ), first
    assert "Unable connect to" in first  # the original message
    clock.now = 117.5
    back = record("Kafka at %s answers again after %.1f s", BOOTSTRAP, 17.4, level=logging.INFO)
    assert outage.filter(back)
    assert back.getMessage().startswith(
        f"Kafka reachable again after 17.5 s; {31_000 - len(passed)} connection errors suppressed"
    )
    assert not outage.in_outage


def test_a_long_outage_is_summarised_once_per_interval() -> None:
    clock = Clock()
    outage = OutageLogFilter(BOOTSTRAP, clock=clock, summary_every_seconds=30.0)
    passed = feed(outage, clock, 10_000, 95.0)
    assert len(passed) == 4  # the first, then at 30, 60 and 90 s
    summaries = [rec.getMessage() for rec in passed[1:]]
    for summary in summaries:
        assert summary.startswith(
            "Kafka broker(s) localhost:19492 still unreachable since 2023-11-14T22:13:20+00:00, "
        ), summary
    suppressed = [int(s.split(", ")[1].split(" ")[0]) for s in summaries]
    assert all(2_000 < n < 3_300 for n in suppressed), suppressed
    back = record("Kafka at %s answers again after %.1f s", BOOTSTRAP, 95.0, level=logging.INFO)
    assert outage.filter(back)
    assert "; 9996 connection errors suppressed" in back.getMessage()  # all but the 4 lines


def test_other_errors_always_pass_unchanged() -> None:
    clock = Clock()
    outage = OutageLogFilter(BOOTSTRAP, clock=clock)
    feed(outage, clock, 1_000, 2.0)
    assert outage.in_outage
    for _ in range(50):
        rec = record("Crashed reason=%r", ValueError("boom"), name="faust.transport.consumer")
        assert outage.filter(rec)
        assert rec.getMessage() == "Crashed reason=ValueError('boom')"
    assert outage.in_outage  # within the settle time: not a sign the broker is back


def test_a_quiet_spell_then_an_ordinary_record_ends_the_outage() -> None:
    clock = Clock()
    outage = OutageLogFilter(BOOTSTRAP, clock=clock, settle_seconds=5.0)
    feed(outage, clock, 100, 3.0)
    clock.now += 6.0
    rec = record("Discovered coordinator %s for group %s", 1, "streamer", level=logging.INFO)
    assert outage.filter(rec)
    assert rec.getMessage().startswith("Kafka reachable again after 9.0 s; 99 connection errors")
    assert rec.getMessage().endswith("(Discovered coordinator 1 for group streamer)")
    # the next outage starts over, with a line of its own
    passed = feed(outage, clock, 100, 3.0, start=20.0)
    assert len(passed) == 1
    assert "unreachable since 2023-11-14T22:13:40+00:00" in passed[0].getMessage()


def test_a_failure_long_after_the_last_one_starts_a_new_outage() -> None:
    clock = Clock()
    outage = OutageLogFilter(BOOTSTRAP, clock=clock, summary_every_seconds=30.0)
    feed(outage, clock, 10, 1.0)
    passed = feed(outage, clock, 10, 1.0, start=600.0)
    assert len(passed) == 1
    message = passed[0].getMessage()
    assert "unreachable since 2023-11-14T22:23:20+00:00" in message
    assert "9 suppressed in an earlier outage" in message


def test_without_a_host_in_the_messages_the_bootstrap_servers_are_named() -> None:
    clock = Clock()
    outage = OutageLogFilter("kafka-1:9092, kafka-2:9092", clock=clock)
    rec = record("Failed fetch messages from %s: %s", 1, "NodeNotReadyError")
    assert outage.filter(rec)
    assert rec.getMessage().startswith("Kafka broker(s) kafka-1:9092, kafka-2:9092 unreachable")


@pytest.mark.parametrize(
    ("message", "level", "expected"),
    [
        ('Unable connect to "kafka:9092": timeout', logging.ERROR, True),
        ("Unable to request metadata from node with id 1: x", logging.WARNING, True),
        ("Error sending JoinGroupRequest to node 1 [x] -- marking coordinator dead", 40, True),
        ("Kafka at kafka:9092 does not answer (TimeoutError); reporting not ready", 30, True),
        ("Unable connect to node with id 1: x", logging.INFO, False),  # not a warning
        ("Topic meter-readings not found in cluster metadata", logging.ERROR, False),
        ("Heartbeat failed for group streamer because it is rebalancing", 30, False),
    ],
)
def test_connection_failures_are_told_from_other_records(
    message: str, level: int, expected: bool
) -> None:
    assert is_connection_failure(record(message, level=level)) is expected


def test_a_connection_exception_is_a_connection_failure() -> None:
    class KafkaConnectionError(Exception):
        pass

    rec = record("Unexpected error in fetcher routine")
    try:
        raise KafkaConnectionError("gone")
    except KafkaConnectionError:
        import sys

        rec.exc_info = sys.exc_info()
    assert is_connection_failure(rec)


def test_brokers_are_read_from_aiokafka_s_messages() -> None:
    assert brokers_named('Unable connect to "kafka-1:9092": x') == ["kafka-1:9092"]
    assert brokers_named("KafkaConnectionError: No connection to broker at k:9093") == ["k:9093"]
    assert brokers_named("Connect call failed ('127.0.0.1', 19492)") == ["127.0.0.1:19492"]
    assert brokers_named("Failed fetch messages from 1: NodeNotReadyError") == []


def test_install_puts_one_filter_on_each_logger_and_replaces_an_earlier_one() -> None:
    import aiokafka.consumer.fetcher  # noqa: F401  (creates its logger)

    names = ["test_kafka_log_noise.a", "test_kafka_log_noise.a.b"]
    try:
        first = install(BOOTSTRAP, names)
        second = install(BOOTSTRAP, names)
        for name in names:
            filters = logging.getLogger(name).filters
            assert filters == [second] and first is not second
        # and on the aiokafka loggers already created, though not named
        assert logging.getLogger("aiokafka.consumer.fetcher").filters.count(second) == 1
    finally:
        for name in [*names, *logging.root.manager.loggerDict]:
            logger = logging.getLogger(name)
            for f in [f for f in logger.filters if isinstance(f, OutageLogFilter)]:
                logger.removeFilter(f)


def test_installed_the_noise_of_an_outage_reaches_the_handlers_as_a_few_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = "test_kafka_log_noise.client"
    logger = logging.getLogger(name)
    outage = install(BOOTSTRAP, [name])
    try:
        with caplog.at_level(logging.INFO, logger=name):
            for _ in range(31_000):
                logger.error('Unable connect to "%s:%s": %s', "localhost", 19492, "refused")
            logger.error("Topic %s not found in cluster metadata", "meter-readings")
            logger.info("Kafka at %s answers again after %.1f s", BOOTSTRAP, 17.0)
        lines = [r.getMessage() for r in caplog.records if r.name == name]
    finally:
        logger.removeFilter(outage)
    assert len(lines) == 3, lines
    assert lines[0].startswith("Kafka broker(s) localhost:19492 unreachable since ")
    assert lines[1] == "Topic meter-readings not found in cluster metadata"
    assert lines[2].startswith("Kafka reachable again after ")
    assert "; 30999 connection errors suppressed" in lines[2]


def test_errors_an_outage_brings_are_suppressed_only_during_one() -> None:
    clock = Clock()
    outage = OutageLogFilter(BOOTSTRAP, clock=clock)
    # a fresh broker elects a group coordinator: not an outage (a warning: the tests below)
    rec = record("Group Coordinator Request failed: %s", "CoordinatorNotAvailableError")
    assert outage.filter(rec)
    assert "Group Coordinator Request failed" in rec.getMessage()
    assert not outage.in_outage
    feed(outage, clock, 10, 1.0)
    clock.now += 0.5
    assert not outage.filter(record("Marking the coordinator dead (node 1)for group x."))
    assert outage.in_outage
    clock.now += 60.0  # long after the last connection failure: passes, ends nothing
    assert outage.filter(record("Got error produce response: %s", "NotLeaderForPartitionError"))
    assert outage.in_outage


#: What aiokafka logs (at ERROR) while a fresh broker elects the group coordinator.
COORDINATOR = (
    "Group Coordinator Request failed: %s",
    "[Error 15] GroupCoordinatorNotAvailableError",
)


def test_a_coordinator_not_yet_elected_is_one_warning_without_a_traceback() -> None:
    clock = Clock()
    outage = OutageLogFilter(BOOTSTRAP, clock=clock)
    first = record(*COORDINATOR)
    try:
        raise RuntimeError("a traceback the line must not carry")
    except RuntimeError:
        import sys

        first.exc_info = sys.exc_info()
    assert outage.filter(first)
    assert (first.levelno, first.levelname) == (logging.WARNING, "WARNING")
    assert first.getMessage() == (
        "Kafka group coordinator not available yet (Group Coordinator Request failed: "
        "[Error 15] GroupCoordinatorNotAvailableError); the client retries"
    )
    assert first.exc_info is None and first.exc_text is None
    # aiokafka retries every 100 ms: the retries are not logged
    for _ in range(20):
        clock.now += 0.1
        assert not outage.filter(record(*COORDINATOR))
    found = record("Discovered coordinator %s for group %s", 1, "streamer", level=logging.INFO)
    assert outage.filter(found)
    assert found.getMessage() == "Discovered coordinator 1 for group streamer"
    assert not outage.in_outage
    # a later spell (the coordinator moved) is one warning again
    clock.now += 1.0
    again = record("Group Coordinator Request failed: %s", "[Error 16] NotCoordinatorForGroupError")
    assert outage.filter(again)
    assert again.levelno == logging.WARNING
    assert again.getMessage().startswith("Kafka group coordinator not available yet (")


def test_a_coordinator_that_stays_unavailable_is_an_error_once_per_interval() -> None:
    clock = Clock()
    outage = OutageLogFilter(
        BOOTSTRAP, clock=clock, summary_every_seconds=30.0, coordinator_grace_seconds=60.0
    )
    passed = []
    for i in range(1500):  # 150 s of retries, one every 100 ms
        clock.now = 100.0 + i / 10
        rec = record(*COORDINATOR)
        if outage.filter(rec):
            passed.append(rec)
    assert [r.levelno for r in passed] == [logging.WARNING] + [logging.ERROR] * 3  # 60, 90, 120 s
    assert passed[1].getMessage() == (
        "Kafka group coordinator still not available after 60 s, 599 retries not logged "
        "(Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError)"
    )
    assert (
        passed[2]
        .getMessage()
        .startswith(
            "Kafka group coordinator still not available after 90 s, 299 retries not logged ("
        )
    )


@pytest.mark.parametrize(
    ("message", "level", "expected"),
    [
        (
            "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
            40,
            True,
        ),
        ("Group Coordinator Request failed: CoordinatorNotAvailableError", 40, True),
        ("OffsetCommit failed: [Error 14] GroupLoadInProgressError", 30, True),
        ("Heartbeat failed: [Error 16] NotCoordinatorForGroupError", 30, True),
        (
            "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
            20,
            False,
        ),
        ("Group Coordinator Request failed: [Error 30] GroupAuthorizationFailedError", 40, False),
    ],
)
def test_a_coordinator_not_ready_is_told_from_other_records(
    message: str, level: int, expected: bool
) -> None:
    assert is_coordinator_not_ready(record(message, level=level)) is expected


def test_installed_aiokafka_s_coordinator_error_reaches_the_handlers_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aiokafka.consumer import group_coordinator

    assert group_coordinator.log.name in NOISY_LOGGERS  # the logger that writes it
    name = "test_kafka_log_noise.coordinator"
    logger = logging.getLogger(name)
    outage = install(BOOTSTRAP, [name])
    try:
        with caplog.at_level(logging.INFO, logger=name):
            for _ in range(5):
                logger.error(*COORDINATOR)
            logger.info("Discovered coordinator %s for group %s", 1, "streamer")
        records = [r for r in caplog.records if r.name == name]
    finally:
        logger.removeFilter(outage)
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert records[0].getMessage().startswith("Kafka group coordinator not available yet (")
    assert "Traceback" not in caplog.text
