"""How a batch's outputs reach Kafka before its input offsets may be committed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def deliver_outputs(producer: Any, *, warn_after_seconds: float = 10.0) -> None:
    """Wait until faust's producer buffer is empty and the Kafka client delivered everything.

    Waits as long as it takes (a broker outage must not let the batch be acknowledged), with a
    warning every ``warn_after_seconds``.
    """
    loop = asyncio.get_running_loop()
    buffer = producer.buffer
    warn_at = loop.time() + warn_after_seconds
    while buffer.size:
        if loop.time() > warn_at:
            log.warning("%d outputs still waiting to be sent to Kafka", buffer.size)
            warn_at = loop.time() + warn_after_seconds
        await asyncio.sleep(0.002)
    await producer.flush()
