"""Options of faust's aiokafka consumer that faust does not expose, set on the running consumer.

faust 0.15.3 builds its worker consumer in ``AIOKafkaConsumerThread._create_worker_consumer``
with ``fetch_max_wait_ms=1500`` written into the call.
"""

from __future__ import annotations

from typing import Any


def set_fetch_max_wait(consumer: Any, fetch_max_wait_ms: int) -> None:
    """The longest the broker holds a fetch of faust's (started) consumer that finds no new
    records; faust 0.15.3 writes 1,500 ms into its consumer's construction.

    aiokafka sends one fetch at a time to a broker. When the readings of a fetch wait
    unconsumed for over 100 ms (the worker busy with a batch), it fetches the other, quiet
    partitions meanwhile; the broker holds that fetch for this long, and the next readings
    cannot be fetched before it returns. (Set on the running consumer: wrapping faust's
    factory, as :func:`~streamer.faust_glue.exactly_once_hooks.read_committed` does, would make
    faust build its consumer with the app.)
    """
    set_on_consumer(consumer, "_fetch_max_wait_ms", fetch_max_wait_ms)


def set_on_consumer(consumer: Any, attribute: str, value: object) -> None:
    """Set ``attribute`` of faust's started aiokafka consumer, and of its fetcher (which copied
    the consumer's own at the start), to ``value``."""
    client = consumer._thread._ensure_consumer()
    setattr(client, attribute, value)
    fetcher = client._fetcher
    if fetcher is not None:
        setattr(fetcher, attribute, value)
