"""The Kafka side of the simulator: a producer protocol, aiokafka's producer, batched sends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streamer.simulate.errors import ProducerError
from streamer.simulate.ratelimit import RateLimiter
from streamer.simulate.wire import Message

LINGER_MS: Final = 20
MAX_BATCH_BYTES: Final = 256 * 1024


class MessageProducer(Protocol):
    """The part of ``AIOKafkaProducer`` the simulator uses (tests pass a fake)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> asyncio.Future[Any]: ...


ProducerFactory = Callable[[str], MessageProducer]


def kafka_producer(
    bootstrap_servers: str, *, security: Mapping[str, Any] | None = None
) -> MessageProducer:
    """An idempotent aiokafka producer: acks from all replicas, 20 ms linger.

    ``security``: TLS/SASL keyword arguments (:func:`streamer.kafka_security.aiokafka_security`).
    """
    producer: MessageProducer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id="streamer-simulate",
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        max_batch_size=MAX_BATCH_BYTES,
        **(security or {}),
    )
    return producer


async def start_producer(producer: MessageProducer, bootstrap_servers: str) -> None:
    try:
        await producer.start()
    except KafkaError as exc:
        raise ProducerError(
            f"cannot connect to Kafka at {bootstrap_servers!r} ({exc}); start the broker "
            "(`streamer kafka start`) or set STREAMER_KAFKA_BOOTSTRAP"
        ) from exc


async def send_messages(
    producer: MessageProducer,
    topic: str,
    messages: Sequence[Message],
    limiter: RateLimiter | None = None,
) -> None:
    """Queue every message without awaiting each, then wait until Kafka has acknowledged all."""
    futures: list[asyncio.Future[Any]] = []
    step = limiter.batch_size() if limiter is not None else len(messages) or 1
    try:
        for begin in range(0, len(messages), step):
            part = messages[begin : begin + step]
            if limiter is not None:
                await limiter.acquire(len(part))
            for key, value in part:
                futures.append(await producer.send(topic, value=value, key=key))
        await asyncio.gather(*futures)
    except KafkaError as exc:
        raise ProducerError(
            f"Kafka did not accept messages for topic {topic!r} ({exc}); check that the topic "
            "exists (or auto-creation is on) and the broker is healthy"
        ) from exc
