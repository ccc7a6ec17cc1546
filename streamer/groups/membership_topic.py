"""Read and publish the ``meter-groups`` topic (plain aiokafka, no consumer group)."""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaProducer

from streamer.groups.membership import GroupRef, encode_membership
from streamer.groups.membership_view import MembershipView
from streamer.kafka_security import aiokafka_security
from streamer.settings import Settings
from streamer.whole_topic import read_whole_topic, start_client


async def read_membership(settings: Settings) -> MembershipView:
    """The membership as the topic holds it now (read to its end)."""
    view = MembershipView()
    for record in await read_whole_topic(settings, settings.groups_topic):
        if record.key is not None:
            view.apply(record.key.decode(errors="replace"), record.value)
    return view


async def publish_membership(
    settings: Settings,
    membership: Mapping[str, tuple[GroupRef, ...]],
    *,
    current: MembershipView | None = None,
    replace: bool = True,
) -> tuple[int, int]:
    """Write the meters whose groups changed (all of them without ``current``); with
    ``replace``, a tombstone for each meter of ``current`` not in ``membership``. Returns
    (records written, meters removed)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=20,
        **aiokafka_security(settings),
    )
    await start_client(producer, settings)
    written = removed = 0
    try:
        futures = []
        for meter_id, groups in membership.items():
            if current is not None and current.groups_of(meter_id) == tuple(sorted(groups)):
                continue
            futures.append(
                await producer.send(
                    settings.groups_topic, encode_membership(groups), key=meter_id.encode()
                )
            )
            written += 1
        if replace and current is not None:
            for meter_id in current.meter_ids():
                if meter_id not in membership:
                    futures.append(
                        await producer.send(settings.groups_topic, None, key=meter_id.encode())
                    )
                    removed += 1
        for future in futures:
            await future
    finally:
        await producer.stop()
    return written + removed, removed
