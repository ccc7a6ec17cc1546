"""Session-wide fixtures. The real local Kafka starts once, only if a test asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka import TestKafka, start_test_kafka


@pytest.fixture(scope="session")
def kafka() -> Iterator[TestKafka]:
    """A real single-node KRaft broker on 127.0.0.1:19092 (or STREAMER_TEST_KAFKA_PORT), fresh."""
    broker = start_test_kafka()
    try:
        yield broker
    finally:
        broker.stop()
