"""faust's own consume ceiling: a bare faust app that drains the readings and acks them.

The app has the faust settings of a streamer worker (:func:`faust_app_kwargs` mirrors
``streamer.app.create_app``; a unit test compares every faust setting of the two) and one agent
on the readings topic that takes the events in micro-batches as streamer's readings agent does
(``Stream.take_events`` with ``STREAMER_BATCH_MAX_EVENTS``, and a window of its own,
``--within-seconds``, :data:`WITHIN_SECONDS` by default: the worker no longer has a batch window,
its batching is continuous), counts them and acknowledges them: no decoding, no state, no
outputs.

Run as a child process by :mod:`pipelinebench.faust_ceiling` (``STREAMER_*`` settings in the
environment)::

    python bench/pipelinebench/faust_drain.py --expected 24000 --status-file s.json \
        --within-seconds 0.25

It writes ``status-file`` (JSON: ``first_event_at``, ``done_at`` as epoch seconds, ``events``,
``batches``) when the first event arrives and when ``expected`` events were drained.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

#: How the agent takes its batches (the readings agent's way).
MODE = "take_events"
#: ``take_events``'s window, seconds: the bench's own (the worker has none).
WITHIN_SECONDS = 0.25


def faust_app_kwargs(settings: Any) -> dict[str, Any]:
    """The keyword arguments ``streamer.app.create_app`` gives ``faust.App`` (kept in step)."""
    from streamer.delivery.offset_commits import COMMIT_EVERY_BATCHES
    from streamer.kafka_security import faust_credentials

    return {
        "broker": [f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        "broker_credentials": faust_credentials(settings),
        "store": "memory://",
        "datadir": str(settings.worker_dir),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": 1,
        "processing_guarantee": settings.processing_guarantee,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "web_bind": settings.web_host,
        "consumer_auto_offset_reset": "earliest",
        "producer_linger_ms": 5,
        "producer_compression_type": settings.compression_type,
        "producer_max_batch_size": settings.producer_batch_bytes,
        "stream_buffer_maxsize": max(settings.stream_buffer_events, settings.batch_max_events * 2),
        "broker_commit_every": COMMIT_EVERY_BATCHES * max(1000, settings.batch_max_events),
        "broker_commit_interval": 1.0,
        "broker_session_timeout": settings.consumer_session_timeout_seconds,
        "broker_heartbeat_interval": max(1.0, settings.consumer_session_timeout_seconds / 10),
        "autodiscover": False,
    }


class DrainStatus:
    """Counts drained events and writes the status file at the first event and when done."""

    def __init__(self, expected: int, path: Path) -> None:
        self.expected = expected
        self.path = path
        self.events = 0
        self.batches = 0
        self.first_event_at: float | None = None
        self.done_at: float | None = None

    def add(self, count: int) -> None:
        now = time.time()
        self.batches += 1
        self.events += count
        if self.first_event_at is None:
            self.first_event_at = now
            self.write()
        if self.done_at is None and self.events >= self.expected:
            self.done_at = now
            self.write()

    def write(self) -> None:
        body = {
            "first_event_at": self.first_event_at,
            "done_at": self.done_at,
            "events": self.events,
            "batches": self.batches,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self.path)


def build_app(settings: Any, status: DrainStatus, within: float = WITHIN_SECONDS) -> Any:
    import faust

    app = faust.App(settings.app_id, **faust_app_kwargs(settings))
    topic = app.topic(
        settings.readings_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    max_events = settings.batch_max_events

    @app.agent(topic, name="bench.drain")
    async def drain(stream: Any) -> None:
        async for events in stream.take_events(max_events, within=within):
            status.add(len(events))

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--status-file", type=Path, required=True)
    parser.add_argument(
        "--within-seconds", type=float, default=WITHIN_SECONDS, help="take_events' window"
    )
    args = parser.parse_args(argv)
    from streamer.settings import load_settings

    settings = load_settings()
    settings.worker_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings, DrainStatus(args.expected, args.status_file), args.within_seconds)
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


if __name__ == "__main__":
    main()
