"""The test broker: the project's own local Kafka, on test ports, with a fresh log dir."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamer.localkafka.broker import LocalKafka, LocalKafkaError
from streamer.settings import Settings, load_settings
from tests.support.settings import KAFKA_LIBS_DIR, REPO, worker_settings

# Below the ephemeral port range (32768+), so no client socket holds it. Parallel test sessions
# (one per checkout or helper) can each take their own: STREAMER_TEST_KAFKA_PORT=19192 pytest ...
TEST_PORT = int(os.environ.get("STREAMER_TEST_KAFKA_PORT", "19092"))
TEST_CONTROLLER_PORT = TEST_PORT + 1
TEST_STATE_DIR = REPO / ".streamer" / ("test" if TEST_PORT == 19092 else f"test-{TEST_PORT}")


@dataclass
class TestKafka:
    __test__ = False  # not a test class

    bootstrap: str
    broker: LocalKafka
    state_dir: Path

    def settings(self, **overrides: object) -> Settings:
        """Settings for a worker on this broker, with app id and topics (the control topic
        included) unique to the caller (:func:`tests.support.settings.worker_settings`)."""
        return worker_settings(
            self.bootstrap, TEST_CONTROLLER_PORT, self.state_dir, app_prefix="test", **overrides
        )

    def stop(self) -> None:
        self.broker.stop()


def start_test_kafka() -> TestKafka:
    state_dir = TEST_STATE_DIR
    settings = load_settings(
        state_dir=state_dir,
        kafka_bootstrap=f"127.0.0.1:{TEST_PORT}",
        kafka_controller_port=TEST_CONTROLLER_PORT,
        kafka_libs_dir=KAFKA_LIBS_DIR,
        topic_partitions=4,
    )
    broker = LocalKafka(settings)
    if broker.status().running:
        broker.stop()
    shutil.rmtree(state_dir, ignore_errors=True)
    try:
        broker.start()
    except LocalKafkaError as exc:
        pytest.fail(
            f"the test Kafka did not start: {exc}\n"
            "Run ./scripts/test.sh (it installs Java, Maven and the Kafka jars) or "
            "`streamer kafka install`.",
            pytrace=False,
        )
    return TestKafka(bootstrap=f"127.0.0.1:{TEST_PORT}", broker=broker, state_dir=state_dir)
